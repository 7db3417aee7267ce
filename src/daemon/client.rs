//! The API from the other side: `lethe refresh <target> --via <url>` asks a daemon to
//! run the refresh (so the run is the daemon's: one at a time per target, recorded,
//! retried) and follows it until it ends.

use std::time::Duration;

use serde::Deserialize;

use super::api::RunView;

/// The variable `lethe refresh --via` reads its token from.
pub const TOKEN_VAR: &str = "LETHE_API_TOKEN";
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the daemon did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `--via` URL is not usable.
    #[error("`{0}` is not an http:// or https:// URL")]
    BadUrl(String),
    /// No answer.
    #[error("cannot reach the daemon: {}", causes(.0))]
    Unreachable(#[from] reqwest::Error),
    /// 401.
    #[error("the daemon refused the token: set {TOKEN_VAR} to a token it accepts")]
    Unauthorized,
    /// 403: the token's role or targets do not allow it; the daemon says what they do.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such target or run.
    #[error("{0}")]
    NotFound(String),
    /// 409: the target is refreshing.
    #[error("{0}")]
    Busy(String),
    /// Any other answer.
    #[error("the daemon answered {status}: {message}")]
    Other {
        /// The HTTP status.
        status: u16,
        /// Its error text.
        message: String,
    },
}

impl ClientError {
    /// The exit code: 2 for what the user must fix (URL, token, its role, target name), 1
    /// otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::BadUrl(_)
            | ClientError::Unauthorized
            | ClientError::Forbidden(_)
            | ClientError::NotFound(_) => 2,
            _ => 1,
        }
    }
}

/// An error with its causes (reqwest's own message alone says only "error sending
/// request"; the cause says "connection refused").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A daemon's API.
pub struct Client {
    base: url::Url,
    token: Option<String>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Accepted {
    run_id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl Client {
    /// A client for the daemon at `base` (`http://host:port`), sending `token` if given.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let base = url::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| ClientError::BadUrl(base.to_owned()))?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self { base, token, http })
    }

    /// `base` with these path segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<url::Url, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::BadUrl(self.base.to_string()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Asks for a refresh of `target`; returns the run id.
    pub async fn trigger(&self, target: &str) -> Result<String, ClientError> {
        let url = self.url(&["v1", "targets", target, "refresh"])?;
        let response = self.authorized(self.http.post(url)).send().await?;
        let accepted: Accepted = answer(response).await?;
        Ok(accepted.run_id)
    }

    /// The run's state now.
    pub async fn run(&self, id: &str) -> Result<RunView, ClientError> {
        let url = self.url(&["v1", "runs", id])?;
        let response = self.authorized(self.http.get(url)).send().await?;
        answer(response).await
    }
}

/// The body of a 2xx answer, or the error the status and body say.
async fn answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| ClientError::Other {
            status: status.as_u16(),
            message: format!("unreadable answer: {e}"),
        });
    }
    let message = serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
    Err(match status.as_u16() {
        401 => ClientError::Unauthorized,
        403 => ClientError::Forbidden(message),
        404 => ClientError::NotFound(message),
        409 => ClientError::Busy(message),
        code => ClientError::Other {
            status: code,
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_segments_encoded() {
        assert!(matches!(
            Client::new("ftp://host", None),
            Err(ClientError::BadUrl(_))
        ));
        assert!(matches!(
            Client::new("localhost:7070", None),
            Err(ClientError::BadUrl(_))
        ));
        let client = Client::new("http://127.0.0.1:7070/", None).unwrap();
        assert_eq!(
            client
                .url(&["v1", "targets", "a b/c", "refresh"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:7070/v1/targets/a%20b%2Fc/refresh"
        );
        let prefixed = Client::new("https://ops.example/lethe", None).unwrap();
        assert_eq!(
            prefixed.url(&["v1", "runs"]).unwrap().as_str(),
            "https://ops.example/lethe/v1/runs"
        );
    }
}
