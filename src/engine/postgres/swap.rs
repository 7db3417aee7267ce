//! The swap (shadow becomes live, live becomes previous, in one transaction), dropping
//! the replaced copy, and the rollback that swaps the previous copy back. Each swap
//! leaves a record in the schema comments, so a rollback needs no source.

use sqlx::postgres::PgConnection;

use super::Error;
use super::SchemaMap;
use super::schema_map::SchemaNames;
use super::sql::{ident, literal, qualified};
use super::target::{TargetSession, run};
use crate::catalog::TableName;
use crate::engine::Rollback;

/// How long dropping the replaced copy after a swap (`keep_previous = 0`) waits for
/// queries that still read it; past that, the next run drops it.
const DROP_PREVIOUS_WAIT: &str = "30s";

impl TargetSession {
    /// Makes the shadow live in one transaction; the live copy becomes the previous one
    /// (an older previous copy is dropped first). Materialized views that hold data in the
    /// source are refreshed inside it, after the renames, so the functions they call (bound
    /// by name) read the new copy.
    ///
    /// Each schema made live, and with `keep_previous` each one made previous, gets this
    /// swap's record (a schema comment naming the swap and its schemas), which `rollback`
    /// reads. Without `keep_previous` the replaced copy carries no record and
    /// [`Self::drop_previous`] removes it after the commit, so the swap itself never waits
    /// for queries still reading it.
    pub async fn swap(
        &mut self,
        map: &SchemaMap,
        matviews: &[TableName],
        keep_previous: bool,
    ) -> Result<(), Error> {
        let conn = &mut self.conn;
        for entry in &map.entries {
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&entry.previous));
            run(conn, &drop, "dropping the older previous copy").await?;
        }
        let live = map.live_names();
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&live)
                .fetch_all(&mut *conn)
                .await
                .map_err(Error::query("swapping"))?;
        let generation = swap_records(conn)
            .await?
            .iter()
            .map(|(_, r)| r.generation)
            .max()
            .unwrap_or(0)
            + 1;
        let record = SwapRecord {
            generation,
            schemas: live,
        };
        let mut sql = String::from("BEGIN;\n");
        for entry in &map.entries {
            if existing.contains(&entry.live) {
                let comment = if keep_previous {
                    record.previous_comment(&entry.live)
                } else {
                    format!(
                        "lethe previous copy of {}; dropped after the swap (keep_previous = 0)",
                        ident(&entry.live)
                    )
                };
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                    ident(&entry.live),
                    ident(&entry.previous),
                    literal(&comment),
                ));
            }
            sql.push_str(&format!(
                "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                ident(&entry.shadow),
                ident(&entry.live),
                literal(&record.live_comment()),
            ));
        }
        if let Err(error) = run(conn, &sql, "swapping the schemas").await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(error);
        }
        if let Err(error) = refresh_matviews(conn, matviews).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(error);
        }
        run(conn, "COMMIT", "committing the swap").await
    }

    /// Drops the copies a swap replaced (`keep_previous = 0`). Each drop waits at most
    /// 30 s for queries that still read the old tables.
    pub async fn drop_previous(&mut self, map: &SchemaMap) -> Result<(), Error> {
        for entry in &map.entries {
            let sql = format!(
                "BEGIN; SET LOCAL lock_timeout = {}; DROP SCHEMA IF EXISTS {} CASCADE; COMMIT;",
                literal(DROP_PREVIOUS_WAIT),
                ident(&entry.previous)
            );
            let dropped = run(
                &mut self.conn,
                &sql,
                &format!("dropping {}", entry.previous),
            )
            .await;
            if dropped.is_err() {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            }
            dropped?;
        }
        Ok(())
    }

    /// Swaps the previous copy of the last swap back in, in one transaction: for each schema
    /// of that swap, `lethe_prev_<schema>` and `<schema>` trade names, so running it again
    /// swaps forward. Only schemas that carry the last swap's record are moved; anything
    /// else in the way stops it before it changes anything. Call it after
    /// [`Self::drop_leftover_shadows`]: the shadow names serve as the temporary names.
    pub async fn rollback(&mut self) -> Result<Rollback, Error> {
        let records = swap_records(&mut self.conn).await?;
        let Some(last) = records.iter().map(|(_, r)| r).max_by_key(|r| r.generation) else {
            return Ok(Rollback::NeverSwapped);
        };
        let generation = last.generation;
        let map = SchemaMap::new(&last.schemas);
        let current = |name: &str| {
            records
                .iter()
                .any(|(n, r)| n == name && r.generation == generation)
        };
        let names: Vec<String> = map
            .entries
            .iter()
            .flat_map(|e| [e.live.clone(), e.previous.clone()])
            .collect();
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&names)
                .fetch_all(&mut self.conn)
                .await
                .map_err(Error::query("looking for the previous copy"))?;
        let exists = |name: &str| existing.iter().any(|e| e == name);

        let moves: Vec<(&SchemaNames, bool, bool)> = map
            .entries
            .iter()
            .map(|e| (e, current(&e.live), current(&e.previous)))
            .collect();
        if !moves.iter().any(|(_, _, previous)| *previous) {
            return Ok(Rollback::NoPrevious {
                schemas: map.live_names(),
            });
        }
        for &(entry, live, previous) in &moves {
            if previous && exists(&entry.live) && !live {
                return Ok(Rollback::Blocked {
                    schema: entry.live.clone(),
                    reason: "lethe's last swap (refresh or rollback) did not make it".into(),
                });
            }
            if live && exists(&entry.previous) && !previous {
                return Ok(Rollback::Blocked {
                    schema: entry.previous.clone(),
                    reason: format!(
                        "it is not the copy of {} that lethe's last swap replaced",
                        entry.live
                    ),
                });
            }
        }

        let record = SwapRecord {
            generation: generation + 1,
            schemas: map.live_names(),
        };
        let mut sql = String::from("BEGIN;\n");
        let mut moved = Vec::new();
        for (entry, live, previous) in moves {
            if live {
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\n",
                    ident(&entry.live),
                    ident(&entry.shadow)
                ));
            }
            if previous {
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                    ident(&entry.previous),
                    ident(&entry.live),
                    literal(&record.live_comment()),
                ));
            }
            if live {
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                    ident(&entry.shadow),
                    ident(&entry.previous),
                    literal(&record.previous_comment(&entry.live)),
                ));
            }
            if live || previous {
                moved.push(entry.live.clone());
            }
        }
        sql.push_str("COMMIT;");
        if let Err(error) = run(&mut self.conn, &sql, "swapping the previous copy back").await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            return Err(error);
        }
        Ok(Rollback::Done { schemas: moved })
    }
}

/// What lethe writes, as the schema's comment, on each schema a swap (or a rollback) made
/// live or previous: the swap's number (counting up in this database) and every schema it
/// swapped. `rollback` reads the newest to know what to swap back, without the source.
///
/// `lethe live copy; swap 3 of "public", "Sales"` /
/// `lethe previous copy of "public"; swap 3 of "public", "Sales"`
#[derive(Debug, Clone, PartialEq, Eq)]
struct SwapRecord {
    generation: u64,
    schemas: Vec<String>,
}

impl SwapRecord {
    fn tail(&self) -> String {
        let schemas: Vec<String> = self.schemas.iter().map(|s| ident(s)).collect();
        format!("; swap {} of {}", self.generation, schemas.join(", "))
    }

    fn live_comment(&self) -> String {
        format!("lethe live copy{}", self.tail())
    }

    fn previous_comment(&self, live: &str) -> String {
        format!("lethe previous copy of {}{}", ident(live), self.tail())
    }

    /// Reads a record back from a schema comment; `None` for any other comment.
    fn parse(comment: &str) -> Option<Self> {
        let rest = match comment.strip_prefix("lethe live copy") {
            Some(rest) => rest,
            None => {
                let (_, rest) = take_ident(comment.strip_prefix("lethe previous copy of ")?)?;
                rest
            }
        };
        let (number, mut rest) = rest.strip_prefix("; swap ")?.split_once(" of ")?;
        let generation = number.parse().ok()?;
        let mut schemas = Vec::new();
        loop {
            let (name, after) = take_ident(rest)?;
            schemas.push(name);
            if after.is_empty() {
                return Some(Self {
                    generation,
                    schemas,
                });
            }
            rest = after.strip_prefix(", ")?;
        }
    }
}

/// Splits a leading `"quoted identifier"` (with `""` for `"`) off `text`.
fn take_ident(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut name = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            name.push(c);
        } else if body[i + 1..].starts_with('"') {
            name.push('"');
            chars.next();
        } else {
            return Some((name, &body[i + 1..]));
        }
    }
    None
}

/// Every schema that carries a swap record, with it.
async fn swap_records(conn: &mut PgConnection) -> Result<Vec<(String, SwapRecord)>, Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT nspname::text, obj_description(oid, 'pg_namespace')
         FROM pg_namespace WHERE obj_description(oid, 'pg_namespace') LIKE 'lethe %'",
    )
    .fetch_all(conn)
    .await
    .map_err(Error::query("reading lethe's swap records"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, comment)| SwapRecord::parse(&comment).map(|r| (name, r)))
        .collect())
}

/// Refreshes `views` in creation order (pg_dump creates a view after what it reads).
async fn refresh_matviews(conn: &mut PgConnection, views: &[TableName]) -> Result<(), Error> {
    if views.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = views.iter().map(qualified).collect();
    let ordered: Vec<String> =
        sqlx::query_scalar("SELECT v FROM unnest($1::text[]) AS v ORDER BY v::regclass::oid")
            .bind(&names)
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::query("ordering the materialized views"))?;
    for view in ordered {
        // `view` is one of `names`, each built by `qualified`.
        let sql = format!("REFRESH MATERIALIZED VIEW {view}");
        run(conn, &sql, &format!("refreshing materialized view {view}")).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_records_read_back_what_was_written() {
        let record = SwapRecord {
            generation: 12,
            schemas: vec!["public".into(), "Sales \"EU\", 2; swap 3 of".into()],
        };
        let live = record.live_comment();
        assert_eq!(
            live,
            "lethe live copy; swap 12 of \"public\", \"Sales \"\"EU\"\", 2; swap 3 of\""
        );
        assert_eq!(SwapRecord::parse(&live), Some(record.clone()));
        let previous = record.previous_comment("x\"; swap 1 of \"y");
        assert_eq!(SwapRecord::parse(&previous), Some(record));
        for other in [
            "lethe live copy",
            "lethe shadow",
            "lethe previous copy of public",
            "lethe previous copy of \"public\"; dropped after the swap (keep_previous = 0)",
            "lethe live copy; swap x of \"a\"",
            "lethe live copy; swap 1 of \"a\", ",
            "lethe live copy; swap 1 of \"a",
            "standard public schema",
        ] {
            assert_eq!(SwapRecord::parse(other), None, "{other}");
        }
    }
}
