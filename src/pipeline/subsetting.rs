//! A target's subset made inside the run's snapshot: its entries checked against the
//! source's tables, its `where` conditions checked (and their rows estimated) by the
//! source itself, every table given its query. A problem is a config error that names
//! its place in lethe.toml, found before anything is written.

use std::collections::BTreeMap;

use secrecy::ExposeSecret;

use super::Error;
use crate::catalog::ForeignKey;
use crate::config::{Config, ConfigError, ConfigErrors, TargetConfig};
use crate::engine::{Engine, Snapshot};
use crate::mask::MaskingKey;
use crate::plan::Plan;
use crate::subset::{Resolved, SubsetPlan, sample_seed};

/// The subset of target `name` over `plan`, or `None` when the target gets every row.
pub async fn subset_plan<E: Engine>(
    config: &Config,
    name: &str,
    target: &TargetConfig,
    plan: &Plan,
    keys: &[ForeignKey],
    snapshot: &mut E::Snapshot,
) -> Result<Option<SubsetPlan>, Error> {
    if target.subset.is_empty() && plan.tables.iter().all(|t| t.synthetic.is_none()) {
        return Ok(None);
    }
    let (resolved, mut errors) = Resolved::new(&config.file, name, &target.subset, plan, keys);
    let mut estimates = BTreeMap::new();
    for condition in resolved.conditions() {
        let Some(table) = plan.tables.iter().find(|t| t.table.name == condition.table) else {
            continue;
        };
        match snapshot.estimate(&table.table, &condition.text.sql).await? {
            Ok(rows) => {
                estimates.insert(condition.table.clone(), rows);
            }
            Err(refusal) => errors.push(ConfigError::at(
                condition.text.at(refusal.offset.unwrap_or(0)),
                format!(
                    "target `{name}` subset: {}: the source refuses the `where`: {}",
                    condition.table, refusal.message
                ),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors).into());
    }
    if !resolved.chooses_rows() {
        return Ok(None);
    }
    let key = MaskingKey::new(config.masking.key.expose_secret().as_bytes());
    Ok(Some(resolved.finish(
        E::DIALECT,
        sample_seed(&key),
        &estimates,
    )))
}
