//! The same promises on every engine: one set of scenarios, run against each engine
//! lethe supports. An engine is added by adding an [`Engine`] variant and its few
//! database helpers; every scenario then runs on it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};

use common::TestDb;
use common::mysql::MyDb;

/// An engine under test.
#[derive(Debug, Clone, Copy)]
enum Engine {
    Postgres,
    Sqlite,
    Mysql,
}

/// One database of an engine: its URL as lethe.toml names it, and how to reach it.
enum Db {
    Postgres(TestDb),
    Sqlite(std::path::PathBuf),
    Mysql(MyDb),
}

impl Engine {
    /// A new empty database; SQLite files live in `dir`.
    async fn database(self, dir: &Path, tag: &str) -> Db {
        match self {
            Engine::Postgres => Db::Postgres(TestDb::create(tag).await),
            Engine::Sqlite => Db::Sqlite(dir.join(format!("{tag}.db"))),
            Engine::Mysql => {
                let db = MyDb::create(tag).await;
                // Both databases exist before lethe runs, as on the other engines.
                db.exec("SELECT 1").await;
                Db::Mysql(db)
            }
        }
    }

    /// `expr` as text, in the engine's dialect.
    fn text(self, expr: &str) -> String {
        match self {
            Engine::Mysql => format!("CAST({expr} AS CHAR)"),
            Engine::Postgres | Engine::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// The schema the rules file is named after.
    fn schema(self, source: &Db) -> String {
        match (self, source) {
            (_, Db::Mysql(db)) => db.name.clone(),
            (Engine::Sqlite, _) => "main".to_owned(),
            _ => "public".to_owned(),
        }
    }
}

impl Db {
    fn url(&self) -> String {
        match self {
            Db::Postgres(db) => db.url.clone(),
            Db::Sqlite(path) => format!("sqlite://{}", path.display()),
            Db::Mysql(db) => db.url(),
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Db::Postgres(db) => db.exec(sql).await,
            Db::Sqlite(path) => {
                let mut conn = sqlite(path).await;
                sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Db::Mysql(db) => db.exec(sql).await,
        }
    }

    /// The first column of every row, as text (NULL as `None`).
    async fn column(&self, sql: &str) -> Vec<Option<String>> {
        match self {
            Db::Postgres(db) => db.column(sql).await,
            Db::Sqlite(path) => {
                let mut conn = sqlite(path).await;
                sqlx::query(AssertSqlSafe(sql.to_owned()))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| r.try_get_unchecked::<Option<String>, _>(0).unwrap_or(None))
                    .collect()
            }
            Db::Mysql(db) => db
                .rows(sql)
                .await
                .into_iter()
                .map(|row| row.into_iter().next().flatten())
                .collect(),
        }
    }
}

async fn sqlite(path: &Path) -> SqliteConnection {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    SqliteConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// A folder with lethe.toml (targets `dev`, and `prod` pointing at the source itself)
/// and a rules file.
struct Setup {
    dir: tempfile::TempDir,
    engine: Engine,
    source: Db,
    dev: Db,
}

impl Setup {
    async fn new(engine: Engine, schema_sql: &str, rules: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = engine.database(dir.path(), "src").await;
        let dev = engine.database(dir.path(), "dev").await;
        source.exec(schema_sql).await;
        std::fs::write(
            dir.path().join("lethe.toml"),
            format!(
                "[source]\nurl = \"{}\"\n\n[targets.dev]\nurl = \"{}\"\n\n[targets.prod]\nurl = \"{}\"\n\n[masking]\nkey = \"{}\"\n",
                source.url(),
                dev.url(),
                source.url(),
                common::KEY
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let setup = Self {
            dir,
            engine,
            source,
            dev,
        };
        setup.rules(rules);
        setup
    }

    fn rules(&self, text: &str) {
        let folder = self.dir.path().join("masking-rules");
        std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            folder.join(format!("{}.toml", self.engine.schema(&self.source))),
            text,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    fn lethe(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lethe"))
            .arg("--config")
            .arg(self.dir.path().join("lethe.toml"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run lethe: {e}"))
    }
}

/// Portable across the engines: plain types, a foreign key on a masked column.
const SHOP: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, name TEXT, note TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_email VARCHAR(100) NOT NULL REFERENCES customers(email), amount DECIMAL(10,2) NOT NULL, label TEXT);
INSERT INTO customers VALUES (1, 'ada@real.example', 'Ada Lovelace', 'tab\there, newline\nthere, back\\\\slash, Zoë ✓');
INSERT INTO customers VALUES (2, 'alan@real.example', 'Alan Turing', NULL);
INSERT INTO customers VALUES (3, 'grace@real.example', 'Grace Hopper', '');
INSERT INTO orders VALUES (10, 'ada@real.example', 12.50, 'first'), (11, 'ada@real.example', 3.00, NULL), (12, 'grace@real.example', 99.99, 'x');
";

const SHOP_RULES: &str = "
[customers]
keep = [\"id\", \"note\"]
email = \"email\"
name = \"full_name\"

[orders]
keep = [\"id\", \"amount\", \"label\"]
customer_email = \"email\"
";

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Masks, keeps kept values exactly, keeps joins on masked keys, and a rerun writes the
/// same stand-ins.
async fn masks_keeps_and_joins(engine: Engine) {
    let s = Setup::new(engine, SHOP, SHOP_RULES).await;
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    let emails = s
        .dev
        .column("SELECT email FROM customers ORDER BY id")
        .await;
    assert_eq!(emails.len(), 3, "{engine:?}");
    assert!(
        emails.iter().flatten().all(|e| !e.contains("real.example")),
        "{engine:?}: {emails:?}"
    );
    assert_eq!(
        s.dev.column("SELECT note FROM customers ORDER BY id").await,
        s.source
            .column("SELECT note FROM customers ORDER BY id")
            .await,
        "{engine:?}: kept text round-trips, NULL and '' apart"
    );
    assert_eq!(
        s.dev
            .column(&format!(
                "SELECT {} FROM orders ORDER BY id",
                engine.text("amount")
            ))
            .await,
        s.source
            .column(&format!(
                "SELECT {} FROM orders ORDER BY id",
                engine.text("amount")
            ))
            .await,
        "{engine:?}"
    );
    let joined = s
        .dev
        .column(&format!(
            "SELECT {} FROM orders o JOIN customers c ON c.email = o.customer_email ORDER BY o.id",
            engine.text("o.id")
        ))
        .await;
    assert_eq!(
        joined.len(),
        3,
        "{engine:?}: every order still finds its customer"
    );
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    assert_eq!(
        s.dev
            .column("SELECT email FROM customers ORDER BY id")
            .await,
        emails,
        "{engine:?}"
    );
}

/// A column without a rule stops the run before anything is written, and `check` names it.
async fn an_unmapped_column_changes_nothing(engine: Engine) {
    let s = Setup::new(engine, SHOP, SHOP_RULES).await;
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    let before = s
        .dev
        .column("SELECT email FROM customers ORDER BY id")
        .await;
    s.source
        .exec("ALTER TABLE customers ADD COLUMN ssn TEXT")
        .await;
    s.source
        .exec("UPDATE customers SET email = 'new@real.example' WHERE id = 2")
        .await;
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(3), "{engine:?}: {}", text(&out));
    assert!(
        text(&out).contains(&format!("{}.customers.ssn", engine.schema(&s.source))),
        "{engine:?}: {}",
        text(&out)
    );
    assert_eq!(
        s.dev
            .column("SELECT email FROM customers ORDER BY id")
            .await,
        before,
        "{engine:?}"
    );
    let out = s.lethe(&["check"]);
    assert_eq!(code(&out), Some(2), "{engine:?}: {}", text(&out));
    assert!(
        text(&out).contains("customers.ssn: the column has no rule"),
        "{engine:?}: {}",
        text(&out)
    );
}

/// The source is never written: a target that is the source is refused.
async fn the_source_is_never_a_target(engine: Engine) {
    let s = Setup::new(engine, SHOP, SHOP_RULES).await;
    let out = s.lethe(&["refresh", "prod", "--no-progress"]);
    assert_eq!(code(&out), Some(3), "{engine:?}: {}", text(&out));
    assert_eq!(
        s.source
            .column("SELECT email FROM customers WHERE id = 1")
            .await,
        vec![Some("ada@real.example".to_owned())],
        "{engine:?}"
    );
}

/// Runs every scenario on one engine.
macro_rules! conformance {
    ($module:ident, $engine:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn masks_keeps_and_joins() {
                super::masks_keeps_and_joins($engine).await;
            }

            #[tokio::test]
            async fn an_unmapped_column_changes_nothing() {
                super::an_unmapped_column_changes_nothing($engine).await;
            }

            #[tokio::test]
            async fn the_source_is_never_a_target() {
                super::the_source_is_never_a_target($engine).await;
            }
        }
    };
}

conformance!(postgres, Engine::Postgres);
conformance!(sqlite, Engine::Sqlite);
conformance!(mysql, Engine::Mysql);
