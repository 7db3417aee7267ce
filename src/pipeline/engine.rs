//! One contract for every engine: plan a source's schema against the rules, and refresh
//! a target of the same engine from it. The CLI and the daemon speak only to this, so an
//! engine is added by implementing [`Engine`], naming it in [`of`], and adding it to the
//! conformance tests (`tests/conformance.rs`), which hold every engine to the same
//! promises.
//!
//! The contract sits at the level the engines really share. Below it their mechanics
//! differ too much for a common row interface to pay off: PostgreSQL streams COPY text
//! through [`RowTransform::apply`](super::transform::RowTransform::apply) on worker
//! pools, SQLite and MySQL read typed rows on one connection and mask them through
//! [`RowTransform::apply_values`](super::transform::RowTransform::apply_values). The
//! rules, the plan, the maskers and the stand-ins are the same for all.

use futures_util::future::BoxFuture;

use super::refresh::{PlanOnly, RefreshOptions};
use super::{Error, mysql_refresh, refresh, sqlite_refresh};
use crate::config::{Config, TargetConfig};
use crate::engine::{mysql, sqlite};
use crate::report::RefreshSummary;
use crate::rules::RuleSet;

/// What every engine does.
pub trait Engine: Send + Sync {
    /// The engine's name, for messages.
    fn name(&self) -> &'static str;

    /// Matches the source's tables to `rules`, writing nothing.
    fn plan<'a>(
        &'a self,
        config: &'a Config,
        rules: &'a RuleSet,
    ) -> BoxFuture<'a, Result<PlanOnly, Error>>;

    /// Refreshes the target `target` (its config: `target_config`) from the source:
    /// fail closed before anything is written, built beside the live copy, swapped in
    /// whole or not at all.
    fn refresh<'a>(
        &'a self,
        config: &'a Config,
        target: &'a str,
        target_config: &'a TargetConfig,
        options: &'a RefreshOptions,
    ) -> BoxFuture<'a, Result<RefreshSummary, Error>>;
}

/// The engine of the config's source, by its URL's scheme.
pub fn of(config: &Config) -> &'static dyn Engine {
    if sqlite::is_sqlite_url(&config.source.url) {
        &Sqlite
    } else if mysql::is_mysql_url(&config.source.url) {
        &Mysql
    } else {
        &Postgres
    }
}

/// PostgreSQL: COPY streams, shadow schemas, one swap transaction.
struct Postgres;

impl Engine for Postgres {
    fn name(&self) -> &'static str {
        "PostgreSQL"
    }

    fn plan<'a>(
        &'a self,
        config: &'a Config,
        rules: &'a RuleSet,
    ) -> BoxFuture<'a, Result<PlanOnly, Error>> {
        Box::pin(refresh::plan_postgres(config, rules))
    }

    fn refresh<'a>(
        &'a self,
        config: &'a Config,
        target: &'a str,
        target_config: &'a TargetConfig,
        options: &'a RefreshOptions,
    ) -> BoxFuture<'a, Result<RefreshSummary, Error>> {
        Box::pin(refresh::refresh_postgres(
            config,
            target,
            target_config,
            options,
        ))
    }
}

/// SQLite: one read transaction, a file built beside the live one and renamed over it.
struct Sqlite;

impl Engine for Sqlite {
    fn name(&self) -> &'static str {
        "SQLite"
    }

    fn plan<'a>(
        &'a self,
        config: &'a Config,
        rules: &'a RuleSet,
    ) -> BoxFuture<'a, Result<PlanOnly, Error>> {
        Box::pin(async move {
            let (plan, problems) = sqlite_refresh::plan(config, rules).await?;
            Ok(PlanOnly {
                plan,
                problems,
                schemas: vec![sqlite::catalog::SCHEMA.to_owned()],
            })
        })
    }

    fn refresh<'a>(
        &'a self,
        config: &'a Config,
        target: &'a str,
        target_config: &'a TargetConfig,
        options: &'a RefreshOptions,
    ) -> BoxFuture<'a, Result<RefreshSummary, Error>> {
        Box::pin(sqlite_refresh::refresh(
            config,
            target,
            target_config,
            options,
        ))
    }
}

/// MySQL and MariaDB: one consistent-snapshot reader, a shadow database, one `RENAME
/// TABLE` for the swap.
struct Mysql;

impl Engine for Mysql {
    fn name(&self) -> &'static str {
        "MySQL/MariaDB"
    }

    fn plan<'a>(
        &'a self,
        config: &'a Config,
        rules: &'a RuleSet,
    ) -> BoxFuture<'a, Result<PlanOnly, Error>> {
        Box::pin(async move {
            let (plan, problems) = mysql_refresh::plan(config, rules).await?;
            let source = mysql::Endpoint::parse(&config.source.url, "source")?;
            Ok(PlanOnly {
                plan,
                problems,
                schemas: vec![source.database],
            })
        })
    }

    fn refresh<'a>(
        &'a self,
        config: &'a Config,
        target: &'a str,
        target_config: &'a TargetConfig,
        options: &'a RefreshOptions,
    ) -> BoxFuture<'a, Result<RefreshSummary, Error>> {
        Box::pin(mysql_refresh::refresh(
            config,
            target,
            target_config,
            options,
        ))
    }
}
