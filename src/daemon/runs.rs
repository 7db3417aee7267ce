//! The daemon's runs: what each one is doing or did, and which targets are busy. One
//! table behind one lock, so that claiming a target and recording the run that holds it
//! happen together: two triggers can never both see a target free.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::pipeline::{LiveProgress, ProgressSnapshot};
use crate::report::{RefreshSummary, TableMoved};

/// How many finished runs `GET /v1/runs` remembers; older ones live only in the history.
const KEPT_RUNS: usize = 1000;

/// A run's id: 128 random bits, written like a UUID (version 4), so that ids from two
/// daemons or two restarts never collide in a shared history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunId(u128);

impl RunId {
    /// A fresh random id.
    pub fn random() -> Self {
        let bits: u128 = rand::random();
        // The version nibble (4) and the RFC 4122 variant bits (10), as a UUID v4 has.
        let versioned = (bits & !(0xf << 76)) | (0x4 << 76);
        Self((versioned & !(0x3 << 62)) | (0x2 << 62))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

impl FromStr for RunId {
    type Err = String;

    /// Reads the 8-4-4-4-12 hex form (either case).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || "a run id looks like 1b4e28ba-2fa1-41d2-883f-0016d3cca427".to_owned();
        let groups: Vec<&str> = text.split('-').collect();
        let shape_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
        if !shape_ok {
            return Err(bad());
        }
        u128::from_str_radix(&groups.concat(), 16)
            .map(Self)
            .map_err(|_| bad())
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Accepted; its task has not begun.
    Queued,
    /// Refreshing (or waiting to retry after a transient failure).
    Running,
    /// The new copy is live.
    Succeeded,
    /// It stopped on an error; the live copy is untouched.
    Failed,
    /// Shutdown stopped it before the swap; the live copy is untouched.
    Cancelled,
    /// The target was already being refreshed (by this daemon or another lethe run).
    Skipped,
}

impl RunStatus {
    /// The word used in the API, the logs and the metrics' `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
        }
    }

    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// What is asked for: one refresh of one target.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The target's name in lethe.toml.
    pub target: String,
    /// Who asked: `schedule:<name>`, `catch-up:<name>` or `api:<token id>`.
    pub trigger: String,
    /// The schedule that fired it, if one did.
    pub schedule: Option<String>,
    /// The rules profile, over the target's own.
    pub profile: Option<String>,
}

/// One run as the API shows it and the history stores it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// What was asked.
    pub request: RunRequest,
    /// Where it stands.
    pub status: RunStatus,
    /// The try under way or last made (1 = the first; retries after transient failures
    /// count up).
    pub attempt: u32,
    /// When it was accepted.
    pub queued_at: DateTime<Utc>,
    /// When its first try began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its counters: live while it runs, final afterwards.
    pub progress: ProgressSnapshot,
    /// Why it failed, was cancelled or skipped.
    pub error: Option<String>,
    /// Its id in the run history, once recorded there.
    pub history_id: Option<i64>,
    /// The rules fingerprint (hex) it ran with, when the rules could be read.
    pub rules_sha256: Option<String>,
    /// What each table moved (a successful run's; empty otherwise).
    pub tables: Vec<TableMoved>,
    /// Who asked to cancel it (`api:<token id>`), if someone did.
    pub cancelled_by: Option<String>,
}

/// Why a run could not be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRefused {
    /// No run of that id is known.
    Unknown,
    /// It already ended so.
    Ended(RunStatus),
}

/// Every run this daemon knows, and the target each running one holds.
#[derive(Default)]
pub struct Runs {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<RunId, Entry>,
    /// Ids oldest first, for listing and for forgetting the oldest finished runs.
    order: VecDeque<RunId>,
    /// target -> the run that holds it.
    busy: HashMap<String, RunId>,
}

struct Entry {
    record: RunRecord,
    /// The counters of the try under way.
    live: Option<Arc<LiveProgress>>,
    /// Stops the run before its swap (`POST /v1/runs/{id}/cancel`, shutdown).
    cancel: Option<CancellationToken>,
}

impl Entry {
    /// The record with the live counters read now.
    fn current(&self) -> RunRecord {
        let mut record = self.record.clone();
        if let Some(live) = &self.live {
            record.progress = live.snapshot();
        }
        record
    }
}

/// Counters before a run's first try.
fn no_progress() -> ProgressSnapshot {
    ProgressSnapshot {
        phase: "queued",
        tables_total: 0,
        tables_done: 0,
        rows: 0,
        bytes: 0,
    }
}

impl Runs {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere while holding the lock leaves the table consistent (every
        // change is one insert or one field), so keep serving it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a queued run and marks its target busy, or returns the run that already
    /// holds the target. `cancel` is what [`Runs::cancel`] cancels.
    pub fn claim(
        &self,
        request: RunRequest,
        cancel: CancellationToken,
    ) -> Result<RunRecord, RunId> {
        let mut table = self.table();
        if let Some(holder) = table.busy.get(&request.target) {
            return Err(*holder);
        }
        let record = RunRecord {
            id: RunId::random(),
            request,
            status: RunStatus::Queued,
            attempt: 0,
            queued_at: Utc::now(),
            started_at: None,
            ended_at: None,
            progress: no_progress(),
            error: None,
            history_id: None,
            rules_sha256: None,
            tables: Vec::new(),
            cancelled_by: None,
        };
        table.busy.insert(record.request.target.clone(), record.id);
        table.insert(record.clone(), Some(cancel));
        Ok(record)
    }

    /// Records a run that did not start because its target was busy.
    pub fn skipped(&self, request: RunRequest, reason: String) -> RunRecord {
        let now = Utc::now();
        let record = RunRecord {
            id: RunId::random(),
            request,
            status: RunStatus::Skipped,
            attempt: 0,
            queued_at: now,
            started_at: None,
            ended_at: Some(now),
            progress: no_progress(),
            error: Some(reason),
            history_id: None,
            rules_sha256: None,
            tables: Vec::new(),
            cancelled_by: None,
        };
        self.table().insert(record.clone(), None);
        record
    }

    /// Notes the run's id in the run history and the rules fingerprint it runs with.
    pub fn annotate(&self, id: RunId, history_id: Option<i64>, rules_sha256: Option<String>) {
        if let Some(entry) = self.table().entries.get_mut(&id) {
            entry.record.history_id = history_id.or(entry.record.history_id);
            entry.record.rules_sha256 = rules_sha256.or(entry.record.rules_sha256.take());
        }
    }

    /// Asks a run to stop before its swap, on behalf of `by`; returns it as it is now.
    pub fn cancel(&self, id: RunId, by: &str) -> Result<RunRecord, CancelRefused> {
        let mut table = self.table();
        let entry = table.entries.get_mut(&id).ok_or(CancelRefused::Unknown)?;
        if entry.record.status.is_final() {
            return Err(CancelRefused::Ended(entry.record.status));
        }
        entry
            .record
            .cancelled_by
            .get_or_insert_with(|| by.to_owned());
        if let Some(cancel) = &entry.cancel {
            cancel.cancel();
        }
        Ok(entry.current())
    }

    /// Marks try `attempt` of a run as begun, counting into `live`.
    pub fn attempt(&self, id: RunId, attempt: u32, live: Arc<LiveProgress>) {
        if let Some(entry) = self.table().entries.get_mut(&id) {
            entry.record.status = RunStatus::Running;
            entry.record.attempt = attempt;
            entry.record.started_at.get_or_insert_with(Utc::now);
            entry.live = Some(live);
        }
    }

    /// Ends a run: its final status, counters, error and (when it succeeded) what it
    /// moved; frees its target.
    pub fn finish(
        &self,
        id: RunId,
        status: RunStatus,
        error: Option<String>,
        summary: Option<&RefreshSummary>,
    ) -> Option<RunRecord> {
        let mut table = self.table();
        let entry = table.entries.get_mut(&id)?;
        entry.record = entry.current();
        entry.live = None;
        entry.cancel = None;
        entry.record.status = status;
        entry.record.error = error;
        if let Some(summary) = summary {
            entry.record.tables = summary.moved.clone();
            entry.record.rules_sha256 = Some(crate::audit::hex(&summary.rules_fingerprint));
        }
        entry.record.ended_at = Some(Utc::now());
        let record = entry.record.clone();
        if table.busy.get(&record.request.target) == Some(&id) {
            table.busy.remove(&record.request.target);
        }
        Some(record)
    }

    /// One run, with its counters as they are now.
    pub fn get(&self, id: RunId) -> Option<RunRecord> {
        self.table().entries.get(&id).map(Entry::current)
    }

    /// The newest `limit` runs, newest first, of one target or of all.
    pub fn list(&self, target: Option<&str>, limit: usize) -> Vec<RunRecord> {
        self.list_where(target, limit, |_| true)
    }

    /// [`Runs::list`] of the targets `visible` lets through (a token's targets).
    pub fn list_where(
        &self,
        target: Option<&str>,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> Vec<RunRecord> {
        let table = self.table();
        table
            .order
            .iter()
            .rev()
            .filter_map(|id| table.entries.get(id))
            .filter(|e| target.is_none_or(|t| e.record.request.target == t))
            .filter(|e| visible(&e.record.request.target))
            .take(limit)
            .map(Entry::current)
            .collect()
    }

    /// The run holding `target`, if one does.
    pub fn holder(&self, target: &str) -> Option<RunId> {
        self.table().busy.get(target).copied()
    }
}

impl Table {
    /// Adds a run, forgetting the oldest finished ones past [`KEPT_RUNS`].
    fn insert(&mut self, record: RunRecord, cancel: Option<CancellationToken>) {
        self.order.push_back(record.id);
        self.entries.insert(
            record.id,
            Entry {
                record,
                live: None,
                cancel,
            },
        );
        while self.order.len() > KEPT_RUNS {
            let Some(position) = self.order.iter().position(|id| {
                self.entries
                    .get(id)
                    .is_none_or(|e| e.record.status.is_final())
            }) else {
                break;
            };
            if let Some(id) = self.order.remove(position) {
                self.entries.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str) -> RunRequest {
        RunRequest {
            target: target.to_owned(),
            trigger: "api:test".to_owned(),
            schedule: None,
            profile: None,
        }
    }

    #[test]
    fn ids_print_as_uuid_v4_and_read_back() {
        let id = RunId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4", "{text}");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
        assert_eq!(text.parse::<RunId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<RunId>(), Ok(id));
        assert_ne!(RunId::random(), id);
        for bad in [
            "",
            "1234",
            "1b4e28ba2fa141d2883f0016d3cca427",
            "1b4e28ba-2fa1-41d2-883f-0016d3cca42g",
            "+b4e28ba-2fa1-41d2-883f-0016d3cca427",
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427-",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_busy_target_cannot_be_claimed_twice_until_its_run_ends() {
        let runs = Runs::default();
        let first = runs
            .claim(request("dev"), CancellationToken::new())
            .unwrap();
        assert_eq!(
            runs.claim(request("dev"), CancellationToken::new())
                .unwrap_err(),
            first.id
        );
        // Another target is independent.
        let other = runs
            .claim(request("staging"), CancellationToken::new())
            .unwrap();
        assert_eq!(runs.holder("dev"), Some(first.id));

        runs.attempt(first.id, 1, Arc::default());
        assert_eq!(runs.get(first.id).unwrap().status, RunStatus::Running);
        let ended = runs
            .finish(first.id, RunStatus::Failed, Some("boom".into()), None)
            .unwrap();
        assert_eq!(ended.status, RunStatus::Failed);
        assert!(ended.ended_at.is_some() && ended.started_at.is_some());
        assert_eq!(runs.holder("dev"), None);
        let second = runs
            .claim(request("dev"), CancellationToken::new())
            .unwrap();
        assert_ne!(second.id, first.id);

        let skipped = runs.skipped(request("dev"), "already refreshing".into());
        assert_eq!(skipped.status, RunStatus::Skipped);
        // A skipped run does not free the target its holder still has.
        assert_eq!(runs.holder("dev"), Some(second.id));
        let listed: Vec<RunId> = runs.list(None, 10).iter().map(|r| r.id).collect();
        assert_eq!(listed, [skipped.id, second.id, other.id, first.id]);
        assert_eq!(runs.list(Some("staging"), 10).len(), 1);
        assert_eq!(runs.list(None, 2).len(), 2);
    }

    #[test]
    fn live_counters_show_while_running_and_stay_after() {
        let runs = Runs::default();
        let run = runs
            .claim(request("dev"), CancellationToken::new())
            .unwrap();
        assert_eq!(runs.get(run.id).unwrap().progress.phase, "queued");
        let live = Arc::new(LiveProgress::default());
        runs.attempt(run.id, 1, Arc::clone(&live));
        live.set_phase("copying");
        assert_eq!(runs.get(run.id).unwrap().progress.phase, "copying");
        live.set_phase("done");
        runs.finish(run.id, RunStatus::Succeeded, None, None);
        live.set_phase("changed after the end");
        assert_eq!(runs.get(run.id).unwrap().progress.phase, "done");
    }

    #[test]
    fn a_cancel_reaches_the_run_once_and_not_after_it_ended() {
        let runs = Runs::default();
        let token = CancellationToken::new();
        let run = runs.claim(request("dev"), token.clone()).unwrap();
        assert_eq!(
            runs.cancel(RunId::random(), "api:ops").unwrap_err(),
            CancelRefused::Unknown
        );
        let asked = runs.cancel(run.id, "api:ops").unwrap();
        assert!(token.is_cancelled());
        assert_eq!(asked.cancelled_by.as_deref(), Some("api:ops"));
        // The first to ask is the one named.
        runs.cancel(run.id, "api:ci").unwrap();
        runs.finish(run.id, RunStatus::Cancelled, None, None);
        assert_eq!(
            runs.get(run.id).unwrap().cancelled_by.as_deref(),
            Some("api:ops")
        );
        assert_eq!(
            runs.cancel(run.id, "api:ops").unwrap_err(),
            CancelRefused::Ended(RunStatus::Cancelled)
        );
    }

    #[test]
    fn old_finished_runs_are_forgotten_but_running_ones_are_kept() {
        let runs = Runs::default();
        let running = runs
            .claim(request("dev"), CancellationToken::new())
            .unwrap();
        for _ in 0..KEPT_RUNS + 5 {
            runs.skipped(request("dev"), "busy".into());
        }
        assert!(runs.get(running.id).is_some());
        assert_eq!(runs.list(None, usize::MAX).len(), KEPT_RUNS);
    }
}
