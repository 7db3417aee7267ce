//! The HTTP API. Probes and metrics are open (they say nothing about data); everything
//! under `/v1` needs a bearer token when tokens are configured. Every error is a JSON
//! object `{"error": "..."}` with a 4xx/5xx status; no request can make a handler panic.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 when the source answers `SELECT 1` within 2 s, else 503 with the reason |
//! | `GET /metrics` | Prometheus text |
//! | `POST /v1/targets/{name}/refresh` | 202 `{"run_id", "target", "status"}`; 409 busy; 404 unknown |
//! | `GET /v1/runs[?target=&limit=]` | `{"runs": [run, ...]}`, newest first |
//! | `GET /v1/runs/{id}` | one run: status, trigger, times, progress, error |

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::runs::{RunId, RunRecord, RunRequest, RunStatus};
use super::{Shared, StartError, metrics};
use crate::engine::postgres::{Endpoint, Side};

/// How long `/readyz` waits for the source.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// Runs listed when no `limit` is given, and the most a `limit` gives.
const DEFAULT_LIST: usize = 100;
const MAX_LIST: usize = 1000;

/// One run as `GET /v1/runs/{id}` shows it (and `lethe refresh --via` reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// The run's id.
    pub run_id: String,
    /// The target refreshed.
    pub target: String,
    /// `schedule:<name>`, `catch-up:<name>` or `api:<token id>`.
    pub trigger: String,
    /// The schedule that fired it.
    pub schedule: Option<String>,
    /// The rules profile asked for, over the target's own.
    pub profile: Option<String>,
    /// queued, running, succeeded, failed, cancelled or skipped.
    pub status: RunStatus,
    /// The try under way or last made (retries count up from 1).
    pub attempt: u32,
    /// RFC 3339, UTC.
    pub queued_at: String,
    /// When the first try began.
    pub started_at: Option<String>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// The counters, live while it runs.
    pub progress: ProgressView,
    /// Why it failed, was cancelled or skipped.
    pub error: Option<String>,
}

/// A run's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressView {
    /// queued, planning, copying, indexing, checking, swapping, done (or the step a
    /// failed run stopped in).
    pub phase: String,
    /// Tables whose rows are copied.
    pub tables_total: u64,
    /// Tables copied so far.
    pub tables_done: u64,
    /// Rows written so far.
    pub rows: u64,
    /// COPY text bytes read so far.
    pub bytes: u64,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<&RunRecord> for RunView {
    fn from(run: &RunRecord) -> Self {
        Self {
            run_id: run.id.to_string(),
            target: run.request.target.clone(),
            trigger: run.request.trigger.clone(),
            schedule: run.request.schedule.clone(),
            profile: run.request.profile.clone(),
            status: run.status,
            attempt: run.attempt,
            queued_at: time(run.queued_at),
            started_at: run.started_at.map(time),
            ended_at: run.ended_at.map(time),
            progress: ProgressView {
                phase: run.progress.phase.to_owned(),
                tables_total: run.progress.tables_total,
                tables_done: run.progress.tables_done,
                rows: run.progress.rows,
                bytes: run.progress.bytes,
            },
            error: run.error.clone(),
        }
    }
}

/// The holder of the token a request came with (`anonymous` when no tokens are set).
#[derive(Debug, Clone)]
struct Caller(String);

/// The API's routes over the daemon's shared state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let v1 = Router::new()
        .route("/v1/targets/{name}/refresh", post(trigger))
        .route("/v1/runs", get(list))
        .route("/v1/runs/{id}", get(show))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// A JSON error answer.
fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = if shared.tokens.is_empty() {
        "anonymous".to_owned()
    } else {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match shared.tokens.authorize(header) {
            Some(id) => id.to_owned(),
            None => {
                let mut answer = problem(
                    StatusCode::UNAUTHORIZED,
                    "a valid token is needed: Authorization: Bearer <token>",
                );
                answer
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return answer;
            }
        }
    };
    request.extensions_mut().insert(Caller(caller));
    next.run(request).await
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.shutdown.is_cancelled() {
        return not_ready("shutting down");
    }
    let check = async {
        let endpoint = Endpoint::parse(&shared.config.source.url, Side::Source)?;
        let mut conn = endpoint.connect().await?;
        sqlx::query("SELECT 1").execute(&mut conn).await.map_err(
            crate::engine::postgres::Error::query("SELECT 1 on the source"),
        )?;
        Ok::<_, crate::engine::postgres::Error>(())
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => axum::Json(json!({ "ready": true })).into_response(),
        Ok(Err(error)) => not_ready(&format!("the source does not answer: {error}")),
        Err(_) => not_ready(&format!(
            "the source did not answer SELECT 1 within {} s",
            READY_TIMEOUT.as_secs()
        )),
    }
}

fn not_ready(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "ready": false, "reason": reason })),
    )
        .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        shared.metrics.render(),
    )
        .into_response()
}

/// The optional body of `POST /v1/targets/{name}/refresh`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    /// A rules profile over the target's own.
    profile: Option<String>,
}

async fn trigger(
    State(shared): State<Arc<Shared>>,
    Extension(Caller(caller)): Extension<Caller>,
    name: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let Ok(Path(name)) = name else {
        return problem(StatusCode::BAD_REQUEST, "malformed target name in the path");
    };
    if !shared.config.targets.contains_key(&name) {
        let known: Vec<&str> = shared.config.targets.keys().map(String::as_str).collect();
        return problem(
            StatusCode::NOT_FOUND,
            format!("no target `{name}` (targets: {})", known.join(", ")),
        );
    }
    let body: RefreshBody = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not {{\"profile\": \"<name>\"}}: {e}"),
                );
            }
        }
    };
    if let Some(profile) = &body.profile
        && (profile.is_empty()
            || !profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "a profile is a folder name under masking-rules/profiles/ (letters, digits, `_`, `-`)",
        );
    }
    let request = RunRequest {
        target: name.clone(),
        trigger: format!("api:{caller}"),
        schedule: None,
        profile: body.profile,
    };
    match shared.start(request) {
        Ok((id, _)) => {
            let mut answer = (
                StatusCode::ACCEPTED,
                axum::Json(json!({
                    "run_id": id.to_string(),
                    "target": name,
                    "status": RunStatus::Queued,
                })),
            )
                .into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/runs/{id}")) {
                answer.headers_mut().insert(header::LOCATION, location);
            }
            answer
        }
        Err(StartError::Busy(holder)) => (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "error": format!("target `{name}` is already refreshing (run {holder})"),
                "run_id": holder.to_string(),
            })),
        )
            .into_response(),
        Err(StartError::ShuttingDown) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        ),
    }
}

/// `GET /v1/runs` filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    target: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad query (target=<name>, limit=<1..{MAX_LIST}>): {}",
                    e.body_text()
                ),
            );
        }
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIST).clamp(1, MAX_LIST);
    let runs: Vec<RunView> = shared
        .runs
        .list(query.target.as_deref(), limit)
        .iter()
        .map(RunView::from)
        .collect();
    axum::Json(json!({ "runs": runs })).into_response()
}

async fn show(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return problem(StatusCode::BAD_REQUEST, "malformed run id in the path");
    };
    let id: RunId = match id.parse() {
        Ok(id) => id,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    match shared.runs.get(id) {
        Some(run) => axum::Json(RunView::from(&run)).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("no run {id} (this daemon keeps its latest runs since it started)"),
        ),
    }
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}
