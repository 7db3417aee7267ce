//! The real `lethe` binary running in the background, for fault tests: its output goes to
//! files that the test reads while it runs, it can be paused at a named phase
//! (`LETHE_TEST_PAUSE_AT`), resumed through its stdin, and killed with SIGKILL.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

/// How long a run may take to reach a point the test waits for, or to exit.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// How often a test looks at a running lethe's output or databases.
pub const POLL: Duration = Duration::from_millis(20);

/// A `lethe` process started by a test.
pub struct Lethe {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Lethe {
    /// Starts `lethe --config <config> <args>` with `envs`; its output goes to
    /// `<dir>/<tag>.stdout` and `.stderr`. With `pause_at`, the run stops at that phase.
    pub fn spawn(
        config: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        pause_at: Option<&str>,
        tag: &str,
    ) -> Self {
        let dir = config.parent().unwrap_or(Path::new("."));
        let stdout = dir.join(format!("{tag}.stdout"));
        let stderr = dir.join(format!("{tag}.stderr"));
        let file = |path: &PathBuf| {
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_lethe"));
        command
            .arg("--config")
            .arg(config)
            .args(args)
            .env("LETHE_LOG", "lethe=info")
            .env_remove("LETHE_TEST_PAUSE_AT")
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            // A failing test must not leave lethe running.
            .kill_on_drop(true);
        if let Some(phase) = pause_at {
            command.env("LETHE_TEST_PAUSE_AT", phase);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run lethe: {e}"));
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until its stderr holds `needle` `times` times; fails clearly if it exits
    /// first or takes longer than [`PATIENCE`].
    pub async fn wait_for_times(&mut self, needle: &str, times: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.stderr().matches(needle).count() >= times {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
                panic!(
                    "lethe ended ({status}) before printing {needle:?}\n--- stderr\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "lethe did not print {needle:?} within {PATIENCE:?}\n--- stderr\n{}",
                self.stderr()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until its stderr holds `needle`.
    pub async fn wait_for(&mut self, needle: &str) {
        self.wait_for_times(needle, 1).await;
    }

    /// Waits until the run is paused at `phase`.
    pub async fn paused_at(&mut self, phase: &str) {
        self.wait_for(&format!("lethe: paused at {phase} ")).await;
    }

    /// Lets a paused run go on.
    pub async fn resume(&mut self) {
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("lethe's stdin is closed"));
        stdin
            .write_all(b"\n")
            .await
            .unwrap_or_else(|e| panic!("cannot resume lethe: {e}"));
        stdin
            .flush()
            .await
            .unwrap_or_else(|e| panic!("cannot resume lethe: {e}"));
    }

    /// `kill -9`, and checks that it died of it.
    pub async fn kill_9(&mut self) {
        self.child
            .kill()
            .await
            .unwrap_or_else(|e| panic!("cannot kill lethe: {e}"));
        let status = self.child.wait().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            status.signal(),
            Some(9),
            "lethe was meant to die of SIGKILL: {status}"
        );
    }

    /// Waits (at most [`PATIENCE`]) for it to exit by itself.
    pub async fn finish(mut self) -> Output {
        self.stdin.take();
        let status = match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.unwrap_or_else(|e| panic!("waiting for lethe: {e}")),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!(
                    "lethe did not exit within {PATIENCE:?}\n--- stderr\n{}",
                    self.stderr()
                );
            }
        };
        Output {
            status,
            stdout: std::fs::read(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read(&self.stderr).unwrap_or_default(),
        }
    }
}

/// The runs of `lethe runs --json` (newest first) for the config at `config`.
pub fn runs(config: &Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--config")
        .arg(config)
        .args(["runs", "--json", "--limit", "50"])
        .env("LETHE_TEST_SOURCE", "unused")
        .output()
        .unwrap_or_else(|e| panic!("cannot run lethe runs: {e}"));
    assert!(
        out.status.success(),
        "lethe runs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lethe runs --json is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Asserts the run history of `config` holds, newest first, a run that succeeded (the
/// rerun) and before it the killed run, recorded as failed because its process died.
pub fn assert_killed_then_succeeded(config: &Path) {
    let runs = runs(config);
    assert!(runs.len() >= 2, "expected two runs or more: {runs:#?}");
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:#?}");
    assert_eq!(runs[1]["outcome"], "failed", "{runs:#?}");
    let reason = runs[1]["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("ended without recording how this run ended: it was killed or crashed")
            && reason.contains(&format!("found by run {}", runs[0]["id"])),
        "the killed run's record must say why it failed: {runs:#?}"
    );
}
