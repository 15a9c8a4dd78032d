//! An SMS to the short number, handled in one transaction with its reply: the
//! check-in (or opt-out) and the answer commit together or not at all, so the
//! SMPP layer can acknowledge the SMSC only after both are safe.

use chrono::{DateTime, Utc};
use parser::{CodeDigits, Command};

use super::base::{to_ms, Params, Store};
use super::checkins::{insert_checkins_with_ids, lock_phones, PremisesCache};
use super::db::Backend;
use super::db::{self, Conn, Row};
use super::error::StoreError;
use super::handles::Sms;
use super::outbox::{enqueue_many_in, Outgoing};
use super::routes::learn_in;
use crate::model::Channel;
use crate::model::{OutboxMessage, Priority};
use crate::msisdn::Msisdn;
use crate::privacy::PhoneHash;
use crate::routing::OperatorName;
use crate::sms_decision::{self, KnownVisit, KnownWindow, Rules, SmsFacts, SmsInput};
use crate::time_fmt::ServiceZone;

// The decision's types live with the decision; re-exported for the store's callers.
pub use crate::sms_decision::{Rejection, SmsOutcome, SmsVisit, REPEAT_REPLY_INTERVAL_MS};

/// Largest batch of SMS one transaction takes (group commit bound).
pub const SMS_BATCH_MAX: usize = 1024;

/// An SMS a visitor sent to the short number, already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    pub from: Msisdn,
    pub text: String,
    pub received_at: DateTime<Utc>,
    /// The operator it came through (`None`: not known, one operator): the
    /// phone's route is learned from it and its reply goes back through it.
    pub operator: Option<OperatorName>,
}

/// An SMS ready for the group commit (see [`Sms::prepare_sms`]), or a
/// USSD check-in riding the same commit ([`Sms::prepare_ussd`]).
#[derive(Debug, Clone)]
pub struct PreparedSms {
    sms: InboundSms,
    hash: PhoneHash,
    sealed: Vec<u8>,
    command: Command,
    /// How the visitor came: `Sms`, or `Ussd`.
    channel: Channel,
    /// Whether the reply is queued as an SMS (always for an SMS; for USSD,
    /// `ussd_confirm_by_sms`: the screen vanishes, the guard needs the SMS).
    reply_by_sms: bool,
}

/// What a batch of SMS came to.
#[derive(Debug, Default)]
pub struct SmsBatch {
    /// One per SMS, in the batch's order.
    pub outcomes: Vec<SmsOutcome>,
    /// One per SMS, in the batch's order: the visit of a USSD check-in, repeat
    /// or duplicate; `None` for the others (and for every SMS).
    pub visits: Vec<Option<SmsVisit>>,
    /// Replies queued already claimed, for the caller's sender to take.
    pub claimed: Vec<OutboxMessage>,
}

/// A group of SMS as one unit of work: read the facts its decision needs
/// (the codes' premises, earlier visits of its phones), decide
/// ([`sms_decision::decide`], no I/O), write the effects (opt-outs, one
/// insert of the new visits, the answered repeats, the replies).
fn handle_group(
    store: &Store,
    tx: &mut Conn<'_>,
    prepared: &[PreparedSms],
    zone: &ServiceZone,
    now: DateTime<Utc>,
    claim_max: usize,
) -> Result<SmsBatch, StoreError> {
    let backend = tx.backend();
    let rules = Rules {
        dedupe_window_ms: i64::try_from(store.config().dedupe_window.as_millis())
            .map_err(|_| StoreError::Config("dedupe window is too long".into()))?,
        zone: *zone,
    };
    let inputs: Vec<SmsInput<'_>> = prepared
        .iter()
        .map(|p| SmsInput {
            command: &p.command,
            phone_hash: p.hash.0,
            at: p.sms.received_at,
            channel: p.channel,
            reply_by_sms: p.reply_by_sms,
        })
        .collect();

    // Read.
    if backend == Backend::Postgres {
        let hashes: Vec<PhoneHash> = prepared.iter().map(|p| p.hash).collect();
        lock_phones(tx, &hashes)?;
    }
    let mut premises = PremisesCache::new();
    premises.load(tx, backend, sms_decision::codes(&inputs))?;
    let mut facts = SmsFacts {
        premises: premises.into_map(),
        known: Vec::new(),
    };
    if let Some(window) = sms_decision::known_window(&facts.premises, &inputs, &rules) {
        facts.known = known_visits(tx, backend, &window)?;
    }

    // Decide.
    let decision = sms_decision::decide(&facts, &inputs, &rules)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;

    // Write.
    for hash in &decision.opt_outs {
        db::query("UPDATE checkins SET consent = 0 WHERE phone_hash = $1")
            .bind(&hash[..])
            .execute(tx)?;
    }
    let mut new_ids: Vec<i64> = vec![0; decision.new_visits.len()];
    if !decision.new_visits.is_empty() {
        let rows: Vec<NewVisit<'_>> = decision
            .new_visits
            .iter()
            .map(|v| {
                let p = &prepared[v.input];
                NewVisit {
                    premises_id: v.premises_id,
                    hash: &p.hash.0[..],
                    sealed: &p.sealed[..],
                    channel: p.channel.as_str(),
                    consent: v.consent,
                    at_ms: to_ms(p.sms.received_at),
                }
            })
            .collect();
        let sql = checkins_insert_sql(backend, rows.len(), backend == Backend::Postgres);
        let mut query = db::query(&sql);
        for row in &rows {
            for (_, column) in &CHECKIN_COLUMNS {
                query = column(query, row);
            }
        }
        let order: Vec<usize> = (0..rows.len()).collect();
        let fits = |v: usize, row: &Row| -> Result<bool, StoreError> {
            let hash: Vec<u8> = row.try_get("phone_hash")?;
            Ok(rows[v].premises_id == row.try_get::<i64, _>("premises_id")?
                && rows[v].hash == &hash[..])
        };
        insert_checkins_with_ids(tx, query, backend, &order, &mut new_ids, fits, "SMS")?;
    }
    let resolved = sms_decision::resolve(decision, &new_ids)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    mark_replied(tx, &resolved.replied)?;
    // The operators the group's phones came through, in one statement.
    let routes: Vec<(PhoneHash, &OperatorName)> = prepared
        .iter()
        .filter_map(|p| Some((p.hash, p.sms.operator.as_ref()?)))
        .collect();
    learn_in(tx, &routes, to_ms(now))?;
    let messages: Vec<Outgoing<'_>> = resolved
        .replies
        .into_iter()
        .map(|(i, text)| Outgoing {
            hash: &prepared[i].hash,
            sealed: &prepared[i].sealed,
            text,
            priority: Priority::Confirmation,
            operator: prepared[i].sms.operator.as_ref(),
        })
        .collect();
    let claimed = enqueue_many_in(tx, &messages, now, claim_max)?;
    Ok(SmsBatch {
        outcomes: resolved.outcomes,
        visits: resolved.visits,
        claimed,
    })
}

/// The stored visits of the window's phones inside it (any premises).
fn known_visits(
    tx: &mut Conn<'_>,
    backend: Backend,
    window: &KnownWindow,
) -> Result<Vec<KnownVisit>, StoreError> {
    let mut params = Params::new(backend);
    let (from, to) = (params.next(), params.next());
    let mut sql = format!(
        "SELECT id, premises_id, phone_hash, checked_in_at_ms, replied_at_ms FROM checkins \
         WHERE checked_in_at_ms > {from} AND checked_in_at_ms < {to} AND phone_hash IN ("
    );
    for k in 0..window.phones.len() {
        if k > 0 {
            sql.push(',');
        }
        sql.push_str(&params.next());
    }
    sql.push(')');
    let mut query = db::query(&sql).bind(window.after_ms).bind(window.before_ms);
    for phone in &window.phones {
        query = query.bind(&phone[..]);
    }
    query
        .fetch_all(tx)?
        .iter()
        .map(|row| {
            let hash: Vec<u8> = row.try_get("phone_hash")?;
            Ok(KnownVisit {
                id: row.try_get("id")?,
                premises_id: row.try_get("premises_id")?,
                phone_hash: hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("phone hash length".into()))?,
                at_ms: row.try_get("checked_in_at_ms")?,
                replied_at_ms: row.try_get("replied_at_ms")?,
            })
        })
        .collect()
}

/// A new SMS (or USSD) check-in, as the grouped insert binds it.
struct NewVisit<'a> {
    premises_id: i64,
    hash: &'a [u8],
    sealed: &'a [u8],
    channel: &'static str,
    consent: bool,
    at_ms: i64,
}

/// Binds one column of a row of the grouped check-in insert.
type BindColumn = for<'q> fn(db::Query<'q>, &NewVisit<'_>) -> db::Query<'q>;

/// The grouped check-in insert's columns, each with its bind: the
/// placeholders and the binds come from this one list, so they cannot drift
/// apart.
const CHECKIN_COLUMNS: [(&str, BindColumn); 6] = [
    ("premises_id", |q, v| q.bind(v.premises_id)),
    ("phone_hash", |q, v| q.bind(v.hash)),
    ("phone_sealed", |q, v| q.bind(v.sealed)),
    ("channel", |q, v| q.bind(v.channel)),
    // Texting (or dialling) a code is consenting to alerts (the poster says
    // so), unless the phone opts out later in the same group.
    ("consent", |q, v| q.bind(v.consent)),
    ("checked_in_at_ms", |q, v| q.bind(v.at_ms)),
];

/// `INSERT` of `rows` SMS check-ins ([`CHECKIN_COLUMNS`]), returning (if
/// `returning`) what matches each new id back to its SMS.
fn checkins_insert_sql(backend: Backend, rows: usize, returning: bool) -> String {
    let names: Vec<&str> = CHECKIN_COLUMNS.iter().map(|(name, _)| *name).collect();
    let mut sql = format!("INSERT INTO checkins ({}) VALUES ", names.join(", "));
    let mut params = Params::new(backend);
    for i in 0..rows {
        sql.push_str(if i > 0 { ",(" } else { "(" });
        for k in 0..CHECKIN_COLUMNS.len() {
            if k > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&params.next());
        }
        sql.push(')');
    }
    if returning {
        sql.push_str(" RETURNING id, premises_id, phone_hash");
    }
    sql
}

/// Records when repeats of these visits were answered: `(check-in id, at)`;
/// the latest time of each visit wins.
fn mark_replied(tx: &mut Conn<'_>, replied: &[(i64, i64)]) -> Result<(), StoreError> {
    if replied.is_empty() {
        return Ok(());
    }
    let mut params = Params::new(tx.backend());
    let mut sql = String::from("WITH r (id, replied_at) AS (VALUES ");
    for k in 0..replied.len() {
        if k > 0 {
            sql.push(',');
        }
        let [id, at] = std::array::from_fn(|_| params.next());
        sql.push_str(&format!("({id}, {at})"));
    }
    sql.push_str(
            ") UPDATE checkins SET replied_at_ms = (SELECT MAX(r.replied_at) FROM r WHERE r.id = checkins.id) \
             WHERE id IN (SELECT id FROM r)",
        );
    let mut query = db::query(&sql);
    for (id, at) in replied {
        query = query.bind(*id).bind(*at);
    }
    query.execute(&mut *tx)?;
    Ok(())
}

impl Sms<'_> {
    /// Handles a batch of SMS in one transaction: check-ins, opt-outs and every
    /// reply are committed together. On error nothing is committed and the caller
    /// should answer the SMSC with a temporary error so it redelivers.
    pub async fn handle_sms_batch(
        self,
        batch: &[InboundSms],
        zone: &ServiceZone,
        now: DateTime<Utc>,
    ) -> Result<Vec<SmsOutcome>, StoreError> {
        if batch.len() > SMS_BATCH_MAX {
            return Err(StoreError::Invalid(format!(
                "a batch holds at most {SMS_BATCH_MAX} messages"
            )));
        }
        let prepared: Vec<PreparedSms> =
            batch.iter().map(|m| self.prepare_sms(m.clone())).collect();
        self.handle_prepared_sms(&prepared, zone, now).await
    }

    /// The part of handling an SMS that needs no database: hash and seal the
    /// sender, parse the text. Done by each SMS's receiver, in parallel, so the
    /// group commit (one writer) only writes.
    pub fn prepare_sms(self, sms: InboundSms) -> PreparedSms {
        PreparedSms {
            hash: self.store.vault().hash(&sms.from),
            // One sealed copy of the number serves its check-in and its reply.
            sealed: self.store.vault().seal(&sms.from),
            command: parser::parse(&sms.text),
            sms,
            channel: Channel::Sms,
            reply_by_sms: true,
        }
    }

    /// A USSD check-in of the code `digits` dialled by `from`, prepared for
    /// the same group commit as the SMS (same dedupe, privacy and replies;
    /// the reply is queued as an SMS only when `confirm_by_sms`). `operator`:
    /// the one the dial came through, learned as the phone's route and the
    /// SMS confirmation's way out (`None`: not known).
    pub fn prepare_ussd(
        self,
        from: Msisdn,
        digits: CodeDigits,
        received_at: DateTime<Utc>,
        confirm_by_sms: bool,
        operator: Option<OperatorName>,
    ) -> PreparedSms {
        PreparedSms {
            hash: self.store.vault().hash(&from),
            sealed: self.store.vault().seal(&from),
            command: Command::CheckIn { digits },
            sms: InboundSms {
                from,
                text: digits.as_str().to_owned(),
                received_at,
                operator,
            },
            channel: Channel::Ussd,
            reply_by_sms: confirm_by_sms,
        }
    }

    /// [`Sms::handle_sms_batch`] for SMS already prepared.
    pub async fn handle_prepared_sms(
        self,
        prepared: &[PreparedSms],
        zone: &ServiceZone,
        now: DateTime<Utc>,
    ) -> Result<Vec<SmsOutcome>, StoreError> {
        Ok(self
            .handle_prepared_sms_claiming(prepared, zone, now, 0)
            .await?
            .outcomes)
    }

    /// [`Sms::handle_prepared_sms`] that also claims up to `claim_max` of the
    /// replies in the same transaction (queued as `sending`, first attempt) and
    /// returns them, so a sender can take them at once instead of claiming
    /// them back from the outbox in a transaction of its own (pass at most
    /// `Outbox::room`, and the claimed to `Outbox::hand_over`). The others are
    /// queued `pending`, and the sender is woken after the commit.
    pub async fn handle_prepared_sms_claiming(
        self,
        prepared: &[PreparedSms],
        zone: &ServiceZone,
        now: DateTime<Utc>,
        claim_max: usize,
    ) -> Result<SmsBatch, StoreError> {
        self.handle_owned_sms_claiming(prepared.to_vec(), zone, now, claim_max)
            .await
    }

    /// [`Sms::handle_prepared_sms_claiming`] taking the group by value: the
    /// SMS inbox's committer owns its group, and the unit of work moves it to
    /// the writer thread without a copy.
    pub async fn handle_owned_sms_claiming(
        self,
        prepared: Vec<PreparedSms>,
        zone: &ServiceZone,
        now: DateTime<Utc>,
        claim_max: usize,
    ) -> Result<SmsBatch, StoreError> {
        let group = prepared.len();
        if group > SMS_BATCH_MAX {
            return Err(StoreError::Invalid(format!(
                "a batch holds at most {SMS_BATCH_MAX} messages"
            )));
        }
        if prepared.is_empty() {
            return Ok(SmsBatch::default());
        }
        let started = std::time::Instant::now();
        let store = self.store.clone();
        let zone = *zone;
        let result = self
            .store
            .write(move |tx| {
                let locked = started.elapsed();
                let result = handle_group(&store, tx, &prepared, &zone, now, claim_max)?;
                Ok((result, locked))
            })
            .await;
        let (result, locked) = result?;
        let written = started.elapsed();
        // Replies beyond the claimed ones may wait `pending`: the sender claims
        // them once woken.
        if claim_max < group {
            self.store.outbox_signal().wake();
        }
        tracing::debug!(
            group,
            queue_wait_us = locked.as_micros() as u64,
            written_us = written.saturating_sub(locked).as_micros() as u64,
            "SMS group written"
        );
        Ok(result)
    }
}
