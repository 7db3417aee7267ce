//! The same promises on every engine: one set of scenarios, run against each engine
//! lethe supports. An engine is added by adding an [`Engine`] variant and its few
//! database helpers; every scenario then runs on it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};

use common::TestDb;
use common::child::{Lethe, assert_killed_then_succeeded};
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
        let setup = Self {
            dir,
            engine,
            source,
            dev,
        };
        setup.configure("");
        setup.rules(rules);
        setup
    }

    /// Writes lethe.toml, with `dev_extra` lines under `[targets.dev]`.
    fn configure(&self, dev_extra: &str) {
        std::fs::write(
            self.config(),
            format!(
                "[source]\nurl = \"{}\"\n\n[targets.dev]\nurl = \"{}\"\n{dev_extra}\n\n[targets.prod]\nurl = \"{}\"\n\n[masking]\nkey = \"{}\"\n",
                self.source.url(),
                self.dev.url(),
                self.source.url(),
                common::KEY
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("lethe.toml")
    }

    /// Starts `lethe refresh dev` in the background, paused at `phase`.
    fn spawn_paused(&self, phase: &str, tag: &str) -> Lethe {
        Lethe::spawn(
            &self.config(),
            &["refresh", "dev", "--no-progress"],
            &[],
            Some(phase),
            tag,
        )
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
            .arg(self.config())
            .env("LETHE_LOG", "lethe=info")
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

/// `kill -9` of a run in the middle of its copy, then a rerun started at once: it succeeds
/// on the first try (the killed run's lock went with its process or connections), the live
/// copy answered with its previous contents meanwhile, and the history records the killed
/// run as failed because its process died.
async fn a_killed_run_never_blocks_the_next(engine: Engine) {
    let s = Setup::new(engine, SHOP, SHOP_RULES).await;
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    let before = s
        .dev
        .column("SELECT email FROM customers ORDER BY id")
        .await;
    s.source
        .exec("INSERT INTO customers VALUES (4, 'kim@real.example', 'Kim Real', NULL)")
        .await;
    let mut run = s.spawn_paused("copying", "killed");
    run.paused_at("copying").await;
    run.kill_9().await;
    assert_eq!(
        s.dev
            .column("SELECT email FROM customers ORDER BY id")
            .await,
        before,
        "{engine:?}: the live copy changed"
    );
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    assert_eq!(
        s.dev.column("SELECT email FROM customers").await.len(),
        4,
        "{engine:?}"
    );
    // What the next run says it cleaned up (MySQL drops the shadow database silently).
    let cleaned = match engine {
        Engine::Postgres => Some("dropped a shadow schema left by an earlier run"),
        Engine::Sqlite => Some("an earlier run of this target did not finish (killed?)"),
        Engine::Mysql => None,
    };
    if let Some(cleaned) = cleaned {
        assert!(text(&out).contains(cleaned), "{engine:?}: {}", text(&out));
    }
    assert_killed_then_succeeded(&s.config());
}

/// A run that finds the target held waits for it up to `lock_wait`, saying so, then fails
/// naming who holds it; the holder goes on undisturbed.
async fn a_held_target_names_its_holder(engine: Engine) {
    let s = Setup::new(engine, SHOP, SHOP_RULES).await;
    let mut holder = s.spawn_paused("copying", "holder");
    holder.paused_at("copying").await;
    s.configure("lock_wait = \"1s\"");
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(1), "{engine:?}: {}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("waiting up to 1s for it (lock_wait)")
            && said.contains("is being refreshed by another lethe run: lethe")
            && said.contains("waited 1s for it (lock_wait)"),
        "{engine:?}: {said}"
    );
    // PostgreSQL and SQLite show the holder's process; MySQL its connection.
    let pid = holder.child.id().unwrap_or_default();
    let named = match engine {
        Engine::Mysql => "lethe's connection ".to_owned(),
        Engine::Postgres | Engine::Sqlite => format!("pid {pid} on "),
    };
    assert!(said.contains(&named), "{engine:?}: {named:?} in {said}");
    holder.resume().await;
    let out = holder.finish().await;
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
}

/// A shop with every kind of foreign key a subset must follow: a chain (customers ->
/// orders -> items -> products), a self-reference (employees), a two-table cycle (teams
/// <-> people, one side nullable), a composite key (ledger -> accounts), and a table
/// nothing references (settings). Data from `shop_rows`, so the expected rows are known.
fn subset_schema(engine: Engine) -> String {
    // SQLite checks keys on writes only, so a key may name a table created later; the
    // others add the cycle's second key once both tables exist.
    let (team_lead, cycle) = match engine {
        Engine::Sqlite => (" REFERENCES people(id)", String::new()),
        _ => (
            "",
            "ALTER TABLE teams ADD CONSTRAINT teams_lead_fkey FOREIGN KEY (lead_id) REFERENCES people(id);\n"
                .to_string(),
        ),
    };
    format!(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, name TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id));
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), product_id INTEGER NOT NULL REFERENCES products(id));
CREATE TABLE employees (id INTEGER PRIMARY KEY, manager_id INTEGER REFERENCES employees(id));
CREATE TABLE teams (id INTEGER PRIMARY KEY, lead_id INTEGER{team_lead});
CREATE TABLE people (id INTEGER PRIMARY KEY, team_id INTEGER NOT NULL REFERENCES teams(id));
{cycle}CREATE TABLE accounts (region CHAR(2) NOT NULL, no INTEGER NOT NULL, PRIMARY KEY (region, no));
CREATE TABLE ledger (id INTEGER PRIMARY KEY, region CHAR(2) NOT NULL, acct_no INTEGER NOT NULL, FOREIGN KEY (region, acct_no) REFERENCES accounts(region, no));
CREATE TABLE settings (k VARCHAR(20) PRIMARY KEY, v TEXT);
CREATE TABLE tags (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL);
{}",
        shop_rows()
    )
}

/// The rows of `subset_schema`, as INSERTs.
fn shop_rows() -> String {
    let values = |rows: Vec<String>| rows.join(", ");
    let mut sql = String::new();
    sql += &format!(
        "INSERT INTO customers VALUES {};\n",
        values(
            (1..=100)
                .map(|i| format!("({i}, 'c{i}@real.example', 'Real Name {i}')"))
                .collect()
        )
    );
    sql += &format!(
        "INSERT INTO orders VALUES {};\n",
        values(
            (1..=300)
                .map(|i| format!("({i}, {})", order_customer(i)))
                .collect()
        )
    );
    sql += &format!(
        "INSERT INTO products VALUES {};\n",
        values((1..=50).map(|i| format!("({i}, 'p{i}')")).collect())
    );
    sql += &format!(
        "INSERT INTO items VALUES {};\n",
        values(
            (1..=600)
                .map(|i| format!("({i}, {}, {})", item_order(i), item_product(i)))
                .collect()
        )
    );
    sql += &format!(
        "INSERT INTO employees VALUES {};\n",
        values(
            (1..=30)
                .map(|i| match i / 2 {
                    0 => format!("({i}, NULL)"),
                    m => format!("({i}, {m})"),
                })
                .collect()
        )
    );
    // Team t is led by person 10t+1, who is in team t+1; team 10 has no lead yet.
    sql += &format!(
        "INSERT INTO teams VALUES {};\n",
        values((1..=10).map(|t| format!("({t}, NULL)")).collect())
    );
    sql += &format!(
        "INSERT INTO people VALUES {};\n",
        values(
            (1..=100)
                .map(|p| format!("({p}, {})", (p + 9) / 10))
                .collect()
        )
    );
    for t in 1..10 {
        sql += &format!(
            "UPDATE teams SET lead_id = {} WHERE id = {t};\n",
            10 * t + 1
        );
    }
    sql += &format!(
        "INSERT INTO accounts VALUES {};\n",
        values(
            ["EU", "US"]
                .iter()
                .flat_map(|r| (1..=10).map(move |n| format!("('{r}', {n})")))
                .collect()
        )
    );
    sql += &format!(
        "INSERT INTO ledger VALUES {};\n",
        values(
            (1..=200)
                .map(|i| format!(
                    "({i}, '{}', {})",
                    if i % 2 == 0 { "EU" } else { "US" },
                    1 + i % 10
                ))
                .collect()
        )
    );
    sql += "INSERT INTO settings VALUES ('mode', 'on'), ('tz', 'UTC');\n";
    sql += &format!(
        "INSERT INTO tags VALUES {};\n",
        values((1..=10).map(|i| format!("({i}, 'tag {i}')")).collect())
    );
    sql
}

fn order_customer(order: u32) -> u32 {
    1 + (7 * order) % 100
}

fn item_order(item: u32) -> u32 {
    1 + item % 300
}

fn item_product(item: u32) -> u32 {
    1 + (13 * item) % 50
}

const SUBSET_RULES: &str = "
[customers]
keep = [\"id\"]
email = \"email\"
name = \"full_name\"
[orders]
keep = [\"id\", \"customer_id\"]
[products]
keep = [\"id\", \"name\"]
[items]
keep = [\"id\", \"order_id\", \"product_id\"]
[employees]
keep = [\"id\", \"manager_id\"]
[teams]
keep = [\"id\", \"lead_id\"]
[people]
keep = [\"id\", \"team_id\"]
[accounts]
keep = [\"region\", \"no\"]
[ledger]
keep = [\"id\", \"region\", \"acct_no\"]
[settings]
keep = [\"k\", \"v\"]
[tags]
keep = [\"id\", \"name\"]
";

/// The ids of `table` in `db`, in order.
async fn ids(db: &Db, engine: Engine, table: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = db
        .column(&format!("SELECT {} FROM {table}", engine.text("id")))
        .await
        .into_iter()
        .flatten()
        .map(|id| {
            id.parse()
                .unwrap_or_else(|e| panic!("{table} id {id}: {e}"))
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// A subset follows every foreign key both ways: the children of chosen customers, the
/// products their items need, managers up a self-reference, both sides of a cycle, a
/// composite key; a table nothing reaches comes whole; a sample is the same twice.
async fn a_subset_keeps_every_key_whole(engine: Engine) {
    let s = Setup::new(engine, &subset_schema(engine), SUBSET_RULES).await;
    let schema = engine.schema(&s.source);
    s.configure(&format!(
        "[targets.dev.subset]\n\
         \"{schema}.customers\" = {{ where = \"id <= 20\" }}\n\
         \"{schema}.employees\" = {{ where = \"id IN (20, 27)\" }}\n\
         \"{schema}.teams\" = {{ where = \"id = 3\" }}\n\
         \"{schema}.ledger\" = {{ percent = 50 }}\n\
         \"{schema}.tags\" = {{ rows = 3 }}\n"
    ));
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));

    let customers: Vec<u32> = (1..=20).collect();
    assert_eq!(
        ids(&s.dev, engine, "customers").await,
        customers,
        "{engine:?}"
    );
    let orders: Vec<u32> = (1..=300).filter(|&o| order_customer(o) <= 20).collect();
    assert_eq!(
        ids(&s.dev, engine, "orders").await,
        orders,
        "{engine:?}: every order of a chosen customer"
    );
    let items: Vec<u32> = (1..=600)
        .filter(|&i| orders.contains(&item_order(i)))
        .collect();
    assert_eq!(
        ids(&s.dev, engine, "items").await,
        items,
        "{engine:?}: their items"
    );
    let mut products: Vec<u32> = items.iter().map(|&i| item_product(i)).collect();
    products.sort_unstable();
    products.dedup();
    assert_eq!(
        ids(&s.dev, engine, "products").await,
        products,
        "{engine:?}: only the products the items reference"
    );
    assert_eq!(
        ids(&s.dev, engine, "employees").await,
        vec![1, 2, 3, 5, 6, 10, 13, 20, 27],
        "{engine:?}: the chosen employees and their managers, up to the top"
    );
    assert_eq!(
        ids(&s.dev, engine, "teams").await,
        (3..=10).collect::<Vec<u32>>(),
        "{engine:?}: team 3, then the team of each lead along the cycle"
    );
    let mut people: Vec<u32> = (21..=30).chain((3..=9).map(|t| 10 * t + 1)).collect();
    people.sort_unstable();
    people.dedup();
    assert_eq!(ids(&s.dev, engine, "people").await, people, "{engine:?}");
    assert_eq!(
        s.dev.column("SELECT k FROM settings ORDER BY k").await,
        vec![Some("mode".to_string()), Some("tz".to_string())],
        "{engine:?}: a table no root reaches comes whole"
    );
    // Every key finds its row.
    for orphans in [
        "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)",
        "SELECT count(*) FROM items i WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = i.product_id)",
        "SELECT count(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM teams t WHERE t.id = p.team_id)",
        "SELECT count(*) FROM teams t WHERE t.lead_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM people p WHERE p.id = t.lead_id)",
        "SELECT count(*) FROM ledger l WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.region = l.region AND a.no = l.acct_no)",
    ] {
        let orphans = engine.text(&format!("({orphans})"));
        assert_eq!(
            s.dev.column(&format!("SELECT {orphans}")).await,
            vec![Some("0".to_string())],
            "{engine:?}: {orphans}"
        );
    }
    let tags = ids(&s.dev, engine, "tags").await;
    assert_eq!(tags.len(), 3, "{engine:?}: rows = 3 takes three: {tags:?}");
    let ledger = ids(&s.dev, engine, "ledger").await;
    assert!(
        (60..=140).contains(&ledger.len()),
        "{engine:?}: a 50% sample of 200 rows has {} rows",
        ledger.len()
    );
    // The same sample on the next run.
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    assert_eq!(ids(&s.dev, engine, "ledger").await, ledger, "{engine:?}");
    assert_eq!(ids(&s.dev, engine, "tags").await, tags, "{engine:?}");
}

/// A `where` the source refuses is a config error (exit 2) that points into lethe.toml,
/// from `check` and from `refresh`, and the target is not touched.
async fn a_where_the_source_refuses_changes_nothing(engine: Engine) {
    let s = Setup::new(engine, &subset_schema(engine), SUBSET_RULES).await;
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    let before = ids(&s.dev, engine, "customers").await;
    let schema = engine.schema(&s.source);
    s.configure(&format!(
        "[targets.dev.subset]\n\"{schema}.customers\" = {{ where = \"id <= 20 AND no_such_column > 1\" }}\n"
    ));
    for args in [&["check"][..], &["refresh", "dev", "--no-progress"]] {
        let out = s.lethe(args);
        let said = text(&out);
        assert_eq!(code(&out), Some(2), "{engine:?} {args:?}: {said}");
        assert!(
            said.contains("lethe.toml:7:"),
            "{engine:?} {args:?}: {said}"
        );
        assert!(said.contains("customers"), "{engine:?} {args:?}: {said}");
    }
    assert_eq!(ids(&s.dev, engine, "customers").await, before, "{engine:?}");
}

/// A synthetic table: generated rows whose foreign keys are drawn from the rows the copy
/// has (a subsetted parent), the same rows on every run, production's never read.
async fn a_synthetic_table_draws_from_the_copy(engine: Engine) {
    let schema_sql = format!(
        "{}\nCREATE TABLE visits (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), kind VARCHAR(10) NOT NULL, note TEXT);\n\
         INSERT INTO visits VALUES (1, 1, 'real', 'a real secret');\n",
        subset_schema(engine)
    );
    let rules = format!(
        "{SUBSET_RULES}\n[visits]\nsynthetic = {{ rows = 1000 }}\nkeep = [\"id\", \"customer_id\"]\n\
         kind = {{ synth = \"choice\", values = [\"web\", \"app\"] }}\nnote = {{ synth = \"lorem\", words = [2, 4] }}\n"
    );
    let s = Setup::new(engine, &schema_sql, &rules).await;
    let schema = engine.schema(&s.source);
    s.configure(&format!(
        "[targets.dev.subset]\n\"{schema}.customers\" = {{ where = \"id <= 20\" }}\n"
    ));
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    assert_eq!(
        ids(&s.dev, engine, "visits").await,
        (1..=1000).collect::<Vec<u32>>(),
        "{engine:?}"
    );
    let count = |sql: &str| engine.text(&format!("({sql})"));
    assert_eq!(
        s.dev
            .column(&format!(
                "SELECT {}",
                count("SELECT count(*) FROM visits v WHERE v.customer_id NOT IN (SELECT id FROM customers) OR v.customer_id > 20 OR v.kind NOT IN ('web', 'app') OR v.note LIKE '%real%'")
            ))
            .await,
        vec![Some("0".to_string())],
        "{engine:?}: keys from the copied customers only, values from their rules"
    );
    let digest = s.dev.column("SELECT kind FROM visits ORDER BY id").await;
    let out = s.lethe(&["refresh", "dev", "--no-progress"]);
    assert_eq!(code(&out), Some(0), "{engine:?}: {}", text(&out));
    assert_eq!(
        s.dev.column("SELECT kind FROM visits ORDER BY id").await,
        digest,
        "{engine:?}: the same rows on every run"
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

            #[tokio::test]
            async fn a_killed_run_never_blocks_the_next() {
                super::a_killed_run_never_blocks_the_next($engine).await;
            }

            #[tokio::test]
            async fn a_held_target_names_its_holder() {
                super::a_held_target_names_its_holder($engine).await;
            }

            #[tokio::test]
            async fn a_subset_keeps_every_key_whole() {
                super::a_subset_keeps_every_key_whole($engine).await;
            }

            #[tokio::test]
            async fn a_where_the_source_refuses_changes_nothing() {
                super::a_where_the_source_refuses_changes_nothing($engine).await;
            }

            #[tokio::test]
            async fn a_synthetic_table_draws_from_the_copy() {
                super::a_synthetic_table_draws_from_the_copy($engine).await;
            }
        }
    };
}

conformance!(postgres, Engine::Postgres);
conformance!(sqlite, Engine::Sqlite);
conformance!(mysql, Engine::Mysql);
