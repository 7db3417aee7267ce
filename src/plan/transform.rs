//! A table's plan applied to its rows. COPY text: kept fields are copied as bytes, masked
//! fields are decoded, masked, cut to the column's width and encoded again. Typed cells:
//! kept cells keep their native value, the others get their stand-in as text.

use std::borrow::Cow;
use std::sync::Arc;

use super::TablePlan;
use crate::catalog::TableName;
use crate::mask::{Masker, MaskingKey};
use crate::rows::copy_binary::{self, Codec, CodecError};
use crate::rows::copy_text::{self, DELIMITER, NEWLINE, NULL};
use crate::rows::{Batch, Cells, CopyFormat, CopyRows};
use crate::rules::{Rule, TemplatePart};

/// What happens to one field.
enum FieldAction {
    Keep,
    Null,
    /// The constant, already in COPY text form.
    Constant(Vec<u8>),
    Mask {
        masker: Arc<dyn Masker>,
        max_chars: Option<usize>,
        /// Fields whose raw text seeds a masker that follows the row; empty otherwise.
        seed: Vec<usize>,
    },
    Template {
        pieces: Vec<Piece>,
        max_chars: Option<usize>,
    },
}

/// One piece of a template, its columns resolved to field positions.
enum Piece {
    Literal(String),
    Field(usize),
}

/// What the masking stage does with a table's rows.
#[derive(Debug, Clone, Copy)]
pub enum Masking<'a> {
    /// Nothing: every value passes through untouched.
    Nothing,
    /// Reads and rewrites the values of the flagged columns (in read order), each on its
    /// own, as text.
    Columns(&'a [bool]),
    /// Reads whole rows in the engine's text form: rules that look across the row are
    /// seeded by the other fields as that form writes them (and a run that asks for text,
    /// `refresh --text-copy`, reads every table so).
    Rows,
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
    /// Binary COPY data that does not read as the format says (cut short, or a value
    /// not of its column's type).
    #[error("{table}: the source sent binary COPY data that lethe cannot read")]
    Malformed {
        /// The table.
        table: TableName,
    },
    /// A masker wrote text that the column's binary form cannot hold.
    #[error("{table}.{column}: a masked value is not a valid {type_name}")]
    NotWritable {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// The column's type.
        type_name: &'static str,
    },
}

/// Reusable buffers, so that masking a row allocates nothing once warmed up.
#[derive(Default)]
struct Scratch {
    raw: Vec<u8>,
    masked: String,
    seed: Vec<u8>,
}

/// The masking of one table's rows, shared by every batch of that table.
pub struct RowTransform {
    table: TableName,
    columns: Vec<String>,
    actions: Vec<FieldAction>,
    /// Whether some field reads other fields of its row (a template, or a masker that
    /// follows the row): such rows are split into fields before anything is written.
    row_level: bool,
    /// Per field, whether its value is read or rewritten (masked, or set to a constant).
    rewritten: Vec<bool>,
    key: Arc<MaskingKey>,
}

impl RowTransform {
    /// Prepares the per-field actions of a table's plan.
    pub fn new(plan: &TablePlan, key: Arc<MaskingKey>) -> Self {
        let actions: Vec<FieldAction> = plan
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
                    seed: if masker.follows_row() {
                        c.reads.clone()
                    } else {
                        Vec::new()
                    },
                },
                Rule::Template(template) => {
                    let mut reads = c.reads.iter();
                    let pieces = template
                        .parts
                        .iter()
                        .filter_map(|part| match part {
                            TemplatePart::Literal(text) => Some(Piece::Literal(text.clone())),
                            TemplatePart::Column(_) => reads.next().map(|&i| Piece::Field(i)),
                        })
                        .collect();
                    FieldAction::Template {
                        pieces,
                        max_chars: c.column.max_chars,
                    }
                }
            })
            .collect();
        let row_level = actions.iter().any(|a| {
            matches!(a, FieldAction::Template { .. })
                || matches!(a, FieldAction::Mask { seed, .. } if !seed.is_empty())
        });
        let rewritten = actions
            .iter()
            .map(|a| !matches!(a, FieldAction::Keep | FieldAction::Null))
            .collect();
        Self {
            table: plan.table.name.clone(),
            columns: plan.columns.iter().map(|c| c.column.name.clone()).collect(),
            actions,
            row_level,
            rewritten,
            key,
        }
    }

    /// Masks every row of `batch` (whole rows, each ending in a newline) into a new buffer.
    fn apply(&self, batch: &[u8]) -> Result<Vec<u8>, TransformError> {
        let mut out = Vec::with_capacity(batch.len() + batch.len() / 4);
        let mut scratch = Scratch::default();
        if self.row_level {
            self.apply_by_row(batch, &mut out, &mut scratch)?;
            return Ok(out);
        }
        for row in batch.split_inclusive(|b| *b == NEWLINE) {
            let row = row.strip_suffix(&[NEWLINE]).unwrap_or(row);
            let mut fields = 0;
            for (i, field) in row.split(|b| *b == DELIMITER).enumerate() {
                fields += 1;
                if i >= self.actions.len() {
                    continue;
                }
                if i > 0 {
                    out.push(DELIMITER);
                }
                self.field(i, field, &[], &mut out, &mut scratch)?;
            }
            self.check_count(fields)?;
            out.push(NEWLINE);
        }
        Ok(out)
    }

    /// What the masking does with the table's rows, for the engine to choose how to
    /// read them: whole rows in the engine's text form when a rule reads across the row
    /// (its seeds and templates see fields as that form writes them), else the columns
    /// whose values are read or rewritten (masked or set to a constant).
    pub fn masking(&self) -> Masking<'_> {
        if self.row_level {
            Masking::Rows
        } else {
            Masking::Columns(&self.rewritten)
        }
    }

    /// Masks every row of `batch`, binary COPY rows whose columns have `codecs`, into a
    /// new buffer. Runs of kept fields are copied as they came, in one piece.
    fn apply_binary(&self, batch: &[u8], codecs: &[Codec]) -> Result<Vec<u8>, TransformError> {
        let malformed = |_| TransformError::Malformed {
            table: self.table.clone(),
        };
        let mut out = Vec::with_capacity(batch.len() + batch.len() / 4);
        let mut rows = copy_binary::Rows::new(batch);
        let mut text = String::new();
        let mut masked = String::new();
        // Each constant in its column's binary form, once per batch.
        let mut constants: Vec<Option<Vec<u8>>> = vec![None; self.actions.len()];
        for (i, action) in self.actions.iter().enumerate() {
            if let (FieldAction::Constant(encoded), Some(codec)) = (action, codecs.get(i)) {
                let mut raw = Vec::new();
                copy_text::decode(encoded, &mut raw);
                let mut field = Vec::new();
                codec
                    .encode(&String::from_utf8_lossy(&raw), &mut field)
                    .map_err(|_| TransformError::NotWritable {
                        table: self.table.clone(),
                        column: self.columns[i].clone(),
                        type_name: codec.type_name(),
                    })?;
                constants[i] = Some(field);
            }
        }
        loop {
            let row_start = rows.position();
            let Some(count) = rows.next_row().map_err(malformed)? else {
                break;
            };
            self.check_count(count)?;
            if codecs.len() != count {
                return Err(TransformError::Malformed {
                    table: self.table.clone(),
                });
            }
            // Kept bytes not yet written: from here to the field being read.
            let mut kept_from = row_start;
            for (i, action) in self.actions.iter().enumerate() {
                let start = rows.position();
                let field = rows.next_field().map_err(malformed)?;
                if matches!(action, FieldAction::Keep) {
                    continue;
                }
                out.extend_from_slice(rows.between(kept_from, start));
                let written = match (action, field) {
                    (FieldAction::Null, _) | (_, None) => {
                        copy_binary::push_null(&mut out);
                        Ok(())
                    }
                    (FieldAction::Constant(_), Some(_)) => {
                        out.extend_from_slice(constants[i].as_deref().unwrap_or_default());
                        Ok(())
                    }
                    (
                        FieldAction::Mask {
                            masker, max_chars, ..
                        },
                        Some(value),
                    ) => {
                        text.clear();
                        codecs[i].decode(value, &mut text).map_err(|e| match e {
                            CodecError::NotUtf8 => TransformError::NotUtf8 {
                                table: self.table.clone(),
                                column: self.columns[i].clone(),
                            },
                            CodecError::Malformed => TransformError::Malformed {
                                table: self.table.clone(),
                            },
                        })?;
                        masked.clear();
                        masker.mask(&text, &self.key, &mut masked);
                        if let Some(max) = max_chars {
                            truncate_chars(&mut masked, *max);
                        }
                        codecs[i].encode(&masked, &mut out)
                    }
                    // Rules that read across the row only ever see text rows.
                    (FieldAction::Template { .. } | FieldAction::Keep, Some(_)) => {
                        return Err(TransformError::Malformed {
                            table: self.table.clone(),
                        });
                    }
                };
                written.map_err(|_| TransformError::NotWritable {
                    table: self.table.clone(),
                    column: self.columns[i].clone(),
                    type_name: codecs[i].type_name(),
                })?;
                kept_from = rows.position();
            }
            out.extend_from_slice(rows.between(kept_from, rows.position()));
        }
        Ok(out)
    }

    /// The slower path for tables whose rules read other fields of the row: every field
    /// but the templates first, then the templates from those masked values.
    fn apply_by_row(
        &self,
        batch: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Result<(), TransformError> {
        let mut fields: Vec<&[u8]> = Vec::with_capacity(self.actions.len());
        let mut outs: Vec<Vec<u8>> = vec![Vec::new(); self.actions.len()];
        let mut text = String::new();
        for row in batch.split_inclusive(|b| *b == NEWLINE) {
            let row = row.strip_suffix(&[NEWLINE]).unwrap_or(row);
            fields.clear();
            fields.extend(row.split(|b| *b == DELIMITER));
            self.check_count(fields.len())?;
            for (i, field) in fields.iter().enumerate() {
                outs[i].clear();
                if !matches!(self.actions[i], FieldAction::Template { .. }) {
                    self.field(i, field, &fields, &mut outs[i], scratch)?;
                }
            }
            for (i, action) in self.actions.iter().enumerate() {
                let FieldAction::Template { pieces, max_chars } = action else {
                    continue;
                };
                if fields[i] == NULL {
                    outs[i].extend_from_slice(NULL);
                    continue;
                }
                text.clear();
                for piece in pieces {
                    match piece {
                        Piece::Literal(literal) => text.push_str(literal),
                        Piece::Field(j) if outs[*j] == NULL => {}
                        Piece::Field(j) => {
                            scratch.raw.clear();
                            copy_text::decode(&outs[*j], &mut scratch.raw);
                            text.push_str(&String::from_utf8_lossy(&scratch.raw));
                        }
                    }
                }
                if let Some(max) = max_chars {
                    truncate_chars(&mut text, *max);
                }
                let mut encoded = std::mem::take(&mut outs[i]);
                copy_text::encode(&text, &mut encoded);
                outs[i] = encoded;
            }
            for (i, field) in outs.iter().enumerate() {
                if i > 0 {
                    out.push(DELIMITER);
                }
                out.extend_from_slice(field);
            }
            out.push(NEWLINE);
        }
        Ok(())
    }

    /// Writes field `i` of a row, masked by its action. `row` holds the row's raw fields
    /// when the field may be seeded by others (empty on the plain path).
    fn field(
        &self,
        i: usize,
        field: &[u8],
        row: &[&[u8]],
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Result<(), TransformError> {
        match &self.actions[i] {
            FieldAction::Keep => out.extend_from_slice(field),
            FieldAction::Null => out.extend_from_slice(NULL),
            _ if field == NULL => out.extend_from_slice(NULL),
            FieldAction::Constant(value) => out.extend_from_slice(value),
            FieldAction::Template { .. } => {}
            FieldAction::Mask {
                masker,
                max_chars,
                seed,
            } => {
                scratch.raw.clear();
                copy_text::decode(field, &mut scratch.raw);
                let text =
                    std::str::from_utf8(&scratch.raw).map_err(|_| TransformError::NotUtf8 {
                        table: self.table.clone(),
                        column: self.columns[i].clone(),
                    })?;
                scratch.masked.clear();
                if seed.is_empty() {
                    masker.mask(text, &self.key, &mut scratch.masked);
                } else {
                    scratch.seed.clear();
                    for (n, &s) in seed.iter().enumerate() {
                        if n > 0 {
                            scratch.seed.push(0);
                        }
                        scratch
                            .seed
                            .extend_from_slice(row.get(s).copied().unwrap_or(NULL));
                    }
                    masker.mask_seeded(text, &scratch.seed, &self.key, &mut scratch.masked);
                }
                if let Some(max) = max_chars {
                    truncate_chars(&mut scratch.masked, *max);
                }
                copy_text::encode(&scratch.masked, out);
            }
        }
        Ok(())
    }

    /// A field's new value, given its text (`None` is NULL) and, for a masker that
    /// follows the row, the row's fields as text.
    fn value(
        &self,
        action: &FieldAction,
        text: Option<&str>,
        row: &[Option<&str>],
        scratch: &mut Scratch,
    ) -> Option<String> {
        let mut value = String::new();
        self.write_value(action, text, row, scratch, &mut value)
            .then_some(value)
    }

    /// Appends a field's new value to `out` (see [`RowTransform::value`]); false where
    /// the new value is NULL, with nothing appended.
    fn write_value(
        &self,
        action: &FieldAction,
        text: Option<&str>,
        row: &[Option<&str>],
        scratch: &mut Scratch,
        out: &mut String,
    ) -> bool {
        let Some(text) = text else {
            return false;
        };
        match action {
            FieldAction::Keep => out.push_str(text),
            FieldAction::Null | FieldAction::Template { .. } => return false,
            FieldAction::Constant(encoded) => {
                scratch.raw.clear();
                copy_text::decode(encoded, &mut scratch.raw);
                out.push_str(&String::from_utf8_lossy(&scratch.raw));
            }
            FieldAction::Mask {
                masker,
                max_chars,
                seed,
            } => {
                let start = out.len();
                if seed.is_empty() {
                    masker.mask(text, &self.key, out);
                } else {
                    scratch.seed.clear();
                    for (n, &s) in seed.iter().enumerate() {
                        if n > 0 {
                            scratch.seed.push(0);
                        }
                        match row.get(s).copied().flatten() {
                            Some(field) => copy_text::encode(field, &mut scratch.seed),
                            None => scratch.seed.extend_from_slice(NULL),
                        }
                    }
                    masker.mask_seeded(text, &scratch.seed, &self.key, out);
                }
                if let Some(max) = max_chars {
                    truncate_chars_from(out, start, *max);
                }
            }
        }
        true
    }

    /// Masks one row given as text values (`None` is NULL), for engines that read typed
    /// values rather than COPY text. `out` gets the new value of every field, kept ones
    /// as given, so such an engine can bind kept values natively and the rest as text.
    /// Seeds and templates see the same text as on the COPY path, so every engine writes
    /// the same stand-ins.
    fn apply_values(
        &self,
        row: &[Option<&str>],
        out: &mut Vec<Option<String>>,
    ) -> Result<(), TransformError> {
        self.check_count(row.len())?;
        out.clear();
        let mut scratch = Scratch::default();
        for (i, action) in self.actions.iter().enumerate() {
            out.push(self.value(action, row[i], row, &mut scratch));
        }
        for (i, action) in self.actions.iter().enumerate() {
            let FieldAction::Template { pieces, max_chars } = action else {
                continue;
            };
            if row[i].is_none() {
                continue;
            }
            let mut text = String::new();
            for piece in pieces {
                match piece {
                    Piece::Literal(literal) => text.push_str(literal),
                    Piece::Field(j) => text.push_str(out[*j].as_deref().unwrap_or("")),
                }
            }
            if let Some(max) = max_chars {
                truncate_chars(&mut text, *max);
            }
            out[i] = Some(text);
        }
        Ok(())
    }

    /// Masks a batch of COPY rows, in the format they came in.
    pub fn mask_copy_rows(&self, batch: &CopyRows) -> Result<CopyRows, TransformError> {
        let text = match &batch.format {
            CopyFormat::Text => self.apply(&batch.text)?,
            CopyFormat::Binary(codecs) => self.apply_binary(&batch.text, codecs)?,
        };
        Ok(CopyRows {
            text: text.into(),
            format: batch.format.clone(),
            rows: batch.rows,
            source_bytes: batch.source_bytes,
        })
    }

    /// Masks a batch of typed rows in place, for engines that read native values
    /// (SQLite, MySQL): every field whose rule is not `keep` is replaced by its stand-in
    /// as text; kept fields keep their native value and type.
    pub fn mask_cells(&self, batch: &mut Cells) -> Result<(), TransformError> {
        self.check_count(batch.width)?;
        let width = batch.width;
        let mut scratch = Scratch::default();
        let mut masked = Vec::new();
        for row in 0..batch.rows as usize {
            let first = row * width;
            if !self.row_level {
                // Only the rewritten fields are read; kept ones never become text.
                for (i, action) in self.actions.iter().enumerate() {
                    if !matches!(action, FieldAction::Keep) {
                        batch.rewrite(first + i, |cell, out| {
                            let text = cell.text();
                            self.write_value(action, text.as_deref(), &[], &mut scratch, out)
                        });
                    }
                }
                continue;
            }
            // Seeds and templates see the same text as on the COPY path, so every engine
            // writes the same stand-ins.
            let texts: Vec<Option<Cow<'_, str>>> = (first..first + width)
                .map(|i| batch.get(i).text())
                .collect();
            let texts: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
            self.apply_values(&texts, &mut masked)?;
            for (i, action) in self.actions.iter().enumerate() {
                if !matches!(action, FieldAction::Keep) {
                    batch.set_text(first + i, masked[i].as_deref());
                }
            }
        }
        Ok(())
    }

    fn check_count(&self, found: usize) -> Result<(), TransformError> {
        if found == self.actions.len() {
            Ok(())
        } else {
            Err(TransformError::FieldCount {
                table: self.table.clone(),
                found,
                expected: self.actions.len(),
            })
        }
    }
}

/// A batch the masking stage can change: the masking stage is written once for every
/// engine, and each engine's batch says here how its rows are masked.
pub trait Maskable: Batch + Sized {
    /// The batch with every row masked by `transform`.
    fn masked(self, transform: &RowTransform) -> Result<Self, TransformError>;
}

impl Maskable for CopyRows {
    fn masked(self, transform: &RowTransform) -> Result<Self, TransformError> {
        transform.mask_copy_rows(&self)
    }
}

impl Maskable for Cells {
    fn masked(mut self, transform: &RowTransform) -> Result<Self, TransformError> {
        transform.mask_cells(&mut self)?;
        Ok(self)
    }
}

/// Cuts `text` to at most `max` characters, so a stand-in fits a `varchar(n)`.
fn truncate_chars(text: &mut String, max: usize) {
    truncate_chars_from(text, 0, max);
}

/// Cuts what `text` holds after byte `start` to at most `max` characters, for a stand-in
/// written after others.
fn truncate_chars_from(text: &mut String, start: usize, max: usize) {
    if let Some((byte, _)) = text[start..].char_indices().nth(max) {
        text.truncate(start + byte);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Column, Table, TypeKind};
    use crate::plan::Plan;
    use crate::rules::RuleSet;

    fn column(name: &str, unique: bool) -> Column {
        Column {
            name: name.into(),
            type_name: "text".into(),
            kind: TypeKind::Text,
            max_chars: None,
            nullable: !unique,
            generated: false,
            unique,
            element: None,
        }
    }

    /// `people(id, first, last, email, placed, shipped)`, keyed by `id`.
    fn people_table() -> Table {
        Table {
            name: TableName::new("public", "people"),
            columns: ["id", "first", "last", "email", "placed", "shipped"]
                .iter()
                .map(|c| column(c, *c == "id"))
                .collect(),
            estimated_rows: 0,
            size_bytes: 0,
            partition_of: None,
            partitioned: false,
            primary_key: Vec::new(),
        }
    }

    /// Masks rows of `people(id, first, last, email, placed, shipped)` under `rules`.
    fn people(rules: &str, rows: &str) -> String {
        let table = people_table();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("public.toml"), rules).unwrap();
        let rules = RuleSet::load(dir.path(), None).unwrap();
        let (plan, problems) = Plan::build(vec![table], &rules);
        assert!(problems.is_empty(), "{problems}");
        let transform = RowTransform::new(&plan.tables[0], Arc::new(MaskingKey::new(b"k")));
        String::from_utf8(transform.apply(rows.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn templates_read_the_rows_masked_values() {
        let out = people(
            "[people]\nkeep = [\"id\", \"placed\", \"shipped\"]\nfirst = \"first_name\"\n\
             last = \"last_name\"\nemail = { mask = \"template\", template = \"{first}.{last}.{id}@example.org\" }\n",
            "1\tAda\tLovelace\tada@real.org\tx\ty\n2\tAlan\t\\N\t\\N\tx\ty\n",
        );
        let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(
            rows[0][3],
            format!("{}.{}.1@example.org", rows[0][1], rows[0][2])
        );
        assert_ne!(rows[0][1], "Ada");
        // NULL stays NULL; a NULL input to the template is left out.
        assert_eq!(rows[1][2], "\\N");
        assert_eq!(rows[1][3], "\\N");
    }

    #[test]
    fn a_rows_dates_shift_together_seeded_by_its_key() {
        let rules = "[people]\nkeep = [\"id\", \"first\", \"last\", \"email\"]\n\
                     placed = { mask = \"date_shift\", days = 300 }\nshipped = { mask = \"date_shift\", days = 300 }\n";
        let rows = "1\ta\tb\tc\t2024-03-01\t2024-03-04 10:00:00\n2\ta\tb\tc\t2024-03-01\t2024-03-04 10:00:00\n";
        let out = people(rules, rows);
        assert_eq!(out, people(rules, rows), "deterministic");
        let day = |s: &str| chrono::NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").unwrap();
        let mut placed = Vec::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!((day(f[5]) - day(f[4])).num_days(), 3, "{line}");
            assert!(f[5].ends_with(" 10:00:00"));
            placed.push(f[4].to_owned());
        }
        // Two rows with the same dates but different keys move apart (1 in 600 chance not).
        assert_ne!(placed[0], placed[1]);
    }

    #[test]
    fn typed_rows_get_the_same_stand_ins_as_copy_text() {
        let rules = "[people]\nkeep = [\"id\"]\nfirst = \"first_name\"\nlast = \"null\"\n\
                     email = { mask = \"template\", template = \"{first}.{id}@example.org\" }\n\
                     placed = { mask = \"date_shift\", days = 300 }\nshipped = { mask = \"constant\", value = \"a\\tb\" }\n";
        let copy = people(rules, "7\tAda\tL\tx\t2024-03-01\tz\n");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("public.toml"), rules).unwrap();
        let table = people_table();
        let (plan, _) = Plan::build(vec![table], &RuleSet::load(dir.path(), None).unwrap());
        let transform = RowTransform::new(&plan.tables[0], Arc::new(MaskingKey::new(b"k")));
        let mut out = Vec::new();
        transform
            .apply_values(
                &[
                    Some("7"),
                    Some("Ada"),
                    Some("L"),
                    Some("x"),
                    Some("2024-03-01"),
                    None,
                ],
                &mut out,
            )
            .unwrap();
        let mut encoded = Vec::new();
        for (i, value) in out.iter().enumerate() {
            if i > 0 {
                encoded.push(DELIMITER);
            }
            match value {
                Some(v) => copy_text::encode(v, &mut encoded),
                None => encoded.extend_from_slice(NULL),
            }
        }
        encoded.push(NEWLINE);
        // Only the constant differs: NULL in, NULL out.
        let copy_fields: Vec<&str> = copy.trim_end().split('\t').collect();
        let typed = String::from_utf8(encoded).unwrap();
        let typed_fields: Vec<&str> = typed.trim_end().split('\t').collect();
        assert_eq!(copy_fields[..5], typed_fields[..5]);
        assert_eq!(typed_fields[5], "\\N");
        assert_eq!(copy_fields[5], "a\\tb");
    }

    #[test]
    fn row_level_rules_are_checked_at_plan_time() {
        let table = Table {
            name: TableName::new("public", "t"),
            columns: vec![column("a", false), column("b", false)],
            estimated_rows: 0,
            size_bytes: 0,
            partition_of: None,
            partitioned: false,
            primary_key: Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("public.toml"),
            "[t]\na = { mask = \"template\", template = \"{bb}\" }\nb = { synth = \"int\", range = [1, 2] }\n",
        )
        .unwrap();
        let (_, problems) = Plan::build(vec![table], &RuleSet::load(dir.path(), None).unwrap());
        let bad = problems.bad_rules.join("\n");
        assert!(bad.contains("public.t.a: reads `bb`, which is not a copied column of the table (did you mean `b`?)"), "{bad}");
        assert!(bad.contains("public.t.b: follows the row, but the table has no single-column NOT NULL unique key"), "{bad}");
    }

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
