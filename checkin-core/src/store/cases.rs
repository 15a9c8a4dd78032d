//! Confirmed cases, as the health authority submits them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{to_ms, Cases, StoreError};
use crate::model::{Case, NewCase};

impl Cases<'_> {
    /// Records a confirmed case.
    pub async fn add_case(self, new: &NewCase, now: DateTime<Utc>) -> Result<Case, StoreError> {
        if new.contagious_from > new.contagious_to {
            return Err(StoreError::Invalid(
                "the contagious window ends before it starts".into(),
            ));
        }
        let hash = self.store.vault().hash(&new.phone);
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO cases (authority_id, phone_hash, confirmed_at_ms, contagious_from_ms, \
             contagious_to_ms, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.authority_id)
        .bind(&hash.0[..])
        .bind(to_ms(new.confirmed_at))
        .bind(to_ms(new.contagious_from))
        .bind(to_ms(new.contagious_to))
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Case {
            id: row.try_get("id")?,
            authority_id: new.authority_id,
            confirmed_at: new.confirmed_at,
            contagious_from: new.contagious_from,
            contagious_to: new.contagious_to,
            created_at: now,
        })
    }

    /// How many cases are stored.
    pub async fn count_cases(self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM cases")
            .fetch_one(self.store.pool())
            .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }
}
