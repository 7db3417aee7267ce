//! `after_refresh` hooks: a file of SQL run in the shadow before the checks let it be
//! swapped in, refused if it ends lethe's transaction or writes to the live copy.

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};

use super::error::redacted;
use super::sql::{ident, safe};
use super::target::run;
use super::{Error, SchemaMap, Target};
use crate::engine::HookError;

/// Lock modes that only read a table; any other mode on a live table means a hook wrote to,
/// or altered, the live copy.
const READ_LOCKS: &[&str] = &["AccessShareLock", "RowShareLock"];

impl Target {
    /// Runs one `after_refresh` hook (`sql`, the file's text, sent as it is) in the shadow:
    /// on a connection of its own whose `search_path` is the shadow schemas (in the order
    /// the schemas are copied), then the schemas of the default path that are not copied,
    /// in one transaction. It fails, rolled back, if it wrote to a live table.
    pub async fn run_hook(&self, map: &SchemaMap, sql: &str) -> Result<(), HookError> {
        let mut conn = self.connect().await?;
        let default_path: Vec<String> =
            sqlx::query_scalar("SELECT unnest(current_schemas(false))::text")
                .fetch_all(&mut conn)
                .await
                .map_err(Error::query("reading the default search_path"))?;
        let ours = |s: &String| {
            map.entries
                .iter()
                .any(|e| &e.live == s || &e.shadow == s || &e.previous == s)
        };
        let path: Vec<String> = map
            .entries
            .iter()
            .map(|e| ident(&e.shadow))
            .chain(default_path.iter().filter(|s| !ours(s)).map(|s| ident(s)))
            .collect();
        let setup = format!("SET search_path = {}; BEGIN;", path.join(", "));
        run(&mut conn, &setup, "preparing the hook's session").await?;
        let xact = "SELECT txid_current()";
        let before: i64 = sqlx::query_scalar(xact)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::query("starting the hook's transaction"))?;
        if let Err(error) = sqlx::raw_sql(safe(sql.to_string()))
            .execute(&mut conn)
            .await
        {
            let position = error
                .as_database_error()
                .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
                .and_then(|e| match e.position() {
                    Some(PgErrorPosition::Original(p)) => Some(p),
                    _ => None,
                });
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            return Err(HookError::Sql {
                failure: redacted(error).to_string(),
                position,
            });
        }
        let after: i64 = sqlx::query_scalar(xact)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::query("checking the hook's transaction"))?;
        if after != before {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            return Err(HookError::EndedTransaction);
        }
        let written: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT format('%I.%I', n.nspname, c.relname)
             FROM pg_locks l
             JOIN pg_class c ON c.oid = l.relation
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE l.pid = pg_backend_pid() AND l.mode <> ALL($1) AND n.nspname = ANY($2)
               AND c.relkind NOT IN ('i', 'I')
             ORDER BY 1",
        )
        .bind(READ_LOCKS)
        .bind(map.live_names())
        .fetch_all(&mut conn)
        .await
        .map_err(Error::query("checking what the hook changed"))?;
        if !written.is_empty() {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            return Err(HookError::WroteLive(written));
        }
        run(&mut conn, "COMMIT", "committing the hook").await?;
        Ok(())
    }
}

impl From<Error> for HookError {
    fn from(error: Error) -> Self {
        HookError::Database(error.into())
    }
}
