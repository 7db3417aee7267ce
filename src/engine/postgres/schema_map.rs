//! The live, shadow and previous name of every copied schema: a refresh loads into the
//! shadow, the swap renames shadow to live and live to previous, a rollback back again.

use std::collections::BTreeMap;

use crate::catalog::TableName;

/// Longest identifier PostgreSQL keeps.
const MAX_IDENT: usize = 63;

/// The live, shadow and previous name of every copied schema.
#[derive(Debug, Clone)]
pub struct SchemaMap {
    pub(super) entries: Vec<SchemaNames>,
}

/// The three names one schema goes by during a refresh.
#[derive(Debug, Clone)]
pub(super) struct SchemaNames {
    pub(super) live: String,
    pub(super) shadow: String,
    pub(super) previous: String,
}

impl SchemaMap {
    /// Names the shadow and previous copy of each schema (`lethe_shadow_<name>`,
    /// `lethe_prev_<name>`; a hash stands in for names too long to prefix).
    pub fn new(schemas: &[String]) -> Self {
        let name = |prefix: &str, schema: &str| {
            let plain = format!("{prefix}{schema}");
            if plain.len() <= MAX_IDENT {
                plain
            } else {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(schema.as_bytes());
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("{prefix}{hex}")
            }
        };
        let entries = schemas
            .iter()
            .map(|s| SchemaNames {
                live: s.clone(),
                shadow: name("lethe_shadow_", s),
                previous: name("lethe_prev_", s),
            })
            .collect();
        Self { entries }
    }

    /// live name -> shadow name, for rewriting the schema script.
    pub fn shadow_names(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|e| (e.live.clone(), e.shadow.clone()))
            .collect()
    }

    /// The copied schemas, in the order they were listed.
    pub fn live_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.live.clone()).collect()
    }

    /// The live schema whose shadow is `shadow`.
    pub(super) fn live_of(&self, shadow: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.shadow == shadow)
            .map(|e| e.live.as_str())
    }

    /// Where a source table is loaded in the target during the run.
    pub fn shadow_table(&self, table: &TableName) -> TableName {
        let schema = self
            .entries
            .iter()
            .find(|e| e.live == table.schema)
            .map_or_else(|| table.schema.clone(), |e| e.shadow.clone());
        TableName::new(schema, table.name.clone())
    }
}
