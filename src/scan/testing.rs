//! Catalog columns for the unit tests of `lethe scan`: a column has eight fields, and a
//! test cares about its name, type and nullability.

use crate::catalog::{Column, TypeKind};

/// A column of the catalog with the fields the tests vary; the rest as a plain column.
pub(super) fn column(name: &str, kind: TypeKind, type_name: &str, nullable: bool) -> Column {
    Column {
        name: name.into(),
        type_name: type_name.into(),
        kind,
        max_chars: None,
        nullable,
        generated: false,
        unique: false,
        element: None,
    }
}

/// A nullable `text` column.
pub(super) fn text(name: &str) -> Column {
    column(name, TypeKind::Text, "text", true)
}
