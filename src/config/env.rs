//! `${NAME}` and `${file:PATH}` interpolation, so secrets live in the environment or in
//! mounted secret files (Docker, Kubernetes, systemd credentials) and not in files in a repo.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The prefix that makes a reference read a file instead of a variable.
pub const FILE_PREFIX: &str = "file:";

/// Why a value could not be interpolated; names the variable or the secret file, never a
/// value or a file's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `${NAME}` names a variable that is not set.
    #[error("environment variable `{0}` is not set")]
    Missing(String),
    /// `${` without a closing `}`, or an empty or malformed name.
    #[error("malformed `${{...}}`: {0}")]
    Malformed(&'static str),
    /// `${file:PATH}` names a file that does not exist.
    #[error("secret file {} does not exist", .0.display())]
    FileMissing(PathBuf),
    /// `${file:PATH}` names a file that cannot be read (permissions, a directory, ...).
    #[error("secret file {} cannot be read: {reason}", path.display())]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason (never the content).
        reason: String,
    },
    /// `${file:PATH}` names a file every user of the machine may read: a secret in it is
    /// no secret, so lethe refuses it rather than use it.
    #[error(
        "secret file {} is readable by every user (mode {mode:04o}); \
         restrict it, e.g. `chmod 0400` (or 0440 for a group)",
        path.display()
    )]
    FileWorldReadable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// `${file:PATH}` names a file whose content is not UTF-8 text.
    #[error("secret file {} is not UTF-8 text", .0.display())]
    FileNotUtf8(PathBuf),
}

impl EnvError {
    /// The secret file the error is about, so a config error can point at its reference.
    pub fn file(&self) -> Option<&Path> {
        match self {
            EnvError::FileMissing(path)
            | EnvError::FileNotUtf8(path)
            | EnvError::FileUnreadable { path, .. }
            | EnvError::FileWorldReadable { path, .. } => Some(path),
            EnvError::Missing(_) | EnvError::Malformed(_) => None,
        }
    }
}

/// Replaces every `${NAME}` in `text` with the variable's value (`$$` writes one `$`),
/// looking names up with `lookup` so tests need not touch the process environment, and
/// every `${file:PATH}` with the content of that file (see [`read_secret_file`]).
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, EnvError> {
    interpolate_with(text, lookup, |path| read_secret_file(Path::new(path)))
}

/// [`interpolate`] with the reader of `${file:PATH}` references given, so a caller can
/// resolve relative paths (lethe.toml resolves them against its own folder) and tests
/// can stand in for the file system.
pub fn interpolate_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
    read_file: impl Fn(&str) -> Result<String, EnvError>,
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
            if let Some(path) = name.strip_prefix(FILE_PREFIX) {
                if path.trim().is_empty() {
                    return Err(EnvError::Malformed("`${file:PATH}` needs a path"));
                }
                out.push_str(&read_file(path)?);
            } else {
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    return Err(EnvError::Malformed(
                        "a name is letters, digits and `_`, or `file:` and a path",
                    ));
                }
                let value = lookup(name).ok_or_else(|| EnvError::Missing(name.to_string()))?;
                out.push_str(&value);
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Reads a secret file as Docker and Kubernetes mount them: the whole content, less its
/// trailing newlines (`echo secret > file` adds one). A file that is missing, unreadable,
/// not UTF-8 or readable by every user (mode `o+r`) is an error naming the file only.
pub fn read_secret_file(path: &Path) -> Result<String, EnvError> {
    let unreadable = |e: std::io::Error| EnvError::FileUnreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let missing = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => EnvError::FileMissing(path.to_path_buf()),
        _ => unreadable(e),
    };
    let not_regular = || EnvError::FileUnreadable {
        path: path.to_path_buf(),
        reason: "not a regular file".to_owned(),
    };
    // Only a regular file is opened: opening a FIFO would wait for a writer forever, and
    // a device has no end. Symlinks are followed, as Kubernetes mounts secrets.
    if !std::fs::metadata(path).map_err(missing)?.is_file() {
        return Err(not_regular());
    }
    let mut file = std::fs::File::open(path).map_err(missing)?;
    // The mode is read from the file that was opened, so a swap after the check above
    // cannot slip a world-readable file past it.
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o004 != 0 {
            return Err(EnvError::FileWorldReadable {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(unreadable)?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| EnvError::FileNotUtf8(path.to_path_buf()))?;
    let kept = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(kept);
    Ok(text)
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

    /// Writes `content` to a file of mode `mode` in a fresh temporary folder.
    fn secret_file(content: &[u8], mode: u32) -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("prod_url");
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"));
        (dir, path)
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
        assert!(matches!(
            interpolate("${file:}", env),
            Err(EnvError::Malformed(_))
        ));
    }

    #[test]
    fn a_secret_file_is_read_without_its_trailing_newline() {
        let (_dir, path) = secret_file(b"postgres://u:hunter2@prod/db\n", 0o400);
        let text = format!("${{file:{}}}", path.display());
        assert_eq!(
            interpolate(&text, env).as_deref(),
            Ok("postgres://u:hunter2@prod/db")
        );
        let (_dir, path) = secret_file(b"pass word\r\n\n", 0o640);
        let text = format!("x:${{file:{}}}:${{PASS}}", path.display());
        assert_eq!(interpolate(&text, env).as_deref(), Ok("x:pass word:s3cr$t"));
    }

    #[test]
    fn a_bad_secret_file_names_the_file_and_never_its_content() {
        let (dir, path) = secret_file(b"hunter2\n", 0o644);
        let err = read_secret_file(&path);
        assert_eq!(
            err,
            Err(EnvError::FileWorldReadable {
                path: path.clone(),
                mode: 0o644
            })
        );
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("prod_url is readable by every user (mode 0644)"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");

        let gone = dir.path().join("gone");
        assert_eq!(read_secret_file(&gone), Err(EnvError::FileMissing(gone)));

        let err = read_secret_file(dir.path());
        assert!(
            matches!(&err, Err(EnvError::FileUnreadable { path, .. }) if path == dir.path()),
            "{err:?}"
        );
        // A FIFO is refused, not opened (which would wait for a writer forever).
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        assert!(made.success());
        let err = read_secret_file(&fifo);
        assert!(
            matches!(&err, Err(EnvError::FileUnreadable { reason, .. }) if reason == "not a regular file"),
            "{err:?}"
        );

        let (_dir, path) = secret_file(b"\xff\xfehunter2", 0o600);
        assert_eq!(read_secret_file(&path), Err(EnvError::FileNotUtf8(path)));
    }

    #[test]
    fn the_file_reader_can_be_replaced() {
        let read = |path: &str| match path {
            "db" => Ok("v".to_owned()),
            other => Err(EnvError::FileMissing(PathBuf::from(other))),
        };
        assert_eq!(
            interpolate_with("a${file:db}b", env, read).as_deref(),
            Ok("avb")
        );
        let err = interpolate_with("${file:nope}", env, read);
        assert_eq!(err, Err(EnvError::FileMissing(PathBuf::from("nope"))));
        assert_eq!(
            err.err().as_ref().and_then(EnvError::file),
            Some(Path::new("nope"))
        );
    }
}
