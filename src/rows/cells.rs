//! Typed rows, as MySQL and SQLite hand them over: a batch keeps its text and byte
//! values in a few buffers, so reading a row allocates nothing and a batch is freed in a
//! few pieces, wherever it ends up (a reader allocates it, a writer on another thread
//! frees it). Text is kept in `String`s, so handing it back never checks its UTF-8 again,
//! and the maskers' stand-ins go to a buffer of their own, so they never move the values
//! that were read.

use std::borrow::Cow;
use std::ops::Range;

/// One value as an engine with typed rows reads it and binds it back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Text kept as the bytes the engine stored, not checked to be UTF-8 (SQLite hands
    /// over such bytes, and binds them back unchanged), written back as text.
    RawText(&'a [u8]),
    /// Bytes: binary values.
    Bytes(&'a [u8]),
}

impl<'a> Cell<'a> {
    /// The value as a masker reads it (`None` for NULL).
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Cell::Null => None,
            Cell::Integer(n) => Some(n.to_string().into()),
            Cell::Real(x) => Some(x.to_string().into()),
            Cell::Text(t) => Some(t.into()),
            Cell::RawText(b) | Cell::Bytes(b) => Some(String::from_utf8_lossy(b)),
        }
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

/// A cell as a batch stores it: text and bytes as a range of one of the batch's buffers.
#[derive(Debug, Clone)]
enum Slot {
    Null,
    Integer(i64),
    Real(f64),
    /// Text as read, in `Cells::text`.
    Text(Range<usize>),
    /// A stand-in, in `Cells::masked`.
    Masked(Range<usize>),
    RawText(Range<usize>),
    Bytes(Range<usize>),
}

/// Rows of typed cells, `width` cells a row, row after row.
#[derive(Debug, Clone, Default)]
pub struct Cells {
    /// Every text value read, one after another.
    text: String,
    /// Every byte value (and text kept as bytes) read, one after another.
    bytes: Vec<u8>,
    /// Every stand-in written over a cell, one after another.
    masked: String,
    /// Every cell of every row, row after row.
    slots: Vec<Slot>,
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
            text: String::new(),
            bytes: Vec::new(),
            masked: String::new(),
            slots: Vec::with_capacity(width * rows),
            width,
            rows: 0,
            source_bytes: 0,
        }
    }

    /// An empty batch like this one, with room for as many rows and bytes: a reader's
    /// batches are alike, so the next one grows its buffers once, not value by value.
    pub fn empty_like(&self) -> Self {
        Self {
            text: String::with_capacity(self.text.len()),
            bytes: Vec::with_capacity(self.bytes.len()),
            masked: String::with_capacity(self.masked.len()),
            slots: Vec::with_capacity(self.slots.len()),
            width: self.width,
            rows: 0,
            source_bytes: 0,
        }
    }

    /// Appends one row.
    pub fn push_row<'a>(&mut self, row: impl IntoIterator<Item = Cell<'a>>) {
        let Ok(()) = self.try_push_row(row.into_iter().map(Ok::<_, std::convert::Infallible>));
    }

    /// Appends one row whose cells are read one by one and may fail; the batch is not
    /// used after an error.
    pub fn try_push_row<'a, E>(
        &mut self,
        row: impl IntoIterator<Item = Result<Cell<'a>, E>>,
    ) -> Result<(), E> {
        self.rows += 1;
        for cell in row {
            let cell = cell?;
            self.source_bytes += cell.size() as u64;
            let slot = self.store(cell);
            self.slots.push(slot);
        }
        Ok(())
    }

    /// Every cell, row after row.
    pub fn cells(&self) -> impl ExactSizeIterator<Item = Cell<'_>> {
        self.slots.iter().map(|slot| self.cell_of(slot))
    }

    /// The cell at `index` (row times width plus column).
    pub fn get(&self, index: usize) -> Cell<'_> {
        self.cell_of(&self.slots[index])
    }

    /// Replaces the cell at `index` by text (or NULL): a masker's output.
    pub fn set_text(&mut self, index: usize, text: Option<&str>) {
        self.rewrite(index, |_, out| {
            text.map(|text| out.push_str(text)).is_some()
        });
    }

    /// Replaces the cell at `index` by the text `write` appends to `out` given the cell,
    /// or by NULL where `write` returns false: a masker writes its stand-in straight
    /// into the batch, without a string of its own.
    pub fn rewrite(&mut self, index: usize, write: impl FnOnce(Cell<'_>, &mut String) -> bool) {
        let start = self.masked.len();
        let written = match &self.slots[index] {
            // Rewritten twice: the first stand-in is read before the buffer grows.
            Slot::Masked(range) => {
                let first = self.masked[range.clone()].to_owned();
                write(Cell::Text(&first), &mut self.masked)
            }
            // Any other slot reads the buffers of values read, never `masked`.
            slot => {
                let cell = cell_in(slot, &self.text, &self.bytes, "");
                write(cell, &mut self.masked)
            }
        };
        self.slots[index] = if written {
            Slot::Masked(start..self.masked.len())
        } else {
            self.masked.truncate(start);
            Slot::Null
        };
    }

    fn store(&mut self, cell: Cell<'_>) -> Slot {
        let span = |buffer: &mut Vec<u8>, bytes: &[u8]| {
            let start = buffer.len();
            buffer.extend_from_slice(bytes);
            start..buffer.len()
        };
        match cell {
            Cell::Null => Slot::Null,
            Cell::Integer(n) => Slot::Integer(n),
            Cell::Real(x) => Slot::Real(x),
            Cell::Text(t) => {
                let start = self.text.len();
                self.text.push_str(t);
                Slot::Text(start..self.text.len())
            }
            Cell::RawText(b) => Slot::RawText(span(&mut self.bytes, b)),
            Cell::Bytes(b) => Slot::Bytes(span(&mut self.bytes, b)),
        }
    }

    fn cell_of(&self, slot: &Slot) -> Cell<'_> {
        cell_in(slot, &self.text, &self.bytes, &self.masked)
    }
}

/// The cell a slot stands for, given the batch's buffers.
fn cell_in<'a>(slot: &Slot, text: &'a str, bytes: &'a [u8], masked: &'a str) -> Cell<'a> {
    match slot {
        Slot::Null => Cell::Null,
        Slot::Integer(n) => Cell::Integer(*n),
        Slot::Real(x) => Cell::Real(*x),
        Slot::Text(range) => Cell::Text(&text[range.clone()]),
        Slot::Masked(range) => Cell::Text(&masked[range.clone()]),
        Slot::RawText(range) => Cell::RawText(&bytes[range.clone()]),
        Slot::Bytes(range) => Cell::Bytes(&bytes[range.clone()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_their_values_and_kinds_through_a_replacement() {
        let mut batch = Cells::with_capacity(3, 2);
        batch.push_row([Cell::Integer(7), Cell::Text("ada"), Cell::Bytes(&[0, 1])]);
        batch.push_row([Cell::Null, Cell::RawText(&[0xff]), Cell::Real(1.5)]);
        batch.set_text(1, Some("grace hopper"));
        batch.set_text(4, None);
        let cells: Vec<Cell<'_>> = batch.cells().collect();
        assert_eq!(
            cells,
            [
                Cell::Integer(7),
                Cell::Text("grace hopper"),
                Cell::Bytes(&[0, 1]),
                Cell::Null,
                Cell::Null,
                Cell::Real(1.5),
            ]
        );
        assert_eq!((batch.rows, batch.source_bytes), (2, 8 + 3 + 2 + 1 + 8));
    }

    #[test]
    fn a_rewrite_reads_the_cell_and_writes_its_stand_in_beside_the_values_read() {
        let mut batch = Cells::with_capacity(2, 2);
        batch.push_row([Cell::Text("ada"), Cell::RawText("zoë".as_bytes())]);
        batch.push_row([Cell::Integer(42), Cell::Null]);
        let upper = |cell: Cell<'_>, out: &mut String| {
            cell.text()
                .map(|t| out.push_str(&t.to_uppercase()))
                .is_some()
        };
        for i in 0..4 {
            batch.rewrite(i, upper);
        }
        // A stand-in rewritten again reads the first stand-in.
        batch.rewrite(0, |cell, out| {
            cell.text()
                .map(|t| out.push_str(&format!("{t}!")))
                .is_some()
        });
        batch.rewrite(2, |_, out| {
            out.push_str("dropped");
            false
        });
        let cells: Vec<Cell<'_>> = batch.cells().collect();
        assert_eq!(
            cells,
            [
                Cell::Text("ADA!"),
                Cell::Text("ZOË"),
                Cell::Null,
                Cell::Null
            ]
        );
        // The values read are untouched, and a NULL stand-in leaves nothing behind.
        assert_eq!(batch.masked, "ADAZOË42ADA!");
    }
}
