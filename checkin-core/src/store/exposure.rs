//! Exposure matching in SQL (the rule of `crate::exposure`, one query per
//! case) and the alerts it queues: one `alerts` row per exposed check-in
//! (UNIQUE on the check-in, so a second case at the same visit queues
//! nothing), one outbox row per new alert, its recipient copied sealed from
//! the check-in, never decrypted here.
//!
//! The query is driven from the case's own check-ins (index `checkins_phone_at`)
//! to the check-ins of the same premises in a time range (`checkins_premises_at`)
//! and, for each candidate, its next check-in (`checkins_phone_at` again): its
//! cost follows the visits it touches, not the size of the table.

use std::collections::HashSet;

use super::db::{self, Conn};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::base::{to_ms, Params};
use super::db::Backend;
use super::error::StoreError;
use crate::model::{Case, Priority, STAY_MINUTES_MAX};
use crate::privacy::PhoneHash;
use crate::texts;
use crate::time_fmt::ServiceZone;

/// Most cases one `record_and_match_batch` takes (one transaction: the SQLite
/// writer is held for all of them; about ten seconds at this size).
pub const CASES_BATCH_MAX: usize = 10_000;

/// Rows per multi-row statement (bounded by the backends' parameter limits:
/// SQLite 32 766, PostgreSQL 65 535).
const ROWS_PER_STATEMENT: usize = 500;

/// Who a case exposed: what the authority's dry run answers, and what the
/// case records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExposureCounts {
    /// Exposed visits of people who can be alerted (consent given, no `СТОП`
    /// since), including visits already alerted for an earlier case.
    pub visits: u64,
    /// Distinct people behind those visits.
    pub people: u64,
    /// Distinct people exposed who cannot be alerted for any of their exposed
    /// visits: they sent `СТОП`, or did not consent on the web.
    pub unreachable: u64,
}

/// What `record_and_match` did for one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseRecorded {
    pub case: Case,
    pub counts: ExposureCounts,
    /// Alerts queued by this case: exposed visits not alerted before (by an
    /// earlier case, or an earlier upload of this one).
    pub alerts_queued: u64,
}

/// Where a case's alerts are, from their outbox rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertStates {
    /// Waiting in the outbox or being submitted.
    pub queued: u64,
    /// Accepted by the SMSC, no receipt yet (or in doubt).
    pub sent: u64,
    /// The handset has it (a receipt said so).
    pub delivered: u64,
    /// Refused by the SMSC, or the receipt said undeliverable / rejected.
    pub failed: u64,
    /// Expired unsent, or the SMSC's receipt said it expired.
    pub expired: u64,
}

impl AlertStates {
    /// Counts `n` messages of outbox `status` and receipt `delivery_state`.
    /// A receipt's verdict wins over the send's status; a state nobody
    /// knows yet counts as sent (the SMSC has it).
    pub fn add(&mut self, status: &str, delivery_state: Option<&str>, n: u64) {
        let slot = match (status, delivery_state) {
            ("pending" | "sending", _) => &mut self.queued,
            (_, Some("delivered")) | ("delivered", _) => &mut self.delivered,
            (_, Some("expired")) | ("expired", _) => &mut self.expired,
            (_, Some("undeliverable" | "rejected" | "deleted")) | ("failed", _) => &mut self.failed,
            _ => &mut self.sent,
        };
        *slot += n;
    }
}

/// A recorded case with what it exposed and where its alerts are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseReport {
    pub case: Case,
    /// The counts at upload.
    pub counts: ExposureCounts,
    /// Alerts this case queued (still stored: purged visits take theirs along).
    pub alerts: u64,
    pub states: AlertStates,
}

/// One exposed visit, as the matching query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exposure {
    pub checkin_id: i64,
    pub phone_hash: Vec<u8>,
    pub consent: bool,
    pub at_ms: i64,
}

/// What to match: the case's phone, its contagious window, the buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe<'a> {
    pub hash: &'a PhoneHash,
    pub from_ms: i64,
    pub to_ms: i64,
    pub buffer_ms: i64,
}

/// The rule of `crate::exposure` in SQL. `$1` the case's phone hash, `$2`/`$3`
/// the contagious window, `$4` the buffer, `$5` the longest stay (how far
/// before the window a visit may start and still reach into it). Presence ends
/// at the stay's end, the next check-in elsewhere, whichever comes first
/// (`next_ms`: the phone index read forward from the visit, stopping at the
/// first other premises).
const MATCH_SQL: &str = "\
WITH cv AS MATERIALIZED (
  SELECT c.premises_id AS premises_id, c.checked_in_at_ms AS at_ms,
         (SELECT p.stay_minutes FROM premises p WHERE p.id = c.premises_id) * 60000 AS stay_ms,
         (SELECT n.checked_in_at_ms FROM checkins n
           WHERE n.phone_hash = c.phone_hash AND n.checked_in_at_ms > c.checked_in_at_ms
             AND n.premises_id <> c.premises_id
           ORDER BY n.checked_in_at_ms LIMIT 1) AS next_ms
  FROM checkins c
  WHERE c.phone_hash = $1 AND c.checked_in_at_ms > $2 - $5 AND c.checked_in_at_ms < $3
), span AS MATERIALIZED (
  SELECT premises_id, stay_ms,
         CASE WHEN at_ms < $2 THEN $2 ELSE at_ms END AS start_ms,
         CASE WHEN next_ms IS NOT NULL AND next_ms < at_ms + stay_ms AND next_ms < $3 THEN next_ms
              WHEN at_ms + stay_ms < $3 THEN at_ms + stay_ms
              ELSE $3 END AS end_ms
  FROM cv
), cand AS MATERIALIZED (
  SELECT v.id AS id, v.phone_hash AS phone_hash, v.consent AS consent,
         v.checked_in_at_ms AS at_ms, s.start_ms AS start_ms,
         v.checked_in_at_ms + s.stay_ms AS stay_end_ms,
         (SELECT n.checked_in_at_ms FROM checkins n
           WHERE n.phone_hash = v.phone_hash AND n.checked_in_at_ms > v.checked_in_at_ms
             AND n.premises_id <> v.premises_id
           ORDER BY n.checked_in_at_ms LIMIT 1) AS next_ms
  FROM span s JOIN checkins v ON v.premises_id = s.premises_id
       AND v.checked_in_at_ms < s.end_ms + $4
       AND v.checked_in_at_ms > s.start_ms - s.stay_ms
  WHERE s.start_ms < s.end_ms AND v.phone_hash <> $1
), presence AS (
  SELECT id, phone_hash, consent, at_ms, start_ms,
         CASE WHEN next_ms IS NOT NULL AND next_ms < stay_end_ms THEN next_ms
              ELSE stay_end_ms END AS end_ms
  FROM cand
)
SELECT DISTINCT id, phone_hash, consent, at_ms FROM presence
WHERE end_ms > start_ms AND end_ms > at_ms
ORDER BY id";

/// The visits `probe` exposed, each once, by check-in id.
pub(crate) fn exposures(
    conn: &mut Conn<'_>,
    probe: Probe<'_>,
) -> Result<Vec<Exposure>, StoreError> {
    let rows = db::query(MATCH_SQL)
        .bind(&probe.hash.0[..])
        .bind(probe.from_ms)
        .bind(probe.to_ms)
        .bind(probe.buffer_ms)
        .bind(i64::from(STAY_MINUTES_MAX) * 60_000)
        .fetch_all(&mut *conn)?;
    rows.iter()
        .map(|row| {
            Ok(Exposure {
                checkin_id: row.try_get("id")?,
                phone_hash: row.try_get("phone_hash")?,
                consent: row.try_get::<i64, _>("consent")? != 0,
                at_ms: row.try_get("at_ms")?,
            })
        })
        .collect()
}

/// The plan of the matching query, one line per step (`EXPLAIN QUERY PLAN` on
/// SQLite, `EXPLAIN` on PostgreSQL), for the test that it never scans.
pub(crate) fn match_plan(
    conn: &mut Conn<'_>,
    backend: Backend,
    probe: Probe<'_>,
) -> Result<Vec<String>, StoreError> {
    let (sql, column) = match backend {
        Backend::Sqlite => (format!("EXPLAIN QUERY PLAN {MATCH_SQL}"), "detail"),
        Backend::Postgres => (format!("EXPLAIN {MATCH_SQL}"), "QUERY PLAN"),
    };
    let rows = db::query(&sql)
        .bind(&probe.hash.0[..])
        .bind(probe.from_ms)
        .bind(probe.to_ms)
        .bind(probe.buffer_ms)
        .bind(i64::from(STAY_MINUTES_MAX) * 60_000)
        .fetch_all(&mut *conn)?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String, _>(column)?))
        .collect()
}

/// The counts of a case's exposures.
pub(crate) fn counts(exposures: &[Exposure]) -> ExposureCounts {
    let reachable: HashSet<&[u8]> = exposures
        .iter()
        .filter(|e| e.consent)
        .map(|e| e.phone_hash.as_slice())
        .collect();
    let unreachable: HashSet<&[u8]> = exposures
        .iter()
        .filter(|e| !e.consent && !reachable.contains(e.phone_hash.as_slice()))
        .map(|e| e.phone_hash.as_slice())
        .collect();
    ExposureCounts {
        visits: exposures.iter().filter(|e| e.consent).count() as u64,
        people: reachable.len() as u64,
        unreachable: unreachable.len() as u64,
    }
}

/// An alert inserted by this transaction, waiting for its outbox row.
#[derive(Debug, Clone)]
pub(crate) struct NewAlert {
    pub alert_id: i64,
    pub checkin_id: i64,
    pub visit_at_ms: i64,
}

/// Inserts an alert for every consenting exposed visit of `case_id` not
/// alerted yet: the UNIQUE key on `checkin_id` decides, and consent is read
/// again here (a `СТОП` since the match wins). Returns the alerts inserted.
pub(crate) fn insert_alerts(
    conn: &mut Conn<'_>,
    backend: Backend,
    case_id: i64,
    exposures: &[Exposure],
    now_ms: i64,
) -> Result<Vec<NewAlert>, StoreError> {
    let mut inserted = Vec::new();
    let visits: Vec<&Exposure> = exposures.iter().filter(|e| e.consent).collect();
    for chunk in visits.chunks(ROWS_PER_STATEMENT) {
        let mut params = Params::new(backend);
        let values: Vec<String> = chunk
            .iter()
            .map(|_| format!("({})", params.next()))
            .collect();
        // The case id and the time are our own integers, not outside text.
        let sql = format!(
            "INSERT INTO alerts (checkin_id, case_id, created_at_ms) \
             SELECT c.id, {case_id}, {now_ms} FROM (VALUES {}) AS v \
             JOIN checkins c ON c.id = v.column1 WHERE c.consent = 1 \
             ON CONFLICT (checkin_id) DO NOTHING RETURNING id, checkin_id",
            values.join(", ")
        );
        let mut query = db::query(&sql);
        for e in chunk {
            query = query.bind(e.checkin_id);
        }
        for row in query.fetch_all(&mut *conn)? {
            let checkin_id: i64 = row.try_get("checkin_id")?;
            let visit_at_ms = chunk
                .iter()
                .find(|e| e.checkin_id == checkin_id)
                .map(|e| e.at_ms)
                .ok_or_else(|| StoreError::Corrupt(format!("alert for check-in {checkin_id}")))?;
            inserted.push(NewAlert {
                alert_id: row.try_get("id")?,
                checkin_id,
                visit_at_ms,
            });
        }
    }
    Ok(inserted)
}

/// Queues one alert SMS (priority Alert) per new alert, to the visit's sealed
/// number, with the visit's own time, and stores each message's id on its
/// alert. The ids are taken first (the sequence on PostgreSQL, past the
/// largest on SQLite, whose one writer holds the lock) so that each row knows
/// its alert without relying on the order of a multi-row insert.
pub(crate) fn queue_alert_messages(
    conn: &mut Conn<'_>,
    backend: Backend,
    alerts: &[NewAlert],
    zone: &ServiceZone,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if alerts.is_empty() {
        return Ok(());
    }
    let ids = reserve_outbox_ids(conn, backend, alerts.len())?;
    let now_ms = to_ms(now);
    let priority = Priority::Alert.as_i64();
    for (chunk, ids) in alerts
        .chunks(ROWS_PER_STATEMENT)
        .zip(ids.chunks(ROWS_PER_STATEMENT))
    {
        let mut params = Params::new(backend);
        let values: Vec<String> = chunk
            .iter()
            .map(|_| format!("({}, {}, {})", params.next(), params.next(), params.next()))
            .collect();
        let sql = format!(
            "INSERT INTO outbox (id, recipient_hash, recipient_sealed, body, priority, status, \
             attempts, smsc_message_ids, created_at_ms, updated_at_ms, next_attempt_at_ms) \
             SELECT v.column1, c.phone_hash, c.phone_sealed, v.column3, {priority}, 'pending', 0, '', \
             {now_ms}, {now_ms}, {now_ms} FROM (VALUES {}) AS v JOIN checkins c ON c.id = v.column2",
            values.join(", ")
        );
        let mut query = db::query(&sql);
        for (alert, id) in chunk.iter().zip(ids) {
            let visit_at = super::base::from_ms(alert.visit_at_ms)?;
            query = query
                .bind(*id)
                .bind(alert.checkin_id)
                .bind(texts::exposure_alert(visit_at, zone));
        }
        let done = query.execute(&mut *conn)?.rows_affected();
        if done != chunk.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "{} alerts, {done} messages queued",
                chunk.len()
            )));
        }

        let mut params = Params::new(backend);
        let values: Vec<String> = chunk
            .iter()
            .map(|_| format!("({}, {})", params.next(), params.next()))
            .collect();
        let sql = format!(
            "UPDATE alerts SET outbox_id = v.column1 FROM (VALUES {}) AS v \
             WHERE alerts.id = v.column2",
            values.join(", ")
        );
        let mut query = db::query(&sql);
        for (alert, id) in chunk.iter().zip(ids) {
            query = query.bind(*id).bind(alert.alert_id);
        }
        query.execute(&mut *conn)?;
    }
    Ok(())
}

/// `n` fresh outbox ids.
fn reserve_outbox_ids(
    conn: &mut Conn<'_>,
    backend: Backend,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    let n = i64::try_from(n).map_err(|_| StoreError::Invalid("too many alerts".into()))?;
    match backend {
        Backend::Sqlite => {
            let row = db::query("SELECT COALESCE(MAX(id), 0) AS last FROM outbox")
                .fetch_one(&mut *conn)?;
            let last: i64 = row.try_get("last")?;
            Ok((last + 1..=last + n).collect())
        }
        Backend::Postgres => {
            let rows = db::query(
                "SELECT nextval(pg_get_serial_sequence('outbox', 'id')) AS id \
                 FROM generate_series(1, $1)",
            )
            .bind(n)
            .fetch_all(&mut *conn)?;
            rows.iter()
                .map(|row| Ok(row.try_get::<i64, _>("id")?))
                .collect()
        }
    }
}
