//! The pre-swap checks of the shadow: every row read is there, every constraint that was
//! NOT VALID in the source holds, every sequence stands where the source's did.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::catalog::{self, SequenceValue};
use super::dump_rewrite::session_setup;
use super::error::redacted;
use super::sql::{ident, qualified, safe};
use super::target::{TargetSession, run};
use super::{DbFailure, Error, SchemaMap};
use crate::catalog::TableName;
use crate::engine::CheckFailure;

impl TargetSession {
    /// Counts the rows of every shadow table and compares them with what was read from the
    /// source snapshot (`expected`, by source name), on `jobs` connections at once.
    pub async fn check_row_counts(
        &self,
        map: &SchemaMap,
        expected: &[(TableName, u64)],
        jobs: usize,
    ) -> Result<Vec<CheckFailure>, Error> {
        let jobs = jobs.max(1).min(expected.len());
        let work: Vec<(TableName, TableName, u64)> = expected
            .iter()
            .map(|(name, rows)| (name.clone(), map.shadow_table(name), *rows))
            .collect();
        let queue = Arc::new(Mutex::new(work.into_iter()));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..jobs {
            let queue = Arc::clone(&queue);
            let target = self.target.clone();
            workers.spawn(async move {
                let mut conn = target.connect().await?;
                // A row-level policy must make the count fail, not make it smaller.
                run(
                    &mut conn,
                    "SET row_security = off",
                    "preparing a check session",
                )
                .await?;
                let mut failures = Vec::new();
                loop {
                    let next = queue.lock().await.next();
                    let Some((name, shadow, rows)) = next else {
                        return Ok::<_, Error>(failures);
                    };
                    let sql = format!("SELECT count(*) FROM {}", qualified(&shadow));
                    let found: i64 = sqlx::query_scalar(safe(sql))
                        .fetch_one(&mut conn)
                        .await
                        .map_err(Error::query(format!("counting the rows of {name}")))?;
                    if u64::try_from(found).ok() != Some(rows) {
                        failures.push(CheckFailure {
                            object: name,
                            problem: format!(
                                "the shadow holds {found} rows, the source snapshot {rows}"
                            ),
                        });
                    }
                }
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = workers.join_next().await {
            failures.extend(done.map_err(|e| Error::Query {
                what: "counting rows".into(),
                source: DbFailure::from_join(e),
            })??);
        }
        failures.sort_by(|a, b| a.object.cmp(&b.object));
        Ok(failures)
    }

    /// Validates every foreign key and check constraint that is still `NOT VALID` in the
    /// shadow (as it was created in the source), each in its own transaction. Those that
    /// fail are returned, by table (or domain) and constraint.
    pub async fn validate_constraints(
        &mut self,
        map: &SchemaMap,
    ) -> Result<Vec<CheckFailure>, Error> {
        let shadows: Vec<String> = map.entries.iter().map(|e| e.shadow.clone()).collect();
        // Constraints inherited by partitions and child tables are validated with their
        // parent's, so only the parents are listed.
        let pending: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT n.nspname::text, c.conname::text, cl.relname::text, t.typname::text
             FROM pg_constraint c
             JOIN pg_namespace n ON n.oid = c.connamespace
             LEFT JOIN pg_class cl ON cl.oid = c.conrelid
             LEFT JOIN pg_type t ON t.oid = c.contypid
             WHERE NOT c.convalidated AND c.contype IN ('f', 'c') AND n.nspname = ANY($1)
               AND c.conparentid = 0 AND (c.contype = 'f' OR c.conislocal)
             ORDER BY 1, 3, 4, 2",
        )
        .bind(&shadows)
        .fetch_all(&mut self.conn)
        .await
        .map_err(Error::query("listing NOT VALID constraints"))?;
        let mut failures = Vec::new();
        for (schema, constraint, table, domain) in pending {
            let live = map.live_of(&schema).unwrap_or(&schema).to_string();
            let (kind, object, owner) = match (table, domain) {
                (Some(table), _) => ("TABLE", table, ""),
                (None, Some(domain)) => ("DOMAIN", domain, "domain "),
                (None, None) => continue,
            };
            let sql = format!(
                "BEGIN; {} ALTER {kind} {} VALIDATE CONSTRAINT {}; COMMIT;",
                session_setup(true),
                qualified(&TableName::new(schema.clone(), object.clone())),
                ident(&constraint)
            );
            if let Err(error) = sqlx::raw_sql(safe(sql)).execute(&mut self.conn).await {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
                failures.push(CheckFailure {
                    object: TableName::new(live, object),
                    problem: format!(
                        "{owner}constraint {constraint} (NOT VALID in the source) does not hold \
                         on the copied rows: {}",
                        redacted(error)
                    ),
                });
            }
        }
        if failures.is_empty() {
            // Whatever is still NOT VALID was not reached through its parent.
            let left: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT n.nspname::text, coalesce(cl.relname, t.typname)::text, c.conname::text
                 FROM pg_constraint c
                 JOIN pg_namespace n ON n.oid = c.connamespace
                 LEFT JOIN pg_class cl ON cl.oid = c.conrelid
                 LEFT JOIN pg_type t ON t.oid = c.contypid
                 WHERE NOT c.convalidated AND c.contype IN ('f', 'c') AND n.nspname = ANY($1)
                 ORDER BY 1, 2, 3",
            )
            .bind(&shadows)
            .fetch_all(&mut self.conn)
            .await
            .map_err(Error::query("listing NOT VALID constraints"))?;
            for (schema, object, constraint) in left {
                let live = map.live_of(&schema).unwrap_or(&schema).to_string();
                failures.push(CheckFailure {
                    object: TableName::new(live, object),
                    problem: format!("constraint {constraint} is still NOT VALID"),
                });
            }
        }
        Ok(failures)
    }

    /// The highest value in the shadow of the column `sequence` numbers, if it numbers one.
    async fn highest(
        &mut self,
        map: &SchemaMap,
        sequence: &SequenceValue,
    ) -> Result<Option<i64>, Error> {
        let Some((table, column)) = &sequence.owner else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT max({})::int8 FROM {}",
            super::sql::ident(column),
            super::sql::qualified(&map.shadow_table(table))
        );
        sqlx::query_scalar::<_, Option<i64>>(super::sql::safe(sql))
            .fetch_one(&mut self.conn)
            .await
            .map_err(Error::query("reading the highest value a sequence numbers"))
    }

    /// Compares every shadow sequence with the value it had in the source snapshot (or,
    /// for one that numbers a column, the column's highest value when that is ahead).
    pub async fn check_sequences(
        &mut self,
        map: &SchemaMap,
        source: &[SequenceValue],
    ) -> Result<Vec<CheckFailure>, Error> {
        let shadows: Vec<String> = map.entries.iter().map(|e| e.shadow.clone()).collect();
        let names: Vec<(String, String)> = sqlx::query_as(
            "SELECT schemaname::text, sequencename::text
             FROM pg_sequences WHERE schemaname = ANY($1)",
        )
        .bind(&shadows)
        .fetch_all(&mut self.conn)
        .await
        .map_err(Error::query("reading the shadow sequences"))?;
        let names: Vec<TableName> = names
            .into_iter()
            .map(|(s, n)| TableName::new(s, n))
            .collect();
        let mut found: BTreeMap<TableName, (i64, bool)> =
            catalog::sequence_states(&mut self.conn, &names)
                .await?
                .into_iter()
                .map(|v| {
                    let live = map
                        .live_of(&v.name.schema)
                        .unwrap_or(&v.name.schema)
                        .to_string();
                    (
                        TableName::new(live, v.name.name),
                        (v.last_value, v.is_called),
                    )
                })
                .collect();
        let shown = |(last, called): (i64, bool)| {
            if called {
                last.to_string()
            } else {
                format!("{last} (not yet used)")
            }
        };
        let mut failures = Vec::new();
        for sequence in source {
            let problem = match found.remove(&sequence.name) {
                None => "sequence is missing in the shadow".to_string(),
                Some(state) if state == (sequence.last_value, sequence.is_called) => continue,
                // Moved past production's state to the highest value of its column.
                Some((last, true))
                    if last > sequence.handed_out()
                        && self.highest(map, sequence).await? == Some(last) =>
                {
                    continue;
                }
                Some(state) => format!(
                    "sequence is at {} in the shadow, {} in the source snapshot",
                    shown(state),
                    shown((sequence.last_value, sequence.is_called))
                ),
            };
            failures.push(CheckFailure {
                object: sequence.name.clone(),
                problem,
            });
        }
        for name in found.into_keys() {
            failures.push(CheckFailure {
                object: name,
                problem: "sequence is in the shadow but not in the source snapshot".into(),
            });
        }
        Ok(failures)
    }
}
