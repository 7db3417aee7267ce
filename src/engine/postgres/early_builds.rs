//! Indexes and keys built as soon as their table is loaded, by the writer that loaded it,
//! while other tables are still being copied. A build then reads pages that were just
//! written (still cached), and fills the moments when the copy leaves a core idle; the
//! post-data step after the copy is left with only what spans tables (foreign keys) or
//! waits for all of them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::build_order::built_on;
use super::dump_rewrite::DumpStatement;
use crate::catalog::TableName;

/// The post-data statements that depend on one table's rows alone, until a writer takes
/// them; and which were taken, so the post-data step runs only the others.
#[derive(Default)]
pub struct EarlyBuilds {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By shadow table: its statements, with their place in the post-data script.
    waiting: HashMap<(String, String), Vec<(usize, DumpStatement)>>,
    taken: HashSet<usize>,
}

impl EarlyBuilds {
    /// The indexes and keys (`INDEX` and `CONSTRAINT` statements) of `post_data`, by table.
    pub fn new(post_data: &[DumpStatement]) -> Self {
        let mut waiting: HashMap<(String, String), Vec<(usize, DumpStatement)>> = HashMap::new();
        for (i, statement) in post_data.iter().enumerate() {
            if !matches!(statement.object_type.as_str(), "INDEX" | "CONSTRAINT") {
                continue;
            }
            if let Some(table) = built_on(&statement.sql) {
                waiting
                    .entry(table)
                    .or_default()
                    .push((i, statement.clone()));
            }
        }
        Self {
            state: Mutex::new(State {
                waiting,
                taken: HashSet::new(),
            }),
        }
    }

    /// Takes the statements that build on `shadow`, once: the caller runs them.
    pub fn take(&self, shadow: &TableName) -> Vec<DumpStatement> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let key = (shadow.schema.clone(), shadow.name.clone());
        let Some(statements) = state.waiting.remove(&key) else {
            return Vec::new();
        };
        state.taken.extend(statements.iter().map(|(i, _)| *i));
        statements.into_iter().map(|(_, s)| s).collect()
    }

    /// `post_data` (the script these were taken from) without the statements taken.
    pub fn left_of(&self, post_data: &[DumpStatement]) -> Vec<DumpStatement> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        post_data
            .iter()
            .enumerate()
            .filter(|(i, _)| !state.taken.contains(i))
            .map(|(_, s)| s.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tables_builds_are_taken_once_and_left_out_of_the_rest() {
        let script = vec![
            DumpStatement::new(
                "CONSTRAINT",
                "ALTER TABLE ONLY s.a\n    ADD CONSTRAINT a_pkey PRIMARY KEY (id);",
            ),
            DumpStatement::new(
                "CONSTRAINT",
                "ALTER TABLE ONLY s.b\n    ADD CONSTRAINT b_pkey PRIMARY KEY (id);",
            ),
            DumpStatement::new("INDEX", "CREATE INDEX a_x ON s.a USING btree (x);"),
            DumpStatement::new(
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.a\n    ADD CONSTRAINT a_b_fkey FOREIGN KEY (b) REFERENCES s.b(id);",
            ),
            DumpStatement::new(
                "TRIGGER",
                "CREATE TRIGGER t AFTER INSERT ON s.a FOR EACH ROW EXECUTE FUNCTION s.f();",
            ),
        ];
        let early = EarlyBuilds::new(&script);
        let a = TableName {
            schema: "s".into(),
            name: "a".into(),
        };
        let taken: Vec<String> = early.take(&a).into_iter().map(|s| s.object_type).collect();
        assert_eq!(taken, ["CONSTRAINT", "INDEX"]);
        assert!(early.take(&a).is_empty());
        let left: Vec<String> = early
            .left_of(&script)
            .into_iter()
            .map(|s| s.sql.lines().next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            left,
            [
                "ALTER TABLE ONLY s.b",
                "ALTER TABLE ONLY s.a",
                "CREATE TRIGGER t AFTER INSERT ON s.a FOR EACH ROW EXECUTE FUNCTION s.f();"
            ]
        );
    }
}
