//! A synthetic table's rows as a named set: a numbered series, each column's raw value
//! from its `Fill`, foreign keys drawn by keyed hash from the parent's copied rows.

use std::collections::{BTreeMap, BTreeSet};

use super::{Selection, Writer, name_seed};
use crate::subset::graph::{Edge, Fill, Role, Synthetic};

impl Writer<'_> {
    /// The selection of the synthetic table `node`: its generated rows.
    pub fn synthetic(&mut self, node: usize, synthetic: &Synthetic) -> Selection {
        let rows = self.generated(node, synthetic);
        Selection {
            with: self.with(&BTreeSet::from([rows])),
            condition: "1 = 1".into(),
            cleared: BTreeMap::new(),
            rows_from: Some(self.ctes[rows].name.clone()),
        }
    }

    /// The named set of a synthetic table's rows, one column per copied column, named as
    /// the column: row `n` of `1..=rows` with each column's raw value (see `Fill`), a
    /// foreign key's from the parent row at a keyed-hash position among the parent's
    /// copied rows.
    fn generated(&mut self, node: usize, synthetic: &Synthetic) -> usize {
        if let Some(&set) = self.generated.get(&node) {
            return set;
        }
        let series_name = format!("lethe_n{}", self.ctes.len());
        let (body, recursive) = self.dialect.series(&series_name, synthetic.rows.max(1));
        let series = self.push(series_name.clone(), body, recursive, BTreeSet::new());
        let mut deps = BTreeSet::from([series]);
        let mut joins = Vec::new();
        let mut drawn: BTreeMap<String, String> = BTreeMap::new();
        // Keys whose columns are all NULL (a nullable key back into a cycle of synthetic
        // tables) draw nothing.
        let fill_of = |column: &String| {
            synthetic
                .fills
                .iter()
                .find(|(c, _)| c == column)
                .map(|(_, fill)| *fill)
        };
        let edges: Vec<Edge> = self
            .graph
            .edges
            .iter()
            .filter(|e| {
                e.child == node && e.columns.iter().any(|c| fill_of(c) == Some(Fill::Parent))
            })
            .cloned()
            .collect();
        for (k, edge) in edges.iter().enumerate() {
            let (parents, count) = self.parent_keys(edge);
            deps.insert(parents);
            deps.insert(count);
            // Each key of each table draws apart from the others.
            let seed =
                self.seed ^ name_seed(&format!("{}\0{}", self.graph.nodes[node].name, edge.name));
            let position = self
                .dialect
                .hash(&self.dialect.key_text(&[format!("{series_name}.n")]), seed);
            joins.push(format!(
                "CROSS JOIN {count_name} AS lethe_cnt{k} LEFT JOIN {parents_name} AS lethe_par{k} \
                 ON lethe_par{k}.lethe_rn = 1 + {position} % NULLIF(lethe_cnt{k}.lethe_count, 0)",
                count_name = self.ctes[count].name,
                parents_name = self.ctes[parents].name,
            ));
            for (column, referenced) in edge.columns.iter().zip(&edge.referenced) {
                drawn.insert(
                    column.clone(),
                    format!("lethe_par{k}.{}", self.dialect.ident(referenced)),
                );
            }
        }
        let table = self.graph.nodes[node].name.name.clone();
        let seed_text = self.dialect.key_text(&[
            format!("'{}'", table.replace('\'', "''")),
            format!("{series_name}.n"),
        ]);
        let columns: Vec<String> = synthetic
            .fills
            .iter()
            .map(|(column, fill)| {
                let value = match fill {
                    Fill::Parent => drawn.get(column).cloned().unwrap_or_else(|| "NULL".into()),
                    Fill::RowNumber => format!("{series_name}.n"),
                    Fill::Null => "NULL".into(),
                    Fill::Seed => seed_text.clone(),
                };
                format!("{value} AS {}", self.dialect.ident(column))
            })
            .collect();
        let name = format!("lethe_g{}", self.ctes.len());
        let set = self.push(
            name,
            format!(
                "SELECT {} FROM {series_name} {} WHERE {series_name}.n <= {}",
                columns.join(", "),
                joins.join(" "),
                synthetic.rows
            ),
            false,
            deps,
        );
        self.generated.insert(node, set);
        set
    }

    /// The copied rows' keys of `edge`'s parent, numbered in key order, and their count:
    /// what a synthetic child draws its foreign keys from.
    fn parent_keys(&mut self, edge: &Edge) -> (usize, usize) {
        let parent = edge.parent;
        if let Some(&sets) = self.parent_keys.get(&(parent, edge.referenced.clone())) {
            return sets;
        }
        let (from, deps) = match (
            self.graph.roles[parent],
            &self.graph.nodes[parent].synthetic,
        ) {
            (Role::Synthetic, Some(synthetic)) => {
                // Never back to a table being generated: `synthetic::fills` refuses or
                // clears every key that closes a cycle of synthetic tables.
                let set = self.generated(parent, synthetic);
                (self.ctes[set].name.clone(), BTreeSet::from([set]))
            }
            (Role::Whole | Role::Synthetic, _) => (
                self.dialect.table(&self.graph.nodes[parent].name),
                BTreeSet::new(),
            ),
            (Role::Root | Role::Descendant | Role::Ancestor, _) => {
                let set = self.all_set(parent);
                (self.ctes[set].name.clone(), BTreeSet::from([set]))
            }
        };
        let keys = self.list(&edge.referenced);
        let present: Vec<String> = edge
            .referenced
            .iter()
            .map(|c| format!("{} IS NOT NULL", self.dialect.ident(c)))
            .collect();
        let parents = self.push(
            format!("lethe_k{}", self.ctes.len()),
            format!(
                "SELECT {keys}, ROW_NUMBER() OVER (ORDER BY {keys}) AS lethe_rn FROM {from} WHERE {}",
                present.join(" AND ")
            ),
            false,
            deps,
        );
        let count = self.push(
            format!("lethe_c{}", self.ctes.len()),
            format!(
                "SELECT count(*) AS lethe_count FROM {}",
                self.ctes[parents].name
            ),
            false,
            BTreeSet::from([parents]),
        );
        self.parent_keys
            .insert((parent, edge.referenced.clone()), (parents, count));
        (parents, count)
    }
}
