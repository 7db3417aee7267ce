//! Errors of the PostgreSQL engine, and the redaction that keeps cell values out of them.

use std::fmt;

use sqlx::postgres::PgDatabaseError;

use super::{dump, dump_rewrite};

/// What went wrong talking to PostgreSQL. No variant carries a password or a cell value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL could not be parsed (the URL itself is not repeated: it may hold a password).
    #[error("the {side} database URL is not a valid PostgreSQL URL")]
    BadUrl {
        /// `source` or `target`.
        side: &'static str,
    },
    /// A connection could not be opened.
    #[error("cannot connect to the {side} database `{database}`: {source}")]
    Connect {
        /// `source` or `target`.
        side: &'static str,
        /// The database name.
        database: String,
        /// The cause.
        source: DbFailure,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Query {
        /// What lethe was doing, naming the table or object.
        what: String,
        /// The cause.
        source: DbFailure,
    },
    /// pg_dump could not produce the schema.
    #[error(transparent)]
    Dump(#[from] dump::DumpError),
    /// The schema script could not be mapped onto the shadow schemas.
    #[error(transparent)]
    Rewrite(#[from] dump_rewrite::RewriteError),
    /// The target is the source database: refusing to write to production.
    #[error(
        "refusing to refresh: the target `{database}` is the source database (same server and database)"
    )]
    TargetIsSource {
        /// The database name.
        database: String,
    },
    /// A schema listed in `[source] schemas` does not exist in the source.
    #[error("schema `{0}` (listed in [source] schemas) does not exist in the source")]
    NoSuchSchema(String),
    /// A table appeared between listing the source and locking it: start again.
    #[error("the source schema changed while the run started ({0} is new); run it again")]
    SourceChanged(crate::catalog::TableName),
    /// Extensions live in copied schemas: their objects cannot be rebuilt in a shadow.
    #[error(
        "refusing to refresh: extensions live in copied schemas ({}); install them in a schema of their own (ALTER EXTENSION ... SET SCHEMA extensions) or leave that schema out of [source] schemas",
        .0.iter().map(|(e, s)| format!("{e} in {s}")).collect::<Vec<_>>().join(", ")
    )]
    ExtensionInCopiedSchema(Vec<(String, String)>),
    /// A binary COPY stream did not start with the binary COPY header.
    #[error("reading {0}: the source sent a COPY stream that lethe cannot read")]
    UnreadableCopy(crate::catalog::TableName),
    /// Another run holds the target's lock, and kept it for as long as this run would wait.
    #[error("{0}")]
    Busy(crate::engine::Held),
}

impl Error {
    /// Wraps a sqlx error with what lethe was doing.
    pub fn query(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let what = what.into();
        move |e| Error::Query {
            what,
            source: redacted(e),
        }
    }
}

/// A database error as it may be shown: the SQLSTATE, the message with any quoted value
/// from a data exception taken out, and the table, column and constraint it names.
#[derive(Debug)]
pub struct DbFailure {
    text: String,
    transient: bool,
}

impl fmt::Display for DbFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for DbFailure {}

impl DbFailure {
    /// A worker task that panicked or was cancelled.
    pub fn from_join(error: tokio::task::JoinError) -> Self {
        DbFailure {
            text: format!("worker task ended abnormally: {error}"),
            transient: false,
        }
    }

    /// A server that did not answer in time (a stalled network or proxy): worth a retry.
    pub fn timed_out(text: String) -> Self {
        DbFailure {
            text,
            transient: true,
        }
    }

    /// Whether trying again later may succeed: the connection was refused or dropped, the
    /// server is starting or shutting down, a serialization failure or deadlock.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// SQLSTATEs worth a retry: serialization failure, deadlock, connection exceptions (08),
/// too many connections, and the server shutting down or starting up (57P01-57P03).
fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
    ) || code.starts_with("08")
}

impl Error {
    /// Whether trying again later may succeed (a daemon retries these with backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { source, .. } | Error::Query { source, .. } => source.is_transient(),
            Error::SourceChanged(_) => true,
            _ => false,
        }
    }
}

/// Turns a sqlx error into a [`DbFailure`], dropping cell values.
///
/// PostgreSQL quotes the offending value in data-exception messages (SQLSTATE class 22,
/// e.g. `invalid input syntax for type integer: "..."`) and in the COPY context line; both
/// are cut. DETAIL (which repeats key values) is never shown.
pub fn redacted(error: sqlx::Error) -> DbFailure {
    let Some(db) = error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
    else {
        return match error {
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_) => DbFailure {
                text: format!(
                    "the server closed the connection (was the session terminated or the server \
                     restarted?): {error}"
                ),
                transient: true,
            },
            sqlx::Error::PoolTimedOut => DbFailure {
                text: error.to_string(),
                transient: true,
            },
            _ => DbFailure {
                text: error.to_string(),
                transient: false,
            },
        };
    };
    let code = db.code();
    let mut text = if code.starts_with("22") {
        // Data exceptions put the value after a colon (`...: "abc"`, `...: 0xe9 0x20`).
        let message = db.message();
        redact_quoted(message.split_once(": ").map_or(message, |(head, _)| head))
    } else {
        db.message().to_string()
    };
    text.push_str(&format!(" (SQLSTATE {code}"));
    if let Some(table) = db.table() {
        text.push_str(&format!(", table {table}"));
    }
    if let Some(column) = db.column() {
        text.push_str(&format!(", column {column}"));
    }
    if let Some(constraint) = db.constraint() {
        text.push_str(&format!(", constraint {constraint}"));
    }
    if let Some(place) = db.r#where().and_then(copy_place) {
        text.push_str(&format!(", at {place}"));
    }
    text.push(')');
    DbFailure {
        text,
        transient: transient_code(code),
    }
}

/// Keeps `COPY t, line 5, column c` of a COPY context line and drops the value after it.
fn copy_place(context: &str) -> Option<String> {
    let line = context.lines().find(|l| l.starts_with("COPY "))?;
    let end = line.find(": ").unwrap_or(line.len());
    Some(line[..end].to_string())
}

fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quotes = false;
    for c in message.chars() {
        if c == '"' {
            if in_quotes {
                out.push_str("<redacted>\"");
            } else {
                out.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_cut() {
        assert_eq!(
            redact_quoted("invalid input syntax for type integer: \"4111 1111\""),
            "invalid input syntax for type integer: \"<redacted>\""
        );
        assert_eq!(
            copy_place("COPY customers, line 3, column email: \"a@b.c\"").as_deref(),
            Some("COPY customers, line 3, column email")
        );
    }
}
