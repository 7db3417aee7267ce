//! `lethe daemon`: refreshes targets on their schedules and on request over HTTP, one
//! run per target at a time, retrying transient failures, and stopping cleanly on
//! SIGTERM (a run in flight is cancelled before its swap, so the target keeps its copy).
//!
//! One target never has two runs: inside a daemon a run claims its target in [`Runs`]
//! before it starts; across daemons (two machines, or a `lethe refresh` by hand) the
//! target's PostgreSQL advisory lock refuses the second run, which then counts as
//! skipped.

mod api;
mod audit_history;
mod auth;
pub mod client;
mod history;
mod metrics;
mod runs;
mod scheduler;

pub use api::{ProgressView, RunView};
pub use audit_history::AuditHistory;
pub use auth::{TOKENS_VAR, Tokens};
pub use history::{History, HistoryError, MemoryHistory};
pub use metrics::Metrics;
pub use runs::{RunId, RunRecord, RunRequest, RunStatus, Runs};
pub use scheduler::previous_fire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{Config, Mode};
use crate::pipeline::{self, LiveProgress, RefreshOptions};
use crate::report::{Outcome, RefreshSummary};
use crate::schedule::Schedule;

/// How long shutdown waits for cancelled runs to drop their shadows; within the 30 s a
/// service manager usually grants before SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// The longest wait between retries, however often the backoff has doubled.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Why the daemon did not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `listen` is not an address.
    #[error("[daemon] listen = `{listen}` is not a host:port address: {reason}")]
    BadListen {
        /// As configured.
        listen: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// No token, and an address others can reach.
    #[error(
        "refusing to serve the API on `{listen}` without tokens: set {TOKENS_VAR} (id:token,...) \
         or listen on a loopback address such as 127.0.0.1:7070"
    )]
    OpenApi {
        /// As configured.
        listen: String,
    },
    /// Production without tokens.
    #[error("mode = \"production\" needs API tokens: set {TOKENS_VAR} (id:token,...)")]
    NoTokens,
    /// The tokens variable is malformed.
    #[error("{0}")]
    Tokens(String),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
    /// Runs were still going when the grace period ended.
    #[error("{0} run(s) did not stop within {SHUTDOWN_GRACE:?} of the shutdown signal")]
    ShutdownTimeout(usize),
}

impl Error {
    /// The process exit code: 2 for a configuration that cannot be served, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadListen { .. }
            | Error::OpenApi { .. }
            | Error::NoTokens
            | Error::Tokens(_) => 2,
            Error::Bind { .. } | Error::Serve(_) | Error::ShutdownTimeout(_) => 1,
        }
    }
}

/// Resolves `[daemon] listen` and checks it against the tokens: an API without tokens
/// only on loopback, and none at all in production.
pub async fn listen_addresses(config: &Config, tokens: &Tokens) -> Result<Vec<SocketAddr>, Error> {
    let listen = &config.daemon.listen;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(listen.as_str())
        .await
        .map_err(|e| Error::BadListen {
            listen: listen.clone(),
            reason: e.to_string(),
        })?
        .collect();
    if addresses.is_empty() {
        return Err(Error::BadListen {
            listen: listen.clone(),
            reason: "it resolves to no address".into(),
        });
    }
    if tokens.is_empty() {
        if config.daemon.mode == Mode::Production {
            return Err(Error::NoTokens);
        }
        if addresses.iter().any(|a| !a.ip().is_loopback()) {
            return Err(Error::OpenApi {
                listen: listen.clone(),
            });
        }
    }
    Ok(addresses)
}

/// What the daemon runs with besides the config.
pub struct DaemonOptions {
    /// Tables copied at once in each run.
    pub jobs: usize,
    /// Where runs are recorded and catch-up decisions read from.
    pub history: Arc<dyn History>,
    /// The API's tokens.
    pub tokens: Tokens,
}

/// Why a run was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The target is being refreshed by that run.
    Busy(RunId),
    /// The daemon is shutting down.
    ShuttingDown,
}

/// What the scheduler, the API and the runs share.
pub(crate) struct Shared {
    config: Arc<Config>,
    runs: Runs,
    metrics: Metrics,
    history: Arc<dyn History>,
    tokens: Tokens,
    jobs: usize,
    /// Cancelled on SIGTERM/SIGINT: stops fires, new runs and the HTTP server; each run's
    /// token is a child of it.
    shutdown: CancellationToken,
    /// Every run and schedule fire, so that shutdown can wait for them.
    tasks: TaskTracker,
}

impl Shared {
    /// The state of a daemon that has not yet served or scheduled anything.
    fn new(config: Config, options: DaemonOptions) -> Arc<Self> {
        Arc::new(Shared {
            metrics: Metrics::new(config.targets.keys().map(String::as_str)),
            runs: Runs::default(),
            history: options.history,
            tokens: options.tokens,
            jobs: options.jobs.max(1),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            config: Arc::new(config),
        })
    }

    /// Claims the target and starts the run in the background.
    pub(crate) fn start(
        self: &Arc<Self>,
        request: RunRequest,
    ) -> Result<(RunId, JoinHandle<RunStatus>), StartError> {
        if self.shutdown.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let record = self.runs.claim(request).map_err(StartError::Busy)?;
        let id = record.id;
        let shared = Arc::clone(self);
        Ok((id, self.tasks.spawn(shared.execute(record))))
    }

    /// Records a run that did not start because `holder` has its target.
    pub(crate) async fn skip(&self, request: RunRequest, holder: RunId) {
        info!(target = %request.target, trigger = %request.trigger, holder = %holder,
              "skipped: already refreshing");
        let record = self.runs.skipped(
            request,
            format!("skipped: already refreshing (run {holder})"),
        );
        self.metrics
            .outcome(&record.request.target, RunStatus::Skipped);
        self.record_started(&record).await;
        self.record_finished(&record, None).await;
    }

    /// Runs a claimed run to its end: tries, retries, records and metrics.
    async fn execute(self: Arc<Self>, record: RunRecord) -> RunStatus {
        let id = record.id;
        let target = record.request.target.clone();
        info!(run = %id, target = %target, trigger = %record.request.trigger, "run started");
        self.record_started(&record).await;
        self.metrics.started(&target);
        let clock = Instant::now();
        let cancel = self.shutdown.child_token();
        let result = self.tries(&record, &cancel).await;
        let (status, error, rows, bytes) = match &result {
            Ok(summary) => (RunStatus::Succeeded, None, summary.rows, summary.bytes),
            Err(error) => (status_of(error), Some(error.to_string()), 0, 0),
        };
        self.metrics
            .ended(&target, status, clock.elapsed(), rows, bytes);
        let finished = self.runs.finish(id, status, error.clone());
        let seconds = clock.elapsed().as_secs_f64();
        match (&result, status) {
            (Ok(summary), _) => info!(run = %id, target = %target, rows = summary.rows,
                bytes = summary.bytes, seconds, "run succeeded"),
            (Err(_), RunStatus::Skipped) => info!(run = %id, target = %target,
                "skipped: already refreshing (another lethe run holds the target)"),
            (Err(error), RunStatus::Cancelled) => warn!(run = %id, target = %target, %error,
                seconds, "run cancelled"),
            (Err(error), _) => error!(run = %id, target = %target, %error, seconds, "run failed"),
        }
        if let Some(finished) = finished {
            self.record_finished(&finished, result.as_ref().ok()).await;
        }
        status
    }

    /// Refreshes up to `attempts` times while failures are transient, doubling the wait.
    async fn tries(
        &self,
        record: &RunRecord,
        cancel: &CancellationToken,
    ) -> Result<RefreshSummary, pipeline::Error> {
        let daemon = &self.config.daemon;
        let mut backoff = daemon.retry_backoff;
        let mut attempt = 1;
        loop {
            let live = Arc::new(LiveProgress::default());
            live.set_phase("planning");
            self.runs.attempt(record.id, attempt, Arc::clone(&live));
            let mut options = RefreshOptions::new(self.jobs, false);
            options.profile = record.request.profile.clone();
            options.cancel = cancel.clone();
            options.live = Arc::clone(&live);
            options.run = Some(format!("daemon run {}", record.id));
            match pipeline::refresh(&self.config, &record.request.target, &options).await {
                Ok(summary) => {
                    live.set_phase("done");
                    return Ok(summary);
                }
                Err(error) if error.is_transient() && attempt < daemon.attempts => {
                    warn!(run = %record.id, target = %record.request.target, %error, attempt,
                          retry_in_seconds = backoff.as_secs_f64(), "transient failure; retrying");
                    live.set_phase("waiting to retry");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = cancel.cancelled() => return Err(pipeline::Error::Cancelled),
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn record_started(&self, record: &RunRecord) {
        if let Err(error) = self.history.started(record).await {
            warn!(run = %record.id, %error, "could not record the run's start in the history");
        }
    }

    async fn record_finished(&self, record: &RunRecord, summary: Option<&RefreshSummary>) {
        if let Err(error) = self.history.finished(record, summary).await {
            warn!(run = %record.id, %error, "could not record the run's end in the history");
        }
    }
}

/// A run's final status from the error that ended it.
fn status_of(error: &pipeline::Error) -> RunStatus {
    match error.outcome() {
        Outcome::Cancelled => RunStatus::Cancelled,
        Outcome::Skipped => RunStatus::Skipped,
        Outcome::Running | Outcome::Succeeded | Outcome::Failed => RunStatus::Failed,
    }
}

/// Serves until `shutdown` resolves: schedules fire, the API answers; then stops taking
/// work, cancels runs in flight (each drops its shadow) and waits for them.
pub async fn serve(
    config: Config,
    schedules: Vec<Schedule>,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addresses = listen_addresses(&config, &options.tokens).await?;
    let address = addresses[0];
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind { address, source })?;
    let bound = listener.local_addr().map_err(Error::Serve)?;
    let shared = Shared::new(config, options);
    let ids: Vec<&str> = shared.tokens.ids().collect();
    info!(
        address = %bound,
        schedules = schedules.len(),
        tokens = ?ids,
        "listening on http://{bound}"
    );
    if shared.tokens.is_empty() {
        warn!("no API tokens ({TOKENS_VAR}): the API is open to every local user");
    }
    for schedule in schedules {
        shared
            .tasks
            .spawn(scheduler::run(Arc::clone(&shared), Arc::new(schedule)));
    }
    let stop = shared.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        info!("shutting down: no new runs; cancelling the runs in flight before their swap");
        stop.cancel();
    });

    let served = axum::serve(listener, api::router(Arc::clone(&shared)))
        .with_graceful_shutdown(shared.shutdown.clone().cancelled_owned())
        .await;
    // The server also ends on an error; stop everything else with it.
    shared.shutdown.cancel();
    shared.tasks.close();
    let waited = tokio::time::timeout(SHUTDOWN_GRACE, shared.tasks.wait()).await;
    served.map_err(Error::Serve)?;
    match waited {
        Ok(()) => {
            info!("stopped");
            Ok(())
        }
        Err(_) => Err(Error::ShutdownTimeout(shared.tasks.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::postgres;
    use std::future::IntoFuture;

    /// A config whose source refuses connections (a transient failure, retried): runs
    /// wait in their backoff, holding their target, without any database.
    fn config(extra: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("masking-rules")).unwrap();
        std::fs::write(
            dir.path().join("masking-rules/public.toml"),
            "[users]\nkeep = [\"id\"]\n",
        )
        .unwrap();
        let text = format!(
            "[source]\nurl = \"postgres://lethe@127.0.0.1:1/prod\"\n[targets.dev]\nurl = \"postgres://lethe@127.0.0.1:1/dev\"\n[masking]\nkey = \"0123456789abcdef-key\"\n{extra}"
        );
        let config = Config::parse(&dir.path().join("lethe.toml"), &text, |_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, config)
    }

    fn options(tokens: Tokens) -> DaemonOptions {
        DaemonOptions {
            jobs: 1,
            history: Arc::new(MemoryHistory::default()),
            tokens,
        }
    }

    fn request(profile: Option<&str>) -> RunRequest {
        RunRequest {
            target: "dev".into(),
            trigger: "test".into(),
            schedule: None,
            profile: profile.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_backoff_then_fail() {
        let (_dir, config) = config("[daemon]\nattempts = 2\nretry_backoff_secs = 1\n");
        let shared = Shared::new(config, options(Tokens::default()));
        let clock = Instant::now();
        let (id, run) = shared.start(request(None)).unwrap();
        assert_eq!(run.await.unwrap(), RunStatus::Failed);
        assert!(clock.elapsed() >= Duration::from_secs(1), "no backoff");
        let record = shared.runs.get(id).unwrap();
        assert_eq!(record.attempt, 2);
        assert!(
            record
                .error
                .as_deref()
                .unwrap_or("")
                .contains("cannot connect"),
            "{record:?}"
        );
        assert!(
            shared
                .metrics
                .render()
                .contains("lethe_runs_total{target=\"dev\",outcome=\"failed\"} 1")
        );
        assert_eq!(shared.runs.holder("dev"), None, "the target is free again");
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let (_dir, config) = config("[daemon]\nattempts = 3\nretry_backoff_secs = 30\n");
        let shared = Shared::new(config, options(Tokens::default()));
        let (id, run) = shared.start(request(Some("no-such-profile"))).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, RunStatus::Failed);
        let record = shared.runs.get(id).unwrap();
        assert_eq!(record.attempt, 1);
        assert!(
            record
                .error
                .as_deref()
                .unwrap_or("")
                .contains("no-such-profile"),
            "{record:?}"
        );
    }

    #[tokio::test]
    async fn shutdown_cancels_a_run_waiting_to_retry_and_refuses_new_ones() {
        let (_dir, config) = config("[daemon]\nattempts = 3\nretry_backoff_secs = 60\n");
        let shared = Shared::new(config, options(Tokens::default()));
        let (id, run) = shared.start(request(None)).unwrap();
        assert_eq!(
            shared.start(request(None)).unwrap_err(),
            StartError::Busy(id)
        );
        shared.shutdown.cancel();
        let status = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, RunStatus::Cancelled);
        assert_eq!(
            shared.start(request(None)).unwrap_err(),
            StartError::ShuttingDown
        );
    }

    fn tokens() -> Tokens {
        Tokens::parse("ci:ci-token-0123456789abcdef").unwrap()
    }

    /// Sends one request; returns the status and the JSON body (Null if not JSON).
    async fn call(
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .request(method, url)
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn the_api_authenticates_validates_and_refuses_a_second_run() {
        use reqwest::Method;
        const TOKEN: &str = "ci-token-0123456789abcdef";
        let (_dir, config) = config("[daemon]\nattempts = 3\nretry_backoff_secs = 60\n");
        let shared = Shared::new(
            config,
            options(Tokens::parse(&format!("ci:{TOKEN}")).unwrap()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(
            axum::serve(listener, api::router(Arc::clone(&shared)))
                .with_graceful_shutdown(shared.shutdown.clone().cancelled_owned())
                .into_future(),
        );
        let url = |path: &str| format!("{base}{path}");
        let refresh = url("/v1/targets/dev/refresh");

        assert_eq!(call(Method::GET, url("/healthz"), None, "").await.0, 200);
        let (status, ready) = call(Method::GET, url("/readyz"), None, "").await;
        assert_eq!(status, 503);
        assert!(
            ready["reason"].as_str().unwrap().contains("source"),
            "{ready}"
        );
        let metrics = reqwest::get(url("/metrics")).await.unwrap();
        assert_eq!(metrics.status().as_u16(), 200);
        assert!(
            metrics
                .text()
                .await
                .unwrap()
                .contains("lethe_runs_in_progress{target=\"dev\"} 0")
        );

        let (status, body) = call(Method::POST, refresh.clone(), None, "").await;
        assert_eq!(status, 401);
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        let wrong = "ci-token-0123456789abcdeX";
        assert_eq!(
            call(Method::POST, refresh.clone(), Some(wrong), "").await.0,
            401
        );
        assert_eq!(call(Method::GET, url("/v1/runs"), None, "").await.0, 401);

        for bad in ["{not json", r#"{"profile": "../etc"}"#, r#"{"jobs": 4}"#] {
            let (status, body) = call(Method::POST, refresh.clone(), Some(TOKEN), bad).await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body["error"].is_string(), "{body}");
        }
        let (status, body) = call(
            Method::POST,
            url("/v1/targets/prod/refresh"),
            Some(TOKEN),
            "",
        )
        .await;
        assert_eq!(status, 404);
        assert!(
            body["error"].as_str().unwrap().contains("targets: dev"),
            "{body}"
        );

        let (status, body) = call(Method::POST, refresh.clone(), Some(TOKEN), "").await;
        assert_eq!(status, 202, "{body}");
        let id = body["run_id"].as_str().unwrap().to_owned();
        let (status, body) = call(Method::POST, refresh.clone(), Some(TOKEN), "{}").await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["run_id"], id.as_str());

        // The run fails to connect (transient) and waits to retry, holding the target.
        let mut run = serde_json::Value::Null;
        for _ in 0..100 {
            run = call(Method::GET, url(&format!("/v1/runs/{id}")), Some(TOKEN), "")
                .await
                .1;
            if run["progress"]["phase"] == "waiting to retry" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(run["progress"]["phase"], "waiting to retry", "{run}");
        let view: RunView = serde_json::from_value(run).unwrap();
        assert_eq!(view.status, RunStatus::Running);
        assert_eq!(view.trigger, "api:ci");
        assert_eq!(view.attempt, 1);
        assert!(view.started_at.is_some() && view.ended_at.is_none());

        for (path, status) in [
            ("/v1/runs/not-a-run-id", 400),
            ("/v1/runs/1b4e28ba-2fa1-41d2-883f-0016d3cca427", 404),
            ("/v1/runs?limit=many", 400),
            ("/v1/runs?colour=red", 400),
            ("/v1/nothing", 404),
        ] {
            let (got, body) = call(Method::GET, url(path), Some(TOKEN), "").await;
            assert_eq!(got, status, "{path}: {body}");
            assert!(body["error"].is_string(), "{path}: {body}");
        }
        assert_eq!(call(Method::DELETE, url("/healthz"), None, "").await.0, 405);
        let (_, listed) = call(
            Method::GET,
            url("/v1/runs?target=dev&limit=5"),
            Some(TOKEN),
            "",
        )
        .await;
        assert_eq!(listed["runs"].as_array().unwrap().len(), 1, "{listed}");

        shared.shutdown.cancel();
        shared.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), shared.tasks.wait())
            .await
            .unwrap();
        server.await.unwrap().unwrap();
        assert_eq!(
            shared.runs.get(id.parse().unwrap()).unwrap().status,
            RunStatus::Cancelled
        );
    }

    #[tokio::test]
    async fn a_schedule_that_missed_a_fire_runs_once_at_start_and_then_on_time() {
        let (_dir, config) = config("[daemon]\nattempts = 1\n");
        let history = Arc::new(MemoryHistory::default());
        let shared = Shared::new(
            config,
            DaemonOptions {
                jobs: 1,
                history: Arc::clone(&history) as Arc<dyn History>,
                tokens: Tokens::default(),
            },
        );
        let schedule = |name: &str, catch_up: bool| {
            Arc::new(Schedule {
                name: name.to_owned(),
                cron: "0 0 * * *".to_owned(),
                times: crate::schedule::FireTimes::parse("0 0 * * *", chrono_tz::UTC).unwrap(),
                targets: vec!["dev".to_owned()],
                profile: None,
                catch_up,
                location: crate::config::Location::from_offset(
                    std::path::Path::new("schedules/x.toml"),
                    "",
                    0,
                ),
            })
        };
        // Both schedules last ran two days ago: midnight has passed since.
        for name in ["nightly", "no-catch-up"] {
            let mut earlier = shared.runs.skipped(
                RunRequest {
                    schedule: Some(name.to_owned()),
                    ..request(None)
                },
                "seeded".into(),
            );
            earlier.queued_at -= chrono::Duration::days(2);
            history.started(&earlier).await.unwrap();
        }
        let loops = [
            tokio::spawn(scheduler::run(
                Arc::clone(&shared),
                schedule("nightly", true),
            )),
            tokio::spawn(scheduler::run(
                Arc::clone(&shared),
                schedule("no-catch-up", false),
            )),
        ];
        let mut caught_up = Vec::new();
        for _ in 0..200 {
            caught_up = shared
                .runs
                .list(None, 100)
                .into_iter()
                .filter(|r| r.request.trigger.starts_with("catch-up:"))
                .collect();
            if caught_up.iter().any(|r| r.status.is_final()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(caught_up.len(), 1, "{caught_up:?}");
        assert_eq!(caught_up[0].request.trigger, "catch-up:nightly");
        assert_eq!(
            caught_up[0].status,
            RunStatus::Failed,
            "the source is unreachable"
        );
        shared.shutdown.cancel();
        for schedule_loop in loops {
            tokio::time::timeout(Duration::from_secs(5), schedule_loop)
                .await
                .unwrap()
                .unwrap();
        }
    }

    #[tokio::test]
    async fn an_api_without_tokens_stays_on_loopback_and_out_of_production() {
        let (_dir, local) = config("[daemon]\nlisten = \"127.0.0.1:7070\"\n");
        assert!(listen_addresses(&local, &Tokens::default()).await.is_ok());
        let (_dir, open) = config("[daemon]\nlisten = \"0.0.0.0:7070\"\n");
        let err = listen_addresses(&open, &Tokens::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::OpenApi { .. }), "{err}");
        assert_eq!(err.exit_code(), 2);
        assert!(listen_addresses(&open, &tokens()).await.is_ok());
        let (_dir, production) = config("[daemon]\nmode = \"production\"\n");
        let err = listen_addresses(&production, &Tokens::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NoTokens), "{err}");
        assert!(listen_addresses(&production, &tokens()).await.is_ok());
        let (_dir, bad) = config("[daemon]\nlisten = \"nowhere\"\n");
        let err = listen_addresses(&bad, &tokens()).await.unwrap_err();
        assert!(matches!(err, Error::BadListen { .. }), "{err}");
    }

    #[test]
    fn busy_is_skipped_cancel_is_cancelled_and_the_rest_failed() {
        let busy = pipeline::Error::from(postgres::Error::Busy(crate::engine::Held {
            target: "dev".into(),
            holder: None,
            waited: std::time::Duration::ZERO,
        }));
        assert_eq!(status_of(&busy), RunStatus::Skipped);
        assert!(!busy.is_transient(), "a busy target is not retried");
        // An SQLite or MySQL target held by another run is skipped the same way.
        let busy_file = pipeline::Error::Engine(crate::engine::Error::Busy(crate::engine::Held {
            target: "dev.sqlite".into(),
            holder: None,
            waited: std::time::Duration::ZERO,
        }));
        assert_eq!(status_of(&busy_file), RunStatus::Skipped);
        assert!(!busy_file.is_transient());
        assert_eq!(status_of(&pipeline::Error::Cancelled), RunStatus::Cancelled);
        assert_eq!(
            status_of(&postgres::Error::NoSuchSchema("x".into()).into()),
            RunStatus::Failed
        );
    }
}
