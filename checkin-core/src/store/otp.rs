//! One-time codes of the web check-in: a code is issued with its SMS in one
//! transaction, and the right code records the check-in in the same
//! transaction that uses it up (so a code is never spent without its visit, nor
//! a visit recorded twice from one code).

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use super::db::{self, Conn, Row};

use super::base::{to_ms, Params};
use super::checkins::{
    checkin_from_row, checkins_insert_sql, insert_checkins_with_ids, lock_phones,
};
use super::db::Backend;
use super::error::StoreError;
use super::handles::Otps;
use super::orgs::premises_from_row;
use super::outbox::enqueue_in;
use crate::model::{Channel, CheckIn, NewMessage, Premises, Priority, Recorded};
use crate::msisdn::Msisdn;
use crate::otp::{enter_code, CodeState, EntryVerdict, OtpCode, OtpKey};
use crate::privacy::PhoneHash;
use crate::visits::{Seen, Visits};

/// A code to issue and the SMS that carries it.
#[derive(Debug, Clone)]
pub struct NewOtp<'a> {
    pub phone: &'a Msisdn,
    pub premises_id: i64,
    pub code: &'a OtpCode,
    pub expires_at: DateTime<Utc>,
    /// The SMS text (see `texts::otp`).
    pub text: String,
}

/// What a code issued earlier is for (the resend's look-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedOtp {
    pub id: i64,
    pub premises_id: i64,
    pub phone: Msisdn,
}

/// Most code entries confirmed in one transaction
/// ([`Otps::confirm_otp_group`]).
pub const OTP_GROUP_MAX: usize = 1024;

/// One entry of a code: code `id`, entered at `premises_id`'s page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpEntry {
    pub id: i64,
    pub premises_id: i64,
    pub code: OtpCode,
    /// The visitor agreed to be told of an exposure.
    pub consent: bool,
    /// When it was entered: the expiry is checked against it and the
    /// check-in recorded at it.
    pub at: DateTime<Utc>,
}

/// What entering a code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpCheck {
    /// The right code: the check-in is recorded (or the one inside the dedupe
    /// window returned), for this phone.
    Confirmed { recorded: Recorded, phone: Msisdn },
    /// Wrong code; this many tries remain.
    Wrong { attempts_left: u32 },
    /// The code's life is over.
    Expired,
    /// Too many wrong codes: this one is dead.
    AttemptsExhausted,
    /// Already used for a check-in.
    Used,
    /// No such code (purged, or never issued).
    Unknown,
    /// The premises stopped taking check-ins after the code was sent.
    InactivePremises,
}

const OTP_SELECT: &str = "SELECT id, premises_id, phone_hash, phone_sealed, code_salt, code_hash, \
     attempts, expires_at_ms, used_at_ms FROM otps WHERE id = $1";

impl Otps<'_> {
    /// Stores `new`'s code hashed under `key` and queues its SMS (priority
    /// OTP) in one transaction; returns the code's id. The caller wakes the
    /// sender.
    pub async fn issue_otp(
        self,
        new: &NewOtp<'_>,
        key: &OtpKey,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (salt, hash) = key.hash_new(new.code);
        let message = NewMessage {
            recipient: new.phone.clone(),
            text: new.text.clone(),
            priority: Priority::Otp,
        };
        let phone_hash = self.store.vault().hash(new.phone);
        let phone_sealed = self.store.vault().seal(new.phone);
        let (premises_id, expires_at) = (new.premises_id, new.expires_at);
        let store = self.store.clone();
        let id = self
            .store
            .write(move |tx| {
                let row = db::query(
            "INSERT INTO otps (premises_id, phone_hash, phone_sealed, code_salt, code_hash, \
             attempts, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, 0, $6, $7) \
             RETURNING id",
        )
        .bind(premises_id)
        .bind(&phone_hash.0[..])
        .bind(phone_sealed)
        .bind(&salt[..])
        .bind(&hash[..])
        .bind(to_ms(now))
        .bind(to_ms(expires_at))
        .fetch_one(&mut *tx)?;
                enqueue_in(&store, tx, &message, now)?;
                Ok(row.try_get::<i64, _>("id")?)
            })
            .await?;
        // Like every producer: the sender learns of it from the outbox.
        self.store.outbox().wake();
        Ok(id)
    }

    /// Checks `code` against code `id`, issued for `premises_id` (another
    /// premises' code is `Unknown` here); the right one records the check-in
    /// (channel Web) in the same transaction that marks the code used. Each
    /// wrong entry counts against [`OTP_ATTEMPTS_MAX`].
    pub async fn confirm_otp(
        self,
        id: i64,
        premises_id: i64,
        code: &OtpCode,
        key: &OtpKey,
        consent: bool,
        now: DateTime<Utc>,
    ) -> Result<OtpCheck, StoreError> {
        let entry = OtpEntry {
            id,
            premises_id,
            code: code.clone(),
            consent,
            at: now,
        };
        self.confirm_otp_group(std::slice::from_ref(&entry), key)
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("a code entry got no answer".into())))
    }

    /// [`Otps::confirm_otp`] for each of `entries` (at most
    /// [`OTP_GROUP_MAX`]), all in ONE write transaction: each entry gets its
    /// own answer, in its place; a later entry sees what the earlier ones did
    /// (one code entered twice passes once). `Err` when the transaction
    /// itself failed: then nothing was committed.
    ///
    /// The group is decided in memory over a few statements for all of it
    /// (the codes' rows, their premises, earlier visits, one insert, one
    /// update: [`Otps::confirm_batched`]), not a handful per entry: on SQLite
    /// every statement is a hand-off to the connection's worker thread. An
    /// entry whose code or phone cannot be read fails alone there. When one
    /// of those statements fails (a row the database refuses), that
    /// transaction is rolled back and the group confirmed again in a new one,
    /// entry by entry, each under a savepoint of its own, so a failing entry
    /// rolls back only itself and gets its own error.
    pub async fn confirm_otp_group(
        self,
        entries: &[OtpEntry],
        key: &OtpKey,
    ) -> Result<Vec<Result<OtpCheck, StoreError>>, StoreError> {
        if entries.len() > OTP_GROUP_MAX {
            return Err(StoreError::Invalid(format!(
                "{} code entries in one group (at most {OTP_GROUP_MAX})",
                entries.len()
            )));
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.store.clone();
        let key = key.clone();
        let entries = entries.to_vec();
        self.store
            .write(move |tx| {
                let otps = Otps { store: &store };
                tx.execute("SAVEPOINT otp_group", &[])?;
                match otps.confirm_batched(tx, &entries, &key) {
                    Ok(checks) => {
                        tx.execute("RELEASE otp_group", &[])?;
                        return Ok(checks);
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            group = entries.len(),
                            "a grouped code confirmation failed; confirming its entries one by one"
                        );
                        // The entries are read afresh after the rollback.
                        tx.execute("ROLLBACK TO otp_group", &[])?;
                        tx.execute("RELEASE otp_group", &[])?;
                    }
                }
                otps.confirm_each(tx, &entries, &key)
            })
            .await
    }

    /// Each entry under a savepoint of its own (the group's fallback).
    fn confirm_each(
        self,
        tx: &mut Conn<'_>,
        entries: &[OtpEntry],
        key: &OtpKey,
    ) -> Result<Vec<Result<OtpCheck, StoreError>>, StoreError> {
        let mut checks = Vec::with_capacity(entries.len());
        for entry in entries {
            tx.execute("SAVEPOINT otp_entry", &[])?;
            let check = self
                .confirm_batched(&mut *tx, std::slice::from_ref(entry), key)
                .and_then(|mut one| {
                    one.pop().unwrap_or_else(|| {
                        Err(StoreError::Corrupt("a code entry got no answer".into()))
                    })
                });
            if check.is_err() {
                // Fails when the database rolled the whole transaction back:
                // then the group fails as one.
                tx.execute("ROLLBACK TO otp_entry", &[])?;
            }
            tx.execute("RELEASE otp_entry", &[])?;
            checks.push(check);
        }
        Ok(checks)
    }

    /// The group of [`Otps::confirm_otp_group`] in a fixed number of
    /// statements, decided in memory in the entries' order exactly as
    /// [`Otps::confirm_in`] decides one entry. `Err` when a statement
    /// failed (the caller rolls back what ran).
    fn confirm_batched(
        self,
        tx: &mut Conn<'_>,
        entries: &[OtpEntry],
        key: &OtpKey,
    ) -> Result<Vec<Result<OtpCheck, StoreError>>, StoreError> {
        let backend = self.store.backend();
        let vault = self.store.vault();
        let window_ms = i64::try_from(self.store.config().dedupe_window.as_millis())
            .map_err(|_| StoreError::Config("dedupe window is too long".into()))?;

        // The codes' rows with their premises, the codes locked on PostgreSQL
        // (two entries of one code at once must not both pass), in id order
        // (no deadlock).
        let mut ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut params = Params::new(backend);
        let mut sql = format!("{OTP_WITH_PREMISES} WHERE o.id IN (");
        push_placeholders(&mut sql, &mut params, ids.len());
        sql.push(')');
        if backend == Backend::Postgres {
            sql.push_str(" ORDER BY o.id FOR UPDATE OF o");
        }
        let mut query = db::query(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let mut codes: HashMap<i64, CodeRow> = HashMap::with_capacity(ids.len());
        let mut premises: HashMap<i64, Premises> = HashMap::new();
        for row in query.fetch_all(&mut *tx)? {
            let used: Option<i64> = row.try_get("used_at_ms")?;
            let premises_id: i64 = row.try_get("otp_premises_id")?;
            // `id` is the premises' (absent when the row names none).
            if row.try_get::<Option<i64>, _>("id")?.is_some()
                && !premises.contains_key(&premises_id)
            {
                premises.insert(premises_id, premises_from_row(&row)?);
            }
            codes.insert(
                row.try_get("otp_id")?,
                CodeRow {
                    sealed: row.try_get("phone_sealed")?,
                    state: CodeState {
                        premises_id,
                        salt: row.try_get("code_salt")?,
                        hash: row.try_get("code_hash")?,
                        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?)
                            .unwrap_or(u32::MAX),
                        expires_at_ms: row.try_get("expires_at_ms")?,
                        used: used.is_some(),
                        attempts_added: 0,
                        used_at_ms: None,
                    },
                },
            );
        }

        // Each entry in order, against the codes as the earlier entries left
        // them (the rule: `otp::enter_code`).
        let mut checks: Vec<Option<Result<OtpCheck, StoreError>>> =
            (0..entries.len()).map(|_| None).collect();
        let mut candidates: Vec<Candidate> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let Some(code) = codes.get_mut(&entry.id) else {
                checks[i] = Some(Ok(OtpCheck::Unknown));
                continue;
            };
            let place = premises.get(&entry.premises_id);
            let verdict = enter_code(
                &mut code.state,
                entry.premises_id,
                place.map(|p| p.active),
                &entry.code,
                to_ms(entry.at),
                key,
            );
            checks[i] = Some(Ok(match verdict {
                EntryVerdict::Unknown => OtpCheck::Unknown,
                EntryVerdict::Used => OtpCheck::Used,
                EntryVerdict::AttemptsExhausted => OtpCheck::AttemptsExhausted,
                EntryVerdict::Expired => OtpCheck::Expired,
                EntryVerdict::Wrong { attempts_left } => OtpCheck::Wrong { attempts_left },
                EntryVerdict::InactivePremises => OtpCheck::InactivePremises,
                EntryVerdict::NoPremises => {
                    checks[i] = Some(Err(StoreError::Corrupt(format!(
                        "otp {} names no premises",
                        entry.id
                    ))));
                    continue;
                }
                EntryVerdict::Right => {
                    let Some(place) = place else { continue };
                    match vault.open(&code.sealed) {
                        Ok(phone) => {
                            candidates.push(Candidate {
                                entry: i,
                                sealed: code.sealed.clone(),
                                hash: vault.hash(&phone),
                                phone,
                                premises: place.clone(),
                                at_ms: to_ms(entry.at),
                            });
                            checks[i] = None;
                        }
                        Err(e) => {
                            // Not spent after all: the entry fails alone.
                            code.state.used = false;
                            code.state.used_at_ms = None;
                            code.state.attempts -= 1;
                            code.state.attempts_added -= 1;
                            checks[i] = Some(Err(e.into()));
                        }
                    }
                    continue;
                }
            }));
        }

        // Earlier visits of the confirmed phones inside the dedupe window.
        let mut known: Vec<(PhoneHash, CheckIn)> = Vec::new();
        if !candidates.is_empty() {
            if backend == Backend::Postgres {
                let hashes: Vec<PhoneHash> = candidates.iter().map(|c| c.hash).collect();
                lock_phones(tx, &hashes)?;
            }
            let (min_at, max_at) = candidates.iter().fold((i64::MAX, i64::MIN), |(lo, hi), c| {
                (lo.min(c.at_ms), hi.max(c.at_ms))
            });
            let mut params = Params::new(backend);
            let (from, to) = (params.next(), params.next());
            let mut sql = format!(
                "SELECT id, premises_id, phone_hash, channel, consent, checked_in_at_ms \
                 FROM checkins WHERE checked_in_at_ms > {from} AND checked_in_at_ms < {to} \
                 AND phone_hash IN ("
            );
            push_placeholders(&mut sql, &mut params, candidates.len());
            sql.push(')');
            let mut query = db::query(&sql)
                .bind(min_at.saturating_sub(window_ms))
                .bind(max_at.saturating_add(window_ms));
            for c in &candidates {
                query = query.bind(&c.hash.0[..]);
            }
            for row in query.fetch_all(&mut *tx)? {
                let hash: Vec<u8> = row.try_get("phone_hash")?;
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("phone hash length".into()))?;
                known.push((PhoneHash(hash), checkin_from_row(&row)?));
            }
        }

        // Each right entry's visit (the dedupe rule: `visits.rs`).
        enum Visit {
            Known(usize),
            New,
            SameAs(usize),
        }
        let mut ledger = Visits::new(
            window_ms,
            known
                .iter()
                .map(|(h, k)| (k.id, k.premises_id, h.0, to_ms(k.at))),
        );
        // Candidate index of each new visit, in the ledger's order.
        let mut new_candidate: Vec<usize> = Vec::new();
        let mut visits: Vec<Visit> = Vec::with_capacity(candidates.len());
        for (v, c) in candidates.iter().enumerate() {
            visits.push(match ledger.visit(c.premises.id, &c.hash.0, c.at_ms) {
                (Seen::Stored(k), _) => Visit::Known(k),
                (Seen::New(n), false) => Visit::SameAs(new_candidate[n]),
                (Seen::New(_), true) => {
                    new_candidate.push(v);
                    Visit::New
                }
            });
        }

        // One insert for the new visits.
        let new_rows: Vec<usize> = (0..visits.len())
            .filter(|&v| matches!(visits[v], Visit::New))
            .collect();
        let mut new_ids: Vec<i64> = vec![0; candidates.len()];
        if !new_rows.is_empty() {
            let sql = checkins_insert_sql(backend, new_rows.len());
            let mut query = db::query(&sql);
            for &v in &new_rows {
                let c = &candidates[v];
                query = query
                    .bind(c.premises.id)
                    .bind(&c.hash.0[..])
                    .bind(&c.sealed[..])
                    .bind(Channel::Web.as_str())
                    .bind(i64::from(entries[c.entry].consent))
                    .bind(c.at_ms);
            }
            let fits = |v: usize, row: &Row| -> Result<bool, StoreError> {
                let c = &candidates[v];
                let hash: Vec<u8> = row.try_get("phone_hash")?;
                Ok(c.premises.id == row.try_get::<i64, _>("premises_id")?
                    && c.hash.0[..] == hash[..]
                    && c.at_ms == row.try_get::<i64, _>("checked_in_at_ms")?)
            };
            insert_checkins_with_ids(
                &mut *tx,
                query,
                backend,
                &new_rows,
                &mut new_ids,
                fits,
                "code",
            )?;
        }

        // One update for the codes spent or tried.
        let touched: Vec<(i64, &CodeState)> = codes
            .iter()
            .filter(|(_, c)| c.state.attempts_added > 0)
            .map(|(id, c)| (*id, &c.state))
            .collect();
        if !touched.is_empty() {
            let mut params = Params::new(backend);
            let mut sql = String::from("WITH v (id, added, used_at) AS (VALUES ");
            for r in 0..touched.len() {
                sql.push_str(if r > 0 { ",(" } else { "(" });
                push_placeholders(&mut sql, &mut params, 3);
                sql.push(')');
            }
            sql.push_str(
                ") UPDATE otps SET \
                 attempts = attempts + (SELECT v.added FROM v WHERE v.id = otps.id), \
                 used_at_ms = COALESCE((SELECT v.used_at FROM v WHERE v.id = otps.id), used_at_ms) \
                 WHERE id IN (SELECT id FROM v)",
            );
            let mut query = db::query(&sql);
            for (id, c) in &touched {
                query = query
                    .bind(*id)
                    .bind(i64::from(c.attempts_added))
                    .bind(c.used_at_ms);
            }
            query.execute(&mut *tx)?;
        }

        // The row each new visit became, as `insert_if_new` returns it.
        let new_checkin = |v: usize| {
            let entry = &entries[candidates[v].entry];
            CheckIn {
                id: new_ids[v],
                premises_id: candidates[v].premises.id,
                channel: Channel::Web,
                at: entry.at,
                consent: entry.consent,
            }
        };
        let recorded: Vec<(CheckIn, bool)> = visits
            .iter()
            .enumerate()
            .map(|(v, visit)| match *visit {
                Visit::Known(k) => (known[k].1.clone(), true),
                Visit::SameAs(f) => (new_checkin(f), true),
                Visit::New => (new_checkin(v), false),
            })
            .collect();
        for (c, (checkin, duplicate)) in candidates.into_iter().zip(recorded) {
            checks[c.entry] = Some(Ok(OtpCheck::Confirmed {
                recorded: Recorded {
                    checkin,
                    premises: c.premises,
                    duplicate,
                },
                phone: c.phone,
            }));
        }
        checks
            .into_iter()
            .map(|c| c.ok_or_else(|| StoreError::Corrupt("a code entry got no answer".into())))
            .collect()
    }

    /// The code `id` was issued for whom and where (for a resend).
    pub async fn issued_otp(self, id: i64) -> Result<Option<IssuedOtp>, StoreError> {
        let row = db::query(OTP_SELECT)
            .bind(id)
            .read_optional(self.store.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.try_get("phone_sealed")?;
        Ok(Some(IssuedOtp {
            id,
            premises_id: row.try_get("premises_id")?,
            phone: self.store.vault().open(&sealed)?,
        }))
    }

    /// Deletes codes that expired before `before` (used or not): they can
    /// never be entered again. Returns how many.
    pub async fn purge_otps(self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = self
            .store
            .write(move |tx| {
                Ok(db::query("DELETE FROM otps WHERE expires_at_ms < $1")
                    .bind(to_ms(before))
                    .execute(tx)?)
            })
            .await?;
        Ok(done.rows_affected())
    }
}

/// A code's row as a grouped confirmation reads it, with its premises' row
/// (named as `premises_from_row` reads it; `NULL`s when there is none).
const OTP_WITH_PREMISES: &str = "SELECT o.id AS otp_id, o.premises_id AS otp_premises_id, \
     o.phone_sealed, o.code_salt, o.code_hash, o.attempts, o.expires_at_ms, o.used_at_ms, \
     p.id, p.org_id, p.code, p.address, p.sms_label, p.kind, p.stay_minutes, p.active, p.created_at_ms \
     FROM otps o LEFT JOIN premises p ON p.id = o.premises_id";

/// A code's row as a grouped confirmation reads it, and what the group's
/// entries did to it so far.
struct CodeRow {
    /// The phone as the code's row holds it.
    sealed: Vec<u8>,
    /// What the entries of the group did to it (`otp::enter_code`).
    state: CodeState,
}

/// A right code of a group: its visit to record.
struct Candidate {
    /// Its entry's place in the group.
    entry: usize,
    /// The phone as the code's row holds it, stored again with the visit: a
    /// second ciphertext of the number would tell nothing more (the two rows
    /// share the phone's hash anyway) and costs a sealing per visit.
    sealed: Vec<u8>,
    phone: Msisdn,
    hash: PhoneHash,
    premises: Premises,
    at_ms: i64,
}

/// `count` placeholders, comma-separated.
fn push_placeholders(sql: &mut String, params: &mut Params, count: usize) {
    for k in 0..count {
        if k > 0 {
            sql.push(',');
        }
        sql.push_str(&params.next());
    }
}
