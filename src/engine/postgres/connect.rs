//! Opening connections with the session settings every lethe connection needs: the same
//! text formats on both ends (so COPY text round-trips), and read-only on the source.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::Error;

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
}

impl Endpoint {
    /// Parses a URL. The error never repeats the URL, which may hold a password.
    pub fn parse(url: &SecretString, side: Side) -> Result<Self, Error> {
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|_| Error::BadUrl { side: side.name() })?;
        let mut settings = vec![
            ("IntervalStyle", "postgres"),
            ("statement_timeout", "0"),
            ("lock_timeout", "0"),
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
        let options = options
            .application_name("lethe")
            .extra_float_digits(Some(3))
            .statement_cache_capacity(16)
            .disable_statement_logging()
            .options(settings);
        Ok(Self { side, options })
    }

    /// The database name, for messages.
    pub fn database(&self) -> String {
        self.options.get_database().unwrap_or("").to_string()
    }

    /// Opens one connection.
    pub async fn connect(&self) -> Result<PgConnection, Error> {
        self.options
            .connect()
            .await
            .map_err(|source| Error::Connect {
                side: self.side.name(),
                database: self.database(),
                source: super::redacted(source),
            })
    }
}
