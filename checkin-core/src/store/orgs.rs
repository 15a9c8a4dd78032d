//! Organizations, their premises (with fresh random codes) and health authorities.

use super::db::{self, Row};
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::base::{flag_col, time_col, to_ms};
use super::error::StoreError;
use super::handles::Orgs;
use crate::model::{Organization, Premises, STAY_MINUTES_DEFAULT, STAY_MINUTES_MAX};
use crate::venue_code::VenueCode;

/// How many random codes to try before giving up; with 10^8 codes a collision is
/// rare, eight in a row means something is wrong.
const CODE_ATTEMPTS_MAX: u32 = 8;
/// Longest address accepted (fits any real postal address, bounds poster layout).
pub const ADDRESS_CHARS_MAX: usize = 300;

/// An organization to create.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub name: String,
    pub email: String,
    /// Optional: for the web cabinet's login.
    pub password: Option<String>,
}

/// The created organization and its API token (shown once, stored only hashed).
#[derive(Debug, Clone)]
pub struct OrgCreated {
    pub organization: Organization,
    pub api_token: String,
}

/// Premises to register.
#[derive(Debug, Clone)]
pub struct NewPremises {
    pub org_id: i64,
    pub address: String,
    pub kind: Option<String>,
    pub stay_minutes: Option<u32>,
}

/// The label of the API token `checkin org create` prints.
pub const TOKEN_LABEL_CLI: &str = "checkin org create";
/// Longest organization name accepted.
pub const NAME_CHARS_MAX: usize = 200;
/// Longest e-mail address accepted (RFC 5321's path limit).
pub const EMAIL_CHARS_MAX: usize = 254;

/// An e-mail address, trimmed and lower-cased, if it looks like one (the
/// organizations' and the authorities' people alike).
pub(crate) fn checked_email(email: &str) -> Result<String, StoreError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@')
        || email.chars().count() > EMAIL_CHARS_MAX
        || email.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(StoreError::Invalid(format!(
            "{email:?} is not an e-mail address"
        )));
    }
    Ok(email)
}

/// A random secret token: 32 bytes, hex.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Tokens are stored as SHA-256: they are random, so no salt or slow hash is needed.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a token list shows of a token: its first 8 characters.
pub(crate) fn token_prefix(token: &str) -> String {
    token.chars().take(8).collect()
}

/// An argon2id hash (PHC string) of `password`, with a fresh salt.
pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::Invalid(format!("password: {e}")))?;
    Ok(hash.to_string())
}

pub(crate) fn is_unique_violation(e: &super::error::DbError) -> bool {
    e.is_unique_violation()
}

pub(crate) const PREMISES_SELECT: &str =
    "SELECT id, org_id, code, address, sms_label, kind, stay_minutes, active, created_at_ms FROM premises";

pub(crate) fn premises_from_row(row: &Row) -> Result<Premises, StoreError> {
    let code: String = row.try_get("code")?;
    let stay: i64 = row.try_get("stay_minutes")?;
    Ok(Premises {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        code: VenueCode::parse(&code)
            .map_err(|e| StoreError::Corrupt(format!("premises code {code:?}: {e}")))?,
        address: row.try_get("address")?,
        sms_label: row.try_get("sms_label")?,
        kind: row.try_get("kind")?,
        stay_minutes: u32::try_from(stay)
            .map_err(|_| StoreError::Corrupt(format!("stay {stay}")))?,
        active: flag_col(row, "active")?,
        created_at: time_col(row, "created_at_ms")?,
    })
}

impl Orgs<'_> {
    /// Creates an organization with a fresh API token.
    pub async fn create_org(
        self,
        new: &NewOrganization,
        now: DateTime<Utc>,
    ) -> Result<OrgCreated, StoreError> {
        self.insert_org(new, now, TOKEN_LABEL_CLI).await
    }

    /// Creates an organization; its first API token, labelled `label`, is in
    /// `OrgCreated::api_token`.
    pub(crate) async fn insert_org(
        self,
        new: &NewOrganization,
        now: DateTime<Utc>,
        label: &str,
    ) -> Result<OrgCreated, StoreError> {
        let name = new.name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("the organization name is empty".into()));
        }
        if name.chars().count() > NAME_CHARS_MAX || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "the organization name must be 1..={NAME_CHARS_MAX} printable characters"
            )));
        }
        let email = checked_email(&new.email)?;
        let password_hash = match &new.password {
            Some(p) if !p.is_empty() => Some(hash_password(p)?),
            _ => None,
        };
        let api_token = new_token();
        let (name_owned, email_owned, token) = (name.to_owned(), email.clone(), api_token.clone());
        let label = label.to_owned();
        let id = self
            .store
            .write(move |tx| {
                let (name, email, api_token) = (&name_owned, &email_owned, &token);
                let row = db::query(
            "INSERT INTO organizations (name, email, password_hash, api_token_hash, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(email)
        .bind(password_hash)
        .bind(token_hash(api_token))
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Invalid(format!("an organization with e-mail {email} exists"))
            } else {
                e.into()
            }
        })?;
                let id: i64 = row.try_get("id")?;
                db::query(
                    "INSERT INTO org_tokens (org_id, label, prefix, token_hash, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(label)
                .bind(token_prefix(api_token))
                .bind(token_hash(api_token))
                .bind(to_ms(now))
                .execute(&mut *tx)?;
                Ok(id)
            })
            .await?;
        Ok(OrgCreated {
            organization: Organization {
                id,
                name: name.to_owned(),
                email,
                created_at: now,
            },
            api_token,
        })
    }

    /// Registers premises under a fresh random code.
    pub async fn add_premises(
        self,
        new: &NewPremises,
        now: DateTime<Utc>,
    ) -> Result<Premises, StoreError> {
        self.add_premises_labelled(new, None, now).await
    }

    /// Registers premises with an SMS name (`texts::sms_label`: refused over
    /// `texts::SMS_LABEL_UNITS_MAX` before anything is written).
    pub async fn add_premises_labelled(
        self,
        new: &NewPremises,
        sms_label: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Premises, StoreError> {
        let (address, kind, stay_minutes) =
            checked_premises(&new.address, new.kind.as_deref(), new.stay_minutes)?;
        let sms_label = checked_label(sms_label)?;
        let address = address.as_str();
        let org_exists = db::query("SELECT id FROM organizations WHERE id = $1")
            .bind(new.org_id)
            .read_optional(self.store.pool())
            .await?
            .is_some();
        if !org_exists {
            return Err(StoreError::Invalid(format!(
                "no organization {}",
                new.org_id
            )));
        }
        let (org_id, address) = (new.org_id, address.to_owned());
        self.store
            .write(move |tx| {
                for _ in 0..CODE_ATTEMPTS_MAX {
                    let code = VenueCode::generate(&mut rand::rngs::OsRng);
                    // A savepoint per attempt: on PostgreSQL a failed
                    // statement spoils its transaction.
                    tx.execute("SAVEPOINT new_code", &[])?;
                    let inserted = db::query(
                        "INSERT INTO premises (org_id, code, address, sms_label, kind, stay_minutes, active, created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, 1, $7) RETURNING id",
                    )
                    .bind(org_id)
                    .bind(code.digits())
                    .bind(&address)
                    .bind(sms_label.clone())
                    .bind(&kind)
                    .bind(i64::from(stay_minutes))
                    .bind(to_ms(now))
                    .fetch_one(tx);
                    match inserted {
                        Ok(row) => {
                            tx.execute("RELEASE new_code", &[])?;
                            return Ok(Premises {
                                id: row.try_get("id")?,
                                org_id,
                                code,
                                address: address.clone(),
                                sms_label: sms_label.clone(),
                                kind: kind.clone(),
                                stay_minutes,
                                active: true,
                                created_at: now,
                            });
                        }
                        Err(e) if is_unique_violation(&e) => {
                            tx.execute("ROLLBACK TO new_code", &[])?;
                            tx.execute("RELEASE new_code", &[])?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(StoreError::CodeSpaceExhausted(CODE_ATTEMPTS_MAX))
            })
            .await
    }

    /// The premises with `code`, active or not.
    pub async fn premises_by_code(self, code: &VenueCode) -> Result<Option<Premises>, StoreError> {
        let row = db::query(&format!("{PREMISES_SELECT} WHERE code = $1"))
            .bind(code.digits())
            .read_optional(self.store.pool())
            .await?;
        row.as_ref().map(premises_from_row).transpose()
    }

    pub async fn premises_by_id(self, id: i64) -> Result<Option<Premises>, StoreError> {
        let row = db::query(&format!("{PREMISES_SELECT} WHERE id = $1"))
            .bind(id)
            .read_optional(self.store.pool())
            .await?;
        row.as_ref().map(premises_from_row).transpose()
    }

    /// Opens or closes premises for check-ins; false when no such premises exists.
    pub async fn set_premises_active(self, id: i64, active: bool) -> Result<bool, StoreError> {
        let done = self
            .store
            .write(move |tx| {
                Ok(db::query("UPDATE premises SET active = $1 WHERE id = $2")
                    .bind(i64::from(active))
                    .bind(id)
                    .execute(tx)?)
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Creates a health authority; returns its id and API token (shown once).
    pub async fn create_authority(
        self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, String), StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("the authority name is empty".into()));
        }
        let token = new_token();
        let (name, hash, prefix) = (name.to_owned(), token_hash(&token), token_prefix(&token));
        let id = self
            .store
            .write(move |tx| {
                let row = db::query(
                    "INSERT INTO authorities (name, token_hash, created_at_ms) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&name)
                .bind(hash.as_str())
                .bind(to_ms(now))
                .fetch_one(&mut *tx)?;
                let id = row.try_get::<i64, _>("id")?;
                db::query(
                    "INSERT INTO authority_tokens (authority_id, label, prefix, token_hash, created_at_ms) \
                     VALUES ($1, 'checkin authority create', $2, $3, $4)",
                )
                .bind(id)
                .bind(prefix.as_str())
                .bind(hash.as_str())
                .bind(to_ms(now))
                .execute(&mut *tx)?;
                Ok(id)
            })
            .await?;
        Ok((id, token))
    }
}

/// The kinds of premises the cabinet offers, each with the stay assumed when
/// the organization sets none: how long such a visit usually lasts.
pub const PREMISES_KINDS: &[(&str, u32)] = &[
    ("магазин", 30),
    ("кафе", STAY_MINUTES_DEFAULT),
    ("ресторан", 90),
    ("бар", 120),
    ("офис", 480),
    ("кинотеатр", 180),
    ("спортзал", 90),
    ("другое", STAY_MINUTES_DEFAULT),
];

/// The stay assumed for premises of `kind` when none is set: the kind's from
/// [`PREMISES_KINDS`], else [`STAY_MINUTES_DEFAULT`].
pub fn stay_minutes_default(kind: &str) -> u32 {
    let kind = kind.trim().to_lowercase();
    PREMISES_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(STAY_MINUTES_DEFAULT, |(_, m)| *m)
}

/// Longest kind accepted (free text, shown in lists).
pub const KIND_CHARS_MAX: usize = 60;

/// Address, kind and stay checked and normalized: the address trimmed,
/// non-empty, at most [`ADDRESS_CHARS_MAX`] characters, no control characters
/// (a poster line, not a document); the stay 1..=[`STAY_MINUTES_MAX`], by
/// default the kind's.
pub fn checked_premises(
    address: &str,
    kind: Option<&str>,
    stay_minutes: Option<u32>,
) -> Result<(String, String, u32), StoreError> {
    let address = address.trim();
    if address.is_empty() {
        return Err(StoreError::Invalid("the address is empty".into()));
    }
    if address.chars().count() > ADDRESS_CHARS_MAX {
        return Err(StoreError::Invalid(format!(
            "the address is longer than {ADDRESS_CHARS_MAX} characters"
        )));
    }
    if address.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "the address contains control characters".into(),
        ));
    }
    let kind = kind.unwrap_or("").trim();
    if kind.chars().count() > KIND_CHARS_MAX || kind.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "the kind must be at most {KIND_CHARS_MAX} printable characters"
        )));
    }
    let stay_minutes = stay_minutes.unwrap_or_else(|| stay_minutes_default(kind));
    if !(1..=STAY_MINUTES_MAX).contains(&stay_minutes) {
        return Err(StoreError::Invalid(format!(
            "the stay must be 1..={STAY_MINUTES_MAX} minutes"
        )));
    }
    Ok((address.to_owned(), kind.to_owned(), stay_minutes))
}

/// An SMS name checked by `texts::sms_label` (`None`: none, the address
/// shortened), its refusal a caller error naming the limit.
fn checked_label(label: Option<&str>) -> Result<Option<String>, StoreError> {
    match label {
        None => Ok(None),
        Some(label) => {
            crate::texts::sms_label(label).map_err(|e| StoreError::Invalid(e.to_string()))
        }
    }
}

/// Most premises one page of [`Orgs::list_premises`] returns.
pub const PREMISES_PAGE_MAX: u32 = 500;
/// Longest statistics range [`Orgs::premises_hourly_counts`] reads.
pub const STATS_DAYS_MAX: i64 = 30;

/// Check-ins of one premises in one UTC hour by one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// The hour's start (UTC).
    pub hour: DateTime<Utc>,
    pub channel: crate::model::Channel,
    pub count: u64,
}

/// An hour in milliseconds (the statistics' SQL divides by the same literal).
const HOUR_MS: i64 = 3_600_000;

/// Queries an organization's own premises: every one takes the organization's
/// id, so another's premises is simply not found.
impl Orgs<'_> {
    /// Premises `id` if organization `org_id` owns it.
    pub async fn org_premises(self, org_id: i64, id: i64) -> Result<Option<Premises>, StoreError> {
        let row = db::query(&format!("{PREMISES_SELECT} WHERE id = $1 AND org_id = $2"))
            .bind(id)
            .bind(org_id)
            .read_optional(self.store.pool())
            .await?;
        row.as_ref().map(premises_from_row).transpose()
    }

    /// The organization's premises with ids above `after_id`, in id order, at
    /// most `limit` (capped at [`PREMISES_PAGE_MAX`]).
    pub async fn list_premises(
        self,
        org_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Premises>, StoreError> {
        let limit = limit.clamp(1, PREMISES_PAGE_MAX);
        let rows = db::query(&format!(
            "{PREMISES_SELECT} WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(org_id)
        .bind(after_id)
        .bind(i64::from(limit))
        .read_all(self.store.pool())
        .await?;
        rows.iter().map(premises_from_row).collect()
    }

    /// Changes the address, kind and stay of the organization's premises
    /// (checked like [`Orgs::add_premises`]); `None` when it owns no such premises.
    pub async fn update_premises(
        self,
        org_id: i64,
        id: i64,
        address: &str,
        kind: Option<&str>,
        stay_minutes: Option<u32>,
    ) -> Result<Option<Premises>, StoreError> {
        let (address, kind, stay_minutes) = checked_premises(address, kind, stay_minutes)?;
        let done = self
            .store
            .write(move |tx| {
                Ok(db::query(
                    "UPDATE premises SET address = $1, kind = $2, stay_minutes = $3 \
             WHERE id = $4 AND org_id = $5",
                )
                .bind(&address)
                .bind(&kind)
                .bind(i64::from(stay_minutes))
                .bind(id)
                .bind(org_id)
                .execute(&mut *tx)?)
            })
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.org_premises(org_id, id).await
    }

    /// Sets (or with `None` or an empty text, clears) the SMS name of the
    /// organization's premises (`org_id`; `None`: any, for the command
    /// line); refused over `texts::SMS_LABEL_UNITS_MAX`. `None` back when
    /// there is no such premises.
    pub async fn set_sms_label(
        self,
        org_id: Option<i64>,
        id: i64,
        label: Option<&str>,
    ) -> Result<Option<Premises>, StoreError> {
        let label = checked_label(label)?;
        let done = self
            .store
            .write(move |tx| {
                let query = match org_id {
                    Some(org_id) => db::query(
                        "UPDATE premises SET sms_label = $1 WHERE id = $2 AND org_id = $3",
                    )
                    .bind(label.clone())
                    .bind(id)
                    .bind(org_id),
                    None => db::query("UPDATE premises SET sms_label = $1 WHERE id = $2")
                        .bind(label.clone())
                        .bind(id),
                };
                Ok(query.execute(&mut *tx)?)
            })
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.premises_by_id(id).await
    }

    /// Opens or closes the organization's premises; false when it owns no such premises.
    pub async fn set_org_premises_active(
        self,
        org_id: i64,
        id: i64,
        active: bool,
    ) -> Result<bool, StoreError> {
        let done = self
            .store
            .write(move |tx| {
                Ok(
                    db::query("UPDATE premises SET active = $1 WHERE id = $2 AND org_id = $3")
                        .bind(i64::from(active))
                        .bind(id)
                        .bind(org_id)
                        .execute(&mut *tx)?,
                )
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Check-ins of premises `premises_id` per UTC hour and channel in
    /// `[from, to)`, counts only (no phone leaves the table); the range is cut
    /// to the last [`STATS_DAYS_MAX`] days before `to`, so at most 24 × 30 × 2
    /// rows come back. The caller checks the premises is the organization's.
    pub async fn premises_hourly_counts(
        self,
        premises_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourCount>, StoreError> {
        let from = from.max(to - chrono::Duration::days(STATS_DAYS_MAX));
        let rows = db::query(
            "SELECT checked_in_at_ms / 3600000 AS hour, channel, COUNT(*) AS n FROM checkins \
             WHERE premises_id = $1 AND checked_in_at_ms >= $2 AND checked_in_at_ms < $3 \
             GROUP BY checked_in_at_ms / 3600000, channel ORDER BY hour",
        )
        .bind(premises_id)
        .bind(to_ms(from))
        .bind(to_ms(to))
        .read_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let hour: i64 = row.try_get("hour")?;
                let channel: String = row.try_get("channel")?;
                let count: i64 = row.try_get("n")?;
                Ok(HourCount {
                    hour: DateTime::from_timestamp_millis(hour * HOUR_MS)
                        .ok_or_else(|| StoreError::Corrupt(format!("hour {hour}")))?,
                    channel: crate::model::Channel::parse(&channel)
                        .ok_or_else(|| StoreError::Corrupt(format!("channel {channel:?}")))?,
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect()
    }
}
