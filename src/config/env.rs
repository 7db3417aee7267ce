//! `${NAME}` interpolation, so secrets live in the environment and not in files in a repo.

/// Why a value could not be interpolated; names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `${NAME}` names a variable that is not set.
    #[error("environment variable `{0}` is not set")]
    Missing(String),
    /// `${` without a closing `}`, or an empty or malformed name.
    #[error("malformed `${{...}}`: {0}")]
    Malformed(&'static str),
}

/// Replaces every `${NAME}` in `text` with the variable's value (`$$` writes one `$`),
/// looking names up with `lookup` so tests need not touch the process environment.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, EnvError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or(EnvError::Malformed("no closing `}`"))?;
            let name = &tail[..end];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(EnvError::Malformed("a name is letters, digits and `_`"));
            }
            let value = lookup(name).ok_or_else(|| EnvError::Missing(name.to_string()))?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Looks a name up in the process environment.
pub fn from_process(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PASS").then(|| "s3cr$t".to_string())
    }

    #[test]
    fn replaces_variables_and_escapes() {
        assert_eq!(
            interpolate("postgres://u:${PASS}@h/db", env).as_deref(),
            Ok("postgres://u:s3cr$t@h/db")
        );
        assert_eq!(interpolate("a$$b $x", env).as_deref(), Ok("a$b $x"));
        assert_eq!(interpolate("plain", env).as_deref(), Ok("plain"));
    }

    #[test]
    fn missing_and_malformed_are_errors() {
        assert_eq!(
            interpolate("${NOPE}", env),
            Err(EnvError::Missing("NOPE".into()))
        );
        assert!(matches!(
            interpolate("${PASS", env),
            Err(EnvError::Malformed(_))
        ));
        assert!(matches!(
            interpolate("${1X}", env),
            Err(EnvError::Malformed(_))
        ));
    }
}
