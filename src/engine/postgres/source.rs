//! Production, read-only: one exported snapshot that every reading connection imports,
//! as `pg_dump -j` does, so all tables come from one point in time.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use sqlx::postgres::PgConnection;

use super::catalog::{self, ServerIdentity};
use super::dump::{Section, pg_dump_schema};
use super::dump_rewrite::rewrite_dump;
use super::sql::{column_list, literal, qualified, safe};
use super::{Endpoint, Error, Postgres, Schema, SchemaMap, Side, split};
use crate::catalog::{Column, Table, TableName};
use crate::config::Config;
use crate::engine::{self, Part, Purpose, Refusal, SourceCatalog, Split};

/// A source connection before the snapshot: it marks itself so a target can recognise it,
/// lists what is there, and then becomes the [`Snapshot`].
pub struct SourceSession {
    conn: PgConnection,
    endpoint: Endpoint,
    identity: ServerIdentity,
    marker: String,
}

impl SourceSession {
    /// Connects and sets a unique `application_name` on the session.
    pub async fn connect(endpoint: &Endpoint) -> Result<Self, Error> {
        let mut conn = endpoint.connect().await?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let marker = format!("lethe-source-{}-{nanos}", std::process::id());
        sqlx::query("SELECT set_config('application_name', $1, false)")
            .bind(&marker)
            .execute(&mut conn)
            .await
            .map_err(Error::query("naming the source session"))?;
        let identity = catalog::identity(&mut conn).await?;
        Ok(Self {
            conn,
            endpoint: endpoint.clone(),
            identity,
            marker,
        })
    }

    /// The connection, for catalog queries before the snapshot.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Opens the run's read-only REPEATABLE READ transaction: first ACCESS SHARE locks on
    /// `lock` (as pg_dump does: no DDL can then rename or drop a copied column until the
    /// run ends, waiting at most `lock_wait`), then the snapshot, taken after the locks.
    pub async fn begin_snapshot(
        mut self,
        lock: &[&TableName],
        lock_wait: std::time::Duration,
    ) -> Result<Snapshot, Error> {
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut self.conn)
            .await
            .map_err(Error::query("starting the source snapshot"))?;
        if !lock.is_empty() {
            let list: Vec<String> = lock.iter().map(|t| qualified(t)).collect();
            let sql = format!(
                "SET LOCAL lock_timeout = {}; LOCK TABLE {} IN ACCESS SHARE MODE",
                // 0 would mean "wait forever" to PostgreSQL: "do not wait" is 1 ms.
                literal(&format!("{}ms", lock_wait.as_millis().max(1))),
                list.join(", ")
            );
            sqlx::raw_sql(safe(sql))
                .execute(&mut self.conn)
                .await
                .map_err(Error::query("locking the source tables"))?;
        }
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut self.conn)
            .await
            .map_err(Error::query("exporting the source snapshot"))?;
        Ok(Snapshot {
            conn: self.conn,
            id,
            endpoint: self.endpoint,
            identity: self.identity,
            marker: self.marker,
            schemas: Vec::new(),
        })
    }
}

/// The transaction that exports the run's snapshot. It stays open until the last table is
/// copied (readers import it, and the locks it holds keep DDL away), and its connection
/// answers the catalog queries of the same instant.
pub struct Snapshot {
    conn: PgConnection,
    id: String,
    endpoint: Endpoint,
    identity: ServerIdentity,
    marker: String,
    schemas: Vec<String>,
}

impl Snapshot {
    /// The snapshot's id, for `pg_dump --snapshot`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which database this is, to refuse a target that is the same one.
    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// The unique `application_name` of the exporting session.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The exporting connection, for catalog queries inside the snapshot.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The copied schemas.
    pub fn schemas(&self) -> &[String] {
        &self.schemas
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

    /// Opens the snapshot of the configured schemas. For a refresh the tables are locked
    /// before the snapshot is taken, and a table that appeared in between fails the run
    /// (it would be copied without its lock).
    async fn open_schemas(config: &Config, purpose: Purpose) -> Result<(Self, Vec<Table>), Error> {
        let source =
            Endpoint::parse(&config.source.url, Side::Source)?.timeouts(config.source.timeouts);
        let mut session = SourceSession::connect(&source).await?;
        let all = catalog::user_schemas(session.conn()).await?;
        let schemas = match &config.source.schemas {
            Some(wanted) => {
                if let Some(missing) = wanted.iter().find(|s| !all.contains(s)) {
                    return Err(Error::NoSuchSchema(missing.clone()));
                }
                wanted.clone()
            }
            None => all,
        };
        let lock = matches!(purpose, Purpose::Refresh { .. });
        let listed = if lock {
            catalog::tables(session.conn(), &schemas).await?
        } else {
            Vec::new()
        };
        let locked: Vec<&TableName> = listed.iter().map(|t| &t.name).collect();
        // `lock_wait` (pg_dump's `--lock-wait-timeout`): production DDL must not queue
        // behind the run for longer.
        let wait = config.source.timeouts.lock_wait;
        let mut snapshot = session.begin_snapshot(&locked, wait).await?;
        let tables = catalog::tables(snapshot.conn(), &schemas).await?;
        if lock && let Some(new) = tables.iter().find(|t| !locked.contains(&&t.name)) {
            return Err(Error::SourceChanged(new.name.clone()));
        }
        snapshot.schemas = schemas;
        Ok((snapshot, tables))
    }
}

impl engine::Snapshot<Postgres> for Snapshot {
    async fn open(
        config: &Config,
        purpose: Purpose,
    ) -> Result<(Self, SourceCatalog), engine::Error> {
        let (mut snapshot, tables) = Self::open_schemas(config, purpose).await?;
        let schemas = snapshot.schemas.clone();
        let foreign_keys = catalog::foreign_keys(snapshot.conn(), &schemas).await?;
        Ok((
            snapshot,
            SourceCatalog {
                tables,
                schemas,
                foreign_keys,
            },
        ))
    }

    async fn reachable(config: &Config) -> Result<(), engine::Error> {
        let mut conn = Endpoint::parse(&config.source.url, Side::Source)?
            .connect()
            .await?;
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(Error::query("SELECT 1 on the source"))?;
        Ok(())
    }

    async fn accepts(&mut self, value: &str, column: &Column) -> Result<bool, engine::Error> {
        Ok(catalog::casts_to(self.conn(), value, &column.type_name).await?)
    }

    /// pg_dump's pre-data and post-data of the copied schemas, inside the snapshot,
    /// rewritten into the shadow schemas; the sequences' states and the populated
    /// materialized views. Extensions in a copied schema are refused.
    async fn schema(
        &mut self,
        config: &Config,
        _tables: &[&Table],
    ) -> Result<Schema, engine::Error> {
        let schemas = self.schemas.clone();
        let extensions = catalog::extensions_in(self.conn(), &schemas).await?;
        if !extensions.is_empty() {
            return Err(Error::ExtensionInCopiedSchema(extensions).into());
        }
        let (pre_data, post_data) = tokio::try_join!(
            pg_dump_schema(
                &config.source.url,
                Some(&self.id),
                Section::PreData,
                &schemas
            ),
            pg_dump_schema(
                &config.source.url,
                Some(&self.id),
                Section::PostData,
                &schemas
            ),
        )
        .map_err(Error::from)?;
        let sequences = catalog::sequences(self.conn(), &schemas).await?;
        let matviews = catalog::populated_matviews(self.conn(), &schemas).await?;
        let shadow = SchemaMap::new(&schemas).shadow_names();
        Ok(Schema {
            pre_data: rewrite_dump(&pre_data, &shadow).map_err(Error::from)?,
            post_data: rewrite_dump(&post_data, &shadow).map_err(Error::from)?,
            sequences,
            matviews,
        })
    }

    async fn estimate(
        &mut self,
        table: &Table,
        condition: &str,
    ) -> Result<Result<u64, Refusal>, engine::Error> {
        Ok(catalog::estimate_rows(self.conn(), &table.name, condition).await?)
    }

    /// Ranges of heap pages (`ctid`), partition by partition for a partitioned table.
    async fn split(&mut self, table: &Table, split: Split) -> Result<Vec<Part>, engine::Error> {
        Ok(split::split(self.conn(), table, split).await?)
    }

    fn readers(&self) -> usize {
        usize::MAX
    }

    async fn reader(&self) -> Result<SnapshotReader, engine::Error> {
        Ok(Snapshot::reader(self).await?)
    }

    async fn close(self) -> Result<(), engine::Error> {
        Ok(Snapshot::close(self).await?)
    }
}

/// A connection inside the run's snapshot that streams tables out.
pub struct SnapshotReader {
    pub(super) conn: PgConnection,
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
        self.copy_out_sql(&sql, table).await
    }

    /// Streams the rows of `sql` (a `COPY ... TO STDOUT` that reads `table`), one item
    /// per row.
    pub(super) async fn copy_out_sql(
        &mut self,
        sql: &str,
        table: &TableName,
    ) -> Result<BoxStream<'_, sqlx::Result<Bytes>>, Error> {
        self.conn
            .copy_out_raw(sql)
            .await
            .map_err(Error::query(format!("reading {table}")))
    }
}
