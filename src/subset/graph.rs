//! The foreign-key graph of the copied tables, and what role each table plays in a
//! subset: chosen by its own entry (a root), reached from a root through its parents (a
//! descendant: it gets the children of chosen rows), needed only as a parent, or not
//! touched by the subset at all (copied whole).

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{ForeignKey, TableName};
use crate::config::{Dangling, SubsetEntry};

/// A copied table, as the subset sees it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its name.
    pub name: TableName,
    /// Its primary key's columns (empty without one).
    pub primary_key: Vec<String>,
    /// The planner's row estimate.
    pub rows: u64,
    /// Bytes on disk, to tell how much a query that reads the table reads.
    pub bytes: u64,
    /// The subset's entry for it, if any.
    pub entry: Option<SubsetEntry>,
    /// For a synthetic table: how many rows to generate, and how each copied column is
    /// filled.
    pub synthetic: Option<Synthetic>,
}

/// A synthetic table's rows: production's are never read.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// How many.
    pub rows: u64,
    /// Each copied column and how its raw value is made (its rule applies after).
    pub fills: Vec<(String, Fill)>,
}

/// Where a synthetic column's raw value comes from, before its rule makes the stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The row's number, 1 to `rows` (an integer primary key kept as is).
    RowNumber,
    /// NULL.
    Null,
    /// A text unique to the table and row, for a generator to draw from.
    Seed,
    /// A parent row's key, drawn from the rows the copy has (a foreign key).
    Parent,
}

/// A foreign key between two copied tables (partitions stand for their partitioned
/// table): the child's rows reference the parent's.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The constraint's name.
    pub name: String,
    /// The referencing table (index into the nodes).
    pub child: usize,
    /// Its key columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub parent: usize,
    /// The referenced columns.
    pub referenced: Vec<String>,
    /// Whether every key column accepts NULL, so the key can be cleared.
    pub nullable: bool,
}

/// How the subset treats a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its own entry chooses its rows (`where`, `percent`, `rows`).
    Root,
    /// A root reaches it through its parents: the children of chosen rows, plus the
    /// rows other chosen rows reference.
    Descendant,
    /// Only the rows that chosen rows reference.
    Ancestor,
    /// Untouched by the subset: every row.
    Whole,
    /// Generated rows (`synthetic = { rows = N }` in its rules).
    Synthetic,
}

/// The graph, with each table's role.
#[derive(Debug)]
pub struct Graph {
    /// The copied tables.
    pub nodes: Vec<Node>,
    /// Foreign keys between them.
    pub edges: Vec<Edge>,
    /// Each node's role, by index.
    pub roles: Vec<Role>,
}

impl Graph {
    /// Builds the graph of `nodes` from `keys` (`partition_of` maps a partition to the
    /// copied table that stands for it) and gives each table its role.
    pub fn new(
        nodes: Vec<Node>,
        keys: &[ForeignKey],
        partition_of: &BTreeMap<TableName, TableName>,
        nullable: impl Fn(&TableName, &str) -> bool,
    ) -> Self {
        let index: BTreeMap<&TableName, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (&n.name, i))
            .collect();
        let find = |name: &TableName| {
            let name = partition_of.get(name).unwrap_or(name);
            index.get(name).copied()
        };
        let edges: Vec<Edge> = keys
            .iter()
            .filter_map(|key| {
                let (child, parent) = (find(&key.table)?, find(&key.referenced)?);
                Some(Edge {
                    name: key.name.clone(),
                    child,
                    columns: key.columns.clone(),
                    parent,
                    referenced: key.referenced_columns.clone(),
                    nullable: key.columns.iter().all(|c| nullable(&key.table, c)),
                })
            })
            .collect();
        let roles = roles(&nodes, &edges);
        Self {
            nodes,
            edges,
            roles,
        }
    }

    /// Whether any table's rows are chosen rather than copied whole.
    pub fn has_roots(&self) -> bool {
        self.roles.contains(&Role::Root)
    }

    /// Whether `from` reaches `to` through keys from synthetic tables to synthetic tables
    /// (a cycle when `to` references `from`).
    pub fn synthetic_path(&self, from: usize, to: usize) -> bool {
        let mut seen = vec![false; self.nodes.len()];
        let mut work = vec![from];
        while let Some(node) = work.pop() {
            if node == to {
                return true;
            }
            if std::mem::replace(&mut seen[node], true) {
                continue;
            }
            work.extend(
                self.edges
                    .iter()
                    .filter(|e| e.child == node && self.roles[e.parent] == Role::Synthetic)
                    .map(|e| e.parent),
            );
        }
        false
    }

    /// Whether any table is generated rather than read.
    pub fn has_synthetic(&self) -> bool {
        self.roles.contains(&Role::Synthetic)
    }

    /// Whether the subset chooses among this table's rows (roots, descendants, ancestors).
    pub fn subsetted(&self, node: usize) -> bool {
        !matches!(self.roles[node], Role::Whole | Role::Synthetic)
    }

    /// Whether the rows of `edge`'s child that reference chosen parent rows come too.
    pub fn follows_down(&self, edge: &Edge) -> bool {
        let parent = &self.nodes[edge.parent];
        let child = &self.nodes[edge.child];
        matches!(self.roles[edge.parent], Role::Root | Role::Descendant)
            && self.roles[edge.child] == Role::Descendant
            && parent.entry.as_ref().is_none_or(|e| e.follow_children)
            && child.entry.as_ref().is_none_or(|e| e.select.is_none())
    }

    /// Whether the rows `edge`'s child keeps pull the parent rows they reference into
    /// the copy (else the key is cleared where the parent is left out).
    pub fn pulls_up(&self, edge: &Edge) -> bool {
        // A synthetic child draws its keys from the parent's copied rows instead; a key
        // with no column of its own (all shared with other keys) cannot be cleared alone.
        self.roles[edge.child] != Role::Synthetic
            && !(edge.nullable
                && self.dangling(edge.child) == Dangling::Null
                && !self.own_columns(edge).is_empty())
    }

    /// The columns of `edge` that no other foreign key of its table uses: the ones a
    /// cleared key sets NULL. A shared column stays, so the other key keeps its value;
    /// one NULL column is enough for the cleared key to reference nothing.
    pub fn own_columns<'e>(&self, edge: &'e Edge) -> Vec<&'e String> {
        edge.columns
            .iter()
            .filter(|c| {
                !self.edges.iter().any(|other| {
                    other.child == edge.child
                        && other.name != edge.name
                        && other.columns.contains(c)
                })
            })
            .collect()
    }

    /// Whether `edge`'s key is cleared in rows whose parent is left out.
    pub fn clears(&self, edge: &Edge) -> bool {
        self.subsetted(edge.parent) && !self.pulls_up(edge)
    }

    fn dangling(&self, node: usize) -> Dangling {
        self.nodes[node]
            .entry
            .as_ref()
            .map_or(Dangling::Include, |e| e.dangling)
    }

    /// The strongly connected components of the subsetted tables (tables that reference
    /// each other in a cycle), each flagged when it holds a cycle (two tables or more,
    /// or a table that references itself), in no particular order.
    pub fn components(&self) -> Vec<(Vec<usize>, bool)> {
        let n = self.nodes.len();
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in &self.edges {
            if self.subsetted(e.child) && self.subsetted(e.parent) {
                out[e.child].push(e.parent);
            }
        }
        let mut tarjan = Tarjan {
            out: &out,
            index: vec![None; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            found: Vec::new(),
        };
        for v in 0..n {
            if self.subsetted(v) && tarjan.index[v].is_none() {
                tarjan.visit(v);
            }
        }
        tarjan
            .found
            .into_iter()
            .map(|c| {
                let cyclic = c.len() > 1 || out[c[0]].contains(&c[0]);
                (c, cyclic)
            })
            .collect()
    }
}

/// Roots are the tables whose entry chooses rows; descendants are reached from a root
/// through child edges; ancestors are the parents (transitively) of roots and
/// descendants; every other table is whole.
fn roles(nodes: &[Node], edges: &[Edge]) -> Vec<Role> {
    let mut roles: Vec<Role> = nodes
        .iter()
        .map(|n| match n.entry.as_ref().and_then(|e| e.select.as_ref()) {
            _ if n.synthetic.is_some() => Role::Synthetic,
            Some(_) => Role::Root,
            None => Role::Whole,
        })
        .collect();
    let generated = |i: usize| nodes[i].synthetic.is_some();
    let mut reached: BTreeSet<usize> = (0..nodes.len())
        .filter(|&i| roles[i] == Role::Root)
        .collect();
    let mut work: Vec<usize> = reached.iter().copied().collect();
    while let Some(parent) = work.pop() {
        for e in edges
            .iter()
            .filter(|e| e.parent == parent && !generated(e.child))
        {
            if reached.insert(e.child) {
                roles[e.child] = Role::Descendant;
                work.push(e.child);
            }
        }
    }
    let mut needed = reached.clone();
    let mut work: Vec<usize> = reached.into_iter().collect();
    while let Some(child) = work.pop() {
        for e in edges
            .iter()
            .filter(|e| e.child == child && !generated(e.parent))
        {
            if needed.insert(e.parent) {
                roles[e.parent] = Role::Ancestor;
                work.push(e.parent);
            }
        }
    }
    roles
}

/// Tarjan's strongly connected components (recursive: as deep as the longest chain of
/// foreign keys, which schemas keep short).
struct Tarjan<'a> {
    out: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    found: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.out[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            self.found.push(component);
        }
    }
}
