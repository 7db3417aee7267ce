//! The durable run history for the daemon: its runs go into the same audit log as
//! `lethe refresh`'s, so `lethe runs` shows both and a restarted daemon knows which
//! schedule fires it missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::history::{History, HistoryError, StoredRun};
use super::runs::{RunId, RunRecord, RunStatus};
use crate::audit::{self, AuditLog, Outcome, RunEnd, RunStart, Trigger};
use crate::config::Config;
use crate::report::RefreshSummary;

/// The audit log as the daemon's [`History`].
pub struct AuditHistory {
    log: AuditLog,
    config: Arc<Config>,
    /// The audit id of each run the daemon has started and not yet finished.
    ids: Mutex<HashMap<RunId, audit::RunId>>,
}

impl AuditHistory {
    /// Records the daemon's runs in `log`, with the fingerprints of `config`.
    pub fn new(log: AuditLog, config: Arc<Config>) -> Self {
        Self {
            log,
            config,
            ids: Mutex::default(),
        }
    }
}

/// The audit trigger of a daemon trigger: a catch-up run counts as its schedule's.
fn trigger(daemon: &str) -> Trigger {
    match daemon.split_once(':') {
        Some(("catch-up", name)) => Trigger::Schedule(name.to_owned()),
        _ => daemon
            .parse()
            .unwrap_or_else(|_| Trigger::Api(daemon.to_owned())),
    }
}

impl History for AuditHistory {
    fn last_started<'a>(
        &'a self,
        schedule: &'a str,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, HistoryError>> {
        Box::pin(async move {
            Ok(self
                .log
                .last_started(&Trigger::Schedule(schedule.to_owned()))
                .await?)
        })
    }

    fn started<'a>(
        &'a self,
        run: &'a RunRecord,
    ) -> BoxFuture<'a, Result<Option<i64>, HistoryError>> {
        Box::pin(async move {
            let start = RunStart::now(
                &self.config,
                trigger(&run.request.trigger),
                &run.request.target,
                run.request.profile.as_deref(),
            );
            let id = self.log.start(&start).await?;
            self.ids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(run.id, id);
            Ok(Some(id.0))
        })
    }

    fn finished<'a>(
        &'a self,
        run: &'a RunRecord,
        summary: Option<&'a RefreshSummary>,
    ) -> BoxFuture<'a, Result<(), HistoryError>> {
        Box::pin(async move {
            let id = self
                .ids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&run.id);
            let Some(id) = id else {
                return Err(format!("run {} has no start in the history", run.id).into());
            };
            let end = match (summary, run.status) {
                (Some(summary), RunStatus::Succeeded) => RunEnd::succeeded(summary),
                (_, status) => {
                    let outcome = match status {
                        RunStatus::Succeeded => Outcome::Succeeded,
                        RunStatus::Cancelled => Outcome::Cancelled,
                        RunStatus::Skipped => Outcome::Skipped,
                        RunStatus::Queued | RunStatus::Running | RunStatus::Failed => {
                            Outcome::Failed
                        }
                    };
                    RunEnd::unfinished(outcome, run.error.as_deref().unwrap_or(""))
                }
            };
            self.log.finish(id, &end).await?;
            Ok(())
        })
    }

    fn recent<'a>(
        &'a self,
        target: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<StoredRun>, HistoryError>> {
        Box::pin(async move { Ok(self.log.list(Some(target), limit).await?) })
    }

    fn run(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredRun>, HistoryError>> {
        Box::pin(async move { Ok(self.log.get(audit::RunId(id)).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_runs_count_as_their_schedules() {
        assert_eq!(
            trigger("catch-up:nightly"),
            Trigger::Schedule("nightly".into())
        );
        assert_eq!(
            trigger("schedule:nightly"),
            Trigger::Schedule("nightly".into())
        );
        assert_eq!(trigger("api:ci"), Trigger::Api("ci".into()));
    }
}
