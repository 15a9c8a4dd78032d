//! The store itself: opened once (`Store::open`: the engine, the migrations),
//! its settings ([`StoreConfig`]), the units' way in (`write`, `write_carried`,
//! `read`), retention (`purge`), and the helpers every area shares (times as
//! milliseconds, run-time placeholders). The areas import it; it imports
//! none of them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::db::{self, Backend, Row, SqliteSync};
use super::error::StoreError;
use super::shared::{FlagsSignal, OutboxSignal};
use crate::exposure::ExposureConfig;
use crate::model::OutboxMessage;
use crate::msisdn::Msisdn;
use crate::privacy::PhoneVault;

/// Storage settings, with documented defaults.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A check-in of the same phone at the same premises closer than this to an
    /// existing one returns the existing one (redelivered SMS, double taps).
    pub dedupe_window: Duration,
    /// Check-ins, cases and messages older than this are deleted by `purge`.
    pub retention: Duration,
    /// Connections: on SQLite the reader threads, each with its connection
    /// (the writer thread has one of its own); on PostgreSQL the pool, readers
    /// and writers alike, opened as needed.
    pub connections_max: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite: how long a write waits for another process's write lock before
    /// failing (this process's writes queue on its one writer instead).
    pub sqlite_busy_timeout: Duration,
    /// SQLite: WAL pages after which a commit also checkpoints (copies the WAL
    /// back into the database file) before it returns. Default 1000, SQLite's
    /// own. A service that calls [`Store::checkpoint`] in the background sets it
    /// high, so commits stop paying for checkpoints and this is only the bound
    /// on the WAL's size should the background checkpoints fall behind.
    pub sqlite_autocheckpoint_pages: u32,
    /// SQLite: when a commit is on disk, hence what an acknowledged MO
    /// survives (see [`SqliteSync`]). Default `Full`.
    pub sqlite_synchronous: SqliteSync,
    /// Exposure matching: the default contagious window, the buffer, the
    /// alert's time zone (see [`ExposureConfig`]).
    pub exposure: ExposureConfig,
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
            sqlite_synchronous: SqliteSync::Full,
            exposure: ExposureConfig::default(),
        }
    }
}

/// What `purge` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub checkins: u64,
    pub cases: u64,
    pub messages: u64,
    /// Learned routes not refreshed within the retention period.
    pub routes: u64,
}

/// The service's storage: cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    /// Opened on first use by tests that peek at rows with raw SQL.
    test_pool: Arc<std::sync::OnceLock<sqlx::AnyPool>>,
    url: Arc<str>,
    /// The engine: units of work on SQLite's threads or PostgreSQL's pool.
    db: db::Db,
    backend: Backend,
    vault: PhoneVault,
    config: StoreConfig,
    /// The outbox's wake-up and hand-off lane (see `signal.rs`), shared by
    /// every clone.
    outbox_signal: Arc<OutboxSignal>,
    /// The switches as last read or set (see `flags.rs`), shared by every clone.
    flags_signal: Arc<FlagsSignal>,
    /// What acknowledged writes would not survive with these settings (see
    /// [`Store::durability_warnings`]), found at connect.
    durability_warnings: Arc<[String]>,
    /// The last write storage refused (a full disk, a lock, the server gone)
    /// and when, shared by every clone: readiness reports it for a while
    /// (see [`Store::recent_write_failure`]).
    write_failure: Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>,
}

/// The SQLite writer's page cache, in KiB (SQLite's default is 2 MiB): its
/// indexes stay in memory through a busy day's check-ins.
const SQLITE_CACHE_KIB: u32 = 16 * 1024;
/// Each SQLite reader's page cache, in KiB: readers do point look-ups and the
/// OS's page cache holds the file anyway, so with 8 readers SQLite's caches
/// stay within 48 MiB however large the file grows.
const SQLITE_READER_CACHE_KIB: u32 = 4 * 1024;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// What a PostgreSQL server's settings would lose of acknowledged commits.
async fn postgres_durability_warnings(pool: &sqlx::PgPool) -> Result<Vec<String>, StoreError> {
    let mut warnings = Vec::new();
    for (setting, consequence) in [
        (
            "fsync",
            "a crash of the server's machine may lose or corrupt committed data",
        ),
        (
            "synchronous_commit",
            "a crash of the server may undo the last commits, whose MOs were already acknowledged",
        ),
    ] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(pool)
            .await?;
        if value.eq_ignore_ascii_case("off") {
            warnings.push(format!(
                "PostgreSQL runs with {setting} = off: {consequence}"
            ));
        }
    }
    Ok(warnings)
}

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
        let autocheckpoint_pages = config.sqlite_autocheckpoint_pages;
        let mut durability_warnings = Vec::new();
        let db = match backend {
            Backend::Sqlite => db::Db::Sqlite(db::SqliteDb::open(db::SqliteSettings {
                path: db::sqlite_path_of_url(url),
                synchronous: config.sqlite_synchronous,
                readers: usize::try_from(config.connections_max.clamp(1, 64)).unwrap_or(4),
                busy_timeout: config.sqlite_busy_timeout,
                autocheckpoint_pages,
                cache_kib: SQLITE_CACHE_KIB,
                reader_cache_kib: SQLITE_READER_CACHE_KIB,
                carry_wait: db::CARRY_WAIT_MAX,
            })?),
            Backend::Postgres => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(config.acquire_timeout)
                    .max_connections(config.connections_max.max(1))
                    .connect(url)
                    .await?;
                durability_warnings = postgres_durability_warnings(&pool).await?;
                db::Db::Postgres(db::PgDb::new(pool))
            }
        };
        if backend == Backend::Sqlite && config.sqlite_synchronous == SqliteSync::Normal {
            durability_warnings.push(
                "SQLite runs with sqlite_synchronous = normal: a power loss or an OS crash \
                 may undo the last commits, whose MOs were already acknowledged"
                    .to_owned(),
            );
        }
        for warning in &durability_warnings {
            tracing::warn!("{warning}");
        }
        Ok(Store {
            test_pool: Arc::default(),
            url: url.into(),
            db,
            backend,
            vault,
            config,
            outbox_signal: Arc::default(),
            flags_signal: Arc::default(),
            durability_warnings: durability_warnings.into(),
            write_failure: Arc::default(),
        })
    }

    /// What an acknowledged write would not survive with this database's
    /// settings, one sentence each (logged at connect): SQLite with
    /// `synchronous = normal`, a PostgreSQL server with `fsync` or
    /// `synchronous_commit` off. Empty when commits are durable.
    pub fn durability_warnings(&self) -> &[String] {
        &self.durability_warnings
    }

    /// Applies pending migrations (idempotent). Two processes starting together
    /// (say `serve` and `checkin org create`) may race on a fresh SQLite file,
    /// where sqlx takes no migration lock; the loser retries and then finds the
    /// migrations applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        const ATTEMPTS_MAX: u32 = 5;
        let mut attempt = 1;
        loop {
            // SQLite: on the write connection (the readers cannot write).
            let result: Result<(), StoreError> = match &self.db {
                db::Db::Sqlite(db) => {
                    db.with_writer(|conn| db::migrate_sqlite(conn, &SQLITE_MIGRATIONS))
                        .await
                }
                db::Db::Postgres(db) => POSTGRES_MIGRATIONS
                    .run(db.pool())
                    .await
                    .map_err(StoreError::from),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt < ATTEMPTS_MAX => {
                    tracing::debug!(error = %e, attempt, "migration failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                        .await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
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

    /// The database, for reads of one statement (`Query::read_all`).
    pub(crate) fn pool(&self) -> &db::Db {
        &self.db
    }

    /// A sqlx pool on the same database for integration tests that check or
    /// stage rows with raw SQL; not part of the API (the areas' handles are
    /// the way in), opened on first use.
    #[doc(hidden)]
    pub fn pool_for_tests(&self) -> &sqlx::AnyPool {
        self.test_pool.get_or_init(|| {
            sqlx::any::install_default_drivers();
            sqlx::any::AnyPoolOptions::new()
                .max_connections(2)
                .connect_lazy(&self.url)
                .expect("the store's own URL parses")
        })
    }

    /// SQLite: copies what the WAL holds back into the database file, without
    /// waiting for (or holding up) the writer: a passive checkpoint, on a
    /// reader connection. Run it every fraction of a second beside a high
    /// `sqlite_autocheckpoint_pages` and commits no longer stop to checkpoint.
    /// Does nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            self.read(|c| Ok(db::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_all(c)?))
                .await?;
        }
        Ok(())
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.db.close().await;
        if let Some(pool) = self.test_pool.get() {
            pool.close().await;
        }
    }

    /// Runs `unit` in a write transaction (see `db`): on SQLite one hop to
    /// the writer thread, whose group commit it may share.
    pub(crate) async fn write<R, F>(&self, unit: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut db::Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let result = self.db.write(unit).await;
        self.note_write(&result);
        result
    }

    /// [`Store::write`] for a unit that may wait for the next group commit
    /// (see `Db::write_carried`).
    pub(crate) async fn write_carried<R, F>(&self, unit: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut db::Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let result = self.db.write_carried(unit).await;
        self.note_write(&result);
        result
    }

    /// Remembers a write that failed for storage's reasons (not a unit's own
    /// refusal, nor a duplicate row a caller handles).
    fn note_write<R>(&self, result: &Result<R, StoreError>) {
        let failure = match result {
            Err(StoreError::Database(e)) if !e.is_unique_violation() => e.to_string(),
            Err(StoreError::SharedWrite(e)) => e.clone(),
            _ => return,
        };
        *self
            .write_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), failure));
    }

    /// The last write storage refused within `window`, and how long ago:
    /// a nearly full disk may still take a small write (the readiness probe's)
    /// while it refuses every check-in, so readiness also asks this.
    pub fn recent_write_failure(&self, window: Duration) -> Option<(Duration, String)> {
        let last = self
            .write_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        let ago = last.0.elapsed();
        (ago <= window).then_some((ago, last.1))
    }

    /// Runs `unit` on a read connection (see `db`).
    pub(crate) async fn read<R, F>(&self, unit: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut db::Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.db.read(unit).await
    }

    pub(crate) fn outbox_signal(&self) -> &Arc<OutboxSignal> {
        &self.outbox_signal
    }

    pub(crate) fn flags_signal(&self) -> &Arc<FlagsSignal> {
        &self.flags_signal
    }

    /// One trivial query on a reader connection: storage answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        db::query("SELECT 1").read_all(self.pool()).await?;
        Ok(())
    }

    /// One small committed write, of a row of its own in `flags`: storage can
    /// write, not only answer reads. A full disk, a file locked by another
    /// process or a server in recovery fail it, as they fail every MO.
    pub async fn ping_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now_ms = to_ms(now);
        self.write(move |tx| {
            db::query(
                "INSERT INTO flags (name, value, updated_at_ms) VALUES ('write_probe', 0, $1) \
                 ON CONFLICT (name) DO UPDATE SET updated_at_ms = excluded.updated_at_ms",
            )
            .bind(now_ms)
            .execute(tx)?;
            Ok(())
        })
        .await
    }

    /// The number a message goes to, opened: for tests and support tools (the
    /// sender opens each one itself, right before the submit).
    pub fn open_recipient(&self, message: &OutboxMessage) -> Result<Msisdn, StoreError> {
        Ok(self.vault().open_phone(&message.recipient)?)
    }

    /// Deletes check-ins, cases, outbox messages and learned routes created
    /// (routes: last refreshed) before `now - retention`
    /// (strictly older; a row exactly at the limit stays).
    pub async fn purge(&self, now: DateTime<Utc>) -> Result<PurgeReport, StoreError> {
        let retention = chrono::Duration::from_std(self.config.retention)
            .map_err(|_| StoreError::Config("retention is too long".into()))?;
        let cutoff = to_ms(now - retention);
        self.write(move |tx| {
            let checkins = db::query("DELETE FROM checkins WHERE checked_in_at_ms < $1")
                .bind(cutoff)
                .execute(&mut *tx)?
                .rows_affected();
            let cases = db::query("DELETE FROM cases WHERE created_at_ms < $1")
                .bind(cutoff)
                .execute(&mut *tx)?
                .rows_affected();
            let messages = db::query("DELETE FROM outbox WHERE created_at_ms < $1")
                .bind(cutoff)
                .execute(&mut *tx)?
                .rows_affected();
            let routes = db::query("DELETE FROM phone_routes WHERE learned_at_ms < $1")
                .bind(cutoff)
                .execute(&mut *tx)?
                .rows_affected();
            // What only delivery needs: the receipts' id look-up and the daily caps.
            db::query("DELETE FROM outbox_smsc_ids WHERE created_at_ms < $1")
                .bind(cutoff)
                .execute(&mut *tx)?;
            db::query("DELETE FROM authority_audit WHERE at_ms < $1")
                .bind(cutoff)
                .execute(&mut *tx)?;
            db::query("DELETE FROM recipient_days WHERE day < $1")
                .bind(cutoff.div_euclid(24 * 3600 * 1000))
                .execute(&mut *tx)?;
            Ok(PurgeReport {
                checkins,
                cases,
                messages,
                routes,
            })
        })
        .await
    }
}

fn create_sqlite_parent(url: &str) -> Result<(), StoreError> {
    let path = db::sqlite_path_of_url(url);
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::DataDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Placeholders for statements built at run time, in binding order. SQLite
/// gets anonymous `?` (bound by position, no text to rewrite); PostgreSQL
/// needs `$N`.
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
pub(crate) fn time_col(row: &Row, column: &str) -> Result<DateTime<Utc>, StoreError> {
    from_ms(row.try_get::<i64, _>(column)?)
}

/// Reads a 0/1 flag column (integers on both backends, for one set of queries).
pub(crate) fn flag_col(row: &Row, column: &str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}
