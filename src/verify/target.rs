//! Which copy in the target database `verify` reads: the live schemas users see, or the
//! shadow schemas of a refresh before its swap, so that a leak can block the swap; and
//! the read-only sessions it reads them in.

use sqlx::postgres::PgConnection;

use super::VerifyError as Error;
use crate::catalog::TableName;
use crate::engine::postgres::{self, SchemaMap, Target};

/// Which copy in the target database to read: `lethe verify` checks what users see, a
/// refresh checks its shadow before users can see it.
#[derive(Debug, Clone, Copy)]
pub enum TargetCopy<'a> {
    /// The live schemas, as users see them (what `lethe verify` reads).
    Live,
    /// The shadow schemas of a refresh that has not swapped yet, so that a leak can
    /// block the swap.
    Shadow(&'a SchemaMap),
}

impl TargetCopy<'_> {
    /// Where a source table is in this copy, so that each planned table is compared with
    /// its own copy.
    pub fn table(&self, table: &TableName) -> TableName {
        match self {
            TargetCopy::Live => table.clone(),
            TargetCopy::Shadow(map) => map.shadow_table(table),
        }
    }

    /// Where a source schema is in this copy.
    pub(super) fn schema(&self, schema: &str) -> String {
        self.table(&TableName::new(schema, "")).schema
    }
}

/// Opens a target session in which every transaction is read-only: a check must never
/// change what it checks.
pub(super) async fn open_target(target: &Target) -> Result<PgConnection, Error> {
    let mut conn = target.connect().await?;
    sqlx::raw_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(postgres::Error::query("opening a read-only target session"))?;
    Ok(conn)
}
