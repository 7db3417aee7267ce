//! Big tables cut into pieces that several workers copy at once (PostgreSQL `ctid`
//! ranges, partition by partition for a partitioned table) arrive complete and identical
//! to a copy of each table in one piece: with holes left by DELETE and VACUUM, with
//! TOASTed values, and partitioned.

mod common;

use common::{KEY, TestDb, Workspace, expect_exit};

const SCHEMA: &str = "
CREATE TABLE holes (id bigint PRIMARY KEY, email text NOT NULL, note text NOT NULL);
INSERT INTO holes
SELECT g, 'user' || g || '@corp.example', repeat(md5(g::text), 4)
FROM generate_series(1, 40000) g;
DELETE FROM holes WHERE id % 3 = 0 OR id BETWEEN 10000 AND 15000;

CREATE TABLE toasted (id int PRIMARY KEY, email text NOT NULL, body text NOT NULL);
ALTER TABLE toasted ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO toasted
SELECT g, 'toast' || g || '@corp.example',
       (SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 100) i)
FROM generate_series(1, 3000) g;

CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, email text NOT NULL,
                     payload text NOT NULL, PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO events
SELECT g, date '2024-01-01' + (g % 700), 'event' || g || '@corp.example', repeat(md5(g::text), 3)
FROM generate_series(1, 40000) g;
";

/// Refills some of the holes after VACUUM, so live rows sit in pages between dead ones.
const REFILL: &str = "
INSERT INTO holes
SELECT g, 'user' || g || '@corp.example', repeat(md5(g::text), 4)
FROM generate_series(40001, 43000) g;
";

const RULES: &str = r#"
[holes]
keep = ["id", "note"]
email = "email"

[toasted]
keep = ["id", "body"]
email = "email"

[events]
keep = ["id", "at", "payload"]
email = "email"
"#;

/// Each table, and how it is ordered for a row-by-row comparison.
const TABLES: [(&str, &str); 3] = [("holes", "id"), ("toasted", "id"), ("events", "id, at")];

/// The same digest over the columns the rules keep, to compare with the source.
async fn kept_digest(db: &TestDb, table: &str, order: &str) -> String {
    let kept = match table {
        "holes" => "id || note",
        "toasted" => "id || body",
        _ => "id || at::text || payload",
    };
    db.md5_of(kept, table, order).await
}

#[tokio::test]
async fn tables_cut_into_pieces_arrive_whole_and_identical_to_one_piece_copies() {
    let source = TestDb::create("src").await;
    source.exec(SCHEMA).await;
    source.exec("VACUUM holes").await;
    source.exec(REFILL).await;
    source.exec("ANALYZE").await;
    assert!(
        source
            .count("SELECT count(*) FROM pg_class WHERE relname = 'toasted' AND reltoastrelid <> 0 AND pg_relation_size(reltoastrelid) > 1000000")
            .await
            == 1,
        "the bodies must be TOASTed"
    );

    let cut = TestDb::create("cut").await;
    let ws_cut = Workspace::new(&source, &cut, KEY, &[("public", RULES)]);
    let (_, log) = expect_exit(
        &ws_cut.lethe(&["refresh", "dev", "-j", "4", "--min-piece-kb", "128"]),
        0,
    );
    let whole = TestDb::create("whole").await;
    let ws_whole = Workspace::new(&source, &whole, KEY, &[("public", RULES)]);
    let (_, whole_log) = expect_exit(&ws_whole.lethe(&["refresh", "dev", "-j", "4"]), 0);

    for (table, _) in TABLES {
        assert!(
            log.lines()
                .any(|l| l.contains("copying in pieces") && l.contains(&format!("public.{table} "))),
            "{table} was not cut into pieces:\n{log}"
        );
        // The table is reported once, as a whole, not once per piece.
        let copied = log
            .lines()
            .filter(|l| l.contains("table copied") && l.contains(&format!("public.{table} ")))
            .count();
        assert_eq!(copied, 1, "{log}");
    }
    assert!(
        !whole_log.contains("copying in pieces"),
        "small tables stay whole by default:\n{whole_log}"
    );

    for (table, order) in TABLES {
        let count = format!("SELECT count(*) FROM {table}");
        assert_eq!(
            cut.count(&count).await,
            source.count(&count).await,
            "{table}"
        );
        assert_eq!(
            kept_digest(&cut, table, order).await,
            kept_digest(&source, table, order).await,
            "{table}: the kept columns differ from the source"
        );
        // Masking is deterministic: the cut copy equals the one-piece copy, row by row.
        assert_eq!(
            cut.digest(table, order).await,
            whole.digest(table, order).await,
            "{table}: the cut copy differs from the one-piece copy"
        );
    }
    // The partitions hold their rows in the cut copy, as in the source.
    for partition in ["events_2024", "events_2025"] {
        let count = format!("SELECT count(*) FROM ONLY {partition}");
        assert_eq!(cut.count(&count).await, source.count(&count).await);
    }
}
