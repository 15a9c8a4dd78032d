//! The outbox: every SMS the service sends is first a row here, so nothing is lost
//! between deciding to send and the SMSC accepting it.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row;

use super::{time_col, to_ms, Backend, Store, StoreError};
use crate::model::{NewMessage, OutboxMessage, OutboxStatus, Priority};
use crate::Msisdn;

/// Longest message body accepted (a concatenated SMS of 10 UCS2 segments).
pub const MESSAGE_CHARS_MAX: usize = 670;
/// Most messages one claim hands to a sender.
pub const CLAIM_BATCH_MAX: u32 = 512;

const MESSAGE_COLUMNS: &str = "id, recipient_sealed, body, priority, status, attempts, \
     smsc_message_ids, created_at_ms, updated_at_ms, next_attempt_at_ms";

impl Store {
    /// Queues a message; returns its id.
    pub async fn enqueue(&self, new: &NewMessage, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let mut conn = self.pool().acquire().await?;
        self.enqueue_in(&mut conn, new, now).await
    }

    /// Queues a message inside the caller's transaction (so a reply commits with
    /// the check-in it answers).
    pub(crate) async fn enqueue_in(
        &self,
        conn: &mut AnyConnection,
        new: &NewMessage,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        if new.text.is_empty() || new.text.chars().count() > MESSAGE_CHARS_MAX {
            return Err(StoreError::Invalid(format!(
                "a message has 1..={MESSAGE_CHARS_MAX} characters"
            )));
        }
        let hash = self.vault().hash(&new.recipient);
        let row = sqlx::query(
            "INSERT INTO outbox (recipient_hash, recipient_sealed, body, priority, status, \
             attempts, smsc_message_ids, created_at_ms, updated_at_ms, next_attempt_at_ms) \
             VALUES ($1, $2, $3, $4, 'pending', 0, '', $5, $5, $5) RETURNING id",
        )
        .bind(&hash.0[..])
        .bind(self.vault().seal(&new.recipient))
        .bind(&new.text)
        .bind(new.priority.as_i64())
        .bind(to_ms(now))
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// One message by id.
    pub async fn message(&self, id: i64) -> Result<Option<OutboxMessage>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| self.message_from_row(&r)).transpose()
    }

    /// Every message to `recipient`, oldest first (tests, support tools).
    pub async fn messages_to(&self, recipient: &Msisdn) -> Result<Vec<OutboxMessage>, StoreError> {
        let hash = self.vault().hash(recipient);
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE recipient_hash = $1 ORDER BY id"
        ))
        .bind(&hash.0[..])
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| self.message_from_row(r)).collect()
    }

    /// Claims up to `limit` due pending messages, most urgent first, and marks them
    /// `sending` with one more attempt. On PostgreSQL several instances claim
    /// concurrently without taking the same rows (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_ready(
        &self,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at_ms = $1 \
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' \
             AND next_attempt_at_ms <= $1 ORDER BY priority, id LIMIT $2 {lock}) \
             RETURNING {MESSAGE_COLUMNS}"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(to_ms(now))
            .bind(i64::from(limit.min(CLAIM_BATCH_MAX)))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut messages = rows
            .iter()
            .map(|r| self.message_from_row(r))
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING does not keep the sub-select's order.
        messages.sort_by_key(|m| (m.priority, m.id));
        Ok(messages)
    }

    /// The SMSC accepted the message: record its segment ids.
    pub async fn mark_sent(
        &self,
        id: i64,
        smsc_message_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_status(
            id,
            OutboxStatus::Sent,
            &smsc_message_ids.join(","),
            None,
            now,
        )
        .await
    }

    /// Gives up on the message (permanent rejection or retries exhausted).
    pub async fn mark_failed(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = $1, updated_at_ms = $2 WHERE id = $3",
        )
        .bind(reason)
        .bind(to_ms(now))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sent, but the answer was lost: it may have gone out. Never resent
    /// automatically (a duplicate alert is worse than a support call).
    pub async fn mark_unknown(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_status(id, OutboxStatus::Unknown, "", Some(reason), now)
            .await
    }

    /// Puts messages a crashed sender had claimed (`sending`) back in the queue;
    /// returns how many. Run at start-up, before any sender of this store runs.
    pub async fn requeue_sending(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at_ms = $1, updated_at_ms = $1 \
             WHERE status = 'sending'",
        )
        .bind(to_ms(now))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Puts the message back in the queue, due at `next_attempt_at`.
    pub async fn mark_retry(
        &self,
        id: i64,
        reason: &str,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', last_error = $1, updated_at_ms = $2, \
             next_attempt_at_ms = $3 WHERE id = $4",
        )
        .bind(reason)
        .bind(to_ms(now))
        .bind(to_ms(next_attempt_at))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn set_status(
        &self,
        id: i64,
        status: OutboxStatus,
        smsc_message_ids: &str,
        last_error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = $1, smsc_message_ids = $2, last_error = $3, \
             updated_at_ms = $4 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(smsc_message_ids)
        .bind(last_error)
        .bind(to_ms(now))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    fn message_from_row(&self, row: &AnyRow) -> Result<OutboxMessage, StoreError> {
        let sealed: Vec<u8> = row.try_get("recipient_sealed")?;
        let priority: i64 = row.try_get("priority")?;
        let status: String = row.try_get("status")?;
        let attempts: i64 = row.try_get("attempts")?;
        let ids: String = row.try_get("smsc_message_ids")?;
        Ok(OutboxMessage {
            id: row.try_get("id")?,
            recipient: self.vault().open(&sealed)?,
            text: row.try_get("body")?,
            priority: Priority::from_i64(priority)
                .ok_or_else(|| StoreError::Corrupt(format!("priority {priority}")))?,
            status: OutboxStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            smsc_message_ids: ids
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: time_col(row, "created_at_ms")?,
            updated_at: time_col(row, "updated_at_ms")?,
            next_attempt_at: time_col(row, "next_attempt_at_ms")?,
        })
    }
}
