//! Masks one batch of COPY text rows: kept fields are copied as bytes, masked fields are
//! decoded, masked, cut to the column's width and encoded again.

use std::sync::Arc;

use crate::catalog::TableName;
use crate::engine::postgres::copy_text::{self, DELIMITER, NEWLINE, NULL};
use crate::mask::{Masker, MaskingKey};
use crate::pipeline::plan::TablePlan;
use crate::rules::Rule;

/// What happens to one field.
enum FieldAction {
    Keep,
    Null,
    /// The constant, already in COPY text form.
    Constant(Vec<u8>),
    Mask {
        masker: Arc<dyn Masker>,
        max_chars: Option<usize>,
    },
}

/// A row that could not be masked; names table and column, never the value.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The source sent a row with another number of fields than columns asked for.
    #[error("{table}: a row has {found} fields where {expected} columns were read")]
    FieldCount {
        /// The table.
        table: TableName,
        /// Fields found.
        found: usize,
        /// Columns asked for.
        expected: usize,
    },
    /// A masked field is not valid UTF-8 text.
    #[error("{table}.{column}: a value is not valid UTF-8, so it cannot be masked")]
    NotUtf8 {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
    },
}

/// The masking of one table's rows, shared by every batch of that table.
pub struct RowTransform {
    table: TableName,
    columns: Vec<String>,
    actions: Vec<FieldAction>,
    key: Arc<MaskingKey>,
}

impl RowTransform {
    /// Prepares the per-field actions of a table's plan.
    pub fn new(plan: &TablePlan, key: Arc<MaskingKey>) -> Self {
        let actions = plan
            .columns
            .iter()
            .map(|c| match &c.rule {
                Rule::Keep => FieldAction::Keep,
                Rule::Null => FieldAction::Null,
                Rule::Constant(value) => {
                    let mut encoded = Vec::new();
                    copy_text::encode(value, &mut encoded);
                    FieldAction::Constant(encoded)
                }
                Rule::Mask(masker) => FieldAction::Mask {
                    masker: Arc::clone(masker),
                    max_chars: c.column.max_chars,
                },
            })
            .collect();
        Self {
            table: plan.table.name.clone(),
            columns: plan.columns.iter().map(|c| c.column.name.clone()).collect(),
            actions,
            key,
        }
    }

    /// Masks every row of `batch` (whole rows, each ending in a newline) into a new buffer.
    pub fn apply(&self, batch: &[u8]) -> Result<Vec<u8>, TransformError> {
        let mut out = Vec::with_capacity(batch.len() + batch.len() / 4);
        let mut raw = Vec::new();
        let mut masked = String::new();
        for row in batch.split_inclusive(|b| *b == NEWLINE) {
            let row = row.strip_suffix(&[NEWLINE]).unwrap_or(row);
            let mut fields = 0;
            for (i, field) in row.split(|b| *b == DELIMITER).enumerate() {
                fields += 1;
                let Some(action) = self.actions.get(i) else {
                    continue;
                };
                if i > 0 {
                    out.push(DELIMITER);
                }
                match action {
                    FieldAction::Keep => out.extend_from_slice(field),
                    FieldAction::Null => out.extend_from_slice(NULL),
                    _ if field == NULL => out.extend_from_slice(NULL),
                    FieldAction::Constant(value) => out.extend_from_slice(value),
                    FieldAction::Mask { masker, max_chars } => {
                        raw.clear();
                        copy_text::decode(field, &mut raw);
                        let text =
                            std::str::from_utf8(&raw).map_err(|_| TransformError::NotUtf8 {
                                table: self.table.clone(),
                                column: self.columns[i].clone(),
                            })?;
                        masked.clear();
                        masker.mask(text, &self.key, &mut masked);
                        if let Some(max) = max_chars {
                            truncate_chars(&mut masked, *max);
                        }
                        copy_text::encode(&masked, &mut out);
                    }
                }
            }
            if fields != self.actions.len() {
                return Err(TransformError::FieldCount {
                    table: self.table.clone(),
                    found: fields,
                    expected: self.actions.len(),
                });
            }
            out.push(NEWLINE);
        }
        Ok(out)
    }
}

/// Cuts `text` to at most `max` characters, so a stand-in fits a `varchar(n)`.
fn truncate_chars(text: &mut String, max: usize) {
    if let Some((byte, _)) = text.char_indices().nth(max) {
        text.truncate(byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_by_characters() {
        let mut s = "Zoë Ünïcödé".to_string();
        truncate_chars(&mut s, 3);
        assert_eq!(s, "Zoë");
        let mut s = "ab".to_string();
        truncate_chars(&mut s, 5);
        assert_eq!(s, "ab");
    }
}
