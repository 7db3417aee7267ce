//! A small SQL lexer (no parser): it splits a pg_dump script into the tokens that matter
//! for finding statement ends and schema qualifiers, with strings, comments, dollar
//! quotes and quoted identifiers kept opaque.

use super::error::RewriteError;

pub(super) fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

pub(super) fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StrKind {
    /// `'...'`
    Plain,
    /// `E'...'`
    Escape,
    /// `B'...'`, `X'...'`, `N'...'`, `U&'...'`: never rewritten.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Space,
    LineComment,
    BlockComment,
    /// A psql meta-command line (`\restrict ...`), without its newline.
    Meta,
    Str {
        kind: StrKind,
        /// Byte range of the content between the quotes.
        content: std::ops::Range<usize>,
    },
    Dollar,
    /// Bare (lower-cased) or quoted (unescaped) identifier; bare words include keywords.
    Ident {
        quoted: bool,
        value: String,
    },
    Number,
    Punct(u8),
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
    /// `standard_conforming_strings`: when off, `'...'` strings take backslash escapes too.
    pub(super) std_strings: bool,
}

impl Lexer<'_> {
    pub(super) fn line_of(&self, at: usize) -> usize {
        self.b[..at].iter().filter(|&&c| c == b'\n').count() + 1
    }

    pub(super) fn unterminated(&self, what: &'static str, start: usize) -> RewriteError {
        RewriteError::Unterminated {
            what,
            line: self.line_of(start),
        }
    }

    pub(super) fn next(&mut self) -> Result<Option<Token>, RewriteError> {
        let b = self.b;
        let start = self.pos;
        let Some(&c) = b.get(start) else {
            return Ok(None);
        };
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b' => {
                self.pos = start
                    + b[start..]
                        .iter()
                        .position(|c| !c.is_ascii_whitespace() && *c != b'\x0b')
                        .unwrap_or(b.len() - start);
                Kind::Space
            }
            b'-' if b.get(start + 1) == Some(&b'-') => {
                self.pos = self.line_end(start);
                Kind::LineComment
            }
            b'\\' if start == 0 || b[start - 1] == b'\n' => {
                self.pos = self.line_end(start);
                Kind::Meta
            }
            b'/' if b.get(start + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                let mut i = start;
                loop {
                    if i + 1 >= b.len() {
                        return Err(self.unterminated("/* comment */", start));
                    }
                    if b[i] == b'/' && b[i + 1] == b'*' {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b[i + 1] == b'/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                self.pos = i;
                Kind::BlockComment
            }
            b'\'' => self.string(start, start, StrKind::Plain)?,
            b'"' => self.quoted_ident(start, start)?,
            b'$' => match self.dollar_tag(start) {
                Some(tag_end) => {
                    let tag = &b[start..tag_end];
                    let Some(close) = find(&b[tag_end..], tag) else {
                        return Err(self.unterminated("dollar-quoted string", start));
                    };
                    self.pos = tag_end + close + tag.len();
                    Kind::Dollar
                }
                None => {
                    // `$1` parameter, or a stray `$`.
                    self.pos = start + 1;
                    while self.pos < b.len() && b[self.pos].is_ascii_digit() {
                        self.pos += 1;
                    }
                    Kind::Punct(b'$')
                }
            },
            c if is_ident_start(c) => {
                let mut i = start;
                while i < b.len() && is_ident_cont(b[i]) {
                    i += 1;
                }
                let word = &b[start..i];
                let next = b.get(i).copied();
                let next2 = b.get(i + 1).copied();
                match (word, next) {
                    (b"e" | b"E", Some(b'\'')) => self.string(start, i, StrKind::Escape)?,
                    (b"b" | b"B" | b"x" | b"X" | b"n" | b"N", Some(b'\'')) => {
                        self.string(start, i, StrKind::Other)?
                    }
                    (b"u" | b"U", Some(b'&')) if next2 == Some(b'\'') => {
                        self.string(start, i + 1, StrKind::Other)?
                    }
                    (b"u" | b"U", Some(b'&')) if next2 == Some(b'"') => {
                        // U&"..." identifier: opaque, never matched against schema names.
                        match self.quoted_ident(start, i + 1)? {
                            Kind::Ident { .. } => Kind::Ident {
                                quoted: true,
                                value: String::new(),
                            },
                            k => k,
                        }
                    }
                    _ => {
                        self.pos = i;
                        Kind::Ident {
                            quoted: false,
                            value: self.src[start..i].to_ascii_lowercase(),
                        }
                    }
                }
            }
            c if c.is_ascii_digit() => {
                let mut i = start;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
                {
                    i += 1;
                }
                self.pos = i;
                Kind::Number
            }
            c => {
                // Any other byte (operators, punctuation; non-ASCII bytes are identifier
                // characters and never get here).
                self.pos = start + 1;
                Kind::Punct(c)
            }
        };
        Ok(Some(Token {
            kind,
            start,
            end: self.pos,
        }))
    }

    pub(super) fn line_end(&self, from: usize) -> usize {
        self.b[from..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.b.len(), |p| from + p)
    }

    /// A string literal whose opening quote is at `quote`; the token starts at `start`
    /// (before any `E`/`B`/`X`/`N`/`U&` prefix).
    pub(super) fn string(
        &mut self,
        start: usize,
        quote: usize,
        kind: StrKind,
    ) -> Result<Kind, RewriteError> {
        let b = self.b;
        let backslash = kind == StrKind::Escape || (kind == StrKind::Plain && !self.std_strings);
        let mut i = quote + 1;
        loop {
            match b.get(i) {
                None => return Err(self.unterminated("string literal", start)),
                Some(b'\\') if backslash => i += 2,
                Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(Kind::Str {
            kind,
            content: quote + 1..i,
        })
    }

    pub(super) fn quoted_ident(
        &mut self,
        start: usize,
        quote: usize,
    ) -> Result<Kind, RewriteError> {
        let b = self.b;
        let mut i = quote + 1;
        loop {
            match b.get(i) {
                None => return Err(self.unterminated("quoted identifier", start)),
                Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(Kind::Ident {
            quoted: true,
            value: self.src[quote + 1..i].replace("\"\"", "\""),
        })
    }

    /// If a dollar-quote tag (`$$` or `$tag$`) starts at `start`, the index just past it.
    pub(super) fn dollar_tag(&self, start: usize) -> Option<usize> {
        let b = self.b;
        let mut i = start + 1;
        match b.get(i) {
            Some(b'$') => return Some(i + 1),
            Some(&c) if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {}
            _ => return None,
        }
        while let Some(&c) = b.get(i) {
            if c == b'$' {
                return Some(i + 1);
            }
            if !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80) {
                return None;
            }
            i += 1;
        }
        None
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
