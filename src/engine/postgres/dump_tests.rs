use super::*;
use std::io::{BufRead, BufReader, Write};
use std::process::Command;

use crate::engine::postgres::test_db::{TestDb, psql};

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

/// `db`'s URL with a password added (ignored under trust auth; used to prove it never
/// leaks), unless DATABASE_URL already carries one.
fn url_with_secret(db: &TestDb) -> SecretString {
    let mut url = db.url.clone();
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
    let conn = Connection::from_url(db.url.as_str()).unwrap();
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
