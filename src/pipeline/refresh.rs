//! A whole run, step by step, for every engine: plan inside the source's snapshot (fail
//! closed before anything is written), lock the target, build the shadow beside the live
//! copy, copy every table through the masking stage, complete and check the shadow, run
//! the hooks and the leak check, swap. The live copy is untouched until the swap, and
//! the shadow is dropped on any failure.

use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;
use tracing::{debug, info, warn};

use super::Error;
use super::copy::{Idle, copy_all};
use super::leak_check::{self, LeakCheck};
use super::options::RefreshOptions;
use super::pause;
use super::planned::{Planned, planned};
use super::subsetting::subset_plan;
use crate::config::{Config, ConfigError, ConfigErrors, HookFile, Location, TargetConfig};
use crate::engine::{
    self, Engine, Holder, HookError, Kind, Purpose, Snapshot, Target, with_engine,
};
use crate::mask::MaskingKey;
use crate::plan::Maskable;
use crate::report::RefreshSummary;
use crate::rules::RuleSet;

/// Refreshes the target named `target_name` from the source, on the source's engine.
pub async fn refresh(
    config: &Config,
    target_name: &str,
    options: &RefreshOptions,
) -> Result<RefreshSummary, Error> {
    let target = config.target(target_name).map_err(ConfigErrors::from)?;
    let kind = Kind::of(&config.source.url);
    if Kind::of(&target.url) != kind {
        return Err(ConfigErrors::from(ConfigError::in_file(
            &config.file,
            format!(
                "target `{target_name}`: a {0} source refreshes {0} targets only",
                kind.name()
            ),
        ))
        .into());
    }
    with_engine!(kind, E => refresh_on::<E>(config, target_name, target, options).await)
}

/// [`refresh`] on engine `E`.
async fn refresh_on<E>(
    config: &Config,
    target_name: &str,
    target_config: &TargetConfig,
    options: &RefreshOptions,
) -> Result<RefreshSummary, Error>
where
    E: Engine + LeakCheck,
    E::Batch: Maskable,
{
    let started = Instant::now();
    // Read now: a hook that cannot be read, or cannot run here, stops the run before
    // anything is touched; so does a leak check the engine does not have.
    let hooks: Vec<(&HookFile, String)> = target_config
        .after_refresh
        .iter()
        .map(|hook| hook.read().map(|sql| (hook, sql)))
        .collect::<Result<_, _>>()
        .map_err(ConfigErrors::from)?;
    if !hooks.is_empty() && !<E::Target as Target<E>>::HOOKS {
        return Err(engine::Error::Unsupported {
            engine: E::NAME,
            what: "after_refresh hooks",
        }
        .into());
    }
    if target_config.verify && !E::LEAK_CHECK {
        return Err(leak_check::unsupported::<E>().into());
    }
    let profile = options
        .profile
        .as_deref()
        .or(target_config.profile.as_deref());
    let rules = RuleSet::load(&config.masking.rules_dir, profile)?;

    // 1. The plan, inside the snapshot every table will be read in.
    enter(options, "planning").await;
    let Planned {
        plan,
        problems,
        schemas,
        foreign_keys,
        mut snapshot,
    } = tokio::select! {
        planned = planned::<E>(config, &rules, Purpose::Refresh { readers: options.jobs }) => planned?,
        () = options.cancel.cancelled() => return Err(Error::Cancelled),
    };
    // The subset: its entries and `where`s are checked by the source before anything
    // is written, and every table gets the query of its rows.
    let subset = match subset_plan::<E>(
        config,
        target_name,
        target_config,
        &plan,
        &foreign_keys,
        &mut snapshot,
    )
    .await
    {
        Ok(subset) => subset,
        Err(error) => {
            let _ = snapshot.close().await;
            return Err(error);
        }
    };
    // 2. The target, locked for this run: a target that is the source is refused first,
    // then anything the rules do not cover, before anything is written.
    enter(options, "locking").await;
    let holder = Holder::this_process(options.run.clone());
    let mut target = E::Target::lock(config, target_config, &snapshot, &schemas, &holder).await?;
    if !problems.is_empty() {
        return Err(problems.into());
    }
    let plan = Arc::new(plan);
    let tables: Vec<_> = plan.tables.iter().map(|t| &t.table).collect();
    enter(options, "schema").await;
    let schema = match snapshot.schema(config, &tables).await {
        Ok(schema) => schema,
        Err(error) => {
            let _ = snapshot.close().await;
            return Err(error.into());
        }
    };
    info!(tables = plan.tables.len(), schemas = ?schemas, rules_sha256 = %hex(&plan.fingerprint),
          "plan complete; building the shadow copy");

    let key = Arc::new(MaskingKey::new(
        config.masking.key.expose_secret().as_bytes(),
    ));
    let jobs = options.jobs.max(1);
    let idle = Idle {
        source: config.source.timeouts.idle,
        target: target_config.timeouts.idle,
    };
    let before_swap = async {
        // 3. The shadow, and every table's rows into it.
        target.create_shadow(&schema).await?;
        enter(options, "copying").await;
        let moved = copy_all::<E>(
            &plan,
            subset.as_ref(),
            &mut snapshot,
            &target,
            &key,
            options,
            idle,
        )
        .await?;
        // Nothing reads the source after the copy but the checks of some engines and the
        // leak check: otherwise its locks are released now.
        let source = if <E::Target as Target<E>>::CHECKS_READ_SOURCE || target_config.verify {
            Some(snapshot)
        } else {
            snapshot.close().await?;
            None
        };

        // 4. Indexes, keys, views; then the checks, the hooks and the leak check.
        info!("data loaded; building indexes and constraints");
        enter(options, "indexing").await;
        target.finish_shadow(&schema, jobs).await?;
        info!("checking the shadow before the swap");
        enter(options, "checking").await;
        let checking = Instant::now();
        let copied: Vec<_> = moved.iter().map(|t| (t.table.clone(), t.rows)).collect();
        let failures = target
            .check_shadow(&schema, &copied, source.as_ref(), jobs)
            .await?;
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
                .run_hook(sql)
                .await
                .map_err(|e| hook_error(hook, sql, e))?;
        }
        if let Some(source) = source {
            if target_config.verify {
                info!("verify = true: checking the shadow for real values before the swap");
                let leaking = E::leaking_columns(&plan, &schemas, &source, &target, &key).await?;
                if leaking > 0 {
                    return Err(Error::Leak(leaking));
                }
            }
            source.close().await?;
        }
        Ok::<_, Error>(moved)
    };
    // Cancelling drops the step in flight (its connections close, aborting any copy) and
    // then the shadow below; the swap itself is never interrupted.
    let result = tokio::select! {
        moved = before_swap => moved,
        () = options.cancel.cancelled() => Err(Error::Cancelled),
    };

    // 5. The swap, all or nothing.
    let result = match result {
        Ok(moved) => {
            enter(options, "swapping").await;
            match target.swap(&schema, target_config.keep_previous > 0).await {
                Ok(()) => Ok(moved),
                Err(error) => Err(error.into()),
            }
        }
        Err(error) => Err(error),
    };
    let moved = match result {
        Ok(moved) => moved,
        Err(error) => {
            if let Err(cleanup) = target.discard().await {
                warn!(error = %cleanup, "could not drop the unfinished copy; the next run will");
            }
            return Err(error);
        }
    };
    enter(options, "swapped").await;
    options.live.set_phase("done");
    Ok(RefreshSummary {
        target: target_name.to_string(),
        tables: plan.tables.len(),
        rows: moved.iter().map(|t| t.rows).sum(),
        bytes: moved.iter().map(|t| t.bytes).sum(),
        moved,
        rules_fingerprint: plan.fingerprint,
        elapsed: started.elapsed(),
    })
}

/// Marks the run as in `phase` for those who watch it, and pauses there when a fault test
/// asks for it (`pause.rs`).
async fn enter(options: &RefreshOptions, phase: &'static str) {
    options.live.set_phase(phase);
    pause::at(phase).await;
}

/// Names the hook file in its error, with the line and column of the failing statement
/// when the server gave its position.
fn hook_error(hook: &HookFile, sql: &str, error: HookError) -> Error {
    let file = hook.path.display().to_string();
    match error {
        HookError::Sql {
            failure,
            position: Some(position),
        } => {
            // Positions count characters from 1.
            let byte = sql
                .char_indices()
                .nth(position.saturating_sub(1))
                .map_or(sql.len(), |(i, _)| i);
            Error::Hook {
                hook: Location::from_offset(&hook.path, sql, byte).to_string(),
                problem: failure,
            }
        }
        HookError::Database(error) => error.into(),
        other => Error::Hook {
            hook: file,
            problem: other.to_string(),
        },
    }
}

/// Lower-case hex of a fingerprint, for the log.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
