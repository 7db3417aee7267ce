//! The embedded engine end to end: `lethe demo`, and SQLite -> SQLite refreshes with the
//! same promises as PostgreSQL (fail closed, never half a file, never the source).

use std::path::Path;
use std::process::{Command, Output};

fn lethe(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .current_dir(dir)
        .args(args)
        .env("LETHE_LOG", "lethe=info")
        .output()
        .unwrap_or_else(|e| panic!("cannot run lethe: {e}"))
}

fn expect(out: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit {:?}, expected {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status.code()
    );
    format!("{stdout}{stderr}")
}

fn sqlite(file: &Path, sql: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nr=c.executescript(sys.argv[2]) if sys.argv[3]=='w' else c.execute(sys.argv[2]).fetchall()\nc.commit()\nprint(r if sys.argv[3]=='r' else '')",
        ])
        .arg(file)
        .arg(sql)
        .arg(if sql.trim_start().to_uppercase().starts_with("SELECT") { "r" } else { "w" })
        .output()
        .unwrap_or_else(|e| panic!("python3 with sqlite3 is needed for this test: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A project in `d`: source `prod.db` (filled by `prod_sql`), the targets `targets` (TOML
/// tables after `[source]`), a masking key, and `rules` as `masking-rules/main.toml`.
fn project(d: &Path, prod_sql: &str, targets: &str, rules: &str) {
    sqlite(&d.join("prod.db"), prod_sql);
    std::fs::create_dir(d.join("masking-rules")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        d.join("lethe.toml"),
        format!(
            "[source]\nurl = \"sqlite://prod.db\"\n{targets}[masking]\nkey = \"sqlite-test-key-0123456789\"\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(d.join("masking-rules/main.toml"), rules).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_demo_masks_everything_and_shows_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = expect(
        &lethe(dir.path(), &["demo", "--dir", "demo", "--customers", "300"]),
        0,
    );
    assert!(out.contains("refreshed dev: 3 tables, 1650 rows"), "{out}");
    assert!(out.contains(": 0 real values in dev"), "{out}");
    let demo = dir.path().join("demo");
    // The real e-mail addresses exist in prod and nowhere in dev.
    let prod = sqlite(
        &demo.join("prod.sqlite"),
        "SELECT count(*) FROM customers WHERE email LIKE '%@gmail.com'",
    );
    assert_ne!(prod, "[(0,)]");
    let dev = sqlite(
        &demo.join("dev.sqlite"),
        "SELECT count(*) FROM customers WHERE email LIKE '%@gmail.com' OR prefs LIKE '%gmail.com%'",
    );
    assert_eq!(dev, "[(0,)]");
    let tickets = sqlite(
        &demo.join("dev.sqlite"),
        "SELECT count(*) FROM tickets WHERE body LIKE '%@web.de%' OR body LIKE '%@gmail.com%'",
    );
    assert_eq!(tickets, "[(0,)]");
    // The written config works as a normal one, and a second demo run replaces the first.
    let out = expect(&lethe(&demo, &["plan", "dev"]), 0);
    assert!(out.contains("every column has a rule"), "{out}");
    expect(
        &lethe(dir.path(), &["demo", "--dir", "demo", "--customers", "50"]),
        0,
    );
    // It never overwrites a lethe.toml that it did not write.
    std::fs::write(dir.path().join("lethe.toml"), "[source]\n").unwrap_or_else(|e| panic!("{e}"));
    let out = expect(&lethe(dir.path(), &["demo", "--dir", "."]), 2);
    assert!(out.contains("did not write"), "{out}");
}

#[test]
fn sqlite_refresh_fails_closed_and_keeps_the_previous_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    project(
        d,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, score REAL, avatar BLOB);
         CREATE TABLE visits (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER REFERENCES users(id), at TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO users SELECT i, 'user' || i || '@corp.example', 'Real Name ' || i, i * 0.5, x'00ff10' FROM n;
         INSERT INTO visits (user_id, at) SELECT id, '2024-01-01' FROM users;
         CREATE TRIGGER no_touch AFTER INSERT ON visits BEGIN UPDATE users SET score = -1; END;",
        "[targets.dev]\nurl = \"sqlite://dev.db\"\n[targets.prod]\nurl = \"sqlite://./prod.db\"\n",
        "[users]\nkeep = [\"id\", \"score\", \"avatar\"]\nemail = \"email\"\nname = \"full_name\"\n\n[visits]\nkeep = [\"id\", \"user_id\", \"at\"]\n",
    );

    let out = expect(&lethe(d, &["refresh", "dev", "--no-progress"]), 0);
    assert!(out.contains("refreshed dev: 2 tables, 1000 rows"), "{out}");
    let dev = d.join("dev.db");
    assert_eq!(
        sqlite(
            &dev,
            "SELECT count(*) FROM users WHERE email LIKE '%corp.example'"
        ),
        "[(0,)]"
    );
    // Kept values keep their types (a blob stays a blob, a real a real); the trigger
    // exists but did not fire during the load; AUTOINCREMENT continues.
    assert_eq!(
        sqlite(
            &dev,
            "SELECT typeof(avatar), hex(avatar), typeof(score), score FROM users WHERE id = 3"
        ),
        "[('blob', '00FF10', 'real', 1.5)]"
    );
    assert_eq!(
        sqlite(&dev, "SELECT count(*) FROM users WHERE score = -1"),
        "[(0,)]"
    );
    assert_eq!(
        sqlite(
            &dev,
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
        ),
        "[(1,)]"
    );
    assert_eq!(
        sqlite(
            &dev,
            "SELECT seq FROM sqlite_sequence WHERE name = 'visits'"
        ),
        "[(500,)]"
    );
    let first = sqlite(&dev, "SELECT group_concat(email) FROM users");

    // Same key, same rows: a rerun writes the same stand-ins; the old file is kept.
    expect(&lethe(d, &["refresh", "dev", "--no-progress"]), 0);
    assert_eq!(sqlite(&dev, "SELECT group_concat(email) FROM users"), first);
    assert!(d.join("dev.db.lethe-prev").exists());

    // Keys masked apart break the foreign key: the new copy is refused, dev stays.
    std::fs::write(
        d.join("masking-rules/main.toml"),
        "[users]\nkeep = [\"id\", \"score\", \"avatar\"]\nemail = \"email\"\nname = \"full_name\"\n\n[visits]\nkeep = [\"id\", \"at\"]\nuser_id = { mask = \"noise\", percent = 50 }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let before = std::fs::read(&dev).unwrap_or_else(|e| panic!("{e}"));
    let out = expect(&lethe(d, &["refresh", "dev", "--no-progress"]), 1);
    assert!(
        out.contains("break a foreign key in the new copy (0 in the source)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&dev).unwrap_or_else(|e| panic!("{e}")),
        before
    );
    assert!(!d.join("dev.db.lethe-new").exists());
    std::fs::write(
        d.join("masking-rules/main.toml"),
        "[users]\nkeep = [\"id\", \"score\", \"avatar\"]\nemail = \"email\"\nname = \"full_name\"\n\n[visits]\nkeep = [\"id\", \"user_id\", \"at\"]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // A new column in prod without a rule: refused before anything is written.
    sqlite(&d.join("prod.db"), "ALTER TABLE users ADD COLUMN ssn TEXT;");
    let before = std::fs::read(&dev).unwrap_or_else(|e| panic!("{e}"));
    let out = expect(&lethe(d, &["refresh", "dev", "--no-progress"]), 3);
    assert!(out.contains("main.users.ssn"), "{out}");
    assert_eq!(
        std::fs::read(&dev).unwrap_or_else(|e| panic!("{e}")),
        before
    );
    assert!(!d.join("dev.db.lethe-new").exists());
    let out = expect(&lethe(d, &["check"]), 2);
    assert!(
        out.contains("main.users.ssn: the column has no rule"),
        "{out}"
    );

    // The source is never a target.
    let out = expect(&lethe(d, &["refresh", "prod", "--no-progress"]), 3);
    assert!(out.contains("is the source database file"), "{out}");
}

#[test]
fn sqlite_text_arrives_as_the_bytes_stored_and_masked_text_is_text() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    // Text that is not UTF-8 (SQLite stores what it is given), text in several scripts,
    // and the same in a masked column.
    project(
        d,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, kept TEXT, masked TEXT);
         INSERT INTO notes VALUES
           (1, CAST(x'ff41fe' AS TEXT), CAST(x'c3' AS TEXT)),
           (2, 'Zoë ☕ 東京', 'alice@corp.example'),
           (3, '', NULL);",
        "[targets.dev]\nurl = \"sqlite://dev.db\"\n",
        "[notes]\nkeep = [\"id\", \"kept\"]\nmasked = \"email\"\n",
    );
    expect(&lethe(d, &["refresh", "dev", "--no-progress"]), 0);
    let kept = "SELECT id, typeof(kept), hex(kept) FROM notes ORDER BY id";
    assert_eq!(
        sqlite(&d.join("dev.db"), kept),
        sqlite(&d.join("prod.db"), kept)
    );
    let masked = sqlite(
        &d.join("dev.db"),
        "SELECT id, typeof(masked), masked LIKE '%@%', masked = 'alice@corp.example' \
         FROM notes ORDER BY id",
    );
    assert_eq!(
        masked,
        "[(1, 'text', 1, 0), (2, 'text', 1, 0), (3, 'null', None, None)]"
    );
}

#[test]
fn sqlite_tables_copied_at_once_and_in_rowid_ranges_arrive_whole() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    // Tables read a batch of rowids at a time, several at once on one connection: holes,
    // deleted rows, the smallest and largest rowids, more rows than a batch. And tables
    // read in one statement: without a rowid, or with every name of it taken by columns.
    project(
        d,
        "CREATE TABLE people (id INTEGER PRIMARY KEY, n INTEGER, b BLOB, email TEXT);
         WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < 3000)
           INSERT INTO people SELECT i * 3, i, randomblob(i % 5), 'p' || i || '@corp.example' FROM x;
         INSERT INTO people VALUES (-9223372036854775808, -1, NULL, 'min@corp.example'),
           (9223372036854775807, -2, x'00', 'max@corp.example'), (-5, -3, NULL, NULL);
         DELETE FROM people WHERE id % 7 = 0 AND id BETWEEN 1 AND 9000;
         CREATE TABLE pairs (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
         WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < 1500)
           INSERT INTO pairs SELECT 'k' || i, i FROM x;
         CREATE TABLE shadowed (rowid INTEGER, _rowid_ TEXT, oid REAL);
         WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < 1200)
           INSERT INTO shadowed SELECT i, 'r' || i, i / 2.0 FROM x;
         CREATE TABLE renamed (rowid TEXT, v INTEGER);
         WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < 2100)
           INSERT INTO renamed SELECT 'r' || i, i FROM x;",
        "[targets.dev]\nurl = \"sqlite://dev.db\"\n",
        "[people]\nkeep = [\"id\", \"n\", \"b\"]\nemail = \"email\"\n\
         [pairs]\nkeep = [\"k\", \"v\"]\n\
         [shadowed]\nkeep = [\"rowid\", \"_rowid_\", \"oid\"]\n\
         [renamed]\nkeep = [\"rowid\", \"v\"]\n",
    );
    // Tables whole, then cut into rowid ranges (a piece of at least 1 KiB).
    for pieces in [&[][..], &["--min-piece-kb", "1"]] {
        let mut args = vec!["refresh", "dev", "--no-progress", "--jobs", "3"];
        args.extend_from_slice(pieces);
        let out = expect(&lethe(d, &args), 0);
        assert!(out.contains("4 tables, 7375 rows"), "{out}");
        assert_eq!(
            out.contains("copying in pieces table=main.people pieces=3"),
            !pieces.is_empty(),
            "{out}"
        );
        for kept in [
            "SELECT id, n, hex(b) FROM people ORDER BY id",
            "SELECT * FROM pairs ORDER BY k",
            "SELECT * FROM shadowed ORDER BY 1",
            "SELECT * FROM renamed ORDER BY v",
        ] {
            let (dev, prod) = (
                sqlite(&d.join("dev.db"), kept),
                sqlite(&d.join("prod.db"), kept),
            );
            assert!(dev == prod, "{kept}: the copy differs from the source");
        }
        let masked = "SELECT count(*), count(email), count(DISTINCT email), \
             sum(email LIKE '%@corp.example') FROM people";
        assert_eq!(sqlite(&d.join("dev.db"), masked), "[(2575, 2574, 2574, 0)]");
    }
}
