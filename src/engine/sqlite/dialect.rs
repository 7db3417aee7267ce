//! How a subset's queries are written for SQLite, and the keyed sample function SQLite
//! lacks, added to every source connection.

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;

use super::ident;

/// Adds the keyed hash to a source connection.
pub fn add_hash(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        HASH,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let seed: i64 = ctx.get(1)?;
            // Any storage class: a key's text, bytes or number; NULL hashes as nothing.
            Ok(match ctx.get_raw(0) {
                ValueRef::Null => hash(b"", seed),
                ValueRef::Integer(i) => hash(i.to_string().as_bytes(), seed),
                ValueRef::Real(r) => hash(r.to_string().as_bytes(), seed),
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => hash(bytes, seed),
            })
        },
    )
}

/// The name of the keyed hash on source connections (SQLite has none of its own).
const HASH: &str = "lethe_hash";

/// `key` hashed under `seed`: the first bytes of SHA-256 of both, as a non-negative integer.
fn hash(key: &[u8], seed: i64) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(key)
        .finalize();
    let mut head = [0_u8; 8];
    head.copy_from_slice(&digest[..8]);
    i64::try_from(u64::from_le_bytes(head) >> 1).unwrap_or(0)
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

    fn hash(&self, key: &str, seed: i64) -> String {
        format!("{HASH}({key}, {seed})")
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
