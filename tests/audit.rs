//! The run history against a real PostgreSQL: what `lethe refresh` records, what `lethe
//! runs` shows, that no source value ever reaches either, and both backends.

mod common;

use common::{KEY, TestDb, Workspace, expect_exit};
use sha2::{Digest, Sha256};

/// Recognisable personal data in the source: none of it may reach the history.
const PII: &[&str] = &[
    "Zebediah Quackenbush",
    "zebediah.q@private-mail.example",
    "+44 7700 900461",
    "Hortensia Vanderplank",
    "XK-9931-SECRET",
];

const SCHEMA: &str = "
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    phone text
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users(id),
    amount numeric(10,2) NOT NULL
);
INSERT INTO users (email, name, phone) VALUES
    ('zebediah.q@private-mail.example', 'Zebediah Quackenbush', '+44 7700 900461'),
    ('h.v@private-mail.example', 'Hortensia Vanderplank', NULL);
INSERT INTO users (email, name, phone)
SELECT 'user' || g || '@corp.example', 'Person ' || g, NULL FROM generate_series(1, 98) g;
INSERT INTO orders (user_id, amount) SELECT 1 + g % 100, g FROM generate_series(1, 250) g;
";

const RULES: &str = r#"
[users]
keep = ["id"]
email = "email"
name = "full_name"
phone = "phone"

[orders]
keep = ["id", "user_id", "amount"]
"#;

/// The trigger a CLI run of this process's user records.
fn cli_trigger() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        // Without them, lethe names the process's OS user, as `id -un` does.
        .unwrap_or_else(|| {
            let id = std::process::Command::new("id").arg("-un").output();
            id.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        });
    format!("cli:{user}")
}

/// `lethe runs --json`, parsed.
fn runs_json(ws: &Workspace, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["runs", "--json"];
    all.extend_from_slice(args);
    let (stdout, _) = expect_exit(&ws.lethe(&all), 0);
    assert_no_pii("lethe runs --json", &stdout);
    match serde_json::from_str(&stdout) {
        Ok(serde_json::Value::Array(runs)) => runs,
        other => panic!("not a JSON array: {other:?}\n{stdout}"),
    }
}

fn assert_no_pii(what: &str, text: &str) {
    for value in PII {
        assert!(
            !text.contains(value),
            "{what} holds the source value {value}"
        );
    }
}

/// A succeeded run, then one that fails on an unmapped column, checked through `lethe
/// runs` whichever backend the workspace uses.
async fn succeeded_then_failed(ws: &Workspace, source: &TestDb) {
    let (plan, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    let fingerprint = plan
        .lines()
        .find_map(|l| l.strip_prefix("rules sha256: "))
        .unwrap_or_else(|| panic!("no fingerprint in the plan:\n{plan}"))
        .to_owned();
    let config_sha256: String = Sha256::digest(std::fs::read(ws.config()).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    let (stdout, _) = expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert!(
        stdout.contains("refreshed dev: 2 tables, 350 rows"),
        "{stdout}"
    );
    let runs = runs_json(ws, &[]);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["target"], "dev");
    assert_eq!(run["trigger"], cli_trigger());
    assert_eq!(run["profile"], serde_json::Value::Null);
    assert_eq!(run["rows"], 350);
    assert_eq!(run["error"], serde_json::Value::Null);
    assert_eq!(run["rules_sha256"], fingerprint.as_str());
    assert_eq!(run["config_sha256"], config_sha256.as_str());
    assert!(run["duration_secs"].as_f64().unwrap() > 0.0, "{run}");
    let id = run["id"].as_i64().unwrap();
    assert!(stdout.contains(&format!("run {id}")), "{stdout}");
    let mut tables: Vec<(String, u64)> = run["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!(
                    "{}.{}",
                    t["schema"].as_str().unwrap(),
                    t["table"].as_str().unwrap()
                ),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        [
            ("public.orders".to_owned(), 250),
            ("public.users".to_owned(), 100)
        ]
    );
    assert!(run["tables"][0]["bytes"].as_u64().unwrap() > 0);

    source
        .exec(
            "ALTER TABLE users ADD COLUMN secret_note text;
             UPDATE users SET secret_note = 'XK-9931-SECRET' WHERE id = 1;",
        )
        .await;
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 3);
    assert!(stderr.contains("public.users.secret_note"), "{stderr}");

    let runs = runs_json(ws, &[]);
    assert_eq!(runs.len(), 2);
    let failed = &runs[0];
    assert!(
        failed["id"].as_i64().unwrap() > id,
        "newest first: {runs:?}"
    );
    assert_eq!(failed["outcome"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("public.users.secret_note"), "{error}");
    assert_eq!(failed["tables"], serde_json::json!([]));
    assert_eq!(failed["rows"], serde_json::Value::Null);
    // The rules loaded, so the failed run still says which ones it had.
    assert_eq!(failed["rules_sha256"], fingerprint.as_str());

    assert_eq!(runs_json(ws, &["--target", "dev", "--limit", "1"]).len(), 1);
    assert!(runs_json(ws, &["--target", "staging"]).is_empty());

    let (table, _) = expect_exit(&ws.lethe(&["runs"]), 0);
    assert_no_pii("lethe runs", &table);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("OUTCOME"),
        "{table}"
    );
    assert!(
        lines[1].contains("failed") && lines[1].contains("refusing"),
        "{table}"
    );
    assert!(
        lines[2].contains("succeeded") && lines[2].contains("350"),
        "{table}"
    );
}

#[tokio::test]
async fn refresh_is_recorded_in_the_sqlite_history_without_a_source_value() {
    let source = TestDb::create("asrc").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("adev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);

    succeeded_then_failed(&ws, &source).await;

    // The default history is a SQLite file beside lethe.toml; search every byte of it
    // (and of its write-ahead log) for the source values.
    let mut files = 0;
    for entry in std::fs::read_dir(ws.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("lethe-audit.sqlite") {
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert_no_pii(&name, &String::from_utf8_lossy(&bytes));
        }
    }
    assert!(files >= 1, "no lethe-audit.sqlite beside lethe.toml");
}

#[tokio::test]
async fn refresh_is_recorded_in_a_postgres_history() {
    let source = TestDb::create("asrc").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("adev").await;
    let audit = TestDb::create("aaudit").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    let config = std::fs::read_to_string(ws.config()).unwrap();
    ws.write_config(&format!("{config}\n[audit]\nurl = \"{}\"\n", audit.url));

    succeeded_then_failed(&ws, &source).await;

    assert!(
        !ws.path().join("lethe-audit.sqlite").exists(),
        "no SQLite file with a PostgreSQL history"
    );
    let outcomes = audit
        .column("SELECT outcome FROM lethe_audit.runs ORDER BY id")
        .await;
    assert_eq!(
        outcomes,
        [Some("succeeded".to_owned()), Some("failed".to_owned())]
    );
    let everything = audit
        .column(
            "SELECT coalesce((SELECT string_agg(r::text, '|') FROM lethe_audit.runs r), '')
                 || coalesce((SELECT string_agg(t::text, '|') FROM lethe_audit.run_tables t), '')",
        )
        .await;
    let everything = everything[0].clone().unwrap();
    assert!(
        everything.contains("public.users.secret_note"),
        "{everything}"
    );
    assert_no_pii("lethe_audit tables", &everything);
}

#[tokio::test]
async fn a_history_that_cannot_be_opened_stops_the_refresh_before_anything() {
    let source = TestDb::create("asrc").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("adev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    let config = std::fs::read_to_string(ws.config()).unwrap();
    ws.write_config(&format!(
        "{config}\n[audit]\nurl = \"sqlite://{}/no-such-folder/audit.sqlite\"\n",
        ws.path().display()
    ));

    let (stdout, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("no-such-folder/audit.sqlite"), "{stderr}");
    assert!(stderr.contains("nothing was refreshed"), "{stderr}");
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
            .await,
        0
    );
    let (help, _) = expect_exit(&ws.lethe(&["refresh", "--help"]), 0);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("the refresh does not start"), "{help}");
}

#[tokio::test]
async fn a_run_stopped_by_sigterm_is_recorded_as_cancelled() {
    use sqlx::Connection;

    let source = TestDb::create("asrc").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("adev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);

    // Hold a lock the run must wait for, so that it is surely mid-run when stopped.
    let mut holder = source.connect().await;
    sqlx::raw_sql("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--config")
        .arg(ws.config())
        .args(["refresh", "dev"])
        .env("LETHE_TEST_SOURCE", &source.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let mut tries = 0;
    while source.count(waiting).await == 0 {
        tries += 1;
        assert!(tries < 300, "the run never waited for the lock");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    holder.close().await.unwrap();

    let runs = runs_json(&ws, &[]);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "cancelled");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("cancelled before the swap"),
        "{}",
        runs[0]
    );
}
