//! `lethe.toml`: where production is, which targets exist, and the masking key.
//!
//! Secrets come from the environment through `${NAME}`, or from mounted secret files
//! through `${file:PATH}`, and are held as [`SecretString`] from the moment they are
//! read, so no log or error can print them.

mod env;
mod location;
mod subset;
mod timeouts;

pub use env::{EnvError, interpolate, interpolate_with, read_secret_file};
pub use location::{ConfigError, ConfigErrors, Location};
pub use subset::{Dangling, Select, Subset, SubsetEntry, WhereText};
pub use timeouts::Timeouts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use sha2::Digest;
use toml::Spanned;

/// The shortest masking key accepted: shorter keys make pseudonyms guessable.
const MIN_KEY_BYTES: usize = 16;
/// The most previous copies a target keeps (one: `lethe_prev_<schema>`).
const MAX_KEEP_PREVIOUS: i64 = 1;

/// A loaded, interpolated and checked `lethe.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; relative paths in it are relative to its folder.
    pub file: PathBuf,
    /// Production: read, never written.
    pub source: SourceConfig,
    /// Dev and staging databases, by the name the CLI uses.
    pub targets: BTreeMap<String, TargetConfig>,
    /// How values are masked.
    pub masking: MaskingConfig,
    /// How `lethe daemon` listens and behaves.
    pub daemon: DaemonConfig,
    /// Where the run history is kept.
    pub audit: AuditConfig,
    /// sha256 of the file's bytes as read, so the run history says which config a run used.
    pub sha256: [u8; 32],
}

/// `[daemon]`: the long-running scheduler and its HTTP API.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Where the HTTP API listens (default `127.0.0.1:7070`).
    pub listen: String,
    /// `development` (human logs, debug detail) or `production` (JSON logs at info, and
    /// the API refuses to start without tokens).
    pub mode: Mode,
    /// Tries of a run that fails for a transient reason (dropped connection,
    /// serialization failure), the first included (default 3).
    pub attempts: u32,
    /// Wait before the first retry, doubled for each next one (default 30 s).
    pub retry_backoff: std::time::Duration,
}

/// How the daemon presents itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Verbose, human-readable logs.
    Development,
    /// JSON logs at info; an API without auth is refused.
    Production,
}

/// `[audit]`: the run history.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// `sqlite://<file>` (default: `lethe-audit.sqlite` beside lethe.toml) or a
    /// `postgres://` URL; may hold a password.
    pub url: SecretString,
}

/// The production database.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Connection URL; may hold a password.
    pub url: SecretString,
    /// The schemas to copy; every non-system schema when not given.
    pub schemas: Option<Vec<String>>,
    /// How long the source's connections, statements, table locks and streams may wait.
    pub timeouts: Timeouts,
}

/// One dev or staging database.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Connection URL; may hold a password.
    pub url: SecretString,
    /// How many previous copies stay beside the live one after a swap, for `lethe
    /// rollback`: 1 (the default) keeps `lethe_prev_<schema>`, 0 drops it.
    pub keep_previous: u32,
    /// SQL files run inside the shadow before the swap, in this order.
    pub after_refresh: Vec<HookFile>,
    /// Run the leak check (`lethe verify`) on the shadow before the swap; a leak blocks it.
    pub verify: bool,
    /// The rules profile (`masking-rules/profiles/<name>/`) whose overrides apply to this
    /// target; `None` uses the default rules alone.
    pub profile: Option<String>,
    /// How long the target's connections, statements and streams may wait, and how long a
    /// run waits for another run's lock on it.
    pub timeouts: Timeouts,
    /// The slice of production this target gets; empty: all of it.
    pub subset: Subset,
}

/// One `after_refresh` SQL file.
#[derive(Debug, Clone)]
pub struct HookFile {
    /// The file, relative paths resolved against the config file's folder.
    pub path: PathBuf,
    /// Where lethe.toml names it, for errors found before the run.
    pub named_at: Location,
}

impl HookFile {
    /// Reads the file's SQL. An unreadable file is a config error, found before anything
    /// is touched.
    pub fn read(&self) -> Result<String, ConfigError> {
        std::fs::read_to_string(&self.path).map_err(|e| {
            ConfigError::at(
                self.named_at.clone(),
                format!("after_refresh hook {}: {e}", self.path.display()),
            )
        })
    }
}

/// The masking key and where the rules are.
#[derive(Debug, Clone)]
pub struct MaskingConfig {
    /// The HMAC key behind every pseudonym.
    pub key: SecretString,
    /// The folder of `<schema>.toml` rule files.
    pub rules_dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    source: RawSource,
    #[serde(default)]
    targets: BTreeMap<String, Spanned<RawTarget>>,
    masking: RawMasking,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    listen: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    attempts: Option<Spanned<i64>>,
    retry_backoff_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: Spanned<String>,
    schemas: Option<Vec<String>>,
    connect_timeout: Option<Spanned<String>>,
    statement_timeout: Option<Spanned<String>>,
    lock_wait: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    url: Spanned<String>,
    keep_previous: Option<Spanned<i64>>,
    #[serde(default)]
    after_refresh: Vec<Spanned<String>>,
    #[serde(default)]
    verify: bool,
    profile: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    statement_timeout: Option<Spanned<String>>,
    lock_wait: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    #[serde(default)]
    subset: BTreeMap<String, Spanned<subset::RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMasking {
    key: Spanned<String>,
    rules: Option<Spanned<String>>,
}

impl Config {
    /// Reads and checks a config file, interpolating `${NAME}` from the process environment.
    pub fn load(file: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError::in_file(file, format!("cannot read: {e}")))?;
        Self::parse(file, &text, env::from_process)
    }

    /// Parses config text; `lookup` resolves `${NAME}`.
    pub fn parse(
        file: &Path,
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
        let base = file.parent().unwrap_or(Path::new("."));
        // `${file:PATH}`: a relative path is relative to this file's folder, as every path here.
        let read_file = |path: &str| env::read_secret_file(&base.join(path));
        let interpolate = |value: &str| interpolate_with(value, &lookup, read_file);
        // Where an interpolation error is: the `${file:...}` reference itself when it is
        // written plainly in the string, else the string.
        let error_at = |value: &Spanned<String>, error: &EnvError| {
            reference_location(file, text, &value.span(), error)
        };
        let mut errors = Vec::new();
        let mut secret = |value: &Spanned<String>, what: &str| -> SecretString {
            match interpolate(value.get_ref()) {
                Ok(v) if v.trim().is_empty() => {
                    errors.push(ConfigError::at(
                        Location::from_span(file, text, &value.span()),
                        format!("{what} is empty"),
                    ));
                    SecretString::from(String::new())
                }
                Ok(v) => SecretString::from(v),
                Err(e) => {
                    errors.push(ConfigError::at(error_at(value, &e), format!("{what}: {e}")));
                    SecretString::from(String::new())
                }
            }
        };

        // Problems other than interpolation (which `secret` records in `errors`).
        let mut target_errors = Vec::new();
        let source_timeouts = timeouts::RawTimeouts {
            connect_timeout: &raw.source.connect_timeout,
            statement_timeout: &raw.source.statement_timeout,
            lock_wait: &raw.source.lock_wait,
            idle_timeout: &raw.source.idle_timeout,
        };
        let source = SourceConfig {
            url: secret(&raw.source.url, "source url"),
            timeouts: timeouts::timeouts(
                &source_timeouts,
                "[source]",
                file,
                text,
                &mut target_errors,
            ),
            schemas: raw.source.schemas,
        };
        let mut targets = BTreeMap::new();
        for (name, t) in &raw.targets {
            let t = t.get_ref();
            let url = secret(&t.url, &format!("target `{name}` url"));
            let keep_previous = match &t.keep_previous {
                None => 1,
                Some(n) => match u32::try_from(*n.get_ref()) {
                    Ok(k) if i64::from(k) <= MAX_KEEP_PREVIOUS => k,
                    _ => {
                        target_errors.push(ConfigError::at(
                            Location::from_span(file, text, &n.span()),
                            format!(
                                "target `{name}`: keep_previous must be 0 (drop the replaced copy) \
                                 or 1 (keep it for `lethe rollback`)"
                            ),
                        ));
                        1
                    }
                },
            };
            let mut after_refresh = Vec::new();
            for hook in &t.after_refresh {
                let named_at = Location::from_span(file, text, &hook.span());
                match interpolate(hook.get_ref()) {
                    Ok(relative) => {
                        let path = base.join(relative);
                        if path.is_file() {
                            after_refresh.push(HookFile { path, named_at });
                        } else {
                            target_errors.push(ConfigError::at(
                                named_at,
                                format!(
                                    "target `{name}`: after_refresh hook {} is not a file",
                                    path.display()
                                ),
                            ));
                        }
                    }
                    Err(e) => target_errors.push(ConfigError::at(
                        error_at(hook, &e),
                        format!("target `{name}` after_refresh: {e}"),
                    )),
                }
            }
            let profile = t.profile.as_ref().and_then(|p| {
                let valid = !p.get_ref().is_empty()
                    && p.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    target_errors.push(ConfigError::at(
                        Location::from_span(file, text, &p.span()),
                        format!(
                            "target `{name}`: a profile is a folder name under \
                             masking-rules/profiles/ (letters, digits, `_`, `-`)"
                        ),
                    ));
                }
                valid.then(|| p.get_ref().clone())
            });
            let raw_timeouts = timeouts::RawTimeouts {
                connect_timeout: &t.connect_timeout,
                statement_timeout: &t.statement_timeout,
                lock_wait: &t.lock_wait,
                idle_timeout: &t.idle_timeout,
            };
            let timeouts = timeouts::timeouts(
                &raw_timeouts,
                &format!("target `{name}`"),
                file,
                text,
                &mut target_errors,
            );
            let subset = subset::subset(&t.subset, name, file, text, &mut target_errors);
            targets.insert(
                name.clone(),
                TargetConfig {
                    url,
                    keep_previous,
                    after_refresh,
                    verify: t.verify,
                    profile,
                    timeouts,
                    subset,
                },
            );
        }
        let key = secret(&raw.masking.key, "masking key");
        let audit_url = raw.audit.url.as_ref().map(|url| secret(url, "audit url"));
        let daemon = daemon_config(&raw.daemon, file, text, &mut target_errors);
        errors.extend(target_errors);

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        if secrecy::ExposeSecret::expose_secret(&key).len() < MIN_KEY_BYTES {
            return Err(ConfigError::at(
                Location::from_span(file, text, &raw.masking.key.span()),
                format!(
                    "masking key is shorter than {MIN_KEY_BYTES} bytes; use a long random secret"
                ),
            )
            .into());
        }

        let rules_dir = match &raw.masking.rules {
            Some(dir) => {
                let dir = interpolate(dir.get_ref()).map_err(|e| {
                    ConfigError::at(error_at(dir, &e), format!("masking rules: {e}"))
                })?;
                base.join(dir)
            }
            None => base.join("masking-rules"),
        };

        let audit = AuditConfig {
            url: audit_url.unwrap_or_else(|| {
                SecretString::from(format!(
                    "sqlite://{}",
                    base.join("lethe-audit.sqlite").display()
                ))
            }),
        };
        Ok(Self {
            file: file.to_path_buf(),
            source,
            targets,
            masking: MaskingConfig { key, rules_dir },
            daemon,
            audit,
            sha256: sha2::Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// The target of that name, or an error that lists the names there are.
    pub fn target(&self, name: &str) -> Result<&TargetConfig, ConfigError> {
        self.targets.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.targets.keys().map(String::as_str).collect();
            ConfigError::in_file(
                &self.file,
                format!(
                    "no target named `{name}` (targets: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })
    }
}

/// Where an interpolation error points: at the `${file:PATH}` reference it is about when
/// the TOML string holds it as written (no escape in it), else at the string's start.
fn reference_location(
    file: &Path,
    text: &str,
    span: &std::ops::Range<usize>,
    error: &EnvError,
) -> Location {
    let written = text.get(span.clone()).unwrap_or("");
    let offset = error.file().and_then(|secret| {
        // The error names the path resolved against lethe.toml's folder; the reference
        // may have been written relative to it.
        let base = file.parent().unwrap_or(Path::new("."));
        let relative = secret.strip_prefix(base).unwrap_or(secret);
        [secret, relative]
            .into_iter()
            .filter_map(|p| p.to_str())
            .find_map(|p| written.find(&format!("${{{}{p}}}", env::FILE_PREFIX)))
    });
    Location::from_offset(file, text, span.start + offset.unwrap_or(0))
}

/// Reads `[daemon]`, recording what is wrong in `errors` and using defaults meanwhile.
fn daemon_config(
    raw: &RawDaemon,
    file: &Path,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> DaemonConfig {
    let at = |span: std::ops::Range<usize>| Location::from_span(file, text, &span);
    let mode = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("development", _)) => Mode::Development,
        Some(("production", _)) => Mode::Production,
        Some((_, span)) => {
            errors.push(ConfigError::at(
                at(span),
                "daemon mode is `development` or `production`",
            ));
            Mode::Development
        }
    };
    let mut positive = |value: &Option<Spanned<i64>>, what: &str, default: u32| match value {
        None => default,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(v) if v > 0 => v,
            _ => {
                errors.push(ConfigError::at(
                    at(n.span()),
                    format!("daemon {what} must be a positive whole number"),
                ));
                default
            }
        },
    };
    let attempts = positive(&raw.attempts, "attempts", 3);
    let backoff = positive(&raw.retry_backoff_secs, "retry_backoff_secs", 30);
    DaemonConfig {
        listen: raw
            .listen
            .as_ref()
            .map_or_else(|| "127.0.0.1:7070".to_owned(), |l| l.get_ref().clone()),
        mode,
        attempts,
        retry_backoff: std::time::Duration::from_secs(u64::from(backoff)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(name: &str) -> Option<String> {
        match name {
            "PROD" => Some("postgres://u:hunter2@prod/db".into()),
            "KEY" => Some("0123456789abcdef-key".into()),
            _ => None,
        }
    }

    /// The errors a config text gives, as printed.
    fn parse_error(file: &Path, text: &str) -> String {
        Config::parse(file, text, env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    const GOOD: &str = r#"
[source]
url = "${PROD}"

[targets.dev]
url = "postgres://localhost/dev"

[masking]
key = "${KEY}"
"#;

    #[test]
    fn parses_and_interpolates() {
        let config = Config::parse(Path::new("/etc/lethe/lethe.toml"), GOOD, env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.source.url.expose_secret(),
            "postgres://u:hunter2@prod/db"
        );
        assert_eq!(
            config.masking.rules_dir,
            Path::new("/etc/lethe/masking-rules")
        );
        assert!(config.target("dev").is_ok());
        let err = config
            .target("stg")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no target named `stg` (targets: dev)"),
            "{err}"
        );
    }

    #[test]
    fn missing_variable_names_file_line_and_variable_only() {
        let text = GOOD.replace("${KEY}", "${LETHE_KEY}");
        let err = parse_error(Path::new("lethe.toml"), &text);
        assert_eq!(
            err,
            "lethe.toml:9:7: masking key: environment variable `LETHE_KEY` is not set"
        );
    }

    #[test]
    fn unknown_key_and_short_key_are_errors_with_positions() {
        let text = GOOD.replace("[masking]", "[masking]\nunmaped = \"fail\"");
        let err = parse_error(Path::new("lethe.toml"), &text);
        assert!(
            err.starts_with("lethe.toml:9:1: unknown field `unmaped`"),
            "{err}"
        );

        let text = GOOD.replace("${KEY}", "short");
        let err = parse_error(Path::new("lethe.toml"), &text);
        assert!(
            err.contains("lethe.toml:9:7: masking key is shorter"),
            "{err}"
        );
        assert!(!err.contains("short\""), "{err}");
    }

    #[test]
    fn target_options_default_and_resolve_against_the_config_folder() {
        let config =
            Config::parse(Path::new("lethe.toml"), GOOD, env).unwrap_or_else(|e| panic!("{e}"));
        let dev = config.target("dev").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dev.keep_previous, 1);
        assert!(dev.after_refresh.is_empty());

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("sql")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("sql/fix.sql"), "SELECT 1;")
            .unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("lethe.toml");
        let text = GOOD.replace(
            "url = \"postgres://localhost/dev\"",
            "url = \"postgres://localhost/dev\"\nkeep_previous = 0\nafter_refresh = [\"sql/fix.sql\"]",
        );
        let config = Config::parse(&file, &text, env).unwrap_or_else(|e| panic!("{e}"));
        let dev = config.target("dev").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dev.keep_previous, 0);
        assert_eq!(dev.after_refresh.len(), 1);
        assert_eq!(dev.after_refresh[0].path, dir.path().join("sql/fix.sql"));
        assert_eq!(
            dev.after_refresh[0]
                .read()
                .unwrap_or_else(|e| panic!("{e}")),
            "SELECT 1;"
        );
    }

    #[test]
    fn bad_target_options_are_errors_with_positions() {
        let text = GOOD.replace(
            "url = \"postgres://localhost/dev\"",
            "url = \"postgres://localhost/dev\"\nkeep_previous = 3\nafter_refresh = [\"gone.sql\", \"${NOPE}.sql\"]",
        );
        let err = parse_error(Path::new("conf/lethe.toml"), &text);
        assert_eq!(
            err,
            "conf/lethe.toml:7:17: target `dev`: keep_previous must be 0 (drop the replaced copy) \
             or 1 (keep it for `lethe rollback`)\n\
             conf/lethe.toml:8:18: target `dev`: after_refresh hook conf/gone.sql is not a file\n\
             conf/lethe.toml:8:30: target `dev` after_refresh: environment variable `NOPE` is not set"
        );
        let text = GOOD.replace(
            "url = \"postgres://localhost/dev\"",
            "url = \"postgres://localhost/dev\"\nkeep_previous = -1",
        );
        let err = parse_error(Path::new("lethe.toml"), &text);
        assert!(
            err.starts_with("lethe.toml:7:17: target `dev`: keep_previous must be 0"),
            "{err}"
        );
    }

    /// A folder with a secret file `name` of `content` and `mode`.
    fn secret_dir(name: &str, content: &str, mode: u32) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    #[test]
    fn secrets_come_from_files_absolute_or_beside_the_config() {
        let dir = secret_dir("prod_url", "postgres://u:from-file@prod/db\n", 0o400);
        let absolute = dir.path().join("prod_url");
        let text = GOOD.replace("${PROD}", &format!("${{file:{}}}", absolute.display()));
        let config =
            Config::parse(Path::new("lethe.toml"), &text, env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.source.url.expose_secret(),
            "postgres://u:from-file@prod/db"
        );
        assert!(!format!("{config:?}").contains("from-file"));

        // Relative to lethe.toml's folder, and in the key too.
        std::fs::write(dir.path().join("key"), "0123456789abcdef-from-file\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(
            dir.path().join("key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o440),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = GOOD
            .replace("${PROD}", "${file:prod_url}")
            .replace("${KEY}", "${file:key}");
        let config = Config::parse(&dir.path().join("lethe.toml"), &text, env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.masking.key.expose_secret(),
            "0123456789abcdef-from-file"
        );
    }

    #[test]
    fn a_bad_secret_file_points_at_its_reference() {
        let dir = secret_dir("prod_url", "postgres://u:hunter2@prod/db\n", 0o644);
        let file = dir.path().join("lethe.toml");
        let secret = dir.path().join("prod_url");
        let text = GOOD.replace("url = \"${PROD}\"", "url = \"pre${file:prod_url}\"");
        let err = parse_error(&file, &text);
        assert_eq!(
            err,
            format!(
                "{}:3:11: source url: secret file {} is readable by every user (mode 0644); \
                 restrict it, e.g. `chmod 0400` (or 0440 for a group)",
                file.display(),
                secret.display()
            )
        );
        assert!(!err.contains("hunter2"), "{err}");

        let missing = dir.path().join("nope");
        let text = GOOD.replace("${KEY}", &format!("${{file:{}}}", missing.display()));
        let err = parse_error(Path::new("lethe.toml"), &text);
        assert_eq!(
            err,
            format!(
                "lethe.toml:9:8: masking key: secret file {} does not exist",
                missing.display()
            )
        );
    }

    #[test]
    fn timeouts_default_parse_durations_and_point_at_bad_values() {
        let config =
            Config::parse(Path::new("lethe.toml"), GOOD, env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.source.timeouts, Timeouts::default());
        let dev = config.target("dev").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dev.timeouts.lock_wait, std::time::Duration::from_secs(60));
        assert_eq!(dev.timeouts.statement, None);

        let text = GOOD
            .replace(
                "url = \"${PROD}\"",
                "url = \"${PROD}\"\nstatement_timeout = \"30m\"\nidle_timeout = \"1m 30s\"",
            )
            .replace(
                "url = \"postgres://localhost/dev\"",
                "url = \"postgres://localhost/dev\"\nlock_wait = \"0\"\nconnect_timeout = \"5s\"",
            );
        let config =
            Config::parse(Path::new("lethe.toml"), &text, env).unwrap_or_else(|e| panic!("{e}"));
        let secs = std::time::Duration::from_secs;
        assert_eq!(config.source.timeouts.statement, Some(secs(1800)));
        assert_eq!(config.source.timeouts.idle, secs(90));
        let dev = config.target("dev").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dev.timeouts.lock_wait, secs(0));
        assert_eq!(dev.timeouts.connect, secs(5));

        let text = GOOD
            .replace(
                "url = \"${PROD}\"",
                "url = \"${PROD}\"\nstatement_timeout = \"0\"\nidle_timeout = \"0s\"",
            )
            .replace(
                "url = \"postgres://localhost/dev\"",
                "url = \"postgres://localhost/dev\"\nlock_wait = \"a minute\"",
            );
        let err = parse_error(Path::new("lethe.toml"), &text);
        assert!(
            err.contains(
                "lethe.toml:5:16: [source]: idle_timeout must be longer than 0 (lethe never waits forever)"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "lethe.toml:9:13: target `dev`: lock_wait must be a duration such as \"30s\""
            ),
            "{err}"
        );
        assert!(!err.contains("statement_timeout"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let config =
            Config::parse(Path::new("lethe.toml"), GOOD, env).unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
    }

    #[test]
    fn daemon_and_audit_have_defaults_and_checked_values() {
        let config = Config::parse(Path::new("conf/lethe.toml"), GOOD, env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.daemon.listen, "127.0.0.1:7070");
        assert_eq!(config.daemon.mode, Mode::Development);
        assert_eq!(config.daemon.attempts, 3);
        assert_eq!(
            config.audit.url.expose_secret(),
            "sqlite://conf/lethe-audit.sqlite"
        );
        let text = format!(
            "{GOOD}\n[daemon]\nlisten = \"0.0.0.0:9000\"\nmode = \"production\"\nattempts = 5\n\n[audit]\nurl = \"${{PROD}}\"\n"
        );
        let config =
            Config::parse(Path::new("lethe.toml"), &text, env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.daemon.mode, Mode::Production);
        assert_eq!(config.daemon.attempts, 5);
        assert_eq!(
            config.audit.url.expose_secret(),
            "postgres://u:hunter2@prod/db"
        );
        let text = format!("{GOOD}\n[daemon]\nmode = \"prod\"\nattempts = 0\n");
        let err = parse_error(Path::new("lethe.toml"), &text);
        assert!(
            err.contains("lethe.toml:12:8: daemon mode is `development` or `production`"),
            "{err}"
        );
        assert!(
            err.contains("lethe.toml:13:12: daemon attempts must be a positive whole number"),
            "{err}"
        );
    }
}
