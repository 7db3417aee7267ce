//! The daemon's status page in a real browser: headless Chromium driven over chromedriver
//! (WebDriver, with `fantoccini`), against a daemon on a free loopback port that
//! refreshes databases this test creates and drops.
//!
//! It needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium
//! chromium-driver`; other places: set `CHROME_BIN` and `CHROMEDRIVER`). Without them it
//! fails and says so: it never passes by skipping.
//!
//! `LETHE_SCREENSHOT=docs/status-page.png cargo test --test status_page` also writes the
//! page after its run to that file (the README's screenshot); every run writes
//! `target/status-page.png`.

mod common;
mod daemon_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{KEY, TestDb, Workspace, expect_exit};
use daemon_support::{Daemon, PATIENCE};
use fantoccini::{Client, ClientBuilder, Locator};

const ADMIN: &str = "admin-token-0123456789abcdef";
const VIEWER: &str = "viewer-token-0123456789abcdef";
const DEVOPS: &str = "devops-token-0123456789abcdef";

const SOURCE: &str = "
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL);
INSERT INTO customers (email, name)
  SELECT 'customer' || g || '@corp.example', 'Customer ' || g FROM generate_series(1, 1000) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint REFERENCES customers, total numeric(10,2));
INSERT INTO orders (customer_id, total) SELECT 1 + g % 1000, g % 997 FROM generate_series(1, 4000) g;
";

const RULES: &str = "[customers]\nkeep = [\"id\"]\nemail = \"email\"\nname = \"full_name\"\n\n\
                     [orders]\nkeep = [\"id\", \"customer_id\", \"total\"]\n";

/// The first of `names` that exists as a file: `env` if set, else the usual places.
fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .chain(std::iter::once(PathBuf::from("/usr/bin").join(name)))
            .find(|p| p.is_file())
    })
}

fn missing(what: &str) -> ! {
    panic!(
        "the status page test needs {what}: install Chromium and its WebDriver with \
         `apt-get install -y chromium chromium-driver` (Debian; .ci/run does it), or set \
         CHROME_BIN and CHROMEDRIVER to where they are"
    )
}

/// chromedriver on a free port and a headless Chromium session through it.
struct Browser {
    driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let chromium = find(
            "CHROME_BIN",
            &["chromium", "chromium-browser", "google-chrome"],
        )
        .unwrap_or_else(|| missing("Chromium (/usr/bin/chromium)"));
        let chromedriver = find("CHROMEDRIVER", &["chromedriver"])
            .unwrap_or_else(|| missing("chromedriver (/usr/bin/chromedriver)"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("no free port: {e}"))
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() > Duration::from_secs(20) => {
                    panic!("chromedriver did not start a Chromium session: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Self {
            driver,
            client,
            _profile: profile,
        }
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The text of the first element matching `css`, if any.
    async fn text(&self, css: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    /// The first element matching `css`, waiting for it while a page loads (after a click
    /// that navigates, the old page can still be the one shown for a moment).
    async fn element(&self, css: &str) -> Result<fantoccini::elements::Element, String> {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => Ok(element),
            Err(e) => Err(format!("{e}\n{}", self.source().await)),
        }
    }

    async fn click(&self, css: &str) {
        let element = match self.element(css).await {
            Ok(element) => element,
            Err(e) => panic!("no {css} on the page: {e}"),
        };
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Signs in with `token` on the login form the page shows now.
    async fn sign_in(&self, token: &str) {
        let field = match self.element("input[name=token]").await {
            Ok(field) => field,
            Err(e) => panic!("no login form: {e}"),
        };
        field
            .send_keys(token)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.click("form.login button[type=submit]").await;
    }

    /// Polls until `css`'s text is `want`; fails with the page's source.
    async fn wait_text(&self, css: &str, want: &[&str]) -> String {
        let started = Instant::now();
        loop {
            if let Some(text) = self.text(css).await
                && want.contains(&text.as_str())
            {
                return text;
            }
            if started.elapsed() > PATIENCE {
                panic!(
                    "{css} never read {want:?}; the page:\n{}",
                    self.source().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, path: &Path) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// The URL of a database that does not exist, on the server of `url`.
fn missing_db(url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap_or_else(|e| panic!("{e}"));
    url.set_path("/lethe_t_no_such_database");
    url.to_string()
}

/// `lethe refresh <target>` on a command line, by the user `oncall`.
fn by_hand(ws: &Workspace, target: &str) -> std::process::Output {
    let source =
        std::fs::read_to_string(ws.path().join("source.url")).unwrap_or_else(|e| panic!("{e}"));
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--config")
        .arg(ws.config())
        .args(["refresh", target])
        .env("LETHE_TEST_SOURCE", source)
        .env("USER", "oncall")
        .output()
        .unwrap_or_else(|e| panic!("cannot run lethe: {e}"))
}

#[tokio::test]
async fn a_person_signs_in_refreshes_dev_and_sees_only_what_the_token_allows() {
    let source = TestDb::create("psrc").await;
    source.exec(SOURCE).await;
    let dev = TestDb::create("pdev").await;
    let staging = TestDb::create("pstg").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    // The hook keeps dev's run going long enough to be seen under way.
    std::fs::write(ws.path().join("hook.sql"), "SELECT pg_sleep(1);")
        .unwrap_or_else(|e| panic!("{e}"));
    ws.write_config(&format!(
        "[source]\nurl = \"${{LETHE_TEST_SOURCE}}\"\n\n\
         [targets.dev]\nurl = \"{}\"\nafter_refresh = [\"hook.sql\"]\n\n\
         [targets.staging]\nurl = \"{}\"\n\n\
         [targets.qa]\nurl = \"{}\"\n\n\
         [masking]\nkey = \"{KEY}\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\nattempts = 1\n",
        dev.url,
        staging.url,
        missing_db(&dev.url),
    ));
    std::fs::create_dir_all(ws.path().join("schedules")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        ws.path().join("schedules/nightly.toml"),
        "cron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\ntargets = [\"staging\", \"dev\"]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Staging was refreshed by hand before the daemon started, and qa failed (its
    // database does not exist): the page finds both in the run history.
    expect_exit(&by_hand(&ws, "staging"), 0);
    expect_exit(&by_hand(&ws, "qa"), 1);

    let tokens = format!("admin:{ADMIN}:admin,viewer:{VIEWER}:read,devops:{DEVOPS}:refresh:dev");
    let daemon = Daemon::start(&ws, "page", Some(&tokens)).await;
    let browser = Browser::start().await;

    // Without a token: the login, saying 401.
    browser.goto(&daemon.url("/")).await;
    let page = browser.source().await;
    assert!(page.contains("401 Unauthorized"), "{page}");
    assert_eq!(browser.count("#target-dev").await, 0, "{page}");

    // The admin signs in and sees both targets; staging's run came from the history.
    browser.sign_in(ADMIN).await;
    browser
        .wait_text("#target-staging [data-role=last-status]", &["succeeded"])
        .await;
    assert!(
        browser
            .text("#target-dev")
            .await
            .unwrap_or_default()
            .contains("never refreshed")
    );
    assert!(
        browser
            .text("#target-staging")
            .await
            .unwrap_or_default()
            .contains("cli:oncall"),
        "{}",
        browser.source().await
    );
    assert_eq!(
        browser
            .text("#target-qa [data-role=last-status]")
            .await
            .as_deref(),
        Some("failed")
    );
    let error_line = browser
        .text("#target-qa + tr.error-row")
        .await
        .unwrap_or_default();
    assert!(
        error_line.contains("lethe_t_no_such_database"),
        "{error_line}"
    );
    let schedules = browser.text("main").await.unwrap_or_default();
    assert!(
        schedules.contains("nightly") && schedules.contains("Europe/Berlin"),
        "{schedules}"
    );
    assert!(
        schedules.contains("02:30:00 CE"),
        "fire times in the zone: {schedules}"
    );

    // "Refresh now" on dev: the run page shows it under way, then succeeded.
    browser
        .click("#target-dev form[action$='targets/dev/refresh'] button")
        .await;
    let under_way = browser
        .wait_text(
            "[data-field=status], [data-role=status]",
            &["queued", "running", "succeeded"],
        )
        .await;
    assert_ne!(under_way, "succeeded", "the run was not seen under way");
    let url = browser
        .client
        .current_url()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(url.path().starts_with("/runs/"), "{url}");
    // The live script reloads the page when the run ends.
    browser
        .wait_text("[data-role=status]", &["succeeded"])
        .await;
    let run_page = browser.source().await;
    browser
        .screenshot(&common::repo().join("target/status-run.png"))
        .await;
    assert!(run_page.contains("api:admin"), "{run_page}");
    assert!(
        run_page.contains("public.customers") && run_page.contains("1,000"),
        "{run_page}"
    );
    assert!(run_page.contains("4,000"), "{run_page}");

    browser.goto(&daemon.url("/")).await;
    browser
        .wait_text("#target-dev [data-role=last-status]", &["succeeded"])
        .await;
    let index = browser.source().await;
    let shot = common::repo().join("target/status-page.png");
    browser.screenshot(&shot).await;
    if let Ok(path) = std::env::var("LETHE_SCREENSHOT") {
        browser.screenshot(&common::repo().join(path)).await;
    }
    // Nothing secret: no token, no key, no URL with its password, no cell value.
    for secret in [ADMIN, VIEWER, DEVOPS, KEY, "postgres://", "@corp.example"] {
        assert!(!index.contains(secret), "{secret} on the page:\n{index}");
        assert!(!run_page.contains(secret), "{secret} on the run page");
    }

    // A read token sees every target but no button.
    browser.click("header form[action$='logout'] button").await;
    browser.sign_in(VIEWER).await;
    browser
        .wait_text("#target-dev [data-role=last-status]", &["succeeded"])
        .await;
    assert_eq!(browser.count("#target-staging").await, 1);
    assert_eq!(
        browser.count("main form").await,
        0,
        "{}",
        browser.source().await
    );
    assert!(!browser.source().await.contains("Refresh now"));

    // A token for dev alone does not see staging at all.
    browser.click("header form[action$='logout'] button").await;
    browser.sign_in(DEVOPS).await;
    browser
        .wait_text("#target-dev [data-role=last-status]", &["succeeded"])
        .await;
    let page = browser.source().await;
    assert_eq!(browser.count("#target-staging").await, 0, "{page}");
    assert!(!page.contains("staging"), "{page}");
    assert_eq!(
        browser
            .count("#target-dev form[action$='targets/dev/refresh']")
            .await,
        1
    );

    browser.close().await;
    let log = daemon.stop().await;
    assert!(log.contains("signed in to the status page"), "{log}");
    for token in [ADMIN, VIEWER, DEVOPS] {
        assert!(!log.contains(token), "a token in the log");
    }
    drop((source, dev, staging));
}
