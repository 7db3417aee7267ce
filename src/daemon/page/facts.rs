//! What the pages show, gathered from this daemon's runs and from the run history: a
//! run's facts, a target's line, a schedule's next fire times, each page's frame.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tracing::warn;

use super::super::Shared;
use super::super::access::Caller;
use super::super::auth::Action;
use super::super::history::StoredRun;
use super::super::runs::{RunRecord, RunStatus};
use crate::engine::Kind;
use crate::report::Outcome;

/// How many of a target's latest history runs are looked through for its last finished
/// one (skipped runs are passed over).
const HISTORY_LOOK: u32 = 20;

/// A run as a row or a page shows it, from this daemon's table or from the history.
pub(crate) struct RunFacts {
    /// Its page, relative to the site's root.
    pub link: String,
    /// This daemon's id, or `#<n>` for a history run.
    pub id: String,
    pub target: String,
    pub status: &'static str,
    pub trigger: String,
    pub schedule: Option<String>,
    pub profile: Option<String>,
    /// Tries made (unknown for history runs).
    pub attempt: Option<u32>,
    pub queued: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    /// Scrubbed of the config's secrets.
    pub error: Option<String>,
    pub rules: Option<String>,
    pub history_id: Option<i64>,
    pub tables: Vec<TableFacts>,
    /// The zone its times are also shown in (its schedule's, else its target's first).
    pub zone: Option<Tz>,
    /// Counters of a run under way.
    pub live: Option<Live>,
    /// Whether the caller may cancel it now.
    pub may_cancel: bool,
}

impl RunFacts {
    /// From start to end.
    pub fn duration(&self) -> Option<Duration> {
        let (start, end) = (self.started.or(self.queued)?, self.ended?);
        (end - start).to_std().ok()
    }
}

/// One table of a run.
pub(crate) struct TableFacts {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    /// `None` when not measured.
    pub seconds: Option<f64>,
}

/// The counters of a run under way.
pub(crate) struct Live {
    /// This daemon's run id, which the script polls `/v1/runs/{id}` with.
    pub id: String,
    pub phase: String,
    pub tables_done: u64,
    pub tables_total: u64,
    pub rows: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// A target's line on the page.
pub(crate) struct TargetView {
    pub name: String,
    pub engine: &'static str,
    pub last: Option<RunFacts>,
    /// The run holding it now.
    pub busy: Option<String>,
    pub may_refresh: bool,
    pub may_rollback: bool,
}

/// A schedule with its next fire times.
pub(crate) struct ScheduleView {
    pub name: String,
    pub cron: String,
    pub zone: Tz,
    /// The ones the caller may see.
    pub targets: Vec<String>,
    pub catch_up: bool,
    pub next: Vec<DateTime<Utc>>,
}

/// What every page's frame needs: where the root is, who is signed in.
pub(crate) struct Chrome {
    /// `""`, `"../"`, `"../../"`: the site's root relative to this page, so the page
    /// works behind a proxy that serves it under a prefix.
    pub base: &'static str,
    /// The token's id and what it may do (`None`: not signed in, or no tokens).
    pub who: Option<(String, String)>,
    /// The CSRF token for this page's forms.
    pub csrf: String,
    /// No tokens are configured: the page is open to local users.
    pub open: bool,
    /// A run is under way: refresh the page without JavaScript.
    pub reload: bool,
}

/// The engine of a target, by its URL's scheme.
pub(super) fn engine_of(shared: &Shared, target: &str) -> &'static str {
    shared
        .config
        .targets
        .get(target)
        .map_or(Kind::Postgres, |t| Kind::of(&t.url))
        .name()
}

/// The zone a run's times are also shown in: its schedule's, else the first schedule
/// of its target's.
pub(super) fn zone_of(shared: &Shared, schedule: Option<&str>, target: &str) -> Option<Tz> {
    schedule
        .and_then(|name| shared.schedules.iter().find(|s| s.name == name))
        .or_else(|| {
            shared
                .schedules
                .iter()
                .find(|s| s.targets.iter().any(|t| t == target))
        })
        .map(|s| s.times.zone())
}

/// A run of this daemon as the page shows it.
pub(super) fn facts_of_record(shared: &Shared, caller: &Caller, run: &RunRecord) -> RunFacts {
    let target = &run.request.target;
    let succeeded = run.status == RunStatus::Succeeded;
    let live = (!run.status.is_final()).then(|| Live {
        id: run.id.to_string(),
        phase: run.progress.phase.to_owned(),
        tables_done: run.progress.tables_done,
        tables_total: run.progress.tables_total,
        rows: run.progress.rows,
        bytes: run.progress.bytes,
        seconds: run
            .started_at
            .map_or(0.0, |s| (Utc::now() - s).as_seconds_f64()),
    });
    RunFacts {
        link: format!("runs/{}", run.id),
        id: run.id.to_string(),
        target: target.clone(),
        status: run.status.as_str(),
        trigger: run.request.trigger.clone(),
        schedule: run.request.schedule.clone(),
        profile: run.request.profile.clone(),
        attempt: Some(run.attempt),
        queued: Some(run.queued_at),
        started: run.started_at,
        ended: run.ended_at,
        rows: succeeded.then_some(run.progress.rows),
        bytes: succeeded.then_some(run.progress.bytes),
        error: run.error.as_deref().map(|e| shared.scrub(e)),
        rules: run.rules_sha256.clone(),
        history_id: run.history_id,
        tables: run
            .tables
            .iter()
            .map(|t| TableFacts {
                name: t.table.to_string(),
                rows: t.rows,
                bytes: t.bytes,
                seconds: (t.seconds > 0.0).then_some(t.seconds),
            })
            .collect(),
        zone: zone_of(shared, run.request.schedule.as_deref(), target),
        may_cancel: live.is_some() && caller.principal.may(Action::Cancel, target),
        live,
    }
}

/// A run of the history as the page shows it.
pub(super) fn facts_of_stored(shared: &Shared, run: &StoredRun) -> RunFacts {
    let schedule = match &run.trigger {
        crate::audit::Trigger::Schedule(name) => Some(name.clone()),
        _ => None,
    };
    RunFacts {
        link: format!("runs/{}", run.id.0),
        id: format!("#{}", run.id.0),
        target: run.target.clone(),
        status: run.outcome.as_str(),
        trigger: run.trigger.to_string(),
        zone: zone_of(shared, schedule.as_deref(), &run.target),
        schedule,
        profile: run.profile.clone(),
        attempt: None,
        queued: None,
        started: Some(run.started_at),
        ended: run.ended_at,
        rows: run.rows,
        bytes: run.bytes,
        error: run.error.as_deref().map(|e| shared.scrub(e)),
        rules: run.rules_sha256.clone(),
        history_id: Some(run.id.0),
        tables: run
            .tables
            .iter()
            .map(|t| TableFacts {
                name: format!("{}.{}", t.schema, t.table),
                rows: t.rows,
                bytes: t.bytes,
                seconds: t.seconds.filter(|s| *s > 0.0),
            })
            .collect(),
        live: None,
        may_cancel: false,
    }
}

/// The last finished run of `target` that did something (skipped ones are passed over):
/// this daemon's, unless the history holds a later one (a `lethe refresh` by hand,
/// another daemon, or a run from before this daemon started).
pub(super) async fn last_run(shared: &Shared, caller: &Caller, target: &str) -> Option<RunFacts> {
    let mine = shared
        .runs
        .list(Some(target), usize::MAX)
        .into_iter()
        .find(|r| r.status.is_final() && r.status != RunStatus::Skipped);
    let stored = match shared.history.recent(target, HISTORY_LOOK).await {
        Ok(runs) => runs.into_iter().find(|r| {
            r.ended_at.is_some() && !matches!(r.outcome, Outcome::Skipped | Outcome::Running)
        }),
        Err(error) => {
            warn!(%error, target, "cannot read the run history for the status page");
            None
        }
    };
    match (mine, stored) {
        (Some(mine), Some(stored))
            if mine.history_id != Some(stored.id.0) && stored.started_at > mine.queued_at =>
        {
            Some(facts_of_stored(shared, &stored))
        }
        (Some(mine), _) => Some(facts_of_record(shared, caller, &mine)),
        (None, Some(stored)) => Some(facts_of_stored(shared, &stored)),
        (None, None) => None,
    }
}
