//! What a unit of work sees: [`Conn`], the statements it runs ([`Query`],
//! shaped like `sqlx::query` so units read like their SQL), the rows they
//! return ([`Row`]), and the engine's counters. A leaf of the engine: the
//! backends implement [`Statements`] for it.

use std::sync::Arc;

use super::value::{FromValue, ToValue, Value};
use crate::store::error::{DbError, StoreError};

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

/// What runs statements for a unit: a SQLite connection or a PostgreSQL one
/// (`sqlite.rs`, `postgres.rs`).
pub(crate) trait Statements {
    fn backend(&self) -> Backend;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
}

/// A connection inside a unit of work; counts the unit's statements.
pub(crate) struct Conn<'a> {
    inner: &'a mut dyn Statements,
    pub(super) statements: u64,
}

impl<'a> Conn<'a> {
    pub(super) fn new(inner: &'a mut dyn Statements) -> Conn<'a> {
        Conn {
            inner,
            statements: 0,
        }
    }
}

impl Conn<'_> {
    pub(crate) fn backend(&self) -> Backend {
        self.inner.backend()
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        self.statements += 1;
        self.inner.execute(sql, params)
    }

    /// Runs a statement; returns its rows.
    pub(crate) fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.statements += 1;
        self.inner.fetch(sql, params)
    }
}

/// What the engine did, as metrics: units of work by kind, the write
/// transactions they took (a SQLite group commit is one for many units), and
/// their statements. Cost per check-in = these ÷ `checkin_mo_total`.
pub(super) fn count_unit(backend: Backend, kind: &'static str, statements: u64) {
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    metrics::counter!("checkin_db_units_total", "backend" => backend, "kind" => kind).increment(1);
    metrics::counter!("checkin_db_statements_total", "backend" => backend, "kind" => kind)
        .increment(statements);
}

/// One write transaction committed (or rolled back).
pub(super) fn count_transaction(backend: Backend) {
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

    /// The same statement, owning its text (to move into a unit).
    pub(crate) fn into_owned(self) -> Query<'static> {
        Query {
            sql: self.sql.into_owned().into(),
            params: self.params,
        }
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
    pub(super) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
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
