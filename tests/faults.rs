//! The fault suite, against a real PostgreSQL and the real `lethe` binary: a run killed
//! with `kill -9` in each phase (paused there exactly with `LETHE_TEST_PAUSE_AT`), server
//! sessions terminated, a TCP proxy that cuts or stalls the connections, timeouts that
//! end what waits too long, a run that waits for the one holding its target, and the
//! target server restarted under the daemon. Each case is named after its fault and
//! checks "never half a database": dev answers with its previous contents, whole, until a
//! run succeeds; the run history records the failure with a reason; the next run,
//! started at once, succeeds and cleans up what the failed one left.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use common::child::{Lethe, PATIENCE, POLL, assert_killed_then_succeeded, runs};
use common::cluster::Cluster;
use common::proxy::Proxy;
use common::{KEY, TestDb, Workspace, expect_exit};

const EVENTS_SCHEMA: &str =
    "CREATE TABLE events (id bigint PRIMARY KEY, email text NOT NULL, note text);";

/// Masking `email` makes the copy CPU-bound in lethe, so the source's COPY stays open
/// (waiting for lethe to take more) for most of the copy.
const EVENTS_RULES: &str = "[events]\nkeep = [\"id\", \"note\"]\nemail = \"hash\"\n";

/// Rows of the previous, good copy.
const SMALL: i64 = 1_000;
/// Rows after the source grew, for runs that are paused rather than caught in flight.
const GROWN: i64 = 1_500;
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
/// to `rows` events. Returns the previous copy's content.
async fn refreshed_then_grown(tag: &str, rows: i64) -> (TestDb, TestDb, Workspace, Vec<u8>) {
    let source = TestDb::create(&format!("{tag}_src")).await;
    source
        .exec(&format!("{EVENTS_SCHEMA}{}", insert_events(1, SMALL)))
        .await;
    let dev = TestDb::create(&format!("{tag}_dev")).await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", EVENTS_RULES)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let previous = dev.copy_out("SELECT * FROM events").await;
    assert_eq!(dev.count("SELECT count(*) FROM events").await, SMALL);
    source.exec(&insert_events(SMALL + 1, rows)).await;
    (source, dev, ws, previous)
}

/// lethe.toml of `ws` with extra lines under `[source]` and `[targets.dev]` (timeouts,
/// hooks), the target at `dev_url`.
fn configure(ws: &Workspace, dev_url: &str, source_extra: &str, dev_extra: &str) {
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n{source_extra}\n\n\
         [targets.dev]\nurl = \"{dev_url}\"\n{dev_extra}\n\n[masking]\nkey = \"{KEY}\"\n"
    ));
}

/// Waits until the run is in the middle of its copy: its shadow schema exists in dev, a
/// lethe `COPY ... FROM STDIN` into dev has loaded rows, and (with `source`) the source's
/// `COPY ... TO STDOUT` is still running. Fails clearly if the run ends first or never
/// gets there.
async fn wait_for_copy_in_flight(run: &mut Lethe, dev: &TestDb, source: Option<&TestDb>) {
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

/// Waits until a lethe session on `db` runs a statement like `pattern`; returns its pid.
async fn wait_for_statement(run: &mut Lethe, db: &TestDb, pattern: &str) -> i32 {
    let mut conn = db.connect().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE 'lethe%'
               AND state = 'active' AND query LIKE $1 LIMIT 1",
        )
        .bind(pattern)
        .fetch_optional(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("polling {}: {e}", db.name));
        if let Some(pid) = pid {
            return pid;
        }
        if let Some(status) = run.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            panic!(
                "lethe ended ({status}) before running `{pattern}`\n--- stderr\n{}",
                run.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "lethe did not run `{pattern}` on {} within {PATIENCE:?}\n--- stderr\n{}",
            db.name,
            run.stderr()
        );
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

/// Dev still answers with exactly the previous copy, and only the killed run's shadow (if
/// it got that far) stands beside it: nothing is half-swapped.
async fn dev_is_as_it_was(dev: &TestDb, previous: &[u8], schemas_before: &[Vec<Option<String>>]) {
    assert_eq!(dev.count("SELECT count(*) FROM events").await, SMALL);
    assert!(
        dev.copy_out("SELECT * FROM events").await == previous,
        "dev no longer holds the previous copy"
    );
    let mut schemas = lethe_schemas(dev).await;
    schemas.retain(|s| s[0].as_deref() != Some("lethe_shadow_public"));
    assert_eq!(schemas, schemas_before, "the swap records changed");
}

/// The run history's newest run failed, with a reason that holds `reason`.
fn last_run_failed_with(ws: &Workspace, reason: &str) {
    let runs = runs(&ws.config());
    assert_eq!(runs[0]["outcome"], "failed", "{runs:#?}");
    let error = runs[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(reason),
        "the failed run's record must say why ({reason:?}): {runs:#?}"
    );
}

/// The next run, started at once, succeeds, copies the grown source and leaves no shadow.
async fn next_run_succeeds(ws: &Workspace, dev: &TestDb, rows: i64) -> String {
    let (stdout, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    assert!(
        stdout.contains(&format!("1 tables, {rows} rows")),
        "{stdout}"
    );
    assert_eq!(dev.count("SELECT count(*) FROM events").await, rows);
    assert_eq!(shadow_count(dev).await, 0);
    stderr
}

/// `kill -9` while paused at `phase`, then an immediate rerun (no waiting for the killed
/// run's sessions to go): dev kept the previous copy whole (or, once swapped, has the new
/// one whole), the rerun succeeds and drops the leftovers, and the history records the
/// killed run as failed because its process died.
async fn kill_9_at(phase: &str) {
    let (_source, dev, ws, previous) = refreshed_then_grown(&format!("k{phase}"), GROWN).await;
    let schemas_before = lethe_schemas(&dev).await;

    let mut run = ws.spawn(&["refresh", "dev"], Some(phase), "killed");
    run.paused_at(phase).await;
    let shadow = shadow_count(&dev).await;
    run.kill_9().await;

    if phase == "swapped" {
        assert_eq!(dev.count("SELECT count(*) FROM events").await, GROWN);
        assert!(dev.copy_out("SELECT * FROM lethe_prev_public.events").await == previous);
    } else {
        dev_is_as_it_was(&dev, &previous, &schemas_before).await;
    }
    let built_a_shadow = matches!(phase, "copying" | "indexing" | "checking" | "swapping");
    assert_eq!(
        shadow,
        i64::from(built_a_shadow),
        "shadow schemas at {phase}"
    );

    let stderr = next_run_succeeds(&ws, &dev, GROWN).await;
    if built_a_shadow {
        assert!(
            stderr.contains("dropped a shadow schema left by an earlier run")
                && stderr.contains("lethe_shadow_public"),
            "the next run should say it dropped the stranded shadow\n{stderr}"
        );
    }
    assert_killed_then_succeeded(&ws.config());
}

/// One test per phase a run can be killed in.
macro_rules! kill_9_in_each_phase {
    ($($name:ident: $phase:literal,)*) => {$(
        #[tokio::test]
        async fn $name() {
            kill_9_at($phase).await;
        }
    )*};
}

kill_9_in_each_phase! {
    kill_9_while_planning_in_the_snapshot: "planning",
    kill_9_with_the_snapshot_open_before_the_lock: "locking",
    kill_9_holding_the_lock_before_the_schema: "schema",
    kill_9_with_the_shadow_created_before_the_copy: "copying",
    kill_9_after_the_copy_before_the_index_build: "indexing",
    kill_9_after_the_indexes_before_the_checks: "checking",
    kill_9_just_before_the_swap: "swapping",
    kill_9_just_after_the_swap: "swapped",
}

/// `kill -9` in the middle of the copy (caught in flight), then an immediate rerun.
#[tokio::test]
async fn kill_9_mid_copy_then_rerun_at_once() {
    let (_source, dev, ws, previous) = refreshed_then_grown("kmid", BIG).await;
    let schemas_before = lethe_schemas(&dev).await;
    let mut run = ws.spawn(&["refresh", "dev"], None, "killed");
    wait_for_copy_in_flight(&mut run, &dev, None).await;
    run.kill_9().await;
    dev_is_as_it_was(&dev, &previous, &schemas_before).await;
    let stderr = next_run_succeeds(&ws, &dev, BIG).await;
    assert!(
        stderr.contains("dropped a shadow schema left by an earlier run"),
        "{stderr}"
    );
    assert!(dev.copy_out("SELECT * FROM lethe_prev_public.events").await == previous);
    assert_killed_then_succeeded(&ws.config());
}

/// `kill -9` while a server session of the run is busy in a long statement (an
/// `after_refresh` hook holding a lock on the shadow and sleeping for minutes): the
/// session notices its client is gone within seconds (`client_connection_check_interval`)
/// and ends, releasing its locks, so a rerun started at once succeeds well within its
/// `lock_wait` instead of waiting for the statement to end.
#[tokio::test]
async fn kill_9_during_a_long_statement_then_rerun_at_once() {
    let (_source, dev, ws, previous) = refreshed_then_grown("klong", GROWN).await;
    let schemas_before = lethe_schemas(&dev).await;
    std::fs::write(
        ws.path().join("slow.sql"),
        "LOCK TABLE events IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(600);\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    configure(
        &ws,
        &dev.url,
        "",
        "after_refresh = [\"slow.sql\"]\nlock_wait = \"30s\"",
    );
    let mut run = ws.spawn(&["refresh", "dev"], None, "killed");
    let sleeping = wait_for_statement(&mut run, &dev, "%pg_sleep(600)%").await;
    run.kill_9().await;
    dev_is_as_it_was(&dev, &previous, &schemas_before).await;

    configure(&ws, &dev.url, "", "lock_wait = \"30s\"");
    let stderr = next_run_succeeds(&ws, &dev, GROWN).await;
    assert!(
        stderr.contains("dropped a shadow schema left by an earlier run"),
        "{stderr}"
    );
    assert_eq!(
        dev.count(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {sleeping}"
        ))
        .await,
        0,
        "the killed run's sleeping session is still there"
    );
    assert_killed_then_succeeded(&ws.config());
}

/// A source COPY terminated mid-copy fails the run (exit 1, table named); dev is
/// untouched, no shadow left, the history says why, the next run succeeds.
#[tokio::test]
async fn source_backend_terminated_mid_copy() {
    let (source, dev, ws, previous) = refreshed_then_grown("term", BIG).await;
    let schemas_before = lethe_schemas(&dev).await;

    let mut run = ws.spawn(&["refresh", "dev"], None, "terminated");
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
    // A table this big is copied in pieces, one source COPY each: any of them ends the run.
    assert!(
        terminated >= 1,
        "expected to terminate the source COPYs in flight\n--- stderr\n{}",
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
    last_run_failed_with(&ws, "reading public.events");
    next_run_succeeds(&ws, &dev, BIG).await;
}

/// A target session terminated while it builds an index fails the run naming the index
/// step; dev is untouched, the history says why, the next run succeeds.
#[tokio::test]
async fn target_backend_terminated_mid_index() {
    // An index whose every key takes 5 ms to compute: its build runs for seconds.
    let slow_index = "CREATE FUNCTION slow_key(t text) RETURNS text LANGUAGE sql IMMUTABLE
                      AS $$ SELECT t || (SELECT '' FROM pg_sleep(0.005)) $$;
                      CREATE INDEX events_slow ON events (slow_key(email));";
    let source = TestDb::create("tidx_src").await;
    source
        .exec(&format!(
            "{EVENTS_SCHEMA}{}{slow_index}",
            insert_events(1, SMALL)
        ))
        .await;
    let dev = TestDb::create("tidx_dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", EVENTS_RULES)]);
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    let previous = dev.copy_out("SELECT * FROM events").await;
    let schemas_before = lethe_schemas(&dev).await;

    let mut run = ws.spawn(&["refresh", "dev"], None, "terminated");
    let building = wait_for_statement(&mut run, &dev, "CREATE INDEX events_slow%").await;
    let mut admin = dev.connect().await;
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(building)
        .fetch_one(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("pg_terminate_backend: {e}"));
    assert!(terminated);

    let (_, stderr) = expect_exit(&run.finish().await, 1);
    assert!(
        stderr.contains("schema step (INDEX) `CREATE INDEX events_slow"),
        "the error must name the index being built\n{stderr}"
    );
    assert!(dev.copy_out("SELECT * FROM events").await == previous);
    assert_eq!(lethe_schemas(&dev).await, schemas_before);
    assert_eq!(shadow_count(&dev).await, 0);
    last_run_failed_with(&ws, "CREATE INDEX events_slow");
    next_run_succeeds(&ws, &dev, SMALL).await;
}

/// The server address of a PostgreSQL URL.
fn server_of(url: &str) -> SocketAddr {
    let url = url::Url::parse(url).unwrap_or_else(|e| panic!("{e}"));
    let host = url.host_str().unwrap_or("127.0.0.1");
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", url.port().unwrap_or(5432))
        .parse()
        .unwrap_or_else(|e| panic!("the test server must be at an IP address: {e}"))
}

/// The source's connections cut mid-copy (a network failure): the run fails at once,
/// naming the table; dev is untouched; the next run succeeds.
#[tokio::test]
async fn proxy_cuts_the_source_mid_copy() {
    let (source, dev, ws, previous) = refreshed_then_grown("pcut", BIG).await;
    let schemas_before = lethe_schemas(&dev).await;
    let proxy = Proxy::start(server_of(&source.url));
    ws.set_source_url(&proxy.url(&source.url));

    let mut run = ws.spawn(&["refresh", "dev"], None, "cut");
    wait_for_copy_in_flight(&mut run, &dev, Some(&source)).await;
    proxy.cut();
    let (_, stderr) = expect_exit(&run.finish().await, 1);
    assert!(
        stderr.contains("error: reading public.events: "),
        "{stderr}"
    );
    assert!(dev.copy_out("SELECT * FROM events").await == previous);
    assert_eq!(lethe_schemas(&dev).await, schemas_before);
    last_run_failed_with(&ws, "reading public.events");
    next_run_succeeds(&ws, &dev, BIG).await;
}

/// The source stalls mid-copy (the network stops delivering, connections stay open): the
/// run fails once the source has sent nothing for its `idle_timeout`, never hangs; dev is
/// untouched; once the stalled connections are gone the next run succeeds.
#[tokio::test]
async fn proxy_stalls_the_source_mid_copy() {
    let (source, dev, ws, previous) = refreshed_then_grown("pstall", BIG).await;
    let schemas_before = lethe_schemas(&dev).await;
    let proxy = Proxy::start(server_of(&source.url));
    ws.set_source_url(&proxy.url(&source.url));
    configure(
        &ws,
        &dev.url,
        "idle_timeout = \"2s\"\nconnect_timeout = \"2s\"",
        "",
    );

    let mut run = ws.spawn(&["refresh", "dev"], None, "stalled");
    wait_for_copy_in_flight(&mut run, &dev, Some(&source)).await;
    proxy.stall();
    let (_, stderr) = expect_exit(&run.finish().await, 1);
    assert!(
        stderr.contains(
            "error: public.events: the source sent no rows for 2s (its idle_timeout); is the \
             source server, or the network to it, stalled?"
        ),
        "{stderr}"
    );
    assert!(dev.copy_out("SELECT * FROM events").await == previous);
    assert_eq!(lethe_schemas(&dev).await, schemas_before);
    last_run_failed_with(&ws, "the source sent no rows for 2s");
    // The network heals: the stalled connections close, their server sessions end.
    proxy.cut();
    next_run_succeeds(&ws, &dev, BIG).await;
}

/// The target stalls mid-copy: the run fails once the target has taken nothing for its
/// `idle_timeout`, and cannot drop its shadow through the stalled network within its
/// `connect_timeout`, so it says the next run will; dev is untouched; once the stalled
/// connections are gone the next run succeeds and drops that shadow.
#[tokio::test]
async fn proxy_stalls_the_target_mid_copy() {
    let (_source, dev, ws, previous) = refreshed_then_grown("tstall", BIG).await;
    let schemas_before = lethe_schemas(&dev).await;
    let proxy = Proxy::start(server_of(&dev.url));
    configure(
        &ws,
        &proxy.url(&dev.url),
        "",
        "idle_timeout = \"2s\"\nconnect_timeout = \"2s\"",
    );

    let mut run = ws.spawn(&["refresh", "dev"], None, "stalled");
    wait_for_copy_in_flight(&mut run, &dev, None).await;
    proxy.stall();
    let (_, stderr) = expect_exit(&run.finish().await, 1);
    assert!(
        stderr.contains(
            "error: public.events: the target took no rows for 2s (its idle_timeout); is the \
             target server, or the network to it, stalled?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("could not drop the unfinished copy; the next run will")
            && stderr.contains("no answer within 2s (connect_timeout)"),
        "{stderr}"
    );
    dev_is_as_it_was(&dev, &previous, &schemas_before).await;
    last_run_failed_with(&ws, "the target took no rows for 2s");
    proxy.cut();
    let stderr = next_run_succeeds(&ws, &dev, BIG).await;
    assert!(
        stderr.contains("dropped a shadow schema left by an earlier run"),
        "{stderr}"
    );
}

/// A target that accepts the TCP connection but never answers (a stalled proxy): the run
/// fails within its `connect_timeout` before anything is written.
#[tokio::test]
async fn proxy_stalls_the_target_before_it_answers() {
    let (_source, dev, ws, previous) = refreshed_then_grown("tconn", GROWN).await;
    let proxy = Proxy::start(server_of(&dev.url));
    proxy.stall();
    configure(&ws, &proxy.url(&dev.url), "", "connect_timeout = \"2s\"");
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(
        stderr.contains("cannot connect to the target database")
            && stderr.contains("no answer within 2s (connect_timeout)"),
        "{stderr}"
    );
    assert!(dev.copy_out("SELECT * FROM events").await == previous);
    last_run_failed_with(&ws, "no answer within 2s (connect_timeout)");
    proxy.cut();
    next_run_succeeds(&ws, &dev, GROWN).await;
}

/// A statement that runs longer than the target's `statement_timeout` is cancelled by
/// the server and fails the run; dev is untouched.
#[tokio::test]
async fn statement_timeout_cancels_a_statement_that_runs_too_long() {
    let (_source, dev, ws, previous) = refreshed_then_grown("stmt", GROWN).await;
    std::fs::write(ws.path().join("slow.sql"), "SELECT pg_sleep(30);\n")
        .unwrap_or_else(|e| panic!("{e}"));
    configure(
        &ws,
        &dev.url,
        "",
        "after_refresh = [\"slow.sql\"]\nstatement_timeout = \"1s\"",
    );
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(
        stderr.contains("after_refresh hook") && stderr.contains("statement timeout"),
        "{stderr}"
    );
    assert!(dev.copy_out("SELECT * FROM events").await == previous);
    assert_eq!(shadow_count(&dev).await, 0);
    last_run_failed_with(&ws, "statement timeout");
}

/// A run that finds the target held waits for it (`lock_wait`), saying which run holds
/// it; with too short a wait it fails naming that run (run id, pid, host), recorded as
/// skipped; with a long enough one it gets the target once the holder is done.
#[tokio::test]
async fn a_held_target_is_waited_for_and_its_holder_named() {
    let (_source, dev, ws, _previous) = refreshed_then_grown("held", GROWN).await;
    let mut holder = ws.spawn(&["refresh", "dev"], Some("copying"), "holder");
    holder.paused_at("copying").await;
    let holder_run = runs(&ws.config())[0]["id"].clone();
    let pid = holder.child.id().unwrap_or_default();

    configure(&ws, &dev.url, "", "lock_wait = \"1s\"");
    let (_, stderr) = expect_exit(&ws.lethe(&["refresh", "dev"]), 1);
    assert!(
        stderr.contains("waiting up to 1s for it (lock_wait)"),
        "{stderr}"
    );
    let named =
        format!("is being refreshed by another lethe run: lethe run {holder_run} pid {pid} on ");
    assert!(
        stderr.contains(&named) && stderr.contains("waited 1s for it (lock_wait)"),
        "the refusal must name the holder ({named})\n{stderr}"
    );
    let history = runs(&ws.config());
    assert_eq!(history[0]["outcome"], "skipped", "{history:#?}");

    configure(&ws, &dev.url, "", "lock_wait = \"60s\"");
    let mut waiter = ws.spawn(&["refresh", "dev"], None, "waiter");
    waiter.wait_for("waiting up to 1m for it (lock_wait)").await;
    holder.resume().await;
    expect_exit(&holder.finish().await, 0);
    expect_exit(&waiter.finish().await, 0);
    assert_eq!(dev.count("SELECT count(*) FROM events").await, GROWN);
}

/// The target's server restarted in the middle of a daemon's run (every session ended):
/// the try fails for a transient reason, the shadow is dropped, and the daemon's retry
/// succeeds. Runs against a throwaway cluster of its own, never the shared server.
#[tokio::test]
async fn target_server_restarted_mid_run_then_the_daemon_retry_succeeds() {
    let cluster = Cluster::start();
    let mut admin = PgConnection::connect(&cluster.url("postgres"))
        .await
        .unwrap_or_else(|e| panic!("the throwaway cluster does not answer: {e}"));
    sqlx::raw_sql("CREATE DATABASE dev")
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    admin.close().await.unwrap_or_else(|e| panic!("{e}"));
    let dev_url = cluster.url("dev");

    let source = TestDb::create("restart_src").await;
    source
        .exec(&format!("{EVENTS_SCHEMA}{}", insert_events(1, SMALL)))
        .await;
    let unused = TestDb::create("restart_unused").await;
    let ws = Workspace::new(&source, &unused, KEY, &[("public", EVENTS_RULES)]);
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free port: {e}"));
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n[targets.dev]\nurl = \"{dev_url}\"\n\n\
         [masking]\nkey = \"{KEY}\"\n\n[daemon]\nlisten = \"{listen}\"\nattempts = 3\nretry_backoff_secs = 1\n"
    ));
    expect_exit(&ws.lethe(&["refresh", "dev"]), 0);
    source.exec(&insert_events(SMALL + 1, GROWN)).await;

    let mut daemon = ws.spawn(&["daemon"], Some("copying"), "daemon");
    daemon.wait_for("listening on").await;
    let via = ws.spawn(
        &["refresh", "dev", "--via", &format!("http://{listen}")],
        None,
        "via",
    );
    daemon.paused_at("copying").await;
    cluster.restart();
    daemon.resume().await;
    daemon.wait_for("transient failure; retrying").await;
    daemon.wait_for_times("lethe: paused at copying ", 2).await;
    daemon.resume().await;
    let (stdout, _) = expect_exit(&via.finish().await, 0);
    assert!(stdout.contains(&format!("{GROWN} rows")), "{stdout}");

    let mut dev = PgConnection::connect(&dev_url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (rows, shadows): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM public.events),
                (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'lethe\\_shadow\\_%')",
    )
    .fetch_one(&mut dev)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rows, shadows), (GROWN, 0));
    let history = runs(&ws.config());
    assert_eq!(history[0]["outcome"], "succeeded", "{history:#?}");
    assert!(
        daemon.stderr().contains("the server closed the connection")
            || daemon.stderr().contains("terminating connection"),
        "the first try should fail on the restart\n{}",
        daemon.stderr()
    );
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
    let run = ws.spawn(&["refresh", "dev"], None, "read");
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
