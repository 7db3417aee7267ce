//! Schedule fires: each schedule sleeps until its next fire time, then refreshes its
//! targets in order. A fire whose target is still refreshing is skipped, not queued, so
//! a slow run never piles up a backlog. At startup a schedule whose previous fire time
//! came after its last recorded run (the daemon was down) gets one catch-up run.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::{Shared, StartError};
use crate::daemon::runs::RunRequest;
use crate::schedule::{FireTimes, Schedule};

/// The longest single sleep: waking at least this often notices a wall clock that
/// jumped (NTP step, suspend) instead of firing far off the hour.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How far back a missed fire is looked for: a weekly schedule and a bit.
const LOOK_BACK: chrono::TimeDelta = chrono::TimeDelta::days(8);

/// The latest fire time at or before `now`, within [`LOOK_BACK`].
pub fn previous_fire(times: &FireTimes, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // next_after only looks forward. Bisect for the last instant whose next fire is
    // still <= now; fire times are whole seconds, so a one-second bracket holds one.
    let mut low = now - LOOK_BACK;
    let mut high = now;
    if times.next_after(low).is_none_or(|t| t > now) {
        return None;
    }
    while high - low > chrono::TimeDelta::seconds(1) {
        let middle = low + (high - low) / 2;
        if times.next_after(middle).is_some_and(|t| t <= now) {
            low = middle;
        } else {
            high = middle;
        }
    }
    times.next_after(low)
}

/// The fire time a catch-up run makes up for: the previous one, when it came after the
/// schedule's last recorded run. With no run recorded at all there is nothing known to
/// have been missed (a new schedule waits for its first fire).
pub fn missed_fire(
    times: &FireTimes,
    last_started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let last = last_started?;
    previous_fire(times, now).filter(|previous| *previous > last)
}

/// One schedule's loop, until shutdown.
pub(crate) async fn run(shared: Arc<Shared>, schedule: Arc<Schedule>) {
    if schedule.catch_up {
        catch_up(&shared, &schedule).await;
    }
    let mut after = Utc::now();
    loop {
        let Some(next) = schedule.times.next_after(after) else {
            warn!(schedule = %schedule.name, "the schedule has no fire time left");
            return;
        };
        debug!(schedule = %schedule.name, next = %next.with_timezone(&schedule.times.zone()), "next fire");
        loop {
            let now = Utc::now();
            if now >= next {
                break;
            }
            let wait = (next - now).to_std().unwrap_or_default().min(MAX_SLEEP);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shared.shutdown.cancelled() => return,
            }
        }
        // Fire times passed while the process stood still (suspend) collapse into this one.
        after = next.max(Utc::now());
        let trigger = format!("schedule:{}", schedule.name);
        shared
            .tasks
            .spawn(fire(Arc::clone(&shared), Arc::clone(&schedule), trigger));
    }
}

/// Starts the one catch-up run if the schedule missed a fire while no daemon ran.
async fn catch_up(shared: &Arc<Shared>, schedule: &Arc<Schedule>) {
    let last = match shared.history.last_started(&schedule.name).await {
        Ok(last) => last,
        Err(error) => {
            warn!(schedule = %schedule.name, %error, "cannot read the run history; no catch-up run");
            return;
        }
    };
    let Some(missed) = missed_fire(&schedule.times, last, Utc::now()) else {
        return;
    };
    info!(schedule = %schedule.name, missed = %missed.with_timezone(&schedule.times.zone()),
          "a fire time passed while no daemon ran: one catch-up run now");
    let trigger = format!("catch-up:{}", schedule.name);
    shared
        .tasks
        .spawn(fire(Arc::clone(shared), Arc::clone(schedule), trigger));
}

/// Refreshes the schedule's targets one after the other.
async fn fire(shared: Arc<Shared>, schedule: Arc<Schedule>, trigger: String) {
    for target in &schedule.targets {
        let request = RunRequest {
            target: target.clone(),
            trigger: trigger.clone(),
            schedule: Some(schedule.name.clone()),
            profile: schedule.profile.clone(),
        };
        match shared.start(request.clone()) {
            Ok((_, run)) => {
                // A run's task ends by itself (also when cancelled); its outcome is recorded.
                let _ = run.await;
            }
            Err(StartError::Busy(holder)) => shared.skip(request, holder).await,
            Err(StartError::ShuttingDown) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::testing::{config, request};
    use crate::daemon::{DaemonOptions, History, MemoryHistory, RunStatus, Tokens};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_previous_fire_is_the_last_one_not_after_now() {
        let nightly = FireTimes::parse("30 2 * * *", chrono_tz::Europe::Berlin).unwrap();
        let now = utc("2026-03-10T12:00:00Z");
        assert_eq!(
            previous_fire(&nightly, now),
            Some(utc("2026-03-10T01:30:00Z"))
        );
        // Exactly at a fire time, that fire is the previous one.
        let at = utc("2026-03-10T01:30:00Z");
        assert_eq!(previous_fire(&nightly, at), Some(at));
        let every_second = FireTimes::parse("* * * * * *", chrono_tz::UTC).unwrap();
        let now = utc("2026-03-10T12:00:00.700Z");
        assert_eq!(
            previous_fire(&every_second, now),
            Some(utc("2026-03-10T12:00:00Z"))
        );
        let weekly = FireTimes::parse("0 9 * * MON", chrono_tz::UTC).unwrap();
        // 2026-03-10 is a Tuesday.
        assert_eq!(
            previous_fire(&weekly, utc("2026-03-10T08:00:00Z")),
            Some(utc("2026-03-09T09:00:00Z"))
        );
        // Across the spring-forward gap: 02:30 did not exist, the fire was at 03:00 CEST.
        assert_eq!(
            previous_fire(&nightly, utc("2026-03-29T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        let yearly = FireTimes::parse("0 0 1 1 *", chrono_tz::UTC).unwrap();
        assert_eq!(previous_fire(&yearly, now), None);
    }

    #[test]
    fn catch_up_only_for_a_fire_after_the_last_run() {
        let nightly = FireTimes::parse("0 2 * * *", chrono_tz::UTC).unwrap();
        let now = utc("2026-03-10T12:00:00Z");
        // Down since the evening before: last night's 02:00 was missed.
        assert_eq!(
            missed_fire(&nightly, Some(utc("2026-03-09T02:00:01Z")), now),
            Some(utc("2026-03-10T02:00:00Z"))
        );
        // Down for three nights: still one catch-up, for the latest.
        assert_eq!(
            missed_fire(&nightly, Some(utc("2026-03-06T02:00:00Z")), now),
            Some(utc("2026-03-10T02:00:00Z"))
        );
        // Ran last night.
        assert_eq!(
            missed_fire(&nightly, Some(utc("2026-03-10T02:00:00Z")), now),
            None
        );
        // Never ran: nothing known to be missed.
        assert_eq!(missed_fire(&nightly, None, now), None);
    }

    #[tokio::test]
    async fn a_schedule_that_missed_a_fire_runs_once_at_start_and_then_on_time() {
        let (_dir, config) = config("[daemon]\nattempts = 1\n");
        let history = Arc::new(MemoryHistory::default());
        let shared = Shared::new(
            config,
            Vec::new(),
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
            tokio::spawn(run(Arc::clone(&shared), schedule("nightly", true))),
            tokio::spawn(run(Arc::clone(&shared), schedule("no-catch-up", false))),
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
}
