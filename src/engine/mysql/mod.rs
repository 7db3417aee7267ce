//! MySQL and MariaDB: one database of a source server copied into one database of a
//! target server, masked on the way.
//!
//! URLs are `mysql://user:password@host:port/database`; the database in the URL is the
//! one copied (source) or replaced (target). Rules for it live in
//! `masking-rules/<database>.toml`, the database name standing where PostgreSQL has a
//! schema.
//!
//! Consistency: the source is read on one connection inside
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY` at REPEATABLE READ, every
//! table in turn, as `mysqldump --single-transaction` does. InnoDB then serves every
//! table as of the same instant without locking anything; writers go on. DDL on the
//! source during a run is not isolated (MySQL's data dictionary is not versioned) and
//! fails the run, which leaves the target untouched. Non-transactional engines (MyISAM)
//! are read as they are at the time of each table's read.
//!
//! Swap: the new copy is built in `<target>_lethe_shadow` on the target server, checked,
//! then moved in with one `RENAME TABLE` statement (atomic across tables), the replaced
//! tables going to `<target>_lethe_prev` (`locked.rs`).

pub mod catalog;
mod copy;
mod dialect;
mod locked;
mod snapshot;
mod split;

pub use copy::{Reader, ShadowWriter};
pub use dialect::MysqlDialect;
pub use locked::LockedTarget;
pub use snapshot::{ShadowSchema, Snapshot};

use std::str::FromStr;

use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlRow};
use sqlx::{ConnectOptions, Connection, MySqlConnection, Row, ValueRef};

use crate::config::Timeouts;
use crate::engine::Engine;
use crate::rows::Cells;

/// Why a MySQL step failed; names the database or the table, never a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL cannot be used.
    #[error("the {side} URL is not a usable mysql:// URL: {problem}")]
    Url {
        /// `source` or `target`.
        side: &'static str,
        /// What is wrong with it (never the password).
        problem: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to the {side} server: {source}")]
    Connect {
        /// `source` or `target`.
        side: &'static str,
        /// The cause.
        source: sqlx::Error,
    },
    /// The server did not answer a connection within `connect_timeout`.
    #[error("cannot connect to the {side} server: no answer within {} (connect_timeout)", humantime::format_duration(*.waited))]
    ConnectTimeout {
        /// `source` or `target`.
        side: &'static str,
        /// How long lethe waited.
        waited: std::time::Duration,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Query {
        /// What lethe was doing, naming the table.
        what: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// The target is the source database: refusing to write to production.
    #[error(
        "refusing to refresh: the target database `{0}` is on the source server and is (or is a work database of) the source database"
    )]
    TargetIsSource(String),
    /// The source's catalog did not answer as expected.
    #[error("{0}")]
    Catalog(String),
}

impl Error {
    /// Wraps a sqlx error with what lethe was doing.
    pub fn query(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let what = what.into();
        move |source| Error::Query { what, source }
    }
}

/// MySQL and MariaDB: one consistent-snapshot reader, a shadow database, one `RENAME
/// TABLE` for the swap.
pub struct Mysql;

impl Engine for Mysql {
    const NAME: &'static str = "MySQL/MariaDB";
    type Snapshot = Snapshot;
    type Reader = Reader;
    type Schema = ShadowSchema;
    type Target = LockedTarget;
    type Writer = ShadowWriter;
    type Batch = Cells;
    const DIALECT: &'static dyn crate::subset::Dialect = &MysqlDialect;
}

/// A server and the database lethe reads or replaces on it.
pub struct Endpoint {
    /// How to reach the server, with no database selected (the target's may not exist yet).
    pub options: MySqlConnectOptions,
    /// The database named in the URL.
    pub database: String,
    side: &'static str,
    timeouts: Timeouts,
}

impl Endpoint {
    /// Reads a `mysql://` URL; `side` names it in errors.
    pub fn parse(url: &SecretString, side: &'static str) -> Result<Self, Error> {
        let bad = |problem: &str| Error::Url {
            side,
            problem: problem.to_owned(),
        };
        let mut url = url::Url::parse(url.expose_secret()).map_err(|e| bad(&e.to_string()))?;
        let database = percent_decode(url.path().trim_start_matches('/'))
            .ok_or_else(|| bad("the database name is not valid percent-encoded UTF-8"))?;
        if database.is_empty() || database.contains('/') {
            return Err(bad(
                "it must name one database: mysql://user@host:port/database",
            ));
        }
        url.set_path("");
        if url.scheme() != "mysql" {
            url.set_scheme("mysql")
                .map_err(|()| bad("cannot read the scheme"))?;
        }
        let options = MySqlConnectOptions::from_str(url.as_str())
            .map_err(|e| bad(&e.to_string()))?
            // `||` keeps its standard meaning in the views and triggers lethe recreates.
            .pipes_as_concat(false)
            .timezone(Some("+00:00".to_owned()))
            // A whole-table read is one long statement by design, not a slow query to report.
            .disable_statement_logging();
        Ok(Self {
            options,
            database,
            side,
            timeouts: Timeouts::default(),
        })
    }

    /// The same endpoint with the side's timeouts from lethe.toml.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The side's timeouts.
    pub fn timeouts_of(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Opens a connection with no database selected (within `connect_timeout`), in a
    /// session that reads and writes values exactly (UTC timestamps, explicit zeros kept
    /// in AUTO_INCREMENT columns) and waits for locks at most `lock_wait`.
    pub async fn connect(&self) -> Result<MySqlConnection, Error> {
        let side = self.side;
        let waited = self.timeouts.connect;
        let mut conn = tokio::time::timeout(waited, MySqlConnection::connect_with(&self.options))
            .await
            .map_err(|_| Error::ConnectTimeout { side, waited })?
            .map_err(|source| Error::Connect { side, source })?;
        // Both lock waits count whole seconds, from 1.
        let lock = self.timeouts.lock_wait.as_secs().max(1);
        exec(
            &mut conn,
            &format!(
                "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', \
                 SESSION lock_wait_timeout = {lock}, SESSION innodb_lock_wait_timeout = {lock}"
            ),
            "setting up the session",
        )
        .await?;
        if let Some(limit) = self.timeouts.statement {
            // MariaDB's name for it (seconds), then MySQL's (milliseconds, SELECTs only).
            let mariadb = format!("SET SESSION max_statement_time = {}", limit.as_secs_f64());
            if exec(&mut conn, &mariadb, "setting statement_timeout")
                .await
                .is_err()
            {
                let mysql = format!("SET SESSION max_execution_time = {}", limit.as_millis());
                exec(&mut conn, &mysql, "setting statement_timeout").await?;
            }
        }
        Ok(conn)
    }
}

/// Decodes `%XX` escapes of a URL path.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Quotes an identifier for MySQL.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `db`.`name`, both quoted.
pub fn qualified(database: &str, name: &str) -> String {
    format!("{}.{}", ident(database), ident(name))
}

/// Quotes a string literal (backslashes escaped: lethe's sessions keep the default
/// `sql_mode`, where a backslash is an escape character).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Marks SQL built from quoted identifiers and literals as safe to send.
pub fn safe(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

/// Runs statements in the text protocol (DDL and session settings cannot be prepared).
pub async fn exec(conn: &mut MySqlConnection, sql: &str, what: &str) -> Result<(), Error> {
    sqlx::raw_sql(safe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .map_err(Error::query(what))?;
    Ok(())
}

/// The bytes of field `i` as the text protocol sends them; `None` for NULL.
pub fn raw_field(row: &MySqlRow, i: usize) -> Result<Option<&[u8]>, sqlx::Error> {
    if row.try_get_raw(i)?.is_null() {
        return Ok(None);
    }
    row.try_get_unchecked::<&[u8], _>(i).map(Some)
}

/// The rows of a query in the text protocol, every field as text (`None` for NULL): the
/// catalog is read this way so that no column type of `information_schema` matters.
pub async fn text_rows(
    conn: &mut MySqlConnection,
    sql: &str,
    what: &str,
) -> Result<Vec<Vec<Option<String>>>, Error> {
    let rows: Vec<MySqlRow> = sqlx::raw_sql(safe(sql.to_owned()))
        .fetch(&mut *conn)
        .try_collect()
        .await
        .map_err(Error::query(what))?;
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    raw_field(row, i).map(|f| f.map(|b| String::from_utf8_lossy(b).into_owned()))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()
        .map_err(Error::query(what))
}

/// One integer from a query (0 when it returns none).
pub(crate) async fn count(conn: &mut MySqlConnection, sql: &str, what: &str) -> Result<u64, Error> {
    let rows = text_rows(conn, sql, what).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Which server this is: `server_uuid` on MySQL, host name and port on MariaDB (which
/// has no server UUID).
pub async fn server_identity(conn: &mut MySqlConnection) -> Result<String, Error> {
    let rows = text_rows(
        conn,
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_uuid', 'hostname', 'port')",
        "identifying the server",
    )
    .await?;
    let get = |name: &str| {
        rows.iter()
            .find(|r| r.first().and_then(|v| v.as_deref()) == Some(name))
            .and_then(|r| r.get(1).cloned().flatten())
    };
    Ok(match get("server_uuid") {
        Some(uuid) => uuid,
        None => format!(
            "{}:{}",
            get("hostname").unwrap_or_default(),
            get("port").unwrap_or_default()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_one_database() {
        let url = SecretString::from("mysql://u:p%40ss@db.example:3307/shop%2Dv2");
        let e = Endpoint::parse(&url, "source").unwrap();
        assert_eq!(e.database, "shop-v2");
        assert_eq!(e.options.get_database(), None);
        assert_eq!(e.options.get_port(), 3307);
        let none = SecretString::from("mysql://u@db.example:3307/");
        assert!(matches!(
            Endpoint::parse(&none, "target"),
            Err(Error::Url { side: "target", .. })
        ));
    }

    #[test]
    fn quoting() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(literal("it's a \\ test"), "'it''s a \\\\ test'");
        assert_eq!(qualified("d", "t"), "`d`.`t`");
    }
}
