//! SQLite on threads of our own: one writer thread that owns the write
//! connection and commits the units waiting for it as one transaction (each
//! under a savepoint, so one that fails undoes only itself), and reader
//! threads that own read-only connections. Async callers hand a whole unit to
//! a thread and await its answer: two thread switches per unit, whatever the
//! number of statements and rows.
//!
//! Why one writer: SQLite has one writer at a time anyway; a queue of our own
//! is far cheaper than SQLite's busy handler (which sleeps milliseconds at a
//! time); and the only writer keeps its page cache warm.
//!
//! With `sqlite_synchronous = full` the writer does not wait for the disk
//! itself: it commits with `synchronous = NORMAL` (the WAL's frames written,
//! not synced) and hands the group to the syncer thread, which `fdatasync`s
//! the WAL file and only then answers the group's callers; meanwhile the
//! writer commits the next group, and one sync covers every group committed
//! before it began (a pipelined group commit). An answer still comes only
//! after its commit is on disk, as with SQLite's own `FULL`; the difference
//! is that readers may see a commit a few milliseconds before it is synced.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::conn::{count_transaction, count_unit, Backend, Conn, Row, Statements};
use super::value::{Kind, Value};
use crate::store::error::{DbError, StoreError};

/// Units waiting for the writer; callers wait for room above it.
const WRITE_QUEUE_MAX: usize = 4096;
/// Units waiting for a reader.
const READ_QUEUE_MAX: usize = 4096;
/// Most units one group commit takes.
const GROUP_UNITS_MAX: usize = 256;
/// How long a carried unit waits for a unit to ride with (send results and
/// receipts: nothing a visitor waits for).
pub(crate) const CARRY_WAIT_MAX: Duration = Duration::from_millis(50);
/// Groups committed and waiting for the syncer; the writer waits for room
/// above it.
const SYNC_QUEUE_MAX: usize = 64;
/// Prepared statements kept per connection (the store has about a hundred).
const STATEMENT_CACHE_MAX: usize = 256;

/// When a SQLite commit is on disk (`PRAGMA synchronous` of the writer, in
/// WAL mode). An MO is acknowledged after its commit, so this decides what
/// an acknowledged MO survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// Each commit waits for the WAL's `fsync` (one per group commit, shared
    /// by every unit in it): a commit survives a power loss or an OS crash.
    #[default]
    Full,
    /// No `fsync` at commit (only at checkpoints): a commit survives the
    /// process's crash, but a power loss or an OS crash may undo the last
    /// ones, whose MOs the SMSC already counts as delivered.
    Normal,
}

impl SqliteSync {
    /// The setting's name in configuration (`full`, `normal`).
    pub fn name(self) -> &'static str {
        match self {
            SqliteSync::Full => "full",
            SqliteSync::Normal => "normal",
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        }
    }
}

impl std::str::FromStr for SqliteSync {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(SqliteSync::Full),
            "normal" => Ok(SqliteSync::Normal),
            other => Err(format!(
                "sqlite_synchronous must be \"full\" or \"normal\", not {other:?}"
            )),
        }
    }
}

/// How the SQLite connections are set up.
#[derive(Debug, Clone)]
pub(crate) struct SqliteSettings {
    pub path: PathBuf,
    /// The writer's `synchronous` (readers never commit).
    pub synchronous: SqliteSync,
    pub readers: usize,
    pub busy_timeout: Duration,
    pub autocheckpoint_pages: u32,
    /// The writer's page cache.
    pub cache_kib: u32,
    /// Each reader's page cache.
    pub reader_cache_kib: u32,
    /// How long a carried unit waits for a unit to ride with
    /// (`CARRY_WAIT_MAX` by default).
    pub carry_wait: Duration,
}

/// A unit of work waiting for the writer.
trait WriteUnit: Send {
    /// Runs the unit; false when it failed (its writes are to be undone).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the transaction's fate is known: `Err` when the
    /// commit failed (or the unit never ran).
    fn finish(self: Box<Self>, commit: Result<(), &DbError>);
}

struct Unit<F, R> {
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    done: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> WriteUnit for Unit<F, R>
where
    F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panic is a bug in the unit: it fails alone, the writer goes on.
        let mut statements = SqliteStatements(conn);
        let mut unit = Conn::new(&mut statements);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut unit)))
            .unwrap_or_else(|_| Err(StoreError::Corrupt("a unit of work panicked".into())));
        count_unit(Backend::Sqlite, "write", unit.statements);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &DbError>) {
        let answer = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(r)), Ok(())) => Ok(r),
            (_, Err(e)) => Err(StoreError::Database(e.again())),
            (None, Ok(())) => Err(StoreError::Database(DbError::Closed)),
        };
        let _ = self.done.send(answer);
    }
}

enum WriteJob {
    Unit(Box<dyn WriteUnit>),
    /// A unit that starts no transaction of its own: it rides in the next
    /// group commit, or in one of its own after [`CARRY_WAIT_MAX`].
    Carried(Box<dyn WriteUnit>),
    /// Work on the connection outside any transaction (migrations).
    Raw(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Ends the thread (at close).
    Stop,
}

/// A read, or `None` to end the reader (at close).
type ReadJob = Option<Box<dyn FnOnce(&Connection) + Send>>;

/// The SQLite database: cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteDb {
    writes: flume::Sender<WriteJob>,
    reads: flume::Sender<ReadJob>,
    /// Write transactions begun (read by tests; the metrics count them too).
    #[cfg_attr(not(test), allow(dead_code))]
    transactions: Arc<std::sync::atomic::AtomicU64>,
    /// The syncer's completed `fdatasync`s (read by tests).
    #[cfg_attr(not(test), allow(dead_code))]
    syncs: Arc<std::sync::atomic::AtomicU64>,
    /// Reader threads (each ends on a `None`).
    readers: usize,
    /// The threads, joined at close.
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDb").finish_non_exhaustive()
    }
}

fn open(settings: &SqliteSettings, writer: bool) -> Result<Connection, DbError> {
    // Readers open read-write but refuse writes (`query_only`): a passive
    // checkpoint (copying pages, changing no data) still runs on them.
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&settings.path, flags)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_MAX);
    conn.busy_timeout(settings.busy_timeout)?;
    if writer {
        // WAL: readers never block the writer; `synchronous` decides what a
        // commit survives (see `SqliteSync`).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", settings.synchronous.pragma())?;
        conn.pragma_update(None, "wal_autocheckpoint", settings.autocheckpoint_pages)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals in memory, not in a temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let cache_kib = if writer {
        settings.cache_kib
    } else {
        settings.reader_cache_kib
    };
    conn.pragma_update(None, "cache_size", -i64::from(cache_kib))?;
    if !writer {
        conn.pragma_update(None, "query_only", 1)?;
    }
    Ok(conn)
}

impl SqliteDb {
    /// Opens the file (creating it), the writer first so the file is in WAL
    /// mode before a reader opens it, then the readers.
    pub(crate) fn open(settings: SqliteSettings) -> Result<SqliteDb, StoreError> {
        let mut threads = Vec::new();
        let writer = open(&settings, true)?;
        let (writes, write_rx) = flume::bounded::<WriteJob>(WRITE_QUEUE_MAX);
        let transactions = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let syncs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // `full` on a file in WAL mode: the syncer makes commits durable.
        let wal: String = writer.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        let syncer = if settings.synchronous == SqliteSync::Full && wal.eq_ignore_ascii_case("wal")
        {
            writer.pragma_update(None, "synchronous", SqliteSync::Normal.pragma())?;
            let (to_sync, groups) = flume::bounded::<Vec<Box<dyn WriteUnit>>>(SYNC_QUEUE_MAX);
            let mut path = settings.path.clone().into_os_string();
            path.push("-wal");
            let counted = syncs.clone();
            threads.push(spawn("sqlite-syncer", move || {
                sync_loop(Path::new(&path), &groups, &counted)
            })?);
            Some(to_sync)
        } else {
            None
        };
        let (counted, carry_wait) = (transactions.clone(), settings.carry_wait);
        threads.push(spawn("sqlite-writer", move || {
            let writer = Writer {
                conn: writer,
                syncer,
                carry_wait,
            };
            write_loop(writer, &write_rx, &counted)
        })?);
        let (reads, read_rx) = flume::bounded::<ReadJob>(READ_QUEUE_MAX);
        for i in 0..settings.readers.max(1) {
            let conn = open(&settings, false)?;
            let rx = read_rx.clone();
            threads.push(spawn(&format!("sqlite-reader-{i}"), move || {
                while let Ok(Some(job)) = rx.recv() {
                    job(&conn);
                }
            })?);
        }
        Ok(SqliteDb {
            writes,
            reads,
            transactions,
            syncs,
            readers: settings.readers.max(1),
            threads: Arc::new(Mutex::new(threads)),
        })
    }

    pub(crate) async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.send_unit(work, WriteJob::Unit).await
    }

    /// [`SqliteDb::write`] for a unit nobody waits on urgently: it starts no
    /// transaction of its own, but rides in the next group commit (or one of
    /// its own after [`CARRY_WAIT_MAX`]).
    pub(crate) async fn write_carried<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.send_unit(work, WriteJob::Carried).await
    }

    /// Queues `work` for the writer as `job` and waits for its answer.
    async fn send_unit<R, F>(
        &self,
        work: F,
        job: fn(Box<dyn WriteUnit>) -> WriteJob,
    ) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let unit = Unit {
            work: Some(work),
            result: None,
            done,
        };
        self.writes
            .send_async(job(Box::new(unit)))
            .await
            .map_err(|_| StoreError::Database(DbError::Closed))?;
        answer
            .await
            .map_err(|_| StoreError::Database(DbError::Closed))?
    }

    pub(crate) async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job: ReadJob = Some(Box::new(move |conn| {
            let mut statements = SqliteStatements(conn);
            let mut unit = Conn::new(&mut statements);
            let result = work(&mut unit);
            count_unit(Backend::Sqlite, "read", unit.statements);
            let _ = done.send(result);
        }));
        self.reads
            .send_async(job)
            .await
            .map_err(|_| StoreError::Database(DbError::Closed))?;
        answer
            .await
            .map_err(|_| StoreError::Database(DbError::Closed))?
    }

    /// Runs `work` on the write connection outside any transaction, between
    /// units (migrations manage their own transactions).
    pub(crate) async fn with_writer<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job = WriteJob::Raw(Box::new(move |conn| {
            let _ = done.send(work(conn));
        }));
        self.writes
            .send_async(job)
            .await
            .map_err(|_| StoreError::Database(DbError::Closed))?;
        answer
            .await
            .map_err(|_| StoreError::Database(DbError::Closed))?
    }

    /// Write transactions begun so far (for tests).
    #[cfg(test)]
    fn transactions(&self) -> u64 {
        self.transactions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Lets the threads finish what is queued, then stops them; later units
    /// fail with `DbError::Closed`.
    pub(crate) async fn close(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        if threads.is_empty() {
            return;
        }
        let _ = self.writes.send_async(WriteJob::Stop).await;
        for _ in 0..self.readers {
            let _ = self.reads.send_async(None).await;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

fn spawn(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map_err(|e| StoreError::Config(format!("cannot start a SQLite thread: {e}")))
}

/// The writer thread's connection and where its committed groups go.
struct Writer {
    conn: Connection,
    /// `Some`: committed groups wait here for the WAL's sync before they are
    /// answered; `None`: SQLite syncs at commit (or nothing needs it).
    syncer: Option<flume::Sender<Vec<Box<dyn WriteUnit>>>>,
    carry_wait: Duration,
}

fn write_loop(
    writer: Writer,
    jobs: &flume::Receiver<WriteJob>,
    transactions: &std::sync::atomic::AtomicU64,
) {
    let Writer {
        mut conn,
        syncer,
        carry_wait,
    } = writer;
    let mut units: Vec<Box<dyn WriteUnit>> = Vec::with_capacity(GROUP_UNITS_MAX);
    while let Ok(first) = jobs.recv() {
        let mut raw = None;
        let mut stop = false;
        // Only carried units so far: wait (a little) for one that is not.
        let mut carried_only = false;
        match first {
            WriteJob::Stop => stop = true,
            WriteJob::Raw(work) => raw = Some(work),
            WriteJob::Unit(unit) => units.push(unit),
            WriteJob::Carried(unit) => {
                units.push(unit);
                carried_only = true;
            }
        }
        let deadline = std::time::Instant::now() + carry_wait;
        // Whatever else is waiting joins this commit.
        while !units.is_empty() && units.len() < GROUP_UNITS_MAX && raw.is_none() && !stop {
            let next = if carried_only {
                match jobs.recv_deadline(deadline) {
                    Ok(job) => Some(job),
                    Err(flume::RecvTimeoutError::Timeout) => None,
                    Err(flume::RecvTimeoutError::Disconnected) => None,
                }
            } else {
                jobs.try_recv().ok()
            };
            match next {
                Some(WriteJob::Unit(unit)) => {
                    units.push(unit);
                    carried_only = false;
                }
                Some(WriteJob::Carried(unit)) => units.push(unit),
                Some(WriteJob::Raw(work)) => raw = Some(work),
                Some(WriteJob::Stop) => stop = true,
                None => break,
            }
        }
        if !units.is_empty() {
            transactions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let committed = commit_group(&conn, &mut units);
            match (&syncer, committed) {
                (Some(syncer), true) => {
                    let group = std::mem::replace(&mut units, Vec::with_capacity(GROUP_UNITS_MAX));
                    if let Err(flume::SendError(group)) = syncer.send(group) {
                        finish_all(group, Err(&DbError::Closed));
                    }
                }
                _ => finish_all(units.drain(..), Ok(())),
            }
        }
        if let Some(work) = raw {
            work(&mut conn);
        }
        if stop {
            break;
        }
    }
    // Units queued after the stop fail (their senders see the queue gone);
    // the syncer answers what it holds, then ends.
    drop(syncer);
    drop(conn);
}

fn finish_all(units: impl IntoIterator<Item = Box<dyn WriteUnit>>, commit: Result<(), &DbError>) {
    for unit in units {
        unit.finish(commit);
    }
}

/// The syncer thread: `fdatasync`s the WAL once for every group committed
/// before it began, then answers those groups' callers.
fn sync_loop(
    wal: &Path,
    groups: &flume::Receiver<Vec<Box<dyn WriteUnit>>>,
    syncs: &std::sync::atomic::AtomicU64,
) {
    let mut file: Option<std::fs::File> = None;
    while let Ok(first) = groups.recv() {
        let mut batch = vec![first];
        batch.extend(groups.try_iter());
        let started = std::time::Instant::now();
        let synced = sync_wal(wal, &mut file);
        metrics::histogram!("checkin_db_wal_sync_seconds").record(started.elapsed());
        if synced.is_ok() {
            syncs.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        let outcome = synced.map_err(|e| {
            // The commits may not be on disk: their callers hear an error
            // (an MO gets a temporary one and comes again as a repeat).
            tracing::error!(error = %e, "syncing SQLite's WAL failed");
            file = None;
            DbError::Shared(format!("syncing the WAL failed: {e}"))
        });
        for group in batch {
            finish_all(group, outcome.as_ref().map(|_| ()));
        }
    }
}

/// One `fdatasync` of the WAL file (opened once, kept open).
fn sync_wal(wal: &Path, file: &mut Option<std::fs::File>) -> std::io::Result<()> {
    if file.is_none() {
        *file = Some(std::fs::File::open(wal)?);
    }
    file.as_ref().map_or(Ok(()), std::fs::File::sync_data)
}

/// Runs `units` in one transaction, each under a savepoint when there are
/// several, and commits what succeeded. True when something was committed:
/// the units are left for the caller to answer once the commit is durable;
/// otherwise every caller is answered here.
fn commit_group(conn: &Connection, units: &mut Vec<Box<dyn WriteUnit>>) -> bool {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        finish_all(units.drain(..), Err(&DbError::from(e)));
        return false;
    }
    count_transaction(Backend::Sqlite);
    let alone = units.len() == 1;
    let mut broken: Option<DbError> = None;
    let mut any_ok = false;
    for unit in units.iter_mut() {
        if broken.is_some() {
            break;
        }
        if alone {
            any_ok = unit.run(conn);
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT unit") {
            broken = Some(e.into());
            break;
        }
        let ok = unit.run(conn);
        any_ok |= ok;
        let end = if ok {
            conn.execute_batch("RELEASE unit")
        } else {
            conn.execute_batch("ROLLBACK TO unit; RELEASE unit")
        };
        if let Err(e) = end {
            broken = Some(e.into());
        }
        // SQLite rolled the whole transaction back (disk full, I/O error).
        if conn.is_autocommit() && broken.is_none() {
            broken = Some(DbError::Shared(
                "the transaction was rolled back by SQLite".into(),
            ));
        }
    }
    let outcome = match broken {
        Some(e) => Err(e),
        None if !any_ok => Ok(()),
        None => conn.execute_batch("COMMIT").map_err(DbError::from),
    };
    let committed = outcome.is_ok() && any_ok;
    if !committed && !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "rolling back a failed group commit failed");
        }
    }
    if committed {
        return true;
    }
    finish_all(units.drain(..), outcome.as_ref().map(|_| ()));
    false
}

/// A unit's statements on the SQLite connection of its thread.
struct SqliteStatements<'c>(&'c Connection);

impl Statements for SqliteStatements<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        execute(self.0, sql, params)
    }

    fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        fetch(self.0, sql, params)
    }
}

/// `$N` placeholders as SQLite's `?N`, which bind by number whatever their
/// order in the text.
fn numbered(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return sql.into();
    }
    sql.replace('$', "?").into()
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[Value]) -> Result<(), DbError> {
    for (i, value) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    Ok(())
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null(_) => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64, DbError> {
    let mut stmt = conn.prepare_cached(&numbered(sql))?;
    bind(&mut stmt, params)?;
    if stmt.column_count() == 0 {
        return Ok(stmt.raw_execute()? as u64);
    }
    // A statement with RETURNING: run it through.
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(conn.changes())
}

fn fetch(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
    let mut stmt = conn.prepare_cached(&numbered(sql))?;
    bind(&mut stmt, params)?;
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let mut out = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            use rusqlite::types::ValueRef;
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null(Kind::Int),
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Real(v),
                ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                ValueRef::Blob(v) => Value::Blob(v.to_vec()),
            });
        }
        out.push(Row::new(columns.clone(), values));
    }
    Ok(out)
}

/// The file a `sqlite:` URL names.
pub(crate) fn path_of_url(url: &str) -> PathBuf {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    Path::new(path).to_path_buf()
}

/// Applies `migrator`'s pending migrations, keeping sqlx's own ledger
/// (`_sqlx_migrations`, same columns and checksums), so a database migrated
/// by earlier versions (through sqlx) carries on, and the other way round.
pub(crate) fn migrate_sqlite(
    conn: &mut Connection,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
            version BIGINT PRIMARY KEY, \
            description TEXT NOT NULL, \
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
            success BOOLEAN NOT NULL, \
            checksum BLOB NOT NULL, \
            execution_time BIGINT NOT NULL)",
    )?;
    let applied: Vec<(i64, bool, Vec<u8>)> = {
        let mut stmt = conn
            .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    if let Some((version, _, _)) = applied.iter().find(|(_, ok, _)| !ok) {
        return Err(StoreError::Config(format!(
            "migration {version} was left partly applied; fix the database by hand"
        )));
    }
    for migration in migrator.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        if let Some((_, _, checksum)) = applied.iter().find(|(v, _, _)| *v == migration.version) {
            if checksum[..] != migration.checksum[..] {
                return Err(StoreError::Config(format!(
                    "migration {} was changed after it was applied",
                    migration.version
                )));
            }
            continue;
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have applied it meanwhile.
        let done: i64 = tx.query_row(
            "SELECT COUNT(*) FROM _sqlx_migrations WHERE version = ?1",
            [migration.version],
            |r| r.get(0),
        )?;
        if done == 0 {
            tx.execute_batch(&migration.sql)?;
            tx.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (?1, ?2, 1, ?3, ?4)",
                rusqlite::params![
                    migration.version,
                    migration.description.as_ref(),
                    migration.checksum.as_ref(),
                    i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX),
                ],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &tempfile::TempDir) -> SqliteSettings {
        SqliteSettings {
            path: dir.path().join("t.sqlite"),
            synchronous: SqliteSync::default(),
            readers: 2,
            busy_timeout: Duration::from_secs(1),
            autocheckpoint_pages: 1000,
            cache_kib: 1024,
            reader_cache_kib: 1024,
            carry_wait: Duration::from_secs(30),
        }
    }

    fn count(c: &mut Conn<'_>) -> Result<i64, StoreError> {
        Ok(crate::store::db::query("SELECT COUNT(*) FROM t").fetch_scalar(c)?)
    }

    #[tokio::test]
    async fn readers_cannot_write_and_see_what_the_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(settings(&dir)).unwrap();
        db.write(|c| {
            c.execute("CREATE TABLE t (x INTEGER)", &[])?;
            c.execute("INSERT INTO t VALUES ($1)", &[Value::Int(1)])?;
            Ok(())
        })
        .await
        .unwrap();
        let written = db
            .read(|c| Ok(c.execute("INSERT INTO t VALUES (2)", &[])?))
            .await;
        assert!(written.is_err(), "a reader wrote: {written:?}");
        assert_eq!(db.read(count).await.unwrap(), 1);
        db.close().await;
        assert!(db.read(count).await.is_err(), "closed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_unit_of_a_group_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(settings(&dir)).unwrap();
        db.write(|c| Ok(c.execute("CREATE TABLE t (x INTEGER UNIQUE)", &[])?))
            .await
            .unwrap();
        // Many units at once, so groups form; every third one writes and then fails.
        let units = (0..300_i64).map(|k| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |c| {
                    c.execute("INSERT INTO t VALUES ($1)", &[Value::Int(k)])?;
                    if k % 3 == 0 {
                        return Err(StoreError::Invalid("refused".into()));
                    }
                    Ok(k)
                })
                .await
            })
        });
        let mut ok = 0;
        for unit in units.collect::<Vec<_>>() {
            if unit.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 200);
        assert_eq!(db.read(count).await.unwrap(), 200);
        let refused: i64 = db
            .read(|c| {
                Ok(
                    crate::store::db::query("SELECT COUNT(*) FROM t WHERE x % 3 = 0")
                        .fetch_scalar(c)?,
                )
            })
            .await
            .unwrap();
        assert_eq!(refused, 0, "a failed unit's row was committed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_carried_unit_rides_in_the_next_commit_and_alone_after_its_wait() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(settings(&dir)).unwrap();
        db.write(|c| Ok(c.execute("CREATE TABLE t (x INTEGER)", &[])?))
            .await
            .unwrap();
        let before = db.transactions();
        let carried = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write_carried(|c| Ok(c.execute("INSERT INTO t VALUES (1)", &[])?))
                    .await
            })
        };
        // The carried unit waits (30 s here) for this one, and commits with it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !carried.is_finished(),
            "a carried unit committed alone at once"
        );
        db.write(|c| Ok(c.execute("INSERT INTO t VALUES (2)", &[])?))
            .await
            .unwrap();
        carried.await.unwrap().unwrap();
        assert_eq!(db.transactions() - before, 1, "one commit for both");
        assert_eq!(db.read(count).await.unwrap(), 2);

        // Alone, it waits only its carry wait.
        let dir = tempfile::tempdir().unwrap();
        let mut quick = settings(&dir);
        quick.carry_wait = Duration::from_millis(20);
        let db = SqliteDb::open(quick).unwrap();
        db.write(|c| Ok(c.execute("CREATE TABLE t (x INTEGER)", &[])?))
            .await
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            db.write_carried(|c| Ok(c.execute("INSERT INTO t VALUES (1)", &[])?)),
        )
        .await
        .expect("a lone carried unit commits after its wait")
        .unwrap();
        assert_eq!(db.read(count).await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_writer_syncs_as_set_and_full_by_default() {
        // `full`: the writer commits without waiting and the syncer fsyncs
        // the WAL before any caller hears of its commit; `normal`: nobody
        // syncs at commit.
        for (sync, synced) in [
            (SqliteSync::default(), true),
            (SqliteSync::Full, true),
            (SqliteSync::Normal, false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let db = SqliteDb::open(SqliteSettings {
                synchronous: sync,
                ..settings(&dir)
            })
            .unwrap();
            db.write(|c| Ok(c.execute("CREATE TABLE t (x INTEGER)", &[])?))
                .await
                .unwrap();
            // Units one at a time and many at once (groups form, and several
            // groups share a sync).
            for burst in [1_i64, 1, 1, 50, 200] {
                let units = (0..burst).map(|k| {
                    let (db, syncs) = (db.clone(), db.syncs.clone());
                    tokio::spawn(async move {
                        let before = db
                            .write(move |c| {
                                c.execute("INSERT INTO t VALUES ($1)", &[Value::Int(k)])?;
                                Ok(syncs.load(std::sync::atomic::Ordering::Acquire))
                            })
                            .await
                            .unwrap();
                        (before, db.syncs.load(std::sync::atomic::Ordering::Acquire))
                    })
                });
                for unit in units.collect::<Vec<_>>() {
                    let (before, after) = unit.await.unwrap();
                    if synced {
                        assert!(after > before, "{sync:?}: answered before a sync");
                    } else {
                        assert_eq!(after, 0, "{sync:?}: synced");
                    }
                }
            }
            let writer: i64 = db
                .write(|c| Ok(crate::store::db::query("PRAGMA synchronous").fetch_scalar(c)?))
                .await
                .unwrap();
            assert_eq!(writer, 1, "{sync:?}: the writer's own commits do not wait");
            assert_eq!(db.read(count).await.unwrap(), 253);
            db.close().await;
        }
        assert_eq!("FULL".parse(), Ok(SqliteSync::Full));
        assert_eq!(" normal".parse(), Ok(SqliteSync::Normal));
        let refused = "off".parse::<SqliteSync>().unwrap_err();
        assert!(refused.contains("\"full\" or \"normal\""), "{refused}");
    }
}
