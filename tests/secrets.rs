//! Secrets from files (`${file:PATH}` in lethe.toml), as Docker and Kubernetes mount them:
//! what a user runs, and what lethe refuses.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{KEY, TestDb, Workspace, expect_exit};

const SCHEMA: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
INSERT INTO users SELECT g, 'user' || g || '@corp.example' FROM generate_series(1, 20) g;
";

const RULES: &str = "[users]\nkeep = [\"id\"]\nemail = \"email\"\n";

/// Writes a secret file with the given mode (and a trailing newline, as `echo` leaves).
fn write_secret(path: &Path, content: &str, mode: u32) {
    std::fs::write(path, format!("{content}\n")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn check_plan_and_refresh_read_the_source_url_from_a_file() {
    let source = TestDb::create("secret_src").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("secret_dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    let secrets = ws.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap_or_else(|e| panic!("{e}"));
    let url_file = secrets.join("prod_url");
    write_secret(&url_file, &source.url, 0o400);
    write_secret(&secrets.join("masking_key"), KEY, 0o440);
    ws.write_config(&format!(
        "[source]\nurl = \"${{file:{}}}\"\n\n[targets.dev]\nurl = \"{}\"\n\n[masking]\nkey = \"${{file:secrets/masking_key}}\"\n",
        url_file.display(),
        dev.url
    ));

    let (stdout, _) = expect_exit(&ws.lethe(&["check"]), 0);
    assert!(stdout.starts_with("ok: "), "{stdout}");
    let (stdout, _) = expect_exit(&ws.lethe(&["plan", "dev"]), 0);
    assert!(stdout.contains("public.users"), "{stdout}");
    expect_exit(&ws.lethe(&["refresh", "dev", "--no-progress"]), 0);
    assert_eq!(dev.count("SELECT count(*) FROM users").await, 20);
    assert_eq!(
        dev.count("SELECT count(*) FROM users WHERE email LIKE '%@corp.example'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_world_readable_or_missing_secret_file_is_refused_with_its_place() {
    let source = TestDb::create("secret_bad").await;
    source.exec(SCHEMA).await;
    let dev = TestDb::create("secret_bad_dev").await;
    let ws = Workspace::new(&source, &dev, KEY, &[("public", RULES)]);
    let url_file = ws.path().join("prod_url");
    write_secret(&url_file, &source.url, 0o644);
    let config = format!(
        "[source]\nurl = \"${{file:{}}}\"\n\n[targets.dev]\nurl = \"{}\"\n\n[masking]\nkey = \"{KEY}\"\n",
        url_file.display(),
        dev.url
    );
    ws.write_config(&config);

    for command in [&["check"][..], &["plan", "dev"]] {
        let (stdout, stderr) = expect_exit(&ws.lethe(command), 2);
        let expected = format!(
            "{}:2:8: source url: secret file {} is readable by every user (mode 0644)",
            ws.config().display(),
            url_file.display()
        );
        assert!(stderr.contains(&expected), "{command:?}: {stderr}");
        // The secret (the URL, its database name) is not in what lethe printed.
        assert!(!stderr.contains(&source.name), "{stderr}");
        assert!(!stdout.contains(&source.name), "{stdout}");
    }

    std::fs::remove_file(&url_file).unwrap_or_else(|e| panic!("{e}"));
    let (_, stderr) = expect_exit(&ws.lethe(&["check"]), 2);
    assert!(
        stderr.contains(&format!(
            "{}:2:8: source url: secret file {} does not exist",
            ws.config().display(),
            url_file.display()
        )),
        "{stderr}"
    );
}
