//! The swap's edges against a real PostgreSQL: `lethe rollback`, `keep_previous`, the
//! pre-swap checks in the shadow and the `after_refresh` hooks.

mod common;

use common::{KEY, TestDb, Workspace, expect_exit};
use lethe::catalog::TableName;
use lethe::engine::postgres::catalog::SequenceValue;
use lethe::engine::postgres::{Endpoint, SchemaMap, Side, Target};

const SCHEMA: &str = "
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    phone text
);
CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    amount numeric(10,2) NOT NULL
);
CREATE SCHEMA crm;
CREATE TABLE crm.notes (id int PRIMARY KEY, user_id bigint REFERENCES public.users(id), body text);
INSERT INTO users (email, phone)
SELECT 'user' || g || '@corp.example', '+49 30 ' || lpad(g::text, 7, '0') FROM generate_series(1, 200) g;
INSERT INTO invoices (user_id, amount) SELECT 1 + g % 200, g * 1.5 FROM generate_series(1, 600) g;
INSERT INTO crm.notes SELECT g, g, 'note ' || g FROM generate_series(1, 50) g;
";

const RULES: &str = r#"
[users]
keep = ["id"]
email = "email"
phone = "phone"

[invoices]
keep = ["id", "user_id", "amount"]
"#;

const CRM_RULES: &str = "[notes]\nkeep = [\"id\", \"user_id\", \"body\"]\n";

/// Everything a rollback must bring back, as COPY text and sequence values.
const CONTENT: &[&str] = &[
    "SELECT * FROM users",
    "SELECT * FROM invoices",
    "SELECT * FROM crm.notes",
    "SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE schemaname IN ('public', 'crm')",
];

async fn content(db: &TestDb) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for query in CONTENT {
        all.push(db.copy_out(query).await);
    }
    all
}

async fn lethe_schemas(db: &TestDb, like: &str) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '{like}'"
    ))
    .await
}

/// A source with two schemas, and a workspace refreshing it into `dev`.
async fn setup(tag: &str) -> (TestDb, TestDb, Workspace) {
    let source = TestDb::create(&format!("{tag}_src")).await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create(&format!("{tag}_dev")).await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES), ("crm", CRM_RULES)]);
    (source, dev, ws)
}

/// Rewrites `[targets.dev]` with `options` (TOML lines) after its url.
fn target_options(ws: &Workspace, options: &str) {
    let text = std::fs::read_to_string(ws.config()).unwrap_or_else(|e| panic!("{e}"));
    let start = text
        .find("[targets.dev]\nurl = ")
        .unwrap_or_else(|| panic!("{text}"));
    let url_end = start + text[start..].find('\n').unwrap_or(0) + 1;
    let url_end = url_end + text[url_end..].find('\n').unwrap_or(0) + 1;
    let masking = text.find("\n[masking]").unwrap_or_else(|| panic!("{text}"));
    ws.write_config(&format!(
        "{}{options}\n{}",
        &text[..url_end],
        &text[masking..]
    ));
}

fn write_hook(ws: &Workspace, name: &str, sql: &str) {
    let dir = ws.path().join("sql");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join(name), sql).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn rollback_restores_the_previous_copy_exactly_and_a_second_rollback_swaps_forward() {
    let (source, dev, ws) = setup("rb").await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let first = content(&dev).await;

    source
        .exec(
            "INSERT INTO users (email, phone) SELECT 'new' || g || '@corp.example', NULL FROM generate_series(1, 30) g;
             UPDATE users SET phone = '+33 1 ' || id WHERE id % 7 = 0;
             DELETE FROM invoices WHERE id % 5 = 0;
             UPDATE crm.notes SET body = 'edited' WHERE id < 10;",
        )
        .await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let second = content(&dev).await;
    assert_ne!(first, second, "the second refresh must change the copy");

    let (stdout, _) = expect_exit(&ws.lethe(&["rollback", "dev"]), 0);
    assert!(stdout.contains("rolled back dev: crm, public"), "{stdout}");
    assert_eq!(
        content(&dev).await,
        first,
        "rollback must restore the first copy exactly"
    );
    // The copy it replaced is the previous one now, whole.
    assert_eq!(
        dev.copy_out("SELECT * FROM lethe_prev_public.users").await,
        second[0]
    );
    assert_eq!(lethe_schemas(&dev, "lethe_shadow%").await, 0);

    expect_exit(&ws.lethe(&["rollback", "dev"]), 0);
    assert_eq!(
        content(&dev).await,
        second,
        "a second rollback must swap forward again"
    );

    // A refresh after rollbacks replaces whichever copy is live and keeps it as the previous.
    source.exec("UPDATE crm.notes SET body = 'third'").await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let third = content(&dev).await;
    assert_ne!(third, second);
    expect_exit(&ws.lethe(&["rollback", "dev"]), 0);
    assert_eq!(content(&dev).await, second);
}

#[tokio::test]
async fn rollback_after_the_first_refresh_brings_back_what_the_target_held() {
    let (_source, dev, ws) = setup("rbfirst").await;
    dev.exec("CREATE TABLE dev_only (id int); INSERT INTO dev_only VALUES (7);")
        .await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(dev.count("SELECT count(*) FROM users").await, 200);

    // `public` was there before (the default schema); `crm` was not, so it goes away.
    expect_exit(&ws.lethe(&["rollback", "dev"]), 0);
    assert_eq!(dev.count("SELECT sum(id) FROM dev_only").await, 7);
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'crm'")
            .await,
        0
    );
    // A schema that lethe did not make, where the exchange would put one, stops it.
    dev.exec("CREATE SCHEMA crm").await;
    let (_, stderr) = expect_exit(&ws.lethe(&["rollback", "dev"]), 1);
    assert!(
        stderr.contains("schema `crm` is in the way (lethe's last swap (refresh or rollback) did not make it); nothing was changed"),
        "{stderr}"
    );
    assert_eq!(dev.count("SELECT sum(id) FROM dev_only").await, 7);
    dev.exec("DROP SCHEMA crm").await;

    expect_exit(&ws.lethe(&["rollback", "dev"]), 0);
    assert_eq!(dev.count("SELECT count(*) FROM crm.notes").await, 50);
    assert_eq!(
        dev.count("SELECT count(*) FROM lethe_prev_public.dev_only")
            .await,
        1
    );
}

#[tokio::test]
async fn rollback_without_a_previous_copy_exits_1_and_changes_nothing() {
    let (_source, dev, ws) = setup("rbnone").await;
    // Never refreshed: nothing of lethe's is there.
    let (_, stderr) = expect_exit(&ws.lethe(&["rollback", "dev"]), 1);
    assert!(
        stderr.contains("holds no copy made by `lethe refresh`"),
        "{stderr}"
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'")
            .await,
        1
    );

    target_options(&ws, "keep_previous = 0");
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let before = content(&dev).await;
    let schemas = dev
        .column("SELECT nspname::text FROM pg_namespace ORDER BY 1")
        .await;
    let (_, stderr) = expect_exit(&ws.lethe(&["rollback", "dev"]), 1);
    assert!(
        stderr.contains("has no previous copy to roll back to"),
        "{stderr}"
    );
    assert_eq!(content(&dev).await, before);
    assert_eq!(
        dev.column("SELECT nspname::text FROM pg_namespace ORDER BY 1")
            .await,
        schemas
    );
}

#[tokio::test]
async fn keep_previous_0_leaves_no_previous_copy() {
    let (source, dev, ws) = setup("keep0").await;
    target_options(&ws, "keep_previous = 0");
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(lethe_schemas(&dev, "lethe_prev%").await, 0);
    source.exec("DELETE FROM invoices WHERE id > 500").await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(lethe_schemas(&dev, "lethe_prev%").await, 0);
    assert_eq!(dev.count("SELECT count(*) FROM invoices").await, 500);

    // Back to the default: the replaced copy is kept.
    target_options(&ws, "");
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(
        dev.count("SELECT count(*) FROM lethe_prev_public.invoices")
            .await,
        500
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM lethe_prev_crm.notes").await,
        50
    );
}

#[tokio::test]
async fn an_after_refresh_hook_changes_the_new_copy_before_the_swap() {
    let (_source, dev, ws) = setup("hook").await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let masked_phones = dev.copy_out("SELECT phone FROM users").await;

    // Unqualified names reach the shadows of the copied schemas (crm, then public).
    write_hook(
        &ws,
        "dev-fixups.sql",
        "-- reset every phone to a known dev value\n\
         UPDATE users SET phone = '+00 000 0000000';\n\
         UPDATE notes SET body = 'scrubbed' WHERE id = 1;\n\
         INSERT INTO users (email) VALUES ('dev-admin@example.com');\n",
    );
    target_options(&ws, "after_refresh = [\"sql/dev-fixups.sql\"]");
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(
        dev.count("SELECT count(*) FROM users WHERE phone IS DISTINCT FROM '+00 000 0000000'")
            .await,
        1,
        "every copied phone is reset; only the hook's own row has none"
    );
    assert_eq!(
        dev.column("SELECT body FROM crm.notes WHERE id = 1").await,
        vec![Some("scrubbed".into())]
    );
    // The hook's insert took the next id after the source's: it ran after the sequences.
    assert_eq!(
        dev.column("SELECT id::text FROM users WHERE email = 'dev-admin@example.com'")
            .await,
        vec![Some("201".into())]
    );
    // The copy that was live during the run is untouched.
    assert_eq!(
        dev.copy_out("SELECT phone FROM lethe_prev_public.users")
            .await,
        masked_phones
    );
}

#[tokio::test]
async fn a_failing_hook_fails_the_run_names_the_file_and_leaves_dev_untouched() {
    let (_source, dev, ws) = setup("hookfail").await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let live = content(&dev).await;
    let previous = dev.copy_out("SELECT * FROM lethe_prev_public.users").await;

    let untouched = |what: &'static str| {
        let dev = &dev;
        let live = &live;
        let previous = &previous;
        async move {
            assert_eq!(&content(dev).await, live, "{what}: live copy changed");
            assert_eq!(
                &dev.copy_out("SELECT * FROM lethe_prev_public.users").await,
                previous,
                "{what}: previous copy changed"
            );
            assert_eq!(
                lethe_schemas(dev, "lethe_shadow%").await,
                0,
                "{what}: shadow left"
            );
        }
    };

    write_hook(&ws, "ok.sql", "UPDATE users SET phone = NULL;\n");
    write_hook(
        &ws,
        "broken.sql",
        "UPDATE users SET phone = NULL;\n-- then a typo\nUPDTE invoices SET amount = 0;\n",
    );
    target_options(&ws, "after_refresh = [\"sql/ok.sql\", \"sql/broken.sql\"]");
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(
        stderr.contains("after_refresh hook ")
            && stderr.contains("sql/broken.sql:3:1: syntax error at or near \"UPDTE\""),
        "{stderr}"
    );
    assert!(stderr.contains("the live copy is untouched"), "{stderr}");
    untouched("syntax error").await;

    // A hook that names the live schema would change the live copy: refused, rolled back.
    write_hook(
        &ws,
        "qualified.sql",
        "UPDATE public.users SET phone = NULL;\n",
    );
    target_options(&ws, "after_refresh = [\"sql/qualified.sql\"]");
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(
        stderr.contains("sql/qualified.sql: it changed the live table public.users"),
        "{stderr}"
    );
    untouched("write to the live copy").await;

    // A hook may not end lethe's transaction.
    write_hook(
        &ws,
        "commits.sql",
        "UPDATE users SET phone = NULL; COMMIT;\n",
    );
    target_options(&ws, "after_refresh = [\"sql/commits.sql\"]");
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(
        stderr.contains("sql/commits.sql: it ended the transaction"),
        "{stderr}"
    );
    untouched("COMMIT in a hook").await;
}

#[tokio::test]
async fn bad_target_options_are_config_errors_before_anything_is_touched() {
    let (_source, dev, ws) = setup("hookcfg").await;
    target_options(
        &ws,
        "keep_previous = 2\nafter_refresh = [\"sql/missing.sql\"]",
    );
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 2);
    assert!(
        stderr.contains("lethe.toml:6:17: target `dev`: keep_previous must be 0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("lethe.toml:7:18: target `dev`: after_refresh hook ")
            && stderr.contains("sql/missing.sql is not a file"),
        "{stderr}"
    );
    assert_eq!(lethe_schemas(&dev, "lethe_%").await, 0);
    // rollback reads the same config, and stops at the same place.
    expect_exit(&ws.lethe(&["rollback", "dev"]), 2);
}

#[tokio::test]
async fn a_not_valid_foreign_key_is_validated_in_the_shadow_and_blocks_the_swap_if_it_fails() {
    let (source, dev, ws) = setup("notvalid").await;
    source
        .exec(
            "ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive CHECK (amount > 0) NOT VALID;
             ALTER TABLE crm.notes DROP CONSTRAINT notes_user_id_fkey;
             ALTER TABLE crm.notes ADD CONSTRAINT notes_user_fk FOREIGN KEY (user_id) REFERENCES public.users(id) NOT VALID;",
        )
        .await;
    // Constraints created NOT VALID that hold are validated in the copy.
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_constraint WHERE NOT convalidated")
            .await,
        0
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_constraint WHERE conname IN ('notes_user_fk', 'invoices_amount_positive')")
            .await,
        2
    );
    let live = content(&dev).await;

    // Rows that break a NOT VALID key in production stop the run before the swap.
    source
        .exec(
            "ALTER TABLE crm.notes DROP CONSTRAINT notes_user_fk;
             INSERT INTO crm.notes VALUES (900, 99999, 'orphan');
             ALTER TABLE crm.notes ADD CONSTRAINT notes_user_fk FOREIGN KEY (user_id) REFERENCES public.users(id) NOT VALID;",
        )
        .await;
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(stderr.contains("pre-swap checks failed"), "{stderr}");
    assert!(
        stderr.contains(
            "crm.notes: constraint notes_user_fk (NOT VALID in the source) does not hold"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("99999"), "a key value leaked: {stderr}");
    assert_eq!(content(&dev).await, live);
    assert_eq!(lethe_schemas(&dev, "lethe_shadow%").await, 0);
}

/// The checks themselves, on a shadow built by hand: a wrong count, a NOT VALID check that
/// fails, a sequence that is not where the source's is. Each names its table.
#[tokio::test]
async fn pre_swap_checks_name_the_table_that_fails() {
    let dev = TestDb::create("checks").await;
    dev.exec(
        "CREATE SCHEMA lethe_shadow_public;
         CREATE TABLE lethe_shadow_public.items (id serial PRIMARY KEY, qty int);
         INSERT INTO lethe_shadow_public.items (qty) VALUES (1), (2), (-3);
         ALTER TABLE lethe_shadow_public.items ADD CONSTRAINT qty_positive CHECK (qty > 0) NOT VALID;
         CREATE TABLE lethe_shadow_public.empty (id int);",
    )
    .await;
    let url = secrecy::SecretString::from(dev.url.clone());
    let target = Target::new(Endpoint::parse(&url, Side::Target).unwrap_or_else(|e| panic!("{e}")));
    let map = SchemaMap::new(&["public".to_string()]);
    let mut session = target
        .lock_without_source(&lethe::engine::Holder::this_process(None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let items = TableName::new("public", "items");
    let empty = TableName::new("public", "empty");

    let counts = session
        .check_row_counts(&map, &[(items.clone(), 3), (empty.clone(), 0)], 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(counts.is_empty(), "{counts:?}");
    let counts = session
        .check_row_counts(&map, &[(items.clone(), 4), (empty.clone(), 0)], 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let shown: Vec<String> = counts.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["public.items: the shadow holds 3 rows, the source snapshot 4"]
    );

    let constraints = session
        .validate_constraints(&map)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(constraints.len(), 1, "{constraints:?}");
    let shown = constraints[0].to_string();
    assert!(
        shown.starts_with(
            "public.items: constraint qty_positive (NOT VALID in the source) does not hold"
        ),
        "{shown}"
    );

    let sequence = TableName::new("public", "items_id_seq");
    let at = |last_value, is_called| {
        vec![SequenceValue {
            name: sequence.clone(),
            last_value,
            is_called,
            owner: None,
        }]
    };
    let sequences = session
        .check_sequences(&map, &at(3, true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sequences.is_empty(), "{sequences:?}");
    let sequences = session
        .check_sequences(&map, &at(40, true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let shown: Vec<String> = sequences.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["public.items_id_seq: sequence is at 3 in the shadow, 40 in the source snapshot"]
    );
    let sequences = session
        .check_sequences(&map, &at(3, false))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sequences.len(),
        1,
        "is_called must be compared too: {sequences:?}"
    );
}
