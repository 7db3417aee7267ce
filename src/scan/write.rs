//! `lethe scan --write`: proposed rules go into `masking-rules/<schema>.toml`, each with
//! a comment saying it was proposed and why, so a person reviews it. The file keeps its
//! comments and layout (`toml_edit`), and is replaced in one rename: a crash leaves the
//! old file or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

/// One rule to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The table's name (the section).
    pub table: String,
    /// The column's name (the key).
    pub column: String,
    /// The rule as written: `keep`, `null` or a masker's name.
    pub rule: String,
    /// The comment line above it, without `# `.
    pub comment: String,
}

/// Why proposals could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The existing file is not TOML (a rules file `lethe plan` would also refuse).
    #[error("{}: not valid TOML, so nothing was added: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A table's entry is not a `[section]` that keys can be added to.
    #[error("{}: `{table}` is not a [section], so its proposals were not added", .path.display())]
    NotASection {
        /// The file.
        path: PathBuf,
        /// The table.
        table: String,
    },
    /// Reading or writing failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// A rules file `--write` changed, so that the report can say where to review.
#[derive(Debug)]
pub struct WrittenFile {
    /// The file.
    pub path: PathBuf,
    /// Whether it was new.
    pub created: bool,
    /// What was added.
    pub proposals: Vec<Proposal>,
}

/// Adds each schema's proposals to `<rules_dir>/<schema>.toml`, one file at a time, each
/// replaced atomically.
pub(super) fn write_proposals(
    rules_dir: &Path,
    by_schema: BTreeMap<&str, Vec<Proposal>>,
) -> Result<Vec<WrittenFile>, WriteError> {
    std::fs::create_dir_all(rules_dir).map_err(|source| WriteError::Io {
        path: rules_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (schema, proposals) in by_schema {
        let path = rules_dir.join(format!("{schema}.toml"));
        let (text, created) = match std::fs::read_to_string(&path) {
            Ok(text) => (text, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(source) => return Err(WriteError::Io { path, source }),
        };
        let updated = propose(&path, &text, &proposals)?;
        write_atomically(&path, &updated)?;
        written.push(WrittenFile {
            path,
            created,
            proposals,
        });
    }
    Ok(written)
}

/// Adds `proposals` to the rules text `text` (empty for a new file): into the table's
/// section if it has one, else into a new section at the end, each key with its comment.
/// `path` only names the file in errors.
pub fn propose(path: &Path, text: &str, proposals: &[Proposal]) -> Result<String, WriteError> {
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| WriteError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?;
    // A new section is set off by a blank line, except at the top of a new file.
    let mut blank_line = !text.trim().is_empty();
    for proposal in proposals {
        if !doc.contains_key(&proposal.table) {
            let mut section = Table::new();
            if blank_line {
                section.decor_mut().set_prefix("\n");
            }
            blank_line = true;
            doc.insert(&proposal.table, Item::Table(section));
        }
        let Some(section) = doc.get_mut(&proposal.table).and_then(Item::as_table_mut) else {
            return Err(WriteError::NotASection {
                path: path.to_path_buf(),
                table: proposal.table.clone(),
            });
        };
        section.insert(&proposal.column, value(proposal.rule.as_str()));
        if let Some(mut key) = section.key_mut(&proposal.column) {
            key.leaf_decor_mut()
                .set_prefix(format!("# {}\n", one_line(&proposal.comment)));
        }
    }
    Ok(doc.to_string())
}

/// Text that cannot end the comment early: control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Replaces (or creates) `path` with `text`: written to a temporary file in the same
/// folder, flushed to disk, then renamed over it. On any failure the temporary file is
/// removed and the old file is untouched.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    let io = |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Not `*.toml`, so a rules load never reads a half-written temporary file.
    let temp = dir.join(format!(".{name}.{}.lethe-scan.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(table: &str, column: &str, rule: &str) -> Proposal {
        Proposal {
            table: table.into(),
            column: column.into(),
            rule: rule.into(),
            comment: format!("proposed by lethe scan: high, name matches `{column}`"),
        }
    }

    fn propose_str(text: &str, proposals: &[Proposal]) -> String {
        propose(Path::new("public.toml"), text, proposals).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn inserts_into_sections_and_keeps_comments() {
        let before = "# Rules for public, reviewed by the DPO.\n\n[users]\n# ids are not personal\nkeep = [\"id\"]   # trailing note\n\n[orders]\nkeep = [\"id\"]\n";
        let after = propose_str(
            before,
            &[
                proposal("users", "email", "email"),
                proposal("orders", "note", "null"),
                proposal("invoices", "iban", "iban"),
                proposal("invoices", "id", "keep"),
            ],
        );
        assert_eq!(
            after,
            "# Rules for public, reviewed by the DPO.\n\n[users]\n# ids are not personal\nkeep = [\"id\"]   # trailing note\n# proposed by lethe scan: high, name matches `email`\nemail = \"email\"\n\n[orders]\nkeep = [\"id\"]\n# proposed by lethe scan: high, name matches `note`\nnote = \"null\"\n\n[invoices]\n# proposed by lethe scan: high, name matches `iban`\niban = \"iban\"\n# proposed by lethe scan: high, name matches `id`\nid = \"keep\"\n"
        );
        // The result is still what the rules parser reads.
        let parsed: toml::Table = toml::from_str(&after).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed["users"]["email"].as_str(), Some("email"));
    }

    #[test]
    fn a_new_file_and_names_that_need_quotes() {
        let after = propose_str(
            "",
            &[
                proposal("order items", "e.mail", "email"),
                Proposal {
                    comment: "two\nlines".into(),
                    ..proposal("t", "c", "keep")
                },
            ],
        );
        assert_eq!(
            after,
            "[\"order items\"]\n# proposed by lethe scan: high, name matches `e.mail`\n\"e.mail\" = \"email\"\n\n[t]\n# two lines\nc = \"keep\"\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit() {
        let err = propose(Path::new("p.toml"), "[users\n", &[]).err();
        assert!(matches!(err, Some(WriteError::Parse { .. })), "{err:?}");
        let err = propose(
            Path::new("p.toml"),
            "users = 3\n",
            &[proposal("users", "email", "email")],
        )
        .err();
        assert!(
            matches!(err, Some(WriteError::NotASection { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn writes_atomically() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("public.toml");
        write_atomically(&path, "[a]\n").unwrap_or_else(|e| panic!("{e}"));
        write_atomically(&path, "[b]\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), "[b]\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names, vec!["public.toml"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_state_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // A folder where the file should be: the rename fails.
        let path = dir.path().join("public.toml");
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path.join("inside"), "old").unwrap_or_else(|e| panic!("{e}"));
        let err = write_atomically(&path, "[a]\n").err();
        assert!(matches!(err, Some(WriteError::Io { .. })), "{err:?}");
        assert!(path.is_dir());
        assert_eq!(
            std::fs::read_to_string(path.join("inside")).unwrap_or_default(),
            "old"
        );
        let entries = std::fs::read_dir(dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .count();
        assert_eq!(entries, 1, "the temporary file was left behind");
        // A folder that does not exist: nothing is created.
        let missing = dir.path().join("no/such/public.toml");
        assert!(write_atomically(&missing, "[a]\n").is_err());
        assert!(!dir.path().join("no").exists());
    }
}
