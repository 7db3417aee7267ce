//! The masking key: the one secret that makes pseudonyms consistent yet unguessable.
//!
//! `seed = HMAC-SHA256(key, domain || 0x00 || input)`. Equal inputs in one domain get
//! equal seeds (so joins survive masking), and without the key nobody can rebuild the
//! table from real values to fakes (so a masked copy cannot be reversed by brute force
//! over, say, every phone number).

use std::fmt;

use super::chacha::ChaCha8;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HMAC key for consistent pseudonyms, keyed once per run.
///
/// Keying HMAC-SHA256 costs two extra compression rounds; cloning the keyed state is a
/// memcpy. Maskers run millions of times per second, so the key is keyed here once and
/// cloned per value.
#[derive(Clone)]
pub struct MaskingKey {
    mac: Hmac<Sha256>,
}

impl MaskingKey {
    /// Keys HMAC-SHA256 with `secret`. HMAC takes a key of any length; whether a secret
    /// is long enough is the configuration's call, not this type's.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        // HMAC hashes long keys and pads short ones: no length is refused.
        let Ok(mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
            unreachable!("HMAC-SHA256 accepts keys of any length")
        };
        Self { mac }
    }

    /// The 32-byte pseudonym seed for `input` in `domain`: what every keyed masker
    /// derives its output from, so that the same (key, domain, input) always gives the
    /// same fake. The 0x00 separator keeps `("ab", "c")` and `("a", "bc")` apart.
    #[must_use]
    pub fn seed(&self, domain: &str, input: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// A random number generator seeded from [`MaskingKey::seed`], for maskers that
    /// draw from word lists. It is `ChaCha8` by name, never `StdRng` or `thread_rng`,
    /// whose algorithm may change on a `cargo update` and silently change every
    /// pseudonym.
    #[must_use]
    pub fn rng(&self, domain: &str, input: &[u8]) -> ChaCha8 {
        ChaCha8::from_seed(self.seed(domain, input))
    }
}

/// Never prints the key: a `{:?}` in a log line or panic must not leak the secret that
/// protects every pseudonym.
impl fmt::Debug for MaskingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MaskingKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn seed_is_hmac_sha256_of_domain_nul_input() {
        // RFC 4231 style check against an independent computation of the same MAC.
        let key = MaskingKey::new(b"k");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"k").unwrap();
        mac.update(b"email\0alice@example.org");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(key.seed("email", b"alice@example.org"), expected);
    }

    #[test]
    fn seed_is_deterministic_and_keyed() {
        let a = MaskingKey::new(b"one");
        let b = MaskingKey::new(b"two");
        assert_eq!(a.seed("d", b"x"), a.clone().seed("d", b"x"));
        assert_ne!(a.seed("d", b"x"), b.seed("d", b"x"));
        assert_ne!(a.seed("d", b"x"), a.seed("e", b"x"));
        assert_ne!(a.seed("ab", b"c"), a.seed("a", b"bc"));
    }

    #[test]
    fn rng_follows_the_seed() {
        let key = MaskingKey::new(b"k");
        let mut r1 = key.rng("d", b"x");
        let mut r2 = key.rng("d", b"x");
        let mut r3 = key.rng("d", b"y");
        let (a, b, c) = (r1.next_u64(), r2.next_u64(), r3.next_u64());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = MaskingKey::new(b"super-secret-key");
        let shown = format!("{key:?}");
        assert_eq!(shown, "MaskingKey(<redacted>)");
        assert!(!shown.contains("secret"));
    }
}
