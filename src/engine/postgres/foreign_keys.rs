//! Foreign keys checked in parallel. `ALTER TABLE ... ADD FOREIGN KEY` checks every row of
//! the table while it holds a lock that also keeps every other key on the referenced table
//! waiting, so pg_restore-style post-data checks them one after another on one core. The
//! shadow's keys are instead added `NOT VALID` (a catalog change, in the ordered script)
//! and then checked with `VALIDATE CONSTRAINT` on several connections at once: a
//! validation locks its own table against other validations only, so keys on different
//! tables are checked side by side. The end state is the same valid constraint.

use std::sync::LazyLock;

use regex::Regex;

use super::build_order::{ShadowTables, unquote};
use super::dump_rewrite::DumpStatement;

/// A pg_dump foreign key: `ALTER TABLE ONLY s.t ADD CONSTRAINT name FOREIGN KEY (...)
/// REFERENCES s.r(...)`, each name bare or `"quoted"`.
static FOREIGN_KEY: LazyLock<Regex> = LazyLock::new(|| {
    let part = r#"(?:"(?:[^"]|"")+"|[^\s."(]+)"#;
    Regex::new(&format!(
        r#"(?is)^ALTER\s+TABLE\s+ONLY\s+({part}\.{part})\s+ADD\s+CONSTRAINT\s+({part})\s+FOREIGN\s+KEY\s.*?\sREFERENCES\s+({part})\.({part})\s*\("#
    ))
    .expect("a valid regex")
});

/// Splits a foreign key of a plain table into the statement that adds it `NOT VALID` and
/// the one that validates it. Anything else (other statements, a key that the source
/// itself holds `NOT VALID`, a key on or into a partitioned table) comes back unchanged,
/// alone.
pub(super) fn defer(
    statement: DumpStatement,
    tables: &ShadowTables,
) -> (DumpStatement, Option<DumpStatement>) {
    if statement.object_type != "FK CONSTRAINT"
        || statement.sql.to_ascii_uppercase().contains("NOT VALID")
        || !tables.on_plain_table(&statement.sql)
    {
        return (statement, None);
    }
    let Some(found) = FOREIGN_KEY.captures(&statement.sql) else {
        return (statement, None);
    };
    // A key into a partitioned table has a constraint per partition that VALIDATE leaves
    // NOT VALID (PostgreSQL 15): such a key is checked as it is added.
    if !tables.is_plain(&(unquote(&found[3]), unquote(&found[4]))) {
        return (statement, None);
    }
    let validate = DumpStatement {
        object_type: statement.object_type.clone(),
        sql: format!(
            "ALTER TABLE ONLY {} VALIDATE CONSTRAINT {};",
            &found[1], &found[2]
        ),
    };
    let body = statement.sql.trim_end();
    let body = body.strip_suffix(';').unwrap_or(body);
    let add = DumpStatement {
        object_type: statement.object_type,
        sql: format!("{body} NOT VALID;"),
    };
    (add, Some(validate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(sql: &str) -> DumpStatement {
        DumpStatement::new("FK CONSTRAINT", sql)
    }

    fn tables() -> ShadowTables {
        ShadowTables::known(&[
            ("s", "orders", false),
            ("s", "Order Items", false),
            ("s", "parted", true),
        ])
    }

    #[test]
    fn a_plain_tables_key_is_added_not_valid_and_validated_after() {
        let (add, validate) = defer(
            fk(
                "ALTER TABLE ONLY s.\"Order Items\"\n    ADD CONSTRAINT \"items \"\"fk\"\"\" FOREIGN KEY (order_id) REFERENCES s.orders(id) ON DELETE CASCADE;",
            ),
            &tables(),
        );
        assert_eq!(
            add.sql,
            "ALTER TABLE ONLY s.\"Order Items\"\n    ADD CONSTRAINT \"items \"\"fk\"\"\" FOREIGN KEY (order_id) REFERENCES s.orders(id) ON DELETE CASCADE NOT VALID;"
        );
        assert_eq!(
            validate.map(|v| v.sql),
            Some(
                "ALTER TABLE ONLY s.\"Order Items\" VALIDATE CONSTRAINT \"items \"\"fk\"\"\";"
                    .to_owned()
            )
        );
    }

    #[test]
    fn keys_that_must_stay_as_dumped_are_left_alone() {
        for (object_type, sql) in [
            // NOT VALID in the source: it stays unchecked, as there.
            (
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.orders\n    ADD CONSTRAINT o_fk FOREIGN KEY (c) REFERENCES s.c(id) NOT VALID;",
            ),
            // A partitioned table takes no NOT VALID foreign key.
            (
                "FK CONSTRAINT",
                "ALTER TABLE s.parted\n    ADD CONSTRAINT p_fk FOREIGN KEY (c) REFERENCES s.c(id);",
            ),
            (
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.parted\n    ADD CONSTRAINT p_fk FOREIGN KEY (c) REFERENCES s.c(id);",
            ),
            // A key into a partitioned table.
            (
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.orders\n    ADD CONSTRAINT o_p_fk FOREIGN KEY (p, day) REFERENCES s.parted(id, day);",
            ),
            // A table the shadow does not hold.
            (
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.elsewhere\n    ADD CONSTRAINT e_fk FOREIGN KEY (c) REFERENCES s.c(id);",
            ),
            (
                "CONSTRAINT",
                "ALTER TABLE ONLY s.orders\n    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);",
            ),
        ] {
            let statement = DumpStatement::new(object_type, sql);
            let (same, validate) = defer(statement.clone(), &tables());
            assert_eq!(same, statement);
            assert!(validate.is_none(), "{sql}");
        }
    }
}
