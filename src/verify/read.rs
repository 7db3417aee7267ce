//! The reading behind `verify`, on workers that each hold a reader inside the source
//! snapshot and a read-only target session: per table, one `COPY ... TO STDOUT` on the
//! source (the samples, and the kept columns' warnings) and one on the target (the
//! comparison and the `--deep` search).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sqlx::postgres::PgConnection;

use super::VerifyError as Error;
use super::deep::Patterns;
use super::jobs::Job;
use super::sample::ValueHasher;
use super::{VerifyOptions, detect};
use crate::engine::postgres::sql::{column_list, qualified};
use crate::engine::postgres::{self, SnapshotReader};
use crate::mask::MaskingKey;
use crate::rows::copy_text::{self, DELIMITER, NEWLINE, NULL};

/// A worker's two connections: one inside the source snapshot, one read-only session on
/// the target.
pub(super) struct Conns {
    pub reader: SnapshotReader,
    pub target: PgConnection,
}

/// What every worker shares.
pub(super) struct Ctx {
    pub hasher: ValueHasher,
    pub key: MaskingKey,
    pub options: VerifyOptions,
    /// The `--deep` search, once every sample is taken.
    pub patterns: Option<Arc<Patterns>>,
}

/// The next row of a COPY stream; a failure says what was being read (`what`).
pub(super) async fn next_row(
    rows: &mut BoxStream<'_, sqlx::Result<Bytes>>,
    what: &str,
) -> Result<Option<Bytes>, Error> {
    match rows.next().await.transpose() {
        Ok(row) => Ok(row),
        Err(e) => Err(postgres::Error::query(what)(e).into()),
    }
}

/// The fields of one COPY text row, still escaped.
pub(super) fn fields(row: &[u8]) -> impl Iterator<Item = &[u8]> {
    row.strip_suffix(&[NEWLINE])
        .unwrap_or(row)
        .split(|&b| b == DELIMITER)
}

/// Samples the masked columns and looks at the kept ones, in one pass over the table.
pub(super) async fn source_scan(
    reader: &mut SnapshotReader,
    job: &mut Job,
    ctx: &Ctx,
) -> Result<(), Error> {
    // A column the target lacks needs no sample, unless `--deep` looks for it elsewhere.
    let sampled: Vec<usize> = (0..job.exact.len())
        .filter(|&i| job.exact[i].in_target || ctx.options.deep)
        .collect();
    let mut columns: Vec<&str> = sampled
        .iter()
        .map(|&i| job.exact[i].name.as_str())
        .collect();
    columns.extend(job.kept.iter().map(|k| k.name.as_str()));
    let columns: Vec<String> = columns.into_iter().map(str::to_string).collect();
    if !columns.is_empty() {
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut rows = reader
            .copy_out(&job.live, &names, job.source_partitioned)
            .await?;
        let what = format!("reading {}", job.live);
        while let Some(row) = next_row(&mut rows, &what).await? {
            for (i, field) in fields(&row).enumerate() {
                if field == NULL {
                    continue;
                }
                if let Some(&e) = sampled.get(i) {
                    job.exact[e].sample.add(ctx.hasher.hash(field), field);
                } else if let Some(kept) = job.kept.get_mut(i - sampled.len()) {
                    kept.values += 1;
                    kept.emails += u64::from(detect::contains_email(field));
                    kept.cards += u64::from(detect::contains_card_number(field));
                }
            }
        }
    }
    for exact in &mut job.exact {
        exact.checked = exact.sample.len();
        exact.source_values = exact.sample.non_null;
        exact.set = exact.sample.hash_set();
        if !ctx.options.deep {
            exact.sample.clear();
        }
    }
    Ok(())
}

/// Streams the table from the target: each masked column's values are looked up in its
/// sample, and each `--deep` column is searched for every sampled value.
pub(super) async fn target_scan(
    conn: &mut PgConnection,
    job: &mut Job,
    ctx: &Ctx,
) -> Result<(), Error> {
    let Some((table, partitioned)) = job.target.clone() else {
        return Ok(());
    };
    let exact: Vec<usize> = (0..job.exact.len())
        .filter(|&i| job.exact[i].in_target && !job.exact[i].set.is_empty())
        .collect();
    let patterns = ctx.patterns.as_deref();
    let deep = if patterns.is_some() {
        job.deep.len()
    } else {
        0
    };
    if exact.is_empty() && deep == 0 {
        return Ok(());
    }
    let columns = exact
        .iter()
        .map(|&i| job.exact[i].name.as_str())
        .chain(job.deep[..deep].iter().map(|d| d.name.as_str()));
    let only = if partitioned { "" } else { "ONLY " };
    let sql = format!(
        "COPY (SELECT {} FROM {only}{}) TO STDOUT",
        column_list(columns),
        qualified(&table)
    );
    let what = format!("reading {table} in the target");
    let mut rows = conn
        .copy_out_raw(&sql)
        .await
        .map_err(postgres::Error::query(what.clone()))?;
    let mut decoded = Vec::new();
    let mut found: Vec<usize> = Vec::new();
    while let Some(row) = next_row(&mut rows, &what).await? {
        for (i, field) in fields(&row).enumerate() {
            if field == NULL {
                continue;
            }
            if let Some(&e) = exact.get(i) {
                let column = &mut job.exact[e];
                column.target_values += 1;
                let hash = ctx.hasher.hash(field);
                if column.set.contains(&hash) {
                    let hit = column.hits.entry(hash).or_insert_with(|| {
                        decoded.clear();
                        copy_text::decode(field, &mut decoded);
                        (0, detect::redact(&String::from_utf8_lossy(&decoded)))
                    });
                    hit.0 += 1;
                }
            } else if let (Some(patterns), Some(column)) =
                (patterns, job.deep.get_mut(i - exact.len()))
            {
                found.clear();
                found.extend(
                    patterns
                        .search
                        .find_overlapping_iter(field)
                        .map(|m| m.pattern().as_usize()),
                );
                if found.is_empty() {
                    continue;
                }
                found.sort_unstable();
                found.dedup();
                column.rows += 1;
                for &p in &found {
                    *column.found.entry(p).or_insert(0) += 1;
                }
            }
        }
    }
    Ok(())
}
