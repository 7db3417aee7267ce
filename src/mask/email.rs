//! `email`: a realistic, valid address that stays unique, e.g.
//! `jaylen.kub.3k9d0x7mqa2vr@example.com`.
//!
//! Fake names alone repeat (two customers both become `john.smith`), which would break a
//! unique constraint, so every address carries a tag of 65 bits taken from the keyed seed:
//! distinct real addresses collide only with negligible probability (about 1 in 7,000
//! at 100 million rows, before the names add their own entropy).

use std::sync::Arc;

use fake::Fake;
use fake::faker::name::en::{FirstName, LastName};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, require_text};
use crate::catalog::Column;

/// Characters in the unique tag; 13 base32 characters carry 65 bits.
const TAG_LEN: usize = 13;

/// Crockford's base32 alphabet, lowercased: no `i`, `l`, `o`, `u` to misread.
const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The longest address a mail system must accept (RFC 5321, path limit minus `<>`).
const MAX_ADDRESS: usize = 254;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_domain")]
    email_domain: String,
    #[serde(default = "default_max_length")]
    max_length: usize,
}

fn default_domain() -> String {
    "example.com".to_owned()
}

fn default_max_length() -> usize {
    64
}

/// Writes `first.last.<tag>@<email_domain>`, the name part cut to fit `max_length`.
#[derive(Debug)]
pub(super) struct Email {
    domain: String,
    /// The mail domain (`email_domain`), lowercased and checked to be a host name.
    mail_domain: String,
    /// The longest address this masker writes.
    max_length: usize,
    /// How many characters the `first.last` part may take.
    name_room: usize,
}

/// Builds `email` from its rule: `email_domain` (default `example.com`, a reserved
/// domain, so no fake address can ever reach a real mailbox) and `max_length` (default
/// 64), the longest address written.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        email_domain,
        max_length,
    } = parse_options(options)?;
    let email_domain = email_domain.to_ascii_lowercase();
    if !is_host_name(&email_domain) {
        return Err("`email_domain` must be a host name such as `example.com`".to_owned());
    }
    // The tag, the `@` and the mail domain are never cut.
    let fixed = TAG_LEN + 1 + email_domain.len();
    if !(fixed..=MAX_ADDRESS).contains(&max_length) {
        return Err(format!(
            "`max_length` must be between {fixed} (the tag, `@` and `email_domain`) and \
             {MAX_ADDRESS}, not {max_length}"
        ));
    }
    // One more for the dot between the name and the tag.
    let name_room = max_length.saturating_sub(fixed + 1);
    Ok(Arc::new(Email {
        domain,
        mail_domain: email_domain,
        max_length,
        name_room,
    }))
}

/// Whether `s` is a host name: dot-separated labels of letters, digits and inner dashes.
fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl Masker for Email {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        match column.max_chars {
            Some(max) if max < self.max_length => Err(format!(
                "the column holds at most {max} characters, but fake addresses can be \
                 {} long; set `max_length` to at most {max}",
                self.max_length
            )),
            _ => Ok(()),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let seed = key.seed(&self.domain, input.as_bytes());
        let mut rng = ChaCha8Rng::from_seed(seed);
        let first: &str = FirstName().fake_with_rng(&mut rng);
        let last: &str = LastName().fake_with_rng(&mut rng);

        out.reserve(self.max_length);
        let start = out.len();
        let mut room = self.name_room;
        push_local_word(first, &mut room, out);
        if room > 0 {
            out.push('.');
            room -= 1;
        }
        push_local_word(last, &mut room, out);
        // A cut can leave `first.`; a dot may not end the name or double up.
        while out.len() > start && out.ends_with('.') {
            out.pop();
        }
        if out.len() > start {
            out.push('.');
        }
        push_tag(&seed, out);
        out.push('@');
        out.push_str(&self.mail_domain);
    }
}

/// Appends up to `room` lowercased ASCII letters and digits of `word`, skipping
/// apostrophes, spaces and anything else that is not plain in a local part.
fn push_local_word(word: &str, room: &mut usize, out: &mut String) {
    for b in word.bytes() {
        if *room == 0 {
            return;
        }
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b.to_ascii_lowercase()));
            *room -= 1;
        }
    }
}

/// Appends the first 65 bits of the seed as 13 base32 characters.
fn push_tag(seed: &[u8; 32], out: &mut String) {
    let mut high = [0u8; 16];
    high.copy_from_slice(&seed[..16]);
    let bits = u128::from_be_bytes(high);
    for i in 0..TAG_LEN {
        let index = (bits >> (128 - 5 * (i + 1))) & 31;
        // `index` is below 32 by the mask above.
        out.push(char::from(BASE32[index as usize]));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, unique_text, varchar};

    fn email(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "email", options)
    }

    fn assert_valid(address: &str, max: usize) {
        assert!(address.is_ascii(), "{address}");
        assert!(address.len() <= max, "{address}");
        let (local, domain) = address.split_once('@').unwrap();
        assert!(!domain.contains('@'), "{address}");
        assert!(!local.is_empty() && local.len() <= 64, "{address}");
        assert!(
            !local.starts_with('.') && !local.ends_with('.'),
            "{address}"
        );
        assert!(!local.contains(".."), "{address}");
        assert!(
            local
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.'),
            "{address}"
        );
        let tag = local.rsplit('.').next().unwrap();
        assert_eq!(tag.len(), TAG_LEN, "{address}");
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = email("");
        let a = run(&*m, b"k1", "alice@corp.test");
        assert_valid(&a, 64);
        assert!(a.ends_with("@example.com"), "{a}");
        assert_eq!(a.split('.').count(), 4, "{a}");
        assert_eq!(a, run(&*m, b"k1", "alice@corp.test"));
        assert_ne!(a, run(&*m, b"k2", "alice@corp.test"));
        assert_ne!(a, run(&*m, b"k1", "bob@corp.test"));
        let other = crate::mask::testing::build(build, "contact", "");
        assert_ne!(a, run(&*other, b"k1", "alice@corp.test"));
    }

    #[test]
    fn many_addresses_are_valid_and_bounded() {
        let m = email("");
        for i in 0..5_000 {
            assert_valid(&run(&*m, b"k", &format!("user{i}@corp.test")), 64);
        }
    }

    #[test]
    fn cuts_the_name_never_the_tag_or_domain() {
        let domain = "mail.a-very-long-subdomain.example.org";
        let fixed = TAG_LEN + 1 + domain.len();
        for max in [fixed, fixed + 1, fixed + 2, fixed + 5, 64] {
            let m = email(&format!("email_domain = \"{domain}\"\nmax_length = {max}"));
            for i in 0..500 {
                let out = run(&*m, b"k", &format!("u{i}"));
                assert_valid(&out, max);
                assert!(out.ends_with(&format!("@{domain}")), "{out}");
            }
        }
    }

    #[test]
    fn email_domain_is_lowercased_and_validated() {
        let m = email("email_domain = \"Example.ORG\"");
        assert!(run(&*m, b"k", "x").ends_with("@example.org"));
        for bad in ["", "a..b", "-a.com", "a b.com", "a@b.com", "exämple.com"] {
            let err = build_err(build, &format!("email_domain = \"{bad}\""));
            assert!(err.contains("email_domain"), "{err}");
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let err = build_err(build, "domain_name = \"x.com\"");
        assert!(err.contains("domain_name"), "{err}");
        assert!(build_err(build, "max_length = 20").contains("max_length"));
        assert!(build_err(build, "max_length = 255").contains("max_length"));
    }

    #[test]
    fn checks() {
        let m = email("");
        assert_text_checks(&*m, true);
        assert!(m.check(&unique_text()).is_ok());
        assert!(m.check(&varchar(64)).is_ok());
        let err = m.check(&varchar(50)).unwrap_err();
        assert!(err.contains("max_length"), "{err}");
        assert!(email("max_length = 50").check(&varchar(50)).is_ok());
    }

    #[test]
    fn distinct_inputs_stay_distinct() {
        let m = email("");
        let key = MaskingKey::new(b"uniqueness");
        let mut seen = HashSet::with_capacity(200_000);
        let mut out = String::new();
        for i in 0..200_000 {
            out.clear();
            m.mask(&format!("customer{i}@corp.test"), &key, &mut out);
            assert!(seen.insert(out.clone()), "collision at {i}");
        }
        assert_eq!(seen.len(), 200_000);
    }
}
