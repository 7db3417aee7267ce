//! The target locked for one refresh: the session that holds the run lock, the shadow
//! schemas it builds, and the steps of [`engine::Target`] on them.

use std::sync::Arc;

use tracing::warn;

use super::catalog::{SequenceValue, ServerIdentity};
use super::copy::ShadowWriter;
use super::dump_rewrite::DumpStatement;
use super::early_builds::EarlyBuilds;
use super::target::{Target, TargetSession};
use super::{Endpoint, Postgres, SchemaMap, Side, Snapshot};
use crate::catalog::TableName;
use crate::config::{Config, TargetConfig};
use crate::engine::{self, CheckFailure, Holder, HookError, Rollback};

/// The source's schema as the shadow is built from it.
pub struct Schema {
    /// pg_dump's pre-data (types, tables), already in the shadow schemas.
    pub pre_data: Vec<DumpStatement>,
    /// pg_dump's post-data (keys, indexes, FKs, triggers), already in the shadow schemas.
    pub post_data: Vec<DumpStatement>,
    /// Every sequence with its state in the snapshot.
    pub sequences: Vec<SequenceValue>,
    /// Materialized views that hold data in the source: refreshed in the swap.
    pub matviews: Vec<TableName>,
}

/// The target, locked for one run, with the names of its shadow schemas.
pub struct LockedTarget {
    target: Target,
    session: TargetSession,
    map: SchemaMap,
    /// The indexes and keys the writers build as their tables are loaded.
    early: Arc<EarlyBuilds>,
}

impl LockedTarget {
    /// The target's connections, for the leak check of the shadow.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The shadow's schema names.
    pub fn map(&self) -> &SchemaMap {
        &self.map
    }
}

impl engine::Target<Postgres> for LockedTarget {
    const HOOKS: bool = true;
    const CHECKS_READ_SOURCE: bool = false;

    async fn lock(
        _config: &Config,
        target: &TargetConfig,
        source: &Snapshot,
        schemas: &[String],
        holder: &Holder,
    ) -> Result<Self, engine::Error> {
        let target =
            Target::new(Endpoint::parse(&target.url, Side::Target)?.timeouts(target.timeouts));
        let identity: &ServerIdentity = source.identity();
        let mut session = target.lock(identity, source.marker(), holder).await?;
        for leftover in session.drop_leftover_shadows().await? {
            warn!(schema = %leftover, "dropped a shadow schema left by an earlier run that did not finish");
        }
        Ok(Self {
            target,
            session,
            map: SchemaMap::new(schemas),
            early: Arc::default(),
        })
    }

    async fn create_shadow(&mut self, schema: &Schema) -> Result<(), engine::Error> {
        self.early = Arc::new(EarlyBuilds::new(&schema.post_data));
        Ok(self
            .session
            .create_shadow(&self.map, &schema.pre_data)
            .await?)
    }

    fn writers(&self) -> usize {
        usize::MAX
    }

    async fn writer(&self) -> Result<ShadowWriter, engine::Error> {
        let conn = self.target.connect().await?;
        Ok(ShadowWriter::new(
            conn,
            self.map.clone(),
            Arc::clone(&self.early),
        ))
    }

    async fn finish_shadow(&mut self, schema: &Schema, jobs: usize) -> Result<(), engine::Error> {
        self.session
            .set_sequences(&self.map, &schema.sequences)
            .await?;
        self.session
            .post_data(self.early.left_of(&schema.post_data), jobs)
            .await?;
        Ok(self
            .session
            .raise_sequences_to_rows(&self.map, &schema.sequences)
            .await?)
    }

    async fn check_shadow(
        &mut self,
        schema: &Schema,
        copied: &[(TableName, u64)],
        _source: Option<&Snapshot>,
        jobs: usize,
    ) -> Result<Vec<CheckFailure>, engine::Error> {
        let mut failures = self
            .session
            .check_row_counts(&self.map, copied, jobs)
            .await?;
        failures.extend(self.session.validate_constraints(&self.map).await?);
        failures.extend(
            self.session
                .check_sequences(&self.map, &schema.sequences)
                .await?,
        );
        Ok(failures)
    }

    async fn run_hook(&mut self, sql: &str) -> Result<(), HookError> {
        self.target.run_hook(&self.map, sql).await
    }

    async fn swap(&mut self, schema: &Schema, keep_previous: bool) -> Result<(), engine::Error> {
        self.session
            .swap(&self.map, &schema.matviews, keep_previous)
            .await?;
        if !keep_previous && let Err(error) = self.session.drop_previous(&self.map).await {
            warn!(%error, "could not drop the replaced copy (keep_previous = 0); the next run will");
        }
        Ok(())
    }

    async fn discard(&mut self) -> Result<(), engine::Error> {
        Ok(self.target.discard(&self.map).await?)
    }

    async fn rollback(target: &TargetConfig) -> Result<Rollback, engine::Error> {
        let target =
            Target::new(Endpoint::parse(&target.url, Side::Target)?.timeouts(target.timeouts));
        let mut session = target
            .lock_without_source(&Holder::this_process(Some("rollback".into())))
            .await?;
        for leftover in session.drop_leftover_shadows().await? {
            warn!(schema = %leftover, "dropped a shadow schema left by an earlier run that did not finish");
        }
        Ok(session.rollback().await?)
    }
}
