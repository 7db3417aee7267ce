//! Database engines. Each one reads a consistent snapshot of a source and writes a
//! shadow copy into a target that only a final swap makes live.

pub mod mysql;
pub mod postgres;
pub mod sqlite;
