//! `lethe verify` against a real PostgreSQL: a clean copy passes, a planted leak fails
//! with exit 4 and is named without being shown, kept columns that look like personal
//! data are warned about.

mod common;

use common::{KEY, TestDb, Workspace, expect_exit};
use lethe::config::Config;
use lethe::engine::Purpose;
use lethe::engine::postgres::{Endpoint, Postgres, SchemaMap, Side, Target};
use lethe::mask::MaskingKey;
use lethe::pipeline;
use lethe::rules::RuleSet;
use lethe::verify::{TargetCopy, Verdict, VerifyOptions, verify_copy};

const SCHEMA: &str = "
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    phone text,
    notes text,
    prefs jsonb,
    tags text[],
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    billing_email text NOT NULL REFERENCES users(email),
    reference text,
    amount numeric(10,2) NOT NULL
);
CREATE TABLE subscribers (
    id int PRIMARY KEY,
    contact_email text,
    memo text
);
INSERT INTO users (email, name, phone, notes, prefs, tags)
SELECT 'user' || g || '@corp.example', 'Real Person ' || g, '+49 30 ' || lpad(g::text, 7, '0'),
       CASE WHEN g % 3 = 0 THEN 'regular customer' END,
       jsonb_build_object('lang', 'de', 'newsletter', g % 2 = 0),
       ARRAY['tier' || (g % 4)]
FROM generate_series(1, 500) g;
INSERT INTO invoices (user_id, billing_email, reference, amount)
SELECT 1 + (g % 500), 'user' || (1 + (g % 500)) || '@corp.example',
       CASE WHEN g % 10 = 0 THEN 'n/a' ELSE 'INV-' || g END, g * 1.5
FROM generate_series(1, 1500) g;
INSERT INTO subscribers
SELECT g, 'sub' || g || '@news.example', CASE WHEN g = 7 THEN 'paid by 4111 1111 1111 1111' END
FROM generate_series(1, 50) g;
";

const RULES: &str = r#"
[users]
keep = ["id", "created_at", "notes", "prefs", "tags"]
email = "email"
name = "full_name"
phone = "phone"

[invoices]
keep = ["id", "user_id", "amount"]
billing_email = "email"
reference = { mask = "constant", value = "n/a" }

[subscribers]
keep = ["id", "contact_email", "memo"]
"#;

/// A source with the schema, a dev database refreshed from it, and the workspace.
async fn refreshed() -> (TestDb, TestDb, Workspace) {
    let source = TestDb::create("vsrc").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("vdev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    (source, dev, ws)
}

/// The report line of one masked column.
fn line<'a>(stdout: &'a str, column: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{column} ")))
        .unwrap_or_else(|| panic!("no line for {column} in\n{stdout}"))
}

#[tokio::test]
async fn a_clean_copy_passes_and_kept_personal_data_is_warned_about() {
    let (source, dev, ws) = refreshed().await;

    // A real name that equals the stand-in another real name got: the copy is still clean.
    let fake = dev
        .column("SELECT name FROM users WHERE id = 1")
        .await
        .remove(0)
        .unwrap_or_default();
    source
        .exec(&format!(
            "INSERT INTO users (email, name) VALUES ('twin@corp.example', '{}')",
            fake.replace('\'', "''")
        ))
        .await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);

    let (stdout, _) = expect_exit(&ws.lethe(&["verify", "dev"]), 0);
    for column in [
        "public.invoices.billing_email",
        "public.invoices.reference",
        "public.users.email",
        "public.users.name",
        "public.users.phone",
    ] {
        let l = line(&stdout, column);
        assert!(l.contains(" clean"), "{l}");
    }
    assert!(line(&stdout, "public.users.email").contains("501 checked"));
    // The constant and the masker explain the real values they produced.
    assert!(
        line(&stdout, "public.invoices.reference").contains("(1 equal to a real value"),
        "{stdout}"
    );
    assert!(
        line(&stdout, "public.users.name").contains("(1 equal to a real value"),
        "{stdout}"
    );
    assert!(
        stdout.contains("clean: no real value found in `dev`"),
        "{stdout}"
    );

    assert!(
        stdout.contains(
            "warning: public.subscribers.contact_email is kept, but its name looks like personal data (`email`)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: public.subscribers.contact_email is kept, but 50 of its 50 values contain an e-mail address"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: public.subscribers.memo is kept, but 1 of its 1 values contain a Luhn-valid card number"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("public.users.notes is kept"), "{stdout}");

    let (stdout, _) = expect_exit(&ws.lethe(&["verify", "dev", "--sample", "10"]), 0);
    assert!(
        line(&stdout, "public.users.email").contains(" 10 checked"),
        "{stdout}"
    );
    let (stdout, _) = expect_exit(&ws.lethe(&["verify", "dev", "--full", "--deep"]), 0);
    assert!(stdout.contains("deep: searched"), "{stdout}");

    let (_, stderr) = expect_exit(&ws.lethe(&["verify", "staging"]), 2);
    assert!(stderr.contains("no target named `staging`"), "{stderr}");
}

#[tokio::test]
async fn a_real_value_in_a_masked_column_is_a_leak() {
    let (_source, dev, ws) = refreshed().await;
    dev.exec("UPDATE users SET phone = '+49 30 0000007' WHERE id = 9")
        .await;

    let out = ws.lethe(&["verify", "dev"]);
    let (stdout, stderr) = expect_exit(&out, 4);
    let l = line(&stdout, "public.users.phone");
    assert!(
        l.contains("LEAK: 1 real value in 1 row: +4***(14 chars)"),
        "{l}"
    );
    assert!(
        line(&stdout, "public.users.email").contains(" clean"),
        "{stdout}"
    );
    assert!(
        stdout.contains("LEAK: real values found in 1 column of `dev`"),
        "{stdout}"
    );
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("0000007"),
            "the real value was printed:\n{text}"
        );
    }
}

#[tokio::test]
async fn deep_finds_real_values_planted_in_kept_text_json_and_array_columns() {
    let (_source, dev, ws) = refreshed().await;
    dev.exec(
        "UPDATE users SET notes = 'ask user7@corp.example for the invoice' WHERE id = 3;
         UPDATE users SET prefs = '{\"contact\": {\"email\": \"user8@corp.example\"}}' WHERE id = 4;
         UPDATE users SET tags = ARRAY['vip', 'call +49 30 0000011'] WHERE id = 5;",
    )
    .await;

    // The same-column check does not look into kept columns.
    expect_exit(&ws.lethe(&["verify", "dev"]), 0);

    let (stdout, stderr) = expect_exit(&ws.lethe(&["verify", "dev", "--deep"]), 4);
    let hit = |column: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{column} ")) && l.contains(" LEAK: "))
            .unwrap_or_else(|| panic!("no deep hit for {column} in\n{stdout}"))
            .to_string()
    };
    let notes = hit("public.users.notes");
    assert!(
        notes.contains("LEAK: 1 real value in 1 row: us***(18 chars) (from public.invoices.billing_email, public.users.email)"),
        "{notes}"
    );
    assert!(
        hit("public.users.prefs")
            .contains("us***(18 chars) (from public.invoices.billing_email, public.users.email)")
    );
    assert!(hit("public.users.tags").contains("+4***(14 chars) (from public.users.phone)"));
    // The masked columns themselves are clean.
    assert!(
        line(&stdout, "public.users.email").contains(" clean"),
        "{stdout}"
    );
    for text in [&stdout, &stderr] {
        for real in ["user7@corp.example", "user8@corp.example", "0000011"] {
            assert!(!text.contains(real), "{real} was printed:\n{text}");
        }
    }
}

#[tokio::test]
async fn a_target_never_refreshed_has_nothing_to_compare_and_gaps_in_the_rules_refuse() {
    let source = TestDb::create("vsrc").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("vdev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    let (stdout, _) = expect_exit(&ws.lethe(&["verify", "dev", "--deep"]), 0);
    let l = line(&stdout, "public.users.email");
    assert!(
        l.contains("not checked: the table is not in the target"),
        "{l}"
    );
    assert!(stdout.contains("5 columns not in the target"), "{stdout}");

    // Without a rule for every column, nobody knows what should be masked: refuse.
    source.exec("ALTER TABLE users ADD COLUMN ssn text").await;
    let (_, stderr) = expect_exit(&ws.lethe(&["verify", "dev"]), 3);
    assert!(stderr.contains("public.users.ssn"), "{stderr}");
}

#[tokio::test]
async fn the_library_checks_a_shadow_copy_before_a_swap() {
    let (source, dev, ws) = refreshed().await;
    // A stand-in for a refresh's shadow: the same tables beside the live ones, with a leak.
    dev.exec(
        "CREATE SCHEMA lethe_shadow_public;
         CREATE TABLE lethe_shadow_public.users AS SELECT * FROM public.users;
         CREATE TABLE lethe_shadow_public.invoices AS SELECT * FROM public.invoices;
         CREATE TABLE lethe_shadow_public.subscribers AS SELECT * FROM public.subscribers;
         UPDATE lethe_shadow_public.users SET email = 'user42@corp.example' WHERE id = 1;",
    )
    .await;

    let text = std::fs::read_to_string(ws.config()).unwrap_or_else(|e| panic!("{e}"));
    let config = Config::parse(&ws.config(), &text, |name| {
        (name == "LETHE_TEST_SOURCE").then(|| source.url.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let target_url = &config.target("dev").unwrap_or_else(|e| panic!("{e}")).url;
    let target =
        Target::new(Endpoint::parse(target_url, Side::Target).unwrap_or_else(|e| panic!("{e}")));
    let key = MaskingKey::new(KEY.as_bytes());
    let rules = RuleSet::load(&config.masking.rules_dir, None).unwrap_or_else(|e| panic!("{e}"));
    let planned = pipeline::planned::<Postgres>(&config, &rules, Purpose::Plan)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let schemas = planned.schemas.clone();
    let map = SchemaMap::new(&schemas);
    let plan = &planned.plan;
    let options = VerifyOptions::default();

    let shadow = verify_copy(
        plan,
        &schemas,
        &planned.snapshot,
        &target,
        TargetCopy::Shadow(&map),
        &key,
        &options,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!shadow.is_clean());
    let email = shadow
        .columns
        .iter()
        .find(|c| c.table.name == "users" && c.column == "email")
        .unwrap_or_else(|| panic!("no users.email in {shadow:?}"));
    assert_eq!(email.verdict(), Verdict::Leak);
    assert_eq!(email.table.schema, "public", "reports name the live schema");
    assert_eq!(email.leaked_rows, 1);
    assert_eq!(email.leaks[0].redacted, "us***(19 chars)");

    let live = verify_copy(
        plan,
        &schemas,
        &planned.snapshot,
        &target,
        TargetCopy::Live,
        &key,
        &options,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(live.is_clean(), "{live:?}");
    assert_eq!(live.columns.len(), 5);
}

/// `verify = true` on a target runs the leak check on the shadow before the swap, and a
/// leak (here planted by an after_refresh hook) blocks the swap: exit 4, live copy intact.
#[tokio::test]
async fn verify_on_refresh_blocks_the_swap_when_the_new_copy_leaks() {
    let (_source, dev, ws) = refreshed().await;
    let before = dev.copy_out("SELECT * FROM users").await;
    std::fs::write(
        ws.path().join("plant.sql"),
        "UPDATE users SET phone = '+49 30 0000007' WHERE id = 7;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = std::fs::read_to_string(ws.config()).unwrap_or_else(|e| panic!("{e}"));
    let with_verify = config.replace(
        "[masking]",
        "verify = true\nafter_refresh = [\"plant.sql\"]\n\n[masking]",
    );
    ws.write_config(&with_verify);

    let (stdout, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 4);
    assert!(
        stderr.contains("refusing to swap: the leak check found"),
        "{stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains("+49 30 0000007"));
    assert_eq!(dev.copy_out("SELECT * FROM users").await, before);
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe_shadow%'")
            .await,
        0
    );

    // Without the planted value the same check passes and the swap happens.
    ws.write_config(&config.replace("[masking]", "verify = true\n\n[masking]"));
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
}
