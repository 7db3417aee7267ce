//! API tokens: read from `LETHE_API_TOKENS` (`id1:token1,id2:token2`) and never from a
//! file, so that they live where the other secrets do (the service manager's environment
//! or a secret store), and kept only as SHA-256 digests compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The variable the daemon reads its tokens from.
pub const TOKENS_VAR: &str = "LETHE_API_TOKENS";
/// The shortest token accepted: shorter ones can be guessed over the network.
const MIN_TOKEN_CHARS: usize = 16;

/// The tokens the API accepts, each under the id that names its holder in the run
/// history (`api:<id>`).
#[derive(Default)]
pub struct Tokens {
    entries: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

    /// Parses `id1:token1,id2:token2`. Errors name the entry by position and id, never a
    /// token.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries: Vec<(String, [u8; 32])> = Vec::new();
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            let n = index + 1;
            if entry.is_empty() && text.trim().is_empty() {
                break;
            }
            let Some((id, token)) = entry.split_once(':') else {
                return Err(format!(
                    "{TOKENS_VAR}: entry {n} has no `:`; write id1:token1,id2:token2"
                ));
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
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(format!(
                    "{TOKENS_VAR}: the token of `{id}` is shorter than {MIN_TOKEN_CHARS} characters; \
                     use a long random one (openssl rand -hex 32)"
                ));
            }
            if entries.iter().any(|(known, _)| known == id) {
                return Err(format!("{TOKENS_VAR}: `{id}` is listed twice"));
            }
            entries.push((id.to_owned(), Sha256::digest(token.as_bytes()).into()));
        }
        Ok(Self { entries })
    }

    /// Whether no token is configured (the API is then open, on loopback only).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured ids, for the startup log.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(id, _)| id.as_str())
    }

    /// The id of the holder of `presented`, if it is a configured token. Every entry is
    /// compared, each in constant time over the digests, so the time taken tells nothing
    /// about how much of a token was right.
    pub fn identify(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (id, expected) in &self.entries {
            if bool::from(expected.ct_eq(&digest)) {
                found = Some(id.as_str());
            }
        }
        found
    }

    /// The holder of the token in an `Authorization: Bearer <token>` header value.
    pub fn authorize(&self, header: Option<&str>) -> Option<&str> {
        let (scheme, token) = header?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.identify(token.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CI: &str = "ci-token-0123456789abcdef";
    const OPS: &str = "ops-token-0123456789abcdef";

    #[test]
    fn tokens_identify_their_holder() {
        let tokens = Tokens::parse(&format!("ci:{CI}, ops:{OPS}")).unwrap();
        assert_eq!(tokens.identify(CI), Some("ci"));
        assert_eq!(tokens.identify(OPS), Some("ops"));
        assert_eq!(tokens.identify("ci-token-0123456789abcdeX"), None);
        assert_eq!(tokens.identify(""), None);
        assert_eq!(
            tokens.authorize(Some(&format!("Bearer {OPS}"))),
            Some("ops")
        );
        assert_eq!(tokens.authorize(Some(&format!("bearer  {CI}"))), Some("ci"));
        assert_eq!(tokens.authorize(Some(&format!("Basic {CI}"))), None);
        assert_eq!(tokens.authorize(Some(CI)), None);
        assert_eq!(tokens.authorize(None), None);
        assert_eq!(tokens.ids().collect::<Vec<_>>(), ["ci", "ops"]);
        // Debug shows the ids only.
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("0123456789"), "{debug}");
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
