//! PostgreSQL through sqlx's typed pool. A unit runs on one of tokio's
//! blocking threads and waits there for each statement, so the same unit code
//! serves both backends; each unit is a transaction of its own (PostgreSQL
//! has many writers: no group commit of ours).

use std::sync::Arc;

use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::{Column, Postgres, Row as _, TypeInfo, ValueRef};
use tokio::runtime::Handle;

use super::conn::{count_transaction, count_unit, Backend, Conn, Row, Statements};
use super::value::{Kind, Value};
use crate::store::error::{DbError, StoreError};

/// The PostgreSQL database: cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct PgDb {
    pool: PgPool,
}

/// A PostgreSQL connection inside a unit.
struct PgConn<'a> {
    conn: &'a mut sqlx::PgConnection,
    runtime: Handle,
}

impl PgDb {
    pub(crate) fn new(pool: PgPool) -> PgDb {
        PgDb { pool }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move |runtime| {
            let mut tx = runtime.block_on(pool.begin()).map_err(DbError::from)?;
            let mut statements = PgConn {
                conn: &mut tx,
                runtime: runtime.clone(),
            };
            let mut unit = Conn::new(&mut statements);
            let result = work(&mut unit);
            count_unit(Backend::Postgres, "write", unit.statements);
            count_transaction(Backend::Postgres);
            match result {
                Ok(r) => {
                    runtime.block_on(tx.commit()).map_err(DbError::from)?;
                    Ok(r)
                }
                Err(e) => {
                    let _ = runtime.block_on(tx.rollback());
                    Err(e)
                }
            }
        })
        .await
    }

    pub(crate) async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move |runtime| {
            let mut conn = runtime.block_on(pool.acquire()).map_err(DbError::from)?;
            let mut statements = PgConn {
                conn: &mut conn,
                runtime: runtime.clone(),
            };
            let mut unit = Conn::new(&mut statements);
            let result = work(&mut unit);
            count_unit(Backend::Postgres, "read", unit.statements);
            result
        })
        .await
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

async fn blocking<R, F>(work: F) -> Result<R, StoreError>
where
    F: FnOnce(&Handle) -> Result<R, StoreError> + Send + 'static,
    R: Send + 'static,
{
    let runtime = Handle::current();
    tokio::task::spawn_blocking(move || work(&runtime))
        .await
        .map_err(|e| StoreError::Corrupt(format!("a unit of work panicked: {e}")))?
}

fn arguments<'q>(
    mut query: sqlx::query::Query<'q, Postgres, PgArguments>,
    params: &'q [Value],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    for value in params {
        query = match value {
            Value::Null(Kind::Int) => query.bind(None::<i64>),
            Value::Null(Kind::Real) => query.bind(None::<f64>),
            Value::Null(Kind::Text) => query.bind(None::<&str>),
            Value::Null(Kind::Blob) => query.bind(None::<&[u8]>),
            Value::Int(v) => query.bind(*v),
            Value::Real(v) => query.bind(*v),
            Value::Text(v) => query.bind(v.as_str()),
            Value::Blob(v) => query.bind(v.as_slice()),
        };
    }
    query
}

impl Statements for PgConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let query = arguments(sqlx::query(sql), params);
        let done = self.runtime.block_on(query.execute(&mut *self.conn))?;
        Ok(done.rows_affected())
    }

    fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let query = arguments(sqlx::query(sql), params);
        let rows = self.runtime.block_on(query.fetch_all(&mut *self.conn))?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let columns: Arc<[String]> = first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        rows.iter()
            .map(|row| {
                let values = (0..columns.len())
                    .map(|i| decode(row, i))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }
}

/// One column of a PostgreSQL row as a [`Value`], by its type.
fn decode(row: &PgRow, i: usize) -> Result<Value, DbError> {
    let raw = row.try_get_raw(i)?;
    let type_name = raw.type_info().name().to_owned();
    let kind = match type_name.as_str() {
        "INT8" | "INT4" | "INT2" | "BOOL" => Kind::Int,
        "FLOAT8" | "FLOAT4" => Kind::Real,
        "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => Kind::Text,
        "BYTEA" => Kind::Blob,
        other => {
            return Err(DbError::Decode {
                column: row.columns()[i].name().to_owned(),
                message: format!("unsupported type {other}"),
            })
        }
    };
    if raw.is_null() {
        return Ok(Value::Null(kind));
    }
    Ok(match type_name.as_str() {
        "INT8" => Value::Int(row.try_get::<i64, _>(i)?),
        "INT4" => Value::Int(i64::from(row.try_get::<i32, _>(i)?)),
        "INT2" => Value::Int(i64::from(row.try_get::<i16, _>(i)?)),
        "BOOL" => Value::Int(i64::from(row.try_get::<bool, _>(i)?)),
        "FLOAT8" => Value::Real(row.try_get::<f64, _>(i)?),
        "FLOAT4" => Value::Real(f64::from(row.try_get::<f32, _>(i)?)),
        "BYTEA" => Value::Blob(row.try_get::<Vec<u8>, _>(i)?),
        _ => Value::Text(row.try_get::<String, _>(i)?),
    })
}
