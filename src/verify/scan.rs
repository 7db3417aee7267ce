//! The reading behind `verify`: per table, one `COPY ... TO STDOUT` on the source (the
//! sample), one on the target (the comparison and the `--deep` search), and, only for
//! columns with hits, one more on the source to tell a leak from a coincidence.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use sqlx::postgres::PgConnection;

use super::sample::{HashSet64, ValueHasher};
use super::{Job, Patterns, VerifyOptions, detect};
use crate::engine::postgres::sql::{column_list, literal, qualified, safe};
use crate::engine::postgres::{self, SnapshotReader, Target};
use crate::mask::MaskingKey;
use crate::pipeline::Error;
use crate::rows::copy_text::{self, DELIMITER, NEWLINE, NULL};
use crate::rules::Rule;

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

/// Which part of a table's work a pass does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Sample the source only (`--deep` needs every sample before the target is read).
    Source,
    /// Read the target, then tell leaks from coincidences.
    Target,
    /// Both, table by table.
    All,
}

/// Opens a target session in which every transaction is read-only.
pub(super) async fn open_target(target: &Target) -> Result<PgConnection, Error> {
    let mut conn = target.connect().await?;
    sqlx::raw_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(postgres::Error::query("opening a read-only target session"))?;
    Ok(conn)
}

/// Takes tables from `queue` until it is empty; gives back its connections and the
/// tables it did.
pub(super) async fn worker(
    mut conns: Conns,
    queue: Arc<Mutex<VecDeque<Job>>>,
    stage: Stage,
    ctx: Arc<Ctx>,
) -> Result<(Conns, Vec<Job>), Error> {
    let mut done = Vec::new();
    loop {
        let next = queue.lock().ok().and_then(|mut q| q.pop_front());
        let Some(mut job) = next else {
            return Ok((conns, done));
        };
        if stage != Stage::Target {
            source_scan(&mut conns.reader, &mut job, &ctx).await?;
        }
        if stage != Stage::Source {
            target_scan(&mut conns.target, &mut job, &ctx).await?;
            explain(&mut conns, &mut job, &ctx).await?;
        }
        done.push(job);
    }
}

/// The fields of one COPY text row, still escaped.
fn fields(row: &[u8]) -> impl Iterator<Item = &[u8]> {
    row.strip_suffix(&[NEWLINE])
        .unwrap_or(row)
        .split(|&b| b == DELIMITER)
}

/// Samples the masked columns and looks at the kept ones, in one pass over the table.
async fn source_scan(reader: &mut SnapshotReader, job: &mut Job, ctx: &Ctx) -> Result<(), Error> {
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
        while let Some(row) = rows.next().await {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    return Err(postgres::Error::query(format!("reading {}", job.live))(e).into());
                }
            };
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
async fn target_scan(conn: &mut PgConnection, job: &mut Job, ctx: &Ctx) -> Result<(), Error> {
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
    while let Some(row) = rows.next().await {
        let row = match row {
            Ok(row) => row,
            Err(e) => return Err(postgres::Error::query(what)(e).into()),
        };
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

/// Takes out the hits that the rules themselves explain: the constant, or a masker's
/// stand-in for some source value that happens to equal another real value (names and
/// cities come from word lists that real data shares). What is left are leaks.
async fn explain(conns: &mut Conns, job: &mut Job, ctx: &Ctx) -> Result<(), Error> {
    for exact in job.exact.iter_mut().filter(|e| !e.hits.is_empty()) {
        if let Rule::Constant(value) = &exact.rule {
            let text = constant_text(&mut conns.target, value, &exact.type_name).await;
            if exact.hits.remove(&ctx.hasher.hash(&text)).is_some() {
                exact.coincidences += 1;
            }
        }
    }
    let masked: Vec<usize> = (0..job.exact.len())
        .filter(|&i| !job.exact[i].hits.is_empty() && matches!(job.exact[i].rule, Rule::Mask(_)))
        .collect();
    if masked.is_empty() {
        return Ok(());
    }
    let columns: Vec<String> = masked.iter().map(|&i| job.exact[i].name.clone()).collect();
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut rows = conns
        .reader
        .copy_out(&job.live, &names, job.source_partitioned)
        .await?;
    let mut seen = vec![HashSet64::default(); masked.len()];
    let (mut raw, mut out, mut encoded) = (Vec::new(), String::new(), Vec::new());
    while let Some(row) = rows.next().await {
        let row = match row {
            Ok(row) => row,
            Err(e) => return Err(postgres::Error::query(format!("reading {}", job.live))(e).into()),
        };
        for (i, field) in fields(&row).enumerate() {
            let Some(&e) = masked.get(i) else {
                continue;
            };
            let exact = &mut job.exact[e];
            let Rule::Mask(masker) = &exact.rule else {
                continue;
            };
            if field == NULL || exact.hits.is_empty() || !seen[i].insert(ctx.hasher.hash(field)) {
                continue;
            }
            raw.clear();
            copy_text::decode(field, &mut raw);
            let Ok(text) = std::str::from_utf8(&raw) else {
                continue;
            };
            out.clear();
            masker.mask(text, &ctx.key, &mut out);
            if let Some(max) = exact.max_chars {
                truncate_chars(&mut out, max);
            }
            encoded.clear();
            copy_text::encode(&out, &mut encoded);
            if exact.hits.remove(&ctx.hasher.hash(&encoded)).is_some() {
                exact.coincidences += 1;
            }
        }
    }
    Ok(())
}

/// The constant as the target prints it in COPY text (`true` is `t`, JSON is
/// normalised), or as written if the target cannot cast it.
async fn constant_text(conn: &mut PgConnection, value: &str, type_name: &str) -> Vec<u8> {
    let mut written = Vec::new();
    copy_text::encode(value, &mut written);
    // `type_name` comes from the source server's own format_type(), which quotes as
    // needed (as the plan's constant check uses it).
    let sql = format!(
        "COPY (SELECT CAST({} AS {type_name})) TO STDOUT",
        literal(value)
    );
    let sql = safe(sql).0;
    let Ok(mut rows) = conn.copy_out_raw(&sql).await else {
        return written;
    };
    let mut text = Vec::new();
    while let Some(row) = rows.next().await {
        match row {
            Ok(row) => text.extend_from_slice(&row),
            Err(_) => return written,
        }
    }
    if text.last() == Some(&NEWLINE) {
        text.pop();
    }
    text
}

/// Cuts `text` to at most `max` characters, as the copy cuts a stand-in to `varchar(n)`.
fn truncate_chars(text: &mut String, max: usize) {
    if let Some((byte, _)) = text.char_indices().nth(max) {
        text.truncate(byte);
    }
}
