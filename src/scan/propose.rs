//! What `--write` proposes for a column without a rule: the suggestion, when this build
//! has that masker and it fits the column as the plan will check it; else a stand-in that
//! fails closed (`null`, or `hash` for a NOT NULL text column) with the reason.

use super::suggest::Suggestion;
use crate::catalog::Column;
use crate::mask::{self, BuildError, MaskerSpec};

/// The rule `--write` adds for a column without one: the suggestion when this build has
/// a masker for it that fits the column, else a fail-closed stand-in with the reason:
/// `--write` never keeps a column on a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedRule {
    /// `keep`, `null` or a masker's name.
    pub rule: String,
    /// Why the rule differs from the suggestion.
    pub note: Option<String>,
}

/// The rule `--write` adds for a column without one. A masker this build lacks, or one
/// whose plan-time check refuses the column, is not written (the plan would refuse it):
/// `null` stands in (or `hash` for a NOT NULL text column), with the reason.
pub fn propose(column: &Column, suggestion: &Suggestion) -> ProposedRule {
    let rule = |rule: &str, note: Option<String>| ProposedRule {
        rule: rule.into(),
        note,
    };
    // What stands in when the suggestion cannot be written as it is.
    let stand_in = |reason: Option<String>| {
        let reason = reason.map_or(String::new(), |r| format!("{r}; "));
        if column.nullable {
            rule(
                "null",
                Some(format!("{reason}`null` until a rule fits, review")),
            )
        } else if masker_fits("hash", column).is_ok() {
            rule(
                "hash",
                Some(format!(
                    "{reason}the column is NOT NULL, so `hash` until a rule fits, review"
                )),
            )
        } else {
            rule(
                "null",
                Some(format!(
                    "{reason}the column is NOT NULL, so `null` cannot apply: choose a rule"
                )),
            )
        }
    };
    match suggestion.masker {
        "keep" => rule("keep", None),
        "null" if column.nullable => rule("null", None),
        "null" => stand_in(None),
        masker => match masker_fits(masker, column) {
            Ok(()) => rule(masker, None),
            Err(why) => stand_in(Some(format!("suggested `{masker}`, {why}"))),
        },
    }
}

/// Whether this build has masker `kind` and, without options, it can fill `column`.
fn masker_fits(kind: &str, column: &Column) -> Result<(), String> {
    let spec = MaskerSpec {
        kind: kind.into(),
        domain: None,
        options: toml::Table::new(),
    };
    let masker = mask::build(&spec).map_err(|e| match e {
        BuildError::UnknownKind { .. } => "which this build's masker catalogue lacks".to_string(),
        BuildError::BadOptions { message, .. } => format!("which needs options ({message})"),
    })?;
    masker
        .check(column)
        .map_err(|why| format!("which cannot fill this column ({why})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TypeKind;
    use crate::scan::suggest::Confidence;
    use crate::scan::testing::{column, text};

    #[test]
    fn proposals_fail_closed() {
        let email = Suggestion {
            masker: "email",
            confidence: Confidence::High,
            why: String::new(),
        };
        let p = propose(&text("email"), &email);
        assert_eq!(
            p,
            ProposedRule {
                rule: "email".into(),
                note: None
            }
        );

        let missing = Suggestion {
            masker: "no_such_masker",
            ..email.clone()
        };
        let p = propose(&text("card"), &missing);
        assert_eq!(p.rule, "null");
        assert!(
            p.note
                .as_deref()
                .is_some_and(|n| n.contains("catalogue lacks")),
            "{p:?}"
        );
        let p = propose(&column("card", TypeKind::Text, "text", false), &missing);
        assert_eq!(p.rule, "hash");
        let p = propose(
            &column("card", TypeKind::Numeric, "bigint", false),
            &missing,
        );
        assert_eq!(p.rule, "null");
        assert!(
            p.note
                .as_deref()
                .is_some_and(|n| n.contains("choose a rule")),
            "{p:?}"
        );

        // A masker whose check refuses the column (email on an integer).
        let p = propose(&column("email", TypeKind::Numeric, "integer", true), &email);
        assert_eq!(p.rule, "null");
        assert!(
            p.note.as_deref().is_some_and(|n| n.contains("cannot fill")),
            "{p:?}"
        );

        let keep = Suggestion {
            masker: "keep",
            ..email
        };
        assert_eq!(propose(&text("x"), &keep).rule, "keep");
    }
}
