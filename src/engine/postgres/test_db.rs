//! Unit-test support: throwaway databases on a real PostgreSQL, driven through the client
//! programs (`psql`, `pg_dump`) rather than a driver, so the tests see what those see.
//!
//! The server is `DATABASE_URL`, else the local default; a test that can't reach it panics
//! with how to start one (or to run `scripts/test`, which finds or starts one). Every
//! database is dropped when its [`TestDb`] goes out of scope, a failing test's included.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server the tests may create and drop databases on.
pub fn admin_url() -> url::Url {
    let raw = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    url::Url::parse(&raw).expect("DATABASE_URL must be a postgres:// URL")
}

/// `url` without its password, and the password (for `PGPASSWORD`).
fn split(url: &url::Url) -> (String, Option<String>) {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    (shown.to_string(), url.password().map(str::to_owned))
}

/// Runs a PostgreSQL client `program` with `args` against `url`, the password through the
/// environment.
fn try_run(program: &str, url: &url::Url, args: &[&str]) -> std::io::Result<Output> {
    let (dbname, password) = split(url);
    Command::new(program)
        .args(args)
        .arg(format!("--dbname={dbname}"))
        .envs(password.map(|p| ("PGPASSWORD", p)))
        .output()
}

/// [`try_run`], panicking if `program` can't be started.
pub fn run(program: &str, url: &url::Url, args: &[&str]) -> Output {
    try_run(program, url, args).unwrap_or_else(|e| {
        panic!(
            "cannot run {program} ({e}): install the PostgreSQL client \
             (Debian: apt-get install postgresql-client)"
        )
    })
}

/// Runs `sql` through psql, stopping at the first error; panics with psql's stderr.
/// Returns the output, unaligned and tuples only, trimmed.
pub fn psql(url: &url::Url, sql: &str) -> String {
    let out = run(
        "psql",
        url,
        &["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
    );
    assert!(
        out.status.success(),
        "psql failed on {}: {}\n{sql}",
        split(url).0,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Panics with how to get a server unless the one at `admin` answers.
fn probe(admin: &url::Url) {
    let out = try_run("psql", admin, &["-X", "-A", "-t", "-c", "SELECT 1"]);
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "PostgreSQL is not reachable at {}: {}\nRun the tests with scripts/test (it finds or starts a server), \
             start PostgreSQL (`pg_ctlcluster 15 main start`), or set DATABASE_URL to a \
             server where this user may create databases.",
            split(admin).0,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run psql ({e}): install postgresql-client (Debian: apt-get install \
             postgresql-client) and start PostgreSQL (`service postgresql start`), or run the \
             tests with scripts/test"
        ),
    }
}

/// A throwaway database, dropped on drop.
pub struct TestDb {
    /// Its name (`lethe_h2_{tag}_{pid}_{n}`).
    pub name: String,
    /// The admin URL with this database in its path.
    pub url: url::Url,
}

impl TestDb {
    /// Creates an empty database, replacing a leftover of the same name.
    pub fn create(tag: &str) -> TestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = admin_url();
        probe(&admin);
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
        let mut url = admin;
        url.set_path(&name);
        TestDb { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if !std::thread::panicking() {
            psql(&admin_url(), &sql);
            return;
        }
        // Unwinding from a failed test: a second panic would abort the run and hide the
        // first, so a database that won't go is only reported.
        match try_run("psql", &admin_url(), &["-X", "-q", "-c", &sql]) {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: could not drop test database {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("warning: could not drop test database {}: {e}", self.name),
        }
    }
}
