//! The run history the daemon writes to and reads its catch-up decisions from. The
//! daemon holds it as `dyn History`: the durable audit log implements it, and
//! [`MemoryHistory`] stands in where nothing must outlive the process (tests, and a
//! daemon without an audit store).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::runs::RunRecord;
use crate::report::RefreshSummary;

/// A run as the history keeps it: also `lethe refresh`'s and other daemons' runs, and
/// this daemon's from before it started.
pub type StoredRun = crate::audit::RunRecord;

/// Why the history could not be read or written. The daemon logs it and goes on: a run
/// is never refused because its record could not be kept.
pub type HistoryError = Box<dyn std::error::Error + Send + Sync>;

/// Where runs are recorded.
pub trait History: Send + Sync {
    /// When the latest run fired by the schedule named `schedule` began (queued, or
    /// skipped), if any is recorded: a schedule whose previous fire time is later missed
    /// it while no daemon ran.
    fn last_started<'a>(
        &'a self,
        schedule: &'a str,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, HistoryError>>;

    /// A run was accepted (or skipped: then [`History::finished`] follows at once);
    /// returns the run's id in the history, if it has ids.
    fn started<'a>(
        &'a self,
        run: &'a RunRecord,
    ) -> BoxFuture<'a, Result<Option<i64>, HistoryError>>;

    /// A run ended, with its status, counters and error, and what a successful run moved
    /// table by table.
    fn finished<'a>(
        &'a self,
        run: &'a RunRecord,
        summary: Option<&'a RefreshSummary>,
    ) -> BoxFuture<'a, Result<(), HistoryError>>;

    /// The newest `limit` runs of `target`, newest first, whoever ran them: the status
    /// page's last run of a target after a restart, or after a `lethe refresh` by hand.
    fn recent<'a>(
        &'a self,
        target: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<StoredRun>, HistoryError>>;

    /// One run by its history id.
    fn run(&self, id: i64) -> BoxFuture<'_, Result<Option<StoredRun>, HistoryError>>;
}

/// A history that lives as long as the process: the last start of each schedule.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    last: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl History for MemoryHistory {
    fn last_started<'a>(
        &'a self,
        schedule: &'a str,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, HistoryError>> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(schedule)
            .copied();
        Box::pin(async move { Ok(last) })
    }

    fn started<'a>(
        &'a self,
        run: &'a RunRecord,
    ) -> BoxFuture<'a, Result<Option<i64>, HistoryError>> {
        if let Some(schedule) = &run.request.schedule {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let at = last.entry(schedule.clone()).or_insert(run.queued_at);
            *at = (*at).max(run.queued_at);
        }
        Box::pin(async { Ok(None) })
    }

    fn finished<'a>(
        &'a self,
        _run: &'a RunRecord,
        _summary: Option<&'a RefreshSummary>,
    ) -> BoxFuture<'a, Result<(), HistoryError>> {
        Box::pin(async { Ok(()) })
    }

    /// Nothing outlives the process here: the daemon's own runs are all there is.
    fn recent<'a>(
        &'a self,
        _target: &'a str,
        _limit: u32,
    ) -> BoxFuture<'a, Result<Vec<StoredRun>, HistoryError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn run(&self, _id: i64) -> BoxFuture<'_, Result<Option<StoredRun>, HistoryError>> {
        Box::pin(async { Ok(None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::runs::{RunRequest, Runs};

    #[tokio::test]
    async fn remembers_the_latest_start_per_schedule() {
        let history = MemoryHistory::default();
        let runs = Runs::default();
        let fired = |schedule: Option<&str>| RunRequest {
            target: "dev".into(),
            trigger: "test".into(),
            schedule: schedule.map(str::to_owned),
            profile: None,
        };
        assert_eq!(history.last_started("nightly").await.unwrap(), None);
        let first = runs.skipped(fired(Some("nightly")), "busy".into());
        let mut later = runs.skipped(fired(Some("nightly")), "busy".into());
        later.queued_at = first.queued_at + chrono::Duration::seconds(5);
        history.started(&later).await.unwrap();
        history.started(&first).await.unwrap();
        history
            .started(&runs.skipped(fired(None), "busy".into()))
            .await
            .unwrap();
        assert_eq!(
            history.last_started("nightly").await.unwrap(),
            Some(later.queued_at)
        );
        assert_eq!(history.last_started("hourly").await.unwrap(), None);
    }
}
