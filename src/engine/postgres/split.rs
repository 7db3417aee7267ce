//! A big table cut into ranges of heap pages (`ctid` ranges, read by a TID Range Scan on
//! PostgreSQL 14+), so several readers in the same exported snapshot stream it at once.
//! A partitioned table is cut partition by partition: each piece reads one partition
//! (`ONLY`), and every piece's rows go into the partitioned table's shadow.

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::Error;
use super::PgDialect;
use super::sql::qualified;
use crate::catalog::{Table, TableName};
use crate::engine::{Part, Span, Split};
use crate::subset::{Selection, select_from};

/// One relation that holds rows of the table: the table itself, or one of its leaf
/// partitions, with its size now.
struct Relation {
    name: TableName,
    /// `r` for an ordinary table; anything else (a foreign table, a partitioned table
    /// without partitions) is never cut.
    kind: String,
    /// Heap pages: what a TID range scan walks. The file's size, not `relpages`, which
    /// stays 0 until the first VACUUM or ANALYZE.
    pages: u64,
    /// Heap and TOAST bytes: what the copy moves.
    bytes: u64,
}

/// Cuts `table` into at most `split.pieces` pieces, none estimated below
/// `split.min_bytes`; a table that is not worth cutting is returned whole (and loads with
/// `COPY FREEZE`). Sizes are read now on the snapshot's connection: the copied tables
/// are locked ACCESS SHARE, so no VACUUM can truncate pages away before they are read, and
/// the last range of each relation is open-ended, so pages added since are read too.
pub async fn split(
    conn: &mut PgConnection,
    table: &Table,
    split: Split,
) -> Result<Vec<Part>, Error> {
    if split.pieces < 2 || table.size_bytes < split.min_bytes {
        return Ok(vec![Part::WHOLE]);
    }
    let relations = relations(conn, table).await?;
    let total: u64 = relations.iter().map(|r| r.bytes).sum();
    if total < split.min_bytes || relations.iter().any(|r| r.kind != "r") {
        return Ok(vec![Part::WHOLE]);
    }
    if !table.partitioned {
        let pieces = relations.first().map_or(1, |r| count(r, split));
        if pieces < 2 {
            return Ok(vec![Part::WHOLE]);
        }
        let pages = relations.first().map_or(0, |r| r.pages);
        return Ok(Span::cover(0, pages, pieces)
            .map(|span| Part {
                from: None,
                span: Some(span),
            })
            .collect());
    }
    let mut relations = relations;
    relations.sort_by_key(|r| std::cmp::Reverse(r.bytes));
    let mut parts = Vec::new();
    for relation in relations {
        let pieces = count(&relation, split);
        if pieces < 2 {
            parts.push(Part {
                from: Some(relation.name),
                span: None,
            });
            continue;
        }
        parts.extend(Span::cover(0, relation.pages, pieces).map(|span| Part {
            from: Some(relation.name.clone()),
            span: Some(span),
        }));
    }
    Ok(parts)
}

/// The `COPY (SELECT ...) TO STDOUT` that reads `columns` of `part` of `table`: the
/// table (with its partitions when it is partitioned, without inheritance children
/// otherwise), or one partition; within the part's page range when it has one.
pub fn copy_sql(
    table: &Table,
    columns: &[&str],
    part: &Part,
    selection: Option<&Selection>,
) -> String {
    let (relation, only) = match &part.from {
        Some(partition) => (partition, "ONLY "),
        None if table.partitioned => (&table.name, ""),
        None => (&table.name, "ONLY "),
    };
    let relation = qualified(relation);
    let filters = part.span.map(ctid_bounds).unwrap_or_default();
    let select = select_from(
        &PgDialect,
        &relation,
        &format!("{only}{relation}"),
        columns,
        selection,
        filters,
    );
    format!("COPY ({select}) TO STDOUT")
}

/// `ctid >= '(start,0)'` and `ctid < '(end,0)'`, leaving out a bound the span does not
/// have (a first range from page 0, a last range to the end).
fn ctid_bounds(span: Span) -> Vec<String> {
    let mut bounds = Vec::new();
    if span.start > 0 {
        bounds.push(format!("ctid >= '({},0)'::tid", span.start));
    }
    if let Some(end) = span.end {
        bounds.push(format!("ctid < '({end},0)'::tid"));
    }
    bounds
}

/// How many pieces `relation` is worth: one per `min_bytes`, at most `split.pieces`, and
/// never more than it has pages.
fn count(relation: &Relation, split: Split) -> usize {
    let by_size = relation.bytes / split.min_bytes.max(1);
    let most = u64::try_from(split.pieces).unwrap_or(u64::MAX);
    usize::try_from(by_size.min(most).min(relation.pages).max(1)).unwrap_or(1)
}

/// The relations that hold `table`'s rows: the table itself, or its leaf partitions.
async fn relations(conn: &mut PgConnection, table: &Table) -> Result<Vec<Relation>, Error> {
    let rows = sqlx::query(
        "SELECT n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind,
                pg_relation_size(c.oid) / current_setting('block_size')::int8 AS pages,
                pg_table_size(c.oid) AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE CASE WHEN $2 THEN c.oid IN (SELECT relid FROM pg_partition_tree($1::regclass)
                                           WHERE isleaf)
                    ELSE c.oid = $1::regclass END",
    )
    .bind(qualified(&table.name))
    .bind(table.partitioned)
    .fetch_all(conn)
    .await
    .map_err(Error::query(format!("sizing {} to split it", table.name)))?;
    Ok(rows
        .into_iter()
        .map(|row| Relation {
            name: TableName::new(row.get::<String, _>("schema"), row.get::<String, _>("name")),
            kind: row.get("kind"),
            pages: u64::try_from(row.get::<i64, _>("pages")).unwrap_or(0),
            bytes: u64::try_from(row.get::<i64, _>("bytes")).unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_every_page_once_and_the_last_is_open() {
        let spans: Vec<Span> = Span::cover(0, 10, 3).collect();
        assert_eq!(
            spans,
            vec![
                Span {
                    start: 0,
                    end: Some(3)
                },
                Span {
                    start: 3,
                    end: Some(6)
                },
                Span {
                    start: 6,
                    end: None
                },
            ]
        );
    }

    #[test]
    fn a_piece_is_never_smaller_than_the_minimum_nor_more_than_the_workers() {
        let relation = |bytes, pages| Relation {
            name: TableName::new("public", "t"),
            kind: "r".into(),
            pages,
            bytes,
        };
        let split = |pieces| Split {
            pieces,
            min_bytes: 100,
        };
        assert_eq!(count(&relation(99, 50), split(4)), 1);
        assert_eq!(count(&relation(250, 50), split(4)), 2);
        assert_eq!(count(&relation(10_000, 50), split(4)), 4);
        assert_eq!(count(&relation(10_000, 3), split(4)), 3);
    }

    #[test]
    fn the_filter_leaves_out_the_bounds_a_span_does_not_have() {
        let filter = |start, end| ctid_bounds(Span { start, end }).join(" AND ");
        assert_eq!(filter(0, Some(5)), "ctid < '(5,0)'::tid");
        assert_eq!(
            filter(5, Some(9)),
            "ctid >= '(5,0)'::tid AND ctid < '(9,0)'::tid"
        );
        assert_eq!(filter(9, None), "ctid >= '(9,0)'::tid");
        assert_eq!(filter(0, None), "");
    }
}
