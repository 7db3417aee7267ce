//! Each table's rows as one SQL query over the source, so the closure is computed inside
//! the snapshot, by the database, with set operations: nothing is written on the source
//! and no key passes through lethe.
//!
//! Per table two sets are named in a `WITH` clause: `d` (the "down" rows: the table's
//! own choice, or the children of its parents' down rows) and `s` (every row copied:
//! the down rows plus the rows that copied children reference). Both are conditions on
//! the table's own rows, so a table reached along several paths is read once, and a row
//! is never duplicated. Tables that reference each other in a cycle (or themselves) are
//! walked with one recursive set per cycle, of (table tag, key text) pairs, joined along
//! the cycle's foreign keys until nothing new comes.

mod cycle;
mod generate;

use std::collections::{BTreeMap, BTreeSet};

use super::graph::{Edge, Graph, Role};
use crate::catalog::TableName;
use crate::config::Select;

/// What an engine's SQL looks like, for the few things that differ between engines.
pub trait Dialect: Sync {
    /// A quoted identifier.
    fn ident(&self, name: &str) -> String;
    /// A quoted, qualified table name.
    fn table(&self, name: &TableName) -> String;
    /// A non-negative integer expression (at least 2^48 values): a hash of the text
    /// expression `key` keyed by `seed`, the same for the same key and seed on every run.
    fn hash(&self, key: &str, seed: i64) -> String;
    /// An integer expression in `[0, 1_000_000)`: where `key` falls in a sample.
    fn sample(&self, key: &str, seed: i64) -> String {
        format!("({} % 1000000)", self.hash(key, seed))
    }
    /// The body of a `WITH` query `name` whose one column `n` counts from 1 to `rows`
    /// (at least 1), and whether it refers to itself (a recursive count).
    fn series(&self, name: &str, rows: u64) -> (String, bool) {
        (
            format!("SELECT 1 AS n UNION ALL SELECT n + 1 FROM {name} WHERE n < {rows}"),
            true,
        )
    }
    /// A text expression that tells rows apart by `columns` (expressions).
    fn key_text(&self, columns: &[String]) -> String;
    /// The keyword that makes the engine compute a `WITH` query once rather than at
    /// every step of a recursion (`MATERIALIZED ` on PostgreSQL), or nothing.
    fn materialized(&self) -> &'static str {
        ""
    }
}

/// The rows of one table that a subset copies, as SQL its engine's reader runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// `WITH [RECURSIVE] ...`, placed before the reader's `SELECT`; empty when the
    /// condition needs no named set.
    pub with: String,
    /// A condition on the table's columns (qualified with its table name).
    pub condition: String,
    /// Columns read as NULL unless their condition holds: keys whose parent row is left
    /// out (`dangling = "null"`).
    pub cleared: BTreeMap<String, String>,
    /// The named set (defined in `with`) to read the rows from instead of the table: a
    /// synthetic table's generated rows, whose columns bear the table's column names.
    pub rows_from: Option<String>,
}

impl Selection {
    /// What the reader selects for `column`, whose plain reference is `reference`.
    pub fn column(&self, column: &str, reference: &str) -> String {
        match self.cleared.get(column) {
            Some(kept) => format!("CASE WHEN {kept} THEN {reference} END"),
            None => reference.to_string(),
        }
    }
}

/// `SELECT columns FROM table`, with the subset's `WITH`, cleared keys and condition
/// when there is a selection: the query a reader that is not PostgreSQL's COPY runs.
pub fn select_sql(
    dialect: &dyn Dialect,
    table: &TableName,
    columns: &[&str],
    selection: Option<&Selection>,
) -> String {
    let table = dialect.table(table);
    select_from(dialect, &table, &table, columns, selection, Vec::new())
}

/// [`select_sql`] for a reader that names the relation its own way: `relation` (quoted
/// and qualified, as the selection's condition names the table) read through `from`
/// (PostgreSQL's `ONLY ...`), with its own `filters` beside the selection's condition.
pub fn select_from(
    dialect: &dyn Dialect,
    relation: &str,
    from: &str,
    columns: &[&str],
    selection: Option<&Selection>,
    mut filters: Vec<String>,
) -> String {
    let with = selection.map_or("", |s| s.with.as_str());
    if let Some(rows) = selection.and_then(|s| s.rows_from.as_ref()) {
        let list: Vec<String> = columns.iter().map(|c| dialect.ident(c)).collect();
        return format!("{with}SELECT {} FROM {rows}", list.join(", "));
    }
    let list: Vec<String> = columns
        .iter()
        .map(|c| {
            let name = dialect.ident(c);
            match selection {
                Some(selection) if selection.cleared.contains_key(*c) => {
                    let reference = format!("{relation}.{name}");
                    format!("{} AS {name}", selection.column(c, &reference))
                }
                _ => name,
            }
        })
        .collect();
    filters.extend(selection.map(|s| s.condition.clone()));
    let filters = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    format!("{with}SELECT {} FROM {from}{filters}", list.join(", "))
}

/// A seed from a name (FNV-1a), mixed into the run's seed so that each table's sample
/// and each key's draws are their own, the same on every run.
fn name_seed(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_le_bytes(hash.to_le_bytes())
}

/// A condition and the named sets it reads.
#[derive(Debug, Clone, Default)]
struct Cond {
    sql: String,
    deps: BTreeSet<usize>,
}

/// One named set of the `WITH` clause.
struct Cte {
    name: String,
    /// The names of its columns, where the body's own names are not enough.
    columns: Option<&'static str>,
    /// Computed once (it is read at every step of a recursion).
    materialized: bool,
    body: String,
    recursive: bool,
    deps: BTreeSet<usize>,
}

/// Writes the queries of one subset.
pub struct Writer<'a> {
    graph: &'a Graph,
    dialect: &'a dyn Dialect,
    seed: i64,
    ctes: Vec<Cte>,
    down: BTreeMap<usize, Option<usize>>,
    all: BTreeMap<usize, usize>,
    limited: BTreeMap<usize, usize>,
    /// The cycle each table belongs to, when it belongs to one.
    cycle_of: Vec<Option<usize>>,
    cycles: Vec<Vec<usize>>,
    cycle_down: BTreeMap<usize, Option<usize>>,
    cycle_all: BTreeMap<usize, Option<usize>>,
    /// Synthetic tables' generated rows.
    generated: BTreeMap<usize, usize>,
    /// The numbered keys (and their count) of a parent's copied rows, by parent and
    /// referenced columns, which synthetic tables draw from.
    parent_keys: BTreeMap<(usize, Vec<String>), (usize, usize)>,
}

impl<'a> Writer<'a> {
    /// A writer for `graph`'s subset in `dialect`; `seed` keys the samples.
    pub fn new(graph: &'a Graph, dialect: &'a dyn Dialect, seed: i64) -> Self {
        let mut cycle_of = vec![None; graph.nodes.len()];
        let mut cycles = Vec::new();
        for (members, cyclic) in graph.components() {
            if cyclic {
                for &m in &members {
                    cycle_of[m] = Some(cycles.len());
                }
                cycles.push(members);
            }
        }
        Self {
            graph,
            dialect,
            seed,
            ctes: Vec::new(),
            down: BTreeMap::new(),
            all: BTreeMap::new(),
            limited: BTreeMap::new(),
            cycle_of,
            cycles,
            cycle_down: BTreeMap::new(),
            cycle_all: BTreeMap::new(),
            generated: BTreeMap::new(),
            parent_keys: BTreeMap::new(),
        }
    }

    /// The selection of table `node`, or `None` when it is copied whole and untouched.
    pub fn selection(&mut self, node: usize) -> Option<Selection> {
        let clearing: Vec<Edge> = self
            .graph
            .edges
            .iter()
            .filter(|e| e.child == node && self.graph.clears(e))
            .cloned()
            .collect();
        if !self.graph.subsetted(node) && clearing.is_empty() {
            return None;
        }
        let condition = if self.graph.subsetted(node) {
            self.copied(node).unwrap_or_else(|| Cond {
                sql: "1 = 0".into(),
                deps: BTreeSet::new(),
            })
        } else {
            Cond {
                sql: "1 = 1".into(),
                deps: BTreeSet::new(),
            }
        };
        let mut deps = condition.deps.clone();
        let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for edge in &clearing {
            let parent = self.all_set(edge.parent);
            deps.insert(parent);
            let test = format!(
                "{} IN (SELECT {} FROM {})",
                self.tuple(node, &edge.columns),
                self.list(&edge.referenced),
                self.ctes[parent].name
            );
            for column in self.graph.own_columns(edge) {
                kept.entry(column.clone()).or_default().push(test.clone());
            }
        }
        Some(Selection {
            with: self.with(&deps),
            condition: condition.sql,
            cleared: kept
                .into_iter()
                .map(|(column, tests)| (column, tests.join(" AND ")))
                .collect(),
            rows_from: None,
        })
    }

    /// Rows of `node` for which any of `conds` holds. One condition stays as it is; several
    /// become one key set (`pk IN (SELECT pk ... WHERE c1 UNION SELECT pk ... WHERE c2)`):
    /// each part a semi-join the database plans as a hash join, where an `OR` of
    /// `IN (SELECT ...)`s would be checked row by row once its sets are large.
    fn any(&self, node: usize, conds: Vec<Cond>) -> Option<Cond> {
        match conds.len() {
            0 => None,
            1 => conds.into_iter().next(),
            _ => {
                let deps = conds.iter().flat_map(|c| c.deps.iter().copied()).collect();
                let pk = &self.graph.nodes[node].primary_key;
                let sql = if pk.is_empty() {
                    let parts: Vec<String> = conds.into_iter().map(|c| c.sql).collect();
                    format!("({})", parts.join(" OR "))
                } else {
                    let table = self.dialect.table(&self.graph.nodes[node].name);
                    let key: Vec<String> = pk.iter().map(|c| self.column(node, c)).collect();
                    let parts: Vec<String> = conds
                        .into_iter()
                        .map(|c| format!("SELECT {} FROM {table} WHERE {}", key.join(", "), c.sql))
                        .collect();
                    format!("{} IN ({})", self.tuple(node, pk), parts.join(" UNION "))
                };
                Some(Cond { sql, deps })
            }
        }
    }

    /// Whether the rows `edge`'s child keeps all reference rows its parent has anyway:
    /// the child gets rows only as children along this very key, and its own children
    /// add none (recursively). The bench's orders, items and payments are all such, so
    /// a customer subset reads each table with one semi-join.
    fn redundant(&self, edge: &Edge) -> bool {
        let graph = self.graph;
        let child = edge.child;
        if self.cycle_of[child].is_some() || !graph.follows_down(edge) {
            return false;
        }
        let mut down_edges = graph
            .edges
            .iter()
            .filter(|e| e.child == child && graph.follows_down(e));
        let only_this =
            down_edges.next().is_some_and(|e| std::ptr::eq(e, edge)) && down_edges.next().is_none();
        only_this
            && graph
                .edges
                .iter()
                .filter(|e| e.parent == child && graph.pulls_up(e))
                .all(|e| graph.subsetted(e.child) && self.redundant(e))
    }

    /// The `WITH` clause that defines `deps` and everything they read, in order.
    fn with(&self, deps: &BTreeSet<usize>) -> String {
        let mut needed = BTreeSet::new();
        let mut work: Vec<usize> = deps.iter().copied().collect();
        while let Some(cte) = work.pop() {
            if needed.insert(cte) {
                work.extend(self.ctes[cte].deps.iter().copied());
            }
        }
        if needed.is_empty() {
            return String::new();
        }
        let recursive = needed.iter().any(|&c| self.ctes[c].recursive);
        let defined: Vec<String> = needed
            .iter()
            .map(|&c| {
                let cte = &self.ctes[c];
                format!(
                    "{}{} AS {}({})",
                    cte.name,
                    cte.columns.map(|c| format!("({c})")).unwrap_or_default(),
                    if cte.materialized {
                        self.dialect.materialized()
                    } else {
                        ""
                    },
                    cte.body
                )
            })
            .collect();
        format!(
            "WITH {}{} ",
            if recursive { "RECURSIVE " } else { "" },
            defined.join(", ")
        )
    }

    fn push(
        &mut self,
        name: String,
        body: String,
        recursive: bool,
        deps: BTreeSet<usize>,
    ) -> usize {
        self.ctes.push(Cte {
            name,
            columns: None,
            materialized: false,
            body,
            recursive,
            deps,
        });
        self.ctes.len() - 1
    }

    fn column(&self, node: usize, column: &str) -> String {
        format!(
            "{}.{}",
            self.dialect.table(&self.graph.nodes[node].name),
            self.dialect.ident(column)
        )
    }

    /// `col` or `(a, b)`, qualified with the table's name.
    fn tuple(&self, node: usize, columns: &[String]) -> String {
        let parts: Vec<String> = columns.iter().map(|c| self.column(node, c)).collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(", "))
        }
    }

    fn list(&self, columns: &[String]) -> String {
        let parts: Vec<String> = columns.iter().map(|c| self.dialect.ident(c)).collect();
        parts.join(", ")
    }

    /// The columns a named set of `node` carries: every column of its foreign keys, on
    /// either side, and its primary key.
    fn carried(&self, node: usize) -> Vec<String> {
        let mut columns: Vec<String> = self.graph.nodes[node].primary_key.clone();
        for e in &self.graph.edges {
            let side = if e.child == node {
                Some(&e.columns)
            } else {
                None
            };
            let other = if e.parent == node {
                Some(&e.referenced)
            } else {
                None
            };
            for c in side.into_iter().chain(other).flatten() {
                if !columns.contains(c) {
                    columns.push(c.clone());
                }
            }
        }
        columns
    }

    fn set_of(&mut self, node: usize, prefix: &str, cond: Cond) -> usize {
        let table = self.dialect.table(&self.graph.nodes[node].name);
        let columns: Vec<String> = self
            .carried(node)
            .iter()
            .map(|c| self.column(node, c))
            .collect();
        let name = format!("lethe_{prefix}{}", self.ctes.len());
        self.push(
            name,
            format!(
                "SELECT {} FROM {table} WHERE {}",
                columns.join(", "),
                cond.sql
            ),
            false,
            cond.deps,
        )
    }

    /// The table's own choice of rows.
    fn chosen(&mut self, node: usize) -> Option<Cond> {
        let entry = self.graph.nodes[node].entry.as_ref()?;
        let select = entry.select.clone()?;
        // A sample of its own per table: tables that share ids choose different rows.
        let seed = self.seed ^ name_seed(&self.graph.nodes[node].name.to_string());
        let key = match select {
            Select::Percent(_) | Select::Rows(_) => self.primary_text(node),
            Select::Where(_) => String::new(),
        };
        Some(match select {
            Select::Where(condition) => Cond {
                sql: format!("({}\n)", condition.sql),
                deps: BTreeSet::new(),
            },
            Select::Percent(percent) => Cond {
                sql: format!(
                    "{} < {}",
                    self.dialect.sample(&key, seed),
                    // Millionths: `percent` is at most 100.
                    (percent * 10_000.0).round() as u64
                ),
                deps: BTreeSet::new(),
            },
            Select::Rows(0) => Cond {
                sql: "1 = 0".into(),
                deps: BTreeSet::new(),
            },
            Select::Rows(rows) => {
                let limited = match self.limited.get(&node) {
                    Some(&cte) => cte,
                    None => {
                        let pk = self.graph.nodes[node].primary_key.clone();
                        let table = self.dialect.table(&self.graph.nodes[node].name);
                        let cte = self.push(
                            format!("lethe_r{}", self.ctes.len()),
                            format!(
                                "SELECT {} FROM {table} ORDER BY {}, {} LIMIT {rows}",
                                self.list(&pk),
                                self.dialect.sample(&key, seed),
                                self.list(&pk)
                            ),
                            false,
                            BTreeSet::new(),
                        );
                        self.limited.insert(node, cte);
                        cte
                    }
                };
                let pk = self.graph.nodes[node].primary_key.clone();
                Cond {
                    sql: format!(
                        "{} IN (SELECT {} FROM {})",
                        self.tuple(node, &pk),
                        self.list(&pk),
                        self.ctes[limited].name
                    ),
                    deps: BTreeSet::from([limited]),
                }
            }
        })
    }

    fn primary_text(&self, node: usize) -> String {
        let columns: Vec<String> = self.graph.nodes[node]
            .primary_key
            .iter()
            .map(|c| self.column(node, c))
            .collect();
        self.dialect.key_text(&columns)
    }

    /// The down rows of `node` from outside its cycle: its own choice (a root), or the
    /// rows that reference down rows of parents that pass their children on.
    fn down_from_outside(&mut self, node: usize) -> Option<Cond> {
        if self.graph.roles[node] == Role::Root {
            return self.chosen(node);
        }
        let edges: Vec<Edge> = self
            .graph
            .edges
            .iter()
            .filter(|e| {
                e.child == node
                    && self.graph.follows_down(e)
                    && (self.cycle_of[node].is_none()
                        || self.cycle_of[e.parent] != self.cycle_of[node])
            })
            .cloned()
            .collect();
        let mut conds = Vec::new();
        for e in edges {
            if let Some(set) = self.down_set(e.parent) {
                conds.push(Cond {
                    sql: format!(
                        "{} IN (SELECT {} FROM {})",
                        self.tuple(node, &e.columns),
                        self.list(&e.referenced),
                        self.ctes[set].name
                    ),
                    deps: BTreeSet::from([set]),
                });
            }
        }
        self.any(node, conds)
    }

    /// The rows of `node` that copied rows of children outside its cycle reference.
    fn up_from_outside(&mut self, node: usize) -> Vec<Cond> {
        let edges: Vec<Edge> = self
            .graph
            .edges
            .iter()
            .filter(|e| {
                e.parent == node
                    && self.graph.pulls_up(e)
                    && !self.redundant(e)
                    && (self.cycle_of[node].is_none()
                        || self.cycle_of[e.child] != self.cycle_of[node])
            })
            .cloned()
            .collect();
        let mut conds = Vec::new();
        for e in edges {
            let (from, deps) = if self.graph.subsetted(e.child) {
                let set = self.all_set(e.child);
                (self.ctes[set].name.clone(), BTreeSet::from([set]))
            } else {
                (
                    self.dialect.table(&self.graph.nodes[e.child].name),
                    BTreeSet::new(),
                )
            };
            conds.push(Cond {
                sql: format!(
                    "{} IN (SELECT {} FROM {from})",
                    self.tuple(node, &e.referenced),
                    self.list(&e.columns)
                ),
                deps,
            });
        }
        conds
    }

    /// The condition of `node`'s down rows.
    fn down(&mut self, node: usize) -> Option<Cond> {
        match self.cycle_of[node] {
            None => self.down_from_outside(node),
            Some(cycle) => {
                let set = self.cycle_down_set(cycle)?;
                Some(self.in_cycle_set(node, cycle, set))
            }
        }
    }

    /// The condition of every copied row of `node`.
    fn copied(&mut self, node: usize) -> Option<Cond> {
        match self.cycle_of[node] {
            None => {
                let mut conds: Vec<Cond> = self.down(node).into_iter().collect();
                conds.extend(self.up_from_outside(node));
                self.any(node, conds)
            }
            Some(cycle) => {
                let set = self.cycle_all_set(cycle)?;
                Some(self.in_cycle_set(node, cycle, set))
            }
        }
    }

    /// The named set of `node`'s down rows, if it can have any.
    fn down_set(&mut self, node: usize) -> Option<usize> {
        if let Some(&set) = self.down.get(&node) {
            return set;
        }
        let set = self.down(node).map(|cond| self.set_of(node, "d", cond));
        self.down.insert(node, set);
        set
    }

    /// The named set of every copied row of `node`.
    fn all_set(&mut self, node: usize) -> usize {
        if let Some(&set) = self.all.get(&node) {
            return set;
        }
        let cond = self.copied(node).unwrap_or_else(|| Cond {
            sql: "1 = 0".into(),
            deps: BTreeSet::new(),
        });
        let set = self.set_of(node, "s", cond);
        self.all.insert(node, set);
        set
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::catalog::ForeignKey;
    use crate::config::{Dangling, Location, SubsetEntry};
    use crate::subset::graph::Node;

    /// Plain names, a visible sample: enough to read the queries.
    struct Plain;

    impl Dialect for Plain {
        fn ident(&self, name: &str) -> String {
            name.to_string()
        }
        fn table(&self, name: &TableName) -> String {
            name.name.clone()
        }
        fn hash(&self, key: &str, seed: i64) -> String {
            format!("hash({key}, {seed})")
        }
        fn sample(&self, key: &str, seed: i64) -> String {
            format!("sample({key}, {seed})")
        }
        fn key_text(&self, columns: &[String]) -> String {
            format!("text({})", columns.join(", "))
        }
    }

    fn node(name: &str, select: Option<Select>) -> Node {
        Node {
            name: TableName::new("s", name),
            primary_key: vec!["id".into()],
            bytes: 0,
            rows: 1000,
            synthetic: None,
            entry: select.map(|select| SubsetEntry {
                select: Some(select),
                follow_children: true,
                dangling: Dangling::Include,
                at: Location::from_offset(Path::new("lethe.toml"), "", 0),
            }),
        }
    }

    fn key(child: &str, column: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            name: format!("{child}_{column}"),
            table: TableName::new("s", child),
            columns: vec![column.into()],
            referenced: TableName::new("s", parent),
            referenced_columns: vec!["id".into()],
        }
    }

    fn selections(nodes: Vec<Node>, keys: &[ForeignKey]) -> Vec<Option<Selection>> {
        let graph = Graph::new(nodes, keys, &BTreeMap::new(), |_, _| true);
        let mut writer = Writer::new(&graph, &Plain, 7);
        (0..graph.nodes.len())
            .map(|i| writer.selection(i))
            .collect()
    }

    #[test]
    fn a_chain_reads_each_table_with_one_semi_join() {
        let found = selections(
            vec![
                node("customers", Some(Select::Percent(10.0))),
                node("orders", None),
                node("items", None),
                node("products", None),
                node("settings", None),
            ],
            &[
                key("orders", "customer_id", "customers"),
                key("items", "order_id", "orders"),
                key("items", "product_id", "products"),
            ],
        );
        let customers = found[0].as_ref().expect("subsetted");
        assert!(
            customers
                .condition
                .starts_with("sample(text(customers.id), ")
                && customers.condition.ends_with(") < 100000")
                && !customers.condition.contains("), 7)"),
            "each table samples under a seed of its own: {}",
            customers.condition
        );
        assert_eq!(customers.with, "", "its children add no condition");
        let orders = found[1].as_ref().expect("subsetted");
        assert!(
            orders
                .condition
                .starts_with("orders.customer_id IN (SELECT id FROM lethe_d"),
            "{}",
            orders.condition
        );
        let products = found[3].as_ref().expect("subsetted");
        assert!(
            products
                .condition
                .starts_with("products.id IN (SELECT product_id FROM lethe_s"),
            "{}",
            products.condition
        );
        assert!(!products.with.contains("UNION"), "{}", products.with);
        assert_eq!(found[4], None, "a table no root reaches is read whole");
    }

    #[test]
    fn two_ways_in_become_one_key_set_and_cycles_recurse() {
        let found = selections(
            vec![
                node("customers", Some(Select::Rows(5))),
                node(
                    "coupons",
                    Some(Select::Where(crate::config::WhereText {
                        sql: "code = 'X'".into(),
                        start: Location::from_offset(Path::new("lethe.toml"), "", 0),
                        verbatim: true,
                    })),
                ),
                node("orders", None),
                node("employees", Some(Select::Percent(50.0))),
            ],
            &[
                key("orders", "customer_id", "customers"),
                key("orders", "coupon_id", "coupons"),
                key("employees", "manager_id", "employees"),
            ],
        );
        let orders = found[2].as_ref().expect("subsetted");
        assert!(
            orders
                .condition
                .starts_with("orders.id IN (SELECT orders.id FROM orders WHERE "),
            "{}",
            orders.condition
        );
        assert!(orders.condition.contains(" UNION "), "{}", orders.condition);
        let employees = found[3].as_ref().expect("subsetted");
        assert!(
            employees.with.starts_with("WITH RECURSIVE "),
            "{}",
            employees.with
        );
        assert!(
            employees
                .condition
                .starts_with("text(employees.id) IN (SELECT k FROM lethe_up"),
            "{}",
            employees.condition
        );
    }

    #[test]
    fn a_dangling_key_clears_only_the_columns_no_other_key_uses() {
        let composite = |name: &str, columns: [&str; 2], parent: &str| ForeignKey {
            name: name.into(),
            table: TableName::new("s", "visits"),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            referenced: TableName::new("s", parent),
            referenced_columns: vec!["tenant_id".into(), "id".into()],
        };
        let mut visits = node("visits", None);
        visits.entry = Some(SubsetEntry {
            select: None,
            follow_children: true,
            dangling: Dangling::Null,
            at: Location::from_offset(Path::new("lethe.toml"), "", 0),
        });
        let found = selections(
            vec![
                node("customers", Some(Select::Rows(5))),
                node("coupons", None),
                visits,
                node("tenants", None),
            ],
            &[
                composite("visits_coupon", ["tenant_id", "coupon_id"], "coupons"),
                composite("visits_customer", ["tenant_id", "customer_id"], "customers"),
                key("visits", "tenant_id", "tenants"),
            ],
        );
        let visits = found[2].as_ref().expect("subsetted");
        let cleared: Vec<&String> = visits.cleared.keys().collect();
        assert_eq!(
            cleared,
            ["coupon_id", "customer_id"],
            "tenant_id stays: the other keys use it"
        );
    }
}
