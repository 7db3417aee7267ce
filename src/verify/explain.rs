//! Telling a leak from a coincidence: a target value equal to a sampled real value is
//! not a leak when the rule itself writes it (the constant, or a masker's stand-in for
//! some source value that happens to be another real value: names and cities come from
//! word lists that real data shares). Only columns with hits are read again.

use futures_util::StreamExt;
use sqlx::postgres::PgConnection;

use super::VerifyError as Error;
use super::jobs::Job;
use super::read::{Conns, Ctx, fields, next_row};
use super::sample::HashSet64;
use crate::engine::postgres::sql::{literal, safe};
use crate::rows::copy_text::{self, NEWLINE, NULL};
use crate::rules::Rule;

/// Takes out the hits that the rules themselves explain: the constant, or a masker's
/// stand-in for some source value that happens to equal another real value (names and
/// cities come from word lists that real data shares). What is left are leaks.
pub(super) async fn explain(conns: &mut Conns, job: &mut Job, ctx: &Ctx) -> Result<(), Error> {
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
    let what = format!("reading {}", job.live);
    while let Some(row) = next_row(&mut rows, &what).await? {
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
