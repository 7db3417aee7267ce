//! Turns a plain-format `pg_dump --schema-only` script into statements that build the
//! copied schemas inside their *shadow* schemas (`public` -> `lethe_shadow_public`).
//!
//! A small SQL lexer (no parser) splits the script the way psql would: `--` and nested
//! `/* */` comments, `'...'` strings (with `''`), `E'...'` strings (with backslash escapes),
//! `$tag$...$tag$` dollar quotes and `"quoted"` identifiers are opaque, and a `;` outside
//! all of them (and outside parentheses and a `BEGIN ATOMIC ... END` routine body) ends a
//! statement.
//!
//! What is rewritten, and only outside strings, comments and dollar quotes:
//! - a schema qualifier: identifier `public` or `"public"` directly followed by `.` (and not
//!   itself preceded by `.`) becomes the mapped name, quoted when needed;
//! - a string literal directly cast to a `reg*` type (`'public.seq'::regclass`), whose
//!   schema-qualified content gets the same treatment.
//!
//! Dollar-quoted routine bodies are left alone on purpose: they are late-bound by name, and
//! after the swap the shadow is called `public` again. `BEGIN ATOMIC` bodies, views, defaults,
//! constraints and everything else are bound by OID at creation, so they are rewritten.
//!
//! Known limitation: this is a lexer, not a parser, so in a query a *table alias or table
//! name* equal to a mapped schema name (`SELECT sales.id FROM public.sales` with schema `sales`
//! mapped) is rewritten as if it were a schema. The statement then fails loudly when it is
//! executed ("missing FROM-clause entry"); nothing is silently bound to the wrong object.

use std::collections::BTreeMap;

/// One statement of a pg_dump script, with the object type from the
/// `-- Name: ...; Type: X; Schema: ...` header above it ("" if there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpStatement {
    pub object_type: String,
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The script creates an extension inside a schema that is being copied. Its objects
    /// can't be created in the shadow schema (an extension lives in exactly one schema).
    #[error(
        "extension {name:?} is installed in schema {schema:?}, which is copied into a shadow \
         schema; an extension cannot be created there: move it to a schema that is not copied \
         (ALTER EXTENSION ... SET SCHEMA) or leave {schema:?} out of the copy"
    )]
    Extension { name: String, schema: String },
    /// The script ends inside a string, quoted identifier, comment or dollar quote.
    #[error("pg_dump script ends inside an unterminated {what} that starts on line {line}")]
    Unterminated { what: &'static str, line: usize },
}

/// The session settings pg_dump's own `SET` lines establish that matter when the rewritten
/// statements are executed (the `SET` lines themselves are dropped by [`rewrite_dump`]):
/// names are fully qualified for an empty `search_path`, and routine bodies may mention
/// objects that exist only after the swap (or later in the script).
pub const SESSION_SETUP: &[&str] = &[
    "SELECT pg_catalog.set_config('search_path', '', false)",
    "SET check_function_bodies = false",
    "SET client_min_messages = warning",
    "SET standard_conforming_strings = on",
    "SET xmloption = content",
];

/// Splits `script` (plain pg_dump output) into statements and rewrites every qualifier of a
/// schema in `schema_map` (source schema name -> shadow schema name, both unquoted) to its
/// shadow. Drops psql meta-commands (`\restrict`, ...), `SET` and `set_config` statements,
/// `CREATE/ALTER/COMMENT ON SCHEMA`, and `CREATE/COMMENT ON EXTENSION` (an extension created
/// in a mapped schema is an error instead).
pub fn rewrite_dump(
    script: &str,
    schema_map: &BTreeMap<String, String>,
) -> Result<Vec<DumpStatement>, RewriteError> {
    let mut lx = Lexer {
        src: script,
        b: script.as_bytes(),
        pos: 0,
        std_strings: true,
    };
    let mut object_type = String::new();
    let mut out = Vec::new();

    loop {
        // Between statements: whitespace, comments (headers among them), meta-commands.
        let first = loop {
            match lx.next()? {
                None => return Ok(out),
                Some(t) => match t.kind {
                    Kind::Space | Kind::BlockComment | Kind::Meta => {}
                    Kind::LineComment => {
                        if let Some(ty) = header_type(&script[t.start..t.end]) {
                            object_type = ty.to_owned();
                        }
                    }
                    _ => break t,
                },
            }
        };
        let stmt = scan_statement(&mut lx, first, schema_map)?;
        let Some(stmt) = stmt else { continue };

        match classify(&stmt.lead) {
            Class::Keep => out.push(DumpStatement {
                object_type: object_type.clone(),
                sql: stmt.text,
            }),
            Class::Drop => {}
            Class::Set => {
                if let Some(on) = standard_conforming_strings(&stmt.lead) {
                    lx.std_strings = on;
                }
            }
            Class::Extension { name, schema } => {
                if let Some(schema) = schema.filter(|s| schema_map.contains_key(s)) {
                    return Err(RewriteError::Extension { name, schema });
                }
            }
        }
    }
}

/// The type from a `-- Name: x; Type: TABLE; Schema: public; Owner: -` header line.
fn header_type(comment: &str) -> Option<&str> {
    let rest = comment
        .strip_prefix("-- Name: ")
        .or_else(|| comment.strip_prefix("-- Data for Name: "))?;
    // A name may itself contain "; Type: ": take the first candidate that looks like a type.
    let mut from = 0;
    while let Some(i) = rest[from..].find("; Type: ") {
        let ty_start = from + i + "; Type: ".len();
        if let Some(j) = rest[ty_start..].find("; Schema: ") {
            let ty = &rest[ty_start..ty_start + j];
            if !ty.is_empty() && ty.bytes().all(|c| c.is_ascii_uppercase() || c == b' ') {
                return Some(ty);
            }
        }
        from = ty_start;
    }
    None
}

/// A significant token near the start of a statement, for classification.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lead {
    /// A bare word, lower-cased.
    Word(String),
    /// A quoted identifier, unescaped.
    Quoted(String),
    /// A string literal's raw content.
    Str(String),
    Punct(u8),
    Other,
}

const LEAD_TOKENS: usize = 16;

struct Statement {
    text: String,
    lead: Vec<Lead>,
}

enum Class {
    Keep,
    Drop,
    Set,
    Extension {
        name: String,
        schema: Option<String>,
    },
}

fn word(lead: &[Lead], i: usize) -> Option<&str> {
    match lead.get(i) {
        Some(Lead::Word(w)) => Some(w),
        _ => None,
    }
}

fn name_of(lead: Option<&Lead>) -> Option<String> {
    match lead {
        Some(Lead::Word(w) | Lead::Quoted(w)) => Some(w.clone()),
        _ => None,
    }
}

fn classify(lead: &[Lead]) -> Class {
    let w = |i| word(lead, i);
    match w(0) {
        Some("set") => Class::Set,
        Some("select") => {
            // SELECT [pg_catalog.]set_config(...)
            let qualified = w(1) == Some("pg_catalog") && lead.get(2) == Some(&Lead::Punct(b'.'));
            let f = if qualified { 3 } else { 1 };
            if w(f) == Some("set_config") && lead.get(f + 1) == Some(&Lead::Punct(b'(')) {
                Class::Drop
            } else {
                Class::Keep
            }
        }
        Some("create" | "alter") if w(1) == Some("schema") => Class::Drop,
        Some("comment") if w(1) == Some("on") && matches!(w(2), Some("schema" | "extension")) => {
            Class::Drop
        }
        Some("security") if w(1) == Some("label") && is_schema_label(lead) => Class::Drop,
        Some("create") if w(1) == Some("extension") => {
            let mut i = 2;
            if w(2) == Some("if") && w(3) == Some("not") && w(4) == Some("exists") {
                i = 5;
            }
            let name = name_of(lead.get(i)).unwrap_or_default();
            let schema = lead
                .iter()
                .skip(i + 1)
                .position(|t| matches!(t, Lead::Word(s) if s == "schema"))
                .and_then(|p| name_of(lead.get(i + 1 + p + 1)));
            Class::Extension { name, schema }
        }
        _ => Class::Keep,
    }
}

/// `SECURITY LABEL [FOR provider] ON SCHEMA ...`
fn is_schema_label(lead: &[Lead]) -> bool {
    let on = lead.iter().position(|t| *t == Lead::Word("on".into()));
    on.is_some_and(|i| word(lead, i + 1) == Some("schema"))
}

/// `SET [SESSION|LOCAL] standard_conforming_strings {=|TO} value`
fn standard_conforming_strings(lead: &[Lead]) -> Option<bool> {
    let i = lead
        .iter()
        .position(|t| *t == Lead::Word("standard_conforming_strings".into()))?;
    let value = lead[i + 1..]
        .iter()
        .find(|t| !matches!(t, Lead::Punct(b'=')) && **t != Lead::Word("to".into()))?;
    let value = match value {
        Lead::Word(v) | Lead::Str(v) => v.to_ascii_lowercase(),
        _ => return None,
    };
    match value.as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Scans one statement starting at `first` (its first significant token) up to and including
/// its terminating `;` (or the end of the script). Returns `None` for an empty statement.
fn scan_statement(
    lx: &mut Lexer<'_>,
    first: Token,
    schema_map: &BTreeMap<String, String>,
) -> Result<Option<Statement>, RewriteError> {
    let start = first.start;
    let mut end = first.end;
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut lead: Vec<Lead> = Vec::new();
    let mut words: Vec<String> = Vec::new(); // leading bare words, for CREATE FUNCTION detection
    let mut paren_depth = 0usize;
    let mut begin_depth = 0usize;
    let mut prev: Option<Kind> = None; // previous significant token
    let mut prev_word: Option<String> = None; // previous significant token, if a bare word
    let mut tok = Some(first);

    while let Some(t) = tok {
        let significant = !matches!(
            t.kind,
            Kind::Space | Kind::LineComment | Kind::BlockComment | Kind::Meta
        );
        if significant {
            end = t.end;
        }
        let mut this_word = None;
        match &t.kind {
            Kind::Meta => edits.push((t.start, t.end, String::new())),
            Kind::Punct(b';') if paren_depth == 0 && begin_depth == 0 => {
                if lead.is_empty() {
                    return Ok(None);
                }
                break;
            }
            Kind::Punct(b'(') => paren_depth += 1,
            Kind::Punct(b')') => paren_depth = paren_depth.saturating_sub(1),
            Kind::Ident { quoted, value } => {
                let after_dot = prev == Some(Kind::Punct(b'.'));
                if !after_dot
                    && lx.b.get(t.end) == Some(&b'.')
                    && let Some(shadow) = schema_map.get(value.as_str())
                {
                    edits.push((t.start, t.end, quote_ident(shadow)));
                }
                if !quoted {
                    this_word = Some(value.clone());
                    if words.len() < 4 {
                        words.push(value.clone());
                    }
                    if paren_depth == 0 && is_routine(&words) {
                        match value.as_str() {
                            "atomic" if prev_word.as_deref() == Some("begin") => begin_depth += 1,
                            "case" if begin_depth >= 1 => begin_depth += 1,
                            "end" if begin_depth >= 1 => begin_depth -= 1,
                            _ => {}
                        }
                    }
                }
            }
            Kind::Str { kind, content } => {
                if let Some(lit) = rewrite_reg_literal(lx, &t, *kind, content.clone(), schema_map) {
                    edits.push((t.start, t.end, lit));
                }
            }
            _ => {}
        }
        if significant {
            if lead.len() < LEAD_TOKENS {
                lead.push(match &t.kind {
                    Kind::Ident {
                        quoted: false,
                        value,
                    } => Lead::Word(value.clone()),
                    Kind::Ident {
                        quoted: true,
                        value,
                    } => Lead::Quoted(value.clone()),
                    Kind::Str { content, .. } => Lead::Str(lx.src[content.clone()].to_owned()),
                    Kind::Punct(c) => Lead::Punct(*c),
                    _ => Lead::Other,
                });
            }
            prev = Some(t.kind.clone());
            prev_word = this_word;
        }
        tok = lx.next()?;
    }

    let mut text = String::with_capacity(end - start + 32);
    let mut at = start;
    for (s, e, replacement) in edits.into_iter().filter(|(s, _, _)| *s < end) {
        text.push_str(&lx.src[at..s]);
        text.push_str(&replacement);
        at = e;
    }
    text.push_str(&lx.src[at..end]);
    Ok(Some(Statement { text, lead }))
}

/// `CREATE [OR REPLACE] {FUNCTION|PROCEDURE}`: the statements whose `BEGIN ATOMIC ... END`
/// body may contain `;` (psql uses the same heuristic).
fn is_routine(words: &[String]) -> bool {
    let w = |i: usize| words.get(i).map(String::as_str);
    w(0) == Some("create")
        && (matches!(w(1), Some("function" | "procedure"))
            || (w(1) == Some("or")
                && w(2) == Some("replace")
                && matches!(w(3), Some("function" | "procedure"))))
}

const REG_TYPES: &[&str] = &[
    "regclass",
    "regcollation",
    "regconfig",
    "regdictionary",
    "regnamespace",
    "regoper",
    "regoperator",
    "regproc",
    "regprocedure",
    "regrole",
    "regtype",
];

/// For a string literal directly followed by `::[pg_catalog.]reg*`, the literal with its
/// mapped schema qualifiers rewritten (`'public.s'::regclass` -> `'lethe_shadow_public.s'`).
fn rewrite_reg_literal(
    lx: &Lexer<'_>,
    t: &Token,
    kind: StrKind,
    content: std::ops::Range<usize>,
    schema_map: &BTreeMap<String, String>,
) -> Option<String> {
    if !reg_cast_follows(lx.b, t.end) {
        return None;
    }
    let raw = &lx.src[content];
    let backslash_escapes = kind == StrKind::Escape || !lx.std_strings;
    if kind == StrKind::Other || (backslash_escapes && raw.contains('\\')) {
        return None;
    }
    let value = raw.replace("''", "'");
    let rewritten = rewrite_qualifiers(&value, schema_map)?;
    let prefix = &lx.src[t.start..t.start + (lx.src[t.start..].find('\'')?)];
    Some(format!("{prefix}'{}'", rewritten.replace('\'', "''")))
}

fn reg_cast_follows(b: &[u8], mut i: usize) -> bool {
    if !b[i..].starts_with(b"::") {
        return false;
    }
    i += 2;
    let read_name = |i: &mut usize| -> Option<String> {
        if b.get(*i) == Some(&b'"') {
            let end = b[*i + 1..].iter().position(|&c| c == b'"')? + *i + 1;
            let name = String::from_utf8_lossy(&b[*i + 1..end]).into_owned();
            *i = end + 1;
            Some(name)
        } else {
            let end = b[*i..]
                .iter()
                .position(|&c| !is_ident_cont(c))
                .map_or(b.len(), |p| p + *i);
            let name = String::from_utf8_lossy(&b[*i..end]).to_ascii_lowercase();
            *i = end;
            Some(name)
        }
    };
    let Some(mut name) = read_name(&mut i) else {
        return false;
    };
    if name == "pg_catalog" && b.get(i) == Some(&b'.') {
        i += 1;
        match read_name(&mut i) {
            Some(n) => name = n,
            None => return false,
        }
    }
    REG_TYPES.contains(&name.as_str()) && !b.get(i).is_some_and(|&c| is_ident_cont(c))
}

/// Rewrites the mapped schema qualifiers in the text of a `reg*` literal
/// (`public.f(public.mood)`, `"Sales"."Orders_id_seq"`); `None` if nothing changed.
fn rewrite_qualifiers(value: &str, schema_map: &BTreeMap<String, String>) -> Option<String> {
    let b = value.as_bytes();
    let mut out = String::with_capacity(value.len() + 16);
    let mut changed = false;
    let (mut i, mut copied, mut prev_dot) = (0, 0, false);
    while i < b.len() {
        let c = b[i];
        let (start, name) = if c == b'"' {
            let mut j = i + 1;
            let mut name = Vec::new();
            loop {
                match b.get(j) {
                    None => return None, // malformed: leave the literal alone
                    Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                        name.push(b'"');
                        j += 2;
                    }
                    Some(b'"') => break,
                    Some(&c) => {
                        name.push(c);
                        j += 1;
                    }
                }
            }
            let start = i;
            i = j + 1;
            (start, String::from_utf8(name).ok()?)
        } else if is_ident_start(c) {
            let start = i;
            while i < b.len() && is_ident_cont(b[i]) {
                i += 1;
            }
            (start, value[start..i].to_ascii_lowercase())
        } else {
            prev_dot = c == b'.';
            i += 1;
            continue;
        };
        if !prev_dot
            && b.get(i) == Some(&b'.')
            && let Some(shadow) = schema_map.get(&name)
        {
            out.push_str(&value[copied..start]);
            out.push_str(&quote_ident(shadow));
            copied = i;
            changed = true;
        }
        prev_dot = false;
    }
    out.push_str(&value[copied..]);
    changed.then_some(out)
}

/// PostgreSQL's `quote_ident`: bare when lower-case letters, digits and `_` (not starting
/// with a digit) and not a keyword that needs quoting; otherwise double-quoted.
fn quote_ident(name: &str) -> String {
    let b = name.as_bytes();
    let bare = !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !KEYWORDS.contains(&name);
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The keywords PostgreSQL 15's `quote_ident` quotes (every category but unreserved),
/// from `SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'`.
const KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

// ---------------------------------------------------------------------------------------
// Lexer

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrKind {
    /// `'...'`
    Plain,
    /// `E'...'`
    Escape,
    /// `B'...'`, `X'...'`, `N'...'`, `U&'...'`: never rewritten.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
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
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    /// `standard_conforming_strings`: when off, `'...'` strings take backslash escapes too.
    std_strings: bool,
}

impl Lexer<'_> {
    fn line_of(&self, at: usize) -> usize {
        self.b[..at].iter().filter(|&&c| c == b'\n').count() + 1
    }

    fn unterminated(&self, what: &'static str, start: usize) -> RewriteError {
        RewriteError::Unterminated {
            what,
            line: self.line_of(start),
        }
    }

    fn next(&mut self) -> Result<Option<Token>, RewriteError> {
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

    fn line_end(&self, from: usize) -> usize {
        self.b[from..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(self.b.len(), |p| from + p)
    }

    /// A string literal whose opening quote is at `quote`; the token starts at `start`
    /// (before any `E`/`B`/`X`/`N`/`U&` prefix).
    fn string(&mut self, start: usize, quote: usize, kind: StrKind) -> Result<Kind, RewriteError> {
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

    fn quoted_ident(&mut self, start: usize, quote: usize) -> Result<Kind, RewriteError> {
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
    fn dollar_tag(&self, start: usize) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> BTreeMap<String, String> {
        [
            ("public", "lethe_shadow_public"),
            ("Sales", "lethe_shadow_Sales"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn rw(script: &str) -> Vec<DumpStatement> {
        rewrite_dump(script, &map()).unwrap()
    }

    fn sqls(script: &str) -> Vec<String> {
        rw(script).into_iter().map(|s| s.sql).collect()
    }

    /// (object type, first line) of each statement.
    fn summary(out: &[DumpStatement]) -> Vec<(&str, &str)> {
        out.iter()
            .map(|s| (s.object_type.as_str(), s.sql.lines().next().unwrap_or("")))
            .collect()
    }

    fn statement<'a>(out: &'a [DumpStatement], starts_with: &str) -> &'a str {
        let found: Vec<_> = out
            .iter()
            .filter(|s| s.sql.starts_with(starts_with))
            .collect();
        assert_eq!(found.len(), 1, "statements starting with {starts_with:?}");
        &found[0].sql
    }

    /// Every output statement is a statement of the input with only its schema names
    /// changed: map them back and find it verbatim (the shadow names occur nowhere else).
    fn assert_byte_identical(script: &str, out: &[DumpStatement]) {
        for s in out {
            let back = s
                .sql
                .replace("\"lethe_shadow_Sales\"", "\"Sales\"")
                .replace("lethe_shadow_public", "public");
            assert!(script.contains(&back), "not in the input:\n{back}");
        }
    }

    /// Real `pg_dump --schema-only --section=pre-data -n public -n '"Sales"'` output of
    /// PostgreSQL 15.20 (plus an extension in an unmapped schema, as `--extension` adds).
    const PRE_DATA: &str = r#"
--
-- PostgreSQL database dump
--

\restrict AKMNztaTFmLCLewE9qfuGKXSwIZGjRzjbqlhOr0vE4JP8mp5SV0hrIFHnOXDcNI

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: Sales; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA "Sales";


--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;


--
-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA public IS 'standard public schema';


--
-- Name: pgcrypto; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;


--
-- Name: EXTENSION pgcrypto; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';


--
-- Name: mood; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.mood AS ENUM (
    'sad',
    'ok',
    'happy; really'
);


--
-- Name: pair; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.pair AS (
	a integer,
	b public.mood
);


--
-- Name: posint; Type: DOMAIN; Schema: public; Owner: -
--

CREATE DOMAIN public.posint AS integer
	CONSTRAINT posint_check CHECK ((VALUE > 0));


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: customers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.customers (
    id integer NOT NULL,
    email text NOT NULL,
    mood public.mood DEFAULT 'ok'::public.mood,
    country text,
    note text DEFAULT 'public.x; y'::text,
    e text DEFAULT 'it''s public.a;'::text,
    n public.posint,
    big bigint NOT NULL,
    g integer GENERATED ALWAYS AS ((id * 2)) STORED
);


--
-- Name: TABLE customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.customers IS 'customers; with public.stuff';


--
-- Name: COLUMN customers.note; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.note IS 'free text; may contain public.stuff';


--
-- Name: total(public.customers); Type: FUNCTION; Schema: Sales; Owner: -
--

CREATE FUNCTION "Sales".total(public.customers) RETURNS numeric
    LANGUAGE sql STABLE
    AS $_$ select sum(amount) from "Sales"."Orders" o where o.customer_id = $1.id; $_$;


--
-- Name: f1(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.f1(x integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$ begin /* ; */ perform 1 from public.customers; return x; end $$;


--
-- Name: f2(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.f2(x integer) RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT (x + ( SELECT (count(*))::integer AS count
            FROM public.customers));
END;


--
-- Name: grade(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.grade(n integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
 SELECT
         CASE
             WHEN (n > 10) THEN 'big; really'::text
             ELSE 'small'::text
         END AS "case";
END;


--
-- Name: touch(integer); Type: PROCEDURE; Schema: public; Owner: -
--

CREATE PROCEDURE public.touch(IN x integer)
    LANGUAGE sql
    BEGIN ATOMIC
 UPDATE public.customers SET note = 'public.touched;'::text
   WHERE (customers.id = touch.x);
END;


--
-- Name: trg(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.trg() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ begin new.note := 'public.z'; return new; end $$;


--
-- Name: Orders; Type: TABLE; Schema: Sales; Owner: -
--

CREATE TABLE "Sales"."Orders" (
    id bigint NOT NULL,
    customer_id integer,
    amount numeric,
    m public.mood DEFAULT 'sad'::public.mood,
    CONSTRAINT "Orders_amount_check" CHECK ((amount > (0)::numeric))
);


--
-- Name: Orders_id_seq; Type: SEQUENCE; Schema: Sales; Owner: -
--

CREATE SEQUENCE "Sales"."Orders_id_seq"
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: Orders_id_seq; Type: SEQUENCE OWNED BY; Schema: Sales; Owner: -
--

ALTER SEQUENCE "Sales"."Orders_id_seq" OWNED BY "Sales"."Orders".id;


--
-- Name: customers_big_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.customers ALTER COLUMN big ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.customers_big_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: customers_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.customers_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: customers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.customers_id_seq OWNED BY public.customers.id;


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id integer,
    at date NOT NULL
)
PARTITION BY RANGE (at);


--
-- Name: events_2024; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events_2024 (
    id integer,
    at date NOT NULL
);


--
-- Name: mv; Type: MATERIALIZED VIEW; Schema: public; Owner: -
--

CREATE MATERIALIZED VIEW public.mv AS
 SELECT count(*) AS count
   FROM public.customers
  WITH NO DATA;


--
-- Name: s1; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.s1
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: s1; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.s1 OWNED BY public.customers.id;


--
-- Name: v_customers; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.v_customers AS
 SELECT c.id,
    c.email
   FROM public.customers c
  WHERE (c.note <> 'x;y'::text);


--
-- Name: v_totals; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.v_totals AS
SELECT
    NULL::integer AS id,
    NULL::text AS email,
    NULL::bigint AS n;


--
-- Name: events_2024; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events ATTACH PARTITION public.events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');


--
-- Name: Orders id; Type: DEFAULT; Schema: Sales; Owner: -
--

ALTER TABLE ONLY "Sales"."Orders" ALTER COLUMN id SET DEFAULT nextval('"Sales"."Orders_id_seq"'::regclass);


--
-- Name: customers id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers ALTER COLUMN id SET DEFAULT nextval('public.customers_id_seq'::regclass);


--
-- PostgreSQL database dump complete
--

\unrestrict AKMNztaTFmLCLewE9qfuGKXSwIZGjRzjbqlhOr0vE4JP8mp5SV0hrIFHnOXDcNI

"#;

    /// The matching `--section=post-data`.
    const POST_DATA: &str = r#"
--
-- PostgreSQL database dump
--

\restrict Wnf02dYHXyh33Ij1iNyNl5vrNq5qDV32SjhvyN9wfM40a04wZ1IfRSYTnxTWhfx

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

--
-- Name: Orders Orders_pkey; Type: CONSTRAINT; Schema: Sales; Owner: -
--

ALTER TABLE ONLY "Sales"."Orders"
    ADD CONSTRAINT "Orders_pkey" PRIMARY KEY (id);


--
-- Name: customers ck; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.customers
    ADD CONSTRAINT ck CHECK ((id > 0)) NOT VALID;


--
-- Name: customers customers_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_email_key UNIQUE (email);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);


--
-- Name: orders_cust; Type: INDEX; Schema: Sales; Owner: -
--

CREATE INDEX orders_cust ON "Sales"."Orders" USING btree (customer_id);


--
-- Name: events_id_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX events_id_at_idx ON ONLY public.events USING btree (id, at);


--
-- Name: events_2024_id_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX events_2024_id_at_idx ON public.events_2024 USING btree (id, at);


--
-- Name: events_2024_id_at_idx; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.events_id_at_idx ATTACH PARTITION public.events_2024_id_at_idx;


--
-- Name: v_totals _RETURN; Type: RULE; Schema: public; Owner: -
--

CREATE OR REPLACE VIEW public.v_totals AS
 SELECT c.id,
    c.email,
    count(o.id) AS n
   FROM (public.customers c
     LEFT JOIN "Sales"."Orders" o ON ((o.customer_id = c.id)))
  GROUP BY c.id;


--
-- Name: v_customers r1; Type: RULE; Schema: public; Owner: -
--

CREATE RULE r1 AS
    ON UPDATE TO public.v_customers DO INSTEAD NOTHING;


--
-- Name: customers t1; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER t1 BEFORE INSERT ON public.customers FOR EACH ROW EXECUTE FUNCTION public.trg();


--
-- Name: Orders Orders_customer_id_fkey; Type: FK CONSTRAINT; Schema: Sales; Owner: -
--

ALTER TABLE ONLY "Sales"."Orders"
    ADD CONSTRAINT "Orders_customer_id_fkey" FOREIGN KEY (customer_id) REFERENCES public.customers(id) ON DELETE CASCADE;


--
-- Name: customers customers_country_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_country_fkey FOREIGN KEY (country) REFERENCES other.countries(code);


--
-- Name: customers; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;

--
-- Name: customers p1; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY p1 ON public.customers USING ((email <> 'x;y'::text));


--
-- PostgreSQL database dump complete
--

\unrestrict Wnf02dYHXyh33Ij1iNyNl5vrNq5qDV32SjhvyN9wfM40a04wZ1IfRSYTnxTWhfx

"#;

    #[test]
    fn pre_data_script_is_split_and_rewritten() {
        let out = rw(PRE_DATA);
        assert_eq!(
            summary(&out),
            vec![
                ("TYPE", "CREATE TYPE lethe_shadow_public.mood AS ENUM ("),
                ("TYPE", "CREATE TYPE lethe_shadow_public.pair AS ("),
                (
                    "DOMAIN",
                    "CREATE DOMAIN lethe_shadow_public.posint AS integer"
                ),
                ("TABLE", "CREATE TABLE lethe_shadow_public.customers ("),
                (
                    "COMMENT",
                    "COMMENT ON TABLE lethe_shadow_public.customers IS 'customers; with public.stuff';"
                ),
                (
                    "COMMENT",
                    "COMMENT ON COLUMN lethe_shadow_public.customers.note IS 'free text; may contain public.stuff';"
                ),
                (
                    "FUNCTION",
                    "CREATE FUNCTION \"lethe_shadow_Sales\".total(lethe_shadow_public.customers) RETURNS numeric"
                ),
                (
                    "FUNCTION",
                    "CREATE FUNCTION lethe_shadow_public.f1(x integer) RETURNS integer"
                ),
                (
                    "FUNCTION",
                    "CREATE FUNCTION lethe_shadow_public.f2(x integer) RETURNS integer"
                ),
                (
                    "FUNCTION",
                    "CREATE FUNCTION lethe_shadow_public.grade(n integer) RETURNS text"
                ),
                (
                    "PROCEDURE",
                    "CREATE PROCEDURE lethe_shadow_public.touch(IN x integer)"
                ),
                (
                    "FUNCTION",
                    "CREATE FUNCTION lethe_shadow_public.trg() RETURNS trigger"
                ),
                ("TABLE", "CREATE TABLE \"lethe_shadow_Sales\".\"Orders\" ("),
                (
                    "SEQUENCE",
                    "CREATE SEQUENCE \"lethe_shadow_Sales\".\"Orders_id_seq\""
                ),
                (
                    "SEQUENCE OWNED BY",
                    "ALTER SEQUENCE \"lethe_shadow_Sales\".\"Orders_id_seq\" OWNED BY \"lethe_shadow_Sales\".\"Orders\".id;"
                ),
                (
                    "SEQUENCE",
                    "ALTER TABLE lethe_shadow_public.customers ALTER COLUMN big ADD GENERATED ALWAYS AS IDENTITY ("
                ),
                (
                    "SEQUENCE",
                    "CREATE SEQUENCE lethe_shadow_public.customers_id_seq"
                ),
                (
                    "SEQUENCE OWNED BY",
                    "ALTER SEQUENCE lethe_shadow_public.customers_id_seq OWNED BY lethe_shadow_public.customers.id;"
                ),
                ("TABLE", "CREATE TABLE lethe_shadow_public.events ("),
                ("TABLE", "CREATE TABLE lethe_shadow_public.events_2024 ("),
                (
                    "MATERIALIZED VIEW",
                    "CREATE MATERIALIZED VIEW lethe_shadow_public.mv AS"
                ),
                ("SEQUENCE", "CREATE SEQUENCE lethe_shadow_public.s1"),
                (
                    "SEQUENCE OWNED BY",
                    "ALTER SEQUENCE lethe_shadow_public.s1 OWNED BY lethe_shadow_public.customers.id;"
                ),
                ("VIEW", "CREATE VIEW lethe_shadow_public.v_customers AS"),
                ("VIEW", "CREATE VIEW lethe_shadow_public.v_totals AS"),
                (
                    "TABLE ATTACH",
                    "ALTER TABLE ONLY lethe_shadow_public.events ATTACH PARTITION lethe_shadow_public.events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
                ),
                (
                    "DEFAULT",
                    "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\" ALTER COLUMN id SET DEFAULT nextval('\"lethe_shadow_Sales\".\"Orders_id_seq\"'::regclass);"
                ),
                (
                    "DEFAULT",
                    "ALTER TABLE ONLY lethe_shadow_public.customers ALTER COLUMN id SET DEFAULT nextval('lethe_shadow_public.customers_id_seq'::regclass);"
                ),
            ]
        );
        assert_byte_identical(PRE_DATA, &out);

        assert_eq!(
            statement(&out, "CREATE TYPE lethe_shadow_public.mood"),
            "CREATE TYPE lethe_shadow_public.mood AS ENUM (\n    'sad',\n    'ok',\n    'happy; really'\n);"
        );
        assert_eq!(
            statement(&out, "CREATE TABLE lethe_shadow_public.customers"),
            "CREATE TABLE lethe_shadow_public.customers (
    id integer NOT NULL,
    email text NOT NULL,
    mood lethe_shadow_public.mood DEFAULT 'ok'::lethe_shadow_public.mood,
    country text,
    note text DEFAULT 'public.x; y'::text,
    e text DEFAULT 'it''s public.a;'::text,
    n lethe_shadow_public.posint,
    big bigint NOT NULL,
    g integer GENERATED ALWAYS AS ((id * 2)) STORED
);"
        );
        // Dollar-quoted bodies are late-bound by name: left alone.
        assert_eq!(
            statement(&out, "CREATE FUNCTION \"lethe_shadow_Sales\".total"),
            "CREATE FUNCTION \"lethe_shadow_Sales\".total(lethe_shadow_public.customers) RETURNS numeric
    LANGUAGE sql STABLE
    AS $_$ select sum(amount) from \"Sales\".\"Orders\" o where o.customer_id = $1.id; $_$;"
        );
        assert_eq!(
            statement(&out, "CREATE FUNCTION lethe_shadow_public.f1"),
            "CREATE FUNCTION lethe_shadow_public.f1(x integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$ begin /* ; */ perform 1 from public.customers; return x; end $$;"
        );
        // BEGIN ATOMIC bodies are bound at creation: rewritten, and kept whole despite `;`.
        assert_eq!(
            statement(&out, "CREATE FUNCTION lethe_shadow_public.f2"),
            "CREATE FUNCTION lethe_shadow_public.f2(x integer) RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT (x + ( SELECT (count(*))::integer AS count
            FROM lethe_shadow_public.customers));
END;"
        );
        assert_eq!(
            statement(&out, "CREATE FUNCTION lethe_shadow_public.grade"),
            "CREATE FUNCTION lethe_shadow_public.grade(n integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
 SELECT
         CASE
             WHEN (n > 10) THEN 'big; really'::text
             ELSE 'small'::text
         END AS \"case\";
END;"
        );
        assert_eq!(
            statement(&out, "CREATE PROCEDURE"),
            "CREATE PROCEDURE lethe_shadow_public.touch(IN x integer)
    LANGUAGE sql
    BEGIN ATOMIC
 UPDATE lethe_shadow_public.customers SET note = 'public.touched;'::text
   WHERE (customers.id = touch.x);
END;"
        );
        assert_eq!(
            statement(&out, "CREATE VIEW lethe_shadow_public.v_customers"),
            "CREATE VIEW lethe_shadow_public.v_customers AS
 SELECT c.id,
    c.email
   FROM lethe_shadow_public.customers c
  WHERE (c.note <> 'x;y'::text);"
        );
        assert!(
            statement(
                &out,
                "ALTER TABLE lethe_shadow_public.customers ALTER COLUMN big"
            )
            .contains("\n    SEQUENCE NAME lethe_shadow_public.customers_big_seq\n")
        );
    }

    #[test]
    fn post_data_script_is_split_and_rewritten() {
        let out = rw(POST_DATA);
        assert_eq!(
            summary(&out),
            vec![
                (
                    "CONSTRAINT",
                    "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\""
                ),
                (
                    "CHECK CONSTRAINT",
                    "ALTER TABLE lethe_shadow_public.customers"
                ),
                (
                    "CONSTRAINT",
                    "ALTER TABLE ONLY lethe_shadow_public.customers"
                ),
                (
                    "CONSTRAINT",
                    "ALTER TABLE ONLY lethe_shadow_public.customers"
                ),
                (
                    "INDEX",
                    "CREATE INDEX orders_cust ON \"lethe_shadow_Sales\".\"Orders\" USING btree (customer_id);"
                ),
                (
                    "INDEX",
                    "CREATE UNIQUE INDEX events_id_at_idx ON ONLY lethe_shadow_public.events USING btree (id, at);"
                ),
                (
                    "INDEX",
                    "CREATE UNIQUE INDEX events_2024_id_at_idx ON lethe_shadow_public.events_2024 USING btree (id, at);"
                ),
                (
                    "INDEX ATTACH",
                    "ALTER INDEX lethe_shadow_public.events_id_at_idx ATTACH PARTITION lethe_shadow_public.events_2024_id_at_idx;"
                ),
                (
                    "RULE",
                    "CREATE OR REPLACE VIEW lethe_shadow_public.v_totals AS"
                ),
                ("RULE", "CREATE RULE r1 AS"),
                (
                    "TRIGGER",
                    "CREATE TRIGGER t1 BEFORE INSERT ON lethe_shadow_public.customers FOR EACH ROW EXECUTE FUNCTION lethe_shadow_public.trg();"
                ),
                (
                    "FK CONSTRAINT",
                    "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\""
                ),
                (
                    "FK CONSTRAINT",
                    "ALTER TABLE ONLY lethe_shadow_public.customers"
                ),
                (
                    "ROW SECURITY",
                    "ALTER TABLE lethe_shadow_public.customers ENABLE ROW LEVEL SECURITY;"
                ),
                (
                    "POLICY",
                    "CREATE POLICY p1 ON lethe_shadow_public.customers USING ((email <> 'x;y'::text));"
                ),
            ]
        );
        assert_byte_identical(POST_DATA, &out);
        let fks: Vec<&str> = out
            .iter()
            .filter(|s| s.object_type == "FK CONSTRAINT")
            .map(|s| s.sql.as_str())
            .collect();
        // A foreign key into another mapped schema follows it into its shadow...
        assert_eq!(
            fks[0],
            "ALTER TABLE ONLY \"lethe_shadow_Sales\".\"Orders\"
    ADD CONSTRAINT \"Orders_customer_id_fkey\" FOREIGN KEY (customer_id) REFERENCES lethe_shadow_public.customers(id) ON DELETE CASCADE;"
        );
        // ...one into a schema that isn't copied keeps pointing at it.
        assert_eq!(
            fks[1],
            "ALTER TABLE ONLY lethe_shadow_public.customers
    ADD CONSTRAINT customers_country_fkey FOREIGN KEY (country) REFERENCES other.countries(code);"
        );
        assert_eq!(
            statement(&out, "CREATE OR REPLACE VIEW"),
            "CREATE OR REPLACE VIEW lethe_shadow_public.v_totals AS
 SELECT c.id,
    c.email,
    count(o.id) AS n
   FROM (lethe_shadow_public.customers c
     LEFT JOIN \"lethe_shadow_Sales\".\"Orders\" o ON ((o.customer_id = c.id)))
  GROUP BY c.id;"
        );
    }

    #[test]
    fn an_extension_in_a_mapped_schema_is_refused() {
        let script = "--\n-- Name: citext; Type: EXTENSION; Schema: -; Owner: -\n--\n\n\
                      CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;\n";
        assert_eq!(
            rewrite_dump(script, &map()),
            Err(RewriteError::Extension {
                name: "citext".into(),
                schema: "public".into()
            })
        );
        let quoted = "CREATE EXTENSION \"uuid-ossp\" WITH SCHEMA \"Sales\" VERSION '1.1';";
        let err = rewrite_dump(quoted, &map()).unwrap_err();
        assert_eq!(
            err,
            RewriteError::Extension {
                name: "uuid-ossp".into(),
                schema: "Sales".into()
            }
        );
        assert!(err.to_string().contains("\"uuid-ossp\""), "{err}");
        // Elsewhere, the extension (and its comment) is just left out.
        let elsewhere = "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA extensions;\n\
                         COMMENT ON EXTENSION citext IS 'case-insensitive; text';\n\
                         CREATE TABLE public.t (e extensions.citext);\n";
        assert_eq!(
            sqls(elsewhere),
            ["CREATE TABLE lethe_shadow_public.t (e extensions.citext);"]
        );
    }

    #[test]
    fn dollar_quoted_bodies_are_opaque() {
        let script = r#"CREATE FUNCTION public.f(a integer) RETURNS integer
    LANGUAGE plpgsql
    AS $fn$
declare
  s text := $$ it's; public.x $$;
begin
  -- public.y; 'not a string
  execute 'select 1 from public.z; ' || s;
  s := '
\echo not a meta-command inside a body';
  return $1 + a$b;
end $fn$;
SELECT $1, a$b$c.d, $tag_2$ ; $tag_1$ ; $tag_2$::text FROM public.t;
CREATE FUNCTION public.g() RETURNS text LANGUAGE sql AS 'select ''public.q; ''';
"#;
        let out = sqls(script);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(
            out[0],
            script[..script.find("end $fn$;").unwrap() + "end $fn$;".len()].replacen(
                "public.f(",
                "lethe_shadow_public.f(",
                1
            )
        );
        assert_eq!(
            out[1],
            "SELECT $1, a$b$c.d, $tag_2$ ; $tag_1$ ; $tag_2$::text FROM lethe_shadow_public.t;"
        );
        assert_eq!(
            out[2],
            "CREATE FUNCTION lethe_shadow_public.g() RETURNS text LANGUAGE sql AS 'select ''public.q; ''';"
        );
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let script = "CREATE OR REPLACE PROCEDURE public.p()
    LANGUAGE sql
    BEGIN ATOMIC
 INSERT INTO public.log (m) VALUES ('a;b');
 SELECT CASE WHEN true THEN CASE WHEN false THEN 1 END ELSE 2 END;
 SELECT (CASE WHEN true THEN 1 END);
END;
CREATE FUNCTION public.\"begin\"() RETURNS integer LANGUAGE sql RETURN 1;
CREATE FUNCTION public.b(x integer) RETURNS integer LANGUAGE sql BEGIN /* x */ ATOMIC; END;
SELECT 1;
";
        let out = sqls(script);
        assert_eq!(out.len(), 4, "{out:#?}");
        assert!(out[0].starts_with("CREATE OR REPLACE PROCEDURE lethe_shadow_public.p()"));
        assert!(out[0].contains("INSERT INTO lethe_shadow_public.log (m) VALUES ('a;b');"));
        assert!(out[0].ends_with("SELECT (CASE WHEN true THEN 1 END);\nEND;"));
        assert_eq!(
            out[1],
            "CREATE FUNCTION lethe_shadow_public.\"begin\"() RETURNS integer LANGUAGE sql RETURN 1;"
        );
        assert_eq!(
            out[2],
            "CREATE FUNCTION lethe_shadow_public.b(x integer) RETURNS integer LANGUAGE sql BEGIN /* x */ ATOMIC; END;"
        );
        assert_eq!(out[3], "SELECT 1;");
    }

    #[test]
    fn strings_comments_and_quoted_identifiers_hide_semicolons_and_qualifiers() {
        let script = r#"
/* a comment; with public.x /* nested; */ still; public.y */
CREATE TABLE public."we;ird ""t""" (
    a text DEFAULT 'public.a; ''quoted''',  -- trailing; public.b
    b text DEFAULT E'it\'s public.c;\\',
    c text DEFAULT e'\\' || 'public.d;' || e'\';''',
    d bytea DEFAULT '\x00'::bytea,
    e text DEFAULT U&'d\0061t; public.e',
    f bit(3) DEFAULT B'101',
    "public.g;" integer
);
COMMENT ON COLUMN public."we;ird ""t""".a IS 'see public.t; and E''x''';
"#;
        let out = sqls(script);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(
            out[0],
            script[script.find("CREATE").unwrap()..script.find("COMMENT").unwrap() - 1].replacen(
                "public.\"we",
                "lethe_shadow_public.\"we",
                1
            )
        );
        assert_eq!(
            out[1],
            "COMMENT ON COLUMN lethe_shadow_public.\"we;ird \"\"t\"\"\".a IS 'see public.t; and E''x''';"
        );
    }

    #[test]
    fn schema_qualifiers() {
        let map: BTreeMap<String, String> = [
            ("public", "lethe_shadow_public"),
            ("Sales", "lethe_shadow_Sales"),
            ("app", "user"),
            ("x\"y", "9shadow"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let one = |sql: &str| {
            let out = rewrite_dump(sql, &map).unwrap();
            assert_eq!(out.len(), 1, "{out:?}");
            out.into_iter().next().unwrap().sql
        };
        assert_eq!(
            one("SELECT public.f(), \"public\".t, PUBLIC.t, Public.t FROM \"Sales\".o;"),
            "SELECT lethe_shadow_public.f(), lethe_shadow_public.t, lethe_shadow_public.t, \
             lethe_shadow_public.t FROM \"lethe_shadow_Sales\".o;"
        );
        // Not schema qualifiers (or not of a mapped schema).
        for unchanged in [
            "SELECT x.public.y FROM t;",
            "SELECT public .t, public, publicx.t, xpublic.t, \"Public\".t, sales.t FROM t;",
            "GRANT USAGE ON SCHEMA public TO public;",
            "SELECT 'public.t', $$public.t$$, \"public.t\" FROM t;",
        ] {
            assert_eq!(one(unchanged), unchanged);
        }
        // Three-part names: only the schema changes.
        assert_eq!(
            one("ALTER SEQUENCE public.s OWNED BY public.t.id;"),
            "ALTER SEQUENCE lethe_shadow_public.s OWNED BY lethe_shadow_public.t.id;"
        );
        // Shadow names are quoted when they must be.
        assert_eq!(one("CREATE TABLE app.t ();"), "CREATE TABLE \"user\".t ();");
        assert_eq!(
            one("CREATE TABLE \"x\"\"y\".t ();"),
            "CREATE TABLE \"9shadow\".t ();"
        );
        assert_eq!(
            one("SELECT OPERATOR(public.===) 1, 2::public.mood[], ROW(1)::\"Sales\".\"T\";"),
            "SELECT OPERATOR(lethe_shadow_public.===) 1, 2::lethe_shadow_public.mood[], \
             ROW(1)::\"lethe_shadow_Sales\".\"T\";"
        );
    }

    #[test]
    fn reg_literals() {
        let cases = [
            (
                "nextval('public.customers_id_seq'::regclass)",
                "nextval('lethe_shadow_public.customers_id_seq'::regclass)",
            ),
            (
                "nextval('\"Sales\".\"Orders_id_seq\"'::pg_catalog.regclass)",
                "nextval('\"lethe_shadow_Sales\".\"Orders_id_seq\"'::pg_catalog.regclass)",
            ),
            (
                "to_tsvector('public.english'::regconfig, b)",
                "to_tsvector('lethe_shadow_public.english'::regconfig, b)",
            ),
            (
                "'public.f(public.mood, integer)'::regprocedure",
                "'lethe_shadow_public.f(lethe_shadow_public.mood, integer)'::regprocedure",
            ),
            (
                "'PUBLIC.T'::REGCLASS, 'public.mood'::regtype, 'public.f'::\"regproc\"",
                "'lethe_shadow_public.T'::REGCLASS, 'lethe_shadow_public.mood'::regtype, \
                 'lethe_shadow_public.f'::\"regproc\"",
            ),
            (
                "E'public.t'::regclass",
                "E'lethe_shadow_public.t'::regclass",
            ),
            // Left alone: not a reg* cast, not mapped, not directly cast, escapes.
            ("'public.t'::text", "'public.t'::text"),
            ("'public.t'::regclassy", "'public.t'::regclassy"),
            ("'other.t'::regclass", "'other.t'::regclass"),
            (
                "'pg_catalog.english'::regconfig",
                "'pg_catalog.english'::regconfig",
            ),
            ("'public.t' ::regclass", "'public.t' ::regclass"),
            ("'x.public.t'::regclass", "'x.public.t'::regclass"),
            ("E'public.\\x74'::regclass", "E'public.\\x74'::regclass"),
            ("$$public.t$$::regclass", "$$public.t$$::regclass"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                sqls(&format!("SELECT {input};")),
                [format!("SELECT {expected};")]
            );
        }
        // The shadow name is quoted inside the literal when needed, with quotes doubled.
        let map = BTreeMap::from([("public".to_owned(), "it's".to_owned())]);
        let out = rewrite_dump("SELECT 'public.t'::regclass;", &map).unwrap();
        assert_eq!(out[0].sql, "SELECT '\"it''s\".t'::regclass;");
    }

    #[test]
    fn session_statements_meta_commands_and_schemas_are_dropped() {
        let script = r#"\restrict abc
\connect -reuse-previous=on "dbname='x'"
SET statement_timeout = 0;
set search_path = public, pg_catalog;
SELECT pg_catalog.set_config('search_path', '', false);
SELECT set_config('a.b', 'c', false);
CREATE SCHEMA IF NOT EXISTS "Sales";
ALTER SCHEMA public OWNER TO app;
COMMENT ON SCHEMA public IS 'standard public schema';
SECURITY LABEL FOR anon ON SCHEMA public IS 'x';
SECURITY LABEL FOR anon ON COLUMN public.t.c IS 'MASKED';
SELECT pg_catalog.setval('public.s', 1, false);
CREATE TABLE public.t (c text);
\unrestrict abc
"#;
        assert_eq!(
            sqls(script),
            [
                "SECURITY LABEL FOR anon ON COLUMN lethe_shadow_public.t.c IS 'MASKED';",
                "SELECT pg_catalog.setval('public.s', 1, false);",
                "CREATE TABLE lethe_shadow_public.t (c text);",
            ]
        );
        // A meta-command line in the middle of a statement is cut out of it.
        assert_eq!(
            sqls("CREATE TABLE public.t (\n\\echo hi\n  c text);"),
            ["CREATE TABLE lethe_shadow_public.t (\n\n  c text);"]
        );
    }

    #[test]
    fn standard_conforming_strings_off_makes_backslash_an_escape() {
        let script = "SET standard_conforming_strings = off;
INSERT INTO public.t VALUES ('it\\'s; public.x');
SET standard_conforming_strings TO 'on';
INSERT INTO public.t VALUES ('a\\', public.f());
";
        assert_eq!(
            sqls(script),
            [
                "INSERT INTO lethe_shadow_public.t VALUES ('it\\'s; public.x');",
                "INSERT INTO lethe_shadow_public.t VALUES ('a\\', lethe_shadow_public.f());",
            ]
        );
    }

    #[test]
    fn object_types_come_from_the_latest_header() {
        let script = "CREATE TABLE public.a ();
--
-- Name: b; Type: TABLE; Schema: public; Owner: app
--
CREATE TABLE public.b ();
-- Name: we; Type: ird; Type: INDEX; Schema: public; Owner: -
CREATE INDEX i ON public.b ();
-- Data for Name: b; Type: TABLE DATA; Schema: public; Owner: -
SELECT 1;
-- Name: nope
SELECT 2;
";
        let out = rw(script);
        let types: Vec<&str> = out.iter().map(|s| s.object_type.as_str()).collect();
        assert_eq!(types, ["", "TABLE", "INDEX", "TABLE DATA", "TABLE DATA"]);
        assert_eq!(out[0].sql, "CREATE TABLE lethe_shadow_public.a ();");
    }

    #[test]
    fn empty_statements_and_a_missing_final_semicolon() {
        assert_eq!(
            sqls(";\n ; -- x;\n/* ; */ ;SELECT 1;;\nSELECT 2 -- end"),
            ["SELECT 1;", "SELECT 2"]
        );
        assert!(rw("").is_empty());
        assert!(rw("-- only a comment\n\\restrict x\n").is_empty());
    }

    #[test]
    fn unterminated_tokens_are_errors() {
        for (script, what, line) in [
            ("SELECT 1;\nSELECT 'abc;", "string literal", 2),
            ("SELECT 1;\n\nSELECT E'ab\\';", "string literal", 3),
            ("SELECT \"abc;", "quoted identifier", 1),
            ("SELECT 1; /* a /* b */ c;", "/* comment */", 1),
            (
                "CREATE FUNCTION f() AS $x$ body; $$;\n",
                "dollar-quoted string",
                1,
            ),
        ] {
            assert_eq!(
                rewrite_dump(script, &map()),
                Err(RewriteError::Unterminated { what, line }),
                "{script}"
            );
        }
    }

    #[test]
    fn quote_ident_follows_postgres() {
        assert_eq!(quote_ident("lethe_shadow_public"), "lethe_shadow_public");
        assert_eq!(quote_ident("_x9"), "_x9");
        assert_eq!(quote_ident("lethe_shadow_Sales"), "\"lethe_shadow_Sales\"");
        assert_eq!(quote_ident("9a"), "\"9a\"");
        assert_eq!(quote_ident("a-b"), "\"a-b\"");
        assert_eq!(quote_ident("a$b"), "\"a$b\"");
        assert_eq!(quote_ident("ä"), "\"ä\"");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("select"), "\"select\"");
        assert_eq!(quote_ident("public"), "public"); // unreserved keyword
    }

    // ---- real pg_dump into a real shadow ---------------------------------------------------

    mod live {
        use super::*;
        use std::process::Command;
        use std::sync::atomic::{AtomicUsize, Ordering};

        fn admin_url() -> url::Url {
            let raw = std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            url::Url::parse(&raw).expect("DATABASE_URL must be a postgres:// URL")
        }

        /// `url` without its password, and the password (for PGPASSWORD).
        fn split(url: &url::Url) -> (String, Option<String>) {
            let mut shown = url.clone();
            let _ = shown.set_password(None);
            (shown.to_string(), url.password().map(str::to_owned))
        }

        fn run(program: &str, url: &url::Url, args: &[&str]) -> std::process::Output {
            let (dbname, password) = split(url);
            Command::new(program)
                .args(args)
                .arg(format!("--dbname={dbname}"))
                .envs(password.map(|p| ("PGPASSWORD", p)))
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run {program} ({e}): install the PostgreSQL client \
                         (Debian: apt-get install postgresql-client)"
                    )
                })
        }

        fn psql(url: &url::Url, sql: &str) -> String {
            let out = run(
                "psql",
                url,
                &["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            );
            assert!(
                out.status.success(),
                "psql failed: {}\n{sql}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }

        struct TestDb {
            name: String,
            url: url::Url,
        }

        impl TestDb {
            fn create(tag: &str) -> TestDb {
                static N: AtomicUsize = AtomicUsize::new(0);
                let admin = admin_url();
                let probe = run("psql", &admin, &["-X", "-A", "-t", "-c", "SELECT 1"]);
                assert!(
                    probe.status.success(),
                    "PostgreSQL is not reachable at {}: {}\nRun the tests with scripts/test (it finds or starts a server), \
                     start PostgreSQL (`pg_ctlcluster 15 main start`), or set DATABASE_URL to a \
                     server where this user may create databases.",
                    split(&admin).0,
                    String::from_utf8_lossy(&probe.stderr).trim()
                );
                let name = format!(
                    "lethe_h2_{tag}_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                );
                psql(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
                psql(&admin, &format!("CREATE DATABASE {name}"));
                let mut url = admin;
                url.set_path(&name);
                TestDb { name, url }
            }
        }

        impl Drop for TestDb {
            fn drop(&mut self) {
                psql(
                    &admin_url(),
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                );
            }
        }

        fn pg_dump(db: &TestDb, section: &str) -> String {
            let program = std::env::var("PG_DUMP").unwrap_or_else(|_| "pg_dump".to_owned());
            let section = format!("--section={section}");
            let out = run(
                &program,
                &db.url,
                &[
                    "--schema-only",
                    "--no-owner",
                    "--no-privileges",
                    "--no-publications",
                    "--no-subscriptions",
                    "--encoding=UTF8",
                    "--strict-names",
                    &section,
                    "--schema=\"public\"",
                    "--schema=\"Sales\"",
                ],
            );
            assert!(
                out.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }

        const SOURCE_SCHEMA: &str = r#"
            CREATE SCHEMA "Sales";
            CREATE SCHEMA other;
            CREATE TABLE other.countries (code text PRIMARY KEY);
            CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy; really');
            CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);
            CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql
                AS $$ begin new.note := 'public.z'; return new; end $$;
            CREATE TABLE public.customers (
                id serial PRIMARY KEY,
                email text UNIQUE NOT NULL,
                mood public.mood DEFAULT 'ok',
                country text REFERENCES other.countries (code),
                note text DEFAULT 'public.x; y',
                n public.posint,
                big bigint GENERATED ALWAYS AS IDENTITY,
                g int GENERATED ALWAYS AS (id * 2) STORED
            );
            COMMENT ON TABLE public.customers IS 'customers; see public.orders';
            CREATE TRIGGER t1 BEFORE INSERT ON public.customers
                FOR EACH ROW EXECUTE FUNCTION public.trg();
            CREATE FUNCTION public.f2(x int) RETURNS int LANGUAGE sql
                BEGIN ATOMIC SELECT x + (SELECT count(*)::int FROM public.customers); END;
            CREATE FUNCTION public.f3() RETURNS bigint LANGUAGE sql
                AS $$ SELECT count(*) FROM public.customers $$;
            CREATE TABLE "Sales"."Orders" (
                id bigserial PRIMARY KEY,
                customer_id int REFERENCES public.customers (id) ON DELETE CASCADE,
                amount numeric CHECK (amount > 0),
                m public.mood DEFAULT 'sad'
            );
            CREATE INDEX orders_cust ON "Sales"."Orders" (customer_id);
            CREATE FUNCTION "Sales".total(public.customers) RETURNS numeric LANGUAGE sql STABLE
                AS $$ SELECT sum(amount) FROM "Sales"."Orders" o WHERE o.customer_id = $1.id $$;
            CREATE TABLE public.events (id int, at date NOT NULL) PARTITION BY RANGE (at);
            CREATE TABLE public.events_2024 PARTITION OF public.events
                FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE UNIQUE INDEX ON public.events (id, at);
            CREATE VIEW public.v_customers AS
                SELECT c.id, c.email FROM public.customers c WHERE c.note <> 'x;y';
            CREATE VIEW public.v_totals AS
                SELECT c.id, c.email, count(o.id) AS n
                FROM public.customers c LEFT JOIN "Sales"."Orders" o ON o.customer_id = c.id
                GROUP BY c.id;
            CREATE MATERIALIZED VIEW public.mv AS SELECT count(*) AS n FROM public.customers;
            ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;
            CREATE POLICY p1 ON public.customers USING (email <> 'x;y');
        "#;

        /// Objects directly in schema `public`: relations, types, routines.
        const PUBLIC_OBJECTS: &str = "
            SELECT string_agg(kind || ' ' || name, ', ' ORDER BY kind, name) FROM (
                SELECT 'class' AS kind, relname::text AS name FROM pg_class
                    WHERE relnamespace = 'public'::regnamespace
                UNION ALL SELECT 'type', typname::text FROM pg_type
                    WHERE typnamespace = 'public'::regnamespace
                UNION ALL SELECT 'proc', proname::text FROM pg_proc
                    WHERE pronamespace = 'public'::regnamespace) o";

        /// Normal dependencies on an object in `public` from anything outside it.
        const DEPENDENCIES_ON_PUBLIC: &str = "
            WITH pub(classid, objid) AS (
                SELECT 'pg_class'::regclass, oid FROM pg_class
                    WHERE relnamespace = 'public'::regnamespace
                UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type
                    WHERE typnamespace = 'public'::regnamespace
                UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc
                    WHERE pronamespace = 'public'::regnamespace)
            SELECT count(*) FROM pg_depend d
            JOIN pub ON (d.refclassid, d.refobjid) = (pub.classid, pub.objid)
            WHERE d.deptype = 'n'";

        #[test]
        fn real_pg_dump_builds_the_shadow_and_survives_the_swap() {
            let source = TestDb::create("rwsrc");
            let target = TestDb::create("rwdst");
            psql(&source.url, SOURCE_SCHEMA);
            let pre = rewrite_dump(&pg_dump(&source, "pre-data"), &map()).unwrap();
            let post = rewrite_dump(&pg_dump(&source, "post-data"), &map()).unwrap();
            assert!(pre.iter().any(|s| s.object_type == "TABLE"), "{pre:#?}");
            assert!(
                post.iter().any(|s| s.object_type == "FK CONSTRAINT"),
                "{post:#?}"
            );

            // The target: an unmapped schema the copy refers to, a live `public` holding
            // same-named decoys that an unrewritten name would silently bind to, and the
            // empty shadows.
            psql(
                &target.url,
                r#"
                CREATE SCHEMA other;
                CREATE TABLE other.countries (code text PRIMARY KEY);
                INSERT INTO other.countries VALUES ('DE');
                CREATE TYPE public.mood AS ENUM ('decoy');
                CREATE TABLE public.customers (id int, email text, note text);
                CREATE SEQUENCE public.customers_id_seq;
                CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql
                    AS $$ begin return new; end $$;
                CREATE SCHEMA lethe_shadow_public;
                CREATE SCHEMA "lethe_shadow_Sales";
            "#,
            );
            let live_before = psql(&target.url, PUBLIC_OBJECTS);

            // Schema, data, then the post-data, as a refresh does, in one transaction.
            let mut script: Vec<String> = SESSION_SETUP.iter().map(|s| format!("{s};")).collect();
            script.extend(pre.iter().map(|s| s.sql.clone()));
            script.push(
                "INSERT INTO lethe_shadow_public.customers (email, country) VALUES ('a@x', 'DE');"
                    .into(),
            );
            script.extend(post.iter().map(|s| s.sql.clone()));
            let file = std::env::temp_dir().join(format!("{}.sql", target.name));
            std::fs::write(&file, script.join("\n")).unwrap();
            let out = run(
                "psql",
                &target.url,
                &[
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "--single-transaction",
                    "-f",
                    file.to_str().unwrap(),
                ],
            );
            std::fs::remove_file(&file).unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );

            // Nothing landed in `public`, and nothing in the shadow depends on it.
            assert_eq!(psql(&target.url, PUBLIC_OBJECTS), live_before);
            assert_eq!(psql(&target.url, DEPENDENCIES_ON_PUBLIC), "0");
            assert_eq!(
                psql(
                    &target.url,
                    "SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_class \
                     WHERE relnamespace = 'lethe_shadow_public'::regnamespace \
                     AND relkind IN ('r', 'p', 'v', 'm')"
                ),
                "customers, events, events_2024, mv, v_customers, v_totals"
            );

            // The swap: afterwards every name and every bound reference points at the copy.
            psql(
                &target.url,
                r#"
                BEGIN;
                ALTER SCHEMA public RENAME TO lethe_previous_public;
                ALTER SCHEMA lethe_shadow_public RENAME TO public;
                ALTER SCHEMA "lethe_shadow_Sales" RENAME TO "Sales";
                COMMIT;
            "#,
            );
            let q = |sql: &str| psql(&target.url, sql);
            assert_eq!(
                q("SELECT pg_get_serial_sequence('public.customers', 'id')"),
                "public.customers_id_seq"
            );
            // Default from the copied sequence, trigger from the copied function.
            assert_eq!(
                q(
                    "INSERT INTO public.customers (email) VALUES ('b@x') RETURNING id, note, mood, g"
                ),
                "2|public.z|ok|4"
            );
            assert_eq!(q("SELECT public.f2(1), public.f3()"), "3|2");
            assert_eq!(q("SELECT count(*) FROM public.v_customers"), "2");
            assert_eq!(
                q(
                    "SELECT confrelid::regclass FROM pg_constraint WHERE conname = 'Orders_customer_id_fkey'"
                ),
                "customers"
            );
            q(r#"INSERT INTO "Sales"."Orders" (customer_id, amount) VALUES (1, 5), (1, 7)"#);
            assert_eq!(q("SELECT n FROM public.v_totals WHERE id = 1"), "2");
            assert_eq!(
                q(r#"SELECT "Sales".total(c) FROM public.customers c WHERE id = 1"#),
                "12"
            );
            q("INSERT INTO public.events VALUES (1, '2024-05-01')");
            assert_eq!(q("SELECT count(*) FROM public.events_2024"), "1");
            assert_eq!(
                q(
                    "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events_id_at_idx'::regclass"
                ),
                "1"
            );
            q("REFRESH MATERIALIZED VIEW public.mv");
            assert_eq!(q("SELECT n FROM public.mv"), "2");
            assert_eq!(
                q("SELECT count(*) FROM lethe_previous_public.customers"),
                "0"
            );
        }
    }
}
