//! What the daemon's unit tests share: a config whose source refuses connections (a
//! transient failure, retried), so runs wait in their backoff holding their target
//! without any database, and an in-process server on a free loopback port.

use std::future::IntoFuture;
use std::sync::Arc;

use super::{DaemonOptions, MemoryHistory, RunRequest, Shared, Tokens, api};
use crate::config::Config;

/// A config with targets `dev` and `staging` (and `lite`, an SQLite file), `extra`
/// appended, in a temporary folder with a rules file.
pub(crate) fn config(extra: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("masking-rules")).unwrap();
    std::fs::write(
        dir.path().join("masking-rules/public.toml"),
        "[users]\nkeep = [\"id\"]\n",
    )
    .unwrap();
    let text = format!(
        "[source]\nurl = \"postgres://lethe@127.0.0.1:1/prod\"\n\
         [targets.dev]\nurl = \"postgres://lethe@127.0.0.1:1/dev\"\n\
         [targets.staging]\nurl = \"postgres://lethe:staging-password@127.0.0.1:1/staging\"\n\
         [targets.lite]\nurl = \"sqlite://{}/lite.sqlite\"\n\
         [masking]\nkey = \"0123456789abcdef-key\"\n{extra}",
        dir.path().display()
    );
    let config = Config::parse(&dir.path().join("lethe.toml"), &text, |_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, config)
}

/// One table copy at a time, a history in memory.
pub(crate) fn options(tokens: Tokens) -> DaemonOptions {
    DaemonOptions {
        jobs: 1,
        history: Arc::new(MemoryHistory::default()),
        tokens,
    }
}

/// A refresh of `dev`.
pub(crate) fn request(profile: Option<&str>) -> RunRequest {
    RunRequest {
        target: "dev".into(),
        trigger: "test".into(),
        schedule: None,
        profile: profile.map(str::to_owned),
    }
}

/// Serves the daemon's routes on a free loopback port until its shutdown; returns
/// `http://127.0.0.1:<port>`.
pub(crate) async fn serve(shared: &Arc<Shared>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        axum::serve(listener, api::router(Arc::clone(shared)))
            .with_graceful_shutdown(shared.shutdown.clone().cancelled_owned())
            .into_future(),
    );
    base
}
