//! Tokens with roles and targets against a real daemon and real PostgreSQL databases:
//! what each role may do works, what it may not is a 403 that says what it may do,
//! logged with the token's id and counted; rollback and cancel work over the API.
//! (Every route against every role, without a database: `daemon::api` unit tests.)

mod common;
mod daemon_support;

use common::{KEY, TestDb, Workspace, expect_exit};
use daemon_support::Daemon;
use serde_json::Value;

/// The legacy `id:token` form: admin on every target.
const OPS: &str = "ops-token-0123456789abcdef";
const CI: &str = "ci-token-0123456789abcdef";
const DASH: &str = "dash-token-0123456789abcdef";

const SOURCE: &str = "
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);
INSERT INTO users (email) SELECT 'user' || g || '@corp.example' FROM generate_series(1, 200) g;
";

const RULES: &str = "[users]\nkeep = [\"id\"]\nemail = \"email\"\n";

async fn call(method: reqwest::Method, url: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(url: &str, token: &str) -> (u16, Value) {
    call(reqwest::Method::POST, url, token).await
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    call(reqwest::Method::GET, url, token).await
}

/// Triggers a refresh of `target` as `token` and waits for it to end; returns the run.
async fn refresh(daemon: &Daemon, target: &str, token: &str) -> Value {
    let (status, body) = post(&daemon.url(&format!("/v1/targets/{target}/refresh")), token).await;
    assert_eq!(status, 202, "{body}");
    let run = daemon.url(&format!(
        "/v1/runs/{}",
        body["run_id"].as_str().unwrap_or("")
    ));
    daemon
        .eventually("the run to end", || async {
            let (_, run) = get(&run, token).await;
            matches!(run["status"].as_str(), Some("succeeded" | "failed")).then_some(run)
        })
        .await
}

#[tokio::test]
async fn each_role_does_what_it_may_and_is_refused_the_rest() {
    let source = TestDb::create("rsrc").await;
    source.exec(SOURCE).await;
    let dev = TestDb::create("rdev").await;
    let staging = TestDb::create("rstg").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n[targets.dev]\nurl = \"{}\"\n\n\
         [targets.staging]\nurl = \"{}\"\n\n[masking]\nkey = \"{KEY}\"\n\n\
         [daemon]\nlisten = \"127.0.0.1:0\"\nattempts = 1\n",
        dev.url, staging.url
    ));
    let tokens = format!("ops:{OPS},ci:{CI}:refresh:dev,dash:{DASH}:read");

    // --check says what each token may do; a token for a target lethe.toml lacks stops it.
    let mut check = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"));
    check
        .arg("--config")
        .arg(ws.config())
        .args(["daemon", "--check"])
        .env("LETHE_TEST_SOURCE", "postgres://unused@127.0.0.1:1/x")
        .env("LETHE_API_TOKENS", &tokens);
    let (stdout, _) = expect_exit(&check.output().unwrap_or_else(|e| panic!("{e}")), 0);
    assert!(
        stdout.contains(
            "tokens: ops (admin on all targets), ci (refresh on dev), dash (read on all targets)"
        ),
        "{stdout}"
    );
    check.env("LETHE_API_TOKENS", format!("ci:{CI}:refresh:qa"));
    let (stdout, _) = expect_exit(&check.output().unwrap_or_else(|e| panic!("{e}")), 2);
    assert!(stdout.contains("names target `qa`"), "{stdout}");
    assert!(!stdout.contains(CI), "{stdout}");

    let daemon = Daemon::start(&ws, "roles", Some(&tokens)).await;

    // refresh on dev: triggers it, sees it, but not staging.
    let run = refresh(&daemon, "dev", CI).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "api:ci");
    assert_eq!(dev.count("SELECT count(*) FROM users").await, 200);
    let (status, body) = post(&daemon.url("/v1/targets/staging/refresh"), CI).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"],
        "token `ci` may not refresh `staging`: its role `refresh` may see, trigger and cancel runs, on dev"
    );
    let (status, _) = get(&daemon.url("/v1/runs?target=staging"), CI).await;
    assert_eq!(status, 403);
    let (status, body) = post(&daemon.url("/v1/targets/dev/rollback"), CI).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("may not rollback `dev`")
    );

    // read: sees every run, triggers and cancels nothing.
    let (status, listed) = get(&daemon.url("/v1/runs"), DASH).await;
    assert_eq!(status, 200);
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");
    let (status, _) = post(&daemon.url("/v1/targets/dev/refresh"), DASH).await;
    assert_eq!(status, 403);
    let id = run["run_id"].as_str().unwrap_or("");
    let (status, _) = post(&daemon.url(&format!("/v1/runs/{id}/cancel")), DASH).await;
    assert_eq!(status, 403);
    // refresh may cancel, but this run is over.
    let (status, body) = post(&daemon.url(&format!("/v1/runs/{id}/cancel")), CI).await;
    assert_eq!(status, 409, "{body}");

    // admin (the legacy id:token form) rolls dev back to the copy before its last refresh.
    source
        .exec("INSERT INTO users (email) SELECT 'late' || g || '@corp.example' FROM generate_series(1, 50) g")
        .await;
    let run = refresh(&daemon, "dev", OPS).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(dev.count("SELECT count(*) FROM users").await, 250);
    let (status, body) = post(&daemon.url("/v1/targets/dev/rollback"), OPS).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schemas"], serde_json::json!(["public"]), "{body}");
    assert_eq!(dev.count("SELECT count(*) FROM users").await, 200);
    // staging never had a copy made by lethe: nothing to roll back, nothing changed.
    let (status, body) = post(&daemon.url("/v1/targets/staging/rollback"), OPS).await;
    assert_eq!(status, 409, "{body}");

    // `lethe refresh --via` says what the token may do, and exits 2 (the user must fix it).
    let via = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args([
            "--config",
            "/nonexistent/lethe.toml",
            "refresh",
            "staging",
            "--via",
        ])
        .arg(&daemon.base)
        .env("LETHE_API_TOKEN", CI)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = expect_exit(&via, 2);
    assert!(stderr.contains("may not refresh `staging`"), "{stderr}");

    let metrics = reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    for line in [
        "lethe_api_denied_total{token=\"ci\",action=\"refresh\"} 2",
        "lethe_api_denied_total{token=\"ci\",action=\"read\"} 1",
        "lethe_api_denied_total{token=\"ci\",action=\"rollback\"} 1",
        "lethe_api_denied_total{token=\"dash\",action=\"refresh\"} 1",
        "lethe_api_denied_total{token=\"dash\",action=\"cancel\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
    let log = daemon.stop().await;
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused: outside the token's role or targets"))
        .collect();
    assert_eq!(refusals.len(), 6, "{log}");
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("token=ci") && l.contains("rollback") && l.contains("target=dev")),
        "{log}"
    );
    for token in [OPS, CI, DASH] {
        assert!(!log.contains(token), "a token in the log:\n{log}");
    }

    // The history keeps each table's figures, its copy time among them.
    let (stdout, _) = expect_exit(&ws.lethe(&["runs", "--json"]), 0);
    let history: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let tables = &history[0]["tables"];
    assert_eq!(tables[0]["table"], "users", "{stdout}");
    assert!(tables[0]["seconds"].is_number(), "{stdout}");
    drop((source, dev, staging));
}
