//! A whole run, step by step (see the README's "How a refresh works"), with the target's live copy untouched
//! until the final swap, and the shadow dropped on any failure.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Error;
use super::copy::{CopyStats, copy_table};
use super::plan::Plan;
use super::progress::{LiveProgress, Progress, TableProgress};
use super::transform::RowTransform;
use crate::catalog::TableName;
use crate::config::{Config, ConfigErrors, HookFile, Location, TargetConfig};
use crate::engine::postgres::dump::{Section, pg_dump_schema};
use crate::engine::postgres::dump_rewrite::rewrite_dump;
use crate::engine::postgres::target::HookError;
use crate::engine::postgres::{
    self, Endpoint, SchemaMap, Side, Snapshot, SourceSession, Target, catalog,
};
use crate::mask::MaskingKey;
use crate::report::{RefreshSummary, TableMoved};
use crate::rules::{Rule, RuleSet};

/// How a refresh runs.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// Tables copied at once (and connections per side).
    pub jobs: usize,
    /// Draw per-table progress lines on stderr.
    pub progress: bool,
    /// The rules profile, over the target's own (a schedule may name one).
    pub profile: Option<String>,
    /// Stops the run at the next step before the swap (SIGTERM, daemon shutdown): the
    /// shadow is dropped and the live copy keeps serving. Once the swap has begun it
    /// completes, so a run is either wholly in or wholly out.
    pub cancel: CancellationToken,
    /// Counters that someone outside the run reads while it goes.
    pub live: Arc<LiveProgress>,
}

impl RefreshOptions {
    /// Options for a run on `jobs` connections per side, drawing progress lines or not,
    /// with the target's own profile and no outside cancellation.
    pub fn new(jobs: usize, progress: bool) -> Self {
        Self {
            jobs,
            progress,
            profile: None,
            cancel: CancellationToken::new(),
            live: Arc::default(),
        }
    }
}

/// A plan made inside an open snapshot, ready to run or to show.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// What stands in the way of running it.
    pub problems: super::PlanProblems,
    /// The copied schemas.
    pub schemas: Vec<String>,
    /// The snapshot the plan was read in, for reading the source at that same instant.
    pub snapshot: Snapshot,
}

/// How long the source's ACCESS SHARE locks wait behind other sessions' DDL before the
/// run gives up (pg_dump's `--lock-wait-timeout`): production DDL must not queue behind us.
const SOURCE_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Loads the rules, reads the source schema in a fresh snapshot and matches the two.
/// With `lock`, the source tables are locked before the snapshot is taken, as a refresh
/// needs; `lethe plan` reads without locking. `profile` picks the rules overrides of a
/// target's profile. Writes nothing anywhere.
pub async fn plan(config: &Config, profile: Option<&str>, lock: bool) -> Result<Planned, Error> {
    let rules = RuleSet::load(&config.masking.rules_dir, profile)?;
    plan_rules(config, &rules, lock).await
}

/// A plan to show or check, from any engine, with nothing held open.
pub struct PlanOnly {
    /// The plan.
    pub plan: Plan,
    /// What stands in the way of running it.
    pub problems: super::PlanProblems,
    /// The copied schemas (`main` for SQLite).
    pub schemas: Vec<String>,
}

/// Matches the source's schema to `rules` for `lethe plan` and `lethe check`, on
/// whichever engine the source is. Reads only.
pub async fn plan_only(config: &Config, rules: &RuleSet) -> Result<PlanOnly, Error> {
    super::engine::of(config).plan(config, rules).await
}

/// [`plan_only`] on PostgreSQL: planned in a snapshot that is closed again at once.
pub(super) async fn plan_postgres(config: &Config, rules: &RuleSet) -> Result<PlanOnly, Error> {
    let planned = plan_rules(config, rules, false).await?;
    planned.snapshot.close().await?;
    Ok(PlanOnly {
        plan: planned.plan,
        problems: planned.problems,
        schemas: planned.schemas,
    })
}

/// [`plan`] with rules already loaded: `lethe check` loads every profile's rules first,
/// so that all their errors are reported together.
async fn plan_rules(config: &Config, rules: &RuleSet, lock: bool) -> Result<Planned, Error> {
    let source = Endpoint::parse(&config.source.url, Side::Source)?;
    let mut session = SourceSession::connect(&source).await?;
    let all = catalog::user_schemas(session.conn()).await?;
    let schemas = match &config.source.schemas {
        Some(wanted) => {
            if let Some(missing) = wanted.iter().find(|s| !all.contains(s)) {
                return Err(Error::NoSuchSchema(missing.clone()));
            }
            wanted.clone()
        }
        None => all,
    };
    let listed = if lock {
        catalog::tables(session.conn(), &schemas).await?
    } else {
        Vec::new()
    };
    let locked: Vec<&TableName> = listed.iter().map(|t| &t.name).collect();
    let mut snapshot = session.begin_snapshot(&locked, SOURCE_LOCK_WAIT).await?;
    let tables = catalog::tables(snapshot.conn(), &schemas).await?;
    if lock && let Some(new) = tables.iter().find(|t| !locked.contains(&&t.name)) {
        return Err(Error::SourceChanged(new.name.clone()));
    }
    let (plan, mut problems) = Plan::build(tables, rules);
    for table in &plan.tables {
        for column in &table.columns {
            if let Rule::Constant(value) = &column.rule
                && !catalog::casts_to(snapshot.conn(), value, &column.column.type_name).await?
            {
                problems.bad_rules.push(format!(
                    "{}: {}.{}: the constant is not a valid {}",
                    column.location, table.table.name, column.column.name, column.column.type_name
                ));
            }
        }
    }
    Ok(Planned {
        plan,
        problems,
        schemas,
        snapshot,
    })
}

/// Refreshes the target named `target_name` from the source.
pub async fn refresh(
    config: &Config,
    target_name: &str,
    options: &RefreshOptions,
) -> Result<RefreshSummary, Error> {
    let target_config = config.target(target_name).map_err(ConfigErrors::from)?;
    super::engine::of(config)
        .refresh(config, target_name, target_config, options)
        .await
}

/// [`refresh`] on PostgreSQL: shadow schemas in the target, one swap transaction.
pub(super) async fn refresh_postgres(
    config: &Config,
    target_name: &str,
    target_config: &TargetConfig,
    options: &RefreshOptions,
) -> Result<RefreshSummary, Error> {
    let started = Instant::now();
    let target = Target::new(Endpoint::parse(&target_config.url, Side::Target)?);
    // Read now: a hook that cannot be read stops the run before anything is touched.
    let hooks: Vec<(&HookFile, String)> = target_config
        .after_refresh
        .iter()
        .map(|hook| hook.read().map(|sql| (hook, sql)))
        .collect::<Result<_, _>>()
        .map_err(ConfigErrors::from)?;

    let Planned {
        plan,
        problems,
        schemas,
        mut snapshot,
    } = tokio::select! {
        planned = plan(config, options.profile.as_deref().or(target_config.profile.as_deref()), true) => planned?,
        () = options.cancel.cancelled() => return Err(Error::Cancelled),
    };
    if !problems.is_empty() {
        return Err(problems.into());
    }
    let plan = Arc::new(plan);
    let extensions = catalog::extensions_in(snapshot.conn(), &schemas).await?;
    if !extensions.is_empty() {
        return Err(Error::ExtensionInCopiedSchema(extensions));
    }
    let mut session = target.lock(snapshot.identity(), snapshot.marker()).await?;
    for leftover in session.drop_leftover_shadows().await? {
        warn!(schema = %leftover, "dropped a shadow schema left by an earlier run that did not finish");
    }

    let (pre_data, post_data) = tokio::try_join!(
        pg_dump_schema(
            &config.source.url,
            Some(snapshot.id()),
            Section::PreData,
            &schemas
        ),
        pg_dump_schema(
            &config.source.url,
            Some(snapshot.id()),
            Section::PostData,
            &schemas
        ),
    )
    .map_err(postgres::Error::from)?;
    let sequences = catalog::sequences(snapshot.conn(), &schemas).await?;
    let matviews = catalog::populated_matviews(snapshot.conn(), &schemas).await?;
    let map = SchemaMap::new(&schemas);
    let pre_data = rewrite_dump(&pre_data, &map.shadow_names()).map_err(postgres::Error::from)?;
    let post_data = rewrite_dump(&post_data, &map.shadow_names()).map_err(postgres::Error::from)?;
    let fingerprint: String = plan
        .fingerprint
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    info!(tables = plan.tables.len(), schemas = ?schemas, rules_sha256 = %fingerprint,
          "plan complete; building the shadow copy");

    let key = Arc::new(MaskingKey::new(
        config.masking.key.expose_secret().as_bytes(),
    ));
    let before_swap = async {
        options.live.set_phase("copying");
        session.create_shadow(&map, &pre_data).await?;
        let (copied, snapshot) = copy_all(
            Arc::clone(&plan),
            snapshot,
            &target,
            &map,
            Arc::clone(&key),
            options,
        )
        .await?;
        // Without a leak check nothing reads the source any more: release its locks now.
        let snapshot = if target_config.verify {
            Some(snapshot)
        } else {
            snapshot.close().await?;
            None
        };
        session.set_sequences(&map, &sequences).await?;
        info!("data loaded; building indexes and constraints");
        options.live.set_phase("indexing");
        session.post_data(post_data, options.jobs).await?;

        info!("checking the shadow: row counts, NOT VALID constraints, sequences");
        options.live.set_phase("checking");
        let checking = Instant::now();
        let mut failures = session
            .check_row_counts(&map, &copied.rows(), options.jobs)
            .await?;
        failures.extend(session.validate_constraints(&map).await?);
        failures.extend(session.check_sequences(&map, &sequences).await?);
        if !failures.is_empty() {
            return Err(Error::Check(failures));
        }
        debug!(
            seconds = checking.elapsed().as_secs_f64(),
            "the shadow passed its checks"
        );

        for (hook, sql) in &hooks {
            info!(hook = %hook.path.display(), "running an after_refresh hook in the shadow");
            target
                .run_hook(&map, sql)
                .await
                .map_err(|e| hook_error(hook, sql, e))?;
        }
        if let Some(snapshot) = snapshot {
            info!("verify = true: checking the shadow for real values before the swap");
            let report = crate::verify::verify_copy(
                &plan,
                &schemas,
                &snapshot,
                &target,
                crate::verify::TargetCopy::Shadow(&map),
                &key,
                &crate::verify::VerifyOptions::default(),
            )
            .await?;
            snapshot.close().await?;
            if !report.is_clean() {
                return Err(Error::Leak(report.leaking_columns()));
            }
        }
        Ok::<_, Error>(copied)
    };
    // Cancelling drops the step in flight (its connections close, aborting any COPY)
    // and then the shadow below; the swap itself is never interrupted.
    let result = tokio::select! {
        copied = before_swap => copied,
        () = options.cancel.cancelled() => Err(Error::Cancelled),
    };
    let result = match result {
        Ok(copied) => {
            options.live.set_phase("swapping");
            session
                .swap(&map, &matviews, target_config.keep_previous > 0)
                .await
                .map(|()| copied)
                .map_err(Error::from)
        }
        Err(error) => Err(error),
    };

    let copied = match result {
        Ok(copied) => copied,
        Err(error) => {
            if let Err(cleanup) = target.discard(&map).await {
                warn!(error = %cleanup, "could not drop the shadow copy; the next run will");
            }
            return Err(error);
        }
    };
    if target_config.keep_previous == 0
        && let Err(error) = session.drop_previous(&map).await
    {
        warn!(%error, "could not drop the replaced copy (keep_previous = 0); the next run will");
    }
    Ok(RefreshSummary {
        target: target_name.to_string(),
        tables: plan.tables.len(),
        rows: copied.total.rows,
        bytes: copied.total.bytes,
        moved: copied.tables,
        rules_fingerprint: plan.fingerprint,
        elapsed: started.elapsed(),
    })
}

/// Names the hook file in its error, with the line and column of the failing statement
/// when PostgreSQL gave its position.
fn hook_error(hook: &HookFile, sql: &str, error: HookError) -> Error {
    let file = hook.path.display().to_string();
    match error {
        HookError::Sql {
            failure,
            position: Some(position),
        } => {
            // PostgreSQL counts characters from 1.
            let byte = sql
                .char_indices()
                .nth(position.saturating_sub(1))
                .map_or(sql.len(), |(i, _)| i);
            Error::Hook {
                hook: Location::from_offset(&hook.path, sql, byte).to_string(),
                problem: failure.to_string(),
            }
        }
        HookError::Database(error) => error.into(),
        other => Error::Hook {
            hook: file,
            problem: other.to_string(),
        },
    }
}

/// What [`copy_all`] moved: the totals, and the rows read per table.
struct Copied {
    total: CopyStats,
    /// Every table of the plan by source name, skipped ones with 0 rows.
    tables: Vec<TableMoved>,
}

impl Copied {
    /// Rows read per table, for the shadow's row-count check.
    fn rows(&self) -> Vec<(TableName, u64)> {
        self.tables
            .iter()
            .map(|t| (t.table.clone(), t.rows))
            .collect()
    }
}

/// Copies every non-skipped table, largest first, on `jobs` workers; each worker keeps
/// one reader (inside the snapshot) and one writer connection for all its tables.
/// Hands the snapshot back when the last worker is done with it.
async fn copy_all(
    plan: Arc<Plan>,
    snapshot: Snapshot,
    target: &Target,
    map: &SchemaMap,
    key: Arc<MaskingKey>,
    options: &RefreshOptions,
) -> Result<(Copied, Snapshot), Error> {
    let snapshot = Arc::new(snapshot);
    let progress = Progress::new(options.progress, Arc::clone(&options.live));
    let mut order: Vec<usize> = (0..plan.tables.len())
        .filter(|&i| !plan.tables[i].skip)
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plan.tables[i].table.size_bytes));
    let workers = options.jobs.max(1).min(order.len());
    let queue: VecDeque<Job> = order
        .into_iter()
        .map(|index| {
            let table = &plan.tables[index];
            Job {
                index,
                shadow: map.shadow_table(&table.table.name),
                transform: table
                    .masks_anything()
                    .then(|| Arc::new(RowTransform::new(table, Arc::clone(&key)))),
                bar: progress.table(&table.table.name.to_string(), table.table.estimated_rows),
            }
        })
        .collect();
    let queue = Arc::new(Mutex::new(queue));
    // The progress lines already say when a table is done.
    let quiet = options.progress;

    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (plan, snapshot, target) = (Arc::clone(&plan), Arc::clone(&snapshot), target.clone());
        let queue = Arc::clone(&queue);
        tasks.spawn(async move {
            let mut reader = snapshot.reader().await?;
            let mut writer = target.connect().await?;
            let mut counts = Vec::new();
            loop {
                let next = queue.lock().await.pop_front();
                let Some(mut job) = next else {
                    return Ok::<_, Error>(counts);
                };
                let table = &plan.tables[job.index];
                let started = Instant::now();
                let stats = copy_table(
                    &mut reader,
                    &mut writer,
                    &job.shadow,
                    table,
                    job.transform.take(),
                    &mut job.bar,
                )
                .await?;
                let seconds = started.elapsed().as_secs_f64();
                if quiet {
                    debug!(table = %table.table.name, rows = stats.rows, bytes = stats.bytes, seconds, "table copied");
                } else {
                    info!(table = %table.table.name, rows = stats.rows, bytes = stats.bytes, seconds, "table copied");
                }
                counts.push((job.index, stats));
            }
        });
    }
    // The first failure ends the run: returning drops the set, which aborts the others.
    let mut total = CopyStats::default();
    let mut tables: Vec<TableMoved> = plan
        .tables
        .iter()
        .map(|t| TableMoved {
            table: t.table.name.clone(),
            rows: 0,
            bytes: 0,
            seconds: 0.0,
        })
        .collect();
    while let Some(done) = tasks.join_next().await {
        for (index, stats) in done?? {
            total.rows += stats.rows;
            total.bytes += stats.bytes;
            tables[index].rows = stats.rows;
            tables[index].bytes = stats.bytes;
        }
    }
    // Every worker has ended, so this is the only handle left.
    let snapshot = Arc::try_unwrap(snapshot).map_err(|_| Error::SnapshotStillShared)?;
    Ok((Copied { total, tables }, snapshot))
}

/// One table waiting for a worker.
struct Job {
    index: usize,
    shadow: TableName,
    transform: Option<Arc<RowTransform>>,
    bar: TableProgress,
}
