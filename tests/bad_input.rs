//! Input that is wrong, or missing, says what is wrong: a rules file named for no schema,
//! and a CLI run with no `$USER`.

mod common;

use std::process::Command;

use common::{KEY, TestDb, Workspace, expect_exit};

const SCHEMA: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id int PRIMARY KEY, total int NOT NULL);
INSERT INTO users SELECT g, 'user' || g || '@corp.example' FROM generate_series(1, 10) g;
INSERT INTO sales.orders SELECT g, g * 10 FROM generate_series(1, 10) g;
";

const PUBLIC_RULES: &str = "[users]\nkeep = [\"id\"]\nemail = \"email\"\n";
const SALES_RULES: &str = "[orders]\nkeep = [\"id\", \"total\"]\n";

#[tokio::test]
async fn a_rules_file_named_for_no_copied_schema_is_named_in_the_refusal() {
    let source = TestDb::create("stray_src").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("stray_dev").await;
    // `sales` rules written to bench.toml: the name matches no schema of the source.
    let ws = Workspace::new(
        &source,
        &dev,
        KEY,
        &[("public", PUBLIC_RULES), ("bench", SALES_RULES)],
    );
    let bench = ws.path().join("masking-rules").join("bench.toml");
    let expected = format!(
        "{} matches no copied schema (the source has: public, sales)",
        bench.display()
    );

    let (stdout, stderr) = expect_exit(&ws.lethe(&["plan", "dev"]), 3);
    assert!(
        stdout.contains(&expected) || stderr.contains(&expected),
        "--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let (stdout, stderr) = expect_exit(&ws.lethe(&["check"]), 2);
    assert!(
        stdout.contains(&expected) || stderr.contains(&expected),
        "--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 3);
    assert!(stderr.contains(&expected), "{stderr}");

    // Renamed to the schema it is for, the same rules cover the source.
    std::fs::rename(&bench, ws.path().join("masking-rules").join("sales.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    expect_exit(&ws.lethe(&["plan", "dev"]), 0);
}

#[tokio::test]
async fn a_cli_run_without_user_is_recorded_under_the_os_user() {
    let source = TestDb::create("who_src").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("who_dev").await;
    let ws = Workspace::new(
        &source,
        &dev,
        KEY,
        &[("public", PUBLIC_RULES), ("sales", SALES_RULES)],
    );
    let id = Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `id -un`: {e}"));
    let os_user = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    assert!(!os_user.is_empty(), "`id -un` printed no name");

    let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--config")
        .arg(ws.config())
        .args(["refresh", "dev", "--no-progress"])
        .env("LETHE_TEST_SOURCE", &source.url)
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap_or_else(|e| panic!("cannot run lethe: {e}"));
    expect_exit(&out, 0);

    let (stdout, _) = expect_exit(&ws.lethe(&["runs", "--json"]), 0);
    let runs: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        runs[0]["trigger"].as_str(),
        Some(format!("cli:{os_user}").as_str()),
        "{stdout}"
    );
}
