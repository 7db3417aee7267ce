//! The status page: what the person on call opens to see whether last night's refreshes
//! worked, served by the daemon itself as plain HTML (no framework, no build step), with
//! a small script for the live progress of a run under way. Everything works without
//! JavaScript except that live progress (the page then reloads itself every 10 s while
//! a run is under way).
//!
//! | route | what |
//! |---|---|
//! | `GET /` | every target the caller may see with its last run, the runs in progress, the schedules and their next fire times |
//! | `GET /runs/{id}` | one run (this daemon's by its id, or the history's by its number): per-table figures, trigger, attempts, the whole error |
//! | `GET /login`, `POST /login`, `POST /logout` | the token login, kept in a session cookie |
//! | `POST /targets/{name}/refresh`, `POST /runs/{id}/cancel`, `POST /targets/{name}/rollback` | the buttons: the same actions as `/v1`, with a CSRF check |
//!
//! Where tokens are configured every page needs one (the same rule as `/v1`); a page
//! shows only the targets the token may see, and only the buttons it may press. Nothing
//! secret is shown: no URL, no key, no token, no cell value (errors are scrubbed of the
//! config's passwords and keys on the way).

mod facts;
mod format;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use tracing::{info, warn};

use super::access::{self, Caller, Proof, Refusal, Resolved};
use super::auth::Action;
use super::runs::RunId;
use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE, Sessions};
use super::{Shared, actions};
use facts::{
    Chrome, ScheduleView, TargetView, engine_of, facts_of_record, facts_of_stored, last_run,
};

/// The page's routes.
pub(crate) fn routes(_shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(index))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/targets/{name}/refresh", post(refresh))
        .route("/targets/{name}/rollback", post(rollback))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/static/lethe.css", get(css))
        .route("/static/live.js", get(script))
}

fn chrome(shared: &Shared, caller: &Caller, base: &'static str) -> Chrome {
    let csrf = caller
        .csrf_key()
        .map(|key| shared.sessions.csrf(&key))
        .unwrap_or_default();
    let who = match caller.proof {
        Proof::Open => None,
        Proof::Bearer | Proof::Session(_) => {
            Some((caller.principal.id.clone(), caller.principal.describe()))
        }
    };
    Chrome {
        base,
        who,
        csrf,
        open: caller.proof == Proof::Open,
        reload: false,
    }
}

/// An HTML answer with the headers every page carries: no caching, no framing, no
/// script or style but the daemon's own, no referrer.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A 303 to `location` (relative to the request's path).
fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The login page, answered with `status` (401 where a page needed a token), with a
/// fresh login cookie for its CSRF token.
fn login_page(
    shared: &Shared,
    headers: &HeaderMap,
    base: &'static str,
    status: StatusCode,
    note: Option<&str>,
) -> Response {
    let nonce = Sessions::login_nonce();
    let csrf = shared.sessions.csrf(&format!("login:{nonce}"));
    let mut response = html(status, view::login(base, status, note, &csrf));
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_COOKIE, &nonce, headers, false),
    );
    if note.is_some() && session::cookie(headers, SESSION_COOKIE).is_some() {
        cookies.append(
            header::SET_COOKIE,
            session::set_cookie(SESSION_COOKIE, "", headers, true),
        );
    }
    response
}

/// The caller of a page, or the login page to answer instead.
fn page_caller(
    shared: &Shared,
    headers: &HeaderMap,
    base: &'static str,
) -> Result<Caller, Box<Response>> {
    match access::resolve(shared, headers, true) {
        Resolved::Caller(caller) => Ok(caller),
        Resolved::Missing => Err(Box::new(login_page(
            shared,
            headers,
            base,
            StatusCode::UNAUTHORIZED,
            None,
        ))),
        Resolved::Invalid => Err(Box::new(login_page(
            shared,
            headers,
            base,
            StatusCode::UNAUTHORIZED,
            Some("That token or session is not valid (any more): sign in again."),
        ))),
    }
}

/// An error page for a refused action.
fn refusal_page(
    shared: &Shared,
    caller: &Caller,
    base: &'static str,
    refusal: &Refusal,
) -> Response {
    let chrome = chrome(shared, caller, base);
    html(
        refusal.status,
        view::problem(&chrome, refusal.status, &refusal.message),
    )
}

/// A form's fields the page posts: the CSRF token.
#[derive(Debug, Deserialize)]
struct Posted {
    csrf: Option<String>,
}

/// The caller of a button's POST, its CSRF token checked; or the page to answer instead.
fn posting_caller(
    shared: &Shared,
    headers: &HeaderMap,
    base: &'static str,
    form: Result<Form<Posted>, FormRejection>,
) -> Result<Caller, Box<Response>> {
    let caller = page_caller(shared, headers, base)?;
    let presented = form.ok().and_then(|Form(f)| f.csrf).unwrap_or_default();
    if let Some(key) = caller.csrf_key()
        && !shared.sessions.csrf_ok(&key, &presented)
    {
        warn!(token = %caller.principal.id, "page form refused: its CSRF token does not match");
        return Err(Box::new(refusal_page(
            shared,
            &caller,
            base,
            &Refusal::new(
                StatusCode::FORBIDDEN,
                "This form is out of date or was not sent by this page (CSRF check failed): \
                 reload the page and press the button again.",
            ),
        )));
    }
    Ok(caller)
}

async fn index(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let caller = match page_caller(&shared, &headers, "") {
        Ok(caller) => caller,
        Err(answer) => return *answer,
    };
    let principal = &caller.principal;
    let mut targets = Vec::new();
    let mut live = Vec::new();
    for name in shared.config.targets.keys().filter(|t| principal.sees(t)) {
        let busy = shared.runs.holder(name).and_then(|id| shared.runs.get(id));
        if let Some(run) = &busy {
            live.push(facts_of_record(&shared, &caller, run));
        }
        targets.push(TargetView {
            name: name.clone(),
            engine: engine_of(&shared, name),
            last: last_run(&shared, &caller, name).await,
            busy: busy.map(|r| format!("runs/{}", r.id)),
            may_refresh: principal.may(Action::Refresh, name),
            may_rollback: principal.may(Action::Rollback, name)
                && engine_of(&shared, name) == "PostgreSQL",
        });
    }
    let now = Utc::now();
    let schedules: Vec<ScheduleView> = shared
        .schedules
        .iter()
        .filter_map(|s| {
            let targets: Vec<String> = s
                .targets
                .iter()
                .filter(|t| principal.sees(t))
                .cloned()
                .collect();
            (!targets.is_empty()).then(|| ScheduleView {
                name: s.name.clone(),
                cron: s.cron.clone(),
                zone: s.times.zone(),
                targets,
                catch_up: s.catch_up,
                next: s
                    .times
                    .upcoming(now, 3)
                    .into_iter()
                    .map(|t| t.with_timezone(&Utc))
                    .collect(),
            })
        })
        .collect();
    let mut chrome = chrome(&shared, &caller, "");
    chrome.reload = !live.is_empty();
    html(
        StatusCode::OK,
        view::index(&chrome, &targets, &live, &schedules, now),
    )
}

/// A run's id on the page: this daemon's (a UUID) or the history's (a number).
enum PageRunId {
    Daemon(RunId),
    History(i64),
}

fn page_run_id(id: &str) -> Option<PageRunId> {
    if let Ok(id) = id.parse::<RunId>() {
        return Some(PageRunId::Daemon(id));
    }
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(PageRunId::History)
}

async fn run_page(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    const BASE: &str = "../";
    let caller = match page_caller(&shared, &headers, BASE) {
        Ok(caller) => caller,
        Err(answer) => return *answer,
    };
    let not_found = |what: String| {
        refusal_page(
            &shared,
            &caller,
            BASE,
            &Refusal::new(StatusCode::NOT_FOUND, what),
        )
    };
    let Some(id) = id.ok().and_then(|Path(id)| page_run_id(&id)) else {
        return not_found(
            "A run is named by this daemon's id (1b4e28ba-2fa1-41d2-883f-0016d3cca427) or \
             by its number in the run history."
                .into(),
        );
    };
    let facts = match id {
        PageRunId::Daemon(id) => match actions::run(&shared, &caller, id) {
            Ok(run) => facts_of_record(&shared, &caller, &run),
            Err(refusal) => return refusal_page(&shared, &caller, BASE, &refusal),
        },
        PageRunId::History(n) => match shared.history.run(n).await {
            Ok(Some(run)) => {
                if let Err(refusal) = shared.authorize(&caller, Action::Read, &run.target) {
                    return refusal_page(&shared, &caller, BASE, &refusal);
                }
                facts_of_stored(&shared, &run)
            }
            Ok(None) => return not_found(format!("The run history has no run #{n}.")),
            Err(error) => {
                warn!(%error, "cannot read the run history for the status page");
                return refusal_page(
                    &shared,
                    &caller,
                    BASE,
                    &Refusal::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "The run history cannot be read now; the daemon's log says why.",
                    ),
                );
            }
        },
    };
    let mut chrome = chrome(&shared, &caller, BASE);
    chrome.reload = facts.live.is_some();
    html(StatusCode::OK, view::run(&chrome, &facts))
}

async fn refresh(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    form: Result<Form<Posted>, FormRejection>,
) -> Response {
    const BASE: &str = "../../";
    let caller = match posting_caller(&shared, &headers, BASE, form) {
        Ok(caller) => caller,
        Err(answer) => return *answer,
    };
    let name = name.map(|Path(n)| n).unwrap_or_default();
    match actions::refresh(&shared, &caller, &name, None) {
        Ok(id) => see_other(&format!("{BASE}runs/{id}")),
        // The run already under way is what the person wants to see.
        Err(Refusal {
            status: StatusCode::CONFLICT,
            run_id: Some(holder),
            ..
        }) => see_other(&format!("{BASE}runs/{holder}")),
        Err(refusal) => refusal_page(&shared, &caller, BASE, &refusal),
    }
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    form: Result<Form<Posted>, FormRejection>,
) -> Response {
    const BASE: &str = "../../";
    let caller = match posting_caller(&shared, &headers, BASE, form) {
        Ok(caller) => caller,
        Err(answer) => return *answer,
    };
    let Some(id) = id.ok().and_then(|Path(id)| id.parse::<RunId>().ok()) else {
        return refusal_page(
            &shared,
            &caller,
            BASE,
            &Refusal::new(
                StatusCode::BAD_REQUEST,
                "Only this daemon's runs can be cancelled.",
            ),
        );
    };
    match actions::cancel(&shared, &caller, id) {
        Ok(_) => see_other(&format!("{BASE}runs/{id}")),
        Err(refusal) => refusal_page(&shared, &caller, BASE, &refusal),
    }
}

async fn rollback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    form: Result<Form<Posted>, FormRejection>,
) -> Response {
    const BASE: &str = "../../";
    let caller = match posting_caller(&shared, &headers, BASE, form) {
        Ok(caller) => caller,
        Err(answer) => return *answer,
    };
    let name = name.map(|Path(n)| n).unwrap_or_default();
    match actions::rollback(&shared, &caller, &name).await {
        Ok(schemas) => {
            let chrome = chrome(&shared, &caller, BASE);
            html(StatusCode::OK, view::rolled_back(&chrome, &name, &schemas))
        }
        Err(refusal) => refusal_page(&shared, &caller, BASE, &refusal),
    }
}

async fn login_form(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if shared.tokens.is_empty() {
        return see_other("./");
    }
    login_page(&shared, &headers, "", StatusCode::OK, None)
}

/// The login form's fields.
#[derive(Deserialize)]
struct LoginForm {
    token: String,
    csrf: String,
}

async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if shared.tokens.is_empty() {
        return see_other("./");
    }
    let Ok(Form(form)) = form else {
        return login_page(
            &shared,
            &headers,
            "",
            StatusCode::BAD_REQUEST,
            Some("The form came without its fields: paste the token and sign in."),
        );
    };
    let nonce = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if nonce.is_empty()
        || !shared
            .sessions
            .csrf_ok(&format!("login:{nonce}"), &form.csrf)
    {
        return login_page(
            &shared,
            &headers,
            "",
            StatusCode::BAD_REQUEST,
            Some("The login form was out of date (CSRF check failed): sign in again."),
        );
    }
    let Some(principal) = shared.tokens.identify(form.token.trim()) else {
        warn!("status page login refused: not a configured token");
        return login_page(
            &shared,
            &headers,
            "",
            StatusCode::UNAUTHORIZED,
            Some("401: that is not a token this daemon accepts."),
        );
    };
    let id = shared.sessions.open(&principal.id);
    info!(token = %principal.id, "signed in to the status page");
    let mut response = see_other("./");
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &id, &headers, false),
    );
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_COOKIE, "", &headers, true),
    );
    response
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<Posted>, FormRejection>,
) -> Response {
    let caller = match posting_caller(&shared, &headers, "", form) {
        Ok(caller) => caller,
        Err(answer) => return *answer,
    };
    if let Proof::Session(id) = &caller.proof {
        shared.sessions.close(id);
        info!(token = %caller.principal.id, "signed out of the status page");
    }
    let mut response = see_other("login");
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", &headers, true),
    );
    response
}

/// A static file, cacheable for an hour (it changes only with the binary).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("static/lethe.css"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("static/live.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Tokens;
    use crate::daemon::runs::RunRequest;
    use crate::daemon::testing::{config, options, serve};

    const TOKEN: &str = "ops-token-0123456789abcdef";

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// The value of `name="csrf"` in a page.
    fn csrf_of(page: &str) -> String {
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned()
    }

    /// `name=value` of a `Set-Cookie` header named `name`.
    fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    #[tokio::test]
    async fn login_keeps_a_strict_session_cookie_and_every_form_is_csrf_checked() {
        let (_dir, config) = config("[daemon]\nattempts = 3\nretry_backoff_secs = 60\n");
        let tokens = Tokens::parse(&format!("ops:{TOKEN}:refresh:dev")).unwrap();
        let shared = Shared::new(config, Vec::new(), options(tokens));
        let base = serve(&shared).await;
        let http = client();

        let index = http.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(index.status().as_u16(), 401);
        let login_cookie = set_cookie(&index, LOGIN_COOKIE).unwrap();
        assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"));
        let nonce = login_cookie.split(';').next().unwrap().to_owned();
        let page = index.text().await.unwrap();
        assert!(page.contains("401 Unauthorized"), "{page}");
        let csrf = csrf_of(&page);
        assert_eq!(csrf.len(), 64, "{page}");

        let login = |cookie: String, form: Vec<(&'static str, String)>| {
            let http = http.clone();
            let base = base.clone();
            async move {
                http.post(format!("{base}/login"))
                    .header(header::COOKIE, cookie)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
            }
        };
        // Without the login cookie the form's token means nothing.
        let answer = login(
            String::new(),
            vec![("token", TOKEN.into()), ("csrf", csrf.clone())],
        )
        .await;
        assert_eq!(answer.status().as_u16(), 400);
        let answer = login(
            nonce.clone(),
            vec![
                ("token", "wrong-token-0123456789".into()),
                ("csrf", csrf.clone()),
            ],
        )
        .await;
        assert_eq!(answer.status().as_u16(), 401);
        assert!(set_cookie(&answer, SESSION_COOKIE).is_none());
        let answer = login(
            nonce.clone(),
            vec![("token", TOKEN.into()), ("csrf", csrf.clone())],
        )
        .await;
        assert_eq!(answer.status().as_u16(), 303);
        let session = set_cookie(&answer, SESSION_COOKIE).unwrap();
        assert!(
            session.ends_with("; Path=/; HttpOnly; SameSite=Strict"),
            "{session}"
        );
        assert!(!session.contains(TOKEN), "the cookie holds no token");
        let cookie = session.split(';').next().unwrap().to_owned();

        let page = http
            .get(format!("{base}/"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert_eq!(
            page.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .split(';')
                .next(),
            Some("default-src 'none'")
        );
        let page = page.text().await.unwrap();
        assert!(page.contains("signed in as <b>ops</b>"), "{page}");
        assert!(page.contains("id=\"target-dev\""), "{page}");
        assert!(!page.contains("target-staging"), "{page}");
        assert!(
            !page.contains("Roll back"),
            "refresh may not roll back: {page}"
        );
        let csrf = csrf_of(&page);

        let press = |csrf: String| {
            let http = http.clone();
            let (base, cookie) = (base.clone(), cookie.clone());
            async move {
                http.post(format!("{base}/targets/dev/refresh"))
                    .header(header::COOKIE, cookie)
                    .form(&[("csrf", csrf)])
                    .send()
                    .await
                    .unwrap()
            }
        };
        // A form from elsewhere (no or a wrong CSRF token) is refused.
        assert_eq!(press(String::new()).await.status().as_u16(), 403);
        assert_eq!(press("0".repeat(64)).await.status().as_u16(), 403);
        let pressed = press(csrf.clone()).await;
        assert_eq!(pressed.status().as_u16(), 303);
        let location = pressed.headers()[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with("../../runs/"), "{location}");
        assert!(shared.runs.holder("dev").is_some(), "the run started");
        // Pressed again while it runs: the run under way.
        let again = press(csrf.clone()).await;
        assert_eq!(
            again.headers()[header::LOCATION].to_str().unwrap(),
            location
        );
        // Not this token's target.
        let staging = http
            .post(format!("{base}/targets/staging/refresh"))
            .header(header::COOKIE, &cookie)
            .form(&[("csrf", csrf.clone())])
            .send()
            .await
            .unwrap();
        assert_eq!(staging.status().as_u16(), 403);
        assert!(staging.text().await.unwrap().contains("may not refresh"));

        // Signing out ends the session on the server, not only in the browser.
        let out = http
            .post(format!("{base}/logout"))
            .header(header::COOKIE, &cookie)
            .form(&[("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(out.status().as_u16(), 303);
        assert!(
            set_cookie(&out, SESSION_COOKIE)
                .unwrap()
                .contains("Max-Age=0")
        );
        let after = http
            .get(format!("{base}/"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status().as_u16(), 401);
        shared.shutdown.cancel();
    }

    #[tokio::test]
    async fn an_error_on_the_page_is_escaped_and_scrubbed_of_secrets() {
        let (_dir, config) = config("");
        let shared = Shared::new(config, Vec::new(), options(Tokens::default()));
        let base = serve(&shared).await;
        let run = shared.runs.skipped(
            RunRequest {
                target: "staging".into(),
                trigger: "api:<b>x</b>".into(),
                schedule: None,
                profile: None,
            },
            "<script>alert(1)</script> cannot connect to \
             postgres://lethe:staging-password@127.0.0.1:1/staging with key 0123456789abcdef-key"
                .into(),
        );
        let page = client()
            .get(format!("{base}/runs/{}", run.id))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let page = page.text().await.unwrap();
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("api:&lt;b&gt;x&lt;/b&gt;"), "{page}");
        assert!(!page.contains("staging-password"), "{page}");
        assert!(!page.contains("0123456789abcdef-key"), "{page}");
        assert!(
            page.contains("postgres://lethe:***@127.0.0.1:1/staging"),
            "{page}"
        );
        // Open (no tokens): no login, the buttons are there, with a CSRF token.
        let index = client().get(format!("{base}/")).send().await.unwrap();
        assert_eq!(index.status().as_u16(), 200);
        let index = index.text().await.unwrap();
        assert!(index.contains("open to local users"), "{index}");
        assert_eq!(csrf_of(&index).len(), 64, "{index}");
        for path in ["/runs/not-a-run", "/runs/99"] {
            let answer = client().get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(answer.status().as_u16(), 404, "{path}");
        }
        let css = client()
            .get(format!("{base}/static/lethe.css"))
            .send()
            .await
            .unwrap();
        assert_eq!(css.status().as_u16(), 200);
        assert!(
            css.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/css")
        );
    }
}
