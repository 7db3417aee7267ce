//! `lethe rollback`: the previous copy of the last refresh swapped back in, under the same
//! lock as a refresh, reading no source; the copy it replaces becomes the previous one, so
//! a second rollback swaps forward again.

use super::Error;
use crate::config::{Config, ConfigErrors};
use crate::engine::{Engine, Kind, Rollback, Target, with_engine};

/// Swaps the previous copy of the target named `target_name` back in. Returns the schemas
/// that changed places.
pub async fn rollback(config: &Config, target_name: &str) -> Result<Vec<String>, Error> {
    let target = config.target(target_name).map_err(ConfigErrors::from)?;
    let rolled = with_engine!(Kind::of(&target.url), E => {
        <E as Engine>::Target::rollback(target).await?
    });
    match rolled {
        Rollback::Done { schemas } => Ok(schemas),
        Rollback::NeverSwapped => Err(Error::NoRollback(format!(
            "target `{target_name}` holds no copy made by `lethe refresh`: nothing to roll back"
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
