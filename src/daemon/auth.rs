//! API tokens: read from `LETHE_API_TOKENS` and never from a file, so that they live where
//! the other secrets do (the service manager's environment or a secret store), and kept
//! only as SHA-256 digests compared in constant time.
//!
//! Each entry is `id:token[:role[:targets]]`, entries separated by `,`:
//!
//! - `role` is `read` (runs, status, the page), `refresh` (also trigger and cancel runs)
//!   or `admin` (also roll back); without one the token is `admin`, so that the
//!   `id:token` entries written before roles existed keep doing what they did;
//! - `targets` is `dev+qa` (those targets only) or `*` (all, the default).
//!
//! `ci:<token>:refresh:dev+qa,ops:<token>:admin,dash:<token>:read`

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The variable the daemon reads its tokens from.
pub const TOKENS_VAR: &str = "LETHE_API_TOKENS";
/// The shortest token accepted: shorter ones can be guessed over the network.
const MIN_TOKEN_CHARS: usize = 16;

/// What a token may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// See runs, status and the page.
    Read,
    /// Also trigger and cancel runs.
    Refresh,
    /// Also roll a target back to its previous copy.
    Admin,
}

impl Role {
    /// The word written in `LETHE_API_TOKENS` and shown in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Refresh => "refresh",
            Role::Admin => "admin",
        }
    }

    /// What the role allows, for the 403 message and the page.
    pub fn allows(self) -> &'static str {
        match self {
            Role::Read => "see runs and status",
            Role::Refresh => "see, trigger and cancel runs",
            Role::Admin => "see, trigger and cancel runs, and roll back",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Role::Read, Role::Refresh, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// Something a caller asks to do, checked against its role and targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read runs and status (the `/v1/runs` routes and the page).
    Read,
    /// Start a refresh.
    Refresh,
    /// Cancel a run.
    Cancel,
    /// Swap a target's previous copy back in.
    Rollback,
}

impl Action {
    /// The word in logs, messages and the `action` label of `lethe_api_denied_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Refresh => "refresh",
            Action::Cancel => "cancel",
            Action::Rollback => "rollback",
        }
    }

    /// The least role that may do it.
    pub fn needs(self) -> Role {
        match self {
            Action::Read => Role::Read,
            Action::Refresh | Action::Cancel => Role::Refresh,
            Action::Rollback => Role::Admin,
        }
    }
}

/// The targets a token may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every configured target.
    All,
    /// These, by name.
    Only(BTreeSet<String>),
}

impl Targets {
    /// Whether `target` is among them.
    pub fn contains(&self, target: &str) -> bool {
        match self {
            Targets::All => true,
            Targets::Only(names) => names.contains(target),
        }
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Targets::All => f.write_str("all targets"),
            Targets::Only(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// Who is asking, and what it may do: a configured token's holder, or everyone on an API
/// without tokens (which serves loopback only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id (`anonymous` without tokens): the run history's `api:<id>`.
    pub id: String,
    /// What it may do.
    pub role: Role,
    /// Where.
    pub targets: Targets,
}

impl Principal {
    /// The caller of an API without tokens: the API is open to local users, who may do
    /// everything.
    pub fn anonymous() -> Self {
        Self {
            id: "anonymous".into(),
            role: Role::Admin,
            targets: Targets::All,
        }
    }

    /// Whether it may do `action` on `target`.
    pub fn may(&self, action: Action, target: &str) -> bool {
        self.role >= action.needs() && self.targets.contains(target)
    }

    /// Whether it may see `target` at all.
    pub fn sees(&self, target: &str) -> bool {
        self.targets.contains(target)
    }

    /// `refresh on dev, qa`: for the startup log, `--check` and the page.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.role.as_str(), self.targets)
    }

    /// Why `action` on `target` is refused, naming what the token may do (and never the
    /// token).
    pub fn refusal(&self, action: Action, target: &str) -> String {
        format!(
            "token `{}` may not {} `{target}`: its role `{}` may {}, on {}",
            self.id,
            action.as_str(),
            self.role.as_str(),
            self.role.allows(),
            self.targets
        )
    }
}

/// One configured token.
struct Entry {
    digest: [u8; 32],
    principal: Principal,
}

/// The tokens the API accepts, each under the id that names its holder in the run
/// history (`api:<id>`), with its role and targets.
#[derive(Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

impl Tokens {
    /// Reads [`TOKENS_VAR`]; unset or blank means no tokens.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(TOKENS_VAR) {
            Ok(text) => Self::parse(&text),
            Err(std::env::VarError::NotPresent) => Ok(Self::default()),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("{TOKENS_VAR} is not UTF-8")),
        }
    }

    /// Parses `id:token[:role[:targets]],...`. Errors name the entry by position and id,
    /// never a token.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries: Vec<Entry> = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self { entries });
        }
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            let n = index + 1;
            let fields: Vec<&str> = entry.split(':').collect();
            let (id, token) = match fields.as_slice() {
                [id, token, ..] => (*id, *token),
                _ => {
                    return Err(format!(
                        "{TOKENS_VAR}: entry {n} has no `:`; write id:token[:role[:targets]],..."
                    ));
                }
            };
            let id_ok = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !id_ok {
                return Err(format!(
                    "{TOKENS_VAR}: entry {n}: an id is letters, digits, `_`, `-` or `.`"
                ));
            }
            if fields.len() > 4 {
                return Err(format!(
                    "{TOKENS_VAR}: entry {n} (`{id}`) has more than id:token:role:targets \
                     (a token cannot contain `:`)"
                ));
            }
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(format!(
                    "{TOKENS_VAR}: the token of `{id}` is shorter than {MIN_TOKEN_CHARS} characters; \
                     use a long random one (openssl rand -hex 32)"
                ));
            }
            let role = match fields.get(2) {
                None => Role::Admin,
                Some(word) => Role::parse(word).ok_or_else(|| {
                    format!(
                        "{TOKENS_VAR}: entry {n} (`{id}`): the role is read, refresh or admin \
                         (a token cannot contain `:`)"
                    )
                })?,
            };
            let targets = match fields.get(3) {
                None | Some(&"*") => Targets::All,
                Some(list) => {
                    let names: BTreeSet<String> = list.split('+').map(str::to_owned).collect();
                    if names.iter().any(String::is_empty) {
                        return Err(format!(
                            "{TOKENS_VAR}: entry {n} (`{id}`): targets are `*` or names joined \
                             by `+` (dev+qa)"
                        ));
                    }
                    Targets::Only(names)
                }
            };
            if entries.iter().any(|e| e.principal.id == id) {
                return Err(format!("{TOKENS_VAR}: `{id}` is listed twice"));
            }
            entries.push(Entry {
                digest: Sha256::digest(token.as_bytes()).into(),
                principal: Principal {
                    id: id.to_owned(),
                    role,
                    targets,
                },
            });
        }
        Ok(Self { entries })
    }

    /// Whether no token is configured (the API is then open, on loopback only).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured ids, for the startup log.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.principal.id.as_str())
    }

    /// `ci (refresh on dev, qa)` for each token: what `--check` and the startup log say.
    pub fn summary(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| format!("{} ({})", e.principal.id, e.principal.describe()))
            .collect()
    }

    /// A token naming a target that lethe.toml does not have (a typo would otherwise
    /// leave the token without the target it was meant for).
    pub fn check_targets(&self, known: impl Fn(&str) -> bool) -> Result<(), String> {
        for entry in &self.entries {
            if let Targets::Only(names) = &entry.principal.targets
                && let Some(unknown) = names.iter().find(|name| !known(name))
            {
                return Err(format!(
                    "{TOKENS_VAR}: token `{}` names target `{unknown}`, which lethe.toml does not define",
                    entry.principal.id
                ));
            }
        }
        Ok(())
    }

    /// The holder of `presented`, if it is a configured token. Every entry is compared,
    /// each in constant time over the digests, so the time taken tells nothing about how
    /// much of a token was right.
    pub fn identify(&self, presented: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(&entry.principal);
            }
        }
        found
    }

    /// The holder of the token in an `Authorization: Bearer <token>` header value.
    pub fn authorize(&self, header: Option<&str>) -> Option<&Principal> {
        let (scheme, token) = header?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.identify(token.trim())
    }

    /// The token holder with this id (a login session's), with its role as configured now.
    pub fn by_id(&self, id: &str) -> Option<&Principal> {
        self.entries
            .iter()
            .map(|e| &e.principal)
            .find(|p| p.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CI: &str = "ci-token-0123456789abcdef";
    const OPS: &str = "ops-token-0123456789abcdef";

    fn id(principal: Option<&Principal>) -> Option<&str> {
        principal.map(|p| p.id.as_str())
    }

    #[test]
    fn tokens_identify_their_holder() {
        let tokens = Tokens::parse(&format!("ci:{CI}, ops:{OPS}")).unwrap();
        assert_eq!(id(tokens.identify(CI)), Some("ci"));
        assert_eq!(id(tokens.identify(OPS)), Some("ops"));
        assert_eq!(tokens.identify("ci-token-0123456789abcdeX"), None);
        assert_eq!(tokens.identify(""), None);
        assert_eq!(
            id(tokens.authorize(Some(&format!("Bearer {OPS}")))),
            Some("ops")
        );
        assert_eq!(
            id(tokens.authorize(Some(&format!("bearer  {CI}")))),
            Some("ci")
        );
        assert_eq!(tokens.authorize(Some(&format!("Basic {CI}"))), None);
        assert_eq!(tokens.authorize(Some(CI)), None);
        assert_eq!(tokens.authorize(None), None);
        assert_eq!(tokens.ids().collect::<Vec<_>>(), ["ci", "ops"]);
        // Debug shows the ids only.
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("0123456789"), "{debug}");
    }

    #[test]
    fn an_entry_without_a_role_is_admin_on_every_target() {
        let tokens = Tokens::parse(&format!("ci:{CI}")).unwrap();
        let ci = tokens.identify(CI).unwrap();
        assert_eq!((ci.role, &ci.targets), (Role::Admin, &Targets::All));
        assert!(ci.may(Action::Rollback, "anything"));
        assert_eq!(tokens.summary(), ["ci (admin on all targets)"]);
    }

    #[test]
    fn roles_include_the_ones_below_and_targets_limit_them() {
        let tokens = Tokens::parse(&format!(
            "ci:{CI}:refresh:dev+qa,ops:{OPS}:admin:*,dash:dash-token-0123456789abc:read"
        ))
        .unwrap();
        let ci = tokens.by_id("ci").unwrap();
        assert!(ci.may(Action::Read, "dev") && ci.may(Action::Refresh, "qa"));
        assert!(ci.may(Action::Cancel, "dev"));
        assert!(!ci.may(Action::Rollback, "dev"));
        assert!(!ci.may(Action::Read, "staging") && !ci.sees("staging"));
        assert!(
            tokens
                .by_id("ops")
                .unwrap()
                .may(Action::Rollback, "staging")
        );
        let dash = tokens.identify("dash-token-0123456789abc").unwrap();
        assert!(dash.may(Action::Read, "staging"));
        assert!(!dash.may(Action::Refresh, "dev") && !dash.may(Action::Cancel, "dev"));
        let refusal = ci.refusal(Action::Rollback, "dev");
        assert_eq!(
            refusal,
            "token `ci` may not rollback `dev`: its role `refresh` may see, trigger and cancel runs, on dev, qa"
        );
        assert_eq!(
            tokens.summary(),
            [
                "ci (refresh on dev, qa)",
                "ops (admin on all targets)",
                "dash (read on all targets)"
            ]
        );
        assert!(tokens.check_targets(|t| t == "dev" || t == "qa").is_ok());
        let err = tokens.check_targets(|t| t == "dev").unwrap_err();
        assert!(err.contains("`ci` names target `qa`"), "{err}");
    }

    #[test]
    fn blank_means_none_and_mistakes_never_echo_a_token() {
        assert!(Tokens::parse("").unwrap().is_empty());
        assert!(Tokens::parse("  ").unwrap().is_empty());
        for (text, expected) in [
            ("ci-token-0123456789abcdef", "entry 1 has no `:`"),
            ("ci:short-secret", "shorter than 16"),
            (":ci-token-0123456789abcdef", "entry 1: an id is"),
            ("a b:ci-token-0123456789abcdef", "entry 1: an id is"),
            (
                "ci:ci-token-0123456789abcdef,ci:ci-token-0123456789abcdee",
                "`ci` is listed twice",
            ),
            ("ci:ci-token-0123456789abcdef,,", "entry 2 has no `:`"),
            ("ci:ci-token-0123456789abcdef:write", "the role is read"),
            // A token holding `:` (allowed before roles) is refused, not misread.
            ("ci:ci-token-0123456789:abcdef", "the role is read"),
            ("ci:ci-token-0123456789abcdef:read:dev:x", "more than"),
            ("ci:ci-token-0123456789abcdef:read:dev++qa", "joined by `+`"),
        ] {
            let err = Tokens::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(
                !err.contains("0123456789") && !err.contains("short-secret"),
                "{err}"
            );
        }
    }
}
