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
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SECRET: &str = "hunter2 s3cr3t/@";

    #[test]
    fn password_moves_from_url_to_environment() {
        let conn = Connection::from_url(
            "postgresql://app:hunter2%20s3cr3t%2F%40@db.example:6543/prod?sslmode=require",
        )
        .unwrap();
        assert_eq!(
            conn.dbname,
            "postgresql://app@db.example:6543/prod?sslmode=require"
        );
        assert_eq!(conn.password.as_deref(), Some(SECRET));

        let args = pg_dump_args(
            &conn,
            Some("00000003-0000001B-1"),
            Section::PreData,
            &["public".into()],
        );
        assert!(args.iter().all(|a| !a.contains("hunter2")), "{args:?}");
        assert_eq!(args.last().unwrap(), &format!("--dbname={}", conn.dbname));
        assert!(args.contains(&"--snapshot=00000003-0000001B-1".to_owned()));
        assert!(args.contains(&"--section=pre-data".to_owned()));
        assert!(args.contains(&"--schema=\"public\"".to_owned()));

        let env = conn.env(None);
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("PGPASSWORD"), Some(SECRET.into()));
        assert_eq!(get("PGAPPNAME"), Some("lethe".into()));
        assert_eq!(
            get("PGOPTIONS"),
            Some("-c default_transaction_read_only=on".into())
        );
    }

    #[test]
    fn password_query_parameter_is_removed_too() {
        let conn = Connection::from_url(
            "postgres://h/db?password=hunter2%20s3cr3t%2F%40&application_name=nightly&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            conn.dbname,
            "postgres://h/db?application_name=nightly&connect_timeout=5"
        );
        assert_eq!(conn.password.as_deref(), Some(SECRET));
        let env = conn.env(None);
        assert!(env.iter().all(|(k, _)| k != "PGAPPNAME"), "{env:?}");

        let bare = Connection::from_url("postgres://u@h/db?password=").unwrap();
        assert_eq!(bare.dbname, "postgres://u@h/db");
        assert_eq!(bare.password, None);
        assert!(bare.env(None).iter().all(|(k, _)| k != "PGPASSWORD"));
    }

    #[test]
    fn read_only_survives_options_in_url_and_environment() {
        // libpq ignores PGOPTIONS when the URL has `options`: the setting goes into the URL.
        let conn = Connection::from_url("postgres://h/db?options=-c%20work_mem%3D64MB").unwrap();
        assert_eq!(
            conn.dbname,
            "postgres://h/db?options=-c%20work_mem%3D64MB%20-c%20default_transaction_read_only%3Don"
        );
        assert!(conn.env(None).iter().all(|(k, _)| k != "PGOPTIONS"));

        let conn = Connection::from_url("postgres://h/db").unwrap();
        let env = conn.env(Some("-c statement_timeout=0".into()));
        assert!(env.contains(&(
            "PGOPTIONS".into(),
            "-c statement_timeout=0 -c default_transaction_read_only=on".into()
        )));
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for url in [
            "host=db password=hunter2",
            "mysql://u:hunter2@h/db",
            "postgres://u:hunter2@h:notaport/db",
        ] {
            let err = Connection::from_url(url).err().expect(url).to_string();
            assert!(err.starts_with("bad source URL"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn errors_are_scrubbed() {
        let conn = Connection::from_url("postgres://u:hunter2%20s3cr3t%2F%40@h/db").unwrap();
        assert_eq!(
            conn.scrub("a hunter2 s3cr3t/@ b hunter2%20s3cr3t%2F%40 c"),
            "a ******** b ******** c"
        );
    }

    #[test]
    fn schema_patterns_match_exactly() {
        assert_eq!(exact_pattern("public"), "\"public\"");
        assert_eq!(exact_pattern("We.ird*?"), "\"We.ird*?\"");
        assert_eq!(exact_pattern("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn pg_dump_is_located() {
        let root = std::env::temp_dir().join(format!("lethe_h2_locate_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let exe = |p: &Path| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "#!/bin/sh\n").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        };
        let lib = root.join("lib");
        for v in ["9.6", "13", "15"] {
            exe(&lib.join(v).join("bin/pg_dump"));
        }
        std::fs::create_dir_all(lib.join("16/bin")).unwrap(); // no pg_dump in it
        let empty_path = Some(OsString::from(root.join("nothing")));

        let found = locate_pg_dump(None, empty_path.clone(), &lib).unwrap();
        assert_eq!(found, lib.join("15/bin/pg_dump"));

        exe(&root.join("bin/pg_dump"));
        let path = std::env::join_paths([root.join("nothing"), root.join("bin")]).unwrap();
        let found = locate_pg_dump(None, Some(path), &lib).unwrap();
        assert_eq!(found, root.join("bin/pg_dump"));

        let found = locate_pg_dump(Some("/opt/pg/bin/pg_dump".into()), None, &lib).unwrap();
        assert_eq!(found, PathBuf::from("/opt/pg/bin/pg_dump"));

        let err = locate_pg_dump(None, empty_path, &root.join("missing")).unwrap_err();
        assert!(err.to_string().contains("postgresql-client"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    // ---- against a real server ----------------------------------------------------------

    fn admin_url() -> String {
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    /// psql against `url`, password through the environment; panics with psql's stderr.
    fn psql(url: &str, sql: &str) -> String {
        let conn = Connection::from_url(url).unwrap();
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg(format!("--dbname={}", conn.dbname))
            .args(["-c", sql])
            .envs(conn.password.map(|p| ("PGPASSWORD", p)))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run psql ({e}): install postgresql-client (Debian: apt-get install postgresql-client)")
            });
        assert!(
            out.status.success(),
            "psql failed on {}: {}",
            conn.dbname,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A throwaway database, dropped on drop.
    struct TestDb {
        name: String,
        url: String,
    }

    impl TestDb {
        fn create(tag: &str) -> TestDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let admin = admin_url();
            let conn = Connection::from_url(&admin).expect("DATABASE_URL is a postgres:// URL");
            let probe = Command::new("psql")
                .args(["-X", "-A", "-t", "-c", "select 1"])
                .arg(format!("--dbname={}", conn.dbname))
                .envs(conn.password.clone().map(|p| ("PGPASSWORD", p)))
                .output();
            match probe {
                Ok(out) if out.status.success() => {}
                Ok(out) => panic!(
                    "PostgreSQL is not reachable at {}: {}\nRun the tests with scripts/test (it finds or starts a server), \
                     start PostgreSQL (`pg_ctlcluster 15 main start`), or set DATABASE_URL to a \
                     server where this user may create databases.",
                    conn.dbname,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => panic!(
                    "cannot run psql ({e}): install postgresql-client (Debian: apt-get install \
                     postgresql-client) and start PostgreSQL (`service postgresql start`)"
                ),
            }
            let name = format!(
                "lethe_h2_{tag}_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
            psql(&admin, &format!("CREATE DATABASE {name}"));
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&name);
            TestDb {
                name,
                url: url.to_string(),
            }
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            psql(
                &admin_url(),
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }

    /// `db`'s URL with a password added (ignored under trust auth; used to prove it never
    /// leaks), unless DATABASE_URL already carries one.
    fn url_with_secret(db: &TestDb) -> SecretString {
        let mut url = url::Url::parse(&db.url).unwrap();
        if url.password().is_none() {
            url.set_password(Some("hunter2%20s3cr3t")).unwrap();
        }
        SecretString::from(url.to_string())
    }

    #[tokio::test]
    async fn dumps_exactly_the_schemas_inside_the_snapshot() {
        let db = TestDb::create("dump");
        psql(
            &db.url,
            r#"
            CREATE SCHEMA "We.ird*";
            CREATE TABLE "We.ird*".kept (id serial PRIMARY KEY, note text);
            CREATE INDEX kept_note ON "We.ird*".kept (note);
            CREATE SCHEMA "We.irdX";
            CREATE TABLE "We.irdX".decoy_wildcard (id int);
            CREATE SCHEMA "we.ird*";
            CREATE TABLE "we.ird*".decoy_case (id int);
            CREATE TABLE public.pub (id int PRIMARY KEY REFERENCES "We.ird*".kept);
            CREATE SCHEMA other;
            CREATE TABLE other.not_asked (id int);
            "#,
        );

        // A transaction on the source exports a snapshot and stays open.
        let conn = Connection::from_url(&db.url).unwrap();
        let mut holder = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg(format!("--dbname={}", conn.dbname))
            .envs(conn.password.clone().map(|p| ("PGPASSWORD", p)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = holder.stdin.take().unwrap();
        stdin
            .write_all(b"BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT pg_export_snapshot();\n")
            .unwrap();
        stdin.flush().unwrap();
        let mut snapshot = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut snapshot)
            .unwrap();
        let snapshot = snapshot.trim().to_owned();
        assert!(!snapshot.is_empty());
        psql(&db.url, "CREATE TABLE public.after_snapshot (id int)");

        let url = url_with_secret(&db);
        let schemas = ["We.ird*".to_owned(), "public".to_owned()];
        let pre = pg_dump_schema(&url, Some(&snapshot), Section::PreData, &schemas)
            .await
            .unwrap();
        assert!(pre.contains("CREATE TABLE \"We.ird*\".kept ("), "{pre}");
        assert!(
            pre.contains("CREATE SEQUENCE \"We.ird*\".kept_id_seq"),
            "{pre}"
        );
        assert!(pre.contains("CREATE TABLE public.pub ("), "{pre}");
        for absent in [
            "decoy_wildcard",
            "decoy_case",
            "not_asked",
            "after_snapshot",
            "PRIMARY KEY",
            "CREATE INDEX",
        ] {
            assert!(!pre.contains(absent), "{absent} in pre-data:\n{pre}");
        }

        let post = pg_dump_schema(&url, Some(&snapshot), Section::PostData, &schemas)
            .await
            .unwrap();
        assert!(
            post.contains("ADD CONSTRAINT kept_pkey PRIMARY KEY (id);"),
            "{post}"
        );
        assert!(
            post.contains("CREATE INDEX kept_note ON \"We.ird*\".kept"),
            "{post}"
        );
        assert!(
            post.contains("FOREIGN KEY (id) REFERENCES \"We.ird*\".kept(id);"),
            "{post}"
        );
        assert!(!post.contains("CREATE TABLE"), "{post}");

        // Without the snapshot, the later table is there.
        let now = pg_dump_schema(&url, None, Section::PreData, &schemas)
            .await
            .unwrap();
        assert!(now.contains("CREATE TABLE public.after_snapshot"), "{now}");

        // Once the exporting transaction ends, the snapshot can't be imported.
        drop(stdin);
        holder.wait().unwrap();
        let err = pg_dump_schema(&url, Some(&snapshot), Section::PreData, &schemas)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DumpError::Failed { .. }), "{msg}");
        assert!(msg.contains("snapshot"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");

        // A schema that doesn't exist is an error, not an empty dump.
        let err = pg_dump_schema(&url, None, Section::PreData, &["nope".to_owned()])
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no matching schemas"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");

        assert!(matches!(
            pg_dump_schema(&url, None, Section::PreData, &[]).await,
            Err(DumpError::NoSchemas)
        ));
    }

    #[test]
    fn the_session_pg_dump_gets_is_read_only() {
        let db = TestDb::create("ro");
        // The same URL handling and environment as pg_dump gets, through psql.
        let conn = Connection::from_url(url_with_secret(&db).expose_secret()).unwrap();
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-c"])
            .arg(
                "SELECT current_setting('default_transaction_read_only') || ' ' || \
                 current_setting('application_name')",
            )
            .arg(format!("--dbname={}", conn.dbname))
            .envs(conn.env(None))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "on lethe");

        let out = Command::new("psql")
            .args(["-X", "-c", "CREATE TABLE public.must_fail (id int)"])
            .arg(format!("--dbname={}", conn.dbname))
            .envs(conn.env(None))
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("read-only transaction"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
