//! The page's login: a person pastes a token once, and the browser keeps a session
//! cookie (HttpOnly, SameSite=Strict, no expiry date: it ends with the browser) that
//! names a session held here. The cookie holds a random session id, never the token, so
//! a stolen cookie dies with the daemon or at logout and the token itself never sits in
//! a browser's cookie store.
//!
//! Forms carry a CSRF token derived from the session (HMAC-SHA256 under a key drawn when
//! the daemon starts), checked on every POST the page makes; the login form carries one
//! derived from a short-lived login cookie, so another site cannot log a browser in
//! under its own token either.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "lethe_session";
/// The login form's cookie, which its CSRF token is derived from.
pub(crate) const LOGIN_COOKIE: &str = "lethe_login";
/// A session unused for this long ends.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// The most sessions kept; past it the least recently used one ends.
const MAX_SESSIONS: usize = 10_000;

/// One login.
struct Session {
    /// The id of the token it logged in with: its role is looked up on every request.
    token_id: String,
    last_seen: Instant,
}

/// Every open session.
pub(crate) struct Sessions {
    /// The CSRF tokens' HMAC key, drawn at startup.
    key: [u8; 32],
    open: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as lower-case hex.
fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    crate::audit::hex(&bytes)
}

impl Sessions {
    /// No session yet, and a fresh CSRF key.
    pub fn new() -> Self {
        Self {
            key: rand::random(),
            open: Mutex::default(),
        }
    }

    /// Opens a session for the holder of `token_id`; returns the cookie's value.
    pub fn open(&self, token_id: &str) -> String {
        let id = random_hex();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, s| s.last_seen.elapsed() < IDLE);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone())
        {
            open.remove(&oldest);
        }
        open.insert(
            id.clone(),
            Session {
                token_id: token_id.to_owned(),
                last_seen: Instant::now(),
            },
        );
        id
    }

    /// The token id of the open session `id`, marking it used.
    pub fn token_of(&self, id: &str) -> Option<String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let session = open.get_mut(id)?;
        if session.last_seen.elapsed() >= IDLE {
            open.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some(session.token_id.clone())
    }

    /// Ends the session `id` (logout).
    pub fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// The CSRF token of forms shown under `key` (a session, or the login cookie).
    pub fn csrf(&self, key: &str) -> String {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(b"lethe csrf\0");
        mac.update(key.as_bytes());
        crate::audit::hex(&mac.finalize().into_bytes())
    }

    /// Whether `presented` is the CSRF token of `key`, compared in constant time.
    pub fn csrf_ok(&self, key: &str, presented: &str) -> bool {
        bool::from(self.csrf(key).as_bytes().ct_eq(presented.as_bytes()))
    }

    /// A fresh login-form cookie value.
    pub fn login_nonce() -> String {
        random_hex()
    }
}

/// The value of the cookie `name` in a request.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole site, `Secure` when the
/// request came over HTTPS (a proxy in front says so in `X-Forwarded-Proto`), and ended
/// at once with `clear`.
pub(crate) fn set_cookie(name: &str, value: &str, request: &HeaderMap, clear: bool) -> HeaderValue {
    let secure = request
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        text.push_str("; Secure");
    }
    if clear {
        text.push_str("; Max-Age=0");
    }
    // Names and values are ours: hex and fixed words.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_resolve_and_close() {
        let sessions = Sessions::new();
        let id = sessions.open("ci");
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.token_of(&id).as_deref(), Some("ci"));
        assert_eq!(sessions.token_of("nope"), None);
        sessions.close(&id);
        assert_eq!(sessions.token_of(&id), None);
        assert_ne!(sessions.open("ci"), sessions.open("ci"));
    }

    #[test]
    fn csrf_tokens_belong_to_their_key_and_daemon() {
        let sessions = Sessions::new();
        let token = sessions.csrf("session:a");
        assert!(sessions.csrf_ok("session:a", &token));
        assert!(!sessions.csrf_ok("session:b", &token));
        assert!(!sessions.csrf_ok("session:a", ""));
        assert!(!Sessions::new().csrf_ok("session:a", &token));
    }

    #[test]
    fn cookies_are_read_and_written_strict() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lethe_session=abc ; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        let set = set_cookie(SESSION_COOKIE, "abc", &headers, false);
        assert_eq!(
            set.to_str().unwrap(),
            "lethe_session=abc; Path=/; HttpOnly; SameSite=Strict"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let cleared = set_cookie(SESSION_COOKIE, "", &headers, true);
        assert!(cleared.to_str().unwrap().ends_with("; Secure; Max-Age=0"));
    }
}
