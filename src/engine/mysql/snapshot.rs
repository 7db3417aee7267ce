//! The source database at one instant: one connection inside `START TRANSACTION WITH
//! CONSISTENT SNAPSHOT, READ ONLY` at REPEATABLE READ, which reads every table in turn
//! (as `mysqldump --single-transaction` does) and answers the pre-swap checks' questions
//! about the source from the same instant.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::catalog::{self, Schema};
use super::{
    Endpoint, Error, Mysql, Reader, exec, ident, literal, qualified, safe, server_identity,
    text_rows,
};
use crate::catalog::{Column, Table};
use crate::config::Config;
use crate::engine::{self, Purpose, Refusal, SourceCatalog};

/// The source's snapshot.
pub struct Snapshot {
    pub(super) conn: Arc<Mutex<sqlx::MySqlConnection>>,
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

impl engine::Snapshot<Mysql> for Snapshot {
    async fn open(
        config: &Config,
        _purpose: Purpose,
    ) -> Result<(Self, SourceCatalog), engine::Error> {
        let source =
            Endpoint::parse(&config.source.url, "source")?.timeouts(config.source.timeouts);
        let mut conn = source.connect().await?;
        let server = server_identity(&mut conn).await?;
        exec(
            &mut conn,
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "starting the source snapshot",
        )
        .await?;
        exec(
            &mut conn,
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            "starting the source snapshot",
        )
        .await?;
        let tables = catalog::tables(&mut conn, &source.database).await?;
        let foreign_keys = catalog::foreign_keys(&mut conn, &source.database)
            .await?
            .iter()
            .map(|key| key.in_catalog(&source.database))
            .collect();
        let schemas = vec![source.database.clone()];
        Ok((
            Self {
                conn: Arc::new(Mutex::new(conn)),
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

    /// One: the snapshot lives in one connection's transaction.
    fn readers(&self) -> usize {
        1
    }

    async fn reader(&self) -> Result<Reader, engine::Error> {
        Ok(Reader {
            conn: Arc::clone(&self.conn),
            database: self.database.clone(),
        })
    }

    async fn close(self) -> Result<(), engine::Error> {
        let mut conn = self.conn.lock().await;
        exec(&mut conn, "COMMIT", "closing the source snapshot").await?;
        Ok(())
    }
}

impl Snapshot {
    /// Runs a query of one integer inside the snapshot (a pre-swap check's count).
    pub(super) async fn count(&self, sql: &str, what: &str) -> Result<u64, Error> {
        super::count(&mut *self.conn.lock().await, sql, what).await
    }
}
