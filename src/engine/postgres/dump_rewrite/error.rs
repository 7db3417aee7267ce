//! Why a pg_dump script cannot be rebuilt in the shadow schemas.

/// A script the rewrite refuses; nothing of it is run.
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
