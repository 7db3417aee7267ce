//! The run executor: a claimed run tried, retried while its failures are transient,
//! cancelled on request or at shutdown, and recorded (the run table, the history, the
//! metrics). The scheduler and the API only ask for runs; this is where they happen.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::runs::{RunId, RunRecord, RunRequest, RunStatus};
use super::{MAX_BACKOFF, Shared, StartError};
use crate::config::Config;
use crate::pipeline::{self, LiveProgress, RefreshOptions};
use crate::report::{Outcome, RefreshSummary};
use crate::rules::RuleSet;

impl Shared {
    /// Claims the target and starts the run in the background.
    pub(crate) fn start(
        self: &Arc<Self>,
        request: RunRequest,
    ) -> Result<(RunId, JoinHandle<RunStatus>), StartError> {
        if self.shutdown.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let cancel = self.shutdown.child_token();
        let record = self
            .runs
            .claim(request, cancel.clone())
            .map_err(StartError::Busy)?;
        let id = record.id;
        let shared = Arc::clone(self);
        Ok((id, self.tasks.spawn(shared.execute(record, cancel))))
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
    async fn execute(self: Arc<Self>, record: RunRecord, cancel: CancellationToken) -> RunStatus {
        let id = record.id;
        let target = record.request.target.clone();
        info!(run = %id, target = %target, trigger = %record.request.trigger, "run started");
        self.runs
            .annotate(id, None, rules_fingerprint(&self.config, &record.request));
        self.record_started(&record).await;
        self.metrics.started(&target);
        let clock = Instant::now();
        let result = self.tries(&record, &cancel).await;
        let (status, mut error, rows, bytes) = match &result {
            Ok(summary) => (RunStatus::Succeeded, None, summary.rows, summary.bytes),
            Err(error) => (status_of(error), Some(error.to_string()), 0, 0),
        };
        if status == RunStatus::Cancelled
            && let Some(by) = self.runs.get(id).and_then(|r| r.cancelled_by)
        {
            error = error.map(|e| format!("{e} (cancelled by {by})"));
        }
        self.metrics
            .ended(&target, status, clock.elapsed(), rows, bytes);
        let finished = self
            .runs
            .finish(id, status, error.clone(), result.as_ref().ok());
        let seconds = clock.elapsed().as_secs_f64();
        match (&result, status) {
            (Ok(summary), _) => info!(run = %id, target = %target, rows = summary.rows,
                bytes = summary.bytes, seconds, "run succeeded"),
            (Err(_), RunStatus::Skipped) => info!(run = %id, target = %target,
                "skipped: already refreshing (another lethe run holds the target)"),
            (Err(_), RunStatus::Cancelled) => warn!(run = %id, target = %target,
                error = error.as_deref().unwrap_or(""), seconds, "run cancelled"),
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
            if cancel.is_cancelled() {
                return Err(pipeline::Error::Cancelled);
            }
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
        match self.history.started(record).await {
            Ok(history_id) => self.runs.annotate(record.id, history_id, None),
            Err(error) => {
                warn!(run = %record.id, %error, "could not record the run's start in the history");
            }
        }
    }

    async fn record_finished(&self, record: &RunRecord, summary: Option<&RefreshSummary>) {
        if let Err(error) = self.history.finished(record, summary).await {
            warn!(run = %record.id, %error, "could not record the run's end in the history");
        }
    }
}

/// The rules fingerprint (hex) a run will use: its profile, else its target's; `None`
/// when the rules do not load (the run then fails and says why).
fn rules_fingerprint(config: &Config, request: &RunRequest) -> Option<String> {
    let profile = request.profile.clone().or_else(|| {
        config
            .targets
            .get(&request.target)
            .and_then(|t| t.profile.clone())
    });
    RuleSet::load(&config.masking.rules_dir, profile.as_deref())
        .ok()
        .map(|rules| crate::audit::hex(&rules.fingerprint))
}

/// A run's final status from the error that ended it.
pub(crate) fn status_of(error: &pipeline::Error) -> RunStatus {
    match error.outcome() {
        Outcome::Cancelled => RunStatus::Cancelled,
        Outcome::Skipped => RunStatus::Skipped,
        Outcome::Running | Outcome::Succeeded | Outcome::Failed => RunStatus::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Tokens;
    use crate::daemon::testing::{config, options, request};
    use crate::engine::postgres;
    use std::time::Duration;

    #[tokio::test]
    async fn transient_failures_are_retried_with_backoff_then_fail() {
        let (_dir, config) = config("[daemon]\nattempts = 2\nretry_backoff_secs = 1\n");
        let shared = Shared::new(config, Vec::new(), options(Tokens::default()));
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
        // The rules were read for their fingerprint even though the run failed.
        assert_eq!(record.rules_sha256.as_deref().map(str::len), Some(64));
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
        let shared = Shared::new(config, Vec::new(), options(Tokens::default()));
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
        let shared = Shared::new(config, Vec::new(), options(Tokens::default()));
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

    #[tokio::test]
    async fn a_cancelled_run_stops_frees_its_target_and_says_who_cancelled_it() {
        let (_dir, config) = config("[daemon]\nattempts = 3\nretry_backoff_secs = 60\n");
        let shared = Shared::new(config, Vec::new(), options(Tokens::default()));
        let (id, run) = shared.start(request(None)).unwrap();
        shared.runs.cancel(id, "api:ops").unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, RunStatus::Cancelled);
        let record = shared.runs.get(id).unwrap();
        let error = record.error.unwrap_or_default();
        assert!(error.ends_with("(cancelled by api:ops)"), "{error}");
        assert_eq!(shared.runs.holder("dev"), None);
        // The daemon goes on: the next run starts.
        assert!(shared.start(request(None)).is_ok());
        shared.shutdown.cancel();
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
