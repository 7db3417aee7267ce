//! Production, read-only: one exported snapshot that every reading connection imports,
//! as `pg_dump -j` does, so all tables come from one point in time.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use sqlx::postgres::PgConnection;

use super::catalog::{self, ServerIdentity};
use super::sql::{column_list, literal, qualified, safe};
use super::{Endpoint, Error};
use crate::catalog::TableName;

/// The transaction that exports the run's snapshot. It stays open until every reader has
/// imported it, and its connection answers the catalog queries of the same instant.
pub struct Snapshot {
    conn: PgConnection,
    id: String,
    endpoint: Endpoint,
    identity: ServerIdentity,
}

impl Snapshot {
    /// Opens a read-only REPEATABLE READ transaction and exports its snapshot.
    pub async fn open(endpoint: &Endpoint) -> Result<Self, Error> {
        let mut conn = endpoint.connect().await?;
        let identity = catalog::identity(&mut conn).await?;
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(Error::query("starting the source snapshot"))?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .map_err(Error::query("exporting the source snapshot"))?;
        Ok(Self {
            conn,
            id,
            endpoint: endpoint.clone(),
            identity,
        })
    }

    /// The snapshot's id, for `pg_dump --snapshot`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which database this is, to refuse a target that is the same one.
    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// The exporting connection, for catalog queries inside the snapshot.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Takes ACCESS SHARE locks on `tables` for the rest of the run, as pg_dump does, so
    /// no DDL can change them between the snapshot and the last row read.
    pub async fn lock_tables(&mut self, tables: &[&TableName]) -> Result<(), Error> {
        if tables.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = tables.iter().map(|t| qualified(t)).collect();
        let sql = format!("LOCK TABLE {} IN ACCESS SHARE MODE", list.join(", "));
        sqlx::raw_sql(safe(sql))
            .execute(&mut self.conn)
            .await
            .map_err(Error::query("locking the source tables"))?;
        Ok(())
    }

    /// Opens another connection that sees exactly this snapshot.
    pub async fn reader(&self) -> Result<SnapshotReader, Error> {
        let mut conn = self.endpoint.connect().await?;
        let sql = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            literal(&self.id)
        );
        sqlx::raw_sql(safe(sql))
            .execute(&mut conn)
            .await
            .map_err(Error::query("importing the source snapshot"))?;
        Ok(SnapshotReader { conn })
    }

    /// Ends the read-only transaction.
    pub async fn close(mut self) -> Result<(), Error> {
        sqlx::raw_sql("COMMIT")
            .execute(&mut self.conn)
            .await
            .map_err(Error::query("closing the source snapshot"))?;
        Ok(())
    }
}

/// A connection inside the run's snapshot that streams tables out.
pub struct SnapshotReader {
    conn: PgConnection,
}

impl SnapshotReader {
    /// Streams `columns` of `table` as COPY text, one item per row. A partitioned table is
    /// read with all its partitions; an ordinary one without inheritance children (they
    /// are copied on their own).
    pub async fn copy_out(
        &mut self,
        table: &TableName,
        columns: &[&str],
        partitioned: bool,
    ) -> Result<BoxStream<'_, sqlx::Result<Bytes>>, Error> {
        let only = if partitioned { "" } else { "ONLY " };
        let sql = format!(
            "COPY (SELECT {} FROM {only}{}) TO STDOUT",
            column_list(columns.iter().copied()),
            qualified(table)
        );
        self.conn
            .copy_out_raw(&sql)
            .await
            .map_err(Error::query(format!("reading {table}")))
    }
}
