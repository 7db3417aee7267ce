//! The order in which the shadow's indexes and keys are built: biggest table first, so the
//! longest build starts at once and the `jobs` connections finish together, instead of one
//! big index starting last and running alone while the other connections sit idle.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use sqlx::postgres::PgConnection;

use super::Error;
use super::dump_rewrite::DumpStatement;

/// The table a pg_dump `CREATE [UNIQUE] INDEX ... ON [ONLY] s.t` or
/// `ALTER TABLE [ONLY] s.t ADD CONSTRAINT ...` statement builds on, as pg_dump writes it
/// (schema-qualified, each part bare or `"quoted"`).
static BUILT_ON: LazyLock<Regex> = LazyLock::new(|| {
    let part = r#"("(?:[^"]|"")+"|[^\s."(]+)"#;
    Regex::new(&format!(
        r#"(?is)^(?:CREATE\s+(?:UNIQUE\s+)?INDEX\s.*?\sON\s+|ALTER\s+TABLE\s+)(?:ONLY\s+)?{part}\.{part}"#
    ))
    .expect("a valid regex")
});

/// `name` unquoted: `"Order ""Items"""` -> `Order "Items"`, `orders` -> `orders`.
fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_owned(),
    }
}

/// The (schema, table) that `sql` builds an index or key on, if it is such a statement.
fn built_on(sql: &str) -> Option<(String, String)> {
    let found = BUILT_ON.captures(sql)?;
    Some((unquote(&found[1]), unquote(&found[2])))
}

/// Sorts `statements` so that those on the biggest tables, as loaded in the shadow now,
/// come first.
pub(super) async fn biggest_first(
    conn: &mut PgConnection,
    statements: &mut [DumpStatement],
) -> Result<(), Error> {
    let mut schemas: Vec<String> = statements
        .iter()
        .filter_map(|s| built_on(&s.sql).map(|(schema, _)| schema))
        .collect();
    schemas.sort_unstable();
    schemas.dedup();
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text, pg_relation_size(c.oid)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname = ANY($1)",
    )
    .bind(&schemas)
    .fetch_all(conn)
    .await
    .map_err(Error::query("reading the shadow's table sizes"))?;
    let sizes = rows
        .into_iter()
        .map(|(schema, table, size)| ((schema, table), size))
        .collect();
    sort_by_size(statements, &sizes);
    Ok(())
}

/// Sorts `statements` so that those on the biggest tables (by `sizes`, keyed by schema
/// and table name) come first. Statements on a table of unknown size keep their dump
/// order after the others: the order changes only when each runs, never what runs.
fn sort_by_size(statements: &mut [DumpStatement], sizes: &HashMap<(String, String), i64>) {
    statements.sort_by_cached_key(|s| {
        let size = built_on(&s.sql)
            .and_then(|table| sizes.get(&table).copied())
            .unwrap_or(0);
        std::cmp::Reverse(size)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement tagged with `tag` in its object type, to read the order back.
    fn statement(tag: &str, sql: &str) -> DumpStatement {
        DumpStatement {
            object_type: tag.into(),
            sql: sql.into(),
        }
    }

    #[test]
    fn finds_the_table_of_each_form_pg_dump_writes() {
        assert_eq!(
            built_on(
                "CREATE INDEX orders_by_customer ON lethe_shadow_public.orders USING btree (customer_id)"
            ),
            Some(("lethe_shadow_public".into(), "orders".into()))
        );
        assert_eq!(
            built_on(
                "CREATE UNIQUE INDEX \"Odd ON name\" ON ONLY s.\"Order \"\"Items\"\"\" USING btree (id)"
            ),
            Some(("s".into(), "Order \"Items\"".into()))
        );
        assert_eq!(
            built_on(
                "ALTER TABLE ONLY lethe_shadow_public.customers\n    ADD CONSTRAINT customers_pkey PRIMARY KEY (id)"
            ),
            Some(("lethe_shadow_public".into(), "customers".into()))
        );
        assert_eq!(built_on("COMMENT ON INDEX s.i IS 'x'"), None);
    }

    #[test]
    fn the_biggest_table_goes_first_and_unknown_ones_keep_their_order() {
        let mut statements = vec![
            statement("a", "CREATE INDEX a ON s.small USING btree (x)"),
            statement("b", "CREATE INDEX b ON s.unknown USING btree (x)"),
            statement(
                "pk",
                "ALTER TABLE ONLY s.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (id)",
            ),
            statement("c", "CREATE INDEX c ON s.other_unknown USING btree (x)"),
            statement("d", "CREATE INDEX d ON s.big USING btree (y)"),
        ];
        let sizes = HashMap::from([
            (("s".to_owned(), "small".to_owned()), 10),
            (("s".to_owned(), "big".to_owned()), 1_000),
        ]);
        sort_by_size(&mut statements, &sizes);
        let order: Vec<_> = statements.iter().map(|s| s.object_type.as_str()).collect();
        assert_eq!(order, ["pk", "d", "a", "b", "c"]);
    }
}
