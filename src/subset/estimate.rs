//! How many rows each table of a subset will get, estimated from the source's row counts
//! and the roots' own estimates, before anything is read: what `lethe plan` shows.
//!
//! Rows are taken as spread evenly: a child gets the share of its rows that reference
//! chosen parents, and a parent referenced by `n` rows of a child gets the distinct
//! parents `n` random references would hit.

use super::graph::{Graph, Role};

/// Rounds of propagation: enough for estimates along cycles to settle.
const ROUNDS: usize = 8;

/// The estimated copied rows of every node; `roots[i]` is node `i`'s own choice.
pub fn estimate(graph: &Graph, roots: &[Option<f64>]) -> Vec<u64> {
    let n = graph.nodes.len();
    let rows: Vec<f64> = graph.nodes.iter().map(|n| n.rows as f64).collect();
    let mut down = vec![0.0_f64; n];
    let mut all = vec![0.0_f64; n];
    for _ in 0..ROUNDS {
        for v in 0..n {
            down[v] = match graph.roles[v] {
                Role::Root => roots[v].unwrap_or(0.0).min(rows[v]),
                Role::Descendant => {
                    let share: f64 = graph
                        .edges
                        .iter()
                        .filter(|e| e.child == v && graph.follows_down(e))
                        .map(|e| fraction(down[e.parent], rows[e.parent]))
                        .sum();
                    rows[v] * share.min(1.0)
                }
                Role::Ancestor => 0.0,
                Role::Whole => rows[v],
                Role::Synthetic => graph.nodes[v]
                    .synthetic
                    .as_ref()
                    .map_or(0.0, |s| s.rows as f64),
            };
        }
        for v in 0..n {
            if matches!(graph.roles[v], Role::Whole | Role::Synthetic) {
                all[v] = down[v];
                continue;
            }
            let mut total = down[v];
            for e in graph
                .edges
                .iter()
                .filter(|e| e.parent == v && graph.pulls_up(e))
            {
                // The child's rows that came down from this parent reference rows of it
                // that are already counted.
                let from_here = if graph.follows_down(e) {
                    rows[e.child] * fraction(down[v], rows[v])
                } else {
                    0.0
                };
                let referencing = (all[e.child] - from_here).max(0.0);
                if rows[v] > 0.0 {
                    total += (rows[v] - total).max(0.0) * (1.0 - (-referencing / rows[v]).exp());
                }
            }
            all[v] = total.min(rows[v]);
        }
    }
    all.iter().map(|&r| r.round() as u64).collect()
}

fn fraction(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole).min(1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalog::{ForeignKey, TableName};
    use crate::config::{Dangling, Location, Select, SubsetEntry};
    use crate::subset::graph::Node;

    fn node(name: &str, rows: u64, select: Option<Select>) -> Node {
        Node {
            name: TableName::new("public", name),
            primary_key: vec!["id".into()],
            bytes: 0,
            rows,
            synthetic: None,
            entry: select.map(|select| SubsetEntry {
                select: Some(select),
                follow_children: true,
                dangling: Dangling::Include,
                at: Location::from_offset(std::path::Path::new("lethe.toml"), "", 0),
            }),
        }
    }

    fn key(child: &str, column: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            name: format!("{child}_{column}_fkey"),
            table: TableName::new("public", child),
            columns: vec![column.into()],
            referenced: TableName::new("public", parent),
            referenced_columns: vec!["id".into()],
        }
    }

    #[test]
    fn a_ten_percent_customer_subset_of_the_bench_shape() {
        let nodes = vec![
            node("customers", 1_000_000, Some(Select::Percent(10.0))),
            node("orders", 2_000_000, None),
            node("order_items", 6_000_000, None),
            node("products", 20_000, None),
            node("settings", 10, None),
        ];
        let keys = [
            key("orders", "customer_id", "customers"),
            key("order_items", "order_id", "orders"),
            key("order_items", "product_id", "products"),
        ];
        let graph = Graph::new(nodes, &keys, &BTreeMap::new(), |_, _| false);
        assert_eq!(
            graph.roles,
            [
                Role::Root,
                Role::Descendant,
                Role::Descendant,
                Role::Ancestor,
                Role::Whole
            ]
        );
        let rows = estimate(&graph, &[Some(100_000.0), None, None, None, None]);
        assert_eq!(
            rows[0], 100_000,
            "no customer is pulled in beyond the sample"
        );
        assert_eq!(rows[1], 200_000);
        assert_eq!(rows[2], 600_000);
        assert!(
            rows[3] > 19_900,
            "600k items reference nearly every product: {}",
            rows[3]
        );
        assert_eq!(rows[4], 10);
    }
}
