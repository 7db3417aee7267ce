//! `lethe rollback`: the previous copy of the last refresh swapped back in, in one
//! transaction, under the same lock as a refresh. It needs no source: the target's schema
//! comments record what the last swap moved.

use tracing::warn;

use super::Error;
use crate::config::{Config, ConfigErrors};
use crate::engine::postgres::target::Rollback;
use crate::engine::postgres::{Endpoint, Side, Target};

/// Swaps the previous copy of the target named `target_name` back in; the copy it replaces
/// becomes the previous one, so a second rollback swaps forward again. Returns the schemas
/// that changed places.
pub async fn rollback(config: &Config, target_name: &str) -> Result<Vec<String>, Error> {
    let target_config = config.target(target_name).map_err(ConfigErrors::from)?;
    let target = Target::new(Endpoint::parse(&target_config.url, Side::Target)?);
    let mut session = target.lock_without_source().await?;
    for leftover in session.drop_leftover_shadows().await? {
        warn!(schema = %leftover, "dropped a shadow schema left by an earlier run that did not finish");
    }
    match session.rollback().await? {
        Rollback::Done { schemas } => Ok(schemas),
        Rollback::NeverSwapped => Err(Error::NoRollback(format!(
            "target `{target_name}` (database `{}`) holds no copy made by `lethe refresh`: nothing to roll back",
            target.database()
        ))),
        Rollback::NoPrevious { schemas } => Err(Error::NoRollback(format!(
            "target `{target_name}` has no previous copy to roll back to: the last refresh (of {}) kept none \
             (keep_previous = 0, or lethe_prev_* was dropped); nothing was changed",
            schemas.join(", ")
        ))),
        Rollback::Blocked { schema, reason } => Err(Error::NoRollback(format!(
            "cannot roll back target `{target_name}`: schema `{schema}` is in the way ({reason}); nothing was changed"
        ))),
    }
}
