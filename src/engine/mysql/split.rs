//! A big table cut into ranges of its integer primary key, so several readers, each in a
//! snapshot that began at the same instant, stream it at once. The ranges split the
//! keys' span evenly, as mydumper does; the last range is open-ended.

use sqlx::MySqlConnection;

use super::{Error, ident, qualified, text_rows};
use crate::catalog::Table;
use crate::engine::{Part, Span, Split};

/// Cuts `table` into at most `split.pieces` ranges of its primary key, none estimated
/// below `split.min_bytes`. Only a table keyed by one integer column whose keys are not
/// negative is cut; any other is returned whole.
pub async fn split(
    conn: &mut MySqlConnection,
    table: &Table,
    split: Split,
) -> Result<Vec<Part>, Error> {
    let whole = Ok(vec![Part::WHOLE]);
    if split.pieces < 2 || table.size_bytes < split.min_bytes {
        return whole;
    }
    let Some(key) = integer_key(table) else {
        return whole;
    };
    let rows = text_rows(
        conn,
        &format!(
            "SELECT MIN({key}), MAX({key}) FROM {}",
            qualified(&table.name.schema, &table.name.name),
            key = ident(key),
        ),
        "reading a table's key range",
    )
    .await?;
    let bound = |i: usize| -> Option<u64> { rows.first()?.get(i)?.as_deref()?.parse().ok() };
    let (Some(min), Some(max)) = (bound(0), bound(1)) else {
        return whole;
    };
    Ok(split.cut(table.size_bytes, min, max))
}

/// The table's primary key when it is one integer column.
fn integer_key(table: &Table) -> Option<&str> {
    let [key] = table.primary_key.as_slice() else {
        return None;
    };
    let column = table.columns.iter().find(|c| &c.name == key)?;
    let base = column
        .type_name
        .split(['(', ' '])
        .next()
        .unwrap_or_default();
    matches!(
        base,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
    .then_some(key.as_str())
}

/// `key >= start` and `key < end` of a range of the table's primary key.
pub fn key_bounds(table: &Table, span: Span) -> Vec<String> {
    let Some(key) = integer_key(table) else {
        return Vec::new();
    };
    let key = ident(key);
    let mut bounds = vec![format!("{key} >= {}", span.start)];
    if let Some(end) = span.end {
        bounds.push(format!("{key} < {end}"));
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Column, TableName, TypeKind};

    fn table(key_type: &str) -> Table {
        let column = |name: &str, type_name: &str| Column {
            name: name.into(),
            type_name: type_name.into(),
            kind: TypeKind::Numeric,
            max_chars: None,
            nullable: false,
            generated: false,
            unique: true,
            element: None,
        };
        Table {
            name: TableName::new("db", "t"),
            columns: vec![column("id", key_type), column("n", "int(11)")],
            estimated_rows: 0,
            size_bytes: 0,
            partition_of: None,
            partitioned: false,
            primary_key: vec!["id".into()],
        }
    }

    #[test]
    fn only_one_integer_key_column_is_cut_on() {
        assert_eq!(integer_key(&table("bigint(20) unsigned")), Some("id"));
        assert_eq!(integer_key(&table("int")), Some("id"));
        assert_eq!(integer_key(&table("varchar(36)")), None);
        assert_eq!(integer_key(&table("decimal(20,0)")), None);
        let mut two = table("int");
        two.primary_key.push("n".into());
        assert_eq!(integer_key(&two), None);
    }

    #[test]
    fn ranges_cover_the_keys_from_the_lowest_and_the_last_is_open() {
        let t = table("int");
        let bounds: Vec<Vec<String>> = Span::cover(1_000, 1_010, 3)
            .map(|span| key_bounds(&t, span))
            .collect();
        assert_eq!(
            bounds,
            [
                vec!["`id` >= 1000".to_owned(), "`id` < 1003".to_owned()],
                vec!["`id` >= 1003".to_owned(), "`id` < 1006".to_owned()],
                vec!["`id` >= 1006".to_owned()],
            ]
        );
    }

    #[test]
    fn never_more_ranges_than_workers_keys_or_minimum_pieces() {
        let split = Split {
            pieces: 4,
            min_bytes: 100,
        };
        assert_eq!(split.ranges(1_000, 1_000), 4);
        assert_eq!(split.ranges(250, 1_000), 2);
        assert_eq!(split.ranges(1_000, 3), 3);
        assert_eq!(split.ranges(99, 1_000), 1);
    }
}
