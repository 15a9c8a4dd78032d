//! Routes (issue 20): the operator each phone last texted or dialled us
//! through (`phone_routes`, by the phone's keyed hash), and the numbering
//! plan (`number_plan`, replaced whole by an import, its `flags` row telling
//! a running gateway it changed). The decisions that read them are pure, in
//! `routing.rs`; the MO unit learns through [`learn_in`] inside its own
//! transaction, and a claim reads the learned route with its rows.

use chrono::{DateTime, Utc};

use super::base::{from_ms, to_ms, Params};
use super::db::{self, Conn};
use super::error::StoreError;
use super::handles::Routes;
use crate::privacy::PhoneHash;
use crate::routing::{NumberPlan, NumberRange, OperatorName};

/// The plan's row in `flags`: value the ranges, `updated_at_ms` the import.
const NUMBER_PLAN_FLAG: &str = "number_plan";

/// A learned route unchanged for less than this is not written again.
pub const ROUTE_REFRESH_MS: i64 = 24 * 3600 * 1000;

/// Rows of one plan insert: 3 binds a row, far below both backends' limits.
const PLAN_ROWS_PER_STATEMENT_MAX: usize = 1000;

/// Upserts the routes of `routes` (phone, operator) learned at `now_ms` in one
/// statement, inside the caller's transaction: a new phone is inserted, a
/// phone through another operator moves (number portability), a phone
/// through the same operator is written again only once its route is a day
/// old (so purge keeps the routes of phones still in use). Of one phone
/// twice, the later wins. Returns the rows written.
pub(crate) fn learn_in(
    conn: &mut Conn<'_>,
    routes: &[(PhoneHash, &OperatorName)],
    now_ms: i64,
) -> Result<u64, StoreError> {
    // One row per phone (PostgreSQL refuses an upsert meeting a key twice):
    // the last one wins.
    let mut seen = std::collections::HashSet::new();
    let mut rows: Vec<&(PhoneHash, &OperatorName)> = routes
        .iter()
        .rev()
        .filter(|(h, _)| seen.insert(h.0))
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    rows.reverse();
    let mut params = Params::new(conn.backend());
    let mut sql =
        String::from("INSERT INTO phone_routes (phone_hash, operator, learned_at_ms) VALUES ");
    for k in 0..rows.len() {
        if k > 0 {
            sql.push(',');
        }
        let [hash, operator, at] = std::array::from_fn(|_| params.next());
        sql.push_str(&format!("({hash}, {operator}, {at})"));
    }
    // A constant of ours, never text from outside.
    sql.push_str(&format!(
        " ON CONFLICT (phone_hash) DO UPDATE SET operator = excluded.operator, \
         learned_at_ms = excluded.learned_at_ms \
         WHERE phone_routes.operator <> excluded.operator \
         OR phone_routes.learned_at_ms <= excluded.learned_at_ms - {ROUTE_REFRESH_MS}"
    ));
    let mut query = db::query(&sql);
    for (hash, operator) in rows {
        query = query.bind(&hash.0[..]).bind(operator.as_str()).bind(now_ms);
    }
    Ok(query.execute(conn)?.rows_affected())
}

/// An operator name as stored.
fn operator_col(name: String) -> Result<OperatorName, StoreError> {
    OperatorName::new(&name).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Routes<'_> {
    /// Replaces the whole numbering plan with `plan` in one transaction and
    /// marks when (see [`Routes::plan_imported_at`]); returns its ranges.
    pub async fn import_plan(
        &self,
        plan: &NumberPlan,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let rows: Vec<(String, String)> = plan
            .entries()
            .iter()
            .map(|(range, operator)| (range.to_string(), operator.as_str().to_owned()))
            .collect();
        let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        self.store
            .write(move |tx| {
                db::query("DELETE FROM number_plan").execute(&mut *tx)?;
                for (c, chunk) in rows.chunks(PLAN_ROWS_PER_STATEMENT_MAX).enumerate() {
                    let mut params = Params::new(tx.backend());
                    let mut sql =
                        String::from("INSERT INTO number_plan (range, operator, position) VALUES ");
                    for k in 0..chunk.len() {
                        if k > 0 {
                            sql.push(',');
                        }
                        let [range, operator, position] = std::array::from_fn(|_| params.next());
                        sql.push_str(&format!("({range}, {operator}, {position})"));
                    }
                    let mut query = db::query(&sql);
                    for (k, (range, operator)) in chunk.iter().enumerate() {
                        let position = c * PLAN_ROWS_PER_STATEMENT_MAX + k;
                        query = query
                            .bind(range.as_str())
                            .bind(operator.as_str())
                            .bind(i64::try_from(position).unwrap_or(i64::MAX));
                    }
                    query.execute(&mut *tx)?;
                }
                db::query(
                    "INSERT INTO flags (name, value, updated_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(NUMBER_PLAN_FLAG)
                .bind(i64::try_from(count).unwrap_or(i64::MAX))
                .bind(to_ms(now))
                .execute(&mut *tx)?;
                Ok(count)
            })
            .await
    }

    /// The numbering plan as last imported, in the file's order (empty
    /// before the first import).
    pub async fn plan(&self) -> Result<NumberPlan, StoreError> {
        let rows = db::query("SELECT range, operator FROM number_plan ORDER BY position")
            .read_all(self.store.pool())
            .await?;
        let entries = rows
            .iter()
            .map(|row| {
                let range: String = row.try_get("range")?;
                let range = range.parse::<NumberRange>().map_err(StoreError::Corrupt)?;
                Ok((range, operator_col(row.try_get("operator")?)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(NumberPlan::new(entries))
    }

    /// When the plan was last imported (`None`: never): a running gateway
    /// polls it and reloads [`Routes::plan`] when it moves.
    pub async fn plan_imported_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = db::query("SELECT updated_at_ms FROM flags WHERE name = $1")
            .bind(NUMBER_PLAN_FLAG)
            .read_optional(self.store.pool())
            .await?;
        row.map(|r| from_ms(r.try_get::<i64, _>("updated_at_ms")?))
            .transpose()
    }

    /// Learns the operators phones came through (see [`learn_in`]: nothing
    /// is written for a route unchanged and less than a day old); returns
    /// the rows written.
    pub async fn learn(
        &self,
        routes: &[(PhoneHash, OperatorName)],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if routes.is_empty() {
            return Ok(0);
        }
        let routes = routes.to_vec();
        self.store
            .write(move |tx| {
                let refs: Vec<(PhoneHash, &OperatorName)> =
                    routes.iter().map(|(h, o)| (*h, o)).collect();
                learn_in(tx, &refs, to_ms(now))
            })
            .await
    }

    /// The operator the phone last came through, if it is known.
    pub async fn route_of(&self, phone: &PhoneHash) -> Result<Option<OperatorName>, StoreError> {
        let row = db::query("SELECT operator FROM phone_routes WHERE phone_hash = $1")
            .bind(&phone.0[..])
            .read_optional(self.store.pool())
            .await?;
        row.map(|r| operator_col(r.try_get("operator")?))
            .transpose()
    }
}
