//! Post-data statements shared out to several connections, biggest table first, so that no
//! connection sits waiting for a lock another one holds: `CREATE INDEX` statements on one
//! table run together (their `SHARE` locks do not conflict), but an `ALTER TABLE` (a key,
//! a constraint's validation) waits for its table to be free, and meanwhile the connection
//! takes the next statement on another table.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::build_order::built_on;
use super::dump_rewrite::DumpStatement;

/// How a table is in use by the statements running now.
#[derive(Default)]
struct InUse {
    shared: usize,
    exclusive: bool,
}

#[derive(Default)]
struct State {
    waiting: Vec<Taken>,
    running: HashMap<(String, String), InUse>,
}

impl State {
    fn can_start(&self, step: &Taken) -> bool {
        let Some(table) = &step.table else {
            return true;
        };
        self.running
            .get(table)
            .is_none_or(|u| !u.exclusive && (step.shared || u.shared == 0))
    }
}

/// The statements left to run, in order, and the tables those running hold.
pub(super) struct Schedule {
    state: Mutex<State>,
    changed: Notify,
}

/// A statement, with the table it locks; once taken from the schedule, hand it back
/// with [`Schedule::done`].
pub(super) struct Taken {
    /// The statement to run.
    pub statement: DumpStatement,
    table: Option<(String, String)>,
    /// Whether the statement may run beside others of its kind on the same table.
    shared: bool,
}

impl Schedule {
    /// Statements in the order they should start.
    pub(super) fn new(statements: Vec<DumpStatement>) -> Self {
        let waiting = statements
            .into_iter()
            .map(|statement| Taken {
                table: built_on(&statement.sql),
                shared: statement.object_type == "INDEX",
                statement,
            })
            .collect();
        Self {
            state: Mutex::new(State {
                waiting,
                running: HashMap::new(),
            }),
            changed: Notify::new(),
        }
    }

    /// The first waiting statement that can start now without waiting for a lock, once
    /// there is one; `None` when every statement has been taken.
    pub(super) async fn next(&self) -> Option<Taken> {
        loop {
            // Registered before the look, so a statement finishing in between wakes us.
            let changed = self.changed.notified();
            if let Some(found) = self.try_next() {
                return found;
            }
            changed.await;
        }
    }

    /// `Some(None)`: nothing left; `Some(Some(_))`: a statement to run; `None`: all the
    /// statements left wait for tables in use.
    fn try_next(&self) -> Option<Option<Taken>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.waiting.is_empty() {
            return Some(None);
        }
        let i = state.waiting.iter().position(|s| state.can_start(s))?;
        let step = state.waiting.remove(i);
        if let Some(table) = &step.table {
            let in_use = state.running.entry(table.clone()).or_default();
            if step.shared {
                in_use.shared += 1;
            } else {
                in_use.exclusive = true;
            }
        }
        Some(Some(step))
    }

    /// Frees the table of a statement that has run.
    pub(super) fn done(&self, taken: &Taken) {
        if let Some(table) = &taken.table {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(in_use) = state.running.get_mut(table) {
                if taken.shared {
                    in_use.shared = in_use.shared.saturating_sub(1);
                } else {
                    in_use.exclusive = false;
                }
                if in_use.shared == 0 && !in_use.exclusive {
                    state.running.remove(table);
                }
            }
        }
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(schedule: &Schedule) -> Option<String> {
        schedule.try_next().and_then(|t| t.map(|t| t.statement.sql))
    }

    #[test]
    fn a_table_altered_waits_while_its_indexes_build_together() {
        let schedule = Schedule::new(vec![
            DumpStatement::new(
                "CONSTRAINT",
                "ALTER TABLE ONLY s.big ADD CONSTRAINT big_pkey PRIMARY KEY (id)",
            ),
            DumpStatement::new("INDEX", "CREATE INDEX a ON s.big USING btree (a)"),
            DumpStatement::new("INDEX", "CREATE INDEX b ON s.big USING btree (b)"),
            DumpStatement::new(
                "CONSTRAINT",
                "ALTER TABLE ONLY s.small ADD CONSTRAINT small_pkey PRIMARY KEY (id)",
            ),
        ]);
        let pkey = schedule.try_next().flatten();
        assert!(
            pkey.as_ref()
                .is_some_and(|t| t.statement.sql.contains("big_pkey"))
        );
        // big is held: the next connection goes on to small.
        assert_eq!(
            taken(&schedule).as_deref(),
            Some("ALTER TABLE ONLY s.small ADD CONSTRAINT small_pkey PRIMARY KEY (id)")
        );
        // Only statements on big are left, and big is held.
        assert!(schedule.try_next().is_none());
        if let Some(pkey) = &pkey {
            schedule.done(pkey);
        }
        // Both indexes of big may build at once.
        assert_eq!(
            taken(&schedule).as_deref(),
            Some("CREATE INDEX a ON s.big USING btree (a)")
        );
        assert_eq!(
            taken(&schedule).as_deref(),
            Some("CREATE INDEX b ON s.big USING btree (b)")
        );
        assert!(matches!(schedule.try_next(), Some(None)));
    }

    #[test]
    fn validations_of_one_table_run_one_after_the_other() {
        let schedule = Schedule::new(vec![
            DumpStatement::new(
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.items VALIDATE CONSTRAINT items_order_fkey;",
            ),
            DumpStatement::new(
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.items VALIDATE CONSTRAINT items_product_fkey;",
            ),
            DumpStatement::new(
                "FK CONSTRAINT",
                "ALTER TABLE ONLY s.orders VALIDATE CONSTRAINT orders_customer_fkey;",
            ),
        ]);
        let first = schedule.try_next().flatten();
        assert_eq!(
            taken(&schedule).as_deref(),
            Some("ALTER TABLE ONLY s.orders VALIDATE CONSTRAINT orders_customer_fkey;")
        );
        assert!(schedule.try_next().is_none());
        if let Some(first) = &first {
            schedule.done(first);
        }
        assert_eq!(
            taken(&schedule).as_deref(),
            Some("ALTER TABLE ONLY s.items VALIDATE CONSTRAINT items_product_fkey;")
        );
    }
}
