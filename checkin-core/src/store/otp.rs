//! One-time codes of the web check-in: a code is issued with its SMS in one
//! transaction, and the right code records the check-in in the same
//! transaction that uses it up (so a code is never spent without its visit, nor
//! a visit recorded twice from one code).

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Executor, Row};

use super::checkins::lock_phones;
use super::orgs::{premises_from_row, PREMISES_SELECT};
use super::{time_col, to_ms, Backend, Otps, StoreError};
use crate::model::{Channel, NewCheckIn, NewMessage, Priority, Recorded};
use crate::otp::{OtpCode, OtpKey, OTP_ATTEMPTS_MAX};
use crate::Msisdn;

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
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO otps (premises_id, phone_hash, phone_sealed, code_salt, code_hash, \
             attempts, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, 0, $6, $7) \
             RETURNING id",
        )
        .bind(new.premises_id)
        .bind(&self.store.vault().hash(new.phone).0[..])
        .bind(self.store.vault().seal(new.phone))
        .bind(&salt[..])
        .bind(&hash[..])
        .bind(to_ms(now))
        .bind(to_ms(new.expires_at))
        .fetch_one(&mut *tx)
        .await?;
        self.store.enqueue_in(&mut tx, &message, now).await?;
        tx.commit().await?;
        // Like every producer: the sender learns of it from the outbox.
        self.store.outbox().wake();
        Ok(row.try_get("id")?)
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
        let mut tx = self.store.begin_write().await?;
        let check = self.confirm_in(&mut tx, &entry, key).await?;
        // Nothing is written for the refusals; committing them costs nothing.
        tx.commit().await?;
        Ok(check)
    }

    /// [`Otps::confirm_otp`] for each of `entries` (at most
    /// [`OTP_GROUP_MAX`]), all in ONE write transaction, each under a
    /// savepoint of its own: an entry that fails rolls back only itself and
    /// gets its own error, in its place in the answer; a later entry sees
    /// what the earlier ones did (one code entered twice passes once). `Err`
    /// when the transaction itself failed: then nothing was committed.
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
        let mut tx = self.store.begin_write().await?;
        let mut checks = Vec::with_capacity(entries.len());
        for entry in entries {
            (*tx).execute("SAVEPOINT otp_entry").await?;
            let check = self.confirm_in(&mut tx, entry, key).await;
            if check.is_err() {
                // Fails when the database rolled the whole transaction back
                // (disk full, I/O error): then the group fails as one.
                (*tx).execute("ROLLBACK TO otp_entry").await?;
            }
            (*tx).execute("RELEASE otp_entry").await?;
            checks.push(check);
        }
        tx.commit().await?;
        Ok(checks)
    }

    /// One entry of a code, inside the caller's write transaction; writes
    /// nothing unless the answer is `Wrong` or `Confirmed`.
    async fn confirm_in(
        self,
        tx: &mut AnyConnection,
        entry: &OtpEntry,
        key: &OtpKey,
    ) -> Result<OtpCheck, StoreError> {
        let OtpEntry {
            id,
            premises_id,
            ref code,
            consent,
            at: now,
        } = *entry;
        let select = match self.store.backend() {
            // Two entries of one code at once must not both pass.
            Backend::Postgres => format!("{OTP_SELECT} FOR UPDATE"),
            Backend::Sqlite => OTP_SELECT.to_owned(),
        };
        let Some(row) = sqlx::query(&select)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(OtpCheck::Unknown);
        };
        if row.try_get::<i64, _>("premises_id")? != premises_id {
            return Ok(OtpCheck::Unknown);
        }
        let attempts = u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX);
        if row.try_get::<Option<i64>, _>("used_at_ms")?.is_some() {
            return Ok(OtpCheck::Used);
        }
        if attempts >= OTP_ATTEMPTS_MAX {
            return Ok(OtpCheck::AttemptsExhausted);
        }
        if time_col(&row, "expires_at_ms")? <= now {
            return Ok(OtpCheck::Expired);
        }
        let salt: Vec<u8> = row.try_get("code_salt")?;
        let hash: Vec<u8> = row.try_get("code_hash")?;
        if !key.matches(&salt, code, &hash) {
            sqlx::query("UPDATE otps SET attempts = attempts + 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            return Ok(OtpCheck::Wrong {
                attempts_left: OTP_ATTEMPTS_MAX - attempts - 1,
            });
        }
        let premises = sqlx::query(&format!("{PREMISES_SELECT} WHERE id = $1"))
            .bind(premises_id)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(premises_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt(format!("otp {id} names no premises")))?;
        if !premises.active {
            return Ok(OtpCheck::InactivePremises);
        }
        let sealed: Vec<u8> = row.try_get("phone_sealed")?;
        let phone = self.store.vault().open(&sealed)?;
        let phone_hash = self.store.vault().hash(&phone);
        if self.store.backend() == Backend::Postgres {
            lock_phones(tx, std::slice::from_ref(&phone_hash)).await?;
        }
        sqlx::query("UPDATE otps SET used_at_ms = $1, attempts = attempts + 1 WHERE id = $2")
            .bind(to_ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let new = NewCheckIn {
            phone: phone.clone(),
            code: premises.code,
            channel: Channel::Web,
            at: now,
            consent,
        };
        let recorded = self
            .store
            .insert_if_new(tx, &new, &phone_hash, premises)
            .await?;
        Ok(OtpCheck::Confirmed { recorded, phone })
    }

    /// The code `id` was issued for whom and where (for a resend).
    pub async fn issued_otp(self, id: i64) -> Result<Option<IssuedOtp>, StoreError> {
        let row = sqlx::query(OTP_SELECT)
            .bind(id)
            .fetch_optional(self.store.pool())
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
        let mut tx = self.store.begin_write().await?;
        let done = sqlx::query("DELETE FROM otps WHERE expires_at_ms < $1")
            .bind(to_ms(before))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
