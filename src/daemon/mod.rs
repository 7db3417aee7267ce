//! `lethe daemon`: refreshes targets on their schedules and on request over HTTP, one
//! run per target at a time, retrying transient failures, and stopping cleanly on
//! SIGTERM (a run in flight is cancelled before its swap, so the target keeps its copy).
//! It serves a JSON API (`/v1`), Prometheus metrics and a status page for people (`/`),
//! each token limited to a role and a set of targets.
//!
//! - [`executor`] runs what is asked (tries, retries, records); [`scheduler`] and the
//!   API ask;
//! - [`api`] and [`page`] answer HTTP, the same [`actions`] behind both, after [`access`]
//!   has named the caller ([`auth`]: tokens; [`session`]: the page's login cookie).
//!
//! One target never has two runs: inside a daemon a run claims its target in [`Runs`]
//! before it starts; across daemons (two machines, or a `lethe refresh` by hand) the
//! target's PostgreSQL advisory lock refuses the second run, which then counts as
//! skipped.

mod access;
mod actions;
mod api;
mod audit_history;
mod auth;
pub mod client;
mod executor;
mod history;
mod metrics;
mod page;
mod runs;
mod scheduler;
mod session;
#[cfg(test)]
mod testing;

pub use api::{ProgressView, RunView};
pub use audit_history::AuditHistory;
pub use auth::{Action, Principal, Role, TOKENS_VAR, Targets, Tokens};
pub use history::{History, HistoryError, MemoryHistory, StoredRun};
pub use metrics::Metrics;
pub use runs::{CancelRefused, RunId, RunRecord, RunRequest, RunStatus, Runs};
pub use scheduler::previous_fire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{Config, Mode};
use crate::schedule::Schedule;

/// How long shutdown waits for cancelled runs to drop their shadows; within the 30 s a
/// service manager usually grants before SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// The longest wait between retries, however often the backoff has doubled.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Why the daemon did not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `listen` is not an address.
    #[error("[daemon] listen = `{listen}` is not a host:port address: {reason}")]
    BadListen {
        /// As configured.
        listen: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// No token, and an address others can reach.
    #[error(
        "refusing to serve the API on `{listen}` without tokens: set {TOKENS_VAR} (id:token,...) \
         or listen on a loopback address such as 127.0.0.1:7070"
    )]
    OpenApi {
        /// As configured.
        listen: String,
    },
    /// Production without tokens.
    #[error("mode = \"production\" needs API tokens: set {TOKENS_VAR} (id:token,...)")]
    NoTokens,
    /// The tokens variable is malformed.
    #[error("{0}")]
    Tokens(String),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
    /// Runs were still going when the grace period ended.
    #[error("{0} run(s) did not stop within {SHUTDOWN_GRACE:?} of the shutdown signal")]
    ShutdownTimeout(usize),
}

impl Error {
    /// The process exit code: 2 for a configuration that cannot be served, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadListen { .. }
            | Error::OpenApi { .. }
            | Error::NoTokens
            | Error::Tokens(_) => 2,
            Error::Bind { .. } | Error::Serve(_) | Error::ShutdownTimeout(_) => 1,
        }
    }
}

/// Resolves `[daemon] listen` and checks it against the tokens: an API without tokens
/// only on loopback, and none at all in production; every target a token names exists.
pub async fn listen_addresses(config: &Config, tokens: &Tokens) -> Result<Vec<SocketAddr>, Error> {
    tokens
        .check_targets(|name| config.targets.contains_key(name))
        .map_err(Error::Tokens)?;
    let listen = &config.daemon.listen;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(listen.as_str())
        .await
        .map_err(|e| Error::BadListen {
            listen: listen.clone(),
            reason: e.to_string(),
        })?
        .collect();
    if addresses.is_empty() {
        return Err(Error::BadListen {
            listen: listen.clone(),
            reason: "it resolves to no address".into(),
        });
    }
    if tokens.is_empty() {
        if config.daemon.mode == Mode::Production {
            return Err(Error::NoTokens);
        }
        if addresses.iter().any(|a| !a.ip().is_loopback()) {
            return Err(Error::OpenApi {
                listen: listen.clone(),
            });
        }
    }
    Ok(addresses)
}

/// What the daemon runs with besides the config.
pub struct DaemonOptions {
    /// Tables copied at once in each run.
    pub jobs: usize,
    /// Where runs are recorded and catch-up decisions read from.
    pub history: Arc<dyn History>,
    /// The API's tokens.
    pub tokens: Tokens,
}

/// Why a run was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// The target is being refreshed by that run.
    Busy(RunId),
    /// The daemon is shutting down.
    ShuttingDown,
}

/// What the scheduler, the API, the page and the runs share.
pub(crate) struct Shared {
    config: Arc<Config>,
    /// The schedules, for the status page.
    schedules: Vec<Arc<Schedule>>,
    runs: Runs,
    metrics: Metrics,
    history: Arc<dyn History>,
    tokens: Tokens,
    /// The page's login sessions.
    sessions: session::Sessions,
    /// Passwords and keys of the config, blanked out of any text a page shows.
    secrets: Vec<String>,
    jobs: usize,
    /// Cancelled on SIGTERM/SIGINT: stops fires, new runs and the HTTP server; each run's
    /// token is a child of it.
    shutdown: CancellationToken,
    /// Every run and schedule fire, so that shutdown can wait for them.
    tasks: TaskTracker,
}

impl Shared {
    /// The state of a daemon that has not yet served or scheduled anything.
    fn new(config: Config, schedules: Vec<Schedule>, options: DaemonOptions) -> Arc<Self> {
        Arc::new(Shared {
            metrics: Metrics::new(config.targets.keys().map(String::as_str)),
            schedules: schedules.into_iter().map(Arc::new).collect(),
            runs: Runs::default(),
            history: options.history,
            tokens: options.tokens,
            sessions: session::Sessions::new(),
            secrets: secrets_of(&config),
            jobs: options.jobs.max(1),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            config: Arc::new(config),
        })
    }

    /// `text` with every secret of the config blanked out, and the password of any URL
    /// in it: what a page or an answer may show of an error.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut clean = text.to_owned();
        for secret in &self.secrets {
            clean = clean.replace(secret.as_str(), "***");
        }
        scrub_url_passwords(&clean)
    }
}

/// The masking key and the passwords of the config's URLs.
fn secrets_of(config: &Config) -> Vec<String> {
    let mut secrets = vec![config.masking.key.expose_secret().to_owned()];
    let urls = std::iter::once(&config.source.url)
        .chain(config.targets.values().map(|t| &t.url))
        .chain(std::iter::once(&config.audit.url));
    for url in urls {
        if let Ok(parsed) = url::Url::parse(url.expose_secret())
            && let Some(password) = parsed.password()
        {
            secrets.push(password.to_owned());
            // Errors may show it as written or decoded.
            if let Ok(decoded) = urlencoding_decode(password) {
                secrets.push(decoded);
            }
        }
    }
    // A short "secret" would blank out ordinary words.
    secrets.retain(|s| s.chars().count() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// Percent-decoding of a URL's password.
fn urlencoding_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

/// `scheme://user:password@host` becomes `scheme://user:***@host`, wherever it appears.
fn scrub_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c.is_whitespace() || c == '`' || c == '"' || c == '\'')
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at_sign), Some(colon)) if colon < at_sign => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at_sign..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Serves until `shutdown` resolves: schedules fire, the API answers; then stops taking
/// work, cancels runs in flight (each drops its shadow) and waits for them.
pub async fn serve(
    config: Config,
    schedules: Vec<Schedule>,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addresses = listen_addresses(&config, &options.tokens).await?;
    let address = addresses[0];
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind { address, source })?;
    let bound = listener.local_addr().map_err(Error::Serve)?;
    let shared = Shared::new(config, schedules, options);
    info!(
        address = %bound,
        schedules = shared.schedules.len(),
        tokens = ?shared.tokens.summary(),
        "listening on http://{bound}"
    );
    if shared.tokens.is_empty() {
        warn!("no API tokens ({TOKENS_VAR}): the API and the page are open to every local user");
    }
    for schedule in &shared.schedules {
        shared
            .tasks
            .spawn(scheduler::run(Arc::clone(&shared), Arc::clone(schedule)));
    }
    let stop = shared.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        info!("shutting down: no new runs; cancelling the runs in flight before their swap");
        stop.cancel();
    });

    let served = axum::serve(listener, api::router(Arc::clone(&shared)))
        .with_graceful_shutdown(shared.shutdown.clone().cancelled_owned())
        .await;
    // The server also ends on an error; stop everything else with it.
    shared.shutdown.cancel();
    shared.tasks.close();
    let waited = tokio::time::timeout(SHUTDOWN_GRACE, shared.tasks.wait()).await;
    served.map_err(Error::Serve)?;
    match waited {
        Ok(()) => {
            info!("stopped");
            Ok(())
        }
        Err(_) => Err(Error::ShutdownTimeout(shared.tasks.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{config, options};
    use super::*;

    fn tokens() -> Tokens {
        Tokens::parse("ci:ci-token-0123456789abcdef").unwrap()
    }

    #[tokio::test]
    async fn an_api_without_tokens_stays_on_loopback_and_out_of_production() {
        let (_dir, local) = config("[daemon]\nlisten = \"127.0.0.1:7070\"\n");
        assert!(listen_addresses(&local, &Tokens::default()).await.is_ok());
        let (_dir, open) = config("[daemon]\nlisten = \"0.0.0.0:7070\"\n");
        let err = listen_addresses(&open, &Tokens::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::OpenApi { .. }), "{err}");
        assert_eq!(err.exit_code(), 2);
        assert!(listen_addresses(&open, &tokens()).await.is_ok());
        let (_dir, production) = config("[daemon]\nmode = \"production\"\n");
        let err = listen_addresses(&production, &Tokens::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NoTokens), "{err}");
        assert!(listen_addresses(&production, &tokens()).await.is_ok());
        let (_dir, bad) = config("[daemon]\nlisten = \"nowhere\"\n");
        let err = listen_addresses(&bad, &tokens()).await.unwrap_err();
        assert!(matches!(err, Error::BadListen { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_token_for_a_target_lethe_toml_lacks_is_refused() {
        let (_dir, config) = config("");
        let typo = Tokens::parse("ci:ci-token-0123456789abcdef:refresh:dve").unwrap();
        let err = listen_addresses(&config, &typo).await.unwrap_err();
        assert!(err.to_string().contains("target `dve`"), "{err}");
        assert_eq!(err.exit_code(), 2);
        let right = Tokens::parse("ci:ci-token-0123456789abcdef:refresh:dev").unwrap();
        assert!(listen_addresses(&config, &right).await.is_ok());
    }

    #[test]
    fn secrets_and_url_passwords_are_scrubbed() {
        let (_dir, config) = config("");
        let shared = Shared::new(config, Vec::new(), options(Tokens::default()));
        let text = "key 0123456789abcdef-key; cannot connect to postgres://lethe:hunter2%21@db:5432/x \
                    (mysql://root:s3cr3t@127.0.0.1/y) and http://host/path";
        let clean = shared.scrub(text);
        assert!(!clean.contains("0123456789abcdef-key"), "{clean}");
        assert!(
            !clean.contains("hunter2") && !clean.contains("s3cr3t"),
            "{clean}"
        );
        assert!(clean.contains("postgres://lethe:***@db:5432/x"), "{clean}");
        assert!(clean.contains("mysql://root:***@127.0.0.1/y"), "{clean}");
        assert!(clean.contains("http://host/path"), "{clean}");
    }
}
