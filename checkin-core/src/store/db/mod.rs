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

mod postgres;
mod sqlite;
mod value;

use std::sync::Arc;

pub(crate) use postgres::PgDb;
pub(crate) use sqlite::{
    migrate_sqlite, path_of_url as sqlite_path_of_url, SqliteDb, SqliteSettings,
};
pub(crate) use value::{FromValue, Kind, ToValue, Value};

use super::{Backend, StoreError};

/// Why a statement failed, on either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("no column {0:?} in the result")]
    NoColumn(String),
    #[error("column {column:?}: {message}")]
    Decode { column: String, message: String },
    #[error("the database is closed")]
    Closed,
    /// A failure shared by every unit of a group commit (the commit's).
    #[error("{0}")]
    Shared(String),
}

impl DbError {
    /// A UNIQUE or PRIMARY KEY constraint refused the row.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            DbError::Postgres(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// The same failure again, for the next unit of a group that shares it.
    fn again(&self) -> DbError {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, m)) => {
                DbError::Sqlite(rusqlite::Error::SqliteFailure(*e, m.clone()))
            }
            DbError::Closed => DbError::Closed,
            other => DbError::Shared(other.to_string()),
        }
    }
}

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

/// A connection inside a unit of work; counts the unit's statements.
pub(crate) struct Conn<'a> {
    inner: Inner<'a>,
    statements: u64,
}

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(postgres::PgConn<'a>),
}

impl<'a> Conn<'a> {
    fn sqlite(conn: &'a rusqlite::Connection) -> Conn<'a> {
        Conn {
            inner: Inner::Sqlite(conn),
            statements: 0,
        }
    }

    fn postgres(conn: postgres::PgConn<'a>) -> Conn<'a> {
        Conn {
            inner: Inner::Postgres(conn),
            statements: 0,
        }
    }
}

impl Conn<'_> {
    pub(crate) fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        self.statements += 1;
        match &mut self.inner {
            Inner::Sqlite(conn) => sqlite::execute(conn, sql, params),
            Inner::Postgres(conn) => conn.execute(sql, params),
        }
    }

    /// Runs a statement; returns its rows.
    pub(crate) fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.statements += 1;
        match &mut self.inner {
            Inner::Sqlite(conn) => sqlite::fetch(conn, sql, params),
            Inner::Postgres(conn) => conn.fetch(sql, params),
        }
    }
}

/// What the engine did, as metrics: units of work by kind, the write
/// transactions they took (a SQLite group commit is one for many units), and
/// their statements. Cost per check-in = these ÷ `checkin_mo_total`.
fn count_unit(backend: Backend, kind: &'static str, statements: u64) {
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    metrics::counter!("checkin_db_units_total", "backend" => backend, "kind" => kind).increment(1);
    metrics::counter!("checkin_db_statements_total", "backend" => backend, "kind" => kind)
        .increment(statements);
}

/// One write transaction committed (or rolled back).
fn count_transaction(backend: Backend) {
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    metrics::counter!("checkin_db_write_transactions_total", "backend" => backend).increment(1);
}

/// A statement and its parameters (the shape of `sqlx::query`, so units read
/// like the queries they run).
#[derive(Debug)]
#[must_use]
pub(crate) struct Query<'q> {
    sql: std::borrow::Cow<'q, str>,
    params: Vec<Value>,
}

/// A statement to run inside a unit.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql: sql.into(),
        params: Vec::new(),
    }
}

/// What a statement changed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done(u64);

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

impl<'q> Query<'q> {
    /// The next parameter (`$1`, `$2`, … in order).
    pub(crate) fn bind(mut self, value: impl ToValue) -> Self {
        self.params.push(value.to_value());
        self
    }

    pub(crate) fn execute(self, conn: &mut Conn<'_>) -> Result<Done, DbError> {
        conn.execute(&self.sql, &self.params).map(Done)
    }

    pub(crate) fn fetch_all(self, conn: &mut Conn<'_>) -> Result<Vec<Row>, DbError> {
        conn.fetch(&self.sql, &self.params)
    }

    /// The statement alone as a read unit: its rows, from a read connection.
    pub(crate) async fn read_all(self, db: &Db) -> Result<Vec<Row>, StoreError> {
        let query = Query {
            sql: self.sql.into_owned().into(),
            params: self.params,
        };
        db.read(move |c| Ok(query.fetch_all(c)?)).await
    }

    /// [`Query::read_all`]'s first row, if any.
    pub(crate) async fn read_optional(self, db: &Db) -> Result<Option<Row>, StoreError> {
        Ok(self.read_all(db).await?.into_iter().next())
    }

    /// [`Query::read_all`]'s one row.
    pub(crate) async fn read_one(self, db: &Db) -> Result<Row, StoreError> {
        self.read_optional(db).await?.ok_or_else(|| {
            StoreError::Database(DbError::Decode {
                column: String::new(),
                message: "the statement returned no row".into(),
            })
        })
    }

    pub(crate) fn fetch_optional(self, conn: &mut Conn<'_>) -> Result<Option<Row>, DbError> {
        Ok(self.fetch_all(conn)?.into_iter().next())
    }

    pub(crate) fn fetch_one(self, conn: &mut Conn<'_>) -> Result<Row, DbError> {
        self.fetch_optional(conn)?.ok_or_else(|| DbError::Decode {
            column: String::new(),
            message: "the statement returned no row".into(),
        })
    }

    /// The first column of the one row.
    pub(crate) fn fetch_scalar<T: FromValue>(self, conn: &mut Conn<'_>) -> Result<T, DbError> {
        self.fetch_one(conn)?.try_get(0)
    }
}

/// A row of a result: its values by column name or position.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// How a row's column is named: its name or its position.
pub(crate) trait ColumnIndex {
    fn position(&self, columns: &[String]) -> Result<usize, DbError>;
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Result<usize, DbError> {
        columns
            .iter()
            .position(|c| c == self)
            .ok_or_else(|| DbError::NoColumn((*self).to_owned()))
    }
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Result<usize, DbError> {
        if *self < columns.len() {
            Ok(*self)
        } else {
            Err(DbError::NoColumn(format!("#{self}")))
        }
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    pub(crate) fn try_get<T: FromValue, I: ColumnIndex>(&self, column: I) -> Result<T, DbError> {
        let i = column.position(&self.columns)?;
        T::from_value(&self.values[i]).map_err(|message| DbError::Decode {
            column: self.columns[i].clone(),
            message,
        })
    }
}
