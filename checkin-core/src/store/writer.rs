//! The one writer: every write transaction of the store begins here. On SQLite
//! it owns the one write connection, the queue of transactions waiting for it,
//! and the writes waiting to ride along with the next transaction (send
//! results); on PostgreSQL, which has many writers, it hands out transactions
//! of the shared pool.
//!
//! Why one connection on SQLite: SQLite has one writer at a time anyway; queuing
//! on an in-process lock is far cheaper than SQLite's busy handler, which
//! sleeps milliseconds at a time; and a connection that is the only writer
//! keeps its page cache (SQLite drops a connection's cache whenever another
//! connection wrote), so a group commit does not start by re-reading the
//! indexes from the OS.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{oneshot, Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::StoreError;

/// A write that rides along with the next write transaction: it runs on that
/// transaction's connection, after the transaction's own statements and just
/// before its commit. Build one with [`carried`].
pub(crate) type CarriedWrite = Box<
    dyn for<'c> FnOnce(
            &'c mut AnyConnection,
        ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'c>>
        + Send,
>;

/// A [`CarriedWrite`] from a closure (pins the closure's higher-ranked type).
pub(crate) fn carried<F>(write: F) -> CarriedWrite
where
    F: for<'c> FnOnce(
            &'c mut AnyConnection,
        ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'c>>
        + Send
        + 'static,
{
    Box::new(write)
}

/// A carried write waiting for a transaction, and who to tell once it is
/// committed (or not).
struct Waiting {
    id: u64,
    write: CarriedWrite,
    done: oneshot::Sender<Result<(), String>>,
}

/// The SQLite write connection.
struct Slot {
    conn: AnyConnection,
    /// A transaction is open on `conn` that nobody will finish (its owner was
    /// dropped where no runtime could roll it back): the next user rolls it back.
    in_tx: bool,
}

/// The SQLite write connection, taken from the queue.
type Held = OwnedMappedMutexGuard<Option<Slot>, Slot>;

#[derive(Clone)]
enum Target {
    /// The write connection; `None` once closed. Its mutex is the queue of
    /// writers: tokio's mutex is fair (first come, first served).
    Sqlite(Arc<Mutex<Option<Slot>>>),
    /// PostgreSQL's pool: concurrent transactions, no queue of ours.
    Pool(AnyPool),
}

/// The store's writer (cheap clone).
#[derive(Clone)]
pub(crate) struct Writer {
    target: Target,
    /// SQLite: carried writes waiting for the next transaction. Bounded by
    /// their callers: each waits for its own to be written.
    waiting: Arc<std::sync::Mutex<Vec<Waiting>>>,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.target {
            Target::Sqlite(_) => "sqlite",
            Target::Pool(_) => "pool",
        };
        f.debug_struct("Writer").field("target", &kind).finish()
    }
}

impl Writer {
    /// The writer of a SQLite database: `conn` is its only write connection.
    pub(crate) fn sqlite(conn: AnyConnection) -> Writer {
        Writer::new(Target::Sqlite(Arc::new(Mutex::new(Some(Slot {
            conn,
            in_tx: false,
        })))))
    }

    /// The writer of a PostgreSQL database: transactions of `pool`.
    pub(crate) fn pool(pool: AnyPool) -> Writer {
        Writer::new(Target::Pool(pool))
    }

    fn new(target: Target) -> Writer {
        Writer {
            target,
            waiting: Arc::default(),
            next_id: Arc::default(),
        }
    }

    /// A write transaction. On SQLite it waits for its turn, then takes
    /// SQLite's write lock at once (`BEGIN IMMEDIATE`), so a read-then-write
    /// transaction cannot fail because another process wrote in between.
    pub(crate) async fn begin(&self) -> Result<WriteTx, StoreError> {
        match &self.target {
            Target::Sqlite(slot) => {
                let held = take_turn(slot).await?;
                self.begin_held(held).await
            }
            Target::Pool(pool) => Ok(WriteTx {
                inner: TxInner::Pool(pool.begin().await?),
                writer: self.clone(),
            }),
        }
    }

    async fn begin_held(&self, mut held: Held) -> Result<WriteTx, StoreError> {
        // Marked first: should BEGIN fail half-way, the next turn rolls back.
        held.in_tx = true;
        held.conn.execute("BEGIN IMMEDIATE").await?;
        Ok(WriteTx {
            inner: TxInner::Sqlite(Turn(Some(held))),
            writer: self.clone(),
        })
    }

    /// Runs `write` in a write transaction. On SQLite it rides along with the
    /// next transaction of this store (usually an MO group commit) instead of
    /// taking the writer for a transaction of its own: the writer spends its
    /// time on check-ins, not on handing its connection around. Whoever's turn
    /// comes first writes every carried write waiting; this call returns once
    /// its own is committed, or failed.
    pub(crate) async fn carry(&self, write: CarriedWrite) -> Result<(), StoreError> {
        let Target::Sqlite(slot) = &self.target else {
            let mut tx = self.begin().await?;
            write(&mut tx).await?;
            tx.commit().await?;
            return Ok(());
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, mut outcome) = oneshot::channel();
        self.waiting().push(Waiting { id, write, done });
        let turn = take_turn(slot).await;
        // A transaction that took this write told its outcome before it let
        // the next writer in: no news now means nobody took it.
        match outcome.try_recv() {
            Ok(result) => return result.map_err(StoreError::SharedWrite),
            Err(oneshot::error::TryRecvError::Closed) => {
                return Err(StoreError::SharedWrite(
                    "the transaction that took this write ended without a word".into(),
                ))
            }
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let begun = match turn {
            Ok(held) => self.begin_held(held).await,
            Err(e) => Err(e),
        };
        let tx = match begun {
            Ok(tx) => tx,
            Err(e) => {
                // Not written; the others waiting try for themselves.
                self.waiting().retain(|w| w.id != id);
                return Err(e);
            }
        };
        tx.commit().await?;
        match outcome.try_recv() {
            Ok(result) => result.map_err(StoreError::SharedWrite),
            Err(_) => Err(StoreError::SharedWrite(
                "the transaction that took this write ended without a word".into(),
            )),
        }
    }

    /// SQLite: the write connection outside any transaction, for work that
    /// manages its own (migrations). `None` on PostgreSQL.
    pub(crate) async fn connection(&self) -> Result<Option<ExclusiveConn>, StoreError> {
        match &self.target {
            Target::Sqlite(slot) => Ok(Some(ExclusiveConn(take_turn(slot).await?))),
            Target::Pool(_) => Ok(None),
        }
    }

    /// Closes the SQLite write connection once the current writer is done;
    /// later writes fail. Nothing on PostgreSQL (the pool is closed with the
    /// readers).
    pub(crate) async fn close(&self) {
        if let Target::Sqlite(slot) = &self.target {
            let taken = slot.lock().await.take();
            if let Some(mut slot) = taken {
                if slot.in_tx {
                    let _ = slot.conn.execute("ROLLBACK").await;
                }
                if let Err(e) = slot.conn.close().await {
                    tracing::debug!(error = %e, "closing the write connection failed");
                }
            }
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // A panic while holding it leaves a plain Vec behind: still usable.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Waits for the SQLite write connection; rolls back what an abandoned
/// transaction left open.
async fn take_turn(slot: &Arc<Mutex<Option<Slot>>>) -> Result<Held, StoreError> {
    let guard: OwnedMutexGuard<Option<Slot>> = slot.clone().lock_owned().await;
    let mut held = OwnedMutexGuard::try_map(guard, Option::as_mut)
        .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
    if held.in_tx {
        // Fails harmlessly when SQLite has already rolled the transaction back.
        if let Err(e) = held.conn.execute("ROLLBACK").await {
            tracing::debug!(error = %e, "rolling back an abandoned write");
        }
        held.in_tx = false;
    }
    Ok(held)
}

/// The SQLite write connection held by one user. Dropped with a transaction
/// open, it rolls it back before the next writer's turn.
struct Turn(Option<Held>);

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(mut held) = self.0.take() else {
            return;
        };
        if !held.in_tx {
            return;
        }
        // Rolling back needs the connection's worker: do it in a task that
        // keeps the turn until then. Without a runtime the flag stays set and
        // the next turn rolls back first.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match held.conn.execute("ROLLBACK").await {
                    Ok(_) => held.in_tx = false,
                    Err(e) => tracing::warn!(error = %e, "rolling back an abandoned write failed"),
                }
            });
        }
    }
}

/// The SQLite write connection outside a transaction (see [`Writer::connection`]).
pub(crate) struct ExclusiveConn(Held);

impl std::ops::Deref for ExclusiveConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.0.conn
    }
}

impl std::ops::DerefMut for ExclusiveConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.0.conn
    }
}

enum TxInner {
    Sqlite(Turn),
    Pool(sqlx::Transaction<'static, sqlx::Any>),
}

/// A write transaction: dropped without [`WriteTx::commit`], it rolls back.
pub(crate) struct WriteTx {
    inner: TxInner,
    writer: Writer,
}

impl WriteTx {
    /// Commits; on SQLite it first runs every carried write waiting, each after
    /// this transaction's own statements and under a savepoint of its own, so
    /// one that fails fails only itself; and it tells each caller its outcome
    /// before the next writer may start. Returns how many carried writes this
    /// commit took.
    pub(crate) async fn commit(self) -> Result<usize, StoreError> {
        let WriteTx { inner, writer } = self;
        let mut turn = match inner {
            TxInner::Pool(tx) => {
                tx.commit().await?;
                return Ok(0);
            }
            TxInner::Sqlite(turn) => turn,
        };
        let Some(held) = turn.0.as_mut() else {
            return Err(StoreError::Corrupt(
                "a write transaction lost its connection".into(),
            ));
        };
        let taken = std::mem::take(&mut *writer.waiting());
        let carried = taken.len();
        let mut told = Vec::with_capacity(carried);
        // Whether the transaction is still whole: a savepoint that cannot be
        // rolled back to means SQLite rolled the whole transaction back (disk
        // full, I/O error), and nothing may be committed.
        let mut whole = true;
        for waiting in taken {
            let own = if whole {
                let (own, kept) = carry_one(&mut held.conn, waiting.write).await;
                whole = kept;
                own
            } else {
                Err("not written: the transaction failed".to_owned())
            };
            told.push((waiting.done, own));
        }
        let committed = if whole {
            held.conn.execute("COMMIT").await.map(|_| ())
        } else {
            Err(sqlx::Error::Protocol(
                "a carried write broke the transaction".into(),
            ))
        };
        if committed.is_ok() {
            held.in_tx = false;
        }
        for (done, own) in told {
            let outcome = match (&committed, own) {
                (Ok(()), own) => own,
                (Err(e), _) => Err(format!("commit failed: {e}")),
            };
            let _ = done.send(outcome);
        }
        // Only now may the next writer start (after rolling back what failed).
        drop(turn);
        committed?;
        Ok(carried)
    }
}

/// Runs one carried write under a savepoint. Returns its outcome, and whether
/// the enclosing transaction is still whole.
async fn carry_one(conn: &mut AnyConnection, write: CarriedWrite) -> (Result<(), String>, bool) {
    if let Err(e) = conn.execute("SAVEPOINT carried").await {
        return (Err(e.to_string()), false);
    }
    match write(&mut *conn).await {
        Ok(()) => match conn.execute("RELEASE carried").await {
            Ok(_) => (Ok(()), true),
            Err(e) => (Err(e.to_string()), false),
        },
        Err(e) => {
            let undone = async {
                conn.execute("ROLLBACK TO carried").await?;
                conn.execute("RELEASE carried").await
            }
            .await;
            (Err(e.to_string()), undone.is_ok())
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.inner {
            TxInner::Sqlite(Turn(Some(held))) => &held.conn,
            TxInner::Pool(tx) => tx,
            TxInner::Sqlite(Turn(None)) => {
                unreachable!("a transaction holds its turn until dropped")
            }
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.inner {
            TxInner::Sqlite(Turn(Some(held))) => &mut held.conn,
            TxInner::Pool(tx) => tx,
            TxInner::Sqlite(Turn(None)) => {
                unreachable!("a transaction holds its turn until dropped")
            }
        }
    }
}
