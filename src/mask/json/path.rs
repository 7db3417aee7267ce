//! The paths of a `json` rule: `$` then `.key`, `["key"]`, `[n]` and `[*]` steps.

/// One step of a path.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Segment {
    /// `.key` or `["key"]`.
    Key(String),
    /// `[n]`.
    Index(usize),
    /// `[*]`.
    Any,
}

/// Parses `$`, `.key`, `["key"]`, `[n]` and `[*]` steps.
pub(super) fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(mut rest) = path.strip_prefix('$') else {
        return Err("a path starts with `$`".to_owned());
    };
    let mut segments = Vec::new();
    while let Some(c) = rest.chars().next() {
        if c == '.' {
            let end = rest[1..].find(['.', '[']).map_or(rest.len(), |i| i + 1);
            let key = &rest[1..end];
            if key.is_empty() || key.contains([']', '"', ' ', '*']) {
                return Err(format!(
                    "`.` must be followed by a key (use `[\"...\"]` for other keys), not {key:?}"
                ));
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = &rest[end..];
        } else if let Some(inner) = rest.strip_prefix("[\"") {
            let mut key = String::new();
            let mut chars = inner.char_indices();
            let close = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\'))) => key.push(c),
                        _ => return Err("only `\\\"` and `\\\\` are escapes in a key".to_owned()),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => key.push(c),
                    None => return Err("a quoted key is not closed with `\"]`".to_owned()),
                }
            };
            rest = inner[close + 1..]
                .strip_prefix(']')
                .ok_or_else(|| "a quoted key is not closed with `\"]`".to_owned())?;
            segments.push(Segment::Key(key));
        } else if let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else {
                return Err("`[` is not closed with `]`".to_owned());
            };
            let index = &inner[..end];
            segments.push(match index {
                "*" => Segment::Any,
                n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    Segment::Index(n.parse().map_err(|_| format!("index {n} is too large"))?)
                }
                other => {
                    return Err(format!(
                        "`[...]` holds `*`, an index or a quoted key, not {other:?}"
                    ));
                }
            });
            rest = &inner[end + 1..];
        } else {
            return Err(format!("expected `.` or `[` at {rest:?}"));
        }
    }
    Ok(segments)
}
