//! Every statement of the run history, in one place.
//!
//! The two backends differ only in their DDL (how an id is generated, how a time is
//! stored, and PostgreSQL's `lethe_audit` schema). The statements that read and write
//! rows are the same text for both: `$n` placeholders (SQLite reads `$1` as parameter 1),
//! unqualified table names (PostgreSQL sessions run with `search_path = lethe_audit`).

/// SQLite's tables. The `AUTOINCREMENT` keyword makes ids strictly increasing even after
/// rows are deleted; times are RFC 3339 text in UTC, which sorts as time does.
pub const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        triggered_by TEXT NOT NULL,
        target TEXT NOT NULL,
        profile TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        outcome TEXT NOT NULL
            CHECK (outcome IN ('running', 'succeeded', 'failed', 'cancelled', 'skipped')),
        error TEXT,
        row_count BIGINT,
        byte_count BIGINT,
        config_sha256 TEXT NOT NULL,
        rules_sha256 TEXT
    )",
    "CREATE INDEX IF NOT EXISTS runs_target ON runs (target, id)",
    "CREATE INDEX IF NOT EXISTS runs_trigger ON runs (triggered_by, started_at)",
    "CREATE TABLE IF NOT EXISTS run_tables (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        schema_name TEXT NOT NULL,
        table_name TEXT NOT NULL,
        row_count BIGINT NOT NULL,
        byte_count BIGINT NOT NULL,
        PRIMARY KEY (run_id, ordinal)
    )",
];

/// PostgreSQL's tables, in the `lethe_audit` schema. Run in one transaction under an
/// advisory lock, so that two processes creating them at once do not collide.
pub const POSTGRES_SCHEMA: &[&str] = &[
    "SELECT pg_advisory_xact_lock(7390562418)",
    "CREATE SCHEMA IF NOT EXISTS lethe_audit",
    "CREATE TABLE IF NOT EXISTS lethe_audit.runs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        triggered_by TEXT NOT NULL,
        target TEXT NOT NULL,
        profile TEXT,
        started_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ,
        outcome TEXT NOT NULL
            CHECK (outcome IN ('running', 'succeeded', 'failed', 'cancelled', 'skipped')),
        error TEXT,
        row_count BIGINT,
        byte_count BIGINT,
        config_sha256 TEXT NOT NULL,
        rules_sha256 TEXT
    )",
    "CREATE INDEX IF NOT EXISTS runs_target ON lethe_audit.runs (target, id)",
    "CREATE INDEX IF NOT EXISTS runs_trigger ON lethe_audit.runs (triggered_by, started_at)",
    "CREATE TABLE IF NOT EXISTS lethe_audit.run_tables (
        run_id BIGINT NOT NULL REFERENCES lethe_audit.runs (id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        schema_name TEXT NOT NULL,
        table_name TEXT NOT NULL,
        row_count BIGINT NOT NULL,
        byte_count BIGINT NOT NULL,
        PRIMARY KEY (run_id, ordinal)
    )",
    // Added after the first release: histories made before it gain the column here.
    "ALTER TABLE lethe_audit.run_tables ADD COLUMN IF NOT EXISTS seconds DOUBLE PRECISION",
    "ALTER TABLE lethe_audit.runs ADD COLUMN IF NOT EXISTS host TEXT",
    "ALTER TABLE lethe_audit.runs ADD COLUMN IF NOT EXISTS pid BIGINT",
];

/// Whether an SQLite history already has `run_tables.seconds` (SQLite has no `ADD
/// COLUMN IF NOT EXISTS`): 0 for a file made before the column was added.
pub const SQLITE_HAS_SECONDS: &str =
    "SELECT count(*) FROM pragma_table_info('run_tables') WHERE name = 'seconds'";

/// Adds each table's copy time to an SQLite history made before it was kept.
pub const SQLITE_ADD_SECONDS: &str = "ALTER TABLE run_tables ADD COLUMN seconds REAL";

/// Whether an SQLite history already has `runs.host` and `runs.pid`.
pub const SQLITE_HAS_PROCESS: &str =
    "SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'host'";

/// Adds the process of each run to an SQLite history made before it was kept.
pub const SQLITE_ADD_PROCESS: &str =
    "ALTER TABLE runs ADD COLUMN host TEXT; ALTER TABLE runs ADD COLUMN pid BIGINT";

/// The runs of a target still `running` that this host's processes other than `$3`
/// recorded: the ones whose process is gone died without recording their end.
pub const RUNNING_HERE: &str = "SELECT id, pid FROM runs
    WHERE target = $1 AND outcome = 'running' AND host = $2 AND pid IS NOT NULL AND pid <> $3";

/// Records that a run's process died before it could record how the run ended.
pub const CLOSE_DEAD_RUN: &str = "UPDATE runs SET ended_at = $2, outcome = 'failed', error = $3
    WHERE id = $1 AND outcome = 'running'";

/// Records a run as it starts, with the host and pid of the process running it; returns
/// its id.
pub const INSERT_RUN: &str = "INSERT INTO runs
    (triggered_by, target, profile, started_at, outcome, config_sha256, rules_sha256, host, pid)
    VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8)
    RETURNING id";

/// Records how a run ended. A rules fingerprint known only at the end fills in one that
/// was not known at the start.
pub const FINISH_RUN: &str = "UPDATE runs
    SET ended_at = $2, outcome = $3, error = $4, row_count = $5, byte_count = $6,
        rules_sha256 = COALESCE($7, rules_sha256)
    WHERE id = $1";

/// One table's figures for a finished run.
pub const INSERT_TABLE: &str = "INSERT INTO run_tables
    (run_id, ordinal, schema_name, table_name, row_count, byte_count, seconds)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The columns every read of `runs` returns, in the order [`super::read_run`] reads them.
macro_rules! run_columns {
    () => {
        "SELECT id, triggered_by, target, profile, started_at, ended_at, outcome, error, \
         row_count, byte_count, config_sha256, rules_sha256 FROM runs "
    };
}

/// The newest runs first, of every target (`$1` is NULL) or of one.
pub const LIST_RUNS: &str = concat!(
    run_columns!(),
    "WHERE ($1 IS NULL OR target = $1) ORDER BY id DESC LIMIT $2"
);

/// One run by id.
pub const GET_RUN: &str = concat!(run_columns!(), "WHERE id = $1");

/// The per-table figures of the runs with ids in `$1..=$2`, in plan order.
pub const TABLES_OF_RUNS: &str = "SELECT run_id, schema_name, table_name, row_count, byte_count,
    seconds FROM run_tables WHERE run_id BETWEEN $1 AND $2 ORDER BY run_id, ordinal";

/// When a trigger last started a run, whatever its outcome.
pub const LAST_STARTED: &str =
    "SELECT started_at FROM runs WHERE triggered_by = $1 ORDER BY started_at DESC LIMIT 1";
