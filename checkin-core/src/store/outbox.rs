//! The outbox: every SMS the service sends is first a row here, so nothing is lost
//! between deciding to send and the SMSC accepting it.

use super::db::{self, Conn, Row};
use chrono::{DateTime, Utc};

use super::base::{time_col, to_ms, Params, Store};
use super::checkins::sqlite_inserted_ids;
use super::db::Backend;
use super::error::StoreError;
use super::handles::Outbox;
use crate::model::{NewMessage, OutboxMessage, OutboxStatus, Priority};
use crate::msisdn::Msisdn;
use crate::privacy::{PhoneHash, SealedPhone};
use crate::routing::OperatorName;

pub use crate::delivery::SendResult;
use crate::delivery::{settle, Settled};

/// Longest message body accepted (a concatenated SMS of 10 UCS2 segments).
pub const MESSAGE_CHARS_MAX: usize = 670;
/// Most messages one claim hands to a sender.
pub const CLAIM_BATCH_MAX: u32 = 512;

/// A message body the outbox accepts: not empty, at most `MESSAGE_CHARS_MAX`.
fn check_text(text: &str) -> Result<(), StoreError> {
    if text.is_empty() || text.chars().count() > MESSAGE_CHARS_MAX {
        return Err(StoreError::Invalid(format!(
            "a message has 1..={MESSAGE_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

/// A message to queue whose recipient is already hashed and sealed.
pub(crate) struct Outgoing<'a> {
    pub hash: &'a PhoneHash,
    pub sealed: &'a [u8],
    pub text: String,
    pub priority: Priority,
    /// The operator it must go through (a reply: its MO's), if any.
    pub operator: Option<&'a OperatorName>,
}

/// Where one column of an outbox insert gets its value.
enum Column {
    /// A placeholder, bound per row (the row, and the time of the insert in ms).
    Bind(for<'q> fn(db::Query<'q>, &Outgoing<'_>, i64) -> db::Query<'q>),
    /// The status the statement queues in.
    Status,
    /// The attempts the statement starts at.
    Attempts,
    /// No segment id yet.
    NoIds,
}

/// The columns of an outbox insert, each with its value: [`insert_sql`] takes
/// the placeholders and [`bind_rows`] the binds from this one list, so the two
/// cannot drift apart.
const INSERT_COLUMNS: [(&str, Column); 11] = [
    (
        "recipient_hash",
        Column::Bind(|q, m, _| q.bind(&m.hash.0[..])),
    ),
    ("recipient_sealed", Column::Bind(|q, m, _| q.bind(m.sealed))),
    ("body", Column::Bind(|q, m, _| q.bind(m.text.as_str()))),
    (
        "priority",
        Column::Bind(|q, m, _| q.bind(m.priority.as_i64())),
    ),
    ("status", Column::Status),
    ("attempts", Column::Attempts),
    ("smsc_message_ids", Column::NoIds),
    ("created_at_ms", Column::Bind(|q, _, now_ms| q.bind(now_ms))),
    ("updated_at_ms", Column::Bind(|q, _, now_ms| q.bind(now_ms))),
    (
        "next_attempt_at_ms",
        Column::Bind(|q, _, now_ms| q.bind(now_ms)),
    ),
    (
        "operator",
        Column::Bind(|q, m, _| q.bind(m.operator.map(OperatorName::as_str))),
    ),
];

/// `INSERT` of `rows` outbox rows in `status`, then `returning` (may be empty).
fn insert_sql(
    backend: Backend,
    rows: usize,
    status: OutboxStatus,
    attempts: u32,
    returning: &str,
) -> String {
    let names: Vec<&str> = INSERT_COLUMNS.iter().map(|(name, _)| *name).collect();
    let mut sql = format!("INSERT INTO outbox ({}) VALUES ", names.join(", "));
    let mut params = Params::new(backend);
    // Our own constants, never text from outside.
    let (status, attempts) = (format!("'{}'", status.as_str()), attempts.to_string());
    for i in 0..rows {
        sql.push_str(if i > 0 { ",(" } else { "(" });
        for (k, (_, value)) in INSERT_COLUMNS.iter().enumerate() {
            if k > 0 {
                sql.push_str(", ");
            }
            match value {
                Column::Bind(_) => sql.push_str(&params.next()),
                Column::Status => sql.push_str(&status),
                Column::Attempts => sql.push_str(&attempts),
                Column::NoIds => sql.push_str("''"),
            }
        }
        sql.push(')');
    }
    sql.push_str(returning);
    sql
}

/// A reply queued already claimed (`sending`, first attempt) as `id`.
fn claimed_message(new: &Outgoing<'_>, id: i64, now: DateTime<Utc>) -> OutboxMessage {
    OutboxMessage {
        id,
        recipient: SealedPhone::from_stored(new.sealed.to_vec()),
        recipient_hash: *new.hash,
        text: new.text.clone(),
        priority: new.priority,
        status: OutboxStatus::Sending,
        attempts: 1,
        smsc_message_ids: Vec::new(),
        copies_in_doubt: 0,
        created_at: now,
        updated_at: now,
        next_attempt_at: now,
        route: new.operator.cloned(),
    }
}

/// Binds the rows of [`insert_sql`].
fn bind_rows<'q>(
    mut query: db::Query<'q>,
    rows: &[Outgoing<'_>],
    now: DateTime<Utc>,
) -> db::Query<'q> {
    for new in rows {
        for (_, value) in &INSERT_COLUMNS {
            if let Column::Bind(bind) = value {
                query = bind(query, new, to_ms(now));
            }
        }
    }
    query
}

/// A message's columns, and its route: the row's operator, else the
/// recipient's learned route (one look-up by primary key a row, inside the
/// statement that reads or claims it).
const MESSAGE_COLUMNS: &str =
    "id, recipient_hash, recipient_sealed, body, priority, status, attempts, \
     smsc_message_ids, copies_in_doubt, created_at_ms, updated_at_ms, next_attempt_at_ms, \
     COALESCE(operator, (SELECT phone_routes.operator FROM phone_routes \
     WHERE phone_routes.phone_hash = outbox.recipient_hash)) AS route";

/// Queues a message inside the caller's transaction (so a reply commits with
/// the check-in it answers).
pub(crate) fn enqueue_in(
    store: &Store,
    conn: &mut Conn<'_>,
    new: &NewMessage,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    check_text(&new.text)?;
    let hash = store.vault().hash(&new.recipient);
    let sealed = store.vault().seal(&new.recipient);
    let row = [Outgoing {
        hash: &hash,
        sealed: &sealed,
        text: new.text.clone(),
        priority: new.priority,
        operator: None,
    }];
    let sql = insert_sql(conn.backend(), 1, OutboxStatus::Pending, 0, " RETURNING id");
    let row = bind_rows(db::query(&sql), &row, now).fetch_one(&mut *conn)?;
    Ok(row.try_get("id")?)
}

/// Queues several messages inside the caller's transaction; the recipients
/// come hashed and sealed (the SMS path has both already). The first
/// `claim_max` are queued already claimed (`sending`, first attempt) and
/// returned, for a sender that takes them straight from the caller; the
/// others wait as `pending` for a claim.
pub(crate) fn enqueue_many_in(
    conn: &mut Conn<'_>,
    messages: &[Outgoing<'_>],
    now: DateTime<Utc>,
    claim_max: usize,
) -> Result<Vec<OutboxMessage>, StoreError> {
    for new in messages {
        check_text(&new.text)?;
    }
    let (claimed, pending) = messages.split_at(claim_max.min(messages.len()));
    let mut out = Vec::with_capacity(claimed.len());
    // 8 parameters a row; this keeps a statement far below both backends'
    // parameter limits.
    const ROWS_PER_STATEMENT_MAX: usize = 1000;
    let sqlite = conn.backend() == Backend::Sqlite;
    for chunk in claimed.chunks(ROWS_PER_STATEMENT_MAX) {
        if sqlite {
            // No RETURNING on SQLite: see `sqlite_inserted_ids`.
            let sql = insert_sql(conn.backend(), chunk.len(), OutboxStatus::Sending, 1, "");
            bind_rows(db::query(&sql), chunk, now).execute(&mut *conn)?;
            let ids = sqlite_inserted_ids(&mut *conn, chunk.len())?;
            for (new, id) in chunk.iter().zip(ids) {
                out.push(claimed_message(new, id, now));
            }
            continue;
        }
        let sql = insert_sql(
            conn.backend(),
            chunk.len(),
            OutboxStatus::Sending,
            1,
            " RETURNING id, recipient_sealed",
        );
        let rows = bind_rows(db::query(&sql), chunk, now).fetch_all(&mut *conn)?;
        // Rows come back in no promised order; each sealed copy is unique
        // (a fresh nonce), so it tells which message got which id.
        let mut ids: Vec<Option<i64>> = vec![None; chunk.len()];
        for (r, row) in rows.iter().enumerate() {
            let sealed: Vec<u8> = row.try_get("recipient_sealed")?;
            let fits = |k: usize| ids[k].is_none() && chunk[k].sealed == &sealed[..];
            // Usually the VALUES' order: the row's own position first (a
            // search for every row was quadratic in the group).
            let k = if r < chunk.len() && fits(r) {
                r
            } else {
                (0..chunk.len()).find(|&k| fits(k)).ok_or_else(|| {
                    StoreError::Corrupt("a queued message matches no reply".into())
                })?
            };
            ids[k] = Some(row.try_get("id")?);
        }
        for (new, id) in chunk.iter().zip(ids) {
            let id = id.ok_or_else(|| StoreError::Corrupt("a reply got no id".into()))?;
            out.push(claimed_message(new, id, now));
        }
    }
    for chunk in pending.chunks(ROWS_PER_STATEMENT_MAX) {
        let sql = insert_sql(conn.backend(), chunk.len(), OutboxStatus::Pending, 0, "");
        bind_rows(db::query(&sql), chunk, now).execute(&mut *conn)?;
    }
    Ok(out)
}

fn write_send_results(
    conn: &mut Conn<'_>,
    results: &[(i64, SendResult)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // One statement per chunk; 6 parameters a row keeps a chunk far below
    // both backends' parameter limits.
    const ROWS_PER_STATEMENT_MAX: usize = 1000;
    // Each result as its row takes it (`delivery::settle`).
    let mut receipts: Vec<(i64, String)> = Vec::new();
    let mut rows = Vec::new();
    for (id, result) in results {
        match settle(result, to_ms(now)) {
            Settled::Receipt { state } => receipts.push((*id, state)),
            Settled::Row {
                status,
                ids,
                error,
                next_attempt_at_ms,
                copies_in_doubt_added,
            } => rows.push((
                *id,
                status,
                ids,
                error,
                next_attempt_at_ms,
                copies_in_doubt_added,
            )),
        }
    }
    for chunk in receipts.chunks(ROWS_PER_STATEMENT_MAX) {
        let mut params = Params::new(conn.backend());
        let mut sql = String::from("WITH r (id, state) AS (VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let [id, state] = std::array::from_fn(|_| params.next());
            sql.push_str(&format!("({id}, {state})"));
        }
        let at = params.next();
        sql.push_str(&format!(
            ") UPDATE outbox SET delivery_state = r.state, receipt_at_ms = {at} \
             FROM r WHERE outbox.id = r.id"
        ));
        let mut query = db::query(&sql);
        for (id, state) in chunk {
            query = query.bind(*id).bind(state);
        }
        query.bind(to_ms(now)).execute(&mut *conn)?;
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT_MAX) {
        let mut params = Params::new(conn.backend());
        let mut sql = String::from("WITH r (id, status, ids, error, next_at, doubt) AS (VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let [id, status, ids, error, next_at, doubt] = std::array::from_fn(|_| params.next());
            sql.push_str(&format!(
                "({id}, {status}, {ids}, {error}, {next_at}, {doubt})"
            ));
        }
        let updated = params.next();
        sql.push_str(&format!(
            ") UPDATE outbox SET status = r.status, smsc_message_ids = r.ids, \
             last_error = r.error, updated_at_ms = {updated}, \
             next_attempt_at_ms = COALESCE(r.next_at, outbox.next_attempt_at_ms), \
             copies_in_doubt = outbox.copies_in_doubt + r.doubt \
             FROM r WHERE outbox.id = r.id"
        ));
        let mut query = db::query(&sql);
        for (id, status, ids, error, next, doubt) in chunk {
            query = query
                .bind(*id)
                .bind(status.as_str())
                .bind(ids)
                .bind(error.as_ref())
                .bind(*next)
                .bind(*doubt);
        }
        query.bind(to_ms(now)).execute(&mut *conn)?;
    }
    // Each sent segment's SMSC id, for the receipts' look-up by key.
    let ids: Vec<(&str, i64)> = results
        .iter()
        .filter_map(|(id, r)| match r {
            SendResult::Sent { message_ids } => Some((*id, message_ids)),
            _ => None,
        })
        .flat_map(|(id, ids)| ids.iter().map(move |s| (s.as_str(), id)))
        .collect();
    // One row per id: an SMSC may reuse an id (a new session may count
    // from the start again), and PostgreSQL refuses a statement whose
    // `ON CONFLICT DO UPDATE` meets the same key twice. The latest wins.
    let mut seen = std::collections::HashSet::new();
    let mut ids: Vec<(&str, i64)> = ids
        .into_iter()
        .rev()
        .filter(|(smsc_id, _)| seen.insert(*smsc_id))
        .collect();
    ids.reverse();
    for chunk in ids.chunks(ROWS_PER_STATEMENT_MAX) {
        let mut params = Params::new(conn.backend());
        let mut sql =
            String::from("INSERT INTO outbox_smsc_ids (smsc_id, outbox_id, created_at_ms) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            // Each its own placeholder: SQLite's `?` are positional.
            let [smsc_id, outbox_id, at] = std::array::from_fn(|_| params.next());
            sql.push_str(&format!("({smsc_id}, {outbox_id}, {at})"));
        }
        // An SMSC may reuse an id after a while: the latest message has it.
        sql.push_str(
            " ON CONFLICT (smsc_id) DO UPDATE SET outbox_id = excluded.outbox_id, \
             created_at_ms = excluded.created_at_ms",
        );
        let mut query = db::query(&sql);
        for (smsc_id, outbox_id) in chunk {
            query = query.bind(*smsc_id).bind(*outbox_id).bind(to_ms(now));
        }
        query.execute(&mut *conn)?;
    }
    Ok(())
}

pub(crate) fn message_from_row(row: &Row) -> Result<OutboxMessage, StoreError> {
    let sealed: Vec<u8> = row.try_get("recipient_sealed")?;
    let hash: Vec<u8> = row.try_get("recipient_hash")?;
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| StoreError::Corrupt("a recipient hash of the wrong length".into()))?;
    let priority: i64 = row.try_get("priority")?;
    let status: String = row.try_get("status")?;
    let attempts: i64 = row.try_get("attempts")?;
    let ids: String = row.try_get("smsc_message_ids")?;
    let copies: i64 = row.try_get("copies_in_doubt")?;
    let route: Option<String> = row.try_get("route")?;
    Ok(OutboxMessage {
        id: row.try_get("id")?,
        // Left sealed: the sender opens it at the submit.
        recipient: SealedPhone::from_stored(sealed),
        recipient_hash: PhoneHash(hash),
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
        copies_in_doubt: u32::try_from(copies).unwrap_or(u32::MAX),
        created_at: time_col(row, "created_at_ms")?,
        updated_at: time_col(row, "updated_at_ms")?,
        next_attempt_at: time_col(row, "next_attempt_at_ms")?,
        route: route
            .map(|name| OperatorName::new(&name))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

impl Outbox {
    /// Queues a message; returns its id. The sender is woken once it is
    /// committed (see [`super::Outbox`]).
    pub async fn enqueue(&self, new: &NewMessage, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let store = self.store.clone();
        let new = new.clone();
        let id = self
            .store
            .write(move |tx| enqueue_in(&store, tx, &new, now))
            .await?;
        self.store.outbox_signal().wake();
        Ok(id)
    }

    /// Claims up to `limit` due pending messages, most urgent first and, within a
    /// priority, the longest due first (the `outbox_ready` index's order, so a
    /// claim reads only the rows it takes however long the queue), and marks them
    /// `sending` with one more attempt. On PostgreSQL several instances claim
    /// concurrently without taking the same rows (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_ready(
        &self,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.claim_ready_upto(limit, Priority::Alert, now).await
    }

    /// [`Outbox::claim_ready`] of the priorities up to `least_urgent` only:
    /// with `Priority::Confirmation`, OTPs and confirmations but no alert
    /// (the kill switch, or a sender whose alerts wait for their rate).
    pub async fn claim_ready_upto(
        &self,
        limit: u32,
        least_urgent: Priority,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let lock = match self.store.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at_ms = $1 \
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND priority <= $3 \
             AND next_attempt_at_ms <= $1 ORDER BY priority, next_attempt_at_ms, id LIMIT $2 {lock}) \
             RETURNING {MESSAGE_COLUMNS}"
        );
        let limit = i64::from(limit.min(CLAIM_BATCH_MAX));
        let mut messages = self
            .store
            .write(move |tx| {
                let rows = db::query(&sql)
                    .bind(to_ms(now))
                    .bind(limit)
                    .bind(least_urgent.as_i64())
                    .fetch_all(tx)?;
                rows.iter()
                    .map(message_from_row)
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        // RETURNING does not keep the sub-select's order.
        messages.sort_by_key(|m| (m.priority, m.next_attempt_at, m.id));
        Ok(messages)
    }

    /// Counts one more message to `recipient` on `now`'s UTC day, unless
    /// `max` were counted already: true when it may be sent. The count is a
    /// row per recipient (hashed) and day, so a restart or a second instance
    /// keeps the cap (`recipient_daily_max`).
    pub async fn take_daily_quota(
        &self,
        recipient: &Msisdn,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<bool, StoreError> {
        let hash = self.store.vault().hash(recipient);
        self.take_daily_quota_of(&hash, now, max).await
    }

    /// [`Outbox::take_daily_quota`] by the recipient's hash, as a claimed
    /// message carries it (the number stays sealed).
    pub async fn take_daily_quota_of(
        &self,
        hash: &PhoneHash,
        now: DateTime<Utc>,
        max: u32,
    ) -> Result<bool, StoreError> {
        let day = now.timestamp().div_euclid(24 * 3600);
        let hash = *hash;
        let done = self
            .store
            .write(move |tx| {
                Ok(db::query(
                    "INSERT INTO recipient_days (recipient_hash, day, messages) VALUES ($1, $2, 1) \
                     ON CONFLICT (recipient_hash, day) DO UPDATE \
                     SET messages = recipient_days.messages + 1 WHERE recipient_days.messages < $3",
                )
                .bind(&hash.0[..])
                .bind(day)
                .bind(i64::from(max))
                .execute(tx)?)
            })
            .await?;
        Ok(max > 0 && done.rows_affected() == 1)
    }

    /// Records what became of several sends (one statement, one commit for a
    /// whole window of answers).
    ///
    /// On SQLite the results share the writer's next group commit with
    /// whatever else is waiting (usually an MO group); this call returns once
    /// they are committed, or failed.
    pub async fn record_send_results(
        &self,
        results: &[(i64, SendResult)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let results = results.to_vec();
        self.store
            .write_carried(move |tx| write_send_results(tx, &results, now))
            .await
    }

    /// One message by id.
    pub async fn message(&self, id: i64) -> Result<Option<OutboxMessage>, StoreError> {
        self.store
            .read(move |c| {
                let row = db::query(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(c)?;
                row.map(|r| message_from_row(&r)).transpose()
            })
            .await
    }

    /// Every message to `recipient`, oldest first (tests, support tools).
    pub async fn messages_to(&self, recipient: &Msisdn) -> Result<Vec<OutboxMessage>, StoreError> {
        let hash = self.store.vault().hash(recipient);
        self.store
            .read(move |c| {
                let rows = db::query(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE recipient_hash = $1 ORDER BY id"
                ))
                .bind(&hash.0[..])
                .fetch_all(c)?;
                rows.iter().map(message_from_row).collect()
            })
            .await
    }

    /// Puts messages a crashed sender had claimed (`sending`) back in the queue;
    /// returns how many. `Outbox::subscribe` runs it before its sender starts
    /// and before any producer may claim.
    pub async fn requeue_sending(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = self
            .store
            .write(move |tx| {
                Ok(db::query(
                    "UPDATE outbox SET status = 'pending', next_attempt_at_ms = $1, updated_at_ms = $1 \
                     WHERE status = 'sending'",
                )
                .bind(to_ms(now))
                .execute(tx)?)
            })
            .await?;
        Ok(done.rows_affected())
    }

    /// The SMSC accepted the message: record its segment ids.
    pub async fn mark_sent(
        &self,
        id: i64,
        smsc_message_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = SendResult::Sent {
            message_ids: smsc_message_ids.to_vec(),
        };
        self.record_send_results(&[(id, result)], now).await
    }

    /// Gives up on the message (permanent rejection or retries exhausted).
    pub async fn mark_failed(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = SendResult::Failed {
            reason: reason.to_owned(),
        };
        self.record_send_results(&[(id, result)], now).await
    }

    /// Sent, but the answer was lost: it may have gone out. Never resent
    /// automatically (a duplicate alert is worse than a support call).
    pub async fn mark_unknown(
        &self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = SendResult::Unknown {
            reason: reason.to_owned(),
        };
        self.record_send_results(&[(id, result)], now).await
    }

    /// Puts the message back in the queue, due at `next_attempt_at`.
    pub async fn mark_retry(
        &self,
        id: i64,
        reason: &str,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = SendResult::Retry {
            reason: reason.to_owned(),
            next_attempt_at,
        };
        self.record_send_results(&[(id, result)], now).await
    }

    /// The message an SMSC id (one of its segments') belongs to, through the
    /// primary key of `outbox_smsc_ids`: how a receipt finds its message when
    /// the gateway's in-memory map no longer has it (a restart, or an old id).
    pub async fn message_for_smsc_id(&self, smsc_id: &str) -> Result<Option<i64>, StoreError> {
        let smsc_id = smsc_id.to_owned();
        self.store
            .read(move |c| {
                let row = db::query("SELECT outbox_id FROM outbox_smsc_ids WHERE smsc_id = $1")
                    .bind(&smsc_id)
                    .fetch_optional(c)?;
                Ok(row.map(|r| r.try_get::<i64, _>("outbox_id")).transpose()?)
            })
            .await
    }

    /// What the last delivery receipt said about message `id` (`None` until
    /// one arrived).
    pub async fn delivery_state(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.store
            .read(move |c| {
                let row = db::query("SELECT delivery_state FROM outbox WHERE id = $1")
                    .bind(id)
                    .fetch_optional(c)?;
                Ok(row
                    .map(|r| r.try_get::<Option<String>, _>("delivery_state"))
                    .transpose()?
                    .flatten())
            })
            .await
    }
}
