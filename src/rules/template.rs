//! `template` rules: a value built from the row's *masked* values, such as an address
//! `"{first_name}.{last_name}@example.org"` that agrees with the masked name columns.
//!
//! `{column}` stands for that column's masked value (empty when NULL); `{{` and `}}`
//! are literal braces.

use std::fmt;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text written as it is.
    Literal(String),
    /// The masked value of the named column of the same row.
    Column(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The pieces, in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Parses a template; the error says what is wrong and where in the template.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, c)) if c != '{' => name.push(c),
                            _ => {
                                return Err(format!(
                                    "the `{{` at character {} is not closed by `}}`",
                                    at + 1
                                ));
                            }
                        }
                    }
                    if name.trim().is_empty() {
                        return Err(format!("empty `{{}}` at character {}", at + 1));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Column(name.trim().to_owned()));
                }
                '}' => {
                    return Err(format!(
                        "a lone `}}` at character {} (write `}}}}` for a brace)",
                        at + 1
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if !parts.iter().any(|p| matches!(p, Part::Column(_))) {
            return Err("names no `{column}`; use `constant` for fixed text".to_owned());
        }
        Ok(Self { parts })
    }

    /// The columns the template reads.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(c) => Some(c.as_str()),
            Part::Literal(_) => None,
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(&text.replace('{', "{{").replace('}', "}}"))?,
                Part::Column(name) => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_columns_literals_and_escapes() {
        let t = Template::parse("{first_name}.{ last_name }@ex{{a}}mple.org").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Column("first_name".into()),
                Part::Literal(".".into()),
                Part::Column("last_name".into()),
                Part::Literal("@ex{a}mple.org".into()),
            ]
        );
        assert_eq!(t.columns().collect::<Vec<_>>(), ["first_name", "last_name"]);
        assert_eq!(t.to_string(), "{first_name}.{last_name}@ex{{a}}mple.org");
    }

    #[test]
    fn bad_templates_say_where() {
        assert!(
            Template::parse("{first")
                .unwrap_err()
                .contains("character 1")
        );
        assert!(Template::parse("a}b").unwrap_err().contains("character 2"));
        assert!(Template::parse("x{}").unwrap_err().contains("empty"));
        assert!(Template::parse("plain").unwrap_err().contains("constant"));
    }
}
