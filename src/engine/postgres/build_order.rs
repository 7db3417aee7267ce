//! The order in which the shadow's indexes and keys are built: biggest table first, so the
//! longest build starts at once and the `jobs` connections finish together, instead of one
//! big index starting last and running alone while the other connections sit idle.

use std::collections::{HashMap, HashSet};
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
pub(super) fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_owned(),
    }
}

/// The (schema, table) that `sql` builds an index or key on, if it is such a statement.
pub(super) fn built_on(sql: &str) -> Option<(String, String)> {
    let found = BUILT_ON.captures(sql)?;
    Some((unquote(&found[1]), unquote(&found[2])))
}

/// The shadow's tables as the post-data step sees them once the rows are in: how big each
/// is, and which are partitioned (those take no `NOT VALID` foreign key before
/// PostgreSQL 18).
pub(super) struct ShadowTables {
    sizes: HashMap<(String, String), i64>,
    partitioned: HashSet<(String, String)>,
}

impl ShadowTables {
    /// Reads the tables of the schemas that `statements` build on.
    pub(super) async fn read(
        conn: &mut PgConnection,
        statements: &[DumpStatement],
    ) -> Result<Self, Error> {
        let mut schemas: Vec<String> = statements
            .iter()
            .filter_map(|s| built_on(&s.sql).map(|(schema, _)| schema))
            .collect();
        schemas.sort_unstable();
        schemas.dedup();
        let rows: Vec<(String, String, i64, bool)> = sqlx::query_as(
            "SELECT n.nspname::text, c.relname::text, pg_relation_size(c.oid), c.relkind = 'p'
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname = ANY($1)",
        )
        .bind(&schemas)
        .fetch_all(conn)
        .await
        .map_err(Error::query("reading the shadow's table sizes"))?;
        let mut tables = Self {
            sizes: HashMap::new(),
            partitioned: HashSet::new(),
        };
        for (schema, table, size, partitioned) in rows {
            if partitioned {
                tables.partitioned.insert((schema.clone(), table.clone()));
            }
            tables.sizes.insert((schema, table), size);
        }
        Ok(tables)
    }

    /// Sorts `statements` so that those on the biggest tables come first. Statements on a
    /// table of unknown size keep their dump order after the others: the order changes
    /// only when each runs, never what runs.
    pub(super) fn biggest_first(&self, statements: &mut [DumpStatement]) {
        statements.sort_by_cached_key(|s| {
            let size = built_on(&s.sql)
                .and_then(|table| self.sizes.get(&table).copied())
                .unwrap_or(0);
            std::cmp::Reverse(size)
        });
    }

    /// Tables of size 1 given as (schema, table, partitioned), for tests.
    #[cfg(test)]
    pub(super) fn known(tables: &[(&str, &str, bool)]) -> Self {
        let key = |schema: &str, table: &str| (schema.to_owned(), table.to_owned());
        Self {
            sizes: tables.iter().map(|&(s, t, _)| (key(s, t), 1)).collect(),
            partitioned: tables
                .iter()
                .filter(|&&(_, _, p)| p)
                .map(|&(s, t, _)| key(s, t))
                .collect(),
        }
    }

    /// Whether `sql` builds on a table known to be a plain (not partitioned) table.
    pub(super) fn on_plain_table(&self, sql: &str) -> bool {
        built_on(sql).is_some_and(|table| self.is_plain(&table))
    }

    /// Whether (schema, table) is known, and not partitioned.
    pub(super) fn is_plain(&self, table: &(String, String)) -> bool {
        self.sizes.contains_key(table) && !self.partitioned.contains(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            DumpStatement::new("a", "CREATE INDEX a ON s.small USING btree (x)"),
            DumpStatement::new("b", "CREATE INDEX b ON s.unknown USING btree (x)"),
            DumpStatement::new(
                "pk",
                "ALTER TABLE ONLY s.big\n    ADD CONSTRAINT big_pkey PRIMARY KEY (id)",
            ),
            DumpStatement::new("c", "CREATE INDEX c ON s.other_unknown USING btree (x)"),
            DumpStatement::new("d", "CREATE INDEX d ON s.big USING btree (y)"),
        ];
        let tables = ShadowTables {
            sizes: HashMap::from([
                (("s".to_owned(), "small".to_owned()), 10),
                (("s".to_owned(), "big".to_owned()), 1_000),
            ]),
            partitioned: HashSet::new(),
        };
        tables.biggest_first(&mut statements);
        let order: Vec<_> = statements.iter().map(|s| s.object_type.as_str()).collect();
        assert_eq!(order, ["pk", "d", "a", "b", "c"]);
    }
}
