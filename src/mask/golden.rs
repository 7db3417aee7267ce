//! Golden pseudonyms: a fixed key and inputs with the exact outputs they must give.
//!
//! A change to `fake`'s word lists, the RNG or the seed derivation would silently give
//! every masked person a new identity between runs (and break joins with data masked
//! earlier). These literals make such a change fail loudly instead. If one fails after a
//! dependency update, do not re-pin it casually: every masked copy would change.

use std::fmt::Write;

use rand::Rng;

use super::{MaskerSpec, MaskingKey, build};

const KEY: &[u8] = b"golden-key";

/// (masker kind, input, expected output) under [`KEY`] and the default domain.
const GOLDEN: &[(&str, &str, &str)] = &[
    (
        "hash",
        "alice@example.org",
        "448219202e88a90fb54ffd87f90d3171",
    ),
    ("hash", "42", "d617cf7217289bedf129fa7d383879d2"),
    ("first_name", "Alice", "Corine"),
    ("first_name", "Bob", "Nicola"),
    ("last_name", "Smith", "Considine"),
    ("full_name", "Alice Smith", "Kacie Kshlerin"),
    (
        "email",
        "alice@example.org",
        "rashawn.waters.pncshvfmne92c@example.com",
    ),
    (
        "email",
        "bob@example.net",
        "colton.grimes.fsq9y28xbx48n@example.com",
    ),
    ("phone", "+49 30 12345678", "+49 17 23517277"),
    ("phone", "+1 (555) 010-9999", "+1 (306) 286-0052"),
    ("phone", "030 1234567", "002 6784989"),
    ("street", "1 Main Street", "1559 Daniel Pines"),
    ("city", "Berlin", "Torpborough"),
    ("postcode", "SW1A 1AA", "PR6F 1EC"),
    ("postcode", "10115", "94806"),
    ("noise", "52000", "56704"),
    ("noise", "-17.25", "-17.51"),
    ("redact", "secret", "[redacted]"),
    (
        "lorem",
        "Customer called about a late delivery.",
        "Magnam eaque harum repellat adipisci omnis a",
    ),
    ("username", "jsmith", "alex.feil"),
    ("date_of_birth", "1980-05-17", "1977-06-28"),
    ("date_of_birth", "not a date", "1998-02-18"),
    ("national_id", "123-45-6789", "919-08-4173"),
    ("national_id", "123456789", "919084173"),
    ("company", "Acme Corp", "Rath Inc"),
    ("job_title", "CEO", "Regional Banking Representative"),
    ("state", "California", "Kansas"),
    ("country", "Germany", "Christmas Island"),
    ("latitude", "52.520008", "52.480302"),
    ("longitude", "13.404954", "13.384815"),
    (
        "iban",
        "DE89 3704 0044 0532 0130 00",
        "DE42 0051 6291 6240 0349 38",
    ),
    ("iban", "GB29NWBK60161331926819", "GB11XHKO95939561043234"),
    ("credit_card", "4111 1111 1111 1111", "4708 6727 3491 4099"),
    ("credit_card", "378282246310005", "379731362309349"),
    (
        "uuid",
        "123e4567-e89b-12d3-a456-426614174000",
        "c1ea6331-beab-4a12-9cbf-5ab47a49bb8f",
    ),
    ("ip", "192.168.7.42", "148.243.29.66"),
    (
        "ip",
        "2001:db8::1/64",
        "e0d7:4689:6719:b5b0:2975:e214:35e6:a23a/64",
    ),
    ("mac", "3C:22:FB:12:34:56", "3E:76:7C:4B:56:99"),
    (
        "scrub",
        "Mail alice@example.org or call +49 30 12345678",
        // The same fakes as the `email` and `phone` lines above.
        "Mail rashawn.waters.pncshvfmne92c@example.com or call +49 17 23517277",
    ),
];

/// (masker kind, options as TOML, input, expected output) for outputs that only an
/// option gives.
const GOLDEN_WITH_OPTIONS: &[(&str, &str, &str, &str)] = &[
    (
        "array",
        "element = \"first_name\"",
        "{Alice,NULL,\"Bob B\"}",
        "{Corine,NULL,John}",
    ),
    (
        "generalize",
        "to = \"month\"",
        "2019-03-14 12:34:56+01",
        "2019-03-01 00:00:00+01",
    ),
    ("generalize", "to = \"bucket\"\nsize = 10", "37.5", "30.0"),
    (
        "json",
        "paths = { \"$.email\" = \"email\", \"$.tags[*]\" = \"hash\" }",
        r#"{"email": "alice@example.org", "tags": ["a"], "n": 1.50}"#,
        r#"{"email":"rashawn.waters.pncshvfmne92c@example.com","tags":["f86d3ab2b1cadfefb1f3500a1346e988"],"n":1.50}"#,
    ),
    (
        "regex",
        "pattern = '\\d'\nreplace = \"#\"",
        "INV-2024",
        "INV-####",
    ),
    (
        "username",
        "unique = true",
        "jsmith",
        "alex.feil_d3xh3przrjnjd",
    ),
    (
        "email",
        "keep_domain_shape = true",
        "alice@mail.corp.de",
        "helga.romaguera.k37wjp54q1cp9@rmdd.vzep.de",
    ),
    (
        "national_id",
        "format = \"digits\"",
        "AB 123456 C",
        "AB 387539 C",
    ),
    ("state", "abbreviated = true", "CA", "MD"),
    ("country", "code = true", "DE", "SM"),
];

fn mask(kind: &str, input: &str) -> String {
    mask_with(kind, "", input)
}

fn mask_with(kind: &str, options: &str, input: &str) -> String {
    let spec = MaskerSpec {
        kind: kind.to_owned(),
        domain: None,
        options: toml::from_str(options).unwrap(),
    };
    let masker = build(&spec).unwrap();
    let mut out = String::new();
    masker.mask(input, &MaskingKey::new(KEY), &mut out);
    out
}

#[test]
fn pseudonyms_are_pinned() {
    for (kind, input, expected) in GOLDEN {
        assert_eq!(mask(kind, input), *expected, "{kind} of {input:?}");
    }
    for (kind, options, input, expected) in GOLDEN_WITH_OPTIONS {
        assert_eq!(
            mask_with(kind, options, input),
            *expected,
            "{kind} ({options}) of {input:?}"
        );
    }
}

#[test]
fn seed_and_rng_are_pinned() {
    let key = MaskingKey::new(KEY);
    // Also `printf 'email\0alice@example.org' | openssl dgst -sha256 -hmac golden-key`.
    let seed: String =
        key.seed("email", b"alice@example.org")
            .iter()
            .fold(String::new(), |mut hex, b| {
                write!(hex, "{b:02x}").unwrap();
                hex
            });
    assert_eq!(
        seed,
        "b55998edf4ab9226383cbf4be011d00a7d6fae5fc504087b527f15694ea0d2f9"
    );
    let first = key.rng("email", b"alice@example.org").next_u64();
    assert_eq!(first, 17_179_458_648_754_315_968);
}

#[test]
fn the_domain_defaults_to_the_kind_so_tables_agree() {
    // `customers.email` and `tickets.reporter_email` both default to domain `email`.
    let spec = MaskerSpec {
        kind: "email".to_owned(),
        domain: Some("email".to_owned()),
        options: toml::Table::new(),
    };
    let mut out = String::new();
    build(&spec)
        .unwrap()
        .mask("alice@example.org", &MaskingKey::new(KEY), &mut out);
    assert_eq!(out, mask("email", "alice@example.org"));
}

#[test]
fn every_masker_is_in_the_catalogue_in_order() {
    let kinds: Vec<&str> = super::kinds().collect();
    let mut sorted = kinds.clone();
    sorted.sort_unstable();
    assert_eq!(kinds, sorted);
    assert_eq!(
        kinds,
        [
            "array",
            "city",
            "company",
            "country",
            "credit_card",
            "date_of_birth",
            "date_shift",
            "email",
            "first_name",
            "full_name",
            "generalize",
            "hash",
            "iban",
            "ip",
            "job_title",
            "json",
            "last_name",
            "latitude",
            "longitude",
            "lorem",
            "mac",
            "national_id",
            "noise",
            "partial",
            "phone",
            "postcode",
            "redact",
            "regex",
            "scrub",
            "state",
            "street",
            "username",
            "uuid",
        ]
    );
}
