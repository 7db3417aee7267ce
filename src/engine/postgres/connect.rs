//! Opening connections with the session settings every lethe connection needs: the same
//! text formats on both ends (so COPY text round-trips), read-only on the source, and
//! the side's timeouts, so that neither end waits forever for the other: the server
//! notices a vanished lethe (`client_connection_check_interval`, TCP keepalives) and
//! ends its sessions, releasing their locks, and lethe gives up on a server that does
//! not answer (`connect_timeout`, `statement_timeout`, `lock_wait`).

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::Error;
use crate::config::Timeouts;

/// How often a busy server session checks that lethe is still connected (PostgreSQL 14+),
/// so a killed run's statements stop, and its locks go, within seconds.
const CLIENT_CHECK_INTERVAL: &str = "2s";
/// Server-side TCP keepalives (idle seconds, interval, probes): a lethe host that vanished
/// without closing its connections (power, network) is noticed in about a minute.
const KEEPALIVES: [(&str, &str); 3] = [
    ("tcp_keepalives_idle", "30"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "3"),
];

/// Which side a connection is for; decides read-only and names the side in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Production: every transaction read-only.
    Source,
    /// Dev or staging.
    Target,
}

impl Side {
    /// The word used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

/// Parsed connection settings for one side; cheap to clone, one per worker connection.
#[derive(Debug, Clone)]
pub struct Endpoint {
    side: Side,
    options: PgConnectOptions,
    timeouts: Timeouts,
}

impl Endpoint {
    /// Parses a URL. The error never repeats the URL, which may hold a password.
    pub fn parse(url: &SecretString, side: Side) -> Result<Self, Error> {
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|_| Error::BadUrl { side: side.name() })?;
        let mut settings = vec![
            ("IntervalStyle", "postgres"),
            // The source's snapshot transaction is idle for the whole copy, by design.
            ("idle_in_transaction_session_timeout", "0"),
            ("standard_conforming_strings", "on"),
            ("client_min_messages", "warning"),
            // Text forms that depend on these must be the same on both ends for kept
            // values to round-trip (money is printed with the session's lc_monetary).
            ("lc_monetary", "C"),
            ("xmloption", "content"),
        ];
        if side == Side::Source {
            settings.push(("default_transaction_read_only", "on"));
            // Row security would silently hide rows from the copy; off, it makes such a
            // read fail loudly instead (as pg_dump does).
            settings.push(("row_security", "off"));
        } else {
            settings.push(("maintenance_work_mem", "256MB"));
            settings.push(("check_function_bodies", "off"));
        }
        settings.extend(KEEPALIVES);
        let options = options
            .application_name("lethe")
            .extra_float_digits(Some(3))
            .statement_cache_capacity(16)
            .disable_statement_logging()
            .options(settings);
        Ok(Self {
            side,
            options,
            timeouts: Timeouts::default(),
        })
    }

    /// The same endpoint with the side's `timeouts` from lethe.toml: `statement_timeout`
    /// and `lock_wait` become the sessions' `statement_timeout` and `lock_timeout`.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The side's timeouts.
    pub fn timeouts_of(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The database name, for messages.
    pub fn database(&self) -> String {
        self.options.get_database().unwrap_or("").to_string()
    }

    /// Opens one connection, within `connect_timeout`, whose server session ends by itself
    /// soon after lethe is gone (PostgreSQL 14+ checks for it during long statements too).
    pub async fn connect(&self) -> Result<PgConnection, Error> {
        let wait = self.timeouts.connect;
        let mut conn = tokio::time::timeout(wait, self.open())
            .await
            .map_err(|_| Error::Connect {
                side: self.side.name(),
                database: self.database(),
                source: super::DbFailure::timed_out(format!(
                    "no answer within {} (connect_timeout)",
                    humantime::format_duration(wait)
                )),
            })??;
        sqlx::query(
            "SELECT set_config(name, $1, false) FROM pg_settings
             WHERE name = 'client_connection_check_interval'",
        )
        .bind(CLIENT_CHECK_INTERVAL)
        .execute(&mut conn)
        .await
        .map_err(Error::query("preparing the session"))?;
        Ok(conn)
    }

    async fn open(&self) -> Result<PgConnection, Error> {
        let statement = self.timeouts.statement.map_or("0".to_owned(), millis);
        // PostgreSQL reads a lock_timeout of 0 as "wait forever": "do not wait" is 1 ms.
        let lock = millis(self.timeouts.lock_wait.max(Duration::from_millis(1)));
        let options = self.options.clone().options([
            ("statement_timeout", statement.as_str()),
            ("lock_timeout", lock.as_str()),
        ]);
        options.connect().await.map_err(|source| Error::Connect {
            side: self.side.name(),
            database: self.database(),
            source: super::redacted(source),
        })
    }
}

/// A duration as PostgreSQL reads a time setting given without a unit: milliseconds.
fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}
