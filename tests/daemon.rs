//! `lethe daemon` end to end against a real PostgreSQL: the binary runs on a free
//! loopback port, tests talk to it over HTTP and stop it with SIGTERM.

mod common;

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{KEY, TestDb, Workspace, expect_exit};
use serde_json::Value;
use tokio::process::{Child, Command};

/// How long anything the tests wait for may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(40);
/// What a service manager grants between SIGTERM and SIGKILL.
const STOP_WITHIN: Duration = Duration::from_secs(30);
const TOKEN: &str = "ci-token-0123456789abcdef";

const SOURCE: &str = "
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);
INSERT INTO users (email) SELECT 'user' || g || '@corp.example' FROM generate_series(1, 200) g;
";

const RULES: &str = "[users]\nkeep = [\"id\"]\nemail = \"email\"\n";

/// A source with 200 users, an empty dev, and a workspace whose lethe.toml adds
/// `target_extra` to the dev target (hooks) and a `[daemon]` on a free loopback port
/// with quick retries.
async fn setup(target_extra: &str) -> (TestDb, TestDb, Workspace) {
    let source = TestDb::create("dsrc").await;
    source.exec(SOURCE).await;
    let dev = TestDb::create("ddev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    write_config(&ws, &dev, target_extra);
    (source, dev, ws)
}

fn write_config(ws: &Workspace, dev: &TestDb, target_extra: &str) {
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n[targets.dev]\nurl = \"{}\"\n{target_extra}\n\n\
         [masking]\nkey = \"{KEY}\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\nattempts = 2\nretry_backoff_secs = 1\n",
        dev.url
    ));
}

/// Writes `hook.sql` beside lethe.toml and returns the target line that runs it.
fn hook(ws: &Workspace, sql: &str) -> &'static str {
    std::fs::write(ws.path().join("hook.sql"), sql).unwrap_or_else(|e| panic!("{e}"));
    "after_refresh = [\"hook.sql\"]"
}

fn schedule(ws: &Workspace, name: &str, cron: &str) {
    let dir = ws.path().join("schedules");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!("cron = \"{cron}\"\ntargets = [\"dev\"]\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A `lethe daemon` process, its stderr in a file.
struct Daemon {
    child: Child,
    log: PathBuf,
    /// `http://127.0.0.1:<port>`.
    base: String,
}

impl Daemon {
    /// Starts it and waits for its "listening on" line.
    async fn start(ws: &Workspace, tag: &str, tokens: Option<&str>) -> Self {
        let log = ws.path().join(format!("{tag}.log"));
        let source =
            std::fs::read_to_string(ws.path().join("source.url")).unwrap_or_else(|e| panic!("{e}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_lethe"));
        command
            .arg("--config")
            .arg(ws.config())
            .args(["daemon", "--jobs", "2"])
            .env("LETHE_TEST_SOURCE", source)
            .env("LETHE_LOG", "lethe=info")
            .env_remove("LETHE_API_TOKENS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")))
            .kill_on_drop(true);
        if let Some(tokens) = tokens {
            command.env("LETHE_API_TOKENS", tokens);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run lethe: {e}"));
        let mut daemon = Self {
            child,
            log,
            base: String::new(),
        };
        let started = Instant::now();
        while daemon.base.is_empty() {
            if let Some(address) = daemon
                .log()
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '"').next())
            {
                daemon.base = address.to_owned();
            } else if started.elapsed() > PATIENCE
                || daemon.child.try_wait().ok().flatten().is_some()
            {
                panic!("the daemon did not start:\n{}", daemon.log());
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM; returns the exit status and how long the process took to exit.
    async fn terminate(&mut self) -> (ExitStatus, Duration) {
        let pid = self
            .child
            .id()
            .unwrap_or_else(|| panic!("the daemon already exited"));
        let sent = Instant::now();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(kill.success());
        match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => (status.unwrap_or_else(|e| panic!("{e}")), sent.elapsed()),
            Err(_) => panic!("the daemon did not exit after SIGTERM:\n{}", self.log()),
        }
    }

    /// Stops it and checks it stopped cleanly and in time.
    async fn stop(mut self) -> String {
        let (status, took) = self.terminate().await;
        let log = self.log();
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(took < STOP_WITHIN, "took {took:?}\n{log}");
        log
    }
}

/// One request; the status and the JSON body (Null when the body is not JSON).
async fn call(method: reqwest::Method, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    call(reqwest::Method::GET, url, token).await
}

async fn post(url: &str, token: Option<&str>) -> (u16, Value) {
    call(reqwest::Method::POST, url, token).await
}

/// Polls `check` every 100 ms until it gives a value; fails with `what` and the log.
async fn eventually<T, F, Fut>(daemon: &Daemon, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "timed out waiting for {what}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of one metric line (`name{labels}`), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn a_schedule_refreshes_the_target_and_probes_and_metrics_show_it() {
    let (_source, dev, ws) = setup("").await;
    schedule(&ws, "every", "* * * * * *");
    let check = ws.lethe(&["daemon", "--check"]);
    let (stdout, _) = expect_exit(&check, 0);
    assert!(
        stdout.contains("every: `* * * * * *` in UTC -> dev"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("  ")).count(), 5);

    let daemon = Daemon::start(&ws, "d", None).await;
    assert_eq!(get(&daemon.url("/healthz"), None).await.0, 200);
    let (status, ready) = get(&daemon.url("/readyz"), None).await;
    assert_eq!(status, 200, "{ready}");

    let (d, db) = (&daemon, &dev);
    let rows = eventually(d, "the scheduled run to fill dev", || async move {
        let present = db
            .count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'users'")
            .await;
        if present == 1 {
            Some(db.count("SELECT count(*) FROM users").await)
        } else {
            None
        }
    })
    .await;
    assert_eq!(rows, 200);
    // Masked on the way.
    assert_eq!(
        dev.count("SELECT count(*) FROM users WHERE email LIKE '%@corp.example'")
            .await,
        0
    );

    let text = eventually(d, "the metrics of a finished run", || async move {
        let text = reqwest::get(d.url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metric(
            &text,
            "lethe_runs_total{target=\"dev\",outcome=\"succeeded\"}",
        )
        .filter(|n| *n >= 1.0)
        .map(|_| text)
    })
    .await;
    for series in [
        "lethe_rows_copied_total{target=\"dev\"}",
        "lethe_bytes_copied_total{target=\"dev\"}",
        "lethe_run_duration_seconds_count{target=\"dev\"}",
        "lethe_last_success_timestamp_seconds{target=\"dev\"}",
    ] {
        assert!(
            metric(&text, series).is_some_and(|v| v >= 1.0),
            "{series}:\n{text}"
        );
    }
    assert!(
        metric(&text, "lethe_rows_copied_total{target=\"dev\"}").is_some_and(|v| v >= 200.0),
        "{text}"
    );
    assert!(
        text.contains("lethe_runs_in_progress{target=\"dev\"}"),
        "{text}"
    );

    // Without tokens the API is open on loopback; runs name their schedule.
    let (status, runs) = get(&daemon.url("/v1/runs"), None).await;
    assert_eq!(status, 200);
    let runs = runs["runs"].as_array().cloned().unwrap_or_default();
    assert!(
        runs.iter().any(|r| r["status"] == "succeeded"
            && r["trigger"] == "schedule:every"
            && r["progress"]["rows"] == 200),
        "{runs:?}"
    );
    daemon.stop().await;

    // The run history keeps the daemon's runs, table by table, after it is gone.
    let out = ws.lethe(&["runs", "--json"]);
    let (stdout, _) = common::expect_exit(&out, 0);
    let history: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let history = history.as_array().cloned().unwrap_or_default();
    assert!(
        history.iter().any(|r| r["trigger"] == "schedule:every"
            && r["outcome"] == "succeeded"
            && r["tables"].as_array().is_some_and(|t| !t.is_empty())),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_api_needs_a_token_refuses_a_second_run_and_serves_refresh_via() {
    let (_source, dev, ws) = setup("").await;
    let hook = hook(&ws, "SELECT pg_sleep(2);");
    write_config(&ws, &dev, hook);
    let daemon = Daemon::start(
        &ws,
        "d",
        Some(&format!("ci:{TOKEN},ops:ops-token-0123456789abcdef")),
    )
    .await;
    let refresh = daemon.url("/v1/targets/dev/refresh");

    let (status, body) = post(&refresh, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string());
    assert_eq!(
        post(&refresh, Some("ci-token-0123456789abcdeX")).await.0,
        401
    );
    assert_eq!(get(&daemon.url("/v1/runs"), None).await.0, 401);
    // Probes and metrics stay open.
    assert_eq!(get(&daemon.url("/healthz"), None).await.0, 200);
    assert_eq!(
        post(&daemon.url("/v1/targets/nope/refresh"), Some(TOKEN))
            .await
            .0,
        404
    );

    let (status, body) = post(&refresh, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["run_id"].as_str().unwrap_or_default().to_owned();
    // The hook keeps the run going for 2 s: a second trigger finds the target busy.
    let (status, body) = post(&refresh, Some("ops-token-0123456789abcdef")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["run_id"], id.as_str());

    let run_url = daemon.url(&format!("/v1/runs/{id}"));
    let run = eventually(&daemon, "the API run to end", || async {
        let (_, run) = get(&run_url, Some(TOKEN)).await;
        matches!(run["status"].as_str(), Some("succeeded" | "failed")).then_some(run)
    })
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "api:ci");
    assert_eq!(run["progress"]["phase"], "done");

    // `lethe refresh --via` asks the daemon and follows the run; it needs no lethe.toml.
    let via = |token: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"));
        command
            .args([
                "--config",
                "/nonexistent/lethe.toml",
                "refresh",
                "dev",
                "--via",
            ])
            .arg(&daemon.base)
            .env_remove("LETHE_API_TOKEN");
        if let Some(token) = token {
            command.env("LETHE_API_TOKEN", token);
        }
        command
    };
    let refused = tokio::task::spawn_blocking({
        let mut command = via(None);
        move || command.output()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = expect_exit(&refused, 2);
    assert!(stderr.contains("LETHE_API_TOKEN"), "{stderr}");
    let done = tokio::task::spawn_blocking({
        let mut command = via(Some(TOKEN));
        move || command.output()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = expect_exit(&done, 0);
    assert!(
        stdout.contains("run ") && stdout.contains("refreshed dev"),
        "{stdout}"
    );
    assert!(stderr.contains("checking"), "progress lines: {stderr}");
    daemon.stop().await;
}

#[tokio::test]
async fn sigterm_mid_run_keeps_the_previous_copy_and_exits_0_in_time() {
    let (source, dev, ws) = setup("").await;
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(dev.count("SELECT count(*) FROM users").await, 200);
    source
        .exec("INSERT INTO users (email) SELECT 'late' || g || '@corp.example' FROM generate_series(1, 100) g")
        .await;
    let hook = hook(&ws, "SELECT pg_sleep(5);");
    write_config(&ws, &dev, hook);
    let daemon = Daemon::start(&ws, "d", None).await;
    let (status, body) = post(&daemon.url("/v1/targets/dev/refresh"), None).await;
    assert_eq!(status, 202, "{body}");
    let id = body["run_id"].as_str().unwrap_or_default().to_owned();
    // The hook runs in the shadow after the copy: the new copy is built, not yet swapped.
    let run_url = daemon.url(&format!("/v1/runs/{id}"));
    eventually(&daemon, "the run to reach its hook", || async {
        let (_, run) = get(&run_url, None).await;
        (run["progress"]["phase"] == "checking").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = daemon.stop().await;
    assert!(log.contains("run cancelled"), "{log}");
    assert_eq!(dev.count("SELECT count(*) FROM users").await, 200);
    assert_eq!(
        dev.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe_shadow%'")
            .await,
        0
    );
}

#[tokio::test]
async fn two_daemons_never_refresh_one_target_at_the_same_time() {
    let (_source, dev, ws) = setup("").await;
    // A schema lethe does not copy: what each run's hook writes there outlives the swap.
    // Each hook records when it ran, sleeping a second in between, under the target's
    // lock: two runs at once would record overlapping spans.
    dev.exec("CREATE SCHEMA hooklog; CREATE TABLE hooklog.spans (started timestamptz, ended timestamptz)")
        .await;
    let hook = hook(
        &ws,
        "CREATE TEMP TABLE span AS SELECT clock_timestamp() AS started;\n\
         SELECT pg_sleep(1);\n\
         INSERT INTO hooklog.spans SELECT started, clock_timestamp() FROM span;\n",
    );
    // `lock_wait = "0s"`: a run that finds the target held is refused at once, not queued.
    write_config(&ws, &dev, &format!("{hook}\nlock_wait = \"0s\""));
    schedule(&ws, "every", "* * * * * *");
    let first = Daemon::start(&ws, "first", None).await;
    let second = Daemon::start(&ws, "second", None).await;

    let db = &dev;
    eventually(&first, "three hook spans", || async move {
        (db.count("SELECT count(*) FROM hooklog.spans").await >= 3).then_some(())
    })
    .await;
    let busy = |daemon: &Daemon| {
        let url = daemon.url("/v1/runs?limit=1000");
        async move {
            let (_, runs) = get(&url, None).await;
            runs["runs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| {
                    r["status"] == "skipped"
                        && r["error"]
                            .as_str()
                            .is_some_and(|e| e.contains("another lethe run"))
                })
                .count()
        }
    };
    let refused = busy(&first).await + busy(&second).await;
    let first_log = first.stop().await;
    let second_log = second.stop().await;
    assert!(
        refused >= 1,
        "no run was refused by the target's lock\n--- first\n{first_log}\n--- second\n{second_log}"
    );
    let overlapping = dev
        .count(
            "SELECT count(*) FROM hooklog.spans a JOIN hooklog.spans b
             ON a.ctid < b.ctid AND a.started < b.ended AND b.started < a.ended",
        )
        .await;
    assert_eq!(overlapping, 0, "two runs refreshed dev at once");
    assert!(
        first_log.contains("skipped: already refreshing"),
        "{first_log}"
    );
}

#[tokio::test]
async fn an_open_or_production_api_without_tokens_is_refused_and_production_logs_json() {
    let (_source, dev, ws) = setup("").await;
    let config = std::fs::read_to_string(ws.config()).unwrap_or_else(|e| panic!("{e}"));
    ws.write_config(&config.replace("127.0.0.1:0", "0.0.0.0:0"));
    let (_, stderr) = expect_exit(&ws.lethe(&["daemon"]), 2);
    assert!(stderr.contains("without tokens"), "{stderr}");
    let (stdout, _) = expect_exit(&ws.lethe(&["daemon", "--check"]), 2);
    assert!(stdout.contains("LETHE_API_TOKENS"), "{stdout}");

    write_config(&ws, &dev, "");
    let production = std::fs::read_to_string(ws.config()).unwrap_or_else(|e| panic!("{e}"));
    ws.write_config(&production.replace("[daemon]", "[daemon]\nmode = \"production\""));
    let (_, stderr) = expect_exit(&ws.lethe(&["daemon"]), 2);
    assert!(stderr.contains("needs API tokens"), "{stderr}");

    let daemon = Daemon::start(&ws, "prod", Some(&format!("ci:{TOKEN}"))).await;
    assert_eq!(get(&daemon.url("/healthz"), None).await.0, 200);
    let log = daemon.stop().await;
    for line in log.lines() {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["message"].is_string(),
            "{line}"
        );
    }
    assert!(
        log.contains("\"message\":\"listening on http://127.0.0.1:"),
        "{log}"
    );
}
