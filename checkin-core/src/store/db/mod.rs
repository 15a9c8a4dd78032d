//! The engine under the store: units of work run whole on a connection, one
//! hop each. A unit is a plain closure over [`Conn`] that reads, decides and
//! writes; [`Db::write`] runs it in a write transaction and [`Db::read`] on a
//! read connection.
//!
//! - SQLite (`sqlite.rs`): one writer thread owns the write connection
//!   (`rusqlite`, statements cached) and commits whatever units are waiting in
//!   one transaction, each under its own savepoint (group commit); a few
//!   reader threads own read-only connections. A unit costs one hand-off to
//!   the thread and one back, never one per statement or row.
//! - PostgreSQL (`postgres.rs`): sqlx's typed `PgPool`; a unit runs on a
//!   blocking thread and awaits each statement there (the network round trip
//!   is PostgreSQL's own cost), in its own transaction.
//!
//! Both run the same SQL: `$N` placeholders, integers for times and flags.

mod conn;
mod postgres;
mod sqlite;
mod value;

pub use conn::Backend;
pub(crate) use conn::{query, Conn, Query, Row};
pub(crate) use postgres::PgDb;
pub use sqlite::SqliteSync;
pub(crate) use sqlite::{
    migrate_sqlite, path_of_url as sqlite_path_of_url, SqliteDb, SqliteSettings, CARRY_WAIT_MAX,
};

use super::error::StoreError;

/// The database: cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

impl Db {
    /// Runs `unit` in a write transaction: committed when it returns `Ok`,
    /// rolled back (only its own writes) when it returns `Err`.
    pub(crate) async fn write<R, F>(&self, unit: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        match self {
            Db::Sqlite(db) => db.write(unit).await,
            Db::Postgres(db) => db.write(unit).await,
        }
    }

    /// [`Db::write`] for a unit nobody waits on urgently (send results,
    /// receipts): on SQLite it rides in the next group commit instead of
    /// starting one (see `sqlite.rs`); on PostgreSQL the same as `write`.
    pub(crate) async fn write_carried<R, F>(&self, unit: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        match self {
            Db::Sqlite(db) => db.write_carried(unit).await,
            Db::Postgres(db) => db.write(unit).await,
        }
    }

    /// Runs `unit` on a read connection (SQLite: read-only).
    pub(crate) async fn read<R, F>(&self, unit: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        match self {
            Db::Sqlite(db) => db.read(unit).await,
            Db::Postgres(db) => db.read(unit).await,
        }
    }

    /// Stops the threads (SQLite) or closes the pool, once queued units ran.
    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(db) => db.close().await,
            Db::Postgres(db) => db.close().await,
        }
    }
}

/// A statement alone as a read unit (most reads are one statement).
impl Query<'_> {
    /// The statement alone as a read unit: its rows, from a read connection.
    pub(crate) async fn read_all(self, db: &Db) -> Result<Vec<Row>, StoreError> {
        let query = self.into_owned();
        db.read(move |c| Ok(query.fetch_all(c)?)).await
    }

    /// [`Query::read_all`]'s first row, if any.
    pub(crate) async fn read_optional(self, db: &Db) -> Result<Option<Row>, StoreError> {
        Ok(self.read_all(db).await?.into_iter().next())
    }

    /// [`Query::read_all`]'s one row.
    pub(crate) async fn read_one(self, db: &Db) -> Result<Row, StoreError> {
        self.read_optional(db).await?.ok_or_else(|| {
            StoreError::Database(super::error::DbError::Decode {
                column: String::new(),
                message: "the statement returned no row".into(),
            })
        })
    }
}
