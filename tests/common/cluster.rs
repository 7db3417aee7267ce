//! A throwaway PostgreSQL cluster of the test's own, for faults that must not touch the
//! shared server (a restart): initdb'ed into a temporary folder, on a free port, run as
//! the `postgres` user when the tests run as root, stopped and deleted when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A cluster this test owns.
pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

/// The newest PostgreSQL server binaries (`LETHE_TEST_PG_BINDIR` overrides).
fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("LETHE_TEST_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|bin| bin.join("initdb").is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    dirs.pop().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin: \
             install them (Debian: apt-get install postgresql) or set LETHE_TEST_PG_BINDIR"
        )
    })
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Cluster {
    /// initdb and start a cluster on a free port.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lethe-fault-pg")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let cluster = Self {
            dir,
            bindir: bindir(),
            port,
        };
        std::fs::create_dir(cluster.dir.path().join("sock")).unwrap_or_else(|e| panic!("{e}"));
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(cluster.dir.path())
                .output()
                .unwrap_or_else(|e| panic!("chown: {e}"));
            assert!(
                out.status.success(),
                "chown the cluster folder to postgres: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            cluster.dir.path().join("sock").display()
        );
        let file = Path::new(&data).join("postgresql.conf");
        let mut text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
        text.push_str(&conf);
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        cluster.pg_ctl("start");
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs a server binary as the cluster's owner.
    fn run(&self, program: &str, args: &[&str]) {
        let binary = self.bindir.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        // The postgres user may not be able to read the test's working folder.
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\n--- server log\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-t", "60"];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    /// Stops the server (ending every session at once, as a crash or failover does) and
    /// starts it again; returns when it accepts connections.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    /// A URL to `database` on it.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let binary = self.bindir.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&binary)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        } else {
            Command::new(&binary)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        };
    }
}
