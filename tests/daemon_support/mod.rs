//! A `lethe daemon` process for the tests that talk to it over HTTP: started on a free
//! loopback port (lethe.toml says `127.0.0.1:0`), its stderr kept in a file, stopped with
//! SIGTERM.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::common::Workspace;

/// How long anything the tests wait for may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// A running daemon.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Daemon {
    /// Starts `lethe daemon` on the workspace with `LETHE_API_TOKENS=tokens` and waits
    /// for its "listening on" line.
    pub async fn start(ws: &Workspace, tag: &str, tokens: Option<&str>) -> Self {
        let log = ws.path().join(format!("{tag}.log"));
        let source =
            std::fs::read_to_string(ws.path().join("source.url")).unwrap_or_else(|e| panic!("{e}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_lethe"));
        command
            .arg("--config")
            .arg(ws.config())
            .args(["daemon", "--jobs", "2"])
            .env("LETHE_TEST_SOURCE", source)
            .env("LETHE_LOG", "lethe=info")
            .env_remove("LETHE_API_TOKENS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}")))
            .kill_on_drop(true);
        if let Some(tokens) = tokens {
            command.env("LETHE_API_TOKENS", tokens);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run lethe: {e}"));
        let mut daemon = Self {
            child,
            log,
            base: String::new(),
        };
        let started = Instant::now();
        while daemon.base.is_empty() {
            if let Some(address) = daemon
                .log()
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '"').next())
            {
                daemon.base = address.to_owned();
            } else if started.elapsed() > PATIENCE
                || daemon.child.try_wait().ok().flatten().is_some()
            {
                panic!("the daemon did not start:\n{}", daemon.log());
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        daemon
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM, checks it exits 0 in time, and returns its log.
    pub async fn stop(mut self) -> String {
        let pid = self
            .child
            .id()
            .unwrap_or_else(|| panic!("the daemon already exited:\n{}", self.log()));
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(kill.success());
        let status = match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.unwrap_or_else(|e| panic!("{e}")),
            Err(_) => panic!("the daemon did not exit after SIGTERM:\n{}", self.log()),
        };
        let log = self.log();
        assert_eq!(status.code(), Some(0), "{log}");
        log
    }

    /// Polls `check` every 100 ms until it gives a value; fails with `what` and the log.
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
