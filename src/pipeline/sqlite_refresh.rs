//! A refresh between SQLite files: the same rules, plan and masking as PostgreSQL, with
//! the new copy built in a file beside the live one and renamed over it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{info, warn};

use super::Error;
use super::plan::{Plan, PlanProblems};
use super::progress::Progress;
use super::refresh::RefreshOptions;
use super::transform::RowTransform;
use crate::config::{Config, ConfigError, ConfigErrors, TargetConfig};
use crate::engine::sqlite::{self, catalog, copy, file};
use crate::mask::MaskingKey;
use crate::report::{RefreshSummary, TableMoved};
use crate::rules::RuleSet;
use secrecy::ExposeSecret;
use std::sync::Arc;

/// The folder relative SQLite paths are read from: lethe.toml's.
fn base(config: &Config) -> &Path {
    config.file.parent().unwrap_or(Path::new("."))
}

/// The source file of an SQLite config.
pub fn source_path(config: &Config) -> PathBuf {
    sqlite::path_of(&config.source.url, base(config))
}

/// Reads the source's tables and matches them to `rules`, writing nothing.
pub async fn plan(config: &Config, rules: &RuleSet) -> Result<(Plan, PlanProblems), Error> {
    let mut source = sqlite::open_source(&source_path(config)).await?;
    let tables = catalog::tables(&mut source).await?;
    Ok(Plan::build(tables, rules))
}

/// Refreshes the SQLite target `target_name` from the SQLite source.
pub async fn refresh(
    config: &Config,
    target_name: &str,
    target_config: &TargetConfig,
    options: &RefreshOptions,
) -> Result<RefreshSummary, Error> {
    let started = Instant::now();
    if !sqlite::is_sqlite_url(&target_config.url) {
        return Err(ConfigErrors::from(ConfigError::in_file(
            &config.file,
            format!("target `{target_name}`: an SQLite source refreshes SQLite targets (sqlite://<file>)"),
        ))
        .into());
    }
    let source_path = source_path(config);
    let live = sqlite::path_of(&target_config.url, base(config));
    if file::same_file(&source_path, &live) {
        return Err(sqlite::Error::TargetIsSource(live).into());
    }
    let profile = options
        .profile
        .as_deref()
        .or(target_config.profile.as_deref());
    let rules = RuleSet::load(&config.masking.rules_dir, profile)?;

    // One run per target at a time: an OS lock, released even if the process dies.
    let lock_path = {
        let mut p = live.clone().into_os_string();
        p.push(".lethe-lock");
        PathBuf::from(p)
    };
    let lock = File::create(&lock_path).map_err(|source| sqlite::Error::File {
        what: "cannot create the lock file",
        path: lock_path.clone(),
        source,
    })?;
    if lock.try_lock().is_err() {
        return Err(Error::Busy(live.display().to_string()));
    }

    let mut source = sqlite::open_source(&source_path).await?;
    // One read transaction for the whole run: every table is read at the same instant.
    sqlx::query("BEGIN")
        .execute(&mut source)
        .await
        .map_err(sqlite::Error::query("starting the source snapshot"))?;
    let tables = catalog::tables(&mut source).await?;
    let (plan, problems) = Plan::build(tables, &rules);
    if !problems.is_empty() {
        return Err(problems.into());
    }
    let objects = catalog::objects(&mut source).await?;

    let building = file::building(&live);
    file::remove(&building)?;
    let key = Arc::new(MaskingKey::new(
        config.masking.key.expose_secret().as_bytes(),
    ));
    let build = build(&mut source, &building, &plan, &objects, key, options);
    let result = tokio::select! {
        moved = build => moved,
        () = options.cancel.cancelled() => Err(Error::Cancelled),
    };
    let moved = match result.and_then(|moved| {
        options.live.set_phase("swapping");
        file::swap_in(&building, &live, target_config.keep_previous > 0)?;
        Ok(moved)
    }) {
        Ok(moved) => moved,
        Err(error) => {
            if let Err(cleanup) = file::remove(&building) {
                warn!(error = %cleanup, "could not delete the unfinished copy; the next run will");
            }
            return Err(error);
        }
    };
    options.live.set_phase("done");
    drop(lock);
    Ok(RefreshSummary {
        target: target_name.to_owned(),
        tables: plan.tables.len(),
        rows: moved.iter().map(|t| t.rows).sum(),
        bytes: moved.iter().map(|t| t.bytes).sum(),
        moved,
        rules_fingerprint: plan.fingerprint,
        elapsed: started.elapsed(),
    })
}

/// Builds the new file: tables, rows, then indexes, views and triggers (so the load
/// fires no trigger), and checks it before it may be swapped in.
async fn build(
    source: &mut sqlx::SqliteConnection,
    building: &Path,
    plan: &Plan,
    objects: &[catalog::Object],
    key: Arc<MaskingKey>,
    options: &RefreshOptions,
) -> Result<Vec<TableMoved>, Error> {
    let mut target = sqlite::open_for_writing(building).await?;
    let exec = |what: &'static str| sqlite::Error::query(what);
    sqlx::query("BEGIN")
        .execute(&mut target)
        .await
        .map_err(exec("starting the new copy"))?;
    for object in objects.iter().filter(|o| o.kind == "table") {
        sqlx::query(sqlite::safe(object.sql.clone()))
            .execute(&mut target)
            .await
            .map_err(sqlite::Error::query(format!(
                "creating table {}",
                object.name
            )))?;
    }
    options.live.set_phase("copying");
    let progress = Progress::new(options.progress, Arc::clone(&options.live));
    let mut moved = Vec::with_capacity(plan.tables.len());
    let mut bars: Vec<_> = plan
        .tables
        .iter()
        .map(|t| (!t.skip).then(|| progress.table(&t.table.name.name, t.table.estimated_rows)))
        .collect();
    for (table, bar) in plan.tables.iter().zip(bars.iter_mut()) {
        let Some(bar) = bar else {
            moved.push(TableMoved {
                table: table.table.name.clone(),
                rows: 0,
                bytes: 0,
                seconds: 0.0,
            });
            continue;
        };
        let transform = table
            .masks_anything()
            .then(|| RowTransform::new(table, Arc::clone(&key)));
        let started = Instant::now();
        let copied = copy::copy_table(source, &mut target, table, transform.as_ref(), bar).await?;
        if !options.progress {
            info!(table = %table.table.name, rows = copied.rows, seconds = started.elapsed().as_secs_f64(), "table copied");
        }
        moved.push(TableMoved {
            table: table.table.name.clone(),
            rows: copied.rows,
            bytes: copied.bytes,
            seconds: 0.0,
        });
    }
    // AUTOINCREMENT counters, so new rows in dev do not reuse ids.
    let has_sequence: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'")
            .fetch_one(&mut *source)
            .await
            .map_err(exec("reading AUTOINCREMENT counters"))?;
    if has_sequence > 0 {
        let counters: Vec<(String, i64)> = sqlx::query_as("SELECT name, seq FROM sqlite_sequence")
            .fetch_all(&mut *source)
            .await
            .map_err(exec("reading AUTOINCREMENT counters"))?;
        // The load itself moved them to the highest id copied; the source's may be higher.
        sqlx::query("DELETE FROM sqlite_sequence")
            .execute(&mut target)
            .await
            .map_err(exec("writing AUTOINCREMENT counters"))?;
        for (name, seq) in counters {
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)")
                .bind(name)
                .bind(seq)
                .execute(&mut target)
                .await
                .map_err(exec("writing AUTOINCREMENT counters"))?;
        }
    }
    options.live.set_phase("indexing");
    for object in objects.iter().filter(|o| o.kind != "table") {
        sqlx::query(sqlite::safe(object.sql.clone()))
            .execute(&mut target)
            .await
            .map_err(sqlite::Error::query(format!(
                "creating {} {}",
                object.kind, object.name
            )))?;
    }
    options.live.set_phase("checking");
    for table in moved.iter().filter(|t| t.rows > 0) {
        let stored: i64 = sqlx::query_scalar(sqlite::safe(format!(
            "SELECT count(*) FROM {}",
            sqlite::ident(&table.table.name)
        )))
        .fetch_one(&mut target)
        .await
        .map_err(exec("counting the new copy's rows"))?;
        if u64::try_from(stored).ok() != Some(table.rows) {
            return Err(sqlite::Error::Check(format!(
                "{}: read {} rows but the new copy holds {stored}",
                table.table, table.rows
            ))
            .into());
        }
    }
    const BROKEN_KEYS: &str = "SELECT count(*) FROM pragma_foreign_key_check";
    let after: i64 = sqlx::query_scalar(BROKEN_KEYS)
        .fetch_one(&mut target)
        .await
        .map_err(exec("checking foreign keys"))?;
    // Only a copy with broken keys needs the source's count to compare with.
    if after > 0 {
        let before: i64 = sqlx::query_scalar(BROKEN_KEYS)
            .fetch_one(&mut *source)
            .await
            .map_err(exec("checking foreign keys"))?;
        if after > before {
            return Err(sqlite::Error::Check(format!(
                "{after} rows break a foreign key in the new copy ({before} in the source): \
                 mask the key columns with the same masker and domain on both sides"
            ))
            .into());
        }
    }
    sqlx::query("COMMIT")
        .execute(&mut target)
        .await
        .map_err(exec("committing the new copy"))?;
    sqlx::Connection::close(target)
        .await
        .map_err(exec("closing the new copy"))?;
    Ok(moved)
}
