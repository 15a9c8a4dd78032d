//! Organizations, their premises (with fresh random codes) and health authorities.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{flag_col, time_col, to_ms, Orgs, StoreError};
use crate::model::{Organization, Premises, STAY_MINUTES_DEFAULT, STAY_MINUTES_MAX};
use crate::VenueCode;

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

/// A random secret token: 32 bytes, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Tokens are stored as SHA-256: they are random, so no salt or slow hash is needed.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) const PREMISES_SELECT: &str =
    "SELECT id, org_id, code, address, kind, stay_minutes, active, created_at_ms FROM premises";

pub(crate) fn premises_from_row(row: &AnyRow) -> Result<Premises, StoreError> {
    let code: String = row.try_get("code")?;
    let stay: i64 = row.try_get("stay_minutes")?;
    Ok(Premises {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        code: VenueCode::parse(&code)
            .map_err(|e| StoreError::Corrupt(format!("premises code {code:?}: {e}")))?,
        address: row.try_get("address")?,
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
        let name = new.name.trim();
        let email = new.email.trim().to_lowercase();
        if name.is_empty() {
            return Err(StoreError::Invalid("the organization name is empty".into()));
        }
        if !email.contains('@') {
            return Err(StoreError::Invalid(format!(
                "{email:?} is not an e-mail address"
            )));
        }
        let password_hash = match &new.password {
            Some(p) if !p.is_empty() => {
                let salt = SaltString::generate(&mut rand::rngs::OsRng);
                let hash = Argon2::default()
                    .hash_password(p.as_bytes(), &salt)
                    .map_err(|e| StoreError::Invalid(format!("password: {e}")))?;
                Some(hash.to_string())
            }
            _ => None,
        };
        let api_token = new_token();
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO organizations (name, email, password_hash, api_token_hash, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(&email)
        .bind(password_hash)
        .bind(token_hash(&api_token))
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Invalid(format!("an organization with e-mail {email} exists"))
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        Ok(OrgCreated {
            organization: Organization {
                id: row.try_get("id")?,
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
        let address = new.address.trim();
        if address.is_empty() {
            return Err(StoreError::Invalid("the address is empty".into()));
        }
        if address.chars().count() > ADDRESS_CHARS_MAX {
            return Err(StoreError::Invalid(format!(
                "the address is longer than {ADDRESS_CHARS_MAX} characters"
            )));
        }
        let stay_minutes = new.stay_minutes.unwrap_or(STAY_MINUTES_DEFAULT);
        if !(1..=STAY_MINUTES_MAX).contains(&stay_minutes) {
            return Err(StoreError::Invalid(format!(
                "the stay must be 1..={STAY_MINUTES_MAX} minutes"
            )));
        }
        let kind = new.kind.as_deref().unwrap_or("").trim().to_owned();
        let org_exists = sqlx::query("SELECT id FROM organizations WHERE id = $1")
            .bind(new.org_id)
            .fetch_optional(&self.store.pool)
            .await?
            .is_some();
        if !org_exists {
            return Err(StoreError::Invalid(format!(
                "no organization {}",
                new.org_id
            )));
        }
        for _ in 0..CODE_ATTEMPTS_MAX {
            let code = VenueCode::generate(&mut rand::rngs::OsRng);
            // A transaction per attempt: on PostgreSQL a failed statement
            // spoils its transaction.
            let mut tx = self.store.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO premises (org_id, code, address, kind, stay_minutes, active, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6) RETURNING id",
            )
            .bind(new.org_id)
            .bind(code.digits())
            .bind(address)
            .bind(&kind)
            .bind(i64::from(stay_minutes))
            .bind(to_ms(now))
            .fetch_one(&mut *tx)
            .await;
            match inserted {
                Ok(row) => {
                    tx.commit().await?;
                    return Ok(Premises {
                        id: row.try_get("id")?,
                        org_id: new.org_id,
                        code,
                        address: address.to_owned(),
                        kind,
                        stay_minutes,
                        active: true,
                        created_at: now,
                    });
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::CodeSpaceExhausted(CODE_ATTEMPTS_MAX))
    }

    /// The premises with `code`, active or not.
    pub async fn premises_by_code(self, code: &VenueCode) -> Result<Option<Premises>, StoreError> {
        let row = sqlx::query(&format!("{PREMISES_SELECT} WHERE code = $1"))
            .bind(code.digits())
            .fetch_optional(&self.store.pool)
            .await?;
        row.as_ref().map(premises_from_row).transpose()
    }

    pub async fn premises_by_id(self, id: i64) -> Result<Option<Premises>, StoreError> {
        let row = sqlx::query(&format!("{PREMISES_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        row.as_ref().map(premises_from_row).transpose()
    }

    /// Opens or closes premises for check-ins; false when no such premises exists.
    pub async fn set_premises_active(self, id: i64, active: bool) -> Result<bool, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let done = sqlx::query("UPDATE premises SET active = $1 WHERE id = $2")
            .bind(i64::from(active))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO authorities (name, token_hash, created_at_ms) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(token_hash(&token))
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((row.try_get("id")?, token))
    }
}
