//! The sets of a cycle of foreign keys (a table that references itself, or tables
//! that reference each other): one recursive set of (table tag, key text) pairs per
//! cycle, seeded from outside the cycle and joined along its keys until nothing new
//! comes.

use std::collections::BTreeSet;

use super::{Cond, Writer};
use crate::subset::graph::Edge;

impl Writer<'_> {
    pub(super) fn in_cycle_set(&self, node: usize, cycle: usize, set: usize) -> Cond {
        let tag = self.tag(node, cycle);
        Cond {
            sql: format!(
                "{} IN (SELECT k FROM {} WHERE t = {tag})",
                self.primary_text(node),
                self.ctes[set].name
            ),
            deps: BTreeSet::from([set]),
        }
    }

    fn tag(&self, node: usize, cycle: usize) -> usize {
        self.cycles[cycle]
            .iter()
            .position(|&n| n == node)
            .unwrap_or(0)
    }

    /// The (tag, key) pairs of a cycle's down rows.
    pub(super) fn cycle_down_set(&mut self, cycle: usize) -> Option<usize> {
        if let Some(&set) = self.cycle_down.get(&cycle) {
            return set;
        }
        let members = self.cycles[cycle].clone();
        let mut seeds = Vec::new();
        for &node in &members {
            if let Some(cond) = self.down_from_outside(node) {
                seeds.push(self.tagged(node, cycle, cond));
            }
        }
        let graph = self.graph;
        let inside = self.inside(cycle, |e| graph.follows_down(e));
        // Down: from a parent's row to the rows that reference it.
        let set = self.cycle_set(cycle, "dn", seeds, &inside, true);
        self.cycle_down.insert(cycle, set);
        set
    }

    /// The (tag, key) pairs of a cycle's copied rows.
    pub(super) fn cycle_all_set(&mut self, cycle: usize) -> Option<usize> {
        if let Some(&set) = self.cycle_all.get(&cycle) {
            return set;
        }
        let members = self.cycles[cycle].clone();
        let down = self.cycle_down_set(cycle);
        let mut seeds = Vec::new();
        for &node in &members {
            let mut conds: Vec<Cond> = down
                .map(|set| self.in_cycle_set(node, cycle, set))
                .into_iter()
                .collect();
            conds.extend(self.up_from_outside(node));
            if let Some(cond) = self.any(node, conds) {
                seeds.push(self.tagged(node, cycle, cond));
            }
        }
        let graph = self.graph;
        let inside = self.inside(cycle, |e| graph.pulls_up(e));
        // Up: from a row to the rows it references.
        let set = self.cycle_set(cycle, "up", seeds, &inside, false);
        self.cycle_all.insert(cycle, set);
        set
    }

    /// The keys between two tables of `cycle` that `walks`.
    fn inside(&self, cycle: usize, walks: impl Fn(&Edge) -> bool) -> Vec<Edge> {
        self.graph
            .edges
            .iter()
            .filter(|e| {
                self.cycle_of[e.child] == Some(cycle)
                    && self.cycle_of[e.parent] == Some(cycle)
                    && walks(e)
            })
            .cloned()
            .collect()
    }

    fn tagged(&self, node: usize, cycle: usize, cond: Cond) -> Cond {
        Cond {
            sql: format!(
                "SELECT {} AS t, {} AS k FROM {} WHERE {}",
                self.tag(node, cycle),
                self.primary_text(node),
                self.dialect.table(&self.graph.nodes[node].name),
                cond.sql
            ),
            deps: cond.deps,
        }
    }

    /// A cycle's set: `seeds`, then every row one `edges` step away from a row in it,
    /// until nothing new comes (`UNION` drops repeats, so it ends).
    fn cycle_set(
        &mut self,
        cycle: usize,
        prefix: &str,
        seeds: Vec<Cond>,
        edges: &[Edge],
        down: bool,
    ) -> Option<usize> {
        if seeds.is_empty() {
            return None;
        }
        let mut deps: BTreeSet<usize> = seeds.iter().flat_map(|s| s.deps.iter().copied()).collect();
        let seeds: Vec<String> = seeds.into_iter().map(|s| s.sql).collect();
        let name = format!("lethe_{prefix}{}", self.ctes.len());
        if edges.is_empty() {
            let set = self.push(name, seeds.join(" UNION "), false, deps);
            self.ctes[set].columns = Some("t, k");
            return Some(set);
        }
        let steps: Vec<String> = edges
            .iter()
            .map(|e| {
                let (from, to) = if down {
                    (e.parent, e.child)
                } else {
                    (e.child, e.parent)
                };
                let (from_alias, to_alias) = if down { ("p", "c") } else { ("c", "p") };
                let on: Vec<String> = e
                    .columns
                    .iter()
                    .zip(&e.referenced)
                    .map(|(c, r)| {
                        format!("c.{} = p.{}", self.dialect.ident(c), self.dialect.ident(r))
                    })
                    .collect();
                let key = |node: usize, alias: &str| {
                    let columns: Vec<String> = self.graph.nodes[node]
                        .primary_key
                        .iter()
                        .map(|c| format!("{alias}.{}", self.dialect.ident(c)))
                        .collect();
                    self.dialect.key_text(&columns)
                };
                format!(
                    "SELECT {} AS st, {} AS sk, {} AS dt, {} AS dk FROM {} c JOIN {} p ON {}",
                    self.tag(from, cycle),
                    key(from, from_alias),
                    self.tag(to, cycle),
                    key(to, to_alias),
                    self.dialect.table(&self.graph.nodes[e.child].name),
                    self.dialect.table(&self.graph.nodes[e.parent].name),
                    on.join(" AND ")
                )
            })
            .collect();
        let steps_name = format!("lethe_e{}", self.ctes.len());
        let step_set = self.push(
            steps_name.clone(),
            steps.join(" UNION ALL "),
            false,
            BTreeSet::new(),
        );
        self.ctes[step_set].materialized = true;
        deps.insert(step_set);
        let body = format!(
            "{} UNION SELECT {steps_name}.dt, {steps_name}.dk FROM {name} JOIN {steps_name} \
             ON {steps_name}.st = {name}.t AND {steps_name}.sk = {name}.k",
            seeds.join(" UNION ")
        );
        let set = self.push(name, body, true, deps);
        self.ctes[set].columns = Some("t, k");
        Some(set)
    }
}
