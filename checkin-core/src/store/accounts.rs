//! The organization cabinet's accounts: sign-up with a password (argon2id),
//! log-in sessions and API tokens (random secrets stored only as SHA-256).

use super::db;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use chrono::{DateTime, Utc};

use super::base::{time_col, to_ms};
use super::error::StoreError;
use super::handles::Accounts;
use super::orgs::NewOrganization;
use super::orgs::{hash_password, new_token, token_hash, token_prefix};
use crate::model::Organization;

/// Shortest password accepted at sign-up.
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Longest password accepted (argon2 takes any length; this bounds the work).
pub const PASSWORD_CHARS_MAX: usize = 256;
/// Longest token label accepted.
pub const TOKEN_LABEL_CHARS_MAX: usize = 100;
/// Most live (not revoked) API tokens one organization may hold.
pub const TOKENS_PER_ORG_MAX: i64 = 100;
/// The label of the token every sign-up starts with, revoked at once: the
/// cabinet shows tokens only when they are created on purpose.
const TOKEN_LABEL_SIGN_UP: &str = "sign-up";

/// A new log-in session: the secret for the cookie (shown once) and its expiry.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub org_id: i64,
    pub expires_at: DateTime<Utc>,
}

/// A live session's organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOrg {
    pub org_id: i64,
    pub name: String,
}

/// An API token as listed: never the secret, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    pub label: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A cabinet's session table and the column naming whose session it is.
pub(crate) type SessionTable = (&'static str, &'static str);
/// The organizations' sessions.
const ORG_SESSIONS: SessionTable = ("org_sessions", "org_id");

/// Inserts a session (its secret's hash) into `table`, in a transaction.
pub(crate) fn insert_session(
    tx: &mut db::Conn<'_>,
    (table, owner): SessionTable,
    owner_id: i64,
    hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {table} ({owner}, token_hash, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4)"
    );
    db::query(&sql)
        .bind(owner_id)
        .bind(hash)
        .bind(to_ms(now))
        .bind(to_ms(expires_at))
        .execute(tx)?;
    Ok(())
}

/// Deletes the session of `secret` (a log-out; `None`: none) and every
/// session of `table` expired by `now`; returns how many.
pub(crate) async fn delete_sessions(
    store: &super::base::Store,
    (table, _): SessionTable,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let hash = secret.map(token_hash).unwrap_or_default();
    let sql = format!("DELETE FROM {table} WHERE token_hash = $1 OR expires_at_ms <= $2");
    let done = store
        .write(move |tx| Ok(db::query(&sql).bind(hash).bind(to_ms(now)).execute(tx)?))
        .await?;
    Ok(done.rows_affected())
}

/// A cabinet's token table: its name, the column naming whose token it is,
/// the most live tokens one owner may hold, and the owner in an error's words.
pub(crate) struct TokenTable {
    pub table: &'static str,
    pub owner: &'static str,
    pub live_max: i64,
    pub owner_words: &'static str,
}

/// The organizations' tokens.
const ORG_TOKENS: TokenTable = TokenTable {
    table: "org_tokens",
    owner: "org_id",
    live_max: TOKENS_PER_ORG_MAX,
    owner_words: "an organization",
};

/// A token about to be inserted: its secret (shown once) and its row's values.
#[derive(Debug, Clone)]
pub(crate) struct NewToken {
    pub secret: String,
    pub label: String,
    pub prefix: String,
    pub hash: String,
}

impl NewToken {
    /// A fresh secret under `label` (checked).
    pub(crate) fn new(label: &str) -> Result<NewToken, StoreError> {
        let label = checked_label(label)?.to_owned();
        let secret = new_token();
        Ok(NewToken {
            prefix: token_prefix(&secret),
            hash: token_hash(&secret),
            label,
            secret,
        })
    }

    /// The token as listed once inserted as row `id`.
    pub(crate) fn info(&self, id: i64, now: DateTime<Utc>) -> TokenInfo {
        TokenInfo {
            id,
            label: self.label.clone(),
            prefix: self.prefix.clone(),
            created_at: now,
            revoked_at: None,
        }
    }
}

/// Inserts `token` for `owner_id` into `t` unless the owner already holds
/// `t.live_max` live tokens; returns its id.
pub(crate) fn insert_token(
    tx: &mut db::Conn<'_>,
    t: &TokenTable,
    owner_id: i64,
    token: &NewToken,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let (table, owner) = (t.table, t.owner);
    let live: i64 = db::query(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE {owner} = $1 AND revoked_at_ms IS NULL"
    ))
    .bind(owner_id)
    .fetch_one(&mut *tx)?
    .try_get("n")?;
    if live >= t.live_max {
        return Err(StoreError::Invalid(format!(
            "{} may hold at most {} tokens",
            t.owner_words, t.live_max
        )));
    }
    let row = db::query(&format!(
        "INSERT INTO {table} ({owner}, label, prefix, token_hash, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id"
    ))
    .bind(owner_id)
    .bind(token.label.as_str())
    .bind(token.prefix.as_str())
    .bind(token.hash.as_str())
    .bind(to_ms(now))
    .fetch_one(&mut *tx)?;
    Ok(row.try_get::<i64, _>("id")?)
}

/// A token's row (`id, label, prefix, created_at_ms, revoked_at_ms`) as
/// listed; the organizations' and the authorities' tokens alike.
pub(crate) fn token_info(r: &db::Row) -> Result<TokenInfo, StoreError> {
    let revoked: Option<i64> = r.try_get("revoked_at_ms")?;
    Ok(TokenInfo {
        id: r.try_get("id")?,
        label: r.try_get("label")?,
        prefix: r.try_get("prefix")?,
        created_at: time_col(r, "created_at_ms")?,
        revoked_at: revoked.and_then(DateTime::from_timestamp_millis),
    })
}

/// A token's label, trimmed, if it is acceptable.
pub(crate) fn checked_label(label: &str) -> Result<&str, StoreError> {
    let label = label.trim();
    if label.chars().count() > TOKEN_LABEL_CHARS_MAX || label.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "the label must be at most {TOKEN_LABEL_CHARS_MAX} printable characters"
        )));
    }
    Ok(label)
}

/// Whether `password` is acceptable at sign-up.
pub fn check_password(password: &str) -> Result<(), StoreError> {
    let chars = password.chars().count();
    if chars < PASSWORD_CHARS_MIN {
        return Err(StoreError::Invalid(format!(
            "the password is shorter than {PASSWORD_CHARS_MIN} characters"
        )));
    }
    if chars > PASSWORD_CHARS_MAX {
        return Err(StoreError::Invalid(format!(
            "the password is longer than {PASSWORD_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

/// Whether `password` matches `hash` (a PHC string; a malformed one never
/// matches). With no hash (an unknown e-mail, or an account without a
/// password) the same work is done, then no: the time taken does not tell
/// which e-mails exist. CPU-heavy (argon2): run it off the async reactor.
pub fn password_matches(hash: Option<&str>, password: &str) -> bool {
    match hash {
        Some(hash) => PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        }),
        None => {
            let _ = hash_password(password);
            false
        }
    }
}

/// What a log-in is checked against: the organization and its password hash.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub org_id: i64,
    pub password_hash: Option<String>,
}

impl Accounts<'_> {
    /// Signs an organization up: name, e-mail, a password of at least
    /// [`PASSWORD_CHARS_MIN`] characters. No API token is left valid.
    pub async fn sign_up(
        self,
        name: &str,
        email: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<Organization, StoreError> {
        check_password(password)?;
        let new = NewOrganization {
            name: name.to_owned(),
            email: email.to_owned(),
            password: Some(password.to_owned()),
        };
        let created = self
            .store
            .orgs()
            .insert_org(&new, now, TOKEN_LABEL_SIGN_UP)
            .await?;
        self.store
            .write(move |tx| {
                db::query("UPDATE org_tokens SET revoked_at_ms = $1 WHERE org_id = $2")
                    .bind(to_ms(now))
                    .bind(created.organization.id)
                    .execute(&mut *tx)?;
                Ok(())
            })
            .await?;
        Ok(created.organization)
    }

    /// The record a log-in with `email` is checked against (see
    /// [`password_matches`]).
    pub async fn login_record(self, email: &str) -> Result<Option<LoginRecord>, StoreError> {
        let email = email.trim().to_lowercase();
        let row = db::query("SELECT id, password_hash FROM organizations WHERE email = $1")
            .bind(&email)
            .read_optional(self.store.pool())
            .await?;
        row.map(|row| {
            Ok(LoginRecord {
                org_id: row.try_get("id")?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Opens a session for `org_id` that lasts `life`.
    pub async fn open_session(
        self,
        org_id: i64,
        life: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<NewSession, StoreError> {
        let secret = new_token();
        let expires_at = now + life;
        let hash = token_hash(&secret);
        self.store
            .write(move |tx| insert_session(tx, ORG_SESSIONS, org_id, &hash, now, expires_at))
            .await?;
        Ok(NewSession {
            secret,
            org_id,
            expires_at,
        })
    }

    /// The organization of a live session.
    pub async fn session_org(
        self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionOrg>, StoreError> {
        let row = db::query(
            "SELECT o.id, o.name FROM org_sessions s JOIN organizations o ON o.id = s.org_id \
             WHERE s.token_hash = $1 AND s.expires_at_ms > $2",
        )
        .bind(token_hash(secret))
        .bind(to_ms(now))
        .read_optional(self.store.pool())
        .await?;
        row.map(|r| {
            Ok(SessionOrg {
                org_id: r.try_get("id")?,
                name: r.try_get("name")?,
            })
        })
        .transpose()
    }

    /// Ends a session (log-out), and every expired one with it.
    pub async fn close_session(self, secret: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        delete_sessions(self.store, ORG_SESSIONS, Some(secret), now).await?;
        Ok(())
    }

    /// Deletes the sessions expired by `now` (the web does it every minute,
    /// so the table holds only live sessions); returns how many.
    pub async fn purge_sessions(self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        delete_sessions(self.store, ORG_SESSIONS, None, now).await
    }

    /// A new API token for `org_id`; the secret is returned once.
    pub async fn create_token(
        self,
        org_id: i64,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<(TokenInfo, String), StoreError> {
        let token = NewToken::new(label)?;
        let row = token.clone();
        let id = self
            .store
            .write(move |tx| insert_token(tx, &ORG_TOKENS, org_id, &row, now))
            .await?;
        Ok((token.info(id, now), token.secret))
    }

    /// The organization's tokens, newest first, revoked ones included (bounded
    /// by [`TOKENS_PER_ORG_MAX`] live ones plus the last revoked).
    pub async fn tokens(self, org_id: i64) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = db::query(
            "SELECT id, label, prefix, created_at_ms, revoked_at_ms FROM org_tokens \
             WHERE org_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(org_id)
        .bind(TOKENS_PER_ORG_MAX * 2)
        .read_all(self.store.pool())
        .await?;
        rows.iter().map(token_info).collect()
    }

    /// Revokes the organization's token `id`; false when it has no such live token.
    pub async fn revoke_token(
        self,
        org_id: i64,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = self
            .store
            .write(move |tx| {
                Ok(db::query(
                    "UPDATE org_tokens SET revoked_at_ms = $1 \
             WHERE id = $2 AND org_id = $3 AND revoked_at_ms IS NULL",
                )
                .bind(to_ms(now))
                .bind(id)
                .bind(org_id)
                .execute(&mut *tx)?)
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The organization a bearer token belongs to, if it is live.
    pub async fn token_org(self, secret: &str) -> Result<Option<i64>, StoreError> {
        let row = db::query(
            "SELECT org_id FROM org_tokens WHERE token_hash = $1 AND revoked_at_ms IS NULL",
        )
        .bind(token_hash(secret))
        .read_optional(self.store.pool())
        .await?;
        Ok(row.map(|r| r.try_get("org_id")).transpose()?)
    }
}
