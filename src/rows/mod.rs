//! The shapes rows take between a source and a target: COPY rows (text or binary), as
//! PostgreSQL streams them, and typed cells, as MySQL and SQLite hand them over. Engines read and write them;
//! the masking stage changes them; nothing here knows of either.

mod cells;
pub mod copy_binary;
pub mod copy_text;

use std::sync::Arc;

use bytes::Bytes;

pub use cells::{Cell, Cells};
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

impl Batch for Cells {
    fn rows(&self) -> u64 {
        self.rows
    }

    fn source_bytes(&self) -> u64 {
        self.source_bytes
    }
}
