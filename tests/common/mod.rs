//! Shared test support: a real PostgreSQL from `DATABASE_URL` (default the local server),
//! a database per test that is dropped afterwards, and a way to run the `lethe` binary.

#![allow(dead_code)]

pub mod child;
pub mod cluster;
pub mod mysql;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection, Row};

/// The server tests may create and drop databases on.
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).unwrap_or_else(|e| panic!("DATABASE_URL is not a URL: {e}"));
    url.set_path(&format!("/{database}"));
    url.to_string()
}

async fn connect_admin() -> PgConnection {
    let url = admin_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at DATABASE_URL (or 127.0.0.1:5432): {e}\n\
             start it (Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start),\n\
             or run the tests with `scripts/test`, which starts a throwaway server"
        )
    })
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database that exists for one test and is dropped when the value goes out of scope.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// A URL that reaches it.
    pub url: String,
}

impl TestDb {
    /// Creates an empty database with a unique name.
    pub async fn create(tag: &str) -> Self {
        let name = format!(
            "lethe_t_{tag}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = connect_admin().await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = with_database(&admin_url(), &name);
        Self { name, url }
    }

    /// Opens a connection to it.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name))
    }

    /// Runs SQL (several statements allowed).
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.connect().await;
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("SQL failed on {}: {e}\n{sql}", self.name));
    }

    /// The rows of a query, every value cast to text by the caller's SQL.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let mut conn = self.connect().await;
        let rows = sqlx::query(AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("query failed on {}: {e}\n{sql}", self.name));
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<Option<String>, _>(i))
                    .collect()
            })
            .collect()
    }

    /// The first column of a query's rows.
    pub async fn column(&self, sql: &str) -> Vec<Option<String>> {
        self.rows(sql)
            .await
            .into_iter()
            .map(|mut r| r.remove(0))
            .collect()
    }

    /// One md5 over `expr` of every row `t` of `table` in `order`: equal digests, equal
    /// tables, row by row.
    pub async fn md5_of(&self, expr: &str, table: &str, order: &str) -> String {
        let sql = format!("SELECT md5(string_agg({expr}, '|' ORDER BY {order})) FROM {table} t");
        self.column(&sql)
            .await
            .into_iter()
            .flatten()
            .next()
            .unwrap_or_default()
    }

    /// The digest of `table`'s whole rows in `order`.
    pub async fn digest(&self, table: &str, order: &str) -> String {
        self.md5_of("t::text", table, order).await
    }

    /// One integer.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.connect().await;
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("query failed on {}: {e}\n{sql}", self.name))
    }

    /// A table's whole content as `COPY ... TO STDOUT` bytes, rows sorted.
    pub async fn copy_out(&self, query: &str) -> Vec<u8> {
        use futures_util::TryStreamExt;
        let mut conn = self.connect().await;
        let stream = conn
            .copy_out_raw(&format!("COPY ({query}) TO STDOUT"))
            .await
            .unwrap_or_else(|e| panic!("COPY failed: {e}"));
        let mut rows: Vec<Vec<u8>> = stream
            .map_ok(|b| b.to_vec())
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("COPY failed: {e}"));
        rows.sort();
        rows.concat()
    }

    /// Runs a psql script file against it (the bench dataset needs psql's meta-commands).
    pub fn psql_file(&self, file: &Path, vars: &[(&str, &str)]) {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-f"])
            .arg(file);
        for (k, v) in vars {
            cmd.args(["-v", &format!("{k}={v}")]);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql (install postgresql-client): {e}"));
        assert!(
            out.status.success(),
            "psql -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = admin_url();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&url).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// A folder with a `lethe.toml` and a `masking-rules/` for one test.
pub struct Workspace {
    dir: tempfile::TempDir,
}

/// A test masking key (only ever used on synthetic data).
pub const KEY: &str = "test-masking-key-0123456789";

impl Workspace {
    /// Writes a config for `source` -> target `dev` with `key`, and the rules files given
    /// as (schema, toml text).
    pub fn new(source: &TestDb, dev: &TestDb, key: &str, rules: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let config = format!(
            "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n[targets.dev]\nurl = \"{}\"\n\n[masking]\nkey = \"{key}\"\n",
            dev.url
        );
        std::fs::write(dir.path().join("lethe.toml"), config).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("masking-rules")).unwrap_or_else(|e| panic!("{e}"));
        let ws = Self { dir };
        for (schema, text) in rules {
            ws.write_rules(schema, text);
        }
        // The source URL goes through ${ENV}, as a real deployment's would.
        ws.set_source(source);
        ws
    }

    fn set_source(&self, source: &TestDb) {
        self.set_source_url(&source.url);
    }

    /// Points `${LETHE_TEST_SOURCE}` at `url` (a proxy in front of the source, say).
    pub fn set_source_url(&self, url: &str) {
        std::fs::write(self.dir.path().join("source.url"), url).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Replaces one schema's rules file.
    pub fn write_rules(&self, schema: &str, text: &str) {
        let path = self
            .dir
            .path()
            .join("masking-rules")
            .join(format!("{schema}.toml"));
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Replaces lethe.toml.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The config file's path.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("lethe.toml")
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The source URL lethe reads through `${LETHE_TEST_SOURCE}`.
    pub fn source_url(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("source.url"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `lethe --config <this> <args>` in the background, paused at `pause_at` if
    /// given (see [`child::Lethe`]); `tag` names its output files.
    pub fn spawn(&self, args: &[&str], pause_at: Option<&str>, tag: &str) -> child::Lethe {
        let source = self.source_url();
        child::Lethe::spawn(
            &self.config(),
            args,
            &[("LETHE_TEST_SOURCE", source.as_str())],
            pause_at,
            tag,
        )
    }

    /// Runs `lethe --config <this> <args>`.
    pub fn lethe(&self, args: &[&str]) -> Output {
        let source = std::fs::read_to_string(self.dir.path().join("source.url"))
            .unwrap_or_else(|e| panic!("{e}"));
        Command::new(env!("CARGO_BIN_EXE_lethe"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("LETHE_TEST_SOURCE", source)
            .env("LETHE_LOG", "lethe=info")
            .output()
            .unwrap_or_else(|e| panic!("cannot run lethe: {e}"))
    }
}

/// Asserts an exit code and returns (stdout, stderr) for further checks.
pub fn expect_exit(out: &Output, code: i32) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "lethe exited {:?}, expected {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status.code()
    );
    (stdout, stderr)
}

/// A database holding the bench dataset (`benches/data/gen_prod.sql`) at `scale`, and
/// the shipped rules for it (`masking-rules/bench/public.toml`).
pub async fn bench_source(tag: &str, scale: &str) -> (TestDb, String) {
    let source = TestDb::create(tag).await;
    source.psql_file(
        &repo().join("benches/data/gen_prod.sql"),
        &[("scale", scale)],
    );
    let rules = std::fs::read_to_string(repo().join("masking-rules/bench/public.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    (source, rules)
}

/// The repository's root, for the shipped rules and bench dataset.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
