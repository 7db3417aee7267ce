//! Helpers shared by the maskers' unit tests.

use std::sync::Arc;

use super::{Constructor, Masker, MaskingKey};
use crate::catalog::{Column, TypeKind};

/// Builds a masker from a constructor, a domain and options written as TOML.
pub(super) fn build(ctor: Constructor, domain: &str, options: &str) -> Arc<dyn Masker> {
    ctor(domain.to_owned(), toml::from_str(options).unwrap()).unwrap()
}

/// The error a constructor gives for options written as TOML.
pub(super) fn build_err(ctor: Constructor, options: &str) -> String {
    ctor("d".to_owned(), toml::from_str(options).unwrap()).unwrap_err()
}

/// Masks one value with a key made from `key`.
pub(super) fn run(masker: &dyn Masker, key: &[u8], input: &str) -> String {
    let mut out = String::new();
    masker.mask(input, &MaskingKey::new(key), &mut out);
    out
}

/// A plain nullable text column.
pub(super) fn text() -> Column {
    Column {
        name: "c".into(),
        type_name: "text".into(),
        kind: TypeKind::Text,
        element: None,
        max_chars: None,
        nullable: true,
        generated: false,
        unique: false,
    }
}

/// A `varchar(n)` column.
pub(super) fn varchar(n: usize) -> Column {
    Column {
        type_name: format!("character varying({n})"),
        max_chars: Some(n),
        ..text()
    }
}

/// A unique text column.
pub(super) fn unique_text() -> Column {
    Column {
        unique: true,
        ..text()
    }
}

/// A `bigint` column.
pub(super) fn bigint() -> Column {
    Column {
        type_name: "bigint".into(),
        kind: TypeKind::Numeric,
        ..text()
    }
}

/// The checks every text-only masker shares: wrong type named in the error, and
/// (when `unique_ok` is false) a unique column refused with a pointer to `hash`/`email`.
pub(super) fn assert_text_checks(masker: &dyn Masker, unique_ok: bool) {
    let err = masker.check(&bigint()).unwrap_err();
    assert!(
        err.contains("produces text") && err.contains("bigint"),
        "{err}"
    );
    assert!(masker.check(&text()).is_ok());
    match masker.check(&unique_text()) {
        Ok(()) => assert!(unique_ok, "unique column accepted"),
        Err(err) => {
            assert!(!unique_ok, "unique column refused: {err}");
            assert!(err.contains("`hash`") && err.contains("`email`"), "{err}");
        }
    }
}

/// A column of another kind, e.g. `of_kind(TypeKind::Json, "jsonb")`.
pub(super) fn of_kind(kind: TypeKind, type_name: &str) -> Column {
    Column {
        type_name: type_name.into(),
        kind,
        ..text()
    }
}

/// An array column whose elements are of `element` kind, e.g. `text[]`.
pub(super) fn array_of(element: TypeKind, type_name: &str) -> Column {
    Column {
        element: Some(element),
        ..of_kind(TypeKind::Array, type_name)
    }
}
