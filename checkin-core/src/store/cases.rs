//! Confirmed cases, as the health authority submits them, and what they
//! expose: the dry run (counts only), the case recorded with its alerts
//! queued in one transaction, and the case's report. The matching itself is
//! in `exposure.rs`.

use super::db::{self, Conn, Row};
use chrono::{DateTime, Utc};

use super::authority::{insert_audit, AuditNote};
use super::base::{time_col, to_ms};
#[allow(unused_imports)]
use super::db::Conn as _;
use super::error::StoreError;
use super::exposure::{
    self, counts, exposures, insert_alerts, queue_alert_messages, AlertStates, CaseRecorded,
    CaseReport, Exposure, ExposureCounts, Probe, CASES_BATCH_MAX,
};
use super::handles::Cases;
use crate::model::{Case, NewCase};

impl Cases<'_> {
    /// Records a confirmed case without matching it.
    pub async fn add_case(self, new: &NewCase, now: DateTime<Utc>) -> Result<Case, StoreError> {
        check(new)?;
        let store = self.store.clone();
        let new = new.clone();
        self.store
            .write(move |tx| insert_case(tx, &store, &new, ExposureCounts::default(), now))
            .await
    }

    /// How many cases are stored.
    pub async fn count_cases(self) -> Result<u64, StoreError> {
        let row = db::query("SELECT COUNT(*) AS n FROM cases")
            .read_one(self.store.pool())
            .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }

    /// What recording `new` would expose, queuing nothing: the authority's
    /// dry run.
    pub async fn dry_run(
        self,
        new: &NewCase,
        _now: DateTime<Utc>,
    ) -> Result<ExposureCounts, StoreError> {
        check(new)?;
        let found = self.match_cases(vec![new.clone()]).await?;
        Ok(counts(&found[0]))
    }

    /// [`Cases::dry_run`] of every case of `batch` (at most
    /// [`CASES_BATCH_MAX`]), read in one unit: an upload's dry run.
    pub async fn dry_run_batch(self, batch: &[NewCase]) -> Result<Vec<ExposureCounts>, StoreError> {
        if batch.len() > CASES_BATCH_MAX {
            return Err(StoreError::Invalid(format!(
                "at most {CASES_BATCH_MAX} cases at once"
            )));
        }
        for new in batch {
            check(new)?;
        }
        let found = self.match_cases(batch.to_vec()).await?;
        Ok(found.iter().map(|f| counts(f)).collect())
    }

    /// Records `new` and queues an alert for every exposed visit not alerted
    /// yet, in one transaction.
    pub async fn record_and_match(
        self,
        new: &NewCase,
        now: DateTime<Utc>,
    ) -> Result<CaseRecorded, StoreError> {
        let mut recorded = self
            .record_and_match_batch(std::slice::from_ref(new), now)
            .await?;
        recorded
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a batch of one recorded nothing".into()))
    }

    /// Records every case of `batch` (at most [`CASES_BATCH_MAX`]) and queues
    /// their alerts, in one transaction: all or nothing. A visit exposed by
    /// two cases of the batch is alerted once (for the first). The matching
    /// reads on the reader pool first, so the SQLite writer is held only for
    /// the inserts; consent is read again as the alerts are inserted.
    pub async fn record_and_match_batch(
        self,
        batch: &[NewCase],
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseRecorded>, StoreError> {
        self.record_and_match_batch_by(batch, None, now).await
    }

    /// [`Cases::record_and_match_batch`], with `audit` (who sent it) written
    /// in the same transaction.
    pub async fn record_and_match_batch_by(
        self,
        batch: &[NewCase],
        audit: Option<AuditNote>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseRecorded>, StoreError> {
        if batch.len() > CASES_BATCH_MAX {
            return Err(StoreError::Invalid(format!(
                "at most {CASES_BATCH_MAX} cases at once"
            )));
        }
        for (i, new) in batch.iter().enumerate() {
            check(new).map_err(|e| StoreError::Invalid(format!("case {}: {e}", i + 1)))?;
        }
        let found = self.match_cases(batch.to_vec()).await?;
        let backend = self.store.backend();
        let store = self.store.clone();
        let batch = batch.to_vec();
        let (recorded, alerts_queued) = self
            .store
            .write(move |tx| {
                let mut recorded = Vec::with_capacity(batch.len());
                let mut alerts = Vec::new();
                for (new, found) in batch.iter().zip(&found) {
                    let counts = counts(found);
                    let case = insert_case(tx, &store, new, counts, now)?;
                    let inserted = insert_alerts(tx, backend, case.id, found, to_ms(now))?;
                    recorded.push(CaseRecorded {
                        case,
                        counts,
                        alerts_queued: inserted.len() as u64,
                    });
                    alerts.extend(inserted);
                }
                let zone = store.config().exposure.zone;
                queue_alert_messages(tx, backend, &alerts, &zone, now)?;
                if let Some(note) = &audit {
                    insert_audit(tx, note, now)?;
                }
                Ok((recorded, !alerts.is_empty()))
            })
            .await?;
        if alerts_queued {
            self.store.outbox().wake();
        }
        Ok(recorded)
    }

    /// The case `case_id` with its counts and where its alerts are; `None`
    /// when there is no such case.
    pub async fn report(self, case_id: i64) -> Result<Option<CaseReport>, StoreError> {
        let Some(row) = db::query(
            "SELECT id, authority_id, confirmed_at_ms, contagious_from_ms, contagious_to_ms, \
             created_at_ms, exposed_visits, exposed_people, unreachable FROM cases WHERE id = $1",
        )
        .bind(case_id)
        .read_optional(self.store.pool())
        .await?
        else {
            return Ok(None);
        };
        let case = case_from_row(&row)?;
        let count = |column: &str| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
        };
        let counts = ExposureCounts {
            visits: count("exposed_visits")?,
            people: count("exposed_people")?,
            unreachable: count("unreachable")?,
        };
        let rows = db::query(
            "SELECT o.status AS status, o.delivery_state AS delivery_state, COUNT(*) AS n \
             FROM alerts a JOIN outbox o ON o.id = a.outbox_id WHERE a.case_id = $1 \
             GROUP BY o.status, o.delivery_state",
        )
        .bind(case_id)
        .read_all(self.store.pool())
        .await?;
        let mut states = AlertStates::default();
        for row in &rows {
            let status: String = row.try_get("status")?;
            let delivery: Option<String> = row.try_get("delivery_state")?;
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            states.add(&status, delivery.as_deref(), n);
        }
        let row = db::query("SELECT COUNT(*) AS n FROM alerts WHERE case_id = $1")
            .bind(case_id)
            .read_one(self.store.pool())
            .await?;
        Ok(Some(CaseReport {
            case,
            counts,
            alerts: u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0),
            states,
        }))
    }

    /// The matching query's plan for `new`, one line per step (tests check
    /// that it only seeks indexes).
    #[doc(hidden)]
    pub async fn match_plan_for_tests(self, new: &NewCase) -> Result<Vec<String>, StoreError> {
        let store = self.store.clone();
        let new = new.clone();
        self.store
            .read(move |c| {
                let cases = Cases { store: &store };
                let hash = store.vault().hash(&new.phone);
                let probe = cases.probe(&hash, &new);
                exposure::match_plan(c, store.backend(), probe)
            })
            .await
    }

    /// The exposures of each case, read in one unit on a read connection.
    async fn match_cases(self, batch: Vec<NewCase>) -> Result<Vec<Vec<Exposure>>, StoreError> {
        let store = self.store.clone();
        self.store
            .read(move |c| {
                let cases = Cases { store: &store };
                batch
                    .iter()
                    .map(|new| {
                        let hash = store.vault().hash(&new.phone);
                        exposures(c, cases.probe(&hash, new))
                    })
                    .collect()
            })
            .await
    }

    fn probe<'h>(self, hash: &'h crate::privacy::PhoneHash, new: &NewCase) -> Probe<'h> {
        Probe {
            hash,
            from_ms: to_ms(new.contagious_from),
            to_ms: to_ms(new.contagious_to),
            buffer_ms: self.store.config().exposure.buffer_ms(),
        }
    }
}

/// A case the store accepts: its window does not end before it starts.
fn check(new: &NewCase) -> Result<(), StoreError> {
    if new.contagious_from > new.contagious_to {
        return Err(StoreError::Invalid(
            "the contagious window ends before it starts".into(),
        ));
    }
    Ok(())
}

fn insert_case(
    conn: &mut Conn<'_>,
    store: &super::base::Store,
    new: &NewCase,
    counts: ExposureCounts,
    now: DateTime<Utc>,
) -> Result<Case, StoreError> {
    let hash = store.vault().hash(&new.phone);
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let row = db::query(
        "INSERT INTO cases (authority_id, phone_hash, confirmed_at_ms, contagious_from_ms, \
         contagious_to_ms, created_at_ms, exposed_visits, exposed_people, unreachable) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(new.authority_id)
    .bind(&hash.0[..])
    .bind(to_ms(new.confirmed_at))
    .bind(to_ms(new.contagious_from))
    .bind(to_ms(new.contagious_to))
    .bind(to_ms(now))
    .bind(as_i64(counts.visits))
    .bind(as_i64(counts.people))
    .bind(as_i64(counts.unreachable))
    .fetch_one(&mut *conn)?;
    Ok(Case {
        id: row.try_get("id")?,
        authority_id: new.authority_id,
        confirmed_at: new.confirmed_at,
        contagious_from: new.contagious_from,
        contagious_to: new.contagious_to,
        created_at: now,
    })
}

fn case_from_row(row: &Row) -> Result<Case, StoreError> {
    Ok(Case {
        id: row.try_get("id")?,
        authority_id: row.try_get("authority_id")?,
        confirmed_at: time_col(row, "confirmed_at_ms")?,
        contagious_from: time_col(row, "contagious_from_ms")?,
        contagious_to: time_col(row, "contagious_to_ms")?,
        created_at: time_col(row, "created_at_ms")?,
    })
}
