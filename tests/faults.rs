//! Fault tests against a real PostgreSQL and the real `lethe` binary: a run that is killed,
//! a source that drops the run, a target that rejects a row, and readers during the swap.
//! Each checks "never half a database": dev serves the previous copy, whole, until a run
//! succeeds, and a failed or killed run leaves nothing behind that the next run cannot clean.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::process::{Child, Command};

use common::{KEY, TestDb, Workspace, expect_exit};

/// How long a run may take to reach its copy, or to exit, before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);
/// How often the tests look at the databases while a run is under way.
const POLL: Duration = Duration::from_millis(20);

const EVENTS_SCHEMA: &str =
    "CREATE TABLE events (id bigint PRIMARY KEY, email text NOT NULL, note text);";

/// Masking `email` makes the copy CPU-bound in lethe, so the source's COPY stays open
/// (waiting for lethe to take more) for most of the copy.
const EVENTS_RULES: &str = "[events]\nkeep = [\"id\", \"note\"]\nemail = \"hash\"\n";

/// Rows of the previous, good copy.
const SMALL: i64 = 1_000;
/// Rows that keep a run copying for a few seconds (about 27 MB of COPY text; a debug
/// build masks ~150k rows/s on one core, a release build ~400k rows/s), long enough to be
/// caught in flight by polling every 20 ms.
const BIG: i64 = 600_000;

fn insert_events(from: i64, to: i64) -> String {
    format!(
        "INSERT INTO events SELECT g, 'user' || g || '@corp.example', 'note ' || g
         FROM generate_series({from}, {to}) g;"
    )
}

/// A source with `SMALL` events, refreshed once into dev (the "previous copy"), then grown
/// to `BIG` events so the next run takes a while. Returns the previous copy's content.
async fn refreshed_then_grown(tag: &str) -> (TestDb, TestDb, Workspace, Vec<u8>) {
    let source = TestDb::create(&format!("{tag}_src")).await;
    source
        .exec(&format!("{EVENTS_SCHEMA}{}", insert_events(1, SMALL)))
        .await;
    let dev = TestDb::create(&format!("{tag}_dev")).await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", EVENTS_RULES)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let previous = dev.copy_out("SELECT * FROM events").await;
    assert_eq!(dev.count("SELECT count(*) FROM events").await, SMALL);
    source.exec(&insert_events(SMALL + 1, BIG)).await;
    (source, dev, ws, previous)
}

/// A `lethe refresh dev` running in the background, its output going to files.
struct Run {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Run {
    fn start(ws: &Workspace, source: &TestDb, tag: &str) -> Self {
        let stdout = ws.path().join(format!("{tag}.stdout"));
        let stderr = ws.path().join(format!("{tag}.stderr"));
        let file = |path: &PathBuf| {
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let child = Command::new(env!("CARGO_BIN_EXE_lethe"))
            .arg("--config")
            .arg(ws.config())
            .args(["refresh", "dev"])
            .env("LETHE_TEST_SOURCE", &source.url)
            .env("LETHE_LOG", "lethe=info")
            .stdin(Stdio::null())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            // A failing test must not leave a refresh running.
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run lethe: {e}"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (at most `PATIENCE`) for the run to end by itself.
    async fn finish(mut self) -> Output {
        let status = match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.unwrap_or_else(|e| panic!("waiting for lethe: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "lethe did not exit within {PATIENCE:?}\n--- stderr\n{}",
                    self.stderr()
                );
            }
        };
        Output {
            status,
            stdout: std::fs::read(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read(&self.stderr).unwrap_or_default(),
        }
    }
}

/// Waits until the run is in the middle of its copy: its shadow schema exists in dev, a
/// lethe `COPY ... FROM STDIN` into dev has loaded rows, and (with `source`) the source's
/// `COPY ... TO STDOUT` is still running. Fails clearly if the run ends first or never
/// gets there.
async fn wait_for_copy_in_flight(run: &mut Run, dev: &TestDb, source: Option<&TestDb>) {
    let mut dev_conn = dev.connect().await;
    let mut source_conn = match source {
        Some(source) => Some(source.connect().await),
        None => None,
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (shadow, loading): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname LIKE 'lethe\\_shadow\\_%'),
                    EXISTS (SELECT 1 FROM pg_stat_progress_copy p
                            JOIN pg_stat_activity a ON a.pid = p.pid
                            WHERE p.datname = current_database() AND p.command = 'COPY FROM'
                              AND a.application_name = 'lethe' AND p.tuples_processed > 0)",
        )
        .fetch_one(&mut dev_conn)
        .await
        .unwrap_or_else(|e| panic!("polling dev: {e}"));
        let reading = match source_conn.as_mut() {
            Some(conn) => sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                WHERE datname = current_database() AND application_name = 'lethe'
                                  AND state = 'active' AND query LIKE 'COPY%')",
            )
            .fetch_one(conn)
            .await
            .unwrap_or_else(|e| panic!("polling the source: {e}")),
            None => true,
        };
        if shadow && loading && reading {
            return;
        }
        if let Some(status) = run.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            panic!(
                "lethe ended ({status}) before its copy was caught in flight (shadow schema: \
                 {shadow}, COPY into dev with rows: {loading}, source COPY running: {reading}); \
                 make BIG larger for this machine\n--- stderr\n{}",
                run.stderr()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "no copy in flight within {PATIENCE:?} (shadow schema: {shadow}, COPY into dev \
                 with rows: {loading}, source COPY running: {reading})\n--- stderr\n{}",
                run.stderr()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The `lethe_*` schemas of a database, with their comments.
async fn lethe_schemas(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows(
        "SELECT nspname::text, obj_description(oid, 'pg_namespace') FROM pg_namespace
         WHERE nspname LIKE 'lethe\\_%' ORDER BY 1",
    )
    .await
}

async fn shadow_count(db: &TestDb) -> i64 {
    db.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe\\_shadow\\_%'")
        .await
}

/// Waits until no lethe session is connected to `db` (a killed client's backends notice
/// the closed socket and exit on their own; until then one may still hold the refresh lock).
async fn wait_for_no_lethe_sessions(db: &TestDb) {
    let mut conn = db.connect().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE 'lethe%'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("polling {}: {e}", db.name));
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} lethe sessions still connected to {} after {PATIENCE:?}",
            db.name
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Never half a database: after `kill -9` mid-copy dev serves the previous copy, and the next run cleans up.
#[tokio::test]
async fn kill_9_mid_copy_keeps_the_previous_copy_and_the_next_run_cleans_up() {
    let (source, dev, ws, previous) = refreshed_then_grown("kill").await;

    let mut run = Run::start(&ws, &source, "killed");
    wait_for_copy_in_flight(&mut run, &dev, None).await;
    run.child
        .kill()
        .await
        .unwrap_or_else(|e| panic!("cannot kill lethe: {e}"));
    let status = run.child.wait().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        status.signal(),
        Some(9),
        "lethe was meant to die of SIGKILL: {status}"
    );

    // Dev answers at once, with exactly the previous copy.
    assert_eq!(dev.count("SELECT count(*) FROM events").await, SMALL);
    assert!(
        dev.copy_out("SELECT * FROM events").await == previous,
        "dev no longer holds the previous copy after a killed run"
    );
    // The killed run stranded its (marked) shadow, and its sessions go away by themselves.
    let schemas = lethe_schemas(&dev).await;
    assert!(
        schemas.contains(&vec![
            Some("lethe_shadow_public".into()),
            Some("lethe shadow".into())
        ]),
        "expected the killed run's marked shadow schema, found {schemas:?}"
    );
    wait_for_no_lethe_sessions(&dev).await;
    wait_for_no_lethe_sessions(&source).await;
    assert!(dev.copy_out("SELECT * FROM events").await == previous);

    let (stdout, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert!(
        stdout.contains(&format!("1 tables, {BIG} rows")),
        "{stdout}"
    );
    assert!(
        stderr.contains("dropped a shadow schema left by an earlier run")
            && stderr.contains("lethe_shadow_public"),
        "the next run should say it dropped the stranded shadow\n{stderr}"
    );
    assert_eq!(dev.count("SELECT count(*) FROM events").await, BIG);
    assert_eq!(shadow_count(&dev).await, 0);
    // The copy that was live before is now the previous one.
    assert!(dev.copy_out("SELECT * FROM lethe_prev_public.events").await == previous);
}

/// A source COPY terminated mid-copy fails the run (exit 1, table named); dev is untouched, no shadow left.
#[tokio::test]
async fn source_backend_terminated_mid_copy_fails_naming_the_table_and_leaves_dev_as_it_was() {
    let (source, dev, ws, previous) = refreshed_then_grown("term").await;
    let schemas_before = lethe_schemas(&dev).await;

    let mut run = Run::start(&ws, &source, "terminated");
    wait_for_copy_in_flight(&mut run, &dev, Some(&source)).await;
    let mut admin = source.connect().await;
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'lethe'
           AND state = 'active' AND query LIKE 'COPY%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("pg_terminate_backend: {e}"));
    assert_eq!(
        terminated,
        1,
        "expected to terminate the one source COPY in flight\n--- stderr\n{}",
        run.stderr()
    );

    let (_, stderr) = expect_exit(&run.finish().await, 1);
    // When the backend is terminated while blocked sending COPY data, PostgreSQL closes
    // the connection without an error message (the client is not reading), so the cause
    // lethe can give is a closed connection.
    assert!(
        stderr.contains("error: reading public.events: "),
        "the error must name the table being read\n{stderr}"
    );
    assert!(dev.copy_out("SELECT * FROM events").await == previous);
    assert_eq!(lethe_schemas(&dev).await, schemas_before);
    assert_eq!(shadow_count(&dev).await, 0);
}

const CODES_SCHEMA: &str = "
CREATE TABLE codes (
    id int PRIMARY KEY,
    code text NOT NULL CONSTRAINT code_has_three_letters CHECK (length(code) = 3),
    owner text NOT NULL
);
INSERT INTO codes VALUES
    (1, 'Q7Z', 'Ottoline Realperson'),
    (2, 'K2W', 'Bartholomew Genuine'),
    (3, 'J9X', 'Philippa Authentic');
";

const CODES_RULES: &str = "[codes]\nkeep = [\"id\"]\ncode = { mask = \"constant\", value = \"XYZ\" }\nowner = \"full_name\"\n";

/// A row the target rejects fails the run naming table and constraint, shows no value, leaves dev as it was.
#[tokio::test]
async fn a_row_rejected_by_the_target_fails_naming_table_and_constraint_without_values() {
    let source = TestDb::create("check_src").await;
    source.exec(CODES_SCHEMA).await;
    let dev = TestDb::create("check_dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", CODES_RULES)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let previous = dev.copy_out("SELECT * FROM codes").await;
    let pseudonyms: Vec<String> = dev
        .column("SELECT owner FROM codes")
        .await
        .into_iter()
        .flatten()
        .collect();
    let schemas_before = lethe_schemas(&dev).await;

    // `constant` is checked against the column's type at plan time, not against its CHECK
    // constraints: the target is what rejects it.
    ws.write_rules("public", &CODES_RULES.replace("\"XYZ\"", "\"toolong\""));
    let (stdout, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(
        stderr.contains("public.codes"),
        "the error must name the table\n{stderr}"
    );
    assert!(
        stderr.contains("code_has_three_letters"),
        "the error must name the constraint\n{stderr}"
    );
    assert!(
        stderr.contains("writing public.codes (column code)"),
        "the error must name the column\n{stderr}"
    );
    let output = format!("{stdout}{stderr}");
    let real = source.rows("SELECT id::text, code, owner FROM codes").await;
    for value in real.iter().flat_map(|r| r[1..].iter().flatten()) {
        assert!(
            !output.contains(value.as_str()),
            "the output shows the real value {value:?}\n{output}"
        );
    }
    for value in &pseudonyms {
        assert!(
            !output.contains(value.as_str()),
            "the output shows a cell value ({value:?})\n{output}"
        );
    }
    assert!(!output.contains("Failing row"), "{output}");

    assert!(dev.copy_out("SELECT * FROM codes").await == previous);
    assert_eq!(lethe_schemas(&dev).await, schemas_before);
    assert_eq!(shadow_count(&dev).await, 0);
}

/// What one reading client saw during a refresh.
#[derive(Debug, Default)]
struct Reads {
    counts: BTreeMap<i64, usize>,
    errors: Vec<String>,
}

/// Loops `SELECT count(*) FROM items` on one connection until `stop`. With `prepared`, the
/// statement is prepared once and reused across the swap (as a pooled application does);
/// without, each read is a new statement.
async fn read_counts(
    mut conn: PgConnection,
    prepared: bool,
    stop: Arc<AtomicBool>,
    started: Arc<AtomicUsize>,
) -> Reads {
    let mut reads = Reads::default();
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let result = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM items")
            .persistent(prepared)
            .fetch_one(&mut conn)
            .await;
        match result {
            Ok(n) => *reads.counts.entry(n).or_default() += 1,
            Err(e) => reads.errors.push(e.to_string()),
        }
        if first {
            started.fetch_add(1, Ordering::SeqCst);
            first = false;
        }
    }
    let _ = conn.close().await;
    reads
}

/// Readers of dev during a refresh never get an error and see only the old or the new row count.
#[tokio::test]
async fn readers_during_a_refresh_see_the_old_or_the_new_copy_and_no_error() {
    const OLD: i64 = 150_000;
    const NEW: i64 = 200_000;
    let source = TestDb::create("read_src").await;
    source
        .exec(&format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, email text NOT NULL, note text);
             INSERT INTO items SELECT g, 'user' || g || '@corp.example', 'note ' || g
             FROM generate_series(1, {OLD}) g;"
        ))
        .await;
    let dev = TestDb::create("read_dev").await;
    let rules = "[items]\nkeep = [\"id\", \"note\"]\nemail = \"hash\"\n";
    let ws = Workspace::new(&source, &dev, KEY, &[("public", rules)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert_eq!(dev.count("SELECT count(*) FROM items").await, OLD);
    source
        .exec(&format!(
            "INSERT INTO items SELECT g, 'user' || g || '@corp.example', 'note ' || g
             FROM generate_series({}, {NEW}) g;",
            OLD + 1
        ))
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for prepared in [false, true] {
        let conn = dev.connect().await;
        readers.push(tokio::spawn(read_counts(
            conn,
            prepared,
            Arc::clone(&stop),
            Arc::clone(&started),
        )));
    }
    // Both readers have read the old copy before the run starts.
    let deadline = Instant::now() + PATIENCE;
    while started.load(Ordering::SeqCst) < readers.len() {
        assert!(Instant::now() < deadline, "the readers never started");
        tokio::time::sleep(POLL).await;
    }

    let began = Instant::now();
    let run = Run::start(&ws, &source, "read");
    let output = run.finish().await;
    let took = began.elapsed();
    stop.store(true, Ordering::SeqCst);
    expect_exit(&output, 0);

    for (reader, prepared) in readers.into_iter().zip([false, true]) {
        let reads = reader.await.unwrap_or_else(|e| panic!("reader: {e}"));
        let kind = if prepared {
            "prepared once"
        } else {
            "new statement each time"
        };
        assert!(
            reads.errors.is_empty(),
            "reader ({kind}) got errors during the refresh: {:?}",
            reads.errors
        );
        assert!(
            reads.counts.keys().all(|n| *n == OLD || *n == NEW),
            "reader ({kind}) saw a count that is neither {OLD} nor {NEW}: {:?}",
            reads.counts
        );
        let total: usize = reads.counts.values().sum();
        assert!(
            total >= 10,
            "reader ({kind}) read only {total} times during a {took:?} refresh"
        );
    }
    assert_eq!(dev.count("SELECT count(*) FROM items").await, NEW);
    assert_eq!(shadow_count(&dev).await, 0);
}
