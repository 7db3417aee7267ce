//! The rules language end to end on a real PostgreSQL: row-level rules (templates, date
//! shifts, synthetic columns), consistency domains, profiles, unique columns at scale,
//! and `lethe check`.

mod common;

use std::collections::HashSet;

use common::{KEY, TestDb, Workspace, expect_exit};

const SHOP: &str = "
CREATE TABLE customers (
    id bigint PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    login text NOT NULL UNIQUE,
    contact text,
    signed_up date NOT NULL,
    score int,
    notes text
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    customer_login text NOT NULL,
    placed_at timestamptz NOT NULL,
    shipped_at timestamptz,
    amount numeric(10,2) NOT NULL
);
INSERT INTO customers
SELECT g, 'First' || g, 'Last' || g, 'login' || g, 'contact' || g,
       date '2020-01-01' + g, g % 100, 'private note ' || g
FROM generate_series(1, 300) g;
INSERT INTO orders
SELECT g, 1 + g % 300, 'login' || (1 + g % 300),
       timestamptz '2024-01-01 12:00:00+00' + g * interval '1 hour',
       timestamptz '2024-01-03 12:00:00+00' + g * interval '1 hour',
       g * 2.5
FROM generate_series(1, 900) g;
";

const SHOP_RULES: &str = r#"
[customers]
keep = ["id"]
first_name = "first_name"
last_name = "last_name"
login = { mask = "hash", domain = "login" }
contact = { mask = "template", template = "{first_name}.{last_name}.{id}@example.org" }
signed_up = { mask = "date_shift", days = 60, by = ["id"] }
score = { synth = "int", range = [1, 5] }
notes = { synth = "lorem", words = [2, 4] }

[orders]
keep = ["id", "customer_id"]
customer_login = { mask = "hash", domain = "login" }
placed_at = { mask = "date_shift", days = 60, by = ["customer_id"] }
shipped_at = { mask = "date_shift", days = 60, by = ["customer_id"] }
amount = { mask = "constant", value = "0" }
"#;

async fn shop() -> TestDb {
    let source = TestDb::create("src").await;
    source.exec(SHOP).await;
    source
}

#[tokio::test]
async fn row_level_rules_domains_and_reruns() {
    let source = shop().await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", SHOP_RULES)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);

    // The template agrees with the row's masked names.
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM customers
             WHERE contact = first_name || '.' || last_name || '.' || id || '@example.org'
               AND first_name NOT LIKE 'First%'"
        )
        .await,
        300
    );
    // One domain, two tables: the masked login still joins.
    assert_eq!(
        dev.count("SELECT count(*) FROM orders o JOIN customers c ON c.login = o.customer_login AND c.id = o.customer_id")
            .await,
        900
    );
    // Dates move per customer, by the same days in both tables and for both columns:
    // the gap between placing and shipping survives, and so does the sign-up offset.
    assert_eq!(
        dev.count("SELECT count(*) FROM orders WHERE shipped_at - placed_at = interval '2 days'")
            .await,
        900
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM orders WHERE placed_at = timestamptz '2024-01-01 12:00:00+00' + id * interval '1 hour'")
            .await,
        0
    );
    let shifts = dev
        .column(
            "SELECT DISTINCT (o.placed_at - (timestamptz '2024-01-01 12:00:00+00' + o.id * interval '1 hour'))::text
             FROM orders o WHERE o.customer_id = 7",
        )
        .await;
    assert_eq!(shifts.len(), 1, "one customer, one shift: {shifts:?}");
    // Synthetic columns stay in their bounds and owe nothing to the real values.
    assert_eq!(
        dev.count("SELECT count(*) FROM customers WHERE score BETWEEN 1 AND 5")
            .await,
        300
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM customers WHERE notes LIKE 'private%'")
            .await,
        0
    );

    // A rerun writes the very same rows.
    let before = dev.copy_out("SELECT * FROM customers ORDER BY id").await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let after = dev.copy_out("SELECT * FROM customers ORDER BY id").await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_profile_overrides_rules_for_its_targets_only() {
    let source = shop().await;
    let dev = TestDb::create("dev").await;
    let staging = TestDb::create("stg").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", SHOP_RULES)]);
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n[targets.dev]\nurl = \"{}\"\n\n\
         [targets.staging]\nurl = \"{}\"\nprofile = \"staging\"\n\n[masking]\nkey = \"{KEY}\"\n",
        dev.url, staging.url
    ));
    let overrides = ws.path().join("masking-rules/profiles/staging");
    std::fs::create_dir_all(&overrides).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        overrides.join("public.toml"),
        "# staging keeps realistic amounts\n[orders]\namount = \"keep\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let (plan, _) = expect_exit(&ws.lethe(&["plan", "staging"]), 0);
    assert!(plan.contains("profile `staging`"), "{plan}");
    assert!(plan.contains("keep (profile staging)"), "{plan}");
    let (plan, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    assert!(!plan.contains("(profile staging)"), "{plan}");

    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    expect_exit(&ws.lethe(&["refresh", "staging"]), 0);
    assert_eq!(
        dev.count("SELECT count(*) FROM orders WHERE amount = 0")
            .await,
        900
    );
    assert_eq!(
        staging
            .count("SELECT count(*) FROM orders WHERE amount = id * 2.5")
            .await,
        900
    );
    // Everything the profile does not name follows the default rules.
    assert_eq!(
        dev.column("SELECT login FROM customers ORDER BY id").await,
        staging
            .column("SELECT login FROM customers ORDER BY id")
            .await
    );

    // A profile folder that does not exist is a config error naming the folder.
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n[targets.dev]\nurl = \"{}\"\nprofile = \"qa\"\n\n[masking]\nkey = \"{KEY}\"\n",
        dev.url
    ));
    let (_, err) = expect_exit(&ws.lethe(&["plan", "dev"]), 2);
    assert!(
        err.contains("profiles/qa") && err.contains("profile `qa`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_million_distinct_emails_stay_distinct() {
    let source = TestDb::create("src").await;
    source
        .exec(
            "CREATE TABLE accounts (id int PRIMARY KEY, email varchar(64) NOT NULL UNIQUE);
             INSERT INTO accounts SELECT g, 'person' || g || '@corp.example' FROM generate_series(1, 1000000) g;",
        )
        .await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(
        &source,
        &dev,
        KEY,
        &[("public", "[accounts]\nkeep = [\"id\"]\nemail = \"email\"\n")],
    );
    // The unique index is built after the load: a single collision fails the refresh.
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);
    assert_eq!(
        dev.count("SELECT count(DISTINCT email) FROM accounts")
            .await,
        1_000_000
    );
    assert_eq!(
        dev.count("SELECT count(*) FROM accounts WHERE email LIKE '%@corp.example'")
            .await,
        0
    );
}

#[tokio::test]
async fn check_lists_every_problem_with_its_place() {
    let source = shop().await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", SHOP_RULES)]);
    let (out, _) = expect_exit(&ws.lethe(&["check"]), 0);
    assert!(out.starts_with("ok:"), "{out}");

    let broken = SHOP_RULES
        .replace("first_name = \"first_name\"", "first_name = \"frist_name\"")
        .replace(
            "score = { synth = \"int\", range = [1, 5] }",
            "score = { mask = \"email\" }\nemial = \"keep\"",
        )
        .replace("{last_name}", "{lastname}")
        .replace(
            "days = 60, by = [\"customer_id\"] }\nshipped_at",
            "days = \"60\", by = [\"customer_id\"] }\nshipped_at",
        );
    ws.write_rules("public", &broken);
    let (out, _) = expect_exit(&ws.lethe(&["check"]), 2);
    let file = ws.path().join("masking-rules/public.toml");
    let file = file.display();
    for expected in [
        format!(
            "{file}:4:14: public.customers.first_name: unknown masker `frist_name` (did you mean `first_name`?)"
        ),
        format!(
            "{file}:16:13: public.orders.placed_at: masker `date_shift`: invalid type: string \"60\", expected u64"
        ),
    ] {
        assert!(out.contains(&expected), "missing {expected}\n{out}");
    }
    // Found against the live schema, once the files parse.
    ws.write_rules(
        "public",
        &SHOP_RULES.replace("{last_name}", "{lastname}").replace(
            "score = { synth = \"int\", range = [1, 5] }",
            "score = \"email\"\nemial = \"keep\"",
        ),
    );
    let (out, _) = expect_exit(&ws.lethe(&["check"]), 2);
    for expected in [
        format!(
            "{file}:7:11: public.customers.contact: reads `lastname`, which is not a copied column of the table (did you mean `last_name`?)"
        ),
        format!("{file}:9:9: public.customers.score: produces text, but the column is integer"),
        format!("{file}:10:9: public.customers.emial: no such column in the source"),
    ] {
        assert!(out.contains(&expected), "missing {expected}\n{out}");
    }
    assert!(out.contains("3 problems"), "{out}");
    let mut seen = HashSet::new();
    assert!(
        out.lines().all(|l| seen.insert(l)),
        "a problem shown twice:\n{out}"
    );

    // Schedules are checked too: a bad cron line, zone or target, each in its place.
    ws.write_rules("public", SHOP_RULES);
    let schedules = ws.path().join("schedules");
    std::fs::create_dir(&schedules).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        schedules.join("nightly.toml"),
        "cron = \"30 2 * *\"\ntimezone = \"Europe/Berlin\"\ntargets = [\"dev\", \"qa\"]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (out, _) = expect_exit(&ws.lethe(&["check"]), 2);
    let file = schedules.join("nightly.toml");
    let file = file.display();
    assert!(
        out.contains(&format!("{file}:1:8: `30 2 * *` has 4 fields")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{file}:3:11: no target `qa` in lethe.toml (targets: dev)"
        )),
        "{out}"
    );
    std::fs::write(
        schedules.join("nightly.toml"),
        "cron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\ntargets = [\"dev\"]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    expect_exit(&ws.lethe(&["check"]), 0);
}
