//! `email`: a realistic, valid address that stays unique, e.g.
//! `jaylen.kub.3k9d0x7mqa2vr@example.com`.
//!
//! Fake names alone repeat (two customers both become `john.smith`), which would break a
//! unique constraint, so every address carries a tag of 65 bits taken from the keyed seed:
//! distinct real addresses collide only with negligible probability (about 1 in 7,000
//! at 100 million rows, before the names add their own entropy).
//!
//! With `keep_domain_shape = true` the domain is no longer `email_domain` but a keyed
//! stand-in of the real one with the same top-level domain and the same label lengths
//! (`x@mail.corp.de` -> `...@wxyz.qrst.de`): every address of one company shares one fake
//! domain, so grouping by domain still works in dev. Such a domain is not reserved and may
//! exist, so use it only where no mail is ever sent.

use std::sync::Arc;

use super::chacha::ChaCha8;
use fake::Fake;
use fake::faker::name::en::{FirstName, LastName};
use serde::Deserialize;

use rand::RngExt;

use super::{Masker, MaskingKey, parse_options, require_text};
use crate::catalog::Column;

/// Characters in the unique tag; 13 base32 characters carry 65 bits.
pub(super) const TAG_LEN: usize = 13;

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
    #[serde(default)]
    keep_domain_shape: bool,
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
    /// How many characters the `first.last` part may take with `mail_domain`.
    name_room: usize,
    /// Whether to write a keyed stand-in of the real domain, same shape, instead of
    /// `mail_domain` (which stays the fallback for a domain that is no host name).
    keep_domain_shape: bool,
    /// The seed domain of the fake mail domains, apart from the addresses' own.
    shape_domain: String,
}

/// Builds `email` from its rule: `email_domain` (default `example.com`, a reserved
/// domain, so no fake address can ever reach a real mailbox) and `max_length` (default
/// 64), the longest address written, and `keep_domain_shape` (default false).
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        email_domain,
        max_length,
        keep_domain_shape,
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
    let shape_domain = format!("{domain}\0mail-domain");
    Ok(Arc::new(Email {
        domain,
        mail_domain: email_domain,
        max_length,
        name_room,
        keep_domain_shape,
        shape_domain,
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
    fn generates(&self) -> bool {
        true
    }

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
        let mut rng = ChaCha8::from_seed(seed);
        let first: &str = FirstName().fake_with_rng(&mut rng);
        let last: &str = LastName().fake_with_rng(&mut rng);

        // The real domain, when its stand-in is wanted and fits; its stand-in has the
        // same length.
        let shaped = if self.keep_domain_shape {
            shapeable_domain(input).filter(|real| TAG_LEN + 1 + real.len() <= self.max_length)
        } else {
            None
        };
        let mut room = match shaped {
            Some(real) => self.max_length.saturating_sub(TAG_LEN + 2 + real.len()),
            None => self.name_room,
        };

        out.reserve(self.max_length);
        let start = out.len();
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
        match shaped {
            Some(real) => push_shaped_domain(real, &self.shape_domain, key, out),
            None => out.push_str(&self.mail_domain),
        }
    }
}

/// The domain of `address` when it can be given a stand-in of the same shape: a host
/// name (any case) of at least two labels whose top-level label is not all digits.
/// Anything else (no `@`, an IP literal, a single label, non-ASCII) is `None`.
fn shapeable_domain(address: &str) -> Option<&str> {
    let (_, real) = address.rsplit_once('@')?;
    let (_, tld) = real.rsplit_once('.')?;
    let is_host = real.len() <= 253
        && real.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    (is_host && !tld.bytes().all(|b| b.is_ascii_digit())).then_some(real)
}

/// Appends the keyed stand-in of `real` (a [`shapeable_domain`]): its top-level label
/// lowercased, every other label replaced by as many keyed lowercase letters. Keyed by
/// the lowercased domain alone, so all addresses of one domain share one stand-in.
fn push_shaped_domain(real: &str, seed_domain: &str, key: &MaskingKey, out: &mut String) {
    let mut lower = [0u8; 253];
    let lower = &mut lower[..real.len()];
    lower.copy_from_slice(real.as_bytes());
    lower.make_ascii_lowercase();
    let mut rng = ChaCha8::from_seed(key.seed(seed_domain, lower));
    let (labels, tld) = real.rsplit_once('.').unwrap_or(("", real));
    for label in labels.split('.') {
        for _ in 0..label.len() {
            out.push(char::from(rng.random_range(b'a'..=b'z')));
        }
        out.push('.');
    }
    for b in tld.bytes() {
        out.push(char::from(b.to_ascii_lowercase()));
    }
}

/// Appends up to `room` lowercased ASCII letters and digits of `word`, skipping
/// apostrophes, spaces and anything else that is not plain in a local part.
pub(super) fn push_local_word(word: &str, room: &mut usize, out: &mut String) {
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
pub(super) fn push_tag(seed: &[u8; 32], out: &mut String) {
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
    fn keep_domain_shape_keeps_tld_and_label_lengths_per_company() {
        let m = email("keep_domain_shape = true");
        let a = run(&*m, b"k", "alice@mail.corp.de");
        assert_valid(&a, 64);
        let domain = a.split_once('@').unwrap().1;
        assert_eq!(domain.len(), "mail.corp.de".len(), "{a}");
        assert!(domain.ends_with(".de"), "{a}");
        assert_ne!(domain, "mail.corp.de");
        let labels: Vec<&str> = domain.split('.').collect();
        assert_eq!(labels.len(), 3, "{a}");
        assert!(
            labels[..2]
                .iter()
                .all(|l| l.len() == 4 && l.bytes().all(|b| b.is_ascii_lowercase()))
        );
        // One company, one fake domain, whatever the case; another company, another.
        for other in ["bob@mail.corp.de", "carol@MAIL.Corp.DE"] {
            let b = run(&*m, b"k", other);
            assert_eq!(b.split_once('@').unwrap().1, domain, "{b}");
            assert_ne!(a, b);
        }
        let c = run(&*m, b"k", "alice@mail.crop.de");
        assert_ne!(c.split_once('@').unwrap().1, domain);
        // Keyed.
        let d = run(&*m, b"k2", "alice@mail.corp.de");
        assert_ne!(d.split_once('@').unwrap().1, domain);
    }

    #[test]
    fn keep_domain_shape_falls_back_to_email_domain() {
        let m = email("keep_domain_shape = true\nemail_domain = \"example.net\"");
        for input in [
            "no-at-sign",
            "x@localhost",
            "x@[10.0.0.1]",
            "x@10.0.0.1",
            "x@exämple.de",
            "x@-bad.de",
            "x@a..de",
            "",
        ] {
            let out = run(&*m, b"k", input);
            assert_valid(&out, 64);
            assert!(out.ends_with("@example.net"), "{input} -> {out}");
        }
        // A domain too long for `max_length` falls back too, and everything fits.
        let long = format!("x@{}.example.org", "a".repeat(60));
        let out = run(&*m, b"k", &long);
        assert!(out.ends_with("@example.net"), "{out}");
        let m = email("keep_domain_shape = true\nmax_length = 30");
        for i in 0..300 {
            let out = run(&*m, b"k", &format!("u{i}@sub{i}.corp.co.uk"));
            assert_valid(&out, 30);
            let domain = out.split_once('@').unwrap().1;
            assert!(domain == "example.com" || domain.ends_with(".uk"), "{out}");
        }
        let out = run(&*m, b"k", "u@sub.corp.co.uk");
        let domain = out.split_once('@').unwrap().1;
        assert_eq!(domain.split('.').count(), 4, "{out}");
        assert!(domain.ends_with(".uk"), "{out}");
    }

    #[test]
    fn keep_domain_shape_stays_unique() {
        let m = email("keep_domain_shape = true");
        let key = MaskingKey::new(b"uniqueness");
        let mut seen = HashSet::new();
        let mut out = String::new();
        for i in 0..20_000 {
            out.clear();
            m.mask(&format!("customer{i}@corp.test"), &key, &mut out);
            assert!(seen.insert(out.clone()), "collision at {i}");
        }
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
