//! What makes a kept column look like personal data (its name, or values that look like
//! e-mail addresses or card numbers), and how a leaked value is shown: redacted.

/// Words in a column name that suggest personal data.
const PII_WORDS: &[&str] = &[
    "email",
    "phone",
    "mobile",
    "ssn",
    "national_id",
    "iban",
    "card",
    "birth",
    "dob",
    "address",
    "street",
    "postcode",
    "zip",
    "passport",
    "tax",
];

/// What may follow a short word in one token and still mean it (`zipcode`, `taxid`,
/// `cardnumber`), where any suffix would not (`cardinality`, `taxonomy`).
const SHORT_WORD_SUFFIXES: &[&str] = &["s", "code", "number", "num", "no", "nr", "id"];

/// The personal-data word a column name contains, if any: `billing_email` -> `email`,
/// `date_of_birth` -> `birth`, `zipCode` -> `zip`; `cardinality` or `taxonomy` -> none.
pub fn pii_name(column: &str) -> Option<&'static str> {
    let tokens = tokens(column);
    let joined = tokens.join("_");
    PII_WORDS.iter().copied().find(|word| {
        if word.contains('_') {
            return joined.contains(word);
        }
        tokens.iter().any(|token| {
            if token == word {
                return true;
            }
            if word.len() >= 5 {
                // `homephone`, `emails`, `workemail`: long words are specific enough.
                return token.contains(word);
            }
            token
                .strip_prefix(word)
                .is_some_and(|rest| SHORT_WORD_SUFFIXES.contains(&rest))
        })
    })
}

/// Lower-case words of an identifier, split at `_`, other punctuation and camelCase
/// (shared with `lethe scan`'s column-name classifier).
pub fn tokens(name: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Whether `text` contains something shaped like an e-mail address (`a.b@host.tld`).
pub fn contains_email(text: &[u8]) -> bool {
    memchr::memchr_iter(b'@', text).any(|at| {
        let local = text[..at]
            .iter()
            .rev()
            .take_while(|&&b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
            .count();
        if local == 0 {
            return false;
        }
        let domain: &[u8] = {
            let rest = &text[at + 1..];
            let end = rest
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
                .unwrap_or(rest.len());
            rest[..end].strip_suffix(b".").unwrap_or(&rest[..end])
        };
        let labels: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
        labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty())
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
    })
}

/// Whether `text` contains a 13 to 19 digit number that passes the Luhn check, as card
/// numbers do (digits may be grouped by single spaces or dashes).
pub fn contains_card_number(text: &[u8]) -> bool {
    let mut digits: Vec<u8> = Vec::with_capacity(19);
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b.is_ascii_digit() {
            digits.push(b - b'0');
            i += 1;
            continue;
        }
        let separator = (b == b' ' || b == b'-')
            && !digits.is_empty()
            && text.get(i + 1).is_some_and(u8::is_ascii_digit);
        if separator {
            i += 1;
            continue;
        }
        if luhn_card(&digits) {
            return true;
        }
        digits.clear();
        i += 1;
    }
    luhn_card(&digits)
}

/// Whether 13 to 19 digits (each 0-9) pass the Luhn check, as card numbers do; a run of
/// one repeated digit does not count (`0000...` passes Luhn but is no card).
pub fn luhn_card(digits: &[u8]) -> bool {
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    crate::mask::luhn_sum(digits).is_multiple_of(10)
}

/// A value as a report may show it: at most its first two characters, then its length
/// (`us***(18 chars)`). Shorter values show less: one character under 8, none under 4.
pub fn redact(value: &str) -> String {
    let length = value.chars().count();
    let shown = match length {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    };
    let head: String = value.chars().take(shown).collect();
    format!("{head}***({length} chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_names() {
        for (name, word) in [
            ("email", "email"),
            ("billing_email", "email"),
            ("workEmail", "email"),
            ("homephone", "phone"),
            ("date_of_birth", "birth"),
            ("dob", "dob"),
            ("zipCode", "zip"),
            ("zip_code", "zip"),
            ("national_id", "national_id"),
            ("card_last4", "card"),
            ("cardnumber", "card"),
            ("tax_id", "tax"),
            ("taxid", "tax"),
            ("IBAN", "iban"),
            ("shipping_address", "address"),
        ] {
            assert_eq!(pii_name(name), Some(word), "{name}");
        }
        for name in [
            "id",
            "cardinality",
            "taxonomy",
            "zipped",
            "created_at",
            "country",
        ] {
            assert_eq!(pii_name(name), None, "{name}");
        }
    }

    #[test]
    fn emails_in_text() {
        assert!(contains_email(b"user7@corp.example"));
        assert!(contains_email(b"call me: a.b+c@mail.co.uk."));
        assert!(contains_email(br#"{"contact": {"email": "x@y.io"}}"#));
        assert!(!contains_email(b"@handle"));
        assert!(!contains_email(b"user@localhost"));
        assert!(!contains_email(b"a@b.c1"));
        assert!(!contains_email(b"no at sign"));
    }

    #[test]
    fn card_numbers_in_text() {
        assert!(contains_card_number(b"4111111111111111"));
        assert!(contains_card_number(b"paid with 4111 1111 1111 1111 today"));
        assert!(contains_card_number(b"5500-0000-0000-0004"));
        assert!(!contains_card_number(b"4111111111111112"));
        assert!(!contains_card_number(b"0000000000000000"));
        assert!(!contains_card_number(b"DE18964802488171736043"));
        assert!(!contains_card_number(b"+48 575 5190220"));
        assert!(!contains_card_number(b"2018-01-01 00:21:08+00"));
    }

    #[test]
    fn redaction_shows_little() {
        assert_eq!(redact("user7@corp.example"), "us***(18 chars)");
        assert_eq!(redact("Berlin"), "B***(6 chars)");
        assert_eq!(redact("abc"), "***(3 chars)");
        assert_eq!(redact("Zoë Ünïcödé"), "Zo***(11 chars)");
    }
}
