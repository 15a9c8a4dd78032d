//! An SMS to the short number, handled in one transaction with its reply: the
//! check-in (or opt-out) and the answer commit together or not at all, so the
//! SMPP layer can acknowledge the SMSC only after both are safe.

use std::collections::HashMap;

use super::db::{self, Conn, Row};
use chrono::{DateTime, Utc};
use parser::{CodeDigits, Command};

use super::checkins::{insert_checkins_with_ids, lock_phones, PremisesCache};
use super::outbox::Outgoing;
use super::{from_ms, to_ms, Backend, Params, Sms, Store, StoreError};
use crate::model::{NewCheckIn, OutboxMessage, Priority};
use crate::privacy::PhoneHash;
use crate::{texts, Channel, CodeError, Msisdn, Premises, ServiceZone, VenueCode};

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

impl Store {
    /// One SMS after the other, in arrival order (batches with an opt-out).
    fn handle_in_order(
        &self,
        tx: &mut Conn<'_>,
        batch: &[&InboundSms],
        senders: Senders<'_>,
        commands: &[Command],
        zone: &ServiceZone,
        now: DateTime<Utc>,
    ) -> Result<SmsBatch, StoreError> {
        let mut premises = PremisesCache::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut visits = Vec::with_capacity(batch.len());
        let mut replies = Vec::new();
        for (i, (sms, command)) in batch.iter().zip(commands).enumerate() {
            let hash = &senders.hashes[i];
            let mut visit = None;
            let (outcome, reply) = match intent(&mut *tx, &mut premises, command)? {
                Intent::Reply(reason, text) => (reason.into(), Some(text)),
                Intent::CheckIn(p, code) => {
                    let new = NewCheckIn {
                        phone: sms.from.clone(),
                        code,
                        channel: senders.channels[i],
                        at: sms.received_at,
                        // Texting a code is consenting to alerts (the poster says so).
                        consent: true,
                    };
                    let recorded = self.insert_if_new(&mut *tx, &new, hash, p)?;
                    let id = recorded.checkin.id;
                    if senders.channels[i] == Channel::Ussd {
                        visit = Some(SmsVisit {
                            premises: recorded.premises.clone(),
                            at: recorded.checkin.at,
                        });
                    }
                    if recorded.duplicate {
                        if reply_to_repeat(&mut *tx, id, recorded.checkin.at, sms.received_at)? {
                            let text = texts::already_checked_in(
                                &recorded.premises,
                                recorded.checkin.at,
                                zone,
                            );
                            (SmsOutcome::Repeat { checkin_id: id }, Some(text))
                        } else {
                            (SmsOutcome::Duplicate { checkin_id: id }, None)
                        }
                    } else {
                        let text =
                            texts::confirmation(&recorded.premises, recorded.checkin.at, zone);
                        (SmsOutcome::CheckedIn { checkin_id: id }, Some(text))
                    }
                }
                Intent::OptOut => {
                    db::query("UPDATE checkins SET consent = 0 WHERE phone_hash = $1")
                        .bind(&hash.0[..])
                        .execute(&mut *tx)?;
                    (SmsOutcome::OptedOut, Some(texts::opted_out()))
                }
            };
            if let Some(text) = reply.filter(|_| senders.reply_by_sms[i]) {
                replies.push(senders.reply(i, text));
            }
            outcomes.push(outcome);
            visits.push(visit);
        }
        let claimed = self.enqueue_many_in(tx, &replies, now, senders.claim_max)?;
        Ok(SmsBatch {
            outcomes,
            visits,
            claimed,
        })
    }

    /// The whole batch in a few statements: one look-up of earlier visits of its
    /// phones, one insert of the new check-ins, one insert of the replies.
    fn handle_grouped(
        &self,
        tx: &mut Conn<'_>,
        batch: &[&InboundSms],
        senders: Senders<'_>,
        commands: &[Command],
        zone: &ServiceZone,
        now: DateTime<Utc>,
    ) -> Result<SmsBatch, StoreError> {
        let hashes = senders.hashes;
        let window_ms = i64::try_from(self.config().dedupe_window.as_millis())
            .map_err(|_| StoreError::Config("dedupe window is too long".into()))?;
        let mut premises = PremisesCache::new();
        let codes = commands.iter().filter_map(|c| match c {
            Command::CheckIn { digits } => VenueCode::from_digits(&digits.values()).ok(),
            _ => None,
        });
        premises.load(&mut *tx, self.backend(), codes)?;
        // What each SMS becomes: a reply, or a check-in candidate.
        let mut outcomes: Vec<Option<SmsOutcome>> = vec![None; batch.len()];
        let mut replies: Vec<Option<String>> = vec![None; batch.len()];
        let mut candidates: Vec<(usize, Premises)> = Vec::new();
        for (i, command) in commands.iter().enumerate() {
            let (outcome, reply) = match intent(&mut *tx, &mut premises, command)? {
                Intent::CheckIn(p, _) => {
                    candidates.push((i, p));
                    continue;
                }
                Intent::Reply(reason, text) => (reason, text),
                // Batches with an opt-out take the in-order path.
                Intent::OptOut => (Rejection::Unrecognized, texts::unrecognized()),
            };
            outcomes[i] = Some(outcome.into());
            replies[i] = Some(reply);
        }

        // Earlier visits of these phones that a candidate may repeat.
        let mut known: Vec<Known> = Vec::new();
        if !candidates.is_empty() {
            let times = candidates.iter().map(|(i, _)| to_ms(batch[*i].received_at));
            let (min_at, max_at) =
                times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
            let mut params = Params::new(self.backend());
            let (from, to) = (params.next(), params.next());
            let mut sql = format!(
                "SELECT id, premises_id, phone_hash, checked_in_at_ms, replied_at_ms FROM checkins \
                 WHERE checked_in_at_ms > {from} AND checked_in_at_ms < {to} AND phone_hash IN ("
            );
            for k in 0..candidates.len() {
                if k > 0 {
                    sql.push(',');
                }
                sql.push_str(&params.next());
            }
            sql.push(')');
            let mut query = db::query(&sql)
                .bind(min_at.saturating_sub(window_ms))
                .bind(max_at.saturating_add(window_ms));
            for (i, _) in &candidates {
                query = query.bind(&hashes[*i].0[..]);
            }
            for row in query.fetch_all(&mut *tx)? {
                let hash: Vec<u8> = row.try_get("phone_hash")?;
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("phone hash length".into()))?;
                let at: i64 = row.try_get("checked_in_at_ms")?;
                let replied: Option<i64> = row.try_get("replied_at_ms")?;
                known.push(Known {
                    premises_id: row.try_get("premises_id")?,
                    hash,
                    at,
                    id: row.try_get("id")?,
                    // The confirmation answered the visit itself.
                    replied_at: replied.unwrap_or(at),
                });
            }
        }

        // Decide in arrival order; a repeat inside the batch points at the
        // earlier candidate (its id is known once inserted). A repeat is
        // answered when its visit's last answer is old enough.
        enum Visit {
            Known(usize),
            New,
            SameAs(usize),
        }
        // Per visit: when it was last answered (new visits: now, by their confirmation).
        let mut new_replied_at: Vec<i64> = Vec::with_capacity(candidates.len());
        let mut answered: Vec<bool> = Vec::with_capacity(candidates.len());
        let mut visits: Vec<(usize, Premises, Visit)> = Vec::with_capacity(candidates.len());
        // The new visits so far by (premises, phone), in arrival order: a
        // search of all visits for every candidate was quadratic in the group.
        let mut new_by_phone: HashMap<(i64, [u8; 32]), Vec<usize>> = HashMap::new();
        for (i, p) in candidates {
            let at = to_ms(batch[i].received_at);
            let hash = hashes[i].0;
            let near = |other_at: i64| (other_at - at).abs() < window_ms;
            let visit = if let Some(k) = (0..known.len())
                .filter(|&k| {
                    let v = &known[k];
                    v.premises_id == p.id && v.hash == hash && near(v.at)
                })
                .min_by_key(|&k| (known[k].at, known[k].id))
            {
                Visit::Known(k)
            } else if let Some(first) = new_by_phone.get(&(p.id, hash)).and_then(|firsts| {
                firsts
                    .iter()
                    .copied()
                    .find(|&f| near(to_ms(batch[visits[f].0].received_at)))
            }) {
                Visit::SameAs(first)
            } else {
                new_by_phone
                    .entry((p.id, hash))
                    .or_default()
                    .push(visits.len());
                Visit::New
            };
            let last_reply = match visit {
                Visit::Known(k) => Some(&mut known[k].replied_at),
                Visit::SameAs(first) => Some(&mut new_replied_at[first]),
                Visit::New => None,
            };
            let answer = match last_reply {
                Some(last) if at - *last >= REPEAT_REPLY_INTERVAL_MS => {
                    *last = at;
                    true
                }
                _ => false,
            };
            new_replied_at.push(at);
            answered.push(answer);
            visits.push((i, p, visit));
        }

        // One insert for the new visits; ids matched back by (premises, phone).
        let new_rows: Vec<usize> = (0..visits.len())
            .filter(|&v| matches!(visits[v].2, Visit::New))
            .collect();
        let mut new_ids: Vec<i64> = vec![0; visits.len()];
        if !new_rows.is_empty() {
            let rows: Vec<NewVisit> = new_rows
                .iter()
                .map(|&v| {
                    let (i, p, _) = &visits[v];
                    NewVisit {
                        premises_id: p.id,
                        hash: &hashes[*i].0[..],
                        sealed: senders.sealed[*i],
                        channel: senders.channels[*i].as_str(),
                        at_ms: to_ms(batch[*i].received_at),
                    }
                })
                .collect();
            let sqlite = self.backend() == Backend::Sqlite;
            let sql = checkins_insert_sql(self.backend(), rows.len(), !sqlite);
            let mut query = db::query(&sql);
            for row in &rows {
                for (_, value) in &CHECKIN_COLUMNS {
                    if let Column::Bind(bind) = value {
                        query = bind(query, row);
                    }
                }
            }
            let fits = |v: usize, row: &Row| -> Result<bool, StoreError> {
                let hash: Vec<u8> = row.try_get("phone_hash")?;
                Ok(visits[v].1.id == row.try_get::<i64, _>("premises_id")?
                    && hashes[visits[v].0].0[..] == hash[..])
            };
            insert_checkins_with_ids(
                &mut *tx,
                query,
                self.backend(),
                &new_rows,
                &mut new_ids,
                fits,
                "SMS",
            )?;
        }
        // Answered repeats: the visit's last answer moves to theirs.
        let mut replied: Vec<(i64, i64)> = Vec::new(); // (check-in id, at)
        let mut seen: Vec<Option<SmsVisit>> = vec![None; batch.len()];
        for (v, (i, p, visit)) in visits.iter().enumerate() {
            let (checkin_id, first_at) = match visit {
                Visit::Known(k) => (known[*k].id, from_ms(known[*k].at)?),
                Visit::SameAs(first) => (new_ids[*first], batch[visits[*first].0].received_at),
                Visit::New => (new_ids[v], batch[*i].received_at),
            };
            // Only a USSD screen needs it (an SMS's reply is its text).
            if senders.channels[*i] == Channel::Ussd {
                seen[*i] = Some(SmsVisit {
                    premises: p.clone(),
                    at: first_at,
                });
            }
            outcomes[*i] = Some(match visit {
                Visit::Known(_) | Visit::SameAs(_) if answered[v] => {
                    replies[*i] = Some(texts::already_checked_in(p, first_at, zone));
                    replied.push((checkin_id, to_ms(batch[*i].received_at)));
                    SmsOutcome::Repeat { checkin_id }
                }
                Visit::Known(_) | Visit::SameAs(_) => SmsOutcome::Duplicate { checkin_id },
                Visit::New => {
                    replies[*i] = Some(texts::confirmation(p, batch[*i].received_at, zone));
                    SmsOutcome::CheckedIn {
                        checkin_id: new_ids[v],
                    }
                }
            });
        }

        self.mark_replied(tx, &replied)?;

        let messages: Vec<Outgoing> = replies
            .into_iter()
            .enumerate()
            .filter(|(i, _)| senders.reply_by_sms[*i])
            .filter_map(|(i, reply)| reply.map(|text| senders.reply(i, text)))
            .collect();
        let claimed = self.enqueue_many_in(tx, &messages, now, senders.claim_max)?;
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StoreError::Corrupt("an SMS got no outcome".into())))
            .collect::<Result<_, _>>()?;
        Ok(SmsBatch {
            outcomes,
            visits: seen,
            claimed,
        })
    }
}

/// A new SMS (or USSD) check-in, as the grouped insert binds it.
struct NewVisit<'a> {
    premises_id: i64,
    hash: &'a [u8],
    sealed: &'a [u8],
    channel: &'static str,
    at_ms: i64,
}

/// Where one column of the grouped check-in insert gets its value.
enum Column {
    /// A placeholder, bound per row.
    Bind(for<'q> fn(db::Query<'q>, &NewVisit<'_>) -> db::Query<'q>),
    /// The same constant in every row.
    Literal(&'static str),
}

/// The grouped check-in insert's columns, each with its value: the
/// placeholders and the binds come from this one list, so they cannot drift
/// apart.
const CHECKIN_COLUMNS: [(&str, Column); 6] = [
    ("premises_id", Column::Bind(|q, v| q.bind(v.premises_id))),
    ("phone_hash", Column::Bind(|q, v| q.bind(v.hash))),
    ("phone_sealed", Column::Bind(|q, v| q.bind(v.sealed))),
    ("channel", Column::Bind(|q, v| q.bind(v.channel))),
    // Texting (or dialling) a code is consenting to alerts (the poster says so).
    ("consent", Column::Literal("1")),
    ("checked_in_at_ms", Column::Bind(|q, v| q.bind(v.at_ms))),
];

/// `INSERT` of `rows` SMS check-ins ([`CHECKIN_COLUMNS`]), returning (if
/// `returning`) what
/// matches each new id back to its SMS.
fn checkins_insert_sql(backend: Backend, rows: usize, returning: bool) -> String {
    let names: Vec<&str> = CHECKIN_COLUMNS.iter().map(|(name, _)| *name).collect();
    let mut sql = format!("INSERT INTO checkins ({}) VALUES ", names.join(", "));
    let mut params = Params::new(backend);
    for i in 0..rows {
        sql.push_str(if i > 0 { ",(" } else { "(" });
        for (k, (_, value)) in CHECKIN_COLUMNS.iter().enumerate() {
            if k > 0 {
                sql.push_str(", ");
            }
            match value {
                Column::Bind(_) => sql.push_str(&params.next()),
                Column::Literal(literal) => sql.push_str(literal),
            }
        }
        sql.push(')');
    }
    if returning {
        sql.push_str(" RETURNING id, premises_id, phone_hash");
    }
    sql
}

/// An earlier visit a candidate of the batch may repeat.
struct Known {
    premises_id: i64,
    hash: [u8; 32],
    at: i64,
    id: i64,
    /// When the visit was last answered (its confirmation, or a repeat's answer).
    replied_at: i64,
}

impl Store {
    /// Records when repeats of these visits were answered: `(check-in id, at)`;
    /// the latest time of each visit wins.
    fn mark_replied(&self, tx: &mut Conn<'_>, replied: &[(i64, i64)]) -> Result<(), StoreError> {
        if replied.is_empty() {
            return Ok(());
        }
        let mut params = Params::new(self.backend());
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
}

/// Whether the repeat at `at` of the visit `checkin_id` (first at `first_at`)
/// is answered; if so, records that it was (the in-order path).
fn reply_to_repeat(
    conn: &mut Conn<'_>,
    checkin_id: i64,
    first_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = db::query("SELECT replied_at_ms FROM checkins WHERE id = $1")
        .bind(checkin_id)
        .fetch_one(&mut *conn)?;
    let replied: Option<i64> = row.try_get("replied_at_ms")?;
    let last = replied.unwrap_or(to_ms(first_at));
    if to_ms(at) - last < REPEAT_REPLY_INTERVAL_MS {
        return Ok(false);
    }
    db::query("UPDATE checkins SET replied_at_ms = $1 WHERE id = $2")
        .bind(to_ms(at))
        .bind(checkin_id)
        .execute(&mut *conn)?;
    Ok(true)
}

/// The batch's senders, hashed and sealed, by position in the batch.
#[derive(Clone, Copy)]
struct Senders<'a> {
    hashes: &'a [PhoneHash],
    sealed: &'a [&'a [u8]],
    channels: &'a [Channel],
    /// Whether each one's reply is queued (see `PreparedSms::reply_by_sms`).
    reply_by_sms: &'a [bool],
    /// Replies to queue already claimed (see `handle_prepared_sms_claiming`).
    claim_max: usize,
}

impl<'a> Senders<'a> {
    /// The reply to the `i`th SMS.
    fn reply(&self, i: usize, text: String) -> Outgoing<'a> {
        Outgoing {
            hash: &self.hashes[i],
            sealed: self.sealed[i],
            text,
            priority: Priority::Confirmation,
        }
    }
}

/// What one SMS asks for, once its code (if any) is looked up.
enum Intent {
    /// Nothing to record; answer with this text.
    Reply(Rejection, String),
    /// A check-in at these open premises.
    CheckIn(Premises, VenueCode),
    /// Withdraw consent.
    OptOut,
}

fn intent(
    conn: &mut Conn<'_>,
    premises: &mut PremisesCache,
    command: &Command,
) -> Result<Intent, StoreError> {
    Ok(match command {
        Command::CheckIn { digits } => match VenueCode::from_digits(&digits.values()) {
            Err(CodeError::CheckDigit) => Intent::Reply(Rejection::Typo, texts::code_typo()),
            Err(CodeError::WrongLength { digits }) => {
                Intent::Reply(Rejection::WrongLength, texts::wrong_length(digits))
            }
            Err(CodeError::InvalidCharacter) => {
                Intent::Reply(Rejection::Unrecognized, texts::unrecognized())
            }
            Ok(code) => match premises.get(conn, &code)? {
                None => Intent::Reply(Rejection::UnknownCode, texts::code_not_found(&code)),
                Some(p) if !p.active => {
                    Intent::Reply(Rejection::InactivePremises, texts::premises_inactive(&p))
                }
                Some(p) => Intent::CheckIn(p, code),
            },
        },
        Command::TemplateCopied => {
            Intent::Reply(Rejection::TemplateCopied, texts::template_copied())
        }
        Command::WrongLength { digits } => {
            Intent::Reply(Rejection::WrongLength, texts::wrong_length(*digits))
        }
        Command::Help => Intent::Reply(Rejection::Help, texts::help()),
        Command::OptOut => Intent::OptOut,
        Command::Unrecognized => Intent::Reply(Rejection::Unrecognized, texts::unrecognized()),
    })
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
    /// the reply is queued as an SMS only when `confirm_by_sms`).
    pub fn prepare_ussd(
        self,
        from: Msisdn,
        digits: CodeDigits,
        received_at: DateTime<Utc>,
        confirm_by_sms: bool,
    ) -> PreparedSms {
        PreparedSms {
            hash: self.store.vault().hash(&from),
            sealed: self.store.vault().seal(&from),
            command: Command::CheckIn { digits },
            sms: InboundSms {
                from,
                text: digits.as_str().to_owned(),
                received_at,
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
        if prepared.len() > SMS_BATCH_MAX {
            return Err(StoreError::Invalid(format!(
                "a batch holds at most {SMS_BATCH_MAX} messages"
            )));
        }
        if prepared.is_empty() {
            return Ok(SmsBatch::default());
        }
        let started = std::time::Instant::now();
        let store = self.store.clone();
        let prepared_owned = prepared.to_vec();
        let zone = zone.clone();
        let result = self
            .store
            .write(move |tx| {
                let prepared = &prepared_owned;
                let locked = started.elapsed();
                let batch: Vec<&InboundSms> = prepared.iter().map(|p| &p.sms).collect();
                let hashes: Vec<PhoneHash> = prepared.iter().map(|p| p.hash).collect();
                let sealed: Vec<&[u8]> = prepared.iter().map(|p| &p.sealed[..]).collect();
                let commands: Vec<Command> = prepared.iter().map(|p| p.command).collect();
                let channels: Vec<Channel> = prepared.iter().map(|p| p.channel).collect();
                let reply_by_sms: Vec<bool> = prepared.iter().map(|p| p.reply_by_sms).collect();
                let senders = Senders {
                    hashes: &hashes,
                    sealed: &sealed,
                    channels: &channels,
                    reply_by_sms: &reply_by_sms,
                    claim_max,
                };
                if tx.backend() == Backend::Postgres {
                    lock_phones(tx, &hashes)?;
                }
                // Opt-outs must see the check-ins before them in the batch and not those
                // after: keep their batches in arrival order, one statement at a time.
                let result = if commands.iter().any(|c| matches!(c, Command::OptOut)) {
                    store.handle_in_order(tx, &batch, senders, &commands, &zone, now)?
                } else {
                    store.handle_grouped(tx, &batch, senders, &commands, &zone, now)?
                };
                Ok((result, locked))
            })
            .await;
        let (result, locked) = result?;
        let written = started.elapsed();
        // Replies beyond the claimed ones may wait `pending`: the sender claims
        // them once woken.
        if claim_max < prepared.len() {
            self.store.outbox_signal().wake();
        }
        tracing::debug!(
            group = prepared.len(),
            queue_wait_us = locked.as_micros() as u64,
            written_us = written.saturating_sub(locked).as_micros() as u64,
            "SMS group written"
        );
        Ok(result)
    }
}
