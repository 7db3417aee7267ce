//! How a subset's queries are written for SQLite, and the keyed sample function SQLite
//! lacks, added to every source connection.

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use super::ident;

/// Adds the sample function to a source connection.
pub fn add_sample(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        SAMPLE,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let key: String = ctx.get(0)?;
            let seed: i64 = ctx.get(1)?;
            Ok(sample(&key, seed))
        },
    )
}

/// The name of the sample function on source connections (SQLite has no keyed hash).
const SAMPLE: &str = "lethe_sample";

/// `key`'s place in `[0, 1_000_000)` under `seed`: the first bytes of SHA-256 of both.
fn sample(key: &str, seed: i64) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut head = [0_u8; 8];
    head.copy_from_slice(&digest[..8]);
    i64::try_from(u64::from_le_bytes(head) % 1_000_000).unwrap_or(0)
}

/// SQLite's SQL for a subset's queries.
pub struct SqliteDialect;

impl crate::subset::Dialect for SqliteDialect {
    fn ident(&self, name: &str) -> String {
        ident(name)
    }

    /// The table alone: a file has one schema, and readers name tables unqualified.
    fn table(&self, name: &crate::catalog::TableName) -> String {
        ident(&name.name)
    }

    fn sample(&self, key: &str, seed: i64) -> String {
        format!("{SAMPLE}({key}, {seed})")
    }

    fn key_text(&self, columns: &[String]) -> String {
        match columns {
            [one] => format!("CAST({one} AS TEXT)"),
            many => {
                let quoted: Vec<String> = many.iter().map(|c| format!("quote({c})")).collect();
                format!("({})", quoted.join(" || ',' || "))
            }
        }
    }
}
