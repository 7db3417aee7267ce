//! Which COPY format a table travels in. Binary costs both servers least (no printing and
//! parsing of dates, numbers and timestamps), so it is chosen whenever it is exact: every
//! column's type has a binary form that means the same on any server, and every column
//! the masking reads as text has a [`Codec`] that lethe reads and writes exactly. Text
//! otherwise, and always for subsets (whose queries may produce values of another type
//! than the column's, which only text input converts) and for rules that read across the
//! row (seeded by the other fields' text).

use sqlx::postgres::PgConnection;

use super::Error;
use super::sql::qualified;
use crate::catalog::{Column, TableName};
use crate::plan::Masking;
use crate::rows::CopyFormat;
use crate::rows::copy_binary::Codec;

/// The first OID PostgreSQL hands out to user-defined objects: types below it are built
/// in, the same on every server.
const FIRST_NORMAL_OID: i64 = 16_384;

/// A column's type as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ColumnType {
    /// The type, or for a domain its base type.
    oid: i64,
    name: String,
    /// `b` base, `e` enum, `c` composite, `d` domain (over a domain), ...
    kind: String,
    /// Whether it has binary send and receive functions.
    binary_io: bool,
}

/// The format to read `columns` of `table` in, on the snapshot's connection.
pub(super) async fn copy_format(
    conn: &mut PgConnection,
    table: &TableName,
    columns: &[&Column],
    masking: Masking<'_>,
    subset: bool,
) -> Result<CopyFormat, Error> {
    let flags: Vec<bool> = match masking {
        Masking::Rows => return Ok(CopyFormat::Text),
        _ if subset || columns.is_empty() => return Ok(CopyFormat::Text),
        Masking::Nothing => vec![false; columns.len()],
        Masking::Columns(flags) => flags.to_vec(),
    };
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<(String, i64, String, String, bool)> = sqlx::query_as(
        "SELECT a.attname::text, b.oid::int8, b.typname::text, b.typtype::text,
                b.typsend <> 0 AND b.typreceive <> 0
         FROM pg_attribute a
         JOIN pg_type t ON t.oid = a.atttypid
         JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
         WHERE a.attrelid = $1::regclass AND a.attname = ANY($2) AND NOT a.attisdropped",
    )
    .bind(qualified(table))
    .bind(&names)
    .fetch_all(conn)
    .await
    .map_err(Error::query(format!("reading the column types of {table}")))?;
    let types: std::collections::HashMap<String, ColumnType> = rows
        .into_iter()
        .map(|(column, oid, name, kind, binary_io)| {
            (
                column,
                ColumnType {
                    oid,
                    name,
                    kind,
                    binary_io,
                },
            )
        })
        .collect();
    let codecs: Option<Vec<Codec>> = names
        .iter()
        .zip(&flags)
        .map(|(name, &read)| {
            let codec = codec(types.get(*name)?)?;
            (!read || codec != Codec::Opaque).then_some(codec)
        })
        .collect();
    Ok(codecs.map_or(CopyFormat::Text, |codecs| CopyFormat::Binary(codecs.into())))
}

/// The codec of a column of type `ty`, or `None` when its binary form may not mean the
/// same on another server: user-defined types (their arrays and composites name type
/// OIDs), and the `reg*` types (OIDs of the source's objects).
fn codec(ty: &ColumnType) -> Option<Codec> {
    match ty.oid {
        // text, varchar, bpchar, name, json
        25 | 1043 | 1042 | 19 | 114 => return Some(Codec::Text),
        3802 => return Some(Codec::Jsonb),
        1082 => return Some(Codec::Date),
        _ => {}
    }
    let portable = match ty.kind.as_str() {
        // An enum travels as its label.
        "e" => true,
        "b" => ty.oid < FIRST_NORMAL_OID && !ty.name.trim_start_matches('_').starts_with("reg"),
        _ => false,
    };
    (portable && ty.binary_io).then_some(Codec::Opaque)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(oid: i64, name: &str, kind: &str) -> ColumnType {
        ColumnType {
            oid,
            name: name.into(),
            kind: kind.into(),
            binary_io: true,
        }
    }

    #[test]
    fn only_types_that_mean_the_same_everywhere_travel_in_binary() {
        assert_eq!(codec(&ty(25, "text", "b")), Some(Codec::Text));
        assert_eq!(codec(&ty(3802, "jsonb", "b")), Some(Codec::Jsonb));
        assert_eq!(codec(&ty(1082, "date", "b")), Some(Codec::Date));
        assert_eq!(codec(&ty(1184, "timestamptz", "b")), Some(Codec::Opaque));
        assert_eq!(codec(&ty(1009, "_text", "b")), Some(Codec::Opaque));
        assert_eq!(codec(&ty(40_000, "order_status", "e")), Some(Codec::Opaque));
        // An extension's type, an array of an enum, a composite, a domain over a domain.
        assert_eq!(codec(&ty(40_001, "citext", "b")), None);
        assert_eq!(codec(&ty(40_002, "_order_status", "b")), None);
        assert_eq!(codec(&ty(40_003, "address", "c")), None);
        assert_eq!(codec(&ty(40_004, "email", "d")), None);
        // OIDs of the source's own objects.
        assert_eq!(codec(&ty(2205, "regclass", "b")), None);
        assert_eq!(codec(&ty(2210, "_regclass", "b")), None);
        let mut no_io = ty(1033, "aclitem", "b");
        no_io.binary_io = false;
        assert_eq!(codec(&no_io), None);
    }
}
