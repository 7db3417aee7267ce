//! Database engines behind one contract. The refresh (`crate::pipeline`) is written once
//! against these traits; each engine's folder implements all of them:
//!
//! - [`Snapshot`]: the source read-only at one instant: its catalog, its schema as the
//!   engine rebuilds it, and [`Reader`]s that stream tables out inside that instant;
//! - [`Target`]: the dev or staging database, locked for one run, with a shadow copy built
//!   beside the live one ([`Writer`]s stream rows in), completed, checked, and swapped in
//!   whole, or discarded; and the previous copy swapped back by a rollback.
//!
//! Rows travel as the engine's [`Engine::Batch`] (COPY text on PostgreSQL, typed cells on
//! MySQL and SQLite); the masking between reader and writer is the pipeline's.
//!
//! An engine is added as one folder here that implements these traits, plus its line in
//! [`Kind`] and its arm in [`with_engine!`], where the kind picks the type.

mod cells;
mod error;
mod holder;
pub mod mysql;
pub mod postgres;
pub mod sqlite;

pub use error::Error;
pub use holder::{Held, Holder, host_name};

use std::fmt;
use std::future::Future;

use futures_util::Stream;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use crate::catalog::{Column, ForeignKey, Table, TableName};
use crate::config::{Config, TargetConfig};
use crate::rows::Batch;
use crate::subset::{Dialect, Selection};

/// Which engine a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `postgres://` or `postgresql://` (and anything else libpq reads).
    Postgres,
    /// `mysql://` or `mariadb://`.
    Mysql,
    /// `sqlite://<file>` or `sqlite:<file>`.
    Sqlite,
}

impl Kind {
    /// The engine of `url`, by its scheme.
    pub fn of(url: &SecretString) -> Self {
        let url = url.expose_secret();
        if url.starts_with("sqlite:") {
            Kind::Sqlite
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Kind::Mysql
        } else {
            Kind::Postgres
        }
    }

    /// The engine's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgres => postgres::Postgres::NAME,
            Kind::Mysql => mysql::Mysql::NAME,
            Kind::Sqlite => sqlite::Sqlite::NAME,
        }
    }
}

/// Runs `$body` with `$engine` naming the engine type of `$kind`: the one place where a
/// [`Kind`] picks its implementation, so the code after it is written once, generically.
macro_rules! with_engine {
    ($kind:expr, $engine:ident => $body:expr) => {
        match $kind {
            $crate::engine::Kind::Postgres => {
                type $engine = $crate::engine::postgres::Postgres;
                $body
            }
            $crate::engine::Kind::Mysql => {
                type $engine = $crate::engine::mysql::Mysql;
                $body
            }
            $crate::engine::Kind::Sqlite => {
                type $engine = $crate::engine::sqlite::Sqlite;
                $body
            }
        }
    };
}
pub(crate) use with_engine;

/// One engine: the types of its sessions, tied together so that a refresh written once
/// can only ever hand a snapshot, a target and their rows to the engine they belong to.
pub trait Engine: Sized + Send + Sync + 'static {
    /// The engine's name, for messages.
    const NAME: &'static str;
    /// The source at one instant.
    type Snapshot: Snapshot<Self>;
    /// A connection inside the snapshot that streams tables out.
    type Reader: Reader<Self>;
    /// The source's schema as this engine rebuilds it in a shadow.
    type Schema: Send + Sync;
    /// The target, locked for one run.
    type Target: Target<Self>;
    /// A connection that streams rows into the shadow.
    type Writer: Writer<Self>;
    /// Rows on their way from a reader to a writer.
    type Batch: Batch;
    /// The engine's SQL, for the queries of a subset.
    const DIALECT: &'static dyn Dialect;
}

/// Why a snapshot is opened: a plan only reads the catalog; a refresh also locks the
/// tables it copies against DDL for as long as it reads them (where the engine can).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `lethe plan`, `lethe check`, `lethe verify`.
    Plan,
    /// `lethe refresh`, reading with up to `readers` connections at once (an engine that
    /// needs its readers' snapshots opened together opens them now).
    Refresh {
        /// The most readers the copy will ask for (`--jobs`).
        readers: usize,
    },
}

/// The source's tables at the snapshot's instant, and the schemas (namespaces) copied.
#[derive(Debug)]
pub struct SourceCatalog {
    /// Every table of the copied schemas.
    pub tables: Vec<Table>,
    /// The copied schemas (PostgreSQL schemas; the database for MySQL; `main` for SQLite).
    pub schemas: Vec<String>,
    /// The foreign keys between tables of the copied schemas, which a subset follows.
    pub foreign_keys: Vec<ForeignKey>,
}

/// The source, read-only, at one instant. No method writes: "production is read-only"
/// holds by construction, and the connections are opened read-only as well.
pub trait Snapshot<E: Engine>: Sized + Send + Sync {
    /// Opens the source and its snapshot, and reads the catalog inside it.
    fn open(
        config: &Config,
        purpose: Purpose,
    ) -> impl Future<Output = Result<(Self, SourceCatalog), Error>> + Send;

    /// Whether the source answers at all (a daemon's readiness probe): connects and asks
    /// the cheapest question, opening no snapshot.
    fn reachable(config: &Config) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether `value` is a value of `column`'s type, for a `constant` rule: checked on the
    /// source at plan time, so that no row fails later. Engines that store any text in
    /// any column (SQLite) or convert on write (MySQL) accept every value.
    fn accepts(
        &mut self,
        value: &str,
        column: &Column,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The DDL that rebuilds `tables` (and what belongs to them: indexes, keys,
    /// sequences, views, triggers) in a shadow; refuses what the engine cannot rebuild.
    fn schema(
        &mut self,
        config: &Config,
        tables: &[&Table],
    ) -> impl Future<Output = Result<E::Schema, Error>> + Send;

    /// How many readers may stream at once inside this snapshot.
    fn readers(&self) -> usize;

    /// Splits `table` into pieces that readers stream at once inside this snapshot (each
    /// on its own connection, or taking turns on one), so one big table is not copied by
    /// one worker however many there are. At most `split.pieces`, none estimated below
    /// `split.min_bytes`; the pieces together hold every row exactly once. An engine that cannot split a table
    /// (or a table too small to be worth it) returns it whole, as one piece: the default.
    fn split(
        &mut self,
        table: &Table,
        split: Split,
    ) -> impl Future<Output = Result<Vec<Part>, Error>> + Send {
        let _ = (table, split);
        async { Ok(vec![Part::WHOLE]) }
    }

    /// How many rows of `table` `condition` (a subset's `where`) chooses, as the source
    /// estimates it. A condition the source refuses (it does not parse, names an unknown
    /// column) is `Ok(Err(refusal))`; the snapshot stays usable.
    fn estimate(
        &mut self,
        table: &Table,
        condition: &str,
    ) -> impl Future<Output = Result<Result<u64, Refusal>, Error>> + Send;

    /// Opens a reader that sees exactly this snapshot.
    fn reader(&self) -> impl Future<Output = Result<E::Reader, Error>> + Send;

    /// Ends the snapshot (and releases what it holds on the source).
    fn close(self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Why the source refused a subset's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The source's message.
    pub message: String,
    /// The character of the condition it points at (0-based), when it says.
    pub offset: Option<usize>,
}

/// What a reader streamed out of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streamed {
    /// Rows read.
    pub rows: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// How finely [`Snapshot::split`] may cut a table: pieces cost a connection on each side
/// and (PostgreSQL) the single-writer load, so only tables big enough are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// The most pieces: the copy's workers, as more could not run at once.
    pub pieces: usize,
    /// The smallest piece worth its own reader and writer, in bytes on disk.
    pub min_bytes: u64,
}

impl Split {
    /// How many key ranges to cut a table of `bytes` with `keys` distinct keys into: no
    /// more than the workers, no piece under the minimum, no more than the keys.
    #[must_use]
    pub fn ranges(self, bytes: u64, keys: u64) -> usize {
        let by_size = bytes / self.min_bytes.max(1);
        let most = u64::try_from(self.pieces).unwrap_or(u64::MAX);
        usize::try_from(by_size.min(most).min(keys).max(1)).unwrap_or(1)
    }

    /// A table of `bytes` whose keys run from `first` to `last` (inclusive), cut into
    /// [`Split::ranges`] pieces of keys of about equal length, the last one open-ended;
    /// whole when one piece is all it is worth.
    #[must_use]
    pub fn cut(self, bytes: u64, first: u64, last: u64) -> Vec<Part> {
        let pieces = self.ranges(bytes, last.saturating_sub(first).saturating_add(1));
        if pieces < 2 {
            return vec![Part::WHOLE];
        }
        Span::cover(first, last.saturating_add(1), pieces)
            .map(|span| Part {
                from: None,
                span: Some(span),
            })
            .collect()
    }
}

/// One piece of a table, as [`Snapshot::split`] cut it: read on its own, appended to the
/// same shadow table as the table's other pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The relation the piece reads, when it is not the table itself: PostgreSQL reads a
    /// partitioned table partition by partition (the rows still go to the table's shadow).
    pub from: Option<TableName>,
    /// The slice of that relation, in the engine's own unit (PostgreSQL: heap pages);
    /// `None` is all of it.
    pub span: Option<Span>,
}

impl Part {
    /// The whole table, in one piece.
    pub const WHOLE: Part = Part {
        from: None,
        span: None,
    };
}

/// A slice of a relation's storage: from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first unit read.
    pub start: u64,
    /// The first unit not read; `None` reads to the end, so that storage grown past the
    /// size the split was made from is still read (by the last piece).
    pub end: Option<u64>,
}

impl Span {
    /// `pieces` spans of about equal length that cover `start..end` and, through the last
    /// one's open end, everything after it.
    pub fn cover(start: u64, end: u64, pieces: usize) -> impl Iterator<Item = Span> {
        let n = u64::try_from(pieces.max(1)).unwrap_or(1);
        let length = u128::from(end.saturating_sub(start));
        let bound = move |i: u64| {
            start + u64::try_from(length * u128::from(i) / u128::from(n)).unwrap_or(0)
        };
        (0..n).map(move |i| Span {
            start: bound(i),
            end: (i + 1 < n).then(|| bound(i + 1)),
        })
    }
}

/// What a reader streams out of the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct TableRead<'a> {
    /// The table.
    pub table: &'a Table,
    /// Its columns to read, in the order the writer takes them. Generated columns are
    /// never asked for: the target computes them.
    pub columns: &'a [&'a Column],
    /// The piece of the table to read: only ever one that this engine's
    /// [`Snapshot::split`] made ([`Part::WHOLE`] for an engine that never splits).
    pub part: &'a Part,
    /// The rows a subset copies (with `part` always whole); `None` reads every row.
    pub selection: Option<&'a Selection>,
    /// What the masking stage does with the rows, so the engine can hand them over in
    /// its fastest form that the masking can still read.
    pub masking: crate::plan::Masking<'a>,
}

/// How a writer loads one piece: alone (the table's only piece, so the engine may load
/// it in one transaction that empties it first, as PostgreSQL's `COPY FREEZE` needs), or
/// as one of several writers appending pieces of the same table at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// The table's only writer.
    Alone,
    /// One of the table's writers: append, never empty it.
    Shared,
}

/// Streams tables out of the snapshot.
pub trait Reader<E: Engine>: Send + 'static {
    /// Sends the rows of `read` into `out`, in batches of bounded size, until the table
    /// ends or `out` is closed (the writer failed: its error is the one reported).
    fn read(
        &mut self,
        read: TableRead<'_>,
        out: mpsc::Sender<E::Batch>,
    ) -> impl Future<Output = Result<Streamed, Error>> + Send;
}

/// The dev or staging database, locked for one run. Every write goes into the shadow
/// copy; only [`Target::swap`] changes what the database's users see.
pub trait Target<E: Engine>: Sized + Send + Sync {
    /// Whether `after_refresh` hooks can run in this engine's shadow.
    const HOOKS: bool;
    /// Whether [`Target::check_shadow`] compares with the source, which then stays open
    /// (and locked) until the checks are done rather than closing after the copy.
    const CHECKS_READ_SOURCE: bool;

    /// Takes the target for one run: refuses a target that is the source (or any of its
    /// work copies), takes the run lock (one run per target at a time: a lock another run
    /// holds is waited for up to the target's `lock_wait`, then `Busy`, saying who holds
    /// it), marked with `holder` where the next run can read it, and drops what a killed
    /// run left. Changes nothing users see.
    fn lock(
        config: &Config,
        target: &TargetConfig,
        source: &E::Snapshot,
        schemas: &[String],
        holder: &Holder,
    ) -> impl Future<Output = Result<Self, Error>> + Send;

    /// Creates the empty shadow: tables without indexes or keys, ready for rows.
    fn create_shadow(
        &mut self,
        schema: &E::Schema,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// How many writers may load at once.
    fn writers(&self) -> usize;

    /// Opens a writer into the shadow.
    fn writer(&self) -> impl Future<Output = Result<E::Writer, Error>> + Send;

    /// Completes the shadow after its rows: indexes and keys (on up to `jobs` connections),
    /// foreign keys, sequences, views, triggers.
    fn finish_shadow(
        &mut self,
        schema: &E::Schema,
        jobs: usize,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Checks the shadow before it may be swapped in: the rows read from the source
    /// (`copied`) are all there, and every constraint holds (no worse than in `source`,
    /// given when [`Target::CHECKS_READ_SOURCE`]). Returns what failed; nothing failed
    /// is an empty list.
    fn check_shadow(
        &mut self,
        schema: &E::Schema,
        copied: &[(TableName, u64)],
        source: Option<&E::Snapshot>,
        jobs: usize,
    ) -> impl Future<Output = Result<Vec<CheckFailure>, Error>> + Send;

    /// Runs an `after_refresh` hook (the file's text) in the shadow.
    fn run_hook(&mut self, sql: &str) -> impl Future<Output = Result<(), HookError>> + Send;

    /// Makes the shadow live in one atomic step; the replaced copy is kept for a rollback
    /// when `keep_previous`. Once begun it completes or changes nothing.
    fn swap(
        &mut self,
        schema: &E::Schema,
        keep_previous: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Drops this run's shadow after a failure; the live copy was never touched.
    fn discard(&mut self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Swaps the previous copy back in (the live one becomes the previous), under the same
    /// lock as a refresh, reading no source.
    fn rollback(target: &TargetConfig) -> impl Future<Output = Result<Rollback, Error>> + Send;
}

/// Why a load stopped: the engine failed, or the batches' producer (the masking stage)
/// did, and the load was aborted.
#[derive(Debug)]
pub enum WriteError<X> {
    /// The batches' stream yielded this error; the load was aborted.
    Upstream(X),
    /// The target refused or failed.
    Engine(Error),
}

impl<X> From<Error> for WriteError<X> {
    fn from(error: Error) -> Self {
        WriteError::Engine(error)
    }
}

/// Streams rows into the shadow.
pub trait Writer<E: Engine>: Send + 'static {
    /// Loads `batches` into the shadow table of `table` (named as in the source), in the
    /// order `columns` were read, and returns the rows the target confirmed. With
    /// [`Load::Shared`] other writers load other pieces of the table at the same time.
    fn write<S, X>(
        &mut self,
        table: &Table,
        columns: &[&Column],
        load: Load,
        batches: S,
    ) -> impl Future<Output = Result<u64, WriteError<X>>> + Send
    where
        S: Stream<Item = Result<E::Batch, X>> + Send,
        X: Send;

    /// Says that every row of `table` is in (all its pieces): the writer may build now
    /// what depends on that table alone (indexes, keys), while other tables still load,
    /// rather than after the whole copy. Nothing to do by default.
    fn table_loaded(&mut self, table: &Table) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = table;
        async { Ok(()) }
    }
}

/// A pre-swap check that failed: the table, domain or sequence (by its live name) and
/// what is wrong with it.
#[derive(Debug, Clone)]
pub struct CheckFailure {
    /// The object, named as it is after the swap.
    pub object: TableName,
    /// What is wrong. Never holds a cell value.
    pub problem: String,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

/// Why an `after_refresh` hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A statement of the hook failed; `position` is the 1-based character offset into the
    /// hook's text that the server reported, if any.
    #[error("{failure}")]
    Sql {
        /// The error, cell values redacted.
        failure: String,
        /// Where in the file.
        position: Option<usize>,
    },
    /// The hook wrote to (or altered) tables of the live copy.
    #[error(
        "it changed the live {} (names qualified with a copied schema name reach the live copy: write them unqualified; the hook runs with search_path set to the shadow)",
        if .0.len() == 1 { format!("table {}", .0[0]) } else { format!("tables {}", .0.join(", ")) }
    )]
    WroteLive(Vec<String>),
    /// The hook committed or rolled back lethe's transaction itself.
    #[error(
        "it ended the transaction it runs in (COMMIT or ROLLBACK in the file); lethe runs each hook in a transaction of its own and commits it"
    )]
    EndedTransaction,
    /// Setting up or finishing the hook's session failed.
    #[error(transparent)]
    Database(#[from] Error),
}

/// What `rollback` found, or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// The previous copy of these schemas is live again; the replaced one is the previous copy.
    Done {
        /// The schemas that changed places.
        schemas: Vec<String>,
    },
    /// No swap by lethe is recorded in this target.
    NeverSwapped,
    /// The last swap kept no previous copy (`keep_previous = 0`).
    NoPrevious {
        /// The schemas of the last swap.
        schemas: Vec<String>,
    },
    /// Something that the last swap did not make stands where the exchange must put
    /// another; nothing was changed.
    Blocked {
        /// What is in the way.
        schema: String,
        /// Why it is not lethe's to move.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_scheme_picks_the_engine() {
        let kind = |url: &str| Kind::of(&SecretString::from(url.to_owned()));
        assert_eq!(kind("postgres://u@h/db"), Kind::Postgres);
        assert_eq!(kind("postgresql://u@h/db"), Kind::Postgres);
        assert_eq!(kind("mysql://u@h/db"), Kind::Mysql);
        assert_eq!(kind("mariadb://h/db"), Kind::Mysql);
        assert_eq!(kind("sqlite://dev.db"), Kind::Sqlite);
        assert_eq!(kind("sqlite:dev.db"), Kind::Sqlite);
        assert_eq!(Kind::Mysql.name(), "MySQL/MariaDB");
    }
}
