//! Storage behind one API for SQLite (the embedded default) and PostgreSQL (for
//! scale). One set of queries runs on both through sqlx's `Any` driver; the schema
//! has one migration folder per backend.

mod cases;
mod checkins;
mod orgs;
mod outbox;
mod sms;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::privacy::{PhoneVault, PrivacyError};
use crate::CodeError;

pub use orgs::{NewOrganization, NewPremises, OrgCreated};
pub use outbox::SendResult;
pub use sms::{InboundSms, PreparedSms, Rejection, SmsBatch, SmsOutcome, SMS_BATCH_MAX};

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(
                url.split(':').next().unwrap_or_default().to_owned(),
            ))
        }
    }
}

/// Storage settings, with documented defaults.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A check-in of the same phone at the same premises closer than this to an
    /// existing one returns the existing one (redelivered SMS, double taps).
    pub dedupe_window: Duration,
    /// Check-ins, cases and messages older than this are deleted by `purge`.
    pub retention: Duration,
    /// Connections in the pool (SQLite serializes writers anyway; PostgreSQL scales).
    pub connections_max: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite: how long a write waits for another writer's lock before failing.
    pub sqlite_busy_timeout: Duration,
    /// SQLite: WAL pages after which a commit also checkpoints (copies the WAL
    /// back into the database file) before it returns. Default 1000, SQLite's
    /// own. A service that calls [`Store::checkpoint`] in the background sets it
    /// high, so commits stop paying for checkpoints and this is only the bound
    /// on the WAL's size should the background checkpoints fall behind.
    pub sqlite_autocheckpoint_pages: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            dedupe_window: Duration::from_secs(10 * 60),
            retention: Duration::from_secs(28 * 24 * 3600),
            connections_max: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            sqlite_autocheckpoint_pages: 1000,
        }
    }
}

/// Why a storage operation failed. All of these are the service's problem, not the
/// visitor's: callers answer "try again later" (SMPP: a temporary error).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url scheme {0:?} (use sqlite: or postgres://)")]
    UnsupportedUrl(String),
    #[error("could not create the database folder {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    #[error("a stored row is invalid: {0}")]
    Corrupt(String),
    #[error("the transaction that carried these writes failed: {0}")]
    SharedWrite(String),
    #[error("no free venue code found after {0} attempts")]
    CodeSpaceExhausted(u32),
    #[error("{0}")]
    Invalid(String),
}

/// Why a check-in was not recorded. Each visitor-facing variant gets its own reply.
#[derive(Debug, thiserror::Error)]
pub enum CheckinError {
    #[error("the code has {digits} digits instead of 9")]
    WrongLength { digits: usize },
    #[error("the code's check digit does not match (a typo?)")]
    Typo,
    #[error("the code contains characters other than digits")]
    NotACode,
    #[error("no premises has this code")]
    UnknownCode,
    #[error("the premises is not accepting check-ins")]
    InactivePremises,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl CheckinError {
    /// True when retrying later may succeed (the SMSC should redeliver).
    pub fn is_temporary(&self) -> bool {
        matches!(self, CheckinError::Storage(_))
    }
}

impl From<CodeError> for CheckinError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::WrongLength { digits } => CheckinError::WrongLength { digits },
            CodeError::CheckDigit => CheckinError::Typo,
            CodeError::InvalidCharacter => CheckinError::NotACode,
        }
    }
}

impl From<sqlx::Error> for CheckinError {
    fn from(e: sqlx::Error) -> Self {
        CheckinError::Storage(StoreError::Database(e))
    }
}

/// What `purge` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub checkins: u64,
    pub cases: u64,
    pub messages: u64,
}

/// The service's storage: cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run. On SQLite a pool of one connection of its
    /// own: SQLite has one writer at a time anyway, and a connection that is
    /// the only writer keeps its page cache (a connection's cache is dropped
    /// whenever another connection has written), so a group commit does not
    /// start by re-reading the indexes from the OS. On PostgreSQL, `pool`.
    writer: AnyPool,
    backend: Backend,
    vault: PhoneVault,
    config: StoreConfig,
    /// Serializes this process's SQLite write transactions (see `begin_write`).
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Send results waiting to ride along with the next write transaction
    /// (SQLite; see `record_send_results`). Bounded by the callers: each waits
    /// for its own to be written.
    pending_results: Arc<std::sync::Mutex<Vec<outbox::PendingResults>>>,
}

/// Page cache of each SQLite connection, in KiB (SQLite's default is 2 MiB); the
/// writer's indexes stay in memory through a busy day's check-ins.
const SQLITE_CACHE_KIB: u32 = 16 * 1024;

/// A write transaction, holding the in-process write lock on SQLite until it
/// commits or is dropped (rolled back).
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQLite URL of the database file in `data_dir`.
pub fn sqlite_url_in(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("checkin.sqlite").display()
    )
}

impl Store {
    /// Connects to `url` (`sqlite://FILE?mode=rwc` or `postgres://…`) and applies every
    /// pending migration.
    pub async fn open(
        url: &str,
        vault: PhoneVault,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        let store = Self::connect(url, vault, config).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(
        url: &str,
        vault: PhoneVault,
        config: StoreConfig,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite {
            create_sqlite_parent(url)?;
        }
        let busy_timeout_ms = config.sqlite_busy_timeout.as_millis();
        let autocheckpoint_pages = config.sqlite_autocheckpoint_pages;
        let options = AnyPoolOptions::new()
            .acquire_timeout(config.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer; NORMAL sync is durable
                        // across process crashes (an OS crash may lose the last commits).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(format!("PRAGMA busy_timeout = {busy_timeout_ms}").as_str())
                            .await?;
                        // Statement journals (multi-row statements inside a
                        // transaction keep one) in memory, not in a temp file.
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                        conn.execute(format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}").as_str())
                            .await?;
                        conn.execute(
                            format!("PRAGMA wal_autocheckpoint = {autocheckpoint_pages}").as_str(),
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .clone()
            .max_connections(config.connections_max.max(1))
            .connect(url)
            .await?;
        let writer = match backend {
            Backend::Sqlite => options.max_connections(1).connect(url).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Store {
            pool,
            writer,
            backend,
            vault,
            config,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            pending_results: Arc::default(),
        })
    }

    /// Applies pending migrations (idempotent). Two processes starting together
    /// (say `serve` and `checkin org create`) may race on a fresh SQLite file,
    /// where sqlx takes no migration lock; the loser retries and then finds the
    /// migrations applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        const ATTEMPTS_MAX: u32 = 5;
        let mut attempt = 1;
        loop {
            let result = match self.backend {
                Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
                Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt < ATTEMPTS_MAX => {
                    tracing::debug!(error = %e, attempt, "migration failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                        .await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn vault(&self) -> &PhoneVault {
        &self.vault
    }

    /// The pool, for tests and tools that inspect the tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// SQLite: copies what the WAL holds back into the database file, without
    /// waiting for (or holding up) the writer: a passive checkpoint, on a
    /// reader connection. Run it every fraction of a second beside a high
    /// `sqlite_autocheckpoint_pages` and commits no longer stop to checkpoint.
    /// Does nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction waits for the lock
    /// instead of failing when another writer committed in between.
    ///
    /// On SQLite the store's writers also queue on an in-process lock first:
    /// SQLite's own busy handler waits by sleeping (milliseconds at a time),
    /// which under load costs far more than the transactions themselves.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let guard = self.lock_writes().await;
        self.begin_locked(guard).await
    }

    /// The in-process write lock (SQLite; nothing on PostgreSQL).
    pub(crate) async fn lock_writes(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// A write transaction under a lock taken with [`Store::lock_writes`].
    pub(crate) async fn begin_locked(
        &self,
        guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Result<WriteTx, sqlx::Error> {
        let tx = match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        };
        Ok(WriteTx { tx, _guard: guard })
    }

    /// The send results waiting for a write transaction.
    pub(crate) fn pending_results(&self) -> std::sync::MutexGuard<'_, Vec<outbox::PendingResults>> {
        // A panic while holding it leaves a plain Vec behind: still usable.
        self.pending_results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deletes check-ins, cases and outbox messages created before `now - retention`
    /// (strictly older; a row exactly at the limit stays).
    pub async fn purge(&self, now: DateTime<Utc>) -> Result<PurgeReport, StoreError> {
        let retention = chrono::Duration::from_std(self.config.retention)
            .map_err(|_| StoreError::Invalid("retention is too long".into()))?;
        let cutoff = to_ms(now - retention);
        let mut tx = self.begin_write().await?;
        let checkins = sqlx::query("DELETE FROM checkins WHERE checked_in_at_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let cases = sqlx::query("DELETE FROM cases WHERE created_at_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let messages = sqlx::query("DELETE FROM outbox WHERE created_at_ms < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(PurgeReport {
            checkins,
            cases,
            messages,
        })
    }
}

fn create_sqlite_parent(url: &str) -> Result<(), StoreError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::DataDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Placeholders for statements built at run time, in binding order. SQLite
/// gets anonymous `?` (bound by position): sqlx resolves every named `$N` by
/// asking SQLite for its name, a linear scan, so a statement with thousands of
/// `$N` costs O(n²). PostgreSQL needs `$N`.
pub(crate) struct Params {
    backend: Backend,
    count: usize,
}

impl Params {
    pub(crate) fn new(backend: Backend) -> Params {
        Params { backend, count: 0 }
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.count += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", self.count),
        }
    }
}

/// UTC milliseconds since the epoch: the storage form of every time.
pub(crate) fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

/// Reads a timestamp column.
pub(crate) fn time_col(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    from_ms(row.try_get::<i64, _>(column)?)
}

/// Reads a 0/1 flag column (integers on both backends, for one set of queries).
pub(crate) fn flag_col(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}
