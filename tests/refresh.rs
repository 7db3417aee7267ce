//! End-to-end refreshes against a real PostgreSQL: what a user runs, what they get.

mod common;

use std::collections::HashSet;

use common::{KEY, TestDb, Workspace, expect_exit};

const USERS_SCHEMA: &str = "
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    phone text,
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    billing_email text NOT NULL REFERENCES users(email),
    amount numeric(10,2) NOT NULL
);
INSERT INTO users (email, name, phone)
SELECT 'user' || g || '@corp.example', 'Real Person ' || g, '+49 30 ' || lpad(g::text, 7, '0')
FROM generate_series(1, 500) g;
INSERT INTO invoices (user_id, billing_email, amount)
SELECT 1 + (g % 500), 'user' || (1 + (g % 500)) || '@corp.example', g * 1.5
FROM generate_series(1, 1500) g;
";

const USERS_RULES: &str = r#"
[users]
keep = ["id", "created_at"]
email = "email"
name = "full_name"
phone = "phone"

[invoices]
keep = ["id", "user_id", "amount"]
billing_email = "email"
"#;

async fn users_source() -> TestDb {
    let source = TestDb::create("src").await;
    source.exec(USERS_SCHEMA).await;
    source
}

fn set(values: Vec<Option<String>>) -> HashSet<String> {
    values.into_iter().flatten().collect()
}

#[tokio::test]
async fn refresh_masks_keys_keeps_joins_and_copies_every_row() {
    let source = users_source().await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", USERS_RULES)]);

    let (stdout, _) = expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert!(
        stdout.contains("refreshed dev: 2 tables, 2000 rows"),
        "{stdout}"
    );

    assert_eq!(dev.count("SELECT count(*) FROM users").await, 500);
    assert_eq!(dev.count("SELECT count(*) FROM invoices").await, 1500);
    // The FK on a masked column was built after the load, and holds: joins survive.
    assert_eq!(
        dev.count("SELECT count(*) FROM invoices i JOIN users u ON u.email = i.billing_email AND u.id = i.user_id")
            .await,
        1500
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated AND connamespace = 'public'::regnamespace")
            .await,
        2
    );
    // No masked value is a real one.
    for (table, column) in [
        ("users", "email"),
        ("users", "phone"),
        ("users", "name"),
        ("invoices", "billing_email"),
    ] {
        let sql = format!("SELECT {column} FROM {table}");
        let real = set(source.column(&sql).await);
        let fake = set(dev.column(&sql).await);
        assert!(
            real.is_disjoint(&fake),
            "{table}.{column} leaked a real value"
        );
    }
    // Phones keep their shape.
    let phones = dev.column("SELECT phone FROM users").await;
    assert!(
        phones
            .iter()
            .flatten()
            .all(|p| p.starts_with("+49 ") && p.len() == 14),
        "{:?}",
        &phones[..3]
    );
    // Sequences continue where production is.
    assert_eq!(dev.count("SELECT nextval('users_id_seq')").await, 501);
    // ... also one reset with setval(..., false), which pg_sequences shows as NULL.
    source
        .exec("SELECT setval('invoices_id_seq', 9000, false)")
        .await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(dev.count("SELECT nextval('invoices_id_seq')").await, 9000);
    // Nothing of the run is left beside the live copy but the (empty) previous schema.
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe_shadow%'")
            .await,
        0
    );
}

#[tokio::test]
async fn pseudonyms_are_the_same_across_runs_and_tables_and_change_with_the_key() {
    let source = users_source().await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", USERS_RULES)]);

    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let first = dev
        .rows("SELECT id::text, email, name, phone FROM users ORDER BY id")
        .await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let second = dev
        .rows("SELECT id::text, email, name, phone FROM users ORDER BY id")
        .await;
    assert_eq!(
        first, second,
        "two runs with one key must give the same pseudonyms"
    );
    // The previous copy is kept beside the live one after the second run.
    assert_eq!(
        dev.count("SELECT count(*) FROM lethe_prev_public.users")
            .await,
        500
    );

    // The same real address maps to the same fake in another table.
    let mismatched = dev
        .count("SELECT count(*) FROM invoices i JOIN users u ON u.id = i.user_id WHERE u.email <> i.billing_email")
        .await;
    assert_eq!(mismatched, 0);

    let other = TestDb::create("dev2").await;
    let ws2 = Workspace::new(
        &source,
        &other,
        "another-key-that-is-long-enough",
        &[("public", USERS_RULES)],
    );
    expect_exit(&ws2.lethe(&["refresh", "dev"]), 0);
    let emails_a = set(dev.column("SELECT email FROM users").await);
    let emails_b = set(other.column("SELECT email FROM users").await);
    assert!(
        emails_a.is_disjoint(&emails_b),
        "a different key must give different pseudonyms"
    );
}

#[tokio::test]
async fn unmapped_column_refuses_with_exit_3_and_leaves_the_target_untouched() {
    let source = users_source().await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", USERS_RULES)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let before = dev.copy_out("SELECT * FROM users").await;

    source
        .exec("ALTER TABLE users ADD COLUMN ssn text; CREATE TABLE secrets (id int, token text);")
        .await;
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 3);
    assert!(stderr.contains("public.users.ssn"), "{stderr}");
    assert!(stderr.contains("public.secrets"), "{stderr}");
    assert!(stderr.contains("nothing was copied"), "{stderr}");

    assert_eq!(dev.copy_out("SELECT * FROM users").await, before);
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe_%'")
            .await,
        1
    );

    // `plan` shows the same, without writing anything, and exits 3 as well.
    let (stdout, stderr) = expect_exit(&ws.lethe(&["plan", "dev"]), 3);
    assert!(stdout.contains("public.users"), "{stdout}");
    assert!(
        stdout.contains("email") && stdout.contains("full_name"),
        "{stdout}"
    );
    assert!(stderr.contains("public.users.ssn"), "{stderr}");
}

#[tokio::test]
async fn a_target_that_is_the_source_is_refused() {
    let source = users_source().await;
    let ws = Workspace::new(&source, &source, KEY, &[("public", USERS_RULES)]);
    let before = source.copy_out("SELECT * FROM users").await;
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 3);
    assert!(stderr.contains("is the source database"), "{stderr}");
    assert_eq!(source.copy_out("SELECT * FROM users").await, before);
    assert_eq!(
        source
            .count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe_%'")
            .await,
        0
    );
}

#[tokio::test]
async fn bad_rules_are_reported_with_file_and_line_and_change_nothing() {
    let source = users_source().await;
    let dev = TestDb::create("dev").await;
    let rules = USERS_RULES.replace("name = \"full_name\"", "name = \"ful_name\"");
    let ws = Workspace::new(&source, &dev, KEY, &[("public", &rules)]);
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 2);
    assert!(
        stderr.contains("public.toml:5:8: public.users.name: unknown masker `ful_name`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `full_name`"), "{stderr}");

    let rules = USERS_RULES.replace("phone = \"phone\"", "phone = \"phone\"\nemial = \"email\"");
    ws.write_rules("public", &rules);
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 3);
    assert!(
        stderr.contains("public.users.emial: no such column"),
        "{stderr}"
    );

    let rules = USERS_RULES.replace(
        "keep = [\"id\", \"user_id\", \"amount\"]",
        "keep = [\"id\", \"user_id\"]\namount = { mask = \"constant\", value = \"lots\" }",
    );
    ws.write_rules("public", &rules);
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 3);
    assert!(
        stderr.contains(
            "public.toml:10:10: public.invoices.amount: the constant is not a valid numeric(10,2)"
        ),
        "{stderr}"
    );

    ws.write_config("[source]\nurl = \"${NOT_SET_ANYWHERE}\"\n[masking]\nkey = \"x\"\n");
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 2);
    assert!(
        stderr.contains(
            "lethe.toml:2:7: source url: environment variable `NOT_SET_ANYWHERE` is not set"
        ),
        "{stderr}"
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe_%'")
            .await,
        0
    );
}

const EDGE_SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN short_code AS varchar(8) CHECK (VALUE ~ '^[A-Z0-9\\-]*$');
CREATE SCHEMA "Sales";
CREATE TABLE edge (
    id int PRIMARY KEY,
    t text,
    v varchar(20),
    c char(4),
    m mood,
    code short_code,
    tags text[],
    grid int[][],
    doc jsonb,
    j json,
    raw bytea,
    amount numeric(30,10),
    f double precision,
    ts timestamptz,
    d date,
    iv interval,
    u uuid,
    ip inet,
    total numeric GENERATED ALWAYS AS (amount * 2) STORED
);
INSERT INTO edge (id, t, v, c, m, code, tags, grid, doc, j, raw, amount, f, ts, d, iv, u, ip) VALUES
 (1, E'tab\there', E'new\nline', 'ab', 'happy', 'AB-1', ARRAY['a,b', 'c"d', NULL, ''], '{{1,2},{3,4}}',
  '{"k": "v\t\n", "n": [1, 2.50]}', '{"dup": 1, "dup": 2}', '\x00ff5c0a'::bytea, 12345678901234567890.0123456789,
  0.1, '2024-02-29 23:59:59.999999+05:30', 'infinity', '1 year 2 mons 3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10.1.2.3/16'),
 (2, E'back\\slash \\N', '', NULL, 'sad', '', '{}', NULL, 'null', NULL, '', -0.0000000001, 'NaN', '-infinity', '-infinity', '-1 days', NULL, '::1'),
 (3, '\N', E'\r\x01', 'xyz ', NULL, NULL, ARRAY[E'x\ty'], NULL, '"Zoë ✓ 日本"', '[]', NULL, 0, '-Infinity', 'epoch', '0001-01-01 BC', '0', NULL, NULL),
 (4, '', 'Zoë ✓ 日本', '', 'ok', 'Z', NULL, '{{0}}', '{}', '{}', '\x'::bytea, 1e-10, 1.7976931348623157e308, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE measurements (id int, taken date NOT NULL, value text) PARTITION BY RANGE (taken);
CREATE TABLE measurements_2023 PARTITION OF measurements FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    PARTITION BY LIST (id);
CREATE TABLE measurements_2024_a PARTITION OF measurements_2024 FOR VALUES IN (1, 2, 3);
CREATE TABLE measurements_2024_b PARTITION OF measurements_2024 DEFAULT;
CREATE INDEX ON measurements (taken);
INSERT INTO measurements SELECT g, date '2023-06-01' + g * 30, 'v' || g FROM generate_series(1, 12) g;

CREATE TABLE "Sales"."Order Lines" ("Id" int PRIMARY KEY, "Note" text, edge_id int REFERENCES public.edge(id));
INSERT INTO "Sales"."Order Lines" VALUES (1, 'x', 1), (2, NULL, 2);
CREATE VIEW edge_view AS SELECT id, t FROM edge WHERE id > 1;
CREATE MATERIALIZED VIEW edge_count AS SELECT count(*) AS n, max(id) AS top FROM edge;
CREATE MATERIALIZED VIEW edge_unfilled AS SELECT id FROM edge WITH NO DATA;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.t := 'touched: ' || NEW.t; RETURN NEW; END $$;
CREATE TRIGGER edge_touch BEFORE INSERT ON edge FOR EACH ROW EXECUTE FUNCTION touch();
"#;

#[tokio::test]
async fn kept_columns_round_trip_byte_for_byte() {
    let source = TestDb::create("src").await;
    source.exec(EDGE_SCHEMA).await;
    let dev = TestDb::create("dev").await;
    let rules = r#"
[edge]
keep = ["id", "t", "v", "c", "m", "code", "tags", "grid", "doc", "j", "raw", "amount", "f", "ts", "d", "iv", "u", "ip"]

[measurements]
keep = ["id", "taken", "value"]
"#;
    let sales = "[\"Order Lines\"]\nkeep = [\"Id\", \"Note\", \"edge_id\"]\n";
    let ws = Workspace::new(&source, &dev, KEY, &[("public", rules), ("Sales", sales)]);
    let (stdout, _) = expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert!(stdout.contains("3 tables"), "{stdout}");

    for query in [
        "SELECT * FROM edge",
        "SELECT * FROM measurements",
        "SELECT * FROM measurements_2024_b",
        "SELECT * FROM \"Sales\".\"Order Lines\"",
        "SELECT * FROM edge_view",
        "SELECT * FROM edge_count",
    ] {
        assert_eq!(
            String::from_utf8_lossy(&dev.copy_out(query).await),
            String::from_utf8_lossy(&source.copy_out(query).await),
            "{query} differs"
        );
    }
    // A view left unpopulated in the source stays so in the copy.
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_matviews WHERE matviewname = 'edge_unfilled' AND NOT ispopulated").await,
        1
    );
    // The trigger exists in the copy but did not fire during the load.
    dev.exec("INSERT INTO edge (id, t) VALUES (99, 'new')")
        .await;
    assert_eq!(
        dev.column("SELECT t FROM edge WHERE id = 99").await,
        vec![Some("touched: new".into())]
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'measurements'::regclass")
            .await,
        2
    );
}

#[tokio::test]
async fn the_bench_dataset_refreshes_with_the_shipped_rules() {
    let (source, rules) = common::bench_source("bench", "0.01").await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", &rules)]);
    let (stdout, _) = expect_exit(&ws.lethe(&["refresh", "dev", "--jobs", "2"]), 0);
    assert!(stdout.contains("7 tables, 129721 rows"), "{stdout}");

    for table in [
        "products",
        "customers",
        "addresses",
        "orders",
        "order_items",
        "payments",
        "support_tickets",
    ] {
        let sql = format!("SELECT count(*) FROM {table}");
        assert_eq!(dev.count(&sql).await, source.count(&sql).await, "{table}");
    }
    let fks = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated";
    assert_eq!(dev.count(fks).await, source.count(fks).await);
    let indexes = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'";
    assert_eq!(dev.count(indexes).await, source.count(indexes).await);
    for (table, column) in [
        ("customers", "email"),
        ("customers", "phone"),
        ("customers", "national_id"),
        ("customers", "iban"),
        ("addresses", "phone"),
        ("payments", "card_number"),
        ("payments", "iban"),
        ("support_tickets", "body"),
    ] {
        let sql = format!("SELECT {column}::text FROM {table}");
        let real = set(source.column(&sql).await);
        let fake = set(dev.column(&sql).await);
        assert!(
            real.is_disjoint(&fake),
            "{table}.{column} shares a value with the source"
        );
    }
    // Names come from a list of common names, so a few may match by chance; a row keeping
    // its own value more than rarely would mean the masker is not applied.
    for column in [
        "first_name",
        "last_name",
        "street",
        "postcode",
        "date_of_birth",
    ] {
        let sql = format!("SELECT c.id::text, c.{column}::text FROM customers c ORDER BY id");
        let real = source.rows(&sql).await;
        let fake = dev.rows(&sql).await;
        let same = real.iter().zip(&fake).filter(|(a, b)| a == b).count();
        assert!(
            same * 100 < real.len(),
            "customers.{column}: {same} rows unchanged"
        );
    }
    // Free text is scrubbed, not dropped: every address left in it is a fake, and the
    // preferences document's contact data is masked by path.
    let notes = "SELECT count(*) FROM customers WHERE notes IS NOT NULL";
    assert_eq!(dev.count(notes).await, source.count(notes).await);
    assert!(
        source
            .count("SELECT count(*) FROM customers WHERE notes ~ '@'")
            .await
            > 0
    );
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers WHERE notes ~ '@' AND notes !~ '\\.[0-9a-z]{13}@example\\.com'"
        )
        .await,
        0
    );
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers WHERE prefs->'contact'->>'email' NOT LIKE '%@example.com'"
        )
        .await,
        0
    );
    assert!(
        dev.count("SELECT count(*) FROM customers WHERE prefs->'contact'->>'email' = email")
            .await
            > 0
    );
    // The kept last four digits agree with the masked, still Luhn-valid, number.
    assert_eq!(
        dev.count("SELECT count(*) FROM payments WHERE right(card_number, 4) <> card_last4")
            .await,
        0
    );
}

#[tokio::test]
async fn an_extension_in_a_copied_schema_is_refused_before_the_target_is_touched() {
    let source = users_source().await;
    source.exec("CREATE EXTENSION citext SCHEMA public").await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", USERS_RULES)]);
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 3);
    assert!(stderr.contains("citext in public"), "{stderr}");
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe_%'")
            .await,
        0
    );
}

#[tokio::test]
async fn masked_fields_with_escapes_and_unicode_are_decoded_and_encoded_again() {
    let source = TestDb::create("src").await;
    source
        .exec(
            r#"CREATE TABLE notes (id int PRIMARY KEY, body text, code varchar(6));
            INSERT INTO notes VALUES
              (1, E'tab\there\t', E'a\\b\nc'),
              (2, E'back\\slash\\N', '\N'),
              (3, 'Zoë ✓ 日本語', 'ÄÖÜäöü'),
              (4, '', ''),
              (5, NULL, NULL),
              (6, E'cr\r\nlf\n', E'\x01\x02');"#,
        )
        .await;
    let dev = TestDb::create("dev").await;
    let rules =
        "[notes]\nkeep = [\"id\"]\nbody = { mask = \"partial\", keep_last = 2 }\ncode = \"hash\"\n";
    let ws = Workspace::new(&source, &dev, KEY, &[("public", rules)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);

    let real = source
        .rows("SELECT id::text, body, code FROM notes ORDER BY id")
        .await;
    let fake = dev
        .rows("SELECT id::text, body, code FROM notes ORDER BY id")
        .await;
    assert_eq!(real.len(), fake.len());
    for (r, f) in real.iter().zip(&fake) {
        match (&r[1], &f[1]) {
            (Some(real_body), Some(fake_body)) => {
                let tail = |s: &str| s.chars().rev().take(2).collect::<String>();
                assert_eq!(
                    real_body.chars().count(),
                    fake_body.chars().count(),
                    "row {:?}",
                    r[0]
                );
                assert_eq!(tail(real_body), tail(fake_body), "row {:?}", r[0]);
            }
            (None, None) => {}
            other => panic!("NULL must stay NULL and only NULL: {other:?}"),
        }
        match (&r[2], &f[2]) {
            (Some(real_code), Some(fake_code)) => {
                assert_ne!(real_code, fake_code);
                assert_eq!(fake_code.chars().count(), 6, "hash is cut to varchar(6)");
                assert!(fake_code.chars().all(|c| c.is_ascii_hexdigit()));
            }
            (None, None) => {}
            other => panic!("NULL must stay NULL and only NULL: {other:?}"),
        }
    }
}
