//! What a caller can ask of the daemon, checked and carried out once for both the JSON
//! API (`POST /v1/...`) and the page's buttons, so the two can never disagree on who
//! may do what.

use std::sync::Arc;

use axum::http::StatusCode;
use tracing::info;

use super::access::{Caller, Refusal};
use super::auth::Action;
use super::runs::{CancelRefused, RunId, RunRecord, RunRequest};
use super::{Shared, StartError};
use crate::engine::Kind;
use crate::pipeline;

/// Starts a refresh of `target` for `caller`, with `profile` over the target's own.
pub(crate) fn refresh(
    shared: &Arc<Shared>,
    caller: &Caller,
    target: &str,
    profile: Option<String>,
) -> Result<RunId, Refusal> {
    shared.known_target(caller, Action::Refresh, target)?;
    if let Some(profile) = &profile
        && (profile.is_empty()
            || !profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a profile is a folder name under masking-rules/profiles/ (letters, digits, `_`, `-`)",
        ));
    }
    let request = RunRequest {
        target: target.to_owned(),
        trigger: format!("api:{}", caller.principal.id),
        schedule: None,
        profile,
    };
    match shared.start(request) {
        Ok((id, _)) => Ok(id),
        Err(StartError::Busy(holder)) => Err(Refusal {
            status: StatusCode::CONFLICT,
            message: format!("target `{target}` is already refreshing (run {holder})"),
            run_id: Some(holder.to_string()),
        }),
        Err(StartError::ShuttingDown) => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        )),
    }
}

/// A run of this daemon, if the caller may read its target.
pub(crate) fn run(shared: &Shared, caller: &Caller, id: RunId) -> Result<RunRecord, Refusal> {
    let run = shared.runs.get(id).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no run {id} (this daemon keeps its latest runs since it started)"),
        )
    })?;
    shared.authorize(caller, Action::Read, &run.request.target)?;
    Ok(run)
}

/// Asks the run `id` to stop before its swap.
pub(crate) fn cancel(shared: &Shared, caller: &Caller, id: RunId) -> Result<RunRecord, Refusal> {
    let run = shared.runs.get(id).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no run {id} (this daemon keeps its latest runs since it started)"),
        )
    })?;
    shared.authorize(caller, Action::Cancel, &run.request.target)?;
    let by = format!("api:{}", caller.principal.id);
    match shared.runs.cancel(id, &by) {
        Ok(run) => {
            info!(run = %id, target = %run.request.target, by = %by, "cancel asked");
            Ok(run)
        }
        Err(CancelRefused::Unknown) => {
            Err(Refusal::new(StatusCode::NOT_FOUND, format!("no run {id}")))
        }
        Err(CancelRefused::Ended(status)) => Err(Refusal {
            status: StatusCode::CONFLICT,
            message: format!("run {id} already ended: {}", status.as_str()),
            run_id: Some(id.to_string()),
        }),
    }
}

/// Swaps the previous copy of `target` back in (PostgreSQL targets); returns the
/// schemas that changed places.
pub(crate) async fn rollback(
    shared: &Shared,
    caller: &Caller,
    target: &str,
) -> Result<Vec<String>, Refusal> {
    shared.known_target(caller, Action::Rollback, target)?;
    let config = &shared.config;
    let url = &config.targets[target].url;
    let engine = match Kind::of(url) {
        Kind::Postgres => None,
        Kind::Sqlite => Some("an SQLite"),
        Kind::Mysql => Some("a MySQL/MariaDB"),
    };
    if let Some(engine) = engine {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!(
                "rollback works on PostgreSQL targets only: `{target}` is {engine} target; \
                 refresh it again instead"
            ),
        ));
    }
    if let Some(holder) = shared.runs.holder(target) {
        return Err(Refusal {
            status: StatusCode::CONFLICT,
            message: format!(
                "target `{target}` is refreshing (run {holder}); roll back when it ends"
            ),
            run_id: Some(holder.to_string()),
        });
    }
    match pipeline::rollback(config, target).await {
        Ok(schemas) => {
            info!(target = %target, token = %caller.principal.id, schemas = ?schemas, "rolled back");
            Ok(schemas)
        }
        Err(error) => {
            let status = match &error {
                pipeline::Error::NoRollback(_) => StatusCode::CONFLICT,
                error if error.is_busy() => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(Refusal::new(status, shared.scrub(&error.to_string())))
        }
    }
}
