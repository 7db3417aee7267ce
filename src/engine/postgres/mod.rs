//! PostgreSQL, the first-class engine: an exported snapshot read over `COPY ... TO STDOUT`
//! on the source, shadow schemas loaded with `COPY ... FROM STDIN` on the target, and an
//! `ALTER SCHEMA ... RENAME` swap.

pub mod catalog;
pub mod connect;
pub mod copy_text;
pub mod dump;
pub mod dump_rewrite;
pub mod error;
pub mod source;
pub mod sql;
pub mod target;
#[cfg(test)]
mod test_db;

pub use connect::{Endpoint, Side};
pub use error::{DbFailure, Error, redacted};
pub use source::{Snapshot, SnapshotReader, SourceSession};
pub use target::{SchemaMap, Target, TargetSession};
