//! Typed rows, as MySQL and SQLite hand them over: a batch keeps every text and byte
//! value in one buffer, so reading a row allocates nothing and a batch is freed in two
//! pieces, wherever it ends up (a reader allocates it, a writer on another thread frees
//! it).

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
    /// Text that is not valid UTF-8, kept as its bytes and written back as text.
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

/// A cell as a batch stores it: text and bytes as a range of the batch's buffer.
#[derive(Debug, Clone)]
enum Slot {
    Null,
    Integer(i64),
    Real(f64),
    Text(Range<usize>),
    RawText(Range<usize>),
    Bytes(Range<usize>),
}

/// Rows of typed cells, `width` cells a row, row after row.
#[derive(Debug, Clone, Default)]
pub struct Cells {
    /// Every text and byte value, one after another.
    buffer: Vec<u8>,
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
            buffer: Vec::new(),
            slots: Vec::with_capacity(width * rows),
            width,
            rows: 0,
            source_bytes: 0,
        }
    }

    /// An empty batch like this one, with room for as many rows and bytes: a reader's
    /// batches are alike, so the next one grows its buffer once, not value by value.
    pub fn empty_like(&self) -> Self {
        Self {
            buffer: Vec::with_capacity(self.buffer.len()),
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
        self.slots[index] = match text {
            Some(text) => self.store(Cell::Text(text)),
            None => Slot::Null,
        };
    }

    fn store(&mut self, cell: Cell<'_>) -> Slot {
        let mut span = |bytes: &[u8]| {
            let start = self.buffer.len();
            self.buffer.extend_from_slice(bytes);
            start..self.buffer.len()
        };
        match cell {
            Cell::Null => Slot::Null,
            Cell::Integer(n) => Slot::Integer(n),
            Cell::Real(x) => Slot::Real(x),
            Cell::Text(t) => Slot::Text(span(t.as_bytes())),
            Cell::RawText(b) => Slot::RawText(span(b)),
            Cell::Bytes(b) => Slot::Bytes(span(b)),
        }
    }

    fn cell_of(&self, slot: &Slot) -> Cell<'_> {
        match slot {
            Slot::Null => Cell::Null,
            Slot::Integer(n) => Cell::Integer(*n),
            Slot::Real(x) => Cell::Real(*x),
            // Only `store` makes a text slot, from a `&str`: always UTF-8.
            Slot::Text(range) => {
                Cell::Text(std::str::from_utf8(&self.buffer[range.clone()]).unwrap_or_default())
            }
            Slot::RawText(range) => Cell::RawText(&self.buffer[range.clone()]),
            Slot::Bytes(range) => Cell::Bytes(&self.buffer[range.clone()]),
        }
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
}
