//! Weighing the evidence: a column's name ([`super::names`]) and its sampled values
//! ([`super::values`]) become one [`Suggestion`]: a masker, a confidence and the reason.
//!
//! Fail closed: `keep` is suggested only for types that hold no personal data (ids,
//! booleans, plain numbers, event timestamps); text without evidence gets `null` and a
//! "review". The reason never holds a sampled value, only counts.

use std::fmt;

use super::names::{NameMatch, Pii};
use super::values::ValueStats;
use crate::catalog::{Column, TypeKind};
use crate::verify::detect::tokens;

/// How sure a suggestion is, so that a reviewer knows which proposals to look at first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// A guess: review it.
    Low,
    /// One good piece of evidence.
    Medium,
    /// The name and the values agree, or the values leave no doubt.
    High,
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        })
    }
}

/// What a column should get, and why: the evidence is shown so that a person can judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// A masker's name, or `keep`, `null`, `scrub` (free text with personal data in it) or
    /// `json` (a JSON document with personal data in it).
    pub masker: &'static str,
    /// How sure.
    pub confidence: Confidence,
    /// The evidence, e.g. "name matches `email`; 97% of 1000 sampled values are e-mail
    /// addresses". Never a value.
    pub why: String,
}

/// `count` of `total` as a whole percentage; a share that rounds to 0 shows as `<1`.
fn percent(count: u64, total: u64) -> String {
    match (count * 100).checked_div(total) {
        Some(0) if count > 0 => "<1".to_string(),
        Some(p) => p.to_string(),
        None => "0".to_string(),
    }
}

/// How many of `n` sampled values are wholly of `pii`'s kind, as the evidence says it.
fn share_of(count: u64, n: u64, pii: Pii) -> String {
    format!(
        "{}% of {n} sampled values are {}",
        percent(count, n),
        pii.plural()
    )
}

/// Weighs a column's name and sampled values into a suggestion, so that a person starts
/// from evidence rather than from a blank rules file.
pub fn suggest(column: &Column, hint: Option<NameMatch>, stats: &ValueStats) -> Suggestion {
    let n = stats.values;
    let dates = hint.is_some_and(|m| m.pii == Pii::DateOfBirth);
    // The values say what the column is.
    if let Some((pii, count)) = stats.best_whole(dates)
        && count * 2 >= n
        && count > 0
    {
        let agrees = hint.is_some_and(|m| m.pii == pii);
        let share = count as f64 / n as f64;
        let confidence = if agrees || (share >= 0.8 && n >= 10) {
            Confidence::High
        } else {
            Confidence::Medium
        };
        let mut why = Vec::new();
        if let Some(m) = hint.filter(|_| agrees) {
            why.push(format!("name matches `{}`", m.word));
        }
        why.push(share_of(count, n, pii));
        return Suggestion {
            masker: pii.masker(),
            confidence,
            why: why.join("; "),
        };
    }
    // The name says what the column is.
    if let Some(m) = hint {
        // A number cannot look like a formatted phone or card, so only text can disagree.
        let detectable = matches!(
            m.pii,
            Pii::Email | Pii::Phone | Pii::Card | Pii::Iban | Pii::Ip | Pii::Mac | Pii::DateOfBirth
        );
        let count = stats.whole(m.pii);
        let (confidence, evidence) = if m.vague {
            (
                Confidence::Low,
                "a name may be a person's or a thing's: review".to_string(),
            )
        } else if count > 0 {
            (Confidence::Medium, share_of(count, n, m.pii))
        } else if detectable && n >= 10 && column.kind != TypeKind::Numeric {
            (
                Confidence::Low,
                format!(
                    "but none of {n} sampled values look like {}",
                    m.pii.plural()
                ),
            )
        } else if n == 0 {
            (Confidence::Medium, "no values to sample".to_string())
        } else {
            (Confidence::Medium, String::new())
        };
        let mut why = format!("name matches `{}`", m.word);
        if !evidence.is_empty() {
            why.push_str("; ");
            why.push_str(&evidence);
        }
        return Suggestion {
            masker: m.pii.masker(),
            confidence,
            why,
        };
    }
    // Personal data inside free text or documents.
    if stats.with_embedded > 0 || !stats.json_keys.is_empty() {
        let masker = match column.kind {
            TypeKind::Json => "json",
            TypeKind::Text => "scrub",
            _ => "null",
        };
        let mut why = Vec::new();
        let mut confidence = Confidence::Medium;
        if stats.with_embedded > 0 {
            let kinds: Vec<String> = stats
                .embedded_kinds()
                .iter()
                .map(|(pii, count)| format!("{}% {}", percent(*count, n), pii.plural()))
                .collect();
            why.push(format!(
                "{}% of {n} sampled values contain personal data ({})",
                percent(stats.with_embedded, n),
                kinds.join(", ")
            ));
            if stats.with_embedded * 10 >= n {
                confidence = Confidence::High;
            }
        }
        if !stats.json_keys.is_empty() {
            let keys: Vec<String> = stats.json_keys.iter().map(|k| format!("`{k}`")).collect();
            why.push(format!(
                "JSON keys named like personal data: {}",
                keys.join(", ")
            ));
        }
        return Suggestion {
            masker,
            confidence,
            why: why.join("; "),
        };
    }
    no_evidence(column, n)
}

/// A column neither its name nor its values point at: `keep` only where the type holds
/// no personal data, else `null` for a person to review.
fn no_evidence(column: &Column, sampled: u64) -> Suggestion {
    let words = tokens(&column.name);
    let id = words.last().is_some_and(|w| w == "id");
    let keep = |confidence, why: String| Suggestion {
        masker: "keep",
        confidence,
        why,
    };
    match column.kind {
        TypeKind::Boolean => keep(Confidence::High, "a boolean".into()),
        TypeKind::Numeric if id => keep(Confidence::High, "a numeric id".into()),
        TypeKind::Numeric => keep(
            Confidence::High,
            "a number whose name suggests no personal data".into(),
        ),
        TypeKind::Other if column.type_name == "uuid" => keep(Confidence::High, "a uuid".into()),
        TypeKind::DateTime if event_time(&words) => keep(
            Confidence::High,
            format!("a timestamp named `{}`", column.name),
        ),
        TypeKind::Enum => keep(
            Confidence::Medium,
            "an enum: one of a fixed set of labels".into(),
        ),
        _ => Suggestion {
            masker: "null",
            confidence: Confidence::Low,
            why: if sampled > 0 {
                format!(
                    "nothing personal found in {sampled} sampled values, but {} can hold anything: review",
                    column.type_name
                )
            } else {
                format!(
                    "no values to sample, and {} can hold anything: review",
                    column.type_name
                )
            },
        },
    }
}

/// Whether a date or time column's name says it records when something happened to the
/// row (`created_at`, `updated_on`, `deleted`), not something about a person.
fn event_time(words: &[String]) -> bool {
    const EVENTS: &[&str] = &[
        "created",
        "updated",
        "modified",
        "inserted",
        "deleted",
        "changed",
        "processed",
        "published",
        "expires",
        "expired",
    ];
    words.first().is_some_and(|w| EVENTS.contains(&w.as_str()))
        || words.last().is_some_and(|w| w == "at")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::names;
    use crate::scan::testing::{column, text};

    fn suggest_for(column: &Column, values: &[&str]) -> Suggestion {
        let mut stats = ValueStats::default();
        for v in values {
            stats.add(v, column.kind);
        }
        suggest(column, names::classify_column(column), &stats)
    }

    fn emails(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user{i}@corp.example")).collect()
    }

    #[test]
    fn name_and_values_agree() {
        let values = emails(97);
        let mut refs: Vec<&str> = values.iter().map(String::as_str).collect();
        refs.extend(["n/a"; 3]);
        let s = suggest_for(&text("email"), &refs);
        assert_eq!(s.masker, "email");
        assert_eq!(s.confidence, Confidence::High);
        assert_eq!(
            s.why,
            "name matches `email`; 97% of 100 sampled values are e-mail addresses"
        );
    }

    #[test]
    fn values_alone_and_names_alone() {
        let values = emails(20);
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let s = suggest_for(&text("contact"), &refs);
        assert_eq!((s.masker, s.confidence), ("email", Confidence::High));

        let s = suggest_for(&text("surname"), &["Smith", "Jones"]);
        assert_eq!((s.masker, s.confidence), ("last_name", Confidence::Medium));
        assert_eq!(s.why, "name matches `surname`");

        // The name says card, the values say otherwise.
        let many = ["visa"; 20];
        let s = suggest_for(&text("card_type"), &many);
        assert_eq!((s.masker, s.confidence), ("credit_card", Confidence::Low));
        assert!(s.why.contains("none of 20 sampled values"), "{}", s.why);

        let s = suggest_for(&text("name"), &["Widget"]);
        assert_eq!((s.masker, s.confidence), ("full_name", Confidence::Low));
    }

    #[test]
    fn dates_need_a_birth_name() {
        let dob = column("dob", TypeKind::DateTime, "date", true);
        let s = suggest_for(&dob, &["1984-03-07"; 12]);
        assert_eq!(
            (s.masker, s.confidence),
            ("date_of_birth", Confidence::High)
        );
        let s = suggest_for(&text("shipped_on_text"), &["1984-03-07"; 12]);
        assert_eq!(s.masker, "null");
    }

    #[test]
    fn personal_data_inside_text_and_json() {
        let s = suggest_for(
            &text("notes"),
            &["call me at jane@corp.example", "nothing", "fine", "ok"],
        );
        assert_eq!((s.masker, s.confidence), ("scrub", Confidence::High));
        assert_eq!(
            s.why,
            "25% of 4 sampled values contain personal data (25% e-mail addresses)"
        );
        let prefs = column("prefs", TypeKind::Json, "jsonb", true);
        let s = suggest_for(&prefs, &[r#"{"contact": {"email": "x@y.io"}}"#]);
        assert_eq!((s.masker, s.confidence), ("json", Confidence::High));
        assert!(
            s.why
                .contains("JSON keys named like personal data: `email`"),
            "{}",
            s.why
        );
    }

    #[test]
    fn keep_only_for_types_without_personal_data() {
        for (c, expected) in [
            (column("id", TypeKind::Numeric, "bigint", false), "keep"),
            (
                column("active", TypeKind::Boolean, "boolean", false),
                "keep",
            ),
            (
                column("amount", TypeKind::Numeric, "numeric(10,2)", false),
                "keep",
            ),
            (
                column(
                    "created_at",
                    TypeKind::DateTime,
                    "timestamp with time zone",
                    false,
                ),
                "keep",
            ),
            (column("token", TypeKind::Other, "uuid", true), "keep"),
            (column("visited", TypeKind::DateTime, "date", true), "null"),
            (text("status"), "null"),
            (column("blob", TypeKind::Binary, "bytea", true), "null"),
        ] {
            let s = suggest_for(&c, &[]);
            assert_eq!(s.masker, expected, "{}", c.name);
        }
        let s = suggest_for(&text("status"), &["open", "closed"]);
        assert_eq!(s.confidence, Confidence::Low);
        assert!(s.why.ends_with("review"), "{}", s.why);
    }

    #[test]
    fn suggestions_never_show_values() {
        let secret = "very.secret.person@corp.example";
        let s = suggest_for(&text("notes"), &[&format!("mail {secret} now"), secret]);
        assert!(!s.why.contains("secret"), "{}", s.why);
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(97, 100), "97");
        assert_eq!(percent(1, 1000), "<1");
        assert_eq!(percent(0, 0), "0");
        assert_eq!(percent(3, 3), "100");
    }
}
