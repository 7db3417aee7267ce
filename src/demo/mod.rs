//! `lethe demo`: lethe's whole job on one machine with nothing but the binary. It makes a
//! production SQLite file full of (synthetic) personal data, writes a lethe.toml and
//! masking rules for it, refreshes a dev file from it, and shows rows before and after.

mod data;

pub use data::Size;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::config::{Config, ConfigError, ConfigErrors};
use crate::engine::sqlite::{self, Sqlite};
use crate::engine::{Purpose, Snapshot};
use crate::pipeline::{self, Error, RefreshOptions};
use crate::report::RefreshSummary;
use crate::rules::Rule;

/// The demo's lethe.toml. The key is printed here on purpose: it guards synthetic data.
const CONFIG: &str = r#"# lethe demo: production is prod.sqlite, dev is dev.sqlite (both beside this file).
[source]
url = "sqlite://prod.sqlite"

[targets.dev]
url = "sqlite://dev.sqlite"

[masking]
# A real deployment reads its key from the environment: key = "${LETHE_MASKING_KEY}".
key = "demo-masking-key-only-for-synthetic-data"
"#;

/// The demo's rules: every column of every table, as lethe insists.
const RULES: &str = r#"# Rules for the demo's schema `main`. Every column needs a rule.
[customers]
keep = ["id", "country", "created_at"]
full_name = "full_name"
email = "email"
phone = "phone"
date_of_birth = { mask = "date_shift", days = 365 }
ssn = "national_id"
street = "street"
city = "city"
postcode = "postcode"
card_number = { mask = "credit_card", keep_last4 = true }
iban = "iban"
prefs = { mask = "json", paths = { "$.contact.email" = "email", "$.contact.phone" = "phone" } }

[orders]
keep = ["id", "customer_id", "status", "amount"]
# Per customer: every order of one customer moves by the same days.
placed_at = { mask = "date_shift", days = 30, by = ["customer_id"] }
shipped_at = { mask = "date_shift", days = 30, by = ["customer_id"] }
shipping = { mask = "json", paths = { "$.name" = "full_name", "$.street" = "street", "$.city" = "city", "$.postcode" = "postcode" } }

[tickets]
keep = ["id", "customer_id", "subject", "created_at"]
body = "scrub"
"#;

/// What the demo did, for the closing lines.
#[derive(Debug)]
pub struct DemoReport {
    /// The folder holding everything.
    pub dir: PathBuf,
    /// The refresh.
    pub summary: RefreshSummary,
    /// The leak check.
    pub leaks: LeakCheck,
}

/// The demo's leak check: every masked value of dev compared with the real value of the
/// same row in prod.
#[derive(Debug, Default)]
pub struct LeakCheck {
    /// Masked columns compared.
    pub columns: usize,
    /// Values compared.
    pub values: u64,
    /// Values equal to the real one although their rule changes them.
    pub leaked: u64,
    /// Values equal to the real one because their rule leaves them (text with nothing to
    /// scrub, JSON with none of the paths).
    pub unchanged_by_rule: u64,
}

/// Writes the demo into `dir` (made if missing; its earlier demo files are replaced),
/// refreshes dev from prod and returns what happened. Prints the before/after rows.
pub async fn run(dir: &Path, size: Size, progress: bool) -> Result<DemoReport, Error> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| sqlite::Error::File { what, path, source }
    };
    std::fs::create_dir_all(dir.join("masking-rules")).map_err(io("cannot create", dir))?;
    let config_path = dir.join("lethe.toml");
    std::fs::write(&config_path, CONFIG).map_err(io("cannot write", &config_path))?;
    let rules_path = dir.join("masking-rules").join("main.toml");
    std::fs::write(&rules_path, RULES).map_err(io("cannot write", &rules_path))?;
    let prod = dir.join("prod.sqlite");
    sqlite::file::remove(&prod)?;
    println!(
        "1. made a production database {} with {} customers, {} orders and {} support tickets \
         (synthetic, but shaped like the real thing)",
        prod.display(),
        size.customers,
        size.orders,
        size.tickets
    );
    let made = prod.clone();
    sqlite::blocking(move || {
        let conn = sqlite::open_for_writing(&made)?;
        data::create(&conn, size)?;
        conn.close()
            .map_err(|(_, e)| sqlite::Error::query("closing the demo database")(e))
    })
    .await?;
    println!(
        "2. wrote {} and masking rules {}",
        config_path.display(),
        rules_path.display()
    );

    let config = Config::load(&config_path).map_err(Error::Config)?;
    println!("3. refreshing dev from prod, every row through the rules:");
    let summary = pipeline::refresh(&config, "dev", &RefreshOptions::new(1, progress)).await?;
    println!(
        "   refreshed dev: {} tables, {} rows in {:.1} s ({:.0} rows/s)",
        summary.tables,
        summary.rows,
        summary.elapsed.as_secs_f64(),
        summary.rows_per_sec()
    );
    let dev = dir.join("dev.sqlite");
    let conn = sqlite::open_source(&dev)?;
    conn.execute("ATTACH DATABASE ?1 AS prod", [prod.display().to_string()])
        .map_err(sqlite::Error::query("opening prod beside dev"))?;
    show(&conn)?;
    let leaks = leak_check(&config, &conn).await?;
    Ok(DemoReport {
        dir: dir.to_path_buf(),
        summary,
        leaks,
    })
}

/// Prints a few rows of prod and dev side by side.
fn show(conn: &Connection) -> Result<(), Error> {
    println!("\n4. before (prod) and after (dev), same rows:");
    let pairs: &[(&str, &str, &str)] = &[
        ("customers", "full_name", "id <= 3"),
        ("customers", "email", "id <= 3"),
        ("customers", "phone", "id <= 3"),
        ("customers", "ssn", "id <= 3"),
        ("customers", "card_number", "id <= 3"),
        ("customers", "iban", "id <= 3"),
        ("customers", "date_of_birth", "id <= 3"),
        ("customers", "prefs", "id = 1"),
        ("orders", "placed_at", "id <= 2"),
        ("orders", "shipping", "id = 1"),
        ("tickets", "body", "id IN (4, 5, 6)"),
    ];
    for (table, column, which) in pairs {
        let sql = format!(
            "SELECT p.{column} AS before, d.{column} AS after FROM prod.{table} p \
             JOIN main.{table} d ON d.id = p.id WHERE p.{which} ORDER BY p.id"
        );
        let rows: Vec<(Option<String>, Option<String>)> = conn
            .prepare(&sql)
            .and_then(|mut s| s.query_map([], |r| Ok((text(r, 0), text(r, 1))))?.collect())
            .map_err(sqlite::Error::query(format!("reading {table}.{column}")))?;
        for (before, after) in rows {
            println!("   {table}.{column}");
            println!("     prod: {}", before.unwrap_or_else(|| "NULL".into()));
            println!("     dev:  {}", after.unwrap_or_else(|| "NULL".into()));
        }
    }
    Ok(())
}

/// Compares every masked value in dev with the real value of the same row in prod.
async fn leak_check(config: &Config, conn: &Connection) -> Result<LeakCheck, Error> {
    let rules = crate::rules::RuleSet::load(&config.masking.rules_dir, None)?;
    let planned = crate::pipeline::planned::<Sqlite>(config, &rules, Purpose::Plan).await?;
    planned.snapshot.close().await?;
    let plan = planned.plan;
    let key = crate::mask::MaskingKey::new(
        secrecy::ExposeSecret::expose_secret(&config.masking.key).as_bytes(),
    );
    let mut check = LeakCheck::default();
    for table in &plan.tables {
        for column in &table.columns {
            let Rule::Mask(masker) = &column.rule else {
                continue;
            };
            if masker.follows_row() {
                // Drawn from the row, never equal by construction (a shift is never 0).
                continue;
            }
            check.columns += 1;
            let (t, c) = (
                sqlite::ident(&table.table.name.name),
                sqlite::ident(&column.column.name),
            );
            let compared: i64 = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM prod.{t} p JOIN main.{t} d ON d.rowid = p.rowid \
                         WHERE p.{c} IS NOT NULL"
                    ),
                    [],
                    |r| r.get(0),
                )
                .map_err(sqlite::Error::query("comparing dev with prod"))?;
            check.values += u64::try_from(compared).unwrap_or(0);
            let equal: Vec<String> = conn
                .prepare(&format!(
                    "SELECT CAST(p.{c} AS TEXT) FROM prod.{t} p JOIN main.{t} d ON d.rowid = p.rowid \
                     WHERE p.{c} = d.{c}"
                ))
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(sqlite::Error::query("comparing dev with prod"))?;
            for value in equal {
                let mut masked = String::new();
                masker.mask(&value, &key, &mut masked);
                if masked == value {
                    check.unchanged_by_rule += 1;
                } else {
                    check.leaked += 1;
                }
            }
        }
    }
    Ok(check)
}

/// A value of any storage class as text, for showing it (NULL as `None`).
fn text(row: &rusqlite::Row<'_>, i: usize) -> Option<String> {
    match row.get_ref(i).ok()? {
        rusqlite::types::ValueRef::Null => None,
        rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
        rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
            Some(String::from_utf8_lossy(t).into_owned())
        }
    }
}

/// Refuses a demo folder that holds something other than an earlier demo, so the demo
/// never overwrites a real lethe.toml.
pub fn check_folder(dir: &Path) -> Result<(), ConfigErrors> {
    let config = dir.join("lethe.toml");
    match std::fs::read_to_string(&config) {
        Ok(text) if text != CONFIG => Err(ConfigError::in_file(
            &config,
            "this folder holds a lethe.toml that the demo did not write; pick another with --dir",
        )
        .into()),
        _ => Ok(()),
    }
}
