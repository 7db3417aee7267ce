//! PostgreSQL's COPY text format: tab-separated fields, `\N` for NULL, backslash escapes.
//!
//! Kept columns never go through here: their bytes are forwarded as they came. Only a
//! masked field is decoded to its text, masked, and encoded again.

/// How COPY text writes NULL.
pub const NULL: &[u8] = b"\\N";
/// The field separator.
pub const DELIMITER: u8 = b'\t';
/// The row terminator.
pub const NEWLINE: u8 = b'\n';

/// Appends the text a COPY field stands for to `out` (undoing the backslash escapes).
pub fn decode(field: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < field.len() {
        let Some(offset) = memchr::memchr(b'\\', &field[i..]) else {
            out.extend_from_slice(&field[i..]);
            return;
        };
        out.extend_from_slice(&field[i..i + offset]);
        i += offset + 1;
        let Some(&c) = field.get(i) else {
            return;
        };
        i += 1;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'x' if field.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u32;
                for _ in 0..2 {
                    match field.get(i).and_then(|d| char::from(*d).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            other => out.push(other),
        }
    }
}

/// Appends `text` to `out` as one COPY text field.
pub fn encode(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            8 => b"\\b",
            12 => b"\\f",
            11 => b"\\v",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        let mut encoded = Vec::new();
        encode(text, &mut encoded);
        assert!(!encoded.contains(&b'\t') && !encoded.contains(&b'\n'));
        let mut decoded = Vec::new();
        decode(&encoded, &mut decoded);
        String::from_utf8(decoded).unwrap_or_default()
    }

    #[test]
    fn escapes_round_trip() {
        for text in [
            "plain",
            "tab\there",
            "new\nline\r\n",
            "back\\slash",
            "\\N",
            "",
            "Zoë ✓",
            "\u{8}\u{b}\u{c}",
        ] {
            assert_eq!(roundtrip(text), text);
        }
    }

    #[test]
    fn decodes_octal_and_hex_escapes() {
        let mut out = Vec::new();
        decode(b"a\\101\\x42\\q\\", &mut out);
        assert_eq!(out, b"aABq");
    }
}
