//! A whole run, step by step (see the README's "How a refresh works"), with the target's live copy untouched
//! until the final swap, and the shadow dropped on any failure.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::Error;
use super::copy::{CopyStats, copy_table};
use super::plan::Plan;
use super::progress::{Progress, TableProgress};
use super::transform::RowTransform;
use crate::catalog::TableName;
use crate::config::Config;
use crate::engine::postgres::dump::{Section, pg_dump_schema};
use crate::engine::postgres::dump_rewrite::rewrite_dump;
use crate::engine::postgres::{
    self, Endpoint, SchemaMap, Side, Snapshot, SourceSession, Target, catalog,
};
use crate::mask::MaskingKey;
use crate::rules::{Rule, RuleSet};

/// How a refresh runs.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// Tables copied at once (and connections per side).
    pub jobs: usize,
    /// Draw per-table progress lines on stderr.
    pub progress: bool,
}

/// What a finished refresh moved.
#[derive(Debug, Clone)]
pub struct RefreshSummary {
    /// The target's name in the config.
    pub target: String,
    /// Tables copied (skipped ones included: they are created empty).
    pub tables: usize,
    /// Rows written.
    pub rows: u64,
    /// COPY text bytes read from the source.
    pub bytes: u64,
    /// Wall time from start to swap.
    pub elapsed: Duration,
}

impl RefreshSummary {
    /// Rows per second over the whole run.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Megabytes (10^6) of COPY text per second over the whole run.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
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
    snapshot: Snapshot,
}

impl Planned {
    /// The snapshot the plan was read in, for reading the source at that same instant.
    pub fn snapshot(&mut self) -> &mut Snapshot {
        &mut self.snapshot
    }
}

/// How long the source's ACCESS SHARE locks wait behind other sessions' DDL before the
/// run gives up (pg_dump's `--lock-wait-timeout`): production DDL must not queue behind us.
const SOURCE_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Loads the rules, reads the source schema in a fresh snapshot and matches the two.
/// With `lock`, the source tables are locked before the snapshot is taken, as a refresh
/// needs; `lethe plan` reads without locking. Writes nothing anywhere.
pub async fn plan(config: &Config, lock: bool) -> Result<Planned, Error> {
    let rules = RuleSet::load(&config.masking.rules_dir)?;
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
    let (plan, mut problems) = Plan::build(tables, &rules);
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
    let started = Instant::now();
    let target_config = config
        .target(target_name)
        .map_err(crate::config::ConfigErrors::from)?;
    let target = Target::new(Endpoint::parse(&target_config.url, Side::Target)?);

    let Planned {
        plan,
        problems,
        schemas,
        mut snapshot,
    } = plan(config, true).await?;
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
    let result = async {
        session.create_shadow(&map, &pre_data).await?;
        let copied = copy_all(
            Arc::clone(&plan),
            Arc::new(snapshot),
            &target,
            &map,
            key,
            options,
        )
        .await?;
        session.set_sequences(&map, &sequences).await?;
        info!("data loaded; building indexes and constraints");
        session.post_data(post_data, options.jobs).await?;
        session.swap(&map, &matviews).await?;
        Ok::<_, Error>(copied)
    }
    .await;

    let copied = match result {
        Ok(copied) => copied,
        Err(error) => {
            if let Err(cleanup) = target.discard(&map).await {
                warn!(error = %cleanup, "could not drop the shadow copy; the next run will");
            }
            return Err(error);
        }
    };
    Ok(RefreshSummary {
        target: target_name.to_string(),
        tables: plan.tables.len(),
        rows: copied.rows,
        bytes: copied.bytes,
        elapsed: started.elapsed(),
    })
}

/// Copies every non-skipped table, largest first, on `jobs` workers; each worker keeps
/// one reader (inside the snapshot) and one writer connection for all its tables.
async fn copy_all(
    plan: Arc<Plan>,
    snapshot: Arc<Snapshot>,
    target: &Target,
    map: &SchemaMap,
    key: Arc<MaskingKey>,
    options: &RefreshOptions,
) -> Result<CopyStats, Error> {
    let progress = Progress::new(options.progress);
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
            let mut total = CopyStats::default();
            loop {
                let next = queue.lock().await.pop_front();
                let Some(mut job) = next else {
                    return Ok::<_, Error>(total);
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
                total.rows += stats.rows;
                total.bytes += stats.bytes;
            }
        });
    }
    // The first failure ends the run: returning drops the set, which aborts the others.
    let mut total = CopyStats::default();
    while let Some(done) = tasks.join_next().await {
        let stats = done??;
        total.rows += stats.rows;
        total.bytes += stats.bytes;
    }
    if let Ok(snapshot) = Arc::try_unwrap(snapshot) {
        snapshot.close().await?;
    }
    Ok(total)
}

/// One table waiting for a worker.
struct Job {
    index: usize,
    shadow: TableName,
    transform: Option<Arc<RowTransform>>,
    bar: TableProgress,
}
