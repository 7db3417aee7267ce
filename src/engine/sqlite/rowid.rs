//! Tables by their rowid: read a batch of rowids at a time (so several tables share the
//! one source connection), and a big table cut into rowid ranges that several workers
//! copy at once. A rowid is any `i64`; a [`Span`](crate::engine::Span) counts in `u64`,
//! so rowids are shifted by 2^63 into it, which keeps their order.

use rusqlite::Connection;

use super::{Error, ident};
use crate::catalog::Table;
use crate::engine::{Part, Split};

/// The names SQLite gives the rowid, unless a column takes them.
const NAMES: [&str; 3] = ["rowid", "_rowid_", "oid"];

/// The name `table`'s rowid goes by, or `None` when it has none (`WITHOUT ROWID`) or
/// columns take every name of it.
pub fn name(conn: &Connection, table: &Table) -> Result<Option<&'static str>, Error> {
    let without_rowid: bool = conn
        .query_row(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            [&table.name.name],
            |r| r.get(0),
        )
        .map_err(Error::query(format!("reading {}", table.name.name)))?;
    if without_rowid {
        return Ok(None);
    }
    Ok(NAMES.into_iter().find(|alias| {
        !table
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(alias))
    }))
}

/// A rowid as a [`Span`](crate::engine::Span) counts it.
fn to_span(rowid: i64) -> u64 {
    rowid.cast_unsigned() ^ (1 << 63)
}

/// A [`Span`](crate::engine::Span)'s unit as the rowid it stands for.
fn from_span(unit: u64) -> i64 {
    (unit ^ (1 << 63)).cast_signed()
}

/// The first and the last rowid (inclusive) of a piece.
pub fn bounds(part: &Part) -> (i64, i64) {
    match part.span {
        None => (i64::MIN, i64::MAX),
        Some(span) => (
            from_span(span.start),
            // A span's end is past its start, so it never stands for i64::MIN.
            span.end.map_or(i64::MAX, |end| from_span(end) - 1),
        ),
    }
}

/// Cuts `table` into at most `split.pieces` ranges of rowids of about equal length,
/// none estimated below `split.min_bytes`; a table without a rowid stays whole.
pub fn split(conn: &Connection, table: &Table, split: Split) -> Result<Vec<Part>, Error> {
    let whole = Ok(vec![Part::WHOLE]);
    if split.pieces < 2 || table.size_bytes < split.min_bytes {
        return whole;
    }
    let Some(rowid) = name(conn, table)? else {
        return whole;
    };
    let range: (Option<i64>, Option<i64>) = conn
        .query_row(
            &format!(
                "SELECT min({rowid}), max({rowid}) FROM {}",
                ident(&table.name.name)
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(Error::query(format!(
            "reading the rowids of {}",
            table.name.name
        )))?;
    let (Some(first), Some(last)) = range else {
        return whole;
    };
    Ok(split.cut(table.size_bytes, to_span(first), to_span(last)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Span;

    #[test]
    fn spans_keep_the_order_of_rowids() {
        let rowids = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in rowids.windows(2) {
            assert!(to_span(pair[0]) < to_span(pair[1]));
        }
        for rowid in rowids {
            assert_eq!(from_span(to_span(rowid)), rowid);
        }
    }

    #[test]
    fn pieces_cover_every_rowid_once() {
        let parts: Vec<(i64, i64)> = Span::cover(to_span(-10), to_span(20) + 1, 3)
            .map(|span| {
                bounds(&Part {
                    from: None,
                    span: Some(span),
                })
            })
            .collect();
        assert_eq!(parts, [(-10, -1), (0, 9), (10, i64::MAX)]);
        assert_eq!(bounds(&Part::WHOLE), (i64::MIN, i64::MAX));
    }
}
