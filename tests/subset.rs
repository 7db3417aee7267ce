//! Subsets on PostgreSQL beyond the conformance matrix: the bench dataset cut to a tenth
//! with every key validated and the plan's estimates kept, pseudonyms the same as in a
//! full copy, foreign keys into partitioned tables, `dangling = "null"`, `rows`, and
//! `follow_children = false`.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{KEY, TestDb, Workspace, expect_exit};

/// Adds `entries` (TOML lines) under `[targets.dev.subset]` in the workspace's lethe.toml.
fn with_subset(ws: &Workspace, entries: &str) {
    let config = std::fs::read_to_string(ws.config()).unwrap_or_else(|e| panic!("{e}"));
    ws.write_config(&config.replace(
        "[masking]",
        &format!("[targets.dev.subset]\n{entries}\n\n[masking]"),
    ));
}

/// A source made by `schema`, an empty dev, and a workspace with `rules` for `public`
/// and `subset` entries for dev.
async fn shop(schema: &str, rules: &str, subset: &str) -> (TestDb, TestDb, Workspace) {
    let source = TestDb::create("src").await;
    source.exec(schema).await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", rules)]);
    with_subset(&ws, subset);
    (source, dev, ws)
}

/// `lethe plan` lines `schema.table  (~N of ~M rows)  subset: ...`, as table -> N.
fn estimates(plan: &str) -> BTreeMap<String, i64> {
    plan.lines()
        .filter_map(|line| {
            let (table, rest) = line.split_once("  (~")?;
            let (estimate, _) = rest.split_once(" of ~")?;
            Some((table.trim().to_string(), estimate.parse().ok()?))
        })
        .collect()
}

async fn validated_keys(db: &TestDb) -> (i64, i64) {
    let all = db
        .count("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
        .await;
    let valid = db
        .count("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated")
        .await;
    (valid, all)
}

#[tokio::test]
async fn a_tenth_of_the_bench_keeps_every_key_valid_and_the_same_pseudonyms() {
    let (source, rules) = common::bench_source("src", "0.01").await;
    let dev = TestDb::create("dev").await;
    let staging = TestDb::create("staging").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", &rules)]);
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n\
         [targets.dev]\nurl = \"{}\"\n\n\
         [targets.dev.subset]\n\"public.customers\" = {{ percent = 10 }}\n\n\
         [targets.staging]\nurl = \"{}\"\n\n\
         [masking]\nkey = \"{KEY}\"\n",
        dev.url, staging.url
    ));

    let (plan, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    let planned = estimates(&plan);
    assert_eq!(planned.len(), 7, "{plan}");
    assert!(
        plan.contains("public.customers  (~1000 of ~10000 rows)  subset: root: 10% sample"),
        "{plan}"
    );
    assert!(plan.contains("subset: children of public.orders"), "{plan}");
    assert!(
        plan.contains(
            "public.products  (~200 of ~200 rows)  subset: parents of public.order_items"
        ),
        "{plan}"
    );

    expect_exit(&ws.lethe(&["refresh", "dev", "--jobs", "2"]), 0);
    let (valid, all) = validated_keys(&dev).await;
    assert_eq!((valid, all), (6, 6), "every foreign key is built VALID");
    let customers = dev.count("SELECT count(*) FROM customers").await;
    assert!(
        (800..=1200).contains(&customers),
        "a 10% sample of 10,000 customers: {customers}"
    );
    // Every order of a chosen customer came along, and nothing else.
    let chosen: Vec<i64> = dev
        .column("SELECT id::text FROM customers")
        .await
        .into_iter()
        .flatten()
        .map(|id| id.parse().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let in_list = chosen
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        source
            .count(&format!(
                "SELECT count(*) FROM orders WHERE customer_id IN ({in_list})"
            ))
            .await,
        dev.count("SELECT count(*) FROM orders").await
    );

    // The same pseudonym as in a full copy.
    expect_exit(&ws.lethe(&["refresh", "staging"]), 0);
    assert_eq!(
        staging.count("SELECT count(*) FROM customers").await,
        10_000
    );
    assert_eq!(
        emails(&dev, &in_list).await,
        emails(&staging, &in_list).await
    );

    // The same sample on the next run.
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let again: Vec<i64> = dev
        .column("SELECT id::text FROM customers")
        .await
        .into_iter()
        .flatten()
        .map(|id| id.parse().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let sorted = |mut v: Vec<i64>| {
        v.sort_unstable();
        v
    };
    assert_eq!(sorted(again), sorted(chosen));
}

/// The masked e-mails of the customers `in_list`, by id.
async fn emails(db: &TestDb, in_list: &str) -> Vec<Vec<Option<String>>> {
    db.rows(&format!(
        "SELECT id::text, email FROM customers WHERE id IN ({in_list}) ORDER BY id"
    ))
    .await
}

/// At scale 0.1 (1.3M rows), where a 10% sample is big enough for its counts to settle
/// near their expectation, every table's rows are within 10% of what `plan` estimated.
#[tokio::test]
async fn the_copy_has_the_rows_the_plan_estimated() {
    let (source, rules) = common::bench_source("src", "0.1").await;
    let dev = TestDb::create("dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", &rules)]);
    with_subset(&ws, "\"public.customers\" = { percent = 10 }");
    let (plan, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    let planned = estimates(&plan);
    assert_eq!(planned.len(), 7, "{plan}");
    expect_exit(&ws.lethe(&["refresh", "dev", "--jobs", "2"]), 0);
    assert_eq!(validated_keys(&dev).await, (6, 6));
    for (table, estimate) in &planned {
        let name = table.trim_start_matches("public.");
        let rows = dev.count(&format!("SELECT count(*) FROM {name}")).await;
        let off = (rows - estimate).abs() as f64 / (*estimate).max(1) as f64;
        assert!(
            off <= 0.10,
            "{table}: plan estimated {estimate}, the copy has {rows}"
        );
    }
}

const PARTITIONED: &str = "
CREATE TABLE sensors (id int PRIMARY KEY, site text NOT NULL);
CREATE TABLE readings (id int NOT NULL, day date NOT NULL, sensor_id int NOT NULL REFERENCES sensors(id),
                       value numeric NOT NULL, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
CREATE TABLE readings_2025 PARTITION OF readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE readings_2026 PARTITION OF readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE notes (id int PRIMARY KEY, reading_id int NOT NULL, reading_day date NOT NULL, body text,
                    FOREIGN KEY (reading_id, reading_day) REFERENCES readings (id, day));
INSERT INTO sensors SELECT g, 'site ' || g FROM generate_series(1, 20) g;
INSERT INTO readings SELECT g, date '2025-06-01' + (g % 400), 1 + g % 20, g FROM generate_series(1, 2000) g;
INSERT INTO notes SELECT g, g * 7, date '2025-06-01' + ((g * 7) % 400), 'note ' || g FROM generate_series(1, 200) g;
";

const PARTITIONED_RULES: &str = r#"
[sensors]
keep = ["id", "site"]
[readings]
keep = ["id", "day", "sensor_id", "value"]
[notes]
keep = ["id", "reading_id", "reading_day", "body"]
"#;

#[tokio::test]
async fn keys_into_a_partitioned_table_pull_their_rows_from_every_partition() {
    let (source, dev, ws) = shop(
        PARTITIONED,
        PARTITIONED_RULES,
        "\"public.notes\" = { where = \"id % 10 = 0\" }\n\
         \"public.sensors\" = { rows = 0 }",
    )
    .await;
    let (plan, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    assert!(plan.contains("public.readings  (~"), "{plan}");
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let (valid, all) = validated_keys(&dev).await;
    assert!(valid == all && all >= 2, "{valid} of {all} keys valid");
    assert_eq!(dev.count("SELECT count(*) FROM notes").await, 20);
    // Each chosen note's reading, from both partitions, and the sensors they need, even
    // though sensors' own entry chooses none.
    let readings = source
        .count(
            "SELECT count(*) FROM readings WHERE (id, day) IN \
             (SELECT reading_id, reading_day FROM notes WHERE id % 10 = 0)",
        )
        .await;
    assert_eq!(dev.count("SELECT count(*) FROM readings").await, readings);
    assert!(dev.count("SELECT count(*) FROM readings_2025").await > 0);
    assert!(dev.count("SELECT count(*) FROM readings_2026").await > 0);
    assert_eq!(
        dev.count("SELECT count(DISTINCT sensor_id) FROM readings")
            .await,
        dev.count("SELECT count(*) FROM sensors").await
    );
}

const SHOP: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE coupons (id int PRIMARY KEY, code text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
                     coupon_id int REFERENCES coupons(id));
CREATE TABLE audit_log (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), what text);
CREATE TABLE reviews (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), stars int);
INSERT INTO customers SELECT g, 'Real Name ' || g FROM generate_series(1, 100) g;
INSERT INTO coupons SELECT g, 'C' || g FROM generate_series(1, 30) g;
INSERT INTO orders SELECT g, 1 + g % 100, CASE WHEN g % 3 = 0 THEN 1 + g % 30 END FROM generate_series(1, 400) g;
INSERT INTO audit_log SELECT g, 1 + g % 100, 'login' FROM generate_series(1, 300) g;
INSERT INTO reviews SELECT g, 1 + (g * 3) % 100, g % 5 FROM generate_series(1, 50) g;
";

const SHOP_RULES: &str = r#"
[customers]
keep = ["id"]
name = "full_name"
[coupons]
keep = ["id", "code"]
[orders]
keep = ["id", "customer_id", "coupon_id"]
[audit_log]
keep = ["id", "customer_id", "what"]
[reviews]
keep = ["id", "customer_id", "stars"]
"#;

#[tokio::test]
async fn dangling_keys_are_cleared_and_rows_and_follow_children_are_kept() {
    let (_source, dev, ws) = shop(
        SHOP,
        SHOP_RULES,
        "\"public.customers\" = { rows = 10, follow_children = false }\n\
         \"public.orders\" = { where = \"id <= 60\", dangling = \"null\" }\n\
         \"public.coupons\" = { rows = 0 }\n\
         \"public.audit_log\" = { rows = 0 }",
    )
    .await;
    let (plan, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    assert!(
        plan.contains("NULL where the parent is left out: coupon_id"),
        "{plan}"
    );
    assert!(plan.contains("public.reviews  (~"), "{plan}");
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(validated_keys(&dev).await, (4, 4));
    assert_eq!(dev.count("SELECT count(*) FROM orders").await, 60);
    assert_eq!(dev.count("SELECT count(*) FROM coupons").await, 0);
    assert_eq!(
        dev.count("SELECT count(*) FROM orders WHERE coupon_id IS NOT NULL")
            .await,
        0,
        "coupon keys are cleared, not their coupons pulled in"
    );
    assert_eq!(dev.count("SELECT count(*) FROM audit_log").await, 0);
    // The ten sampled customers and the customers of the 60 orders; reviews are not
    // followed down from customers (follow_children = false), so none come.
    let needed: HashMap<i64, ()> = (1..=60).map(|o| (1 + o % 100, ())).collect();
    let customers = dev.count("SELECT count(*) FROM customers").await;
    assert!(
        customers >= needed.len() as i64 && customers <= needed.len() as i64 + 10,
        "{customers}"
    );
    assert_eq!(dev.count("SELECT count(*) FROM reviews").await, 0);
}

const EVENTS: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE events (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
                     kind text NOT NULL, note text, at date NOT NULL, email text UNIQUE);
INSERT INTO customers SELECT g, 'Real Name ' || g FROM generate_series(1, 1000) g;
INSERT INTO events VALUES (1, 1, 'real', 'a real secret', '2024-01-01', 'real@corp.example');
";

const EVENTS_RULES: &str = r#"
[customers]
keep = ["id"]
name = "full_name"

[events]
synthetic = { rows = 100000 }
keep = ["id", "customer_id"]
kind = { synth = "choice", values = ["click", "view", "buy"] }
note = { synth = "lorem", words = [3, 8] }
at = { synth = "date", between = ["2024-01-01", "2025-12-31"] }
email = "email"
"#;

/// A digest of every row of `events`, in id order.
async fn events_digest(db: &TestDb) -> Vec<Option<String>> {
    db.column("SELECT md5(string_agg(e::text, '|' ORDER BY id)) FROM events e")
        .await
}

#[tokio::test]
async fn a_synthetic_table_draws_its_keys_from_a_subsetted_parent_and_validates() {
    let (_source, dev, ws) = shop(
        EVENTS,
        EVENTS_RULES,
        "\"public.customers\" = { where = \"id <= 100\" }",
    )
    .await;
    let (plan, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    assert!(
        plan.contains("public.events  (~100000 of ~")
            && plan.contains("subset: synthetic: 100000 generated rows, production's never read"),
        "{plan}"
    );
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(validated_keys(&dev).await, (1, 1));
    assert_eq!(dev.count("SELECT count(*) FROM customers").await, 100);
    assert_eq!(dev.count("SELECT count(*) FROM events").await, 100_000);
    assert_eq!(
        dev.count("SELECT count(DISTINCT customer_id) FROM events")
            .await,
        100,
        "keys drawn from every copied customer, and only from them"
    );
    assert_eq!(
        dev.count("SELECT count(DISTINCT email) FROM events").await,
        100_000,
        "a unique column stays unique"
    );
    assert_eq!(
        dev.count(
            "SELECT count(*) FROM events WHERE note LIKE '%real%' OR email LIKE '%corp.example' \
             OR kind NOT IN ('click', 'view', 'buy') OR at NOT BETWEEN '2024-01-01' AND '2025-12-31'"
        )
        .await,
        0,
        "production's rows are never read; generated values follow their rules"
    );
    assert_eq!(
        dev.count("SELECT last_value FROM events_id_seq").await,
        100_000,
        "the id sequence continues after the generated rows, not at production's"
    );
    let first = events_digest(&dev).await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(
        events_digest(&dev).await,
        first,
        "the same rows on every run"
    );

    // A column that cannot be generated is refused before anything is touched.
    ws.write_rules(
        "public",
        &EVENTS_RULES
            .replace(
                "keep = [\"id\", \"customer_id\"]",
                "keep = [\"id\", \"customer_id\", \"note\"]",
            )
            .replace("note = { synth = \"lorem\", words = [3, 8] }\n", ""),
    );
    let out = ws.lethe(&["refresh", "dev"]);
    let (stdout, stderr) = expect_exit(&out, 2);
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("public.toml:8:")
            && said
                .contains("public.events.note: a synthetic table has no production value to keep"),
        "{said}"
    );
    assert_eq!(events_digest(&dev).await, first);
}
