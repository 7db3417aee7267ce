//! Where in which file something was written, so every config error can point at it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A `file:line:column` position (1-based), as editors and compilers print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file the text came from.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// Turns a byte offset into `text` (as TOML spans give them) into a line and column.
    pub fn from_offset(file: &Path, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            file: file.to_path_buf(),
            line,
            column,
        }
    }

    /// The position where a span starts.
    pub fn from_span(file: &Path, text: &str, span: &Range<usize>) -> Self {
        Self::from_offset(file, text, span.start)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in a config or rules file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Where it is, when it can be pinned to a place (a missing file can't).
    pub location: Option<Location>,
    /// What is wrong. Never contains a secret or a value from the data.
    pub message: String,
}

impl ConfigError {
    /// An error at a known place.
    pub fn at(location: Location, message: impl Into<String>) -> Self {
        Self {
            location: Some(location),
            message: message.into(),
        }
    }

    /// An error about a whole file (unreadable, missing).
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            location: None,
            message: format!("{}: {}", file.display(), message.into()),
        }
    }

    /// Turns a TOML parse or type error into one that names file, line and column.
    pub fn from_toml(file: &Path, text: &str, error: &toml::de::Error) -> Self {
        let message = error.message().trim_end().to_string();
        match error.span() {
            Some(span) => Self::at(Location::from_span(file, text, &span), message),
            None => Self::in_file(file, message),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every problem found in one pass, so a user fixes them all at once rather than one per run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        let file = Path::new("x.toml");
        assert_eq!(
            Location::from_offset(file, text, 0).to_string(),
            "x.toml:1:1"
        );
        let off = text
            .find('=')
            .map(|_| text.rfind('=').unwrap_or(0))
            .unwrap_or(0);
        assert_eq!(
            Location::from_offset(file, text, off).to_string(),
            "x.toml:2:4"
        );
    }
}
