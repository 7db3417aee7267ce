//! What a column's name says: `billing_email`, `date_of_birth`, `zipCode` or `last_name`
//! name the personal data they hold far more often than not. The name is one piece of
//! evidence; the sampled values ([`super::values`]) are the other.

use crate::catalog::{Column, TypeKind};
use crate::verify::detect::tokens;

/// A kind of personal data, each with the masker that fits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pii {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number.
    Card,
    /// A bank account number (IBAN).
    Iban,
    /// A national, tax, social security or passport number.
    NationalId,
    /// A date of birth.
    DateOfBirth,
    /// A given name.
    FirstName,
    /// A family name.
    LastName,
    /// A person's whole name.
    FullName,
    /// A login name or handle.
    Username,
    /// A street address.
    Street,
    /// A city or town.
    City,
    /// A postal code.
    Postcode,
    /// An IP address.
    Ip,
    /// A network hardware address.
    Mac,
    /// Coordinates that locate a person.
    Geo,
}

impl Pii {
    /// The masker a rule for this kind of data names (`null` where lethe has none that
    /// fits: coordinates).
    pub fn masker(self) -> &'static str {
        match self {
            Pii::Email => "email",
            Pii::Phone => "phone",
            Pii::Card => "credit_card",
            Pii::Iban => "iban",
            Pii::NationalId => "national_id",
            Pii::DateOfBirth => "date_of_birth",
            Pii::FirstName => "first_name",
            Pii::LastName => "last_name",
            Pii::FullName => "full_name",
            Pii::Username | Pii::Mac => "hash",
            Pii::Street => "street",
            Pii::City => "city",
            Pii::Postcode => "postcode",
            Pii::Ip => "ip",
            Pii::Geo => "null",
        }
    }

    /// The words a report uses for values of this kind.
    pub fn plural(self) -> &'static str {
        match self {
            Pii::Email => "e-mail addresses",
            Pii::Phone => "phone numbers",
            Pii::Card => "card numbers (Luhn-valid)",
            Pii::Iban => "IBANs (mod-97 valid)",
            Pii::NationalId => "US social security numbers",
            Pii::DateOfBirth => "dates",
            Pii::FirstName => "first names",
            Pii::LastName => "last names",
            Pii::FullName => "names",
            Pii::Username => "user names",
            Pii::Street => "street addresses",
            Pii::City => "cities",
            Pii::Postcode => "postcodes",
            Pii::Ip => "IP addresses",
            Pii::Mac => "MAC addresses",
            Pii::Geo => "coordinates",
        }
    }

    /// Whether a column of this type can hold this kind of data: a `login_count integer`
    /// holds no user name, a `birth_place text` no date of birth worth a date masker.
    pub fn fits(self, kind: TypeKind, type_name: &str) -> bool {
        match self {
            Pii::Phone | Pii::Card | Pii::NationalId | Pii::Postcode => {
                matches!(kind, TypeKind::Text | TypeKind::Numeric)
            }
            Pii::DateOfBirth => matches!(kind, TypeKind::Text | TypeKind::DateTime),
            Pii::Ip => kind == TypeKind::Text || type_name == "inet" || type_name == "cidr",
            Pii::Mac => kind == TypeKind::Text || type_name.starts_with("macaddr"),
            Pii::Geo => matches!(kind, TypeKind::Numeric | TypeKind::Other),
            _ => kind == TypeKind::Text,
        }
    }
}

/// What a column's name matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameMatch {
    /// The kind of data the name suggests.
    pub pii: Pii,
    /// The word that matched, as the report shows it.
    pub word: &'static str,
    /// A word that names things as often as people (`name`): weak evidence alone.
    pub vague: bool,
}

/// Name patterns, most specific first (`email_address` is an e-mail, not a street).
/// Words with `_` match consecutive tokens or the tokens run together (`firstname`).
const PATTERNS: &[(&str, Pii)] = &[
    ("email", Pii::Email),
    ("e_mail", Pii::Email),
    ("ip_address", Pii::Ip),
    ("remote_addr", Pii::Ip),
    ("ip", Pii::Ip),
    ("full_name", Pii::FullName),
    ("display_name", Pii::FullName),
    ("contact_name", Pii::FullName),
    ("customer_name", Pii::FullName),
    ("person_name", Pii::FullName),
    ("first_name", Pii::FirstName),
    ("given_name", Pii::FirstName),
    ("forename", Pii::FirstName),
    ("fname", Pii::FirstName),
    ("last_name", Pii::LastName),
    ("family_name", Pii::LastName),
    ("surname", Pii::LastName),
    ("lname", Pii::LastName),
    ("user_name", Pii::Username),
    ("login", Pii::Username),
    ("nickname", Pii::Username),
    ("phone", Pii::Phone),
    ("mobile", Pii::Phone),
    ("telephone", Pii::Phone),
    ("tel", Pii::Phone),
    ("fax", Pii::Phone),
    ("msisdn", Pii::Phone),
    ("ssn", Pii::NationalId),
    ("national_id", Pii::NationalId),
    ("social_security", Pii::NationalId),
    ("passport", Pii::NationalId),
    ("tax_id", Pii::NationalId),
    ("tax_number", Pii::NationalId),
    ("tax_no", Pii::NationalId),
    ("vat_id", Pii::NationalId),
    ("driver_license", Pii::NationalId),
    ("date_of_birth", Pii::DateOfBirth),
    ("birth", Pii::DateOfBirth),
    ("dob", Pii::DateOfBirth),
    ("iban", Pii::Iban),
    ("bank_account", Pii::Iban),
    ("credit_card", Pii::Card),
    ("cc_number", Pii::Card),
    ("card", Pii::Card),
    ("mac_address", Pii::Mac),
    ("mac", Pii::Mac),
    ("street", Pii::Street),
    ("address", Pii::Street),
    ("addr", Pii::Street),
    ("city", Pii::City),
    ("town", Pii::City),
    ("postcode", Pii::Postcode),
    ("postal_code", Pii::Postcode),
    ("zip", Pii::Postcode),
    ("latitude", Pii::Geo),
    ("longitude", Pii::Geo),
    ("lat", Pii::Geo),
    ("lon", Pii::Geo),
    ("lng", Pii::Geo),
];

/// Abbreviations that count only as a whole token (`realname` is no `lname`).
const WHOLE_TOKEN_ONLY: &[&str] = &["fname", "lname"];

/// What may follow a short word in one token and still mean it (`zipcode`, `ips`,
/// `cardnumber`), where any suffix would not (`cardinality`, `tally`).
const SHORT_WORD_SUFFIXES: &[&str] = &[
    "s", "code", "number", "num", "no", "nr", "id", "address", "addr",
];

/// The personal data a column's name suggests, if any.
pub fn classify(column: &str) -> Option<NameMatch> {
    let tokens = tokens(column);
    let found = PATTERNS
        .iter()
        .find(|(pattern, _)| matches(&tokens, pattern))
        .map(|&(word, pii)| NameMatch {
            pii,
            word,
            vague: false,
        });
    found.or_else(|| {
        tokens.iter().any(|t| t == "name").then_some(NameMatch {
            pii: Pii::FullName,
            word: "name",
            vague: true,
        })
    })
}

/// The personal data a column's name suggests, if its type can hold it: a name is
/// evidence only where the data it names could be there (`login_count integer` holds no
/// user name).
pub fn classify_column(column: &Column) -> Option<NameMatch> {
    classify(&column.name).filter(|m| m.pii.fits(column.kind, &column.type_name))
}

/// Whether the tokens of a name contain `pattern`.
fn matches(tokens: &[String], pattern: &str) -> bool {
    if pattern.contains('_') {
        let parts: Vec<&str> = pattern.split('_').collect();
        let run_together = pattern.replace('_', "");
        return tokens
            .windows(parts.len())
            .any(|w| w.iter().zip(&parts).all(|(t, p)| t == p))
            || tokens
                .iter()
                .any(|t| t.starts_with(&run_together) || t.ends_with(&run_together));
    }
    tokens.iter().any(|token| {
        if token == pattern {
            return true;
        }
        if pattern.len() >= 5
            && !WHOLE_TOKEN_ONLY.contains(&pattern)
            && (token.starts_with(pattern) || token.ends_with(pattern))
        {
            // `homephone`, `emails`, `birthday`: long words are specific enough.
            return true;
        }
        token
            .strip_prefix(pattern)
            .is_some_and(|rest| SHORT_WORD_SUFFIXES.contains(&rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pii(name: &str) -> Option<Pii> {
        classify(name).map(|m| m.pii)
    }

    #[test]
    fn personal_data_names() {
        for (name, expected) in [
            ("email", Pii::Email),
            ("billing_email", Pii::Email),
            ("email_address", Pii::Email),
            ("workEmail", Pii::Email),
            ("homephone", Pii::Phone),
            ("mobile_number", Pii::Phone),
            ("tel", Pii::Phone),
            ("ssn", Pii::NationalId),
            ("national_id", Pii::NationalId),
            ("passport_no", Pii::NationalId),
            ("taxid", Pii::NationalId),
            ("tax_id", Pii::NationalId),
            ("dob", Pii::DateOfBirth),
            ("date_of_birth", Pii::DateOfBirth),
            ("birthday", Pii::DateOfBirth),
            ("firstName", Pii::FirstName),
            ("firstname", Pii::FirstName),
            ("given_name", Pii::FirstName),
            ("last_name", Pii::LastName),
            ("surname", Pii::LastName),
            ("full_name", Pii::FullName),
            ("fullname", Pii::FullName),
            ("lname", Pii::LastName),
            ("username", Pii::Username),
            ("user_name", Pii::Username),
            ("shipping_address", Pii::Street),
            ("street", Pii::Street),
            ("city", Pii::City),
            ("zipCode", Pii::Postcode),
            ("postal_code", Pii::Postcode),
            ("IBAN", Pii::Iban),
            ("card_number", Pii::Card),
            ("cardnumber", Pii::Card),
            ("ip", Pii::Ip),
            ("last_login_ip", Pii::Ip),
            ("ip_address", Pii::Ip),
            ("mac_address", Pii::Mac),
            ("lat", Pii::Geo),
            ("longitude", Pii::Geo),
        ] {
            assert_eq!(pii(name), Some(expected), "{name}");
        }
    }

    #[test]
    fn ordinary_names() {
        for name in [
            "id",
            "user_id",
            "cardinality",
            "tax_rate",
            "zipped",
            "created_at",
            "country",
            "amount",
            "status",
            "template",
            "shipped",
            "total",
            "platform",
            "modelname",
        ] {
            assert_eq!(pii(name), None, "{name}");
        }
    }

    #[test]
    fn a_bare_name_is_vague() {
        let m = classify("name").unwrap_or_else(|| panic!("no match"));
        assert!(m.vague);
        assert_eq!(m.pii, Pii::FullName);
        assert!(classify("full_name").is_some_and(|m| !m.vague));
    }

    #[test]
    fn types_that_cannot_hold_the_data() {
        assert!(!Pii::Username.fits(TypeKind::Numeric, "integer"));
        assert!(Pii::Phone.fits(TypeKind::Numeric, "bigint"));
        assert!(Pii::DateOfBirth.fits(TypeKind::DateTime, "date"));
        assert!(!Pii::DateOfBirth.fits(TypeKind::Boolean, "boolean"));
        assert!(Pii::Ip.fits(TypeKind::Other, "inet"));
        assert!(!Pii::Ip.fits(TypeKind::Other, "uuid"));
        assert!(!Pii::Email.fits(TypeKind::Json, "jsonb"));
    }
}
