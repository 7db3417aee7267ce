//! Synthetic tables (`synthetic = { rows = N }` in a table's rules): rows made from
//! nothing. Each column's raw value comes from the row's number (an integer primary
//! key), a seed text unique to the row (for a generator: `synth`, or a masker that draws
//! from a seed, such as `first_name`, `email`, `uuid`), NULL, or a parent's key drawn
//! from the rows the copy has; the column's rule then makes the stand-in, as for a copied
//! row. What cannot be generated is refused here, before anything is read.

use super::graph::{Fill, Graph, Role};
use crate::catalog::TypeKind;
use crate::config::ConfigError;
use crate::plan::TablePlan;
use crate::rules::Rule;

/// How each copied column of the synthetic table `node` is filled; a column that
/// cannot be generated is an error at its rule.
pub(super) fn fills(
    graph: &Graph,
    node: usize,
    table: &TablePlan,
    target: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, Fill)> {
    let name = &graph.nodes[node].name;
    let keys: Vec<_> = graph.edges.iter().filter(|e| e.child == node).collect();
    let keyed: Vec<&String> = keys.iter().flat_map(|e| &e.columns).collect();
    // A key back into a cycle of synthetic tables (itself included) has no rows to draw
    // from yet: a nullable one is left NULL, a NOT NULL one is refused.
    let cleared: Vec<&String> = keys
        .iter()
        .filter(|e| graph.synthetic_path(e.parent, node))
        .flat_map(|e| &e.columns)
        .collect();
    if let Some(entry) = &graph.nodes[node].entry {
        errors.push(ConfigError::at(
            entry.at.clone(),
            format!(
                "target `{target}` subset: {name} is synthetic (its rules generate its rows): \
                 it has no production rows to choose"
            ),
        ));
    }
    let primary = &graph.nodes[node].primary_key;
    if !primary.is_empty()
        && primary.iter().all(|c| keyed.contains(&c))
        && let Some(first) = table.columns.first()
    {
        errors.push(ConfigError::at(
            first.location.clone(),
            format!(
                "{name}: synthetic: its primary key is made of foreign keys only, and keys \
                 drawn at random from the parents would repeat"
            ),
        ));
    }
    let mut fills = Vec::new();
    for column in &table.columns {
        let place = format!("{name}.{}", column.column.name);
        let refuse =
            |why: &str| ConfigError::at(column.location.clone(), format!("{place}: {why}"));
        let in_keys = keyed.iter().filter(|c| **c == &column.column.name).count();
        let fill = if cleared.contains(&&column.column.name) {
            if !column.column.nullable {
                errors.push(refuse(
                    "synthetic: the key references a synthetic table that references this one \
                     back (or itself), so there is no row to draw it from: make it nullable, \
                     or copy one of the tables",
                ));
            }
            Fill::Null
        } else if in_keys > 0 {
            if in_keys > 1 {
                errors.push(refuse(
                    "synthetic: the column is in two foreign keys, and each key is drawn from \
                     its own parent row",
                ));
            }
            if column.column.unique {
                errors.push(refuse(
                    "synthetic: a unique foreign key cannot be drawn from its parent's rows \
                     without repeats",
                ));
            }
            Fill::Parent
        } else {
            match &column.rule {
                Rule::Keep
                    if primary.len() == 1
                        && primary[0] == column.column.name
                        && column.column.kind == TypeKind::Numeric =>
                {
                    Fill::RowNumber
                }
                Rule::Keep => {
                    errors.push(refuse(
                        "a synthetic table has no production value to keep: give the column a \
                         generator (`synth`, or a masker such as first_name, email, uuid), \
                         \"null\" or a constant (`keep` is for an integer primary key, which \
                         gets the row number, and for foreign keys, drawn from the parent)",
                    ));
                    Fill::Null
                }
                Rule::Null => Fill::Null,
                Rule::Mask(masker) if !masker.generates() => {
                    errors.push(refuse(&format!(
                        "`{}` keeps the shape of a real value, and a synthetic table has none: \
                         use a generator (`synth`, or a masker such as first_name, email, uuid)",
                        column.describe
                    )));
                    Fill::Null
                }
                Rule::Mask(_) | Rule::Constant(_) | Rule::Template(_) => Fill::Seed,
            }
        };
        fills.push((column.column.name.clone(), fill));
    }
    fills
}

/// A copied table may not reference a synthetic one: its production keys would find no
/// generated row.
pub(super) fn check_child(
    graph: &Graph,
    node: usize,
    table: &TablePlan,
    errors: &mut Vec<ConfigError>,
) {
    for edge in graph
        .edges
        .iter()
        .filter(|e| e.child == node && graph.roles[e.parent] == Role::Synthetic)
    {
        let column = table
            .columns
            .iter()
            .find(|c| edge.columns.contains(&c.column.name));
        let message = format!(
            "{}: it references the synthetic {} ({}), whose rows are generated: make it \
             synthetic too, or `skip = true` in its rules",
            graph.nodes[node].name, graph.nodes[edge.parent].name, edge.name
        );
        errors.push(match column {
            Some(column) => ConfigError::at(column.location.clone(), message),
            None => ConfigError {
                location: None,
                message,
            },
        });
    }
}
