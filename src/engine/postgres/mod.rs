//! PostgreSQL, the first-class engine: an exported snapshot read over `COPY ... TO STDOUT`
//! on the source, shadow schemas loaded with `COPY ... FROM STDIN` on the target, and an
//! `ALTER SCHEMA ... RENAME` swap.

mod build_order;
pub mod catalog;
mod checks;
pub mod connect;
mod copy;
mod dialect;
pub mod dump;
pub mod dump_rewrite;
mod early_builds;
pub mod error;
mod foreign_keys;
mod hook;
mod locked;
mod schema_map;
mod side_by_side;
pub mod source;
mod split;
pub mod sql;
mod swap;
pub mod target;
#[cfg(test)]
mod test_db;
mod wire;

pub use connect::{Endpoint, Side};
pub use copy::ShadowWriter;
pub use dialect::PgDialect;
pub use error::{DbFailure, Error, redacted};
pub use locked::{LockedTarget, Schema};
pub use schema_map::SchemaMap;
pub use source::{Snapshot, SnapshotReader, SourceSession};
pub use target::{Target, TargetSession};

use crate::engine::Engine;
use crate::rows::CopyRows;

/// PostgreSQL: COPY streams, shadow schemas, one swap transaction.
pub struct Postgres;

impl Engine for Postgres {
    const NAME: &'static str = "PostgreSQL";
    type Snapshot = Snapshot;
    type Reader = SnapshotReader;
    type Schema = Schema;
    type Target = LockedTarget;
    type Writer = ShadowWriter;
    type Batch = CopyRows;
    const DIALECT: &'static dyn crate::subset::Dialect = &PgDialect;
}
