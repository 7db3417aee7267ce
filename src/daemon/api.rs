//! The HTTP API. Probes and metrics are open (they say nothing about data); everything
//! under `/v1` needs a bearer token when tokens are configured, whose role and targets
//! must allow the request (else 403). Every error is a JSON object `{"error": "..."}`
//! with a 4xx/5xx status; no request can make a handler panic.
//!
//! | route | role | answer |
//! |---|---|---|
//! | `GET /healthz` | | 200 while the process serves |
//! | `GET /readyz` | | 200 when the source answers (any engine) within 2 s, else 503 with the reason |
//! | `GET /metrics` | | Prometheus text |
//! | `POST /v1/targets/{name}/refresh` | refresh | 202 `{"run_id", "target", "status"}`; 409 busy; 404 unknown |
//! | `POST /v1/targets/{name}/rollback` | admin | 200 `{"target", "schemas"}`; 409 nothing to roll back or busy |
//! | `GET /v1/runs[?target=&limit=]` | read | `{"runs": [run, ...]}`, newest first, of the token's targets |
//! | `GET /v1/runs/{id}` | read | one run: status, trigger, times, progress, error |
//! | `POST /v1/runs/{id}/cancel` | refresh | 202: the run stops before its swap; 409 it already ended |
//!
//! The `GET` routes also accept the status page's session cookie (its live progress
//! reads them); the `POST` routes need the header, so no other site's form can reach
//! them through a logged-in browser.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{self, Caller, Refusal, Resolved};
use super::auth::Action;
use super::runs::{RunId, RunRecord, RunStatus};
use super::{Shared, actions, metrics, page};
use crate::engine::{Engine, Kind, Snapshot, with_engine};

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

/// The daemon's routes over its shared state: probes, metrics, `/v1` and the page.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let v1 = Router::new()
        .route("/v1/targets/{name}/refresh", post(trigger))
        .route("/v1/targets/{name}/rollback", post(rollback))
        .route("/v1/runs", get(list))
        .route("/v1/runs/{id}", get(show))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(v1)
        .merge(page::routes(Arc::clone(&shared)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// A JSON error answer.
fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// A refused action as JSON, with the run it concerns when there is one.
fn refused(refusal: Refusal) -> Response {
    let mut body = json!({ "error": refusal.message });
    if let Some(run_id) = refusal.run_id {
        body["run_id"] = json!(run_id);
    }
    (refusal.status, axum::Json(body)).into_response()
}

async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let cookies = matches!(*request.method(), Method::GET | Method::HEAD);
    match access::resolve(&shared, request.headers(), cookies) {
        Resolved::Caller(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Resolved::Missing | Resolved::Invalid => {
            let mut answer = problem(
                StatusCode::UNAUTHORIZED,
                "a valid token is needed: Authorization: Bearer <token>",
            );
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            answer
        }
    }
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.shutdown.is_cancelled() {
        return not_ready("shutting down");
    }
    let config = &shared.config;
    let check = async {
        with_engine!(Kind::of(&config.source.url), E => {
            <E as Engine>::Snapshot::reachable(config).await
        })
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => axum::Json(json!({ "ready": true })).into_response(),
        Ok(Err(error)) => not_ready(&format!("the source does not answer: {error}")),
        Err(_) => not_ready(&format!(
            "the source did not answer within {} s",
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
    Extension(caller): Extension<Caller>,
    name: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let Ok(Path(name)) = name else {
        return problem(StatusCode::BAD_REQUEST, "malformed target name in the path");
    };
    if let Err(refusal) = shared.known_target(&caller, Action::Refresh, &name) {
        return refused(refusal);
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
    match actions::refresh(&shared, &caller, &name, body.profile) {
        Ok(id) => {
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
        Err(refusal) => refused(refusal),
    }
}

async fn rollback(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(name)) = name else {
        return problem(StatusCode::BAD_REQUEST, "malformed target name in the path");
    };
    match actions::rollback(&shared, &caller, &name).await {
        Ok(schemas) => axum::Json(json!({
            "target": name,
            "status": "rolled back",
            "schemas": schemas,
        }))
        .into_response(),
        Err(refusal) => refused(refusal),
    }
}

/// A run id from the path, or the 400 that says what one looks like.
fn run_id(id: Result<Path<String>, PathRejection>) -> Result<RunId, Box<Response>> {
    let Ok(Path(id)) = id else {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "malformed run id in the path",
        )));
    };
    id.parse()
        .map_err(|e: String| Box::new(problem(StatusCode::BAD_REQUEST, e)))
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match run_id(id) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
    match actions::cancel(&shared, &caller, id) {
        Ok(run) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "run_id": id.to_string(),
                "target": run.request.target,
                "status": run.status,
                "cancelling": true,
            })),
        )
            .into_response(),
        Err(refusal) => refused(refusal),
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
    Extension(caller): Extension<Caller>,
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
    if let Some(target) = &query.target
        && !caller.principal.may(Action::Read, target)
    {
        return refused(shared.deny(&caller, Action::Read, target));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIST).clamp(1, MAX_LIST);
    let runs: Vec<RunView> = shared
        .runs
        .list_where(query.target.as_deref(), limit, |target| {
            caller.principal.sees(target)
        })
        .iter()
        .map(RunView::from)
        .collect();
    axum::Json(json!({ "runs": runs })).into_response()
}

async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match run_id(id) {
        Ok(id) => id,
        Err(answer) => return *answer,
    };
    match actions::run(&shared, &caller, id) {
        Ok(run) => axum::Json(RunView::from(&run)).into_response(),
        Err(refusal) => refused(refusal),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Tokens;
    use crate::daemon::testing::{config, options, serve};
    use reqwest::Method;

    const ADMIN: &str = "admin-token-0123456789abcdef";
    const DEV: &str = "devops-token-0123456789abcdef";
    const READ: &str = "viewer-token-0123456789abcdef";
    const DEV_ADMIN: &str = "devadmin-token-0123456789abc";

    /// Sends one request; returns the status and the body as text.
    async fn send(method: Method, url: String, token: Option<&str>, body: &str) -> (u16, String) {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = client.request(method, url).body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Sends one request; returns the status and the JSON body (Null if not JSON).
    async fn call(
        method: Method,
        url: String,
        token: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let (status, text) = send(method, url, token, body).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn the_api_authenticates_validates_and_refuses_a_second_run() {
        const TOKEN: &str = "ci-token-0123456789abcdef";
        let (_dir, config) = config("[daemon]\nattempts = 3\nretry_backoff_secs = 60\n");
        let shared = Shared::new(
            config,
            Vec::new(),
            options(Tokens::parse(&format!("ci:{TOKEN}")).unwrap()),
        );
        let base = serve(&shared).await;
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
            body["error"]
                .as_str()
                .unwrap()
                .contains("targets: dev, lite, staging"),
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

        // Cancel: the run stops in its backoff; a second cancel finds it ended.
        let cancel = url(&format!("/v1/runs/{id}/cancel"));
        let (status, body) = call(Method::POST, cancel.clone(), Some(TOKEN), "").await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["cancelling"], true);
        let mut ended = serde_json::Value::Null;
        for _ in 0..100 {
            ended = call(Method::GET, url(&format!("/v1/runs/{id}")), Some(TOKEN), "")
                .await
                .1;
            if ended["status"] == "cancelled" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(ended["status"], "cancelled", "{ended}");
        assert!(
            ended["error"]
                .as_str()
                .unwrap_or("")
                .contains("cancelled by api:ci"),
            "{ended}"
        );
        let (status, body) = call(Method::POST, cancel, Some(TOKEN), "").await;
        assert_eq!(status, 409, "{body}");
        assert!(body["error"].as_str().unwrap().contains("already ended"));

        // Rollback: not for SQLite targets, and only where there is a copy to go back to.
        let (status, body) = call(
            Method::POST,
            url("/v1/targets/lite/rollback"),
            Some(TOKEN),
            "",
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("PostgreSQL targets only"),
            "{body}"
        );
        let (status, body) = call(
            Method::POST,
            url("/v1/targets/staging/rollback"),
            Some(TOKEN),
            "",
        )
        .await;
        // The server refuses connections: an error that names no password.
        assert_eq!(status, 500, "{body}");
        assert!(!body.to_string().contains("staging-password"), "{body}");

        shared.shutdown.cancel();
        shared.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), shared.tasks.wait())
            .await
            .unwrap();
    }

    /// Every `/v1` route and page route, for every kind of caller: 401 without a valid
    /// token, 403 outside the role or targets, and never a 2xx/3xx where refused.
    #[tokio::test]
    async fn every_route_answers_401_or_403_by_role_and_target() {
        let (_dir, config) = config("[daemon]\nattempts = 3\nretry_backoff_secs = 60\n");
        let tokens = Tokens::parse(&format!(
            "admin:{ADMIN},devops:{DEV}:refresh:dev,viewer:{READ}:read,devadmin:{DEV_ADMIN}:admin:dev"
        ))
        .unwrap();
        let shared = Shared::new(config, Vec::new(), options(tokens));
        let base = serve(&shared).await;
        let url = |path: &str| format!("{base}{path}");
        // A run of staging to read and cancel, started by the admin.
        let (status, body) = call(
            Method::POST,
            url("/v1/targets/staging/refresh"),
            Some(ADMIN),
            "",
        )
        .await;
        assert_eq!(status, 202, "{body}");
        let staging_run = body["run_id"].as_str().unwrap().to_owned();

        let get_run = format!("/v1/runs/{staging_run}");
        let cancel_run = format!("/v1/runs/{staging_run}/cancel");
        let page_run = format!("/runs/{staging_run}");
        let page_cancel = format!("/runs/{staging_run}/cancel");
        // (method, path, who may: admin, devops(refresh dev), viewer(read all), devadmin(admin dev))
        // A refused request answers the status given; an allowed one anything but 401/403.
        let routes: Vec<(Method, &str, [bool; 4])> = vec![
            (Method::GET, "/v1/runs", [true, true, true, true]),
            (
                Method::GET,
                "/v1/runs?target=staging",
                [true, false, true, false],
            ),
            (Method::GET, &get_run, [true, false, true, false]),
            (
                Method::POST,
                "/v1/targets/staging/refresh",
                [true, false, false, false],
            ),
            (
                Method::POST,
                "/v1/targets/lite/refresh",
                [true, false, false, false],
            ),
            (
                Method::POST,
                "/v1/targets/staging/rollback",
                [true, false, false, false],
            ),
            (
                Method::POST,
                "/v1/targets/dev/rollback",
                [true, false, false, true],
            ),
            (
                Method::POST,
                "/v1/targets/nope/refresh",
                [true, false, false, false],
            ),
            (Method::GET, "/", [true, true, true, true]),
            (Method::GET, &page_run, [true, false, true, false]),
            // The page's buttons (a bearer header needs no CSRF token).
            (
                Method::POST,
                "/targets/staging/refresh",
                [true, false, false, false],
            ),
            (
                Method::POST,
                "/targets/dev/rollback",
                [true, false, false, true],
            ),
            (Method::POST, "/logout", [true, true, true, true]),
            // Last: the admin's cancel ends the run the others read.
            (Method::POST, &cancel_run, [true, false, false, false]),
            (Method::POST, &page_cancel, [true, false, false, false]),
        ];
        let callers = [ADMIN, DEV, READ, DEV_ADMIN];
        for (method, path, allowed) in &routes {
            // No token, and a wrong one: 401 everywhere.
            for token in [None, Some("not-a-token-0123456789abcdef")] {
                let (status, body) = send(method.clone(), url(path), token, "").await;
                assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            }
            for (token, may) in callers.iter().zip(allowed) {
                let (status, body) = send(method.clone(), url(path), Some(token), "").await;
                if *may {
                    assert!(
                        status != 401 && status != 403,
                        "{method} {path} by {token}: {status} {body}"
                    );
                } else {
                    assert_eq!(status, 403, "{method} {path} by {token}: {body}");
                    assert!(body.contains("may not"), "{method} {path}: {body}");
                    assert!(!body.contains("0123456789"), "a token leaked: {body}");
                }
            }
        }
        // The listing shows only what the token may see.
        let (_, listed) = call(Method::GET, url("/v1/runs"), Some(DEV), "").await;
        assert_eq!(listed["runs"].as_array().unwrap().len(), 0, "{listed}");
        let (_, listed) = call(Method::GET, url("/v1/runs"), Some(READ), "").await;
        assert!(!listed["runs"].as_array().unwrap().is_empty(), "{listed}");
        // The 403 says what the token may do.
        let (status, body) = call(Method::POST, url(&cancel_run), Some(READ), "").await;
        assert_eq!(status, 403);
        assert_eq!(
            body["error"],
            format!(
                "token `viewer` may not cancel `staging`: its role `read` may see runs and status, on all targets"
            )
        );
        let (status, _) = call(Method::POST, url(&cancel_run), Some(DEV), "").await;
        assert_eq!(status, 403);
        // A POST under /v1 needs the header: a session cookie alone is not enough.
        let sid = shared.sessions.open("admin");
        let (status, _) = {
            let response = reqwest::Client::new()
                .post(url("/v1/targets/dev/refresh"))
                .header("Cookie", format!("lethe_session={sid}"))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), ())
        };
        assert_eq!(status, 401);
        let response = reqwest::Client::new()
            .get(url("/v1/runs"))
            .header("Cookie", format!("lethe_session={sid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "GET reads with the cookie");
        // The refusals are counted by token id and action.
        let metrics = shared.metrics.render();
        for line in [
            "lethe_api_denied_total{token=\"viewer\",action=\"cancel\"} 3",
            "lethe_api_denied_total{token=\"devops\",action=\"cancel\"} 3",
            "lethe_api_denied_total{token=\"viewer\",action=\"rollback\"} 3",
            "lethe_api_denied_total{token=\"devadmin\",action=\"read\"} 3",
        ] {
            assert!(metrics.contains(line), "missing {line}:\n{metrics}");
        }
        assert_eq!(
            shared
                .runs
                .get(staging_run.parse().unwrap())
                .unwrap()
                .cancelled_by
                .as_deref(),
            Some("api:admin")
        );
        shared.shutdown.cancel();
        shared.tasks.close();
        tokio::time::timeout(Duration::from_secs(10), shared.tasks.wait())
            .await
            .unwrap();
    }
}
