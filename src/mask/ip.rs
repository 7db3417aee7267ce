//! `ip`: a keyed IP address of the input's family, e.g. `10.1.2.3` -> `181.47.9.220`,
//! `2001:db8::1/64` -> `8c3e:51f2:9a07:1b44::/64` (for a cidr value).
//!
//! IP addresses in logs and sessions identify people; dev code still parses them and
//! often groups by network. So the stand-in keeps the family, a `/nn` suffix, and
//! optionally the first `keep_prefix` bits of the network (at most 24 of an IPv4 and 120
//! of an IPv6 address, so a v6-sized prefix never copies a v4 address through).
//!
//! Unique-safe on inet/cidr columns: the network bits after the kept prefix and the host
//! bits after the `/nn` go through two keyed permutations ([`super::permute`]), the host
//! one with all-zero fixed (a cidr value must have no host bits set, and keeps none), so
//! distinct addresses stay distinct. Text that does not parse becomes a keyed IPv4 from
//! the documentation ranges (RFC 5737); text columns may also spell one address two ways
//! (`::1`, `0::1`), so a unique text column is refused.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde::Deserialize;

use super::permute::permute_bits;
use super::{Masker, MaskingKey, parse_options, refuse_unique};
use crate::catalog::{Column, TypeKind};

/// The most IPv4 bits kept, so at least one octet is always masked.
const MAX_KEEP_V4: u32 = 24;
/// The most IPv6 bits kept.
const MAX_KEEP_V6: u32 = 120;

/// The longest IPv4 stand-in, with a suffix (`255.255.255.255/32`): what a text
/// column must hold.
const MAX_V4_LEN: usize = 18;

/// The documentation networks (RFC 5737), for input that is no address: never routed,
/// so a stand-in can never point at a real host.
const DOC_NETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    keep_prefix: u32,
}

/// Permutes the bits after the kept prefix, network and host part apart.
#[derive(Debug)]
pub(super) struct Ip {
    domain: String,
    keep_prefix: u32,
}

/// Builds `ip` from its rule: `keep_prefix`, the leading bits kept (default 0, at most
/// 120; an IPv4 address keeps at most 24).
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { keep_prefix } = parse_options(options)?;
    if keep_prefix > MAX_KEEP_V6 {
        return Err(format!(
            "`keep_prefix` must be at most {MAX_KEEP_V6} bits, not {keep_prefix}"
        ));
    }
    Ok(Arc::new(Ip {
        domain,
        keep_prefix,
    }))
}

impl Masker for Ip {
    fn check(&self, column: &Column) -> Result<(), String> {
        match column.kind {
            TypeKind::Other if matches!(column.type_name.as_str(), "inet" | "cidr") => Ok(()),
            TypeKind::Text => {
                refuse_unique(column)?;
                match column.max_chars {
                    Some(max) if max < MAX_V4_LEN => Err(format!(
                        "the column holds at most {max} characters, but an IPv4 stand-in \
                         can have {MAX_V4_LEN}"
                    )),
                    _ => Ok(()),
                }
            }
            _ => Err(format!(
                "produces text or an inet, but the column is {}",
                column.type_name
            )),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let Some((address, suffix)) = parse(input) else {
            self.documentation_address(input, key, out);
            return;
        };
        let (value, width, cap, family) = match address {
            IpAddr::V4(a) => (u128::from(a.to_bits()), 32, MAX_KEEP_V4, 4u8),
            IpAddr::V6(a) => (a.to_bits(), 128, MAX_KEEP_V6, 6u8),
        };
        let kept = self.keep_prefix.min(cap);
        let network_end = suffix.unwrap_or(width).max(kept);
        // The network bits: any value goes.
        let value = permute_bits(key, &self.domain, &[family, b'n'], value, width, |i| {
            (kept..network_end).contains(&i)
        });
        // The host bits: zero stays zero (a cidr value has none set), everything else
        // is permuted among the non-zero values (a zero result takes the image of zero).
        let host = |i: u32| i >= network_end;
        let host_mask = (0..width)
            .filter(|&i| host(i))
            .fold(0u128, |m, i| m | (1 << (width - 1 - i)));
        let value = if value & host_mask == 0 {
            value
        } else {
            let tweak = [family, b'h'];
            let permuted = permute_bits(key, &self.domain, &tweak, value, width, host);
            if permuted & host_mask == 0 {
                permute_bits(key, &self.domain, &tweak, value & !host_mask, width, host)
            } else {
                permuted
            }
        };
        // Writing to a String cannot fail.
        let _ = match family {
            4 => write!(out, "{}", Ipv4Addr::from_bits(value as u32)),
            _ => write!(out, "{}", Ipv6Addr::from_bits(value)),
        };
        if let Some(bits) = suffix {
            let _ = write!(out, "/{bits}");
        }
    }
}

impl Ip {
    /// A keyed address from the documentation networks, for input that is none.
    fn documentation_address(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let seed = key.seed(&self.domain, input.as_bytes());
        let [a, b, c] = DOC_NETS[usize::from(seed[0]) % DOC_NETS.len()];
        let _ = write!(out, "{}", Ipv4Addr::new(a, b, c, seed[1]));
    }
}

/// The address and the `/nn` suffix of `input`, if it is an address with a suffix no
/// longer than its width.
fn parse(input: &str) -> Option<(IpAddr, Option<u32>)> {
    let (address, suffix) = match input.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (input, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let width = if address.is_ipv4() { 32 } else { 128 };
    let suffix = match suffix {
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.parse::<u32>().ok().filter(|&b| b <= width)?)
        }
        Some(_) => return None,
        None => None,
    };
    Some((address, suffix))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{assert_text_checks, bigint, build_err, run, text, varchar};

    fn ip(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "ip", options)
    }

    #[test]
    fn follows_the_family_and_is_keyed() {
        let m = ip("");
        let v4 = run(&*m, b"k", "10.1.2.3");
        assert!(v4.parse::<Ipv4Addr>().is_ok(), "{v4}");
        assert_ne!(v4, "10.1.2.3");
        assert_eq!(v4, run(&*m, b"k", "10.1.2.3"));
        assert_ne!(v4, run(&*m, b"k2", "10.1.2.3"));
        let v6 = run(&*m, b"k", "2001:db8::1");
        assert!(v6.parse::<Ipv6Addr>().is_ok(), "{v6}");
        assert_ne!(v6, "2001:db8::1");
    }

    #[test]
    fn keeps_the_prefix_and_suffix() {
        let m = ip("keep_prefix = 24");
        let out = run(&*m, b"k", "192.168.7.42");
        assert!(out.starts_with("192.168.7."), "{out}");
        let out = run(&*m, b"k", "192.168.7.42/24");
        assert!(
            out.starts_with("192.168.7.") && out.ends_with("/24"),
            "{out}"
        );
        let wide = ip("keep_prefix = 48");
        let out = run(&*wide, b"k", "2001:db8:abcd:12::1");
        assert!(out.starts_with("2001:db8:abcd:"), "{out}");
        // A v6-sized prefix still masks the last octet of an IPv4 address.
        let out = run(&*wide, b"k", "10.1.2.3");
        assert!(out.starts_with("10.1.2.") && out != "10.1.2.3", "{out}");
    }

    #[test]
    fn cidr_values_keep_zero_host_bits() {
        let m = ip("");
        for input in ["10.0.0.0/8", "192.168.4.0/22", "2001:db8::/32", "0.0.0.0/0"] {
            let out = run(&*m, b"k", input);
            let (a, s) = out.split_once('/').unwrap();
            assert_eq!(s, input.split_once('/').unwrap().1);
            let bits: u32 = s.parse().unwrap();
            let value = match a.parse::<IpAddr>().unwrap() {
                IpAddr::V4(a) => u128::from(a.to_bits()) << 96,
                IpAddr::V6(a) => a.to_bits(),
            };
            assert_eq!(value.checked_shl(bits).unwrap_or(0), 0, "{input} -> {out}");
        }
    }

    #[test]
    fn distinct_addresses_stay_distinct() {
        let m = ip("keep_prefix = 20");
        let key = MaskingKey::new(b"u");
        let mut seen = HashSet::new();
        let mut out = String::new();
        for i in 0..4096u32 {
            for suffix in ["", "/20"] {
                out.clear();
                m.mask(
                    &format!("{}{suffix}", Ipv4Addr::from_bits(0x0a0b_1000 | i)),
                    &key,
                    &mut out,
                );
                let address: Ipv4Addr = out.split('/').next().unwrap().parse().unwrap();
                assert_eq!(address.to_bits() >> 12, 0x0a0b1, "{out}");
                assert!(seen.insert(out.clone()), "collision at {i}{suffix}");
            }
        }
    }

    #[test]
    fn garbage_becomes_a_documentation_address() {
        let m = ip("");
        for input in [
            "",
            "localhost",
            "10.1.2.3/33",
            "10.1.2.3/",
            "Zoë",
            "fe80::1%eth0",
        ] {
            let out = run(&*m, b"k", input);
            let a: Ipv4Addr = out.parse().unwrap();
            assert!(
                DOC_NETS.contains(&[a.octets()[0], a.octets()[1], a.octets()[2]]),
                "{out}"
            );
        }
    }

    #[test]
    fn checks_and_options() {
        let m = ip("");
        assert_text_checks(&*m, false);
        let other = |name: &str| Column {
            type_name: name.into(),
            kind: TypeKind::Other,
            unique: true,
            ..text()
        };
        assert!(m.check(&other("inet")).is_ok());
        assert!(m.check(&other("cidr")).is_ok());
        assert!(m.check(&other("uuid")).is_err());
        assert!(m.check(&bigint()).is_err());
        assert!(m.check(&varchar(15)).is_err());
        assert!(m.check(&varchar(45)).is_ok());
        assert!(build_err(build, "keep_prefix = 121").contains("keep_prefix"));
        assert!(build_err(build, "prefix = 8").contains("prefix"));
    }
}
