//! Who is asking, and whether they may: one answer for the JSON API and the page.
//!
//! A request names its caller with `Authorization: Bearer <token>` or, from a browser,
//! with the page's session cookie. Without configured tokens every caller is
//! [`Principal::anonymous`] (the API then listens on loopback only). A refusal is a 403
//! that says what the token may do; it is logged with the token's id (never the token)
//! and counted in `lethe_api_denied_total{token,action}`.

use axum::http::{HeaderMap, StatusCode, header};
use tracing::warn;

use super::Shared;
use super::auth::{Action, Principal};
use super::session;

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Proof {
    /// No tokens are configured: nothing to prove.
    Open,
    /// An `Authorization: Bearer` header (a browser never adds one by itself, so such a
    /// request needs no CSRF check).
    Bearer,
    /// The page's session cookie, with the session's id.
    Session(String),
}

/// The caller of a request, as the handlers see it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Who, and what it may do.
    pub principal: Principal,
    /// How it said so.
    pub proof: Proof,
}

impl Caller {
    /// The key a form's CSRF token is derived from; `None` when the request cannot be
    /// forged by another site (a bearer header).
    pub fn csrf_key(&self) -> Option<String> {
        match &self.proof {
            Proof::Open => Some("anonymous".to_owned()),
            Proof::Bearer => None,
            Proof::Session(id) => Some(format!("session:{id}")),
        }
    }
}

/// What the headers of a request say about its caller.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// A known caller.
    Caller(Caller),
    /// Tokens are configured and the request carries none.
    Missing,
    /// It carries a token (or session) that is not, or no longer, valid.
    Invalid,
}

/// Names the caller of a request from its `Authorization` header, else its session
/// cookie (when `cookies` allows one: only for reading under `/v1`, where a form from
/// another site cannot reach).
pub(crate) fn resolve(shared: &Shared, headers: &HeaderMap, cookies: bool) -> Resolved {
    if shared.tokens.is_empty() {
        return Resolved::Caller(Caller {
            principal: Principal::anonymous(),
            proof: Proof::Open,
        });
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok();
        return match shared.tokens.authorize(value) {
            Some(principal) => Resolved::Caller(Caller {
                principal: principal.clone(),
                proof: Proof::Bearer,
            }),
            None => Resolved::Invalid,
        };
    }
    if !cookies {
        return Resolved::Missing;
    }
    let Some(id) = session::cookie(headers, session::SESSION_COOKIE) else {
        return Resolved::Missing;
    };
    // The token's role is read as configured now, not as it was at login.
    match shared
        .sessions
        .token_of(id)
        .and_then(|token_id| shared.tokens.by_id(&token_id).cloned())
    {
        Some(principal) => Resolved::Caller(Caller {
            principal,
            proof: Proof::Session(id.to_owned()),
        }),
        None => Resolved::Invalid,
    }
}

/// Why a request was not carried out: an HTTP status and a message (the API answers it as
/// JSON, the page as HTML).
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// 400, 403, 404, 409, 500 or 503.
    pub status: StatusCode,
    /// What to tell the caller; never a secret.
    pub message: String,
    /// The run it is about (409: the run holding the target).
    pub run_id: Option<String>,
}

impl Refusal {
    /// A refusal without a run.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            run_id: None,
        }
    }
}

impl Shared {
    /// Allows `action` on `target`, or refuses it (403, logged and counted). A target
    /// outside the token's list is refused whether or not it exists, so that a token
    /// learns nothing of the targets it may not see.
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        target: &str,
    ) -> Result<(), Refusal> {
        if caller.principal.may(action, target) {
            return Ok(());
        }
        Err(self.deny(caller, action, target))
    }

    /// The 403 for `action` on `target`: logged with the token's id and counted.
    pub(crate) fn deny(&self, caller: &Caller, action: Action, target: &str) -> Refusal {
        let message = caller.principal.refusal(action, target);
        warn!(token = %caller.principal.id, action = action.as_str(), target = %target,
              "refused: outside the token's role or targets");
        self.metrics.denied(&caller.principal.id, action.as_str());
        Refusal::new(StatusCode::FORBIDDEN, message)
    }

    /// The configured target `name`, as the caller may know it: 403 outside its role or
    /// targets (whether or not the target exists), then 404 for a name lethe.toml lacks
    /// (listing the targets the caller may see).
    pub(crate) fn known_target(
        &self,
        caller: &Caller,
        action: Action,
        name: &str,
    ) -> Result<(), Refusal> {
        self.authorize(caller, action, name)?;
        if !self.config.targets.contains_key(name) {
            let visible: Vec<&str> = self
                .config
                .targets
                .keys()
                .map(String::as_str)
                .filter(|t| caller.principal.sees(t))
                .collect();
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no target `{name}` (targets: {})", visible.join(", ")),
            ));
        }
        Ok(())
    }
}
