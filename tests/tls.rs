//! Reading production the way production allows: over TLS that is verified
//! (`sslmode=verify-full` with the server's CA in `sslrootcert=`), and from a read-only
//! replica (a hot standby, or a database whose sessions are read-only by default).
//!
//! The TLS and standby tests start throwaway PostgreSQL clusters of their own (initdb,
//! pg_ctl; as the `postgres` user when run as root), with a CA and a server certificate
//! made in the test. They fail, never skip, when a server cannot be started.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{KEY, TestDb, expect_exit};
use sqlx::{AssertSqlSafe, Connection, postgres::PgConnection};

/// The newest PostgreSQL server binaries (or `LETHE_TEST_PG_BINDIR`), or a panic that says
/// what to install.
fn server_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LETHE_TEST_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().unwrap_or_else(|| {
        panic!(
            "these tests start their own PostgreSQL server, but no initdb and pg_ctl were found \
             under /usr/lib/postgresql/*/bin: install the server (Debian/Ubuntu: apt-get install \
             postgresql) or set LETHE_TEST_PG_BINDIR to its bin directory"
        )
    })
}

/// Whether this process is root (initdb refuses root, so the server then runs as
/// `postgres`).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of the `postgres` user, when running as root.
fn postgres_ids() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run `id`: {e}"));
        assert!(
            out.status.success(),
            "running as root, the test server must run as the `postgres` user, but there is \
             none: install the PostgreSQL server package (it creates it) or run as another user"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("`id {flag} postgres`: {e}"))
    };
    Some((id("-u"), id("-g")))
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
        .port()
}

/// A throwaway PostgreSQL cluster in a temporary folder. Dropping it (also when a test
/// panics) stops the server and deletes the folder.
struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    owner: Option<(u32, u32)>,
    port: u16,
    started: bool,
}

impl Cluster {
    /// Makes an empty folder that the server's user owns.
    fn folder(name: &str) -> (tempfile::TempDir, Option<(u32, u32)>) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("lethe-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let owner = postgres_ids();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", dir.path().display()));
        }
        (dir, owner)
    }

    /// `initdb` (trust authentication), not yet started.
    fn init(name: &str) -> Self {
        let (dir, owner) = Self::folder(name);
        let cluster = Self {
            dir,
            bindir: server_bindir(),
            owner,
            port: free_port(),
            started: false,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        cluster
    }

    /// A standby of `primary`, made with `pg_basebackup -R` (streaming replication).
    fn standby_of(primary: &Cluster) -> Self {
        let (dir, owner) = Self::folder("standby");
        let cluster = Self {
            dir,
            bindir: primary.bindir.clone(),
            owner,
            port: free_port(),
            started: false,
        };
        let data = cluster.data();
        let port = primary.port.to_string();
        cluster.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                path_str(&data),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs a server program as the server's user, from the cluster folder (that user may
    /// not be able to read the current directory); panics with its output if it fails.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let binary = self.bindir.join(program);
        let mut cmd = match self.owner {
            Some(_) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(&binary);
                cmd
            }
            None => Command::new(&binary),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Writes a file in the cluster folder, owned by the server's user, with `mode`.
    fn write(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
        path
    }

    /// Appends settings to postgresql.conf.
    fn configure(&self, settings: &str) {
        use std::io::Write;
        let socket = self.dir.path().join("sock");
        std::fs::create_dir_all(&socket).unwrap_or_else(|e| panic!("{e}"));
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&socket, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .unwrap_or_else(|e| panic!("postgresql.conf: {e}"));
        writeln!(
            conf,
            "\nlisten_addresses = 'localhost'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n{settings}",
            self.port,
            socket.display()
        )
        .unwrap_or_else(|e| panic!("postgresql.conf: {e}"));
    }

    /// Replaces pg_hba.conf.
    fn hba(&self, text: &str) {
        std::fs::write(self.data().join("pg_hba.conf"), text)
            .unwrap_or_else(|e| panic!("pg_hba.conf: {e}"));
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&mut self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        self.started = true;
        let started = {
            let binary = self.bindir.join("pg_ctl");
            let mut cmd = match self.owner {
                Some(_) => {
                    let mut cmd = Command::new("runuser");
                    cmd.args(["-u", "postgres", "--"]).arg(&binary);
                    cmd
                }
                None => Command::new(&binary),
            };
            cmd.args([
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
            ])
            .arg("start")
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
        };
        assert!(
            started.status.success(),
            "the test PostgreSQL server did not start:\n{}\n--- server.log\n{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// A URL to `database` through `host`, with extra query parameters.
    fn url(&self, host: &str, database: &str, params: &str) -> String {
        let query = if params.is_empty() {
            String::new()
        } else {
            format!("?{params}")
        };
        format!("postgres://postgres@{host}:{}/{database}{query}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started {
            let binary = self.bindir.join("pg_ctl");
            let data = self.data();
            let mut cmd = match self.owner {
                Some(_) => {
                    let mut cmd = Command::new("runuser");
                    cmd.args(["-u", "postgres", "--"]).arg(&binary);
                    cmd
                }
                None => Command::new(&binary),
            };
            let stopped = cmd
                .args([
                    "-D",
                    path_str(&data),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                ])
                .current_dir(self.dir.path())
                .output();
            if !stopped.is_ok_and(|o| o.status.success()) {
                eprintln!(
                    "warning: could not stop the test server in {}",
                    data.display()
                );
            }
        }
        // The TempDir deletes the folder.
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

/// Runs SQL over a connection opened with `url`.
async fn exec(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"));
}

/// One integer from a query.
async fn count(url: &str, sql: &str) -> i64 {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("query failed: {e}\n{sql}"))
}

const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, city text);
INSERT INTO customers SELECT g, 'customer' || g || '@corp.example', 'Berlin'
FROM generate_series(1, 200) g;
";

const RULES: &str = "[customers]\nkeep = [\"id\", \"city\"]\nemail = \"email\"\n";

/// A folder with lethe.toml (source and target `dev` URLs given) and the rules.
fn workspace(source_url: &str, dev_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write_config(dir.path(), source_url, dev_url);
    std::fs::create_dir(dir.path().join("masking-rules")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("masking-rules/public.toml"), RULES)
        .unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write_config(dir: &Path, source_url: &str, dev_url: &str) {
    std::fs::write(
        dir.join("lethe.toml"),
        format!(
            "[source]\nurl = \"{source_url}\"\n\n[targets.dev]\nurl = \"{dev_url}\"\n\n\
             [masking]\nkey = \"{KEY}\"\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Runs `lethe --config <dir>/lethe.toml <args>`.
fn lethe(dir: &Path, args: &[&str]) -> Output {
    lethe_with_env(dir, args, &[])
}

/// [`lethe`] with extra environment variables.
fn lethe_with_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--config")
        .arg(dir.join("lethe.toml"))
        .args(args)
        .env("LETHE_LOG", "lethe=info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("cannot run lethe: {e}"))
}

/// A CA: its certificate (PEM) and the issuer that signs with it.
fn new_ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap_or_else(|e| panic!("CA params: {e}"));
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("CA key: {e}"));
    let cert = params
        .self_signed(&key)
        .unwrap_or_else(|e| panic!("CA certificate: {e}"));
    (cert.pem(), rcgen::Issuer::new(params, key))
}

/// A server certificate for `host` signed by `ca`: (certificate PEM, key PEM).
fn server_cert(host: &str, ca: &rcgen::Issuer<'static, rcgen::KeyPair>) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()])
        .unwrap_or_else(|e| panic!("server params: {e}"));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("server key: {e}"));
    let cert = params
        .signed_by(&key, ca)
        .unwrap_or_else(|e| panic!("server certificate: {e}"));
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn verify_full_plans_and_refreshes_and_a_wrong_ca_or_host_is_refused_clearly() {
    let (ca_pem, ca) = new_ca("lethe test CA");
    let (other_ca_pem, _) = new_ca("some other CA");
    let (cert, key) = server_cert("localhost", &ca);

    let mut server = Cluster::init("tls");
    let cert_file = server.write("server.crt", &cert, 0o644);
    let key_file = server.write("server.key", &key, 0o600);
    let ca_file = server.write("ca.pem", &ca_pem, 0o644);
    let other_ca_file = server.write("other-ca.pem", &other_ca_pem, 0o644);
    server.configure(&format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        cert_file.display(),
        key_file.display()
    ));
    // TCP connections must use TLS: a plain one is rejected, so a success below used TLS.
    server.hba(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
    );
    server.start();

    let tls = format!("sslmode=verify-full&sslrootcert={}", ca_file.display());
    let admin = server.url("localhost", "postgres", &tls);
    exec(&admin, "CREATE DATABASE shop").await;
    exec(&admin, "CREATE DATABASE shop_dev").await;
    exec(&server.url("localhost", "shop", &tls), SCHEMA).await;
    let plain = PgConnection::connect(&server.url("localhost", "shop", "sslmode=disable")).await;
    assert!(
        plain.is_err(),
        "the test server accepted a connection without TLS"
    );

    let source_url = server.url("localhost", "shop", &tls);
    let dev_url = server.url("localhost", "shop_dev", &tls);
    let ws = workspace(&source_url, &dev_url);

    let (stdout, _) = expect_exit(&lethe(ws.path(), &["plan", "dev"]), 0);
    assert!(stdout.contains("public.customers"), "{stdout}");
    // pg_dump (libpq) reads the schema with the URL's TLS settings too: were they lost on
    // the way, it would fall back on these defaults (no TLS, which the server refuses; or
    // the wrong CA) and the refresh would fail.
    let defaults = [
        ("PGSSLMODE", Path::new("disable")),
        ("PGSSLROOTCERT", other_ca_file.as_path()),
    ];
    let (stdout, _) = expect_exit(
        &lethe_with_env(ws.path(), &["refresh", "dev", "--no-progress"], &defaults),
        0,
    );
    assert!(stdout.contains("refreshed dev"), "{stdout}");
    assert_eq!(count(&dev_url, "SELECT count(*) FROM customers").await, 200);
    assert_eq!(
        count(
            &dev_url,
            "SELECT count(*) FROM customers WHERE email LIKE '%@corp.example'"
        )
        .await,
        0
    );

    // The server's certificate is not signed by the CA lethe is told to trust.
    let wrong_ca = format!(
        "sslmode=verify-full&sslrootcert={}",
        other_ca_file.display()
    );
    write_config(
        ws.path(),
        &server.url("localhost", "shop", &wrong_ca),
        &dev_url,
    );
    let (_, stderr) = expect_exit(&lethe(ws.path(), &["plan", "dev"]), 1);
    assert!(
        stderr.contains(&format!(
            "the source server's certificate is not signed by the CA in sslrootcert={}",
            other_ca_file.display()
        )),
        "{stderr}"
    );

    // The certificate is for `localhost`; lethe connects to 127.0.0.1.
    write_config(ws.path(), &server.url("127.0.0.1", "shop", &tls), &dev_url);
    let (_, stderr) = expect_exit(&lethe(ws.path(), &["plan", "dev"]), 1);
    assert!(
        stderr.contains(
            "the source server's certificate is not valid for host 127.0.0.1 (it names: localhost)"
        ),
        "{stderr}"
    );

    // The same on the target side names the target.
    write_config(
        ws.path(),
        &source_url,
        &server.url("localhost", "shop_dev", &wrong_ca),
    );
    let (_, stderr) = expect_exit(&lethe(ws.path(), &["refresh", "dev", "--no-progress"]), 1);
    assert!(
        stderr.contains("the target server's certificate is not signed by the CA in sslrootcert="),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_hot_standby_source_is_refreshed_from_its_exported_snapshot() {
    let mut primary = Cluster::init("primary");
    primary.configure("wal_level = replica\nmax_wal_senders = 4\n");
    primary.start();
    let primary_admin = primary.url("127.0.0.1", "postgres", "");
    exec(&primary_admin, "CREATE DATABASE shop").await;
    exec(&primary_admin, "CREATE DATABASE shop_dev").await;
    exec(&primary.url("127.0.0.1", "shop", ""), SCHEMA).await;

    let mut standby = Cluster::standby_of(&primary);
    standby.configure("hot_standby = on\n");
    standby.start();
    let source_url = standby.url("127.0.0.1", "shop", "");
    // The standby has replayed the data, and is a standby.
    let mut ready = false;
    for _ in 0..100 {
        if PgConnection::connect(&source_url).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the standby does not accept connections");
    assert_eq!(
        count(&source_url, "SELECT pg_is_in_recovery()::int::bigint").await,
        1
    );
    assert_eq!(
        count(&source_url, "SELECT count(*) FROM customers").await,
        200
    );

    // The target lives on the primary, in another database than the source's.
    let dev_url = primary.url("127.0.0.1", "shop_dev", "");
    let ws = workspace(&source_url, &dev_url);
    expect_exit(&lethe(ws.path(), &["plan", "dev"]), 0);
    let (stdout, _) = expect_exit(&lethe(ws.path(), &["refresh", "dev", "--no-progress"]), 0);
    assert!(
        stdout.contains("refreshed dev: 1 tables, 200 rows"),
        "{stdout}"
    );
    assert_eq!(count(&dev_url, "SELECT count(*) FROM customers").await, 200);
    assert_eq!(
        count(
            &dev_url,
            "SELECT count(*) FROM customers WHERE email LIKE '%@corp.example'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_source_whose_sessions_are_read_only_by_default_is_refreshed() {
    let source = TestDb::create("ro_src").await;
    source.exec(SCHEMA).await;
    source
        .exec(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
            source.name
        ))
        .await;
    // New sessions on it cannot write: it behaves like a standby.
    let mut conn = source.connect().await;
    let write = sqlx::raw_sql("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await;
    assert!(
        write.is_err(),
        "a write on the read-only database succeeded"
    );
    drop(conn);

    let dev = TestDb::create("ro_dev").await;
    let ws = workspace(&source.url, &dev.url);
    let (stdout, _) = expect_exit(&lethe(ws.path(), &["refresh", "dev", "--no-progress"]), 0);
    assert!(
        stdout.contains("refreshed dev: 1 tables, 200 rows"),
        "{stdout}"
    );
    assert_eq!(dev.count("SELECT count(*) FROM customers").await, 200);
}
