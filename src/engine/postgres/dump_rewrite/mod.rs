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

mod error;
mod lexer;
mod quote;

pub use error::RewriteError;

use std::collections::BTreeMap;

use lexer::{Kind, Lexer, StrKind, Token, is_ident_cont, is_ident_start};
use quote::quote_ident;

/// One statement of a pg_dump script, with the object type from the
/// `-- Name: ...; Type: X; Schema: ...` header above it ("" if there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpStatement {
    pub object_type: String,
    pub sql: String,
}

#[cfg(test)]
impl DumpStatement {
    /// A statement of `object_type`, for tests.
    pub fn new(object_type: &str, sql: &str) -> Self {
        Self {
            object_type: object_type.into(),
            sql: sql.into(),
        }
    }
}

/// The session settings pg_dump's own `SET` lines establish that matter when the rewritten
/// statements are executed (the `SET` lines themselves are dropped by [`rewrite_dump`]):
/// names are fully qualified for an empty `search_path`, and routine bodies may mention
/// objects that exist only after the swap (or later in the script).
const SESSION_SETTINGS: &[(&str, &str)] = &[
    ("search_path", "''"),
    ("check_function_bodies", "false"),
    ("client_min_messages", "warning"),
    ("standard_conforming_strings", "on"),
    ("xmloption", "content"),
];

/// [`SESSION_SETTINGS`] as one string of `SET` statements, for the whole session or, with
/// `local`, for the current transaction only.
pub fn session_setup(local: bool) -> String {
    let scope = if local { "SET LOCAL" } else { "SET" };
    SESSION_SETTINGS
        .iter()
        .map(|(name, value)| format!("{scope} {name} = {value};"))
        .collect::<Vec<_>>()
        .join(" ")
}

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

#[cfg(test)]
mod tests;
