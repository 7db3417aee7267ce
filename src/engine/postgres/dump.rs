//! Runs `pg_dump --schema-only` against the source for the copied schemas' DDL.
//!
//! The password never reaches pg_dump's command line (visible in `ps`) or an error: the URL
//! is parsed, its password moved into the child's `PGPASSWORD`, and the rest passed as
//! `--dbname`. The session is read-only twice over: pg_dump itself runs in a
//! `REPEATABLE READ, READ ONLY` transaction, and `default_transaction_read_only=on` is set
//! through `PGOPTIONS` (or the URL's `options` parameter, which libpq prefers over it).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use secrecy::{ExposeSecret, SecretString};

/// Which half of the schema to dump (`pg_dump --section`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Types, functions, tables (columns, defaults, inline CHECK and NOT NULL), sequences and
    /// `OWNED BY`, identity columns, views and materialized views (`WITH NO DATA`), partition
    /// `ATTACH`, comments.
    PreData,
    /// Primary key, unique, exclusion and foreign key constraints, `NOT VALID` checks, indexes
    /// (and their partition `ATTACH`), triggers, rules, policies and RLS switches, and views
    /// that must wait for a primary key (`CREATE OR REPLACE VIEW`).
    PostData,
}

impl Section {
    /// The `--section` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::PreData => "pre-data",
            Section::PostData => "post-data",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(
        "pg_dump not found (looked at {tried}): install the PostgreSQL client tools, at least \
         the source server's major version (Debian/Ubuntu: `apt-get install postgresql-client`), \
         or set PG_DUMP to the pg_dump binary"
    )]
    NotFound { tried: String },
    #[error("could not run pg_dump ({}): {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pg_dump failed ({status}): {stderr}")]
    Failed { status: ExitStatus, stderr: String },
    #[error("bad source URL (expected postgres://user:password@host:port/dbname): {reason}")]
    BadUrl { reason: String },
    #[error("no schema to dump (pg_dump would dump the whole database)")]
    NoSchemas,
    #[error("pg_dump output is not valid UTF-8")]
    NotUtf8,
}

const READ_ONLY: &str = "-c default_transaction_read_only=on";

/// Runs pg_dump against the source, read-only, inside an exported snapshot, for the given
/// schemas, and returns its plain-text script.
///
/// `snapshot` is the name returned by `pg_export_snapshot()` in a transaction on the same
/// database that must stay open until this returns. Each schema is matched exactly (quoted
/// pattern) and must exist (`--strict-names`).
pub async fn pg_dump_schema(
    source_url: &SecretString,
    snapshot: Option<&str>,
    section: Section,
    schemas: &[String],
) -> Result<String, DumpError> {
    if schemas.is_empty() {
        return Err(DumpError::NoSchemas);
    }
    let conn = Connection::from_url(source_url.expose_secret())?;
    let program = locate_pg_dump(
        std::env::var_os("PG_DUMP"),
        std::env::var_os("PATH"),
        Path::new("/usr/lib/postgresql"),
    )?;
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(pg_dump_args(&conn, snapshot, section, schemas))
        .envs(conn.env(std::env::var_os("PGOPTIONS")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tracing::debug!(
        program = %program.display(),
        section = section.as_str(),
        ?schemas,
        snapshot,
        "running pg_dump"
    );
    let output = cmd.output().await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DumpError::NotFound {
                tried: program.display().to_string(),
            }
        } else {
            DumpError::Spawn {
                path: program.clone(),
                source,
            }
        }
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(DumpError::Failed {
            status: output.status,
            stderr: conn.scrub(stderr.trim()),
        });
    }
    String::from_utf8(output.stdout).map_err(|_| DumpError::NotUtf8)
}

/// pg_dump's arguments; never contains the password.
fn pg_dump_args(
    conn: &Connection,
    snapshot: Option<&str>,
    section: Section,
    schemas: &[String],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--schema-only",
        "--no-owner",
        "--no-privileges",
        "--no-publications",
        "--no-subscriptions",
        "--encoding=UTF8",
        "--strict-names",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.push(format!("--section={}", section.as_str()));
    if let Some(snapshot) = snapshot {
        args.push(format!("--snapshot={snapshot}"));
    }
    for schema in schemas {
        args.push(format!("--schema={}", exact_pattern(schema)));
    }
    args.push(format!("--dbname={}", conn.dbname));
    args
}

/// A pg_dump name pattern that matches exactly `name`: double-quoted, so `.`, `*`, `?` and
/// upper case are literal, with `"` doubled.
fn exact_pattern(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The source URL split into what may be shown (`dbname`) and what may not (`password`).
struct Connection {
    /// The URL without its password (neither in the user info nor as `?password=`).
    dbname: String,
    password: Option<String>,
    /// The password as it appeared in the URL (percent-encoded), for scrubbing.
    password_raw: Option<String>,
    app_name_in_url: bool,
    options_in_url: bool,
}

impl Connection {
    fn from_url(raw: &str) -> Result<Connection, DumpError> {
        let bad = |reason: &str| DumpError::BadUrl {
            reason: reason.to_owned(),
        };
        let mut url = url::Url::parse(raw).map_err(|e| DumpError::BadUrl {
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("the scheme must be postgres:// or postgresql://"));
        }
        let mut password_raw = url.password().map(str::to_owned);
        let mut password = password_raw
            .as_deref()
            .map(percent_decode)
            .transpose()
            .map_err(|()| bad("the password is not valid UTF-8 once percent-decoded"))?;
        if password_raw.is_some() && url.set_password(None).is_err() {
            return Err(bad("cannot remove the password from this URL"));
        }

        // Filter the raw query: re-encoding it with form-urlencoding would turn spaces into
        // `+`, which libpq does not decode.
        let mut app_name_in_url = false;
        let mut options_in_url = false;
        let mut kept: Vec<String> = Vec::new();
        for pair in url
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key).map_err(|()| bad("a parameter is not valid UTF-8"))?;
            match key.as_str() {
                "password" => {
                    password = Some(
                        percent_decode(value)
                            .map_err(|()| bad("the password is not valid UTF-8"))?,
                    );
                    password_raw = Some(value.to_owned());
                }
                "options" => {
                    options_in_url = true;
                    let value = percent_decode(value)
                        .map_err(|()| bad("the options parameter is not valid UTF-8"))?;
                    kept.push(format!(
                        "options={}",
                        percent_encode(&format!("{value} {READ_ONLY}"))
                    ));
                }
                _ => {
                    app_name_in_url |= key == "application_name";
                    kept.push(pair.to_owned());
                }
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.set_query(Some(&kept.join("&")));
        }
        Ok(Connection {
            dbname: url.to_string(),
            password: password.filter(|p| !p.is_empty()),
            password_raw: password_raw.filter(|p| !p.is_empty()),
            app_name_in_url,
            options_in_url,
        })
    }

    /// The child's extra environment. `inherited_options` is the parent's `PGOPTIONS`.
    fn env(&self, inherited_options: Option<OsString>) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD".into(), password.into()));
        }
        if !self.app_name_in_url {
            env.push(("PGAPPNAME".into(), "lethe".into()));
        }
        if !self.options_in_url {
            let options = match inherited_options.filter(|o| !o.is_empty()) {
                Some(mut o) => {
                    o.push(" ");
                    o.push(READ_ONLY);
                    o
                }
                None => READ_ONLY.into(),
            };
            env.push(("PGOPTIONS".into(), options));
        }
        env
    }

    /// `text` with every occurrence of the password replaced.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in [&self.password, &self.password_raw].into_iter().flatten() {
            text = text.replace(secret.as_str(), "********");
        }
        text
    }
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// `PG_DUMP` if set; else `pg_dump` on `PATH`; else the highest
/// `<lib_dir>/<version>/bin/pg_dump` (Debian's `/usr/lib/postgresql/15/bin/pg_dump`).
fn locate_pg_dump(
    pg_dump_env: Option<OsString>,
    path_env: Option<OsString>,
    lib_dir: &Path,
) -> Result<PathBuf, DumpError> {
    if let Some(explicit) = pg_dump_env.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(explicit));
    }
    if let Some(path_env) = &path_env {
        for dir in std::env::split_paths(path_env) {
            let candidate = dir.join("pg_dump");
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(lib_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let candidate = entry.path().join("bin").join("pg_dump");
            is_executable(&candidate).then_some((version, candidate))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, highest)) => Ok(highest),
        None => Err(DumpError::NotFound {
            tried: format!(
                "$PG_DUMP, pg_dump on $PATH, {}/*/bin/pg_dump",
                lib_dir.display()
            ),
        }),
    }
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
#[path = "dump_tests.rs"]
mod tests;
