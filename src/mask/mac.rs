//! `mac`: a keyed MAC address in the input's style, e.g. `3C:22:FB:12:34:56` ->
//! `7E:9A:03:C4:1D:88`.
//!
//! A MAC address identifies a device and so its owner. The stand-in keeps the
//! separators (`:`, `-`, `.` or none) where they were and the case of the hex letters,
//! so parsers and displays keep working. By default the vendor part (OUI, first three
//! octets) is masked too and the stand-in is marked locally administered and unicast,
//! so it can never name a real vendor's device; `keep_oui = true` keeps the vendor.
//! EUI-64 values (`macaddr8`, 16 hex digits) work the same way.
//!
//! With `keep_oui = true` the device part goes through a keyed permutation
//! ([`super::permute`]): distinct addresses stay distinct, fit for a unique column.
//! Without it the two flag bits are overwritten, so two addresses that differ only
//! there would meet: a unique column is refused then. Input that is no MAC address gets
//! a keyed, locally administered one written as 12 plain hex digits.

use std::sync::Arc;

use serde::Deserialize;

use super::permute::permute_bits;
use super::{Masker, MaskingKey, parse_options};
use crate::catalog::{Column, TypeKind};

/// Bit position (0 = most significant) of the locally-administered flag.
const LOCAL_BIT: u32 = 6;
/// Bit position of the multicast (group) flag, cleared so the stand-in is unicast.
const MULTICAST_BIT: u32 = 7;

/// The bits of the vendor part (OUI).
const OUI_BITS: u32 = 24;

/// The stand-in for input that is no MAC address: 12 hex digits.
const FALLBACK_LEN: usize = 12;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    keep_oui: bool,
}

/// Permutes the address bits that are not kept, keeping the layout.
#[derive(Debug)]
pub(super) struct Mac {
    domain: String,
    keep_oui: bool,
}

/// Builds `mac` from its rule: `keep_oui` (default false).
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { keep_oui } = parse_options(options)?;
    Ok(Arc::new(Mac { domain, keep_oui }))
}

impl Masker for Mac {
    fn check(&self, column: &Column) -> Result<(), String> {
        match column.kind {
            TypeKind::Other if matches!(column.type_name.as_str(), "macaddr" | "macaddr8") => {}
            TypeKind::Text => {
                if let Some(max) = column.max_chars.filter(|&m| m < FALLBACK_LEN) {
                    return Err(format!(
                        "the column holds at most {max} characters, but a MAC address \
                         stand-in has {FALLBACK_LEN}"
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "produces text or a macaddr, but the column is {}",
                    column.type_name
                ));
            }
        }
        if column.unique && !self.keep_oui {
            return Err(
                "the column is unique, but overwriting the vendor flags can give two \
                 addresses the same stand-in; set `keep_oui = true`"
                    .to_owned(),
            );
        }
        Ok(())
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut value = 0u128;
        let mut digits = 0u32;
        let mut upper = false;
        let mut is_mac = true;
        for b in input.bytes() {
            match char::from(b).to_digit(16) {
                Some(d) if digits < 16 => {
                    value = (value << 4) | u128::from(d);
                    digits += 1;
                    upper |= b.is_ascii_uppercase();
                }
                None if matches!(b, b':' | b'-' | b'.') => {}
                _ => is_mac = false,
            }
        }
        if !is_mac || !(digits == 12 || digits == 16) {
            self.invent(input, key, out);
            return;
        }
        let width = digits * 4;
        let keep_oui = self.keep_oui;
        let free = |i: u32| {
            if keep_oui {
                i >= OUI_BITS
            } else {
                i != LOCAL_BIT && i != MULTICAST_BIT
            }
        };
        let mut value = permute_bits(key, &self.domain, &[digits as u8], value, width, free);
        if !keep_oui {
            value |= 1 << (width - 1 - LOCAL_BIT);
            value &= !(1 << (width - 1 - MULTICAST_BIT));
        }
        let hex: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        out.reserve(input.len());
        let mut shift = width;
        for b in input.bytes() {
            if b.is_ascii_hexdigit() {
                shift -= 4;
                out.push(char::from(hex[((value >> shift) & 0xf) as usize]));
            } else {
                out.push(char::from(b));
            }
        }
    }
}

impl Mac {
    /// A keyed, locally administered unicast address as 12 lowercase hex digits.
    fn invent(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let seed = key.seed(&self.domain, input.as_bytes());
        let mut octets = [0u8; 6];
        octets.copy_from_slice(&seed[..6]);
        octets[0] = (octets[0] | 0x02) & !0x01;
        for o in octets {
            out.push(char::from(b"0123456789abcdef"[usize::from(o >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(o & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{bigint, build_err, run, text, unique_text, varchar};

    fn mac(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "mac", options)
    }

    fn first_octet(s: &str) -> u8 {
        u8::from_str_radix(&s[..2], 16).unwrap()
    }

    #[test]
    fn keeps_style_and_case() {
        let m = mac("");
        for input in [
            "3C:22:FB:12:34:56",
            "3c-22-fb-12-34-56",
            "3c22fb123456",
            "3c22.fb12.3456",
            "08:00:2b:01:02:03:04:05",
        ] {
            let out = run(&*m, b"k", input);
            assert_eq!(out.len(), input.len(), "{out}");
            let style = |s: &str| s.replace(|c: char| c.is_ascii_hexdigit(), "x");
            assert_eq!(style(&out), style(input), "{out}");
            let has_upper = |s: &str| s.bytes().any(|b| b.is_ascii_uppercase());
            let has_lower = |s: &str| s.bytes().any(|b| b.is_ascii_lowercase());
            assert!(!(has_upper(input) && has_lower(&out)), "{out}");
            assert!(!(has_lower(input) && has_upper(&out)), "{out}");
            assert_eq!(first_octet(&out) & 0x03, 0x02, "{out}");
            assert_ne!(out, input);
            assert_eq!(out, run(&*m, b"k", input));
            assert_ne!(out, run(&*m, b"k2", input));
        }
    }

    #[test]
    fn keep_oui_keeps_the_vendor_and_stays_unique() {
        let m = mac("keep_oui = true");
        let key = MaskingKey::new(b"u");
        let mut seen = HashSet::new();
        let mut out = String::new();
        for i in 0..10_000u32 {
            out.clear();
            let input = format!(
                "3c:22:fb:{:02x}:{:02x}:{:02x}",
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff
            );
            m.mask(&input, &key, &mut out);
            assert!(out.starts_with("3c:22:fb:"), "{out}");
            assert!(seen.insert(out.clone()));
        }
    }

    #[test]
    fn garbage_gets_a_local_address() {
        let m = mac("");
        for input in [
            "",
            "n/a",
            "3c:22:fb:12:34",
            "Zoë Ünïcödé",
            "3c:22:fb:12:34:5g",
        ] {
            let out = run(&*m, b"k", input);
            assert_eq!(out.len(), FALLBACK_LEN, "{out}");
            assert!(
                out.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(first_octet(&out) & 0x03, 0x02, "{out}");
        }
    }

    #[test]
    fn checks_and_options() {
        let m = mac("");
        let macaddr = Column {
            type_name: "macaddr".into(),
            kind: TypeKind::Other,
            ..text()
        };
        assert!(m.check(&macaddr).is_ok());
        assert!(m.check(&text()).is_ok());
        assert!(m.check(&varchar(12)).is_ok());
        assert!(m.check(&varchar(11)).is_err());
        assert!(m.check(&bigint()).unwrap_err().contains("bigint"));
        assert!(m.check(&unique_text()).unwrap_err().contains("keep_oui"));
        let unique_mac = Column {
            unique: true,
            ..macaddr
        };
        assert!(mac("keep_oui = true").check(&unique_mac).is_ok());
        assert!(build_err(build, "keep_vendor = true").contains("keep_vendor"));
    }
}
