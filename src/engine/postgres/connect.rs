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
    /// The `sslrootcert=` file (or `PGSSLROOTCERT`), to name it when the server's
    /// certificate is not signed by it. A path, never a secret.
    root_cert: Option<String>,
    timeouts: Timeouts,
}

impl Endpoint {
    /// Parses a URL. The error never repeats the URL, which may hold a password.
    pub fn parse(url: &SecretString, side: Side) -> Result<Self, Error> {
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|_| Error::BadUrl { side: side.name() })?;
        let root_cert = url::Url::parse(url.expose_secret())
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| matches!(&**k, "sslrootcert" | "ssl-root-cert" | "ssl-ca"))
                    .map(|(_, v)| v.into_owned())
            })
            .or_else(|| std::env::var("PGSSLROOTCERT").ok());
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
            root_cert,
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
            source: super::redacted(self.explain_tls(source)),
        })
    }

    /// Rewords a refused server certificate so the message says what failed and what to
    /// check, instead of rustls' terse `invalid peer certificate: UnknownIssuer` behind
    /// "the server closed the connection". Such an error is not transient: retrying cannot
    /// fix a certificate. Other errors pass through unchanged.
    fn explain_tls(&self, error: sqlx::Error) -> sqlx::Error {
        let tls = match &error {
            sqlx::Error::Io(e) => e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
            sqlx::Error::Tls(e) => e.downcast_ref::<rustls::Error>(),
            _ => None,
        };
        let Some(tls) = tls else {
            return error;
        };
        let side = self.side.name();
        let host = self.options.get_host();
        let message = match tls {
            rustls::Error::InvalidCertificate(cert) => {
                certificate_problem(cert, side, host, self.root_cert.as_deref())
            }
            other => format!("the TLS handshake with the {side} server ({host}) failed: {other}"),
        };
        sqlx::Error::InvalidArgument(message)
    }
}

/// What a refused server certificate means, in words that say what to fix.
fn certificate_problem(
    error: &rustls::CertificateError,
    side: &str,
    host: &str,
    root_cert: Option<&str>,
) -> String {
    use rustls::CertificateError as E;
    match error {
        E::UnknownIssuer => match root_cert {
            Some(file) => format!(
                "the {side} server's certificate is not signed by the CA in sslrootcert={file}"
            ),
            None => format!(
                "the {side} server's certificate is not signed by a CA this machine trusts; \
                 name the server's CA file with sslrootcert=<file> in the URL"
            ),
        },
        E::NotValidForName => {
            format!("the {side} server's certificate is not valid for host {host}")
        }
        E::NotValidForNameContext { presented, .. } => format!(
            "the {side} server's certificate is not valid for host {host} (it names: {}); \
             connect with a host name the certificate names",
            if presented.is_empty() {
                "nothing".to_owned()
            } else {
                presented
                    .iter()
                    .map(|n| bare_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        E::Expired | E::ExpiredContext { .. } => {
            format!("the {side} server's certificate ({host}) has expired")
        }
        E::NotValidYet | E::NotValidYetContext { .. } => {
            format!("the {side} server's certificate ({host}) is not valid yet (check the clock)")
        }
        E::Revoked => format!("the {side} server's certificate ({host}) is revoked"),
        other => format!("the {side} server's certificate ({host}) was refused: {other}"),
    }
}

/// A presented certificate name without rustls' wrapping: `DnsName("localhost")` is
/// `localhost`, `IpAddress(10.0.0.1)` is `10.0.0.1`.
fn bare_name(name: &str) -> &str {
    name.split_once('(')
        .and_then(|(_, inner)| inner.strip_suffix(')'))
        .map_or(name, |inner| inner.trim_matches('"'))
}

/// A duration as PostgreSQL reads a time setting given without a unit: milliseconds.
fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CertificateError as E;

    #[test]
    fn refused_certificates_say_what_to_fix() {
        let unknown = certificate_problem(&E::UnknownIssuer, "source", "db", Some("/ca.pem"));
        assert_eq!(
            unknown,
            "the source server's certificate is not signed by the CA in sslrootcert=/ca.pem"
        );
        let unknown = certificate_problem(&E::UnknownIssuer, "target", "db", None);
        assert!(
            unknown.contains("name the server's CA file with sslrootcert="),
            "{unknown}"
        );
        let name = certificate_problem(
            &E::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("db")
                    .unwrap_or_else(|e| panic!("{e}"))
                    .to_owned(),
                presented: vec![
                    "DnsName(\"localhost\")".into(),
                    "IpAddress(10.0.0.1)".into(),
                ],
            },
            "source",
            "db",
            None,
        );
        assert!(
            name.starts_with(
                "the source server's certificate is not valid for host db (it names: localhost, \
                 10.0.0.1)"
            ),
            "{name}"
        );
        assert!(certificate_problem(&E::Expired, "source", "db", None).contains("has expired"));
    }

    #[test]
    fn the_root_certificate_is_read_from_the_url() {
        let url =
            SecretString::from("postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem");
        let endpoint = Endpoint::parse(&url, Side::Source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(endpoint.root_cert.as_deref(), Some("/etc/ca.pem"));
    }
}
