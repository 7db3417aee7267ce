//! `uuid`: a keyed version-4 UUID, lowercase and hyphenated, e.g.
//! `9f1c2b7e-41d3-4c8a-9b2e-0d5f6a7c8e91`.
//!
//! UUIDs are often keys that other tables (or other systems) refer to, so the stand-in is
//! consistent per domain: the same real UUID becomes the same fake wherever it appears.
//! 122 of the seed's bits fill it (the version and variant bits are fixed), so distinct
//! inputs collide only with negligible probability (about 1 in 10^21 at 100 million
//! rows): fit for unique and primary-key columns.

use std::sync::Arc;

use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options};
use crate::catalog::{Column, TypeKind};

/// The length of a hyphenated UUID.
const UUID_LEN: usize = 36;

/// Lowercase hex digits: PostgreSQL prints uuids in lowercase.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// `uuid` takes no options; this only refuses unknown ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {}

/// Writes the first 128 bits of the seed as a v4 UUID.
#[derive(Debug)]
pub(super) struct Uuid {
    domain: String,
}

/// Builds `uuid`, which takes no options.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {} = parse_options(options)?;
    Ok(Arc::new(Uuid { domain }))
}

impl Masker for Uuid {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        match column.kind {
            TypeKind::Other if column.type_name == "uuid" => Ok(()),
            TypeKind::Text => match column.max_chars {
                Some(max) if max < UUID_LEN => Err(format!(
                    "the column holds at most {max} characters, but a UUID has {UUID_LEN}"
                )),
                _ => Ok(()),
            },
            _ => Err(format!(
                "produces text or a uuid, but the column is {}",
                column.type_name
            )),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let seed = key.seed(&self.domain, input.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&seed[..16]);
        // RFC 9562: version 4 in the high nibble of byte 6, variant `10` in byte 8.
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        out.reserve(UUID_LEN);
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{bigint, build_err, run, text, unique_text, varchar};

    fn uuid() -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "uuid", "")
    }

    fn assert_v4(s: &str) {
        assert_eq!(s.len(), UUID_LEN, "{s}");
        for (i, c) in s.chars().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                assert_eq!(c, '-', "{s}");
            } else {
                assert!(c.is_ascii_digit() || ('a'..='f').contains(&c), "{s}");
            }
        }
        assert_eq!(&s[14..15], "4", "{s}");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
    }

    #[test]
    fn deterministic_keyed_and_valid() {
        let m = uuid();
        let input = "123e4567-e89b-12d3-a456-426614174000";
        let a = run(&*m, b"k1", input);
        assert_v4(&a);
        assert_eq!(a, run(&*m, b"k1", input));
        assert_ne!(a, run(&*m, b"k2", input));
        assert_ne!(a, run(&*m, b"k1", "123e4567-e89b-12d3-a456-426614174001"));
        let other = crate::mask::testing::build(build, "order_id", "");
        assert_ne!(a, run(&*other, b"k1", input));
        assert_v4(&run(&*m, b"k1", "Zoë Ünïcödé"));
        assert_v4(&run(&*m, b"k1", ""));
    }

    #[test]
    fn distinct_inputs_stay_distinct() {
        let m = uuid();
        let key = MaskingKey::new(b"u");
        let mut seen = HashSet::new();
        let mut out = String::new();
        for i in 0..100_000 {
            out.clear();
            m.mask(&format!("00000000-0000-4000-8000-{i:012}"), &key, &mut out);
            assert!(seen.insert(out.clone()));
        }
    }

    #[test]
    fn checks_and_options() {
        let m = uuid();
        let column = |type_name: &str, kind| Column {
            type_name: type_name.into(),
            kind,
            unique: true,
            ..text()
        };
        assert!(m.check(&column("uuid", TypeKind::Other)).is_ok());
        assert!(m.check(&unique_text()).is_ok());
        assert!(m.check(&varchar(36)).is_ok());
        assert!(m.check(&varchar(32)).is_err());
        assert!(m.check(&column("inet", TypeKind::Other)).is_err());
        let err = m.check(&bigint()).unwrap_err();
        assert!(err.contains("bigint"), "{err}");
        assert!(build_err(build, "version = 7").contains("version"));
    }
}
