//! PostgreSQL's binary COPY format: per row a 16-bit field count, then per field a 32-bit
//! length (-1 for NULL) and the value in the type's binary form. The server neither
//! prints nor parses kept values (dates, numbers, timestamps), which is most of what a
//! COPY costs it, and lethe finds fields by their lengths instead of scanning for
//! separators and escapes.
//!
//! Kept fields are forwarded as bytes. A masked field is turned into text and back by its
//! [`Codec`]; only types whose binary form lethe can read and write exactly have one that
//! does, and a table with any other masked column is copied as text.

/// The header of a binary COPY stream: signature, flags, header extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The 11-byte signature that starts the header.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// The field count that ends a binary COPY stream.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// A column's binary form, as far as lethe needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Text in the client encoding, as is: text, varchar, char(n), name, json.
    Text,
    /// jsonb: a version byte (1), then the document's text.
    Jsonb,
    /// date: days since 2000-01-01 as a signed 32-bit integer.
    Date,
    /// Any other type with a stable binary form: forwarded as it came, never read as
    /// text (a table that masks such a column is copied as text).
    Opaque,
}

/// A masked value the binary form of its column cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes are not text in UTF-8.
    NotUtf8,
    /// The value is not what its type's binary form should be.
    Malformed,
}

/// Days from 0001-01-01 (chrono's day 1) to 2000-01-01, PostgreSQL's date epoch.
const POSTGRES_EPOCH_DAYS: i32 = 730_120;

impl Codec {
    /// The type's name, for errors.
    pub fn type_name(self) -> &'static str {
        match self {
            Codec::Text => "text",
            Codec::Jsonb => "jsonb",
            Codec::Date => "date",
            Codec::Opaque => "value of its type",
        }
    }

    /// Appends the text the value stands for, as PostgreSQL prints it with
    /// `DateStyle = ISO` (the text the COPY text format would have carried).
    pub fn decode(self, value: &[u8], out: &mut String) -> Result<(), CodecError> {
        match self {
            Codec::Text => {
                out.push_str(std::str::from_utf8(value).map_err(|_| CodecError::NotUtf8)?);
            }
            Codec::Opaque => return Err(CodecError::Malformed),
            Codec::Jsonb => {
                let Some((1, text)) = value.split_first() else {
                    return Err(CodecError::Malformed);
                };
                out.push_str(std::str::from_utf8(text).map_err(|_| CodecError::NotUtf8)?);
            }
            Codec::Date => {
                let days = i32::from_be_bytes(value.try_into().map_err(|_| CodecError::Malformed)?);
                push_date(days, out)?;
            }
        }
        Ok(())
    }

    /// Appends `text` in the binary form, length first.
    pub fn encode(self, text: &str, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Codec::Text => push_field(text.as_bytes(), out),
            Codec::Opaque => return Err(CodecError::Malformed),
            Codec::Jsonb => {
                push_len(text.len() + 1, out);
                out.push(1);
                out.extend_from_slice(text.as_bytes());
            }
            Codec::Date => push_field(&parse_date(text)?.to_be_bytes(), out),
        }
        Ok(())
    }
}

/// Appends one field, length first.
pub fn push_field(value: &[u8], out: &mut Vec<u8>) {
    push_len(value.len(), out);
    out.extend_from_slice(value);
}

/// Appends a NULL field.
pub fn push_null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

fn push_len(len: usize, out: &mut Vec<u8>) {
    // A field longer than 2 GiB cannot come out of PostgreSQL (1 GB per value).
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
}

/// `date_out` in ISO style: `2024-02-29`, `0044-03-15 BC`, `infinity`, `-infinity`.
fn push_date(days: i32, out: &mut String) -> Result<(), CodecError> {
    use chrono::Datelike;
    use std::fmt::Write;
    match days {
        i32::MAX => out.push_str("infinity"),
        i32::MIN => out.push_str("-infinity"),
        _ => {
            let date = days
                .checked_add(POSTGRES_EPOCH_DAYS)
                .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                .ok_or(CodecError::Malformed)?;
            let (year, bc) = if date.year() <= 0 {
                (1 - date.year(), " BC")
            } else {
                (date.year(), "")
            };
            let _ = write!(out, "{year:04}-{:02}-{:02}{bc}", date.month(), date.day());
        }
    }
    Ok(())
}

/// The inverse of [`push_date`]: what date maskers write (`YYYY-MM-DD`, with ` BC` for
/// years before 1) and the two infinities.
fn parse_date(text: &str) -> Result<i32, CodecError> {
    match text {
        "infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let (ymd, bc) = match text.strip_suffix(" BC") {
        Some(ymd) => (ymd, true),
        None => (text, false),
    };
    let mut parts = ymd.splitn(3, '-');
    let mut number = |min_len: usize| -> Result<i32, CodecError> {
        let part = parts.next().ok_or(CodecError::Malformed)?;
        if part.len() < min_len || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodecError::Malformed);
        }
        part.parse().map_err(|_| CodecError::Malformed)
    };
    let (year, month, day) = (number(4)?, number(2)?, number(2)?);
    let year = if bc { 1 - year } else { year };
    let date = u32::try_from(month)
        .ok()
        .zip(u32::try_from(day).ok())
        .and_then(|(m, d)| chrono::NaiveDate::from_ymd_opt(year, m, d))
        .ok_or(CodecError::Malformed)?;
    use chrono::Datelike;
    Ok(date.num_days_from_ce() - POSTGRES_EPOCH_DAYS)
}

/// The length of the header at the start of `stream`, once it holds all of it; `None`
/// while it may still be incomplete, `Err` when it is not a binary COPY header.
pub fn header_len(stream: &[u8]) -> Result<Option<usize>, CodecError> {
    let fixed = SIGNATURE.len() + 8;
    if stream.len() < fixed {
        return if SIGNATURE.starts_with(&stream[..stream.len().min(SIGNATURE.len())]) {
            Ok(None)
        } else {
            Err(CodecError::Malformed)
        };
    }
    if !stream.starts_with(SIGNATURE) {
        return Err(CodecError::Malformed);
    }
    let mut extension = [0u8; 4];
    extension.copy_from_slice(&stream[SIGNATURE.len() + 4..fixed]);
    let extension =
        usize::try_from(u32::from_be_bytes(extension)).map_err(|_| CodecError::Malformed)?;
    let len = fixed + extension;
    Ok((stream.len() >= len).then_some(len))
}

/// Reads rows of binary COPY data: each call to [`Rows::next_row`] gives a row's field
/// count, then [`Rows::next_field`] gives its fields one by one.
pub struct Rows<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Rows<'a> {
    /// Rows of `data`, which holds whole rows only (no header, no trailer).
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next row's field count; `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<usize>, CodecError> {
        if self.pos == self.data.len() {
            return Ok(None);
        }
        let count = self.take(2)?;
        let count = i16::from_be_bytes([count[0], count[1]]);
        usize::try_from(count)
            .map(Some)
            .map_err(|_| CodecError::Malformed)
    }

    /// The next field: `None` for NULL.
    pub fn next_field(&mut self) -> Result<Option<&'a [u8]>, CodecError> {
        let len = self.take(4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| CodecError::Malformed)?;
        self.take(len).map(Some)
    }

    /// The bytes from `start` to `end`, as they came.
    pub fn between(&self, start: usize, end: usize) -> &'a [u8] {
        &self.data[start..end]
    }

    /// Where the reading is now.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).ok_or(CodecError::Malformed)?;
        let bytes = self.data.get(self.pos..end).ok_or(CodecError::Malformed)?;
        self.pos = end;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(codec: Codec, text: &str) -> String {
        let mut encoded = Vec::new();
        codec.encode(text, &mut encoded).unwrap();
        let mut rows = Rows::new(&encoded);
        let value = rows.next_field().unwrap().unwrap();
        let mut decoded = String::new();
        codec.decode(value, &mut decoded).unwrap();
        decoded
    }

    #[test]
    fn dates_print_as_postgres_prints_them_in_iso_style() {
        for (days, text) in [
            (0, "2000-01-01"),
            (-1, "1999-12-31"),
            (8825, "2024-02-29"),
            (-730_119, "0001-01-01"),
            (-730_120, "0001-12-31 BC"),
            (-746_117, "0044-03-15 BC"),
            (2_921_940, "10000-01-01"),
            (i32::MAX, "infinity"),
            (i32::MIN, "-infinity"),
        ] {
            let mut out = String::new();
            Codec::Date
                .decode(&i32::to_be_bytes(days), &mut out)
                .unwrap();
            assert_eq!(out, text, "{days}");
            assert_eq!(parse_date(text), Ok(days), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_date_is_refused() {
        for text in [
            "",
            "2024-2-29",
            "2023-02-29",
            "24-01-01",
            "2024-01-01 00:00",
            "1 BC",
            "today",
        ] {
            assert_eq!(parse_date(text), Err(CodecError::Malformed), "{text}");
        }
    }

    #[test]
    fn text_and_jsonb_round_trip() {
        for text in ["", "tab\there\nnew line \\ back", "Zoë ✓"] {
            assert_eq!(round_trip(Codec::Text, text), text);
            assert_eq!(round_trip(Codec::Jsonb, text), text);
        }
        let mut out = String::new();
        assert_eq!(
            Codec::Jsonb.decode(b"\x02{}", &mut out),
            Err(CodecError::Malformed)
        );
        assert_eq!(
            Codec::Text.decode(b"\xff", &mut out),
            Err(CodecError::NotUtf8)
        );
    }

    #[test]
    fn the_header_is_found_whole_or_waited_for() {
        assert_eq!(header_len(HEADER), Ok(Some(19)));
        assert_eq!(header_len(&HEADER[..7]), Ok(None));
        let mut extended = HEADER[..15].to_vec();
        extended.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(header_len(&extended), Ok(None));
        extended.extend_from_slice(b"abc");
        assert_eq!(header_len(&extended), Ok(Some(22)));
        assert_eq!(header_len(b"COPY"), Err(CodecError::Malformed));
    }

    #[test]
    fn rows_are_read_field_by_field() {
        let mut data = 2i16.to_be_bytes().to_vec();
        push_field(b"ab", &mut data);
        push_null(&mut data);
        let mut rows = Rows::new(&data);
        assert_eq!(rows.next_row(), Ok(Some(2)));
        assert_eq!(rows.next_field(), Ok(Some(&b"ab"[..])));
        assert_eq!(rows.next_field(), Ok(None));
        assert_eq!(rows.next_row(), Ok(None));
        let mut cut = Rows::new(&data[..5]);
        assert_eq!(cut.next_row(), Ok(Some(2)));
        assert_eq!(cut.next_field(), Err(CodecError::Malformed));
    }
}
