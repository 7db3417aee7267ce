//! MySQL/MariaDB -> MySQL/MariaDB refreshes on a real server (`MYSQL_URL`, default the
//! local one): masked, exact for kept values, foreign keys kept, fail closed, never the
//! source, swapped in with the previous copy kept.

mod common;

use std::process::Output;

use common::expect_exit;
use common::mysql::{MyDb, connect};
use sqlx::AssertSqlSafe;

/// A folder with lethe.toml (source -> targets `dev` and `prod`, the latter the source
/// itself) and the rules of the source database.
fn workspace(source: &MyDb, dev: &MyDb, rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lethe.toml"),
        format!(
            "[source]\nurl = \"{}\"\n\n[targets.dev]\nurl = \"{}\"\n\n[targets.prod]\nurl = \"{}\"\nkeep_previous = 1\n\n[masking]\nkey = \"{}\"\n",
            source.url(),
            dev.url(),
            source.url(),
            common::KEY
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("masking-rules")).unwrap();
    std::fs::write(
        dir.path()
            .join("masking-rules")
            .join(format!("{}.toml", source.name)),
        rules,
    )
    .unwrap();
    dir
}

fn lethe(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--config")
        .arg(dir.path().join("lethe.toml"))
        .args(args)
        .env("LETHE_LOG", "lethe=info")
        .output()
        .unwrap_or_else(|e| panic!("cannot run lethe: {e}"))
}

const SCHEMA: &str = "
CREATE TABLE users (
  id INT AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(120) NOT NULL UNIQUE,
  full_name VARCHAR(100),
  phone VARCHAR(40),
  password_hash VARCHAR(100),
  balance DECIMAL(14,4),
  seen DATETIME(6),
  prefs JSON,
  avatar BLOB,
  notes TEXT,
  nick VARCHAR(20),
  score DOUBLE,
  name_upper VARCHAR(100) AS (UPPER(full_name)) VIRTUAL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  user_email VARCHAR(120),
  amount DECIMAL(10,2) NOT NULL,
  CONSTRAINT orders_user FOREIGN KEY (user_email) REFERENCES users (email)
) ENGINE=InnoDB;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40));
CREATE VIEW big_orders AS SELECT o.id, u.full_name FROM orders o JOIN users u ON u.email = o.user_email WHERE o.amount > 50;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (what) VALUES (CONCAT('order ', NEW.id));
INSERT INTO users (email, full_name, phone, password_hash, balance, seen, prefs, avatar, notes, nick, score) VALUES
  ('alice@corp.example', 'Alice Real', '+49 30 1234567', 'secret-hash-1', 12345678.1234, '2024-02-29 13:14:15.123456', '{\"a\": [1, 2.50, \"x\"], \"b\": null}', X'00FF10FE', 'emoji 😀\\ttab\\nnewline back\\\\slash', '', 1.5),
  ('bob@corp.example', 'Bob Real', '030 7654321', 'secret-hash-2', -0.0001, '1999-12-31 23:59:59.000001', '[]', X'', 'multi\\r\\nline', NULL, -2.25e-10),
  ('carol@corp.example', 'Carol Real', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'c', NULL);
INSERT INTO users (email) SELECT CONCAT('user', seq, '@corp.example') FROM (
  WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < 300) SELECT seq FROM n) s;
DELETE FROM users WHERE email = 'user300@corp.example';
INSERT INTO orders (user_email, amount) SELECT email, id * 1.25 FROM users;
INSERT INTO orders (user_email, amount) VALUES (NULL, 7.00);
";

const RULES: &str = "
[users]
keep = [\"id\", \"balance\", \"seen\", \"prefs\", \"avatar\", \"notes\", \"nick\", \"score\"]
email = { mask = \"email\", domain = \"customer_email\" }
full_name = \"full_name\"
phone = \"phone\"
password_hash = \"hash\"

[orders]
keep = [\"id\", \"amount\"]
user_email = { mask = \"email\", domain = \"customer_email\" }

[audit]
keep = [\"id\", \"what\"]
";

/// Every kept value of users, byte for byte (hex of what the server prints).
const KEPT: &str = "SELECT id, HEX(CAST(balance AS CHAR)), HEX(CAST(seen AS CHAR)), HEX(CAST(prefs AS CHAR)), HEX(avatar), HEX(notes), nick IS NULL, HEX(nick), HEX(CAST(score AS CHAR)) FROM users ORDER BY id";

#[tokio::test(flavor = "multi_thread")]
async fn mysql_refresh_masks_keeps_values_and_swaps() {
    let source = MyDb::create("src").await;
    let dev = MyDb::create("dev").await;
    source.exec(SCHEMA).await;
    dev.exec("CREATE TABLE stale (x INT); INSERT INTO stale VALUES (1);")
        .await;
    let dir = workspace(&source, &dev, RULES);

    let (out, err) = expect_exit(&lethe(&dir, &["refresh", "dev", "--no-progress"]), 0);
    assert!(
        format!("{out}{err}").contains("refreshed dev: 3 tables"),
        "{out}{err}"
    );
    // Masked: no real address, name, phone or hash is left; the rest is exact.
    assert_eq!(
        dev.one("SELECT count(*) FROM users WHERE email LIKE '%corp.example' OR full_name LIKE '%Real' OR phone IN ('+49 30 1234567', '030 7654321') OR password_hash LIKE 'secret%'").await,
        "0"
    );
    assert_eq!(dev.one("SELECT count(*) FROM users").await, "302");
    assert_eq!(source.rows(KEPT).await, dev.rows(KEPT).await);
    assert_eq!(
        dev.one("SELECT notes FROM users WHERE id = 1").await,
        "emoji 😀\ttab\nnewline back\\slash"
    );
    assert_eq!(
        dev.rows("SELECT nick FROM users WHERE id IN (1, 2) ORDER BY id")
            .await,
        vec![vec![Some(String::new())], vec![None]]
    );
    // The generated column is recomputed from the masked name.
    assert_eq!(
        dev.one("SELECT count(*) FROM users WHERE name_upper <> UPPER(full_name)")
            .await,
        "0"
    );
    // The foreign key survives on the masked key, and is still enforced.
    assert_eq!(
        dev.one("SELECT count(*) FROM orders o LEFT JOIN users u ON u.email = o.user_email WHERE o.user_email IS NOT NULL AND u.id IS NULL").await,
        "0"
    );
    assert_eq!(
        dev.one("SELECT count(*) FROM orders WHERE user_email IS NOT NULL")
            .await,
        "302"
    );
    assert_eq!(
        dev.one(&format!("SELECT count(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{}' AND REFERENCED_TABLE_NAME = 'users'", dev.name)).await,
        "1"
    );
    // The view and the trigger are live; the trigger did not fire during the load.
    assert_eq!(dev.one("SELECT count(*) FROM audit").await, "303");
    assert_eq!(
        dev.one("SELECT count(*) FROM big_orders").await,
        source.one("SELECT count(*) FROM big_orders").await
    );
    // AUTO_INCREMENT continues from the source's counter (past its deleted last id).
    let next = source
        .one(&format!("SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 'users'", source.name))
        .await;
    assert!(next.parse::<u64>().unwrap() >= 304, "{next}");
    dev.exec("INSERT INTO users (email) VALUES ('new@dev.example'); INSERT INTO orders (user_email, amount) VALUES ('new@dev.example', 1);").await;
    assert_eq!(
        dev.one("SELECT id FROM users WHERE email = 'new@dev.example'")
            .await,
        next
    );
    assert_eq!(dev.one("SELECT count(*) FROM audit").await, "304");
    // The stale table went to the previous copy with the rest of the old database.
    assert_eq!(
        dev.one(&format!("SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 'stale'", dev.name)).await,
        "0"
    );

    // A rerun writes the same stand-ins, and keeps the replaced copy.
    let emails =
        "SELECT id, email, full_name, phone, password_hash FROM users WHERE id < 304 ORDER BY id";
    let before_rerun = dev.one("SELECT count(*) FROM users").await;
    assert_eq!(before_rerun, "303");
    let first = dev.rows(emails).await;
    expect_exit(&lethe(&dir, &["refresh", "dev", "--no-progress"]), 0);
    assert_eq!(dev.rows(emails).await, first);
    assert_eq!(
        dev.one(&format!(
            "SELECT count(*) FROM `{}_lethe_prev`.users WHERE email = 'new@dev.example'",
            dev.name
        ))
        .await,
        "1"
    );
    assert_eq!(
        dev.one(&format!(
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}_lethe_shadow'",
            dev.name
        ))
        .await,
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_refresh_fails_closed_and_never_writes_the_source() {
    let source = MyDb::create("src").await;
    let dev = MyDb::create("dev").await;
    source.exec(SCHEMA).await;
    let dir = workspace(&source, &dev, RULES);
    expect_exit(&lethe(&dir, &["refresh", "dev", "--no-progress"]), 0);
    let before = dev.rows("SELECT * FROM users ORDER BY id").await;

    // A new column in the source without a rule: refused, the live copy untouched.
    source
        .exec("ALTER TABLE users ADD COLUMN ssn VARCHAR(20)")
        .await;
    let (out, err) = expect_exit(&lethe(&dir, &["refresh", "dev", "--no-progress"]), 3);
    assert!(
        format!("{out}{err}").contains(&format!("{}.users.ssn", source.name)),
        "{out}{err}"
    );
    assert_eq!(dev.rows("SELECT * FROM users ORDER BY id").await, before);
    assert_eq!(
        dev.one(&format!(
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}_lethe_shadow'",
            dev.name
        ))
        .await,
        "0"
    );

    // Keys masked in different domains break the foreign key: the shadow is checked,
    // dropped, and the live copy stays.
    source.exec("ALTER TABLE users DROP COLUMN ssn").await;
    std::fs::write(
        dir.path()
            .join("masking-rules")
            .join(format!("{}.toml", source.name)),
        RULES.replace(
            "user_email = { mask = \"email\", domain = \"customer_email\" }",
            "user_email = { mask = \"email\", domain = \"other\" }",
        ),
    )
    .unwrap();
    let (out, err) = expect_exit(&lethe(&dir, &["refresh", "dev", "--no-progress"]), 1);
    assert!(
        format!("{out}{err}").contains("break foreign key orders_user"),
        "{out}{err}"
    );
    assert_eq!(dev.rows("SELECT * FROM users ORDER BY id").await, before);
    assert_eq!(
        dev.one(&format!(
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}_lethe_shadow'",
            dev.name
        ))
        .await,
        "0"
    );
    std::fs::write(
        dir.path()
            .join("masking-rules")
            .join(format!("{}.toml", source.name)),
        RULES,
    )
    .unwrap();

    // Another run holds the target's lock: this one does not start.
    let mut holder = connect().await;
    let lock = format!("SELECT GET_LOCK('lethe:{}', 10)", dev.name);
    sqlx::raw_sql(AssertSqlSafe(lock))
        .execute(&mut holder)
        .await
        .unwrap();
    let (out, err) = expect_exit(&lethe(&dir, &["refresh", "dev", "--no-progress"]), 1);
    assert!(
        format!("{out}{err}").contains("being refreshed by another lethe run"),
        "{out}{err}"
    );
    drop(holder);
    expect_exit(&lethe(&dir, &["refresh", "dev", "--no-progress"]), 0);

    // The source as a target: refused before anything is written.
    let (out, err) = expect_exit(&lethe(&dir, &["refresh", "prod", "--no-progress"]), 3);
    assert!(
        format!("{out}{err}").contains("is on the source server"),
        "{out}{err}"
    );
    assert_eq!(
        source.one(&format!(
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_lethe%'",
            source.name
        ))
        .await,
        "0"
    );
}

/// Every row of the copied tables, as the server prints them.
async fn copied(db: &MyDb) -> Vec<Vec<Vec<Option<String>>>> {
    let mut tables = Vec::new();
    for sql in [
        "SELECT * FROM users ORDER BY id",
        "SELECT * FROM orders ORDER BY id",
        "SELECT * FROM audit ORDER BY id",
    ] {
        tables.push(db.rows(sql).await);
    }
    tables
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_readers_start_together_or_fall_back_to_one_snapshot() {
    const ONE_SNAPSHOT: &str = "reading the source with one snapshot";
    let source = MyDb::create("src").await;
    source.exec(SCHEMA).await;

    let one = MyDb::create("one").await;
    let dir_one = workspace(&source, &one, RULES);
    expect_exit(
        &lethe(&dir_one, &["refresh", "dev", "--no-progress", "-j", "1"]),
        0,
    );

    // Three readers whose snapshots began under LOCK TABLES: the same rows as one.
    let three = MyDb::create("three").await;
    let dir_three = workspace(&source, &three, RULES);
    let (_, log) = expect_exit(
        &lethe(&dir_three, &["refresh", "dev", "--no-progress", "-j", "3"]),
        0,
    );
    assert!(!log.contains(ONE_SNAPSHOT), "{log}");
    assert_eq!(copied(&three).await, copied(&one).await);

    // A write transaction left open keeps LOCK TABLES waiting: after its wait the run
    // reads with one snapshot instead, and still copies the committed rows.
    let mut writer = connect().await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "USE `{}`; START TRANSACTION; UPDATE users SET nick = 'uncommitted' WHERE id = 1",
        source.name
    )))
    .execute(&mut writer)
    .await
    .unwrap();
    let held = MyDb::create("held").await;
    let dir_held = workspace(&source, &held, RULES);
    let (_, log) = expect_exit(
        &lethe(&dir_held, &["refresh", "dev", "--no-progress", "-j", "3"]),
        0,
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut writer)
        .await
        .unwrap();
    assert!(log.contains(ONE_SNAPSHOT), "{log}");
    assert_eq!(copied(&held).await, copied(&one).await);
}

/// A table keyed by an integer, with holes in its keys, cut into key ranges that several
/// readers (snapshots begun at one instant) stream at once.
const EVENTS: &str = "
CREATE TABLE events (id BIGINT UNSIGNED PRIMARY KEY, body TEXT, who VARCHAR(120)) ENGINE=InnoDB;
INSERT INTO events
  SELECT 1000 + a.n + 10 * b.n + 100 * c.n + 1000 * d.n + 10000 * e.n,
         REPEAT(CONCAT('event ', a.n, b.n, c.n, d.n, e.n, ' '), 12),
         CONCAT('user', a.n, b.n, c.n, d.n, e.n, '@corp.example')
  FROM (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
        UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a,
       (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
        UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b,
       (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
        UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c,
       (SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
        UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) d,
       (SELECT 0 n UNION ALL SELECT 1) e;
DELETE FROM events WHERE id % 7 = 0 OR id BETWEEN 5000 AND 9000;
ANALYZE TABLE events;
";

#[tokio::test(flavor = "multi_thread")]
async fn mysql_tables_cut_into_key_ranges_arrive_whole_and_identical_to_one_piece() {
    const RULES: &str = "[events]\nkeep = [\"id\", \"body\"]\nwho = \"email\"\n";
    const ROWS: &str = "SELECT id, MD5(body), who FROM events ORDER BY id";
    let source = MyDb::create("src").await;
    source.exec(EVENTS).await;

    let one = MyDb::create("one").await;
    let dir_one = workspace(&source, &one, RULES);
    let (_, log) = expect_exit(
        &lethe(&dir_one, &["refresh", "dev", "--no-progress", "-j", "1"]),
        0,
    );
    assert!(!log.contains("copying in pieces"), "{log}");

    let cut = MyDb::create("cut").await;
    let dir_cut = workspace(&source, &cut, RULES);
    let (_, log) = expect_exit(
        &lethe(
            &dir_cut,
            &[
                "refresh",
                "dev",
                "--no-progress",
                "-j",
                "3",
                "--min-piece-kb",
                "64",
            ],
        ),
        0,
    );
    assert!(
        log.contains("copying in pieces") && log.contains("pieces=3"),
        "{log}"
    );
    // Every row once, the kept ones exact, the masked ones as the one-piece copy has them.
    assert_eq!(cut.one("SELECT count(*) FROM events").await, "13713");
    assert_eq!(
        cut.rows("SELECT id, MD5(body) FROM events ORDER BY id")
            .await,
        source
            .rows("SELECT id, MD5(body) FROM events ORDER BY id")
            .await
    );
    assert_eq!(cut.rows(ROWS).await, one.rows(ROWS).await);
    assert_eq!(
        cut.one("SELECT count(*) FROM events WHERE who LIKE '%corp.example'")
            .await,
        "0"
    );
}
