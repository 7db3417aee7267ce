//! A refresh between MySQL/MariaDB databases: the same rules, plan and masking as
//! PostgreSQL, the new copy built in a shadow database on the target server and moved
//! in with one `RENAME TABLE`.
//!
//! Views and triggers cannot move between databases with `RENAME TABLE`: they are
//! created in the shadow first (so a definition that no longer compiles fails the run
//! before the swap), dropped there just before the swap, and created again in the live
//! database right after it. The live database's own views and triggers are dropped just
//! before the rename; so for the moment of the swap the tables are there without them.

use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;
use sqlx::MySqlConnection;
use tracing::{info, warn};

use super::Error;
use super::plan::{Plan, PlanProblems};
use super::progress::Progress;
use super::refresh::RefreshOptions;
use super::transform::RowTransform;
use crate::config::{Config, ConfigError, ConfigErrors, TargetConfig};
use crate::engine::mysql::catalog::{self, Schema};
use crate::engine::mysql::{self, Endpoint, copy, exec, ident, literal, qualified, text_rows};
use crate::mask::MaskingKey;
use crate::report::{RefreshSummary, TableMoved};
use crate::rules::RuleSet;

/// The shadow database the new copy is built in.
fn shadow_of(live: &str) -> String {
    format!("{live}_lethe_shadow")
}

/// The database the replaced copy is kept in.
fn previous_of(live: &str) -> String {
    format!("{live}_lethe_prev")
}

/// Reads the source's tables and matches them to `rules`, writing nothing.
pub async fn plan(config: &Config, rules: &RuleSet) -> Result<(Plan, PlanProblems), Error> {
    let source = Endpoint::parse(&config.source.url, "source")?;
    let mut conn = source.connect().await?;
    let tables = catalog::tables(&mut conn, &source.database).await?;
    Ok(Plan::build(tables, rules))
}

/// One integer from a query.
async fn count(conn: &mut MySqlConnection, sql: &str, what: &str) -> Result<u64, mysql::Error> {
    let rows = text_rows(conn, sql, what).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Refreshes the MySQL target `target_name` from the MySQL source.
pub async fn refresh(
    config: &Config,
    target_name: &str,
    target_config: &TargetConfig,
    options: &RefreshOptions,
) -> Result<RefreshSummary, Error> {
    let started = Instant::now();
    if !mysql::is_mysql_url(&target_config.url) {
        return Err(ConfigErrors::from(ConfigError::in_file(
            &config.file,
            format!(
                "target `{target_name}`: a MySQL source refreshes MySQL targets (mysql://user@host:port/database)"
            ),
        ))
        .into());
    }
    let source_end = Endpoint::parse(&config.source.url, "source")?;
    let target_end = Endpoint::parse(&target_config.url, "target")?;
    let profile = options
        .profile
        .as_deref()
        .or(target_config.profile.as_deref());
    let rules = RuleSet::load(&config.masking.rules_dir, profile)?;

    let mut source = source_end.connect().await?;
    let mut target = target_end.connect().await?;
    let live = target_end.database.clone();
    let from = source_end.database.clone();
    let same_server =
        mysql::server_identity(&mut source).await? == mysql::server_identity(&mut target).await?;
    if same_server
        && [live.as_str(), &shadow_of(&live), &previous_of(&live)]
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&from))
    {
        return Err(mysql::Error::TargetIsSource(live).into());
    }
    // One run per target at a time: a named lock held by this connection until it closes.
    let lock = format!("lethe:{live}");
    let got = count(
        &mut target,
        &format!("SELECT GET_LOCK({}, 0)", literal(&lock)),
        "taking the target's run lock",
    )
    .await?;
    if got != 1 {
        return Err(Error::Busy(live));
    }

    // One snapshot for the whole run, every table read in turn on this connection.
    exec(
        &mut source,
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "starting the source snapshot",
    )
    .await?;
    exec(
        &mut source,
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        "starting the source snapshot",
    )
    .await?;
    let tables = catalog::tables(&mut source, &from).await?;
    let (plan, problems) = Plan::build(tables, &rules);
    if !problems.is_empty() {
        return Err(problems.into());
    }
    let schema = catalog::schema(
        &mut source,
        &from,
        &plan
            .tables
            .iter()
            .map(|t| t.table.clone())
            .collect::<Vec<_>>(),
    )
    .await?;
    let charset = text_rows(
        &mut source,
        &format!(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
            literal(&from)
        ),
        "reading the source database's character set",
    )
    .await?;
    let create_options = match charset.first().map(|r| r.as_slice()) {
        Some([Some(set), Some(collation)]) => {
            format!(" CHARACTER SET {} COLLATE {}", ident(set), ident(collation))
        }
        _ => String::new(),
    };

    let shadow = shadow_of(&live);
    let key = Arc::new(MaskingKey::new(
        config.masking.key.expose_secret().as_bytes(),
    ));
    let work = Work {
        from: &from,
        shadow: &shadow,
        plan: &plan,
        schema: &schema,
        create_options: &create_options,
    };
    let result = {
        let build = work.build(&mut source, &mut target, key, options);
        tokio::select! {
            moved = build => moved,
            () = options.cancel.cancelled() => Err(Error::Cancelled),
        }
    };
    let result = match result {
        Ok(moved) => {
            options.live.set_phase("swapping");
            work.swap(&mut target, &live, target_config.keep_previous > 0)
                .await
                .map(|()| moved)
        }
        Err(e) => Err(e),
    };
    let moved = match result {
        Ok(moved) => moved,
        Err(error) => {
            let drop = format!("DROP DATABASE IF EXISTS {}", ident(&shadow));
            if let Err(cleanup) = exec(&mut target, &drop, "dropping the shadow").await {
                warn!(error = %cleanup, "could not drop the unfinished copy; the next run will");
            }
            return Err(error);
        }
    };
    options.live.set_phase("done");
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

/// What one run builds and swaps in.
struct Work<'a> {
    /// The source database.
    from: &'a str,
    /// The shadow database on the target server.
    shadow: &'a str,
    plan: &'a Plan,
    schema: &'a Schema,
    /// ` CHARACTER SET .. COLLATE ..` of the source database, for the databases created.
    create_options: &'a str,
}

impl Work<'_> {
    /// Builds the shadow: tables, rows (no foreign key checks, no triggers yet), views
    /// and triggers, then checks it before it may be swapped in.
    async fn build(
        &self,
        source: &mut MySqlConnection,
        target: &mut MySqlConnection,
        key: Arc<MaskingKey>,
        options: &RefreshOptions,
    ) -> Result<Vec<TableMoved>, Error> {
        let shadow = self.shadow;
        exec(
            target,
            &format!(
                "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}{1}; USE {0}; SET SESSION FOREIGN_KEY_CHECKS = 0, SESSION UNIQUE_CHECKS = 0",
                ident(shadow),
                self.create_options
            ),
            "creating the shadow database",
        )
        .await?;
        for table in &self.plan.tables {
            let name = &table.table.name.name;
            let sql = self.schema.tables.get(name).cloned().unwrap_or_default();
            exec(target, &sql, &format!("creating table {shadow}.{name}")).await?;
        }
        let max_packet = count(
            target,
            "SELECT @@max_allowed_packet",
            "reading max_allowed_packet",
        )
        .await?;
        // Room for the statement's own text and the protocol's framing.
        let max_packet = usize::try_from(max_packet / 2)
            .unwrap_or(1 << 20)
            .max(1 << 16);

        options.live.set_phase("copying");
        let progress = Progress::new(options.progress, Arc::clone(&options.live));
        let mut moved = Vec::with_capacity(self.plan.tables.len());
        for table in &self.plan.tables {
            if table.skip {
                moved.push(TableMoved {
                    table: table.table.name.clone(),
                    rows: 0,
                    bytes: 0,
                    seconds: 0.0,
                });
                continue;
            }
            let mut bar = progress.table(&table.table.name.name, table.table.estimated_rows);
            let transform = table
                .masks_anything()
                .then(|| RowTransform::new(table, Arc::clone(&key)));
            let started = Instant::now();
            let copied = copy::copy_table(
                source,
                self.from,
                target,
                shadow,
                table,
                transform.as_ref(),
                max_packet,
                &mut bar,
            )
            .await?;
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

        options.live.set_phase("checking");
        for table in moved.iter().filter(|t| t.rows > 0) {
            let stored = count(
                target,
                &format!(
                    "SELECT count(*) FROM {}",
                    qualified(shadow, &table.table.name)
                ),
                "counting the new copy's rows",
            )
            .await?;
            if stored != table.rows {
                return Err(mysql::Error::Check(format!(
                    "{}: read {} rows but the new copy holds {stored}",
                    table.table, table.rows
                ))
                .into());
            }
        }
        for key in &self.schema.foreign_keys {
            let what = format!("checking foreign key {} of {}", key.name, key.table);
            let broken = count(target, &key.orphans_sql(shadow), &what).await?;
            if broken == 0 {
                continue;
            }
            // Rows the source itself holds with that key broken are copied as they are.
            let before = count(source, &key.orphans_sql(self.from), &what).await?;
            if broken > before {
                return Err(mysql::Error::Check(format!(
                    "{broken} rows of {} break foreign key {} in the new copy ({before} in the source): \
                     mask the key columns with the same masker and domain on both sides",
                    key.table, key.name
                ))
                .into());
            }
        }
        // Views and triggers are created here only to prove they compile (see the module doc).
        options.live.set_phase("indexing");
        create_views_and_triggers(target, self.schema, self.from, shadow).await?;
        drop_views_and_triggers(target, shadow).await?;
        Ok(moved)
    }

    /// Moves the shadow's tables into `live` in one `RENAME TABLE`, the live ones into
    /// the previous-copy database, then recreates views and triggers in `live`.
    async fn swap(
        &self,
        target: &mut MySqlConnection,
        live: &str,
        keep_previous: bool,
    ) -> Result<(), Error> {
        let previous = previous_of(live);
        exec(
            target,
            &format!(
                "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}{2}; CREATE DATABASE IF NOT EXISTS {1}{2}",
                ident(&previous),
                ident(live),
                self.create_options
            ),
            "preparing the swap",
        )
        .await?;
        let old = text_rows(
            target,
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE'",
                literal(live)
            ),
            "listing the live tables",
        )
        .await?;
        // The live database's own views and triggers, to put back if the rename fails.
        let live_objects = catalog::schema(target, live, &[]).await?;
        drop_views_and_triggers(target, live).await?;
        // Old tables out first, so that no name (of a table or a foreign key) is taken
        // twice while the statement runs.
        let renames: Vec<String> = old
            .iter()
            .filter_map(|r| r.first().cloned().flatten())
            .map(|t| format!("{} TO {}", qualified(live, &t), qualified(&previous, &t)))
            .chain(self.plan.tables.iter().map(|t| {
                let name = &t.table.name.name;
                format!(
                    "{} TO {}",
                    qualified(self.shadow, name),
                    qualified(live, name)
                )
            }))
            .collect();
        if !renames.is_empty() {
            let sql = format!("RENAME TABLE {}", renames.join(", "));
            if let Err(error) = exec(target, &sql, "swapping the new copy in").await {
                // RENAME TABLE is all or nothing: the old tables are still live.
                if let Err(e) = create_views_and_triggers(target, &live_objects, live, live).await {
                    warn!(error = %e, "could not recreate the live database's views and triggers");
                }
                return Err(error.into());
            }
        }
        create_views_and_triggers(target, self.schema, self.from, live).await?;
        let mut cleanup = format!("DROP DATABASE IF EXISTS {}", ident(self.shadow));
        if !keep_previous {
            cleanup.push_str(&format!("; DROP DATABASE IF EXISTS {}", ident(&previous)));
        }
        exec(target, &cleanup, "dropping the work databases").await?;
        Ok(())
    }
}

/// Creates the views (retrying those that need a view not created yet) and triggers
/// of `schema`, read from database `from`, in `database`.
async fn create_views_and_triggers(
    target: &mut MySqlConnection,
    schema: &Schema,
    from: &str,
    database: &str,
) -> Result<(), Error> {
    exec(
        target,
        &format!("USE {}", ident(database)),
        "selecting the database",
    )
    .await?;
    let mut waiting: Vec<&catalog::Object> = schema.views.iter().collect();
    while !waiting.is_empty() {
        let mut failed = Vec::new();
        let mut last_error = None;
        for view in &waiting {
            let sql = catalog::retarget(&view.sql, from, database);
            if let Err(e) = exec(
                target,
                &sql,
                &format!("creating view {database}.{}", view.name),
            )
            .await
            {
                failed.push(*view);
                last_error = Some(e);
            }
        }
        if failed.len() == waiting.len()
            && let Some(e) = last_error
        {
            return Err(e.into());
        }
        waiting = failed;
    }
    for trigger in &schema.triggers {
        let what = format!("creating trigger {database}.{}", trigger.name);
        if let Some(mode) = &trigger.sql_mode {
            exec(
                target,
                &format!("SET SESSION sql_mode = {}", literal(mode)),
                &what,
            )
            .await?;
        }
        let sql = catalog::retarget(&trigger.sql, from, database);
        let created = exec(target, &sql, &what).await;
        exec(
            target,
            "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
            &what,
        )
        .await?;
        created?;
    }
    Ok(())
}

/// Drops every view and trigger of `database`.
async fn drop_views_and_triggers(
    target: &mut MySqlConnection,
    database: &str,
) -> Result<(), Error> {
    let db = literal(database);
    let triggers = text_rows(
        target,
        &format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db}"
        ),
        "listing triggers",
    )
    .await?;
    for name in triggers.iter().filter_map(|r| r.first().cloned().flatten()) {
        let sql = format!("DROP TRIGGER {}", qualified(database, &name));
        exec(target, &sql, &format!("dropping trigger {database}.{name}")).await?;
    }
    let views = text_rows(
        target,
        &format!("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db}"),
        "listing views",
    )
    .await?;
    for name in views.iter().filter_map(|r| r.first().cloned().flatten()) {
        let sql = format!("DROP VIEW IF EXISTS {}", qualified(database, &name));
        exec(target, &sql, &format!("dropping view {database}.{name}")).await?;
    }
    Ok(())
}
