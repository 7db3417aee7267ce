//! The shapes rows take between a source and a target: COPY rows (text or binary), as
//! PostgreSQL streams them, and typed cells, as MySQL and SQLite hand them over. Engines read and write them;
//! the masking stage changes them; nothing here knows of either.

pub mod copy_binary;
pub mod copy_text;

use std::sync::Arc;

use bytes::Bytes;

use copy_binary::Codec;

/// A batch of rows on its way from a reader to a writer: the unit of the bounded
/// channels, so memory is the channel depth times a batch, whatever the table's size.
pub trait Batch: Send + 'static {
    /// Rows in the batch.
    fn rows(&self) -> u64;
    /// Bytes the rows took in the source, for the progress figures and the run history.
    fn source_bytes(&self) -> u64;
}

/// Whole rows of COPY data, in the format they were read in.
#[derive(Debug, Clone)]
pub struct CopyRows {
    /// The rows, without a binary stream's header or trailer.
    pub text: Bytes,
    /// Their format.
    pub format: CopyFormat,
    /// How many rows it holds.
    pub rows: u64,
    /// Its length as read from the source (masking changes `text`, not this).
    pub source_bytes: u64,
}

/// The two formats of PostgreSQL's COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// Text: `\t` between fields, `\n` after each row, backslash escapes.
    Text,
    /// Binary, with each column's codec, in the order the columns were read.
    Binary(Arc<[Codec]>),
}

impl Batch for CopyRows {
    fn rows(&self) -> u64 {
        self.rows
    }

    fn source_bytes(&self) -> u64 {
        self.source_bytes
    }
}

/// One value as an engine with typed rows reads it and binds it back.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// Text that is not valid UTF-8, kept as its bytes and written back as text.
    RawText(Vec<u8>),
    /// Bytes: binary values.
    Bytes(Vec<u8>),
}

impl Cell {
    /// The value as a masker reads it (`None` for NULL).
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Cell::Null => None,
            Cell::Integer(n) => Some(n.to_string().into()),
            Cell::Real(x) => Some(x.to_string().into()),
            Cell::Text(t) => Some(t.as_str().into()),
            Cell::RawText(b) | Cell::Bytes(b) => Some(String::from_utf8_lossy(b)),
        }
    }

    /// A masker's output (or NULL) as a cell.
    pub fn from_text(text: Option<String>) -> Self {
        text.map_or(Cell::Null, Cell::Text)
    }

    /// The bytes the value takes, as the progress figures count them.
    pub fn size(&self) -> usize {
        match self {
            Cell::Null => 0,
            Cell::Integer(_) | Cell::Real(_) => 8,
            Cell::Text(t) => t.len(),
            Cell::RawText(b) | Cell::Bytes(b) => b.len(),
        }
    }
}

/// Rows of typed cells, `width` cells a row, one flat vector for the whole batch.
#[derive(Debug, Clone, Default)]
pub struct Cells {
    /// Every cell of every row, row after row.
    pub cells: Vec<Cell>,
    /// Cells per row.
    pub width: usize,
    /// Rows in the batch (a table may have no columns to copy, and still rows).
    pub rows: u64,
    /// The cells' size as read from the source.
    pub source_bytes: u64,
}

impl Cells {
    /// An empty batch of rows `width` cells wide, with room for `rows` rows.
    pub fn with_capacity(width: usize, rows: usize) -> Self {
        Self {
            cells: Vec::with_capacity(width * rows),
            width,
            rows: 0,
            source_bytes: 0,
        }
    }

    /// Appends one row.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = Cell>) {
        self.rows += 1;
        for cell in row {
            self.source_bytes += cell.size() as u64;
            self.cells.push(cell);
        }
    }

    /// The rows, each a slice of `width` cells (none when the rows have no cells).
    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut [Cell]> {
        let width = self.width;
        self.cells
            .chunks_exact_mut(width.max(1))
            .filter(move |_| width > 0)
    }
}

impl Batch for Cells {
    fn rows(&self) -> u64 {
        self.rows
    }

    fn source_bytes(&self) -> u64 {
        self.source_bytes
    }
}
