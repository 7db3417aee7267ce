//! Subsets: a slice of production whose every foreign key still finds its row.
//!
//! A target's `[subset]` names root tables and how their rows are chosen (`where`,
//! `percent`, `rows`). From them the closure follows the foreign keys both ways:
//!
//! - **down**: the rows that reference a chosen row come too (a customer's orders, their
//!   items and payments), through any number of hops, unless the parent's entry says
//!   `follow_children = false` or the child has an entry of its own;
//! - **up**: every row that a copied row references is copied (transitively, composite
//!   keys, across schemas), so every constraint validates on the target; a nullable key
//!   of a table whose entry says `dangling = "null"` is cleared instead.
//!
//! A table that no root reaches and that no copied row references is copied whole.
//! The closure is computed by the source inside the run's snapshot (`sql.rs`); this
//! module checks the entries against the catalog, gives each table its role and its
//! query, and estimates its rows for `lethe plan`.

mod estimate;
mod graph;
mod sql;
mod synthetic;

pub use graph::Role;
pub use sql::{Dialect, Selection, select_from, select_sql};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::{ForeignKey, TableName};
use crate::config::{ConfigError, Select, Subset, WhereText};
use crate::mask::MaskingKey;
use crate::plan::{Plan, closest};
use graph::{Graph, Node, Synthetic};

/// How one table of a subset is copied.
#[derive(Debug, Clone)]
pub struct TableSubset {
    /// Its role in the closure.
    pub role: Role,
    /// Why its rows are copied, as `lethe plan` shows it.
    pub why: String,
    /// The rows estimated to be copied.
    pub estimate: u64,
    /// The query of its rows; `None` for a table copied whole and unchanged.
    pub selection: Option<Arc<Selection>>,
    /// Bytes on disk of every table its query reads (the closure's sets included), so
    /// the copy starts the heaviest queries first rather than the biggest tables.
    pub reads_bytes: u64,
}

/// A target's subset, resolved against the source: every copied table's role and query.
#[derive(Debug, Clone, Default)]
pub struct SubsetPlan {
    /// Each copied table (partitioned tables stand for their partitions).
    pub tables: BTreeMap<TableName, TableSubset>,
}

impl SubsetPlan {
    /// The query of `table`'s rows, or `None` when it is copied whole.
    pub fn selection(&self, table: &TableName) -> Option<Arc<Selection>> {
        self.tables.get(table).and_then(|t| t.selection.clone())
    }
}

/// A subset checked against the catalog, waiting for the estimates of its `where`
/// conditions (which the source gives, and which also check that they parse).
#[derive(Debug)]
pub struct Resolved {
    graph: Graph,
}

/// A `where` condition to estimate (and so to check) on the source.
#[derive(Debug, Clone)]
pub struct Condition<'a> {
    /// The table it chooses rows of.
    pub table: TableName,
    /// The condition, with its place in lethe.toml.
    pub text: &'a WhereText,
}

/// The seed of the samples under `key`: a keyed hash of a fixed label, so a sample is the
/// same on every run and differs between keys, and the key itself never enters SQL.
pub fn sample_seed(key: &MaskingKey) -> i64 {
    let seed = key.seed("lethe subset sample", b"");
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&seed[..8]);
    i64::from_le_bytes(bytes)
}

impl Resolved {
    /// Checks `subset` against the copied tables of `plan` and the source's `keys`:
    /// every entry names a copied table, a sample has a primary key to sample by, and
    /// every table in a foreign-key cycle has a primary key to walk it by. Returns the
    /// subset with every problem found (each at its place in lethe.toml), so the `where`s
    /// can still be checked and every problem shown at once.
    pub fn new(
        file: &std::path::Path,
        target: &str,
        subset: &Subset,
        plan: &Plan,
        keys: &[ForeignKey],
    ) -> (Self, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let partition_of: BTreeMap<TableName, TableName> =
            plan.partitions.iter().cloned().collect();
        let copied: Vec<_> = plan.tables.iter().filter(|t| !t.skip).collect();
        for (name, entry) in &subset.tables {
            if copied.iter().any(|t| &t.table.name == name) {
                continue;
            }
            let message = if let Some(parent) = partition_of.get(name) {
                format!("{name} is a partition of {parent}: give the entry to {parent}")
            } else if plan.tables.iter().any(|t| &t.table.name == name) {
                format!(
                    "{name} is created empty by its rules (skip = true): it has no rows to choose"
                )
            } else {
                let hint = closest(
                    &name.to_string(),
                    plan.tables
                        .iter()
                        .map(|t| t.table.name.to_string())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str),
                )
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
                format!("no table {name} is copied from the source{hint}")
            };
            errors.push(ConfigError::at(
                entry.at.clone(),
                format!("target `{target}` subset: {message}"),
            ));
        }
        let nodes: Vec<Node> = copied
            .iter()
            .map(|t| Node {
                name: t.table.name.clone(),
                primary_key: t.table.primary_key.clone(),
                rows: t.table.estimated_rows,
                bytes: t.table.size_bytes,
                entry: subset.tables.get(&t.table.name).cloned(),
                synthetic: t.synthetic.map(|rows| Synthetic {
                    rows,
                    fills: Vec::new(),
                }),
            })
            .collect();
        let nullable = |table: &TableName, column: &str| {
            let table = partition_of.get(table).unwrap_or(table);
            copied
                .iter()
                .find(|t| &t.table.name == table)
                .and_then(|t| t.table.columns.iter().find(|c| c.name == column))
                .is_some_and(|c| c.nullable)
        };
        let mut graph = Graph::new(nodes, keys, &partition_of, nullable);
        for (i, table) in copied.iter().enumerate() {
            if graph.roles[i] == Role::Synthetic {
                let fills = synthetic::fills(&graph, i, table, target, &mut errors);
                if let Some(synthetic) = graph.nodes[i].synthetic.as_mut() {
                    synthetic.fills = fills;
                }
            } else {
                synthetic::check_child(&graph, i, table, &mut errors);
            }
        }
        for node in &graph.nodes {
            let Some(entry) = &node.entry else { continue };
            let samples = matches!(
                entry.select,
                Some(Select::Percent(_)) | Some(Select::Rows(1..))
            );
            if samples && node.primary_key.is_empty() {
                errors.push(ConfigError::at(
                    entry.at.clone(),
                    format!(
                        "target `{target}` subset: {} has no primary key to sample by: choose its rows with `where`",
                        node.name
                    ),
                ));
            }
        }
        if graph.has_roots() {
            for (members, cyclic) in graph.components() {
                if !cyclic {
                    continue;
                }
                for &m in &members {
                    if graph.nodes[m].primary_key.is_empty() {
                        let cycle: Vec<String> = members
                            .iter()
                            .map(|&n| graph.nodes[n].name.to_string())
                            .collect();
                        errors.push(ConfigError::in_file(
                            file,
                            format!(
                                "target `{target}` subset: {} is in a cycle of foreign keys ({}) and has no primary key to follow it by",
                                graph.nodes[m].name,
                                cycle.join(" -> ")
                            ),
                        ));
                    }
                }
            }
        }
        (Self { graph }, errors)
    }

    /// Whether the subset chooses any rows or generates any table (else every table is
    /// copied whole).
    pub fn chooses_rows(&self) -> bool {
        self.graph.has_roots() || self.graph.has_synthetic()
    }

    /// The `where` conditions of the roots, for the source to estimate and check.
    pub fn conditions(&self) -> Vec<Condition<'_>> {
        self.graph
            .nodes
            .iter()
            .filter_map(|n| match n.entry.as_ref().and_then(|e| e.select.as_ref()) {
                Some(Select::Where(text)) => Some(Condition {
                    table: n.name.clone(),
                    text,
                }),
                _ => None,
            })
            .collect()
    }

    /// Every table's role, query (in `dialect`, samples keyed by `seed`) and estimate;
    /// `estimates` are the rows of each `where` condition as the source estimated them.
    pub fn finish(
        &self,
        dialect: &dyn Dialect,
        seed: i64,
        estimates: &BTreeMap<TableName, u64>,
    ) -> SubsetPlan {
        let graph = &self.graph;
        let roots: Vec<Option<f64>> = graph
            .nodes
            .iter()
            .map(|n| match n.entry.as_ref().and_then(|e| e.select.as_ref()) {
                Some(Select::Where(_)) => estimates.get(&n.name).map(|&r| r as f64),
                Some(Select::Percent(p)) => Some(n.rows as f64 * p / 100.0),
                Some(Select::Rows(r)) => Some((*r as f64).min(n.rows as f64)),
                None => None,
            })
            .collect();
        let rows = estimate::estimate(graph, &roots);
        let mut writer = sql::Writer::new(graph, dialect, seed);
        let tables = (0..graph.nodes.len())
            .map(|i| {
                let selection = if let Some(synthetic) = &graph.nodes[i].synthetic {
                    Some(Arc::new(writer.synthetic(i, synthetic)))
                } else if graph.has_roots() {
                    writer.selection(i).map(Arc::new)
                } else {
                    None
                };
                let reads_bytes = match &selection {
                    Some(selection) => graph
                        .nodes
                        .iter()
                        .enumerate()
                        .filter(|&(j, n)| {
                            j == i || selection.with.contains(&dialect.table(&n.name))
                        })
                        .map(|(_, n)| n.bytes)
                        .sum(),
                    None => graph.nodes[i].bytes,
                };
                (
                    graph.nodes[i].name.clone(),
                    TableSubset {
                        role: graph.roles[i],
                        why: self.why(i),
                        estimate: rows[i],
                        selection,
                        reads_bytes,
                    },
                )
            })
            .collect();
        SubsetPlan { tables }
    }

    /// How a table's rows are chosen, in words.
    fn why(&self, node: usize) -> String {
        let graph = &self.graph;
        let names = |of: Vec<usize>| {
            let mut names: Vec<String> = of
                .iter()
                .map(|&n| graph.nodes[n].name.to_string())
                .collect();
            names.sort();
            names.dedup();
            names.join(", ")
        };
        let mut parts = Vec::new();
        match graph.roles[node] {
            Role::Root => {
                let entry = graph.nodes[node].entry.as_ref();
                parts.push(match entry.and_then(|e| e.select.as_ref()) {
                    Some(Select::Where(w)) => format!("root: where {}", w.sql.trim()),
                    Some(Select::Percent(p)) => format!("root: {p}% sample"),
                    Some(Select::Rows(0)) => "root: no rows (rows = 0)".to_string(),
                    Some(Select::Rows(r)) => format!("root: {r} rows"),
                    None => "root".to_string(),
                });
            }
            Role::Descendant => {
                let parents: Vec<usize> = graph
                    .edges
                    .iter()
                    .filter(|e| e.child == node && graph.follows_down(e))
                    .map(|e| e.parent)
                    .collect();
                if parents.is_empty() {
                    parts.push("no children followed here".to_string());
                } else {
                    parts.push(format!("children of {}", names(parents)));
                }
            }
            Role::Ancestor => {}
            Role::Whole => return "whole (no root reaches it)".to_string(),
            Role::Synthetic => {
                let rows = graph.nodes[node].synthetic.as_ref().map_or(0, |s| s.rows);
                let parents: Vec<usize> = graph
                    .edges
                    .iter()
                    .filter(|e| e.child == node)
                    .map(|e| e.parent)
                    .collect();
                let mut why = format!("synthetic: {rows} generated rows, production's never read");
                if !parents.is_empty() {
                    why += &format!("; keys drawn from the copied rows of {}", names(parents));
                }
                return why;
            }
        }
        let children: Vec<usize> = graph
            .edges
            .iter()
            .filter(|e| e.parent == node && graph.pulls_up(e))
            .map(|e| e.child)
            .collect();
        if !children.is_empty() {
            parts.push(format!("parents of {}", names(children)));
        }
        let cleared: Vec<String> = graph
            .edges
            .iter()
            .filter(|e| e.child == node && graph.clears(e))
            .map(|e| {
                let own: Vec<&str> = graph
                    .own_columns(e)
                    .into_iter()
                    .map(String::as_str)
                    .collect();
                format!("{} ({})", own.join(", "), e.name)
            })
            .collect();
        if !cleared.is_empty() {
            parts.push(format!(
                "NULL where the parent is left out: {}",
                cleared.join("; ")
            ));
        }
        if parts.is_empty() {
            "empty (no copied row needs it)".to_string()
        } else {
            parts.join("; ")
        }
    }
}
