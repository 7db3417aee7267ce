//! The source database at one instant: connections inside `START TRANSACTION WITH
//! CONSISTENT SNAPSHOT, READ ONLY` at REPEATABLE READ, which read the tables (as
//! `mysqldump --single-transaction` does) and answer the pre-swap checks' questions about
//! the source from the same instant.
//!
//! Several readers need snapshots of the same instant, which MySQL cannot export from one
//! session to another. They are started together while another session holds `LOCK TABLES
//! ... READ` on every table of the database, as mydumper does: that waits for the
//! transactions writing to those tables to commit and holds new writes back for the few
//! milliseconds it takes, so every snapshot sees the same committed rows. Without the
//! `LOCK TABLES` privilege, or when the lock is not granted within
//! [`LOCK_WAIT_SECONDS`], the run reads with one snapshot, one table after another.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Mutex;
use tracing::{debug, info};

use super::catalog::{self, Schema};
use super::{
    Endpoint, Error, Mysql, Reader, exec, ident, literal, qualified, safe, server_identity,
    text_rows,
};
use crate::catalog::{Column, Table};
use crate::config::Config;
use crate::engine::{self, Part, Purpose, Refusal, SourceCatalog, Split};

/// The longest the snapshot waits for `LOCK TABLES` (writers wait behind it meanwhile)
/// before it gives up on parallel readers.
const LOCK_WAIT_SECONDS: u32 = 5;

/// The source's snapshot.
pub struct Snapshot {
    pub(super) conn: Arc<Mutex<sqlx::MySqlConnection>>,
    /// Further connections whose snapshots began at the same instant, for more readers.
    more: Vec<Arc<Mutex<sqlx::MySqlConnection>>>,
    /// Readers handed out so far.
    handed: AtomicUsize,
    /// The source database.
    pub(super) database: String,
    /// Which server it is on, to refuse a target that is the source.
    pub(super) server: String,
}

/// The source's schema as the shadow is built from it.
pub struct ShadowSchema {
    /// Tables, views, triggers and foreign keys.
    pub objects: Schema,
    /// ` CHARACTER SET .. COLLATE ..` of the source database, for the databases created.
    pub create_options: String,
}

const BEGIN: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

/// Starts the snapshot on `conn`.
async fn begin(conn: &mut sqlx::MySqlConnection) -> Result<(), Error> {
    exec(
        conn,
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "starting the source snapshot",
    )
    .await?;
    exec(conn, BEGIN, "starting the source snapshot").await
}

/// The database's base tables, as they are now.
async fn base_tables(
    conn: &mut sqlx::MySqlConnection,
    database: &str,
) -> Result<Vec<String>, Error> {
    let rows = text_rows(
        conn,
        &format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE'",
            literal(database)
        ),
        "listing the source's tables",
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// Starts the snapshot on `primary` and on `more` new connections at one instant, under
/// `LOCK TABLES ... READ` on `tables` held by another session. `Err`: the lock was not
/// to be had (a privilege, a wait too long); nothing began then.
async fn begin_together(
    source: &Endpoint,
    primary: &mut sqlx::MySqlConnection,
    tables: &[String],
    more: usize,
) -> Result<Vec<sqlx::MySqlConnection>, Error> {
    let mut locker = source.connect().await?;
    exec(
        &mut locker,
        &format!("SET SESSION lock_wait_timeout = {LOCK_WAIT_SECONDS}"),
        "preparing the snapshot lock",
    )
    .await?;
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("{} READ", qualified(&source.database, t)))
        .collect();
    exec(
        &mut locker,
        &format!("LOCK TABLES {}", list.join(", ")),
        "locking the source's tables to start the readers' snapshots together",
    )
    .await?;
    // Opened before the lock is taken would be as good; opened while it is held, each
    // connection's snapshot is of the locked instant.
    let mut readers = Vec::with_capacity(more);
    let started = async {
        begin(primary).await?;
        for _ in 0..more {
            let mut conn = source.connect().await?;
            begin(&mut conn).await?;
            readers.push(conn);
        }
        Ok::<(), Error>(())
    }
    .await;
    // Released even when a snapshot failed to start: closing the session would too.
    exec(
        &mut locker,
        "UNLOCK TABLES",
        "unlocking the source's tables",
    )
    .await?;
    started?;
    Ok(readers)
}

impl engine::Snapshot<Mysql> for Snapshot {
    async fn open(
        config: &Config,
        purpose: Purpose,
    ) -> Result<(Self, SourceCatalog), engine::Error> {
        let source =
            Endpoint::parse(&config.source.url, "source")?.timeouts(config.source.timeouts);
        let mut conn = source.connect().await?;
        let server = server_identity(&mut conn).await?;
        let wanted = match purpose {
            Purpose::Refresh { readers } => readers,
            Purpose::Plan => 1,
        };
        let mut locked = Vec::new();
        let mut more = Vec::new();
        if wanted > 1 {
            locked = base_tables(&mut conn, &source.database).await?;
            if !locked.is_empty() {
                match begin_together(&source, &mut conn, &locked, wanted - 1).await {
                    Ok(started) => more = started,
                    Err(why) => {
                        info!(reason = %why, "reading the source with one snapshot, one table after another");
                        // A failed start may have left the primary's transaction open.
                        exec(&mut conn, "ROLLBACK", "starting the source snapshot").await?;
                    }
                }
            }
        }
        if more.is_empty() {
            begin(&mut conn).await?;
        }
        let tables = catalog::tables(&mut conn, &source.database).await?;
        // A table created after the lock was taken is not in every snapshot alike: read
        // with the primary's alone then, which is consistent by itself.
        if !more.is_empty()
            && let Some(new) = tables.iter().find(|t| !locked.contains(&t.name.name))
        {
            debug!(table = %new.name, "a table appeared while the snapshots began");
            more.clear();
        }
        let foreign_keys = catalog::foreign_keys(&mut conn, &source.database)
            .await?
            .iter()
            .map(|key| key.in_catalog(&source.database))
            .collect();
        let schemas = vec![source.database.clone()];
        Ok((
            Self {
                conn: Arc::new(Mutex::new(conn)),
                more: more.into_iter().map(|c| Arc::new(Mutex::new(c))).collect(),
                handed: AtomicUsize::new(0),
                database: source.database,
                server,
            },
            SourceCatalog {
                tables,
                schemas,
                foreign_keys,
            },
        ))
    }

    async fn reachable(config: &Config) -> Result<(), engine::Error> {
        let mut conn = Endpoint::parse(&config.source.url, "source")?
            .connect()
            .await?;
        exec(&mut conn, "SELECT 1", "SELECT 1 on the source").await?;
        Ok(())
    }

    /// MySQL converts a constant when it writes it (strict mode refuses a bad one then).
    async fn accepts(&mut self, _value: &str, _column: &Column) -> Result<bool, engine::Error> {
        Ok(true)
    }

    async fn schema(
        &mut self,
        _config: &Config,
        tables: &[&Table],
    ) -> Result<ShadowSchema, engine::Error> {
        let mut conn = self.conn.lock().await;
        let conn = &mut *conn;
        let tables: Vec<Table> = tables.iter().map(|t| (*t).clone()).collect();
        let objects = catalog::schema(conn, &self.database, &tables).await?;
        let charset = text_rows(
            conn,
            &format!(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                literal(&self.database)
            ),
            "reading the source database's character set",
        )
        .await?;
        let create_options = match charset.first().map(|r| r.as_slice()) {
            Some([Some(set), Some(collation)]) => {
                format!(" CHARACTER SET {} COLLATE {}", ident(set), ident(collation))
            }
            _ => String::new(),
        };
        Ok(ShadowSchema {
            objects,
            create_options,
        })
    }

    /// Counted exactly: MySQL's `EXPLAIN` has no estimate of a whole condition's rows.
    async fn estimate(
        &mut self,
        table: &Table,
        condition: &str,
    ) -> Result<Result<u64, Refusal>, engine::Error> {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE ({condition}\n)",
            qualified(&self.database, &table.name.name)
        );
        let mut conn = self.conn.lock().await;
        // A prepared statement: one statement, whatever the condition holds.
        match sqlx::query_scalar::<_, i64>(safe(sql))
            .fetch_one(&mut *conn)
            .await
        {
            Ok(rows) => Ok(Ok(u64::try_from(rows).unwrap_or(0))),
            // The condition's own faults: syntax and names (42), values (22, whose
            // message is cut before the value it quotes).
            Err(sqlx::Error::Database(error))
                if error
                    .code()
                    .is_some_and(|c| c.starts_with("42") || c.starts_with("22")) =>
            {
                let message = error.message();
                let message = match error.code() {
                    Some(code) if code.starts_with("22") => {
                        message.split_once(": ").map_or(message, |(head, _)| head)
                    }
                    _ => message,
                };
                Ok(Err(Refusal {
                    message: message.to_string(),
                    offset: None,
                }))
            }
            Err(error) => Err(Error::query("estimating a subset's rows")(error).into()),
        }
    }

    /// Ranges of an integer primary key, read on connections whose snapshots began at
    /// the same instant.
    async fn split(&mut self, table: &Table, split: Split) -> Result<Vec<Part>, engine::Error> {
        let mut conn = self.conn.lock().await;
        Ok(super::split::split(&mut conn, table, split).await?)
    }

    /// One per connection whose snapshot began at the same instant.
    fn readers(&self) -> usize {
        1 + self.more.len()
    }

    async fn reader(&self) -> Result<Reader, engine::Error> {
        let n = self.handed.fetch_add(1, Ordering::Relaxed);
        let conn = match n
            .checked_sub(1)
            .and_then(|i| self.more.get(i % self.more.len().max(1)))
        {
            Some(more) => Arc::clone(more),
            None => Arc::clone(&self.conn),
        };
        Ok(Reader {
            conn,
            database: self.database.clone(),
        })
    }

    async fn close(self) -> Result<(), engine::Error> {
        for conn in std::iter::once(&self.conn).chain(&self.more) {
            exec(
                &mut *conn.lock().await,
                "COMMIT",
                "closing the source snapshot",
            )
            .await?;
        }
        Ok(())
    }
}

impl Snapshot {
    /// Runs a query of one integer inside the snapshot (a pre-swap check's count).
    pub(super) async fn count(&self, sql: &str, what: &str) -> Result<u64, Error> {
        super::count(&mut *self.conn.lock().await, sql, what).await
    }
}
