//! The health authority's cabinet: its people (argon2id passwords), their
//! log-in sessions, its API tokens (several, revocable; random secrets stored
//! only as SHA-256), the audit log written in the same transaction as each
//! action, the kill switch set by a person, and the authority's own cases
//! with the premises and times they exposed (never a phone).

use chrono::{DateTime, Utc};

use super::accounts::{
    check_password, delete_sessions, insert_session, insert_token, token_info, NewToken,
    SessionTable, TokenInfo, TokenTable,
};
use super::base::{time_col, to_ms};
use super::db::{self, Conn};
use super::error::StoreError;
use super::handles::AuthorityAccounts;
use super::orgs::{checked_email, hash_password, is_unique_violation, new_token, token_hash};

/// The authority's people's sessions.
const AUTHORITY_SESSIONS: SessionTable = ("authority_sessions", "user_id");

/// Most live API tokens one authority may hold.
pub const AUTHORITY_TOKENS_MAX: i64 = 100;
/// The authorities' tokens.
const AUTHORITY_TOKENS: TokenTable = TokenTable {
    table: "authority_tokens",
    owner: "authority_id",
    live_max: AUTHORITY_TOKENS_MAX,
    owner_words: "an authority",
};
/// Audit entries shown per page.
pub const AUDIT_PAGE_MAX: u32 = 200;
/// Cases listed per page.
pub const AUTHORITY_CASES_PAGE_MAX: u32 = 100;
/// Exposed visits listed on a case's page.
pub const CASE_VISITS_MAX: u32 = 1000;

/// A person of an authority, as a live session names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityUser {
    pub user_id: i64,
    pub authority_id: i64,
    pub authority_name: String,
    pub email: String,
}

/// What a log-in is checked against.
#[derive(Debug, Clone)]
pub struct AuthorityLogin {
    pub user_id: i64,
    pub authority_id: i64,
    pub password_hash: String,
}

/// A new session: the cookie's secret (shown once) and its expiry.
#[derive(Debug, Clone)]
pub struct AuthoritySession {
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// Who did what, for the audit entry written with the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    pub authority_id: i64,
    pub user_email: String,
    pub action: String,
    pub detail: String,
}

impl AuditNote {
    pub fn new(
        authority_id: i64,
        user_email: &str,
        action: &str,
        detail: impl Into<String>,
    ) -> AuditNote {
        AuditNote {
            authority_id,
            user_email: user_email.to_owned(),
            action: action.to_owned(),
            detail: detail.into(),
        }
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub authority_id: i64,
    pub user_email: String,
    pub action: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// One visit a case exposed: where and when (no phone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposedVisit {
    pub address: String,
    pub checked_in_at: DateTime<Utc>,
    /// The outbox status of its alert (`None`: the message is purged).
    pub status: Option<String>,
    pub delivery_state: Option<String>,
}

fn audit_entry(r: &db::Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        authority_id: r.try_get("authority_id")?,
        user_email: r.try_get("user_email")?,
        action: r.try_get("action")?,
        detail: r.try_get("detail")?,
        at: time_col(r, "at_ms")?,
    })
}

/// Writes `note` in the transaction `conn` belongs to.
pub(crate) fn insert_audit(
    conn: &mut Conn<'_>,
    note: &AuditNote,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db::query(
        "INSERT INTO authority_audit (authority_id, user_email, action, detail, at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(note.authority_id)
    .bind(note.user_email.as_str())
    .bind(note.action.as_str())
    .bind(note.detail.as_str())
    .bind(to_ms(now))
    .execute(conn)?;
    Ok(())
}

impl AuthorityAccounts<'_> {
    /// Adds a person to authority `authority_id` (which must exist); returns
    /// their id. The argon2id hash runs on the caller's thread.
    pub async fn add_user(
        self,
        authority_id: i64,
        email: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let email = checked_email(email)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        self.store
            .write(move |tx| {
                let found = db::query("SELECT id FROM authorities WHERE id = $1")
                    .bind(authority_id)
                    .fetch_optional(&mut *tx)?;
                if found.is_none() {
                    return Err(StoreError::Invalid(format!(
                        "there is no authority {authority_id}"
                    )));
                }
                let row = db::query(
                    "INSERT INTO authority_users (authority_id, email, password_hash, created_at_ms) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(authority_id)
                .bind(email.as_str())
                .bind(hash.as_str())
                .bind(to_ms(now))
                .fetch_one(&mut *tx)
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Invalid(format!("a user with e-mail {email} exists"))
                    } else {
                        e.into()
                    }
                })?;
                Ok(row.try_get::<i64, _>("id")?)
            })
            .await
    }

    /// What a log-in with `email` is checked against.
    pub async fn login_record(self, email: &str) -> Result<Option<AuthorityLogin>, StoreError> {
        let email = email.trim().to_lowercase();
        let row = db::query(
            "SELECT id, authority_id, password_hash FROM authority_users WHERE email = $1",
        )
        .bind(email.as_str())
        .read_optional(self.store.pool())
        .await?;
        row.map(|r| {
            Ok(AuthorityLogin {
                user_id: r.try_get("id")?,
                authority_id: r.try_get("authority_id")?,
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Opens a session for `user_id` lasting `life`, and logs the log-in.
    pub async fn open_session(
        self,
        user_id: i64,
        life: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<AuthoritySession, StoreError> {
        let secret = new_token();
        let expires_at = now + life;
        let hash = token_hash(&secret);
        self.store
            .write(move |tx| {
                let user =
                    db::query("SELECT authority_id, email FROM authority_users WHERE id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *tx)?;
                insert_session(tx, AUTHORITY_SESSIONS, user_id, &hash, now, expires_at)?;
                let email: String = user.try_get("email")?;
                let note = AuditNote::new(user.try_get("authority_id")?, &email, "login", "");
                insert_audit(tx, &note, now)
            })
            .await?;
        Ok(AuthoritySession { secret, expires_at })
    }

    /// The person of a live session.
    pub async fn session_user(
        self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AuthorityUser>, StoreError> {
        let row = db::query(
            "SELECT u.id, u.authority_id, u.email, a.name FROM authority_sessions s \
             JOIN authority_users u ON u.id = s.user_id \
             JOIN authorities a ON a.id = u.authority_id \
             WHERE s.token_hash = $1 AND s.expires_at_ms > $2",
        )
        .bind(token_hash(secret))
        .bind(to_ms(now))
        .read_optional(self.store.pool())
        .await?;
        row.map(|r| {
            Ok(AuthorityUser {
                user_id: r.try_get("id")?,
                authority_id: r.try_get("authority_id")?,
                authority_name: r.try_get("name")?,
                email: r.try_get("email")?,
            })
        })
        .transpose()
    }

    /// Ends a session (log-out), and every expired one with it.
    pub async fn close_session(self, secret: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        delete_sessions(self.store, AUTHORITY_SESSIONS, Some(secret), now).await?;
        Ok(())
    }

    /// Deletes the sessions expired by `now`; returns how many.
    pub async fn purge_sessions(self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        delete_sessions(self.store, AUTHORITY_SESSIONS, None, now).await
    }

    /// A new API token of the authority, created by `by` (logged); the
    /// secret is returned once.
    pub async fn create_token(
        self,
        by: &AuthorityUser,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<(TokenInfo, String), StoreError> {
        let token = NewToken::new(label)?;
        let row = token.clone();
        let authority_id = by.authority_id;
        let mut note = AuditNote::new(authority_id, &by.email, "token_created", "");
        let id = self
            .store
            .write(move |tx| {
                let id = insert_token(tx, &AUTHORITY_TOKENS, authority_id, &row, now)?;
                note.detail = format!("#{id} {}", row.label).trim_end().to_owned();
                insert_audit(tx, &note, now)?;
                Ok(id)
            })
            .await?;
        Ok((token.info(id, now), token.secret))
    }

    /// The authority's tokens, newest first, revoked ones included.
    pub async fn tokens(self, authority_id: i64) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = db::query(
            "SELECT id, label, prefix, created_at_ms, revoked_at_ms FROM authority_tokens \
             WHERE authority_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(authority_id)
        .bind(AUTHORITY_TOKENS_MAX * 2)
        .read_all(self.store.pool())
        .await?;
        rows.iter().map(token_info).collect()
    }

    /// Revokes the authority's token `id` (logged); false when it has no such
    /// live token.
    pub async fn revoke_token(
        self,
        by: &AuthorityUser,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let note = AuditNote::new(
            by.authority_id,
            &by.email,
            "token_revoked",
            format!("#{id}"),
        );
        self.store
            .write(move |tx| {
                let done = db::query(
                    "UPDATE authority_tokens SET revoked_at_ms = $1 \
                     WHERE id = $2 AND authority_id = $3 AND revoked_at_ms IS NULL",
                )
                .bind(to_ms(now))
                .bind(id)
                .bind(note.authority_id)
                .execute(&mut *tx)?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                insert_audit(tx, &note, now)?;
                Ok(true)
            })
            .await
    }

    /// Writes `note` alone (an action that changes nothing else, e.g. a file
    /// checked without sending).
    pub async fn log(self, note: AuditNote, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.store
            .write(move |tx| insert_audit(tx, &note, now))
            .await
    }

    /// The authority's audit log, newest first, before entry `before` (a
    /// cursor; `None`: from the newest), at most `limit`.
    pub async fn audit(
        self,
        authority_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = db::query(
            "SELECT id, authority_id, user_email, action, detail, at_ms FROM authority_audit \
             WHERE authority_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(authority_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit.min(AUDIT_PAGE_MAX)))
        .read_all(self.store.pool())
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    /// The last pause or resume of the kill switch (by any authority: the
    /// switch is the service's), if any is still in the log.
    pub async fn last_switch(self) -> Result<Option<AuditEntry>, StoreError> {
        let row = db::query(
            "SELECT id, authority_id, user_email, action, detail, at_ms FROM authority_audit \
             WHERE action IN ('alerts_paused', 'alerts_resumed') ORDER BY id DESC LIMIT 1",
        )
        .read_optional(self.store.pool())
        .await?;
        row.as_ref().map(audit_entry).transpose()
    }

    /// The authority's case ids, newest first, before `before`.
    pub async fn case_ids(
        self,
        authority_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = db::query(
            "SELECT id FROM cases WHERE authority_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(authority_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit.min(AUTHORITY_CASES_PAGE_MAX)))
        .read_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("id")?))
            .collect()
    }

    /// The visits case `case_id` alerted, with their premises' addresses and
    /// their alerts' states, oldest first (at most [`CASE_VISITS_MAX`]).
    pub async fn exposed_visits(self, case_id: i64) -> Result<Vec<ExposedVisit>, StoreError> {
        let rows = db::query(
            "SELECT p.address AS address, c.checked_in_at_ms AS at_ms, o.status AS status, \
             o.delivery_state AS delivery_state FROM alerts a \
             JOIN checkins c ON c.id = a.checkin_id JOIN premises p ON p.id = c.premises_id \
             LEFT JOIN outbox o ON o.id = a.outbox_id \
             WHERE a.case_id = $1 ORDER BY c.checked_in_at_ms, a.id LIMIT $2",
        )
        .bind(case_id)
        .bind(i64::from(CASE_VISITS_MAX))
        .read_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ExposedVisit {
                    address: r.try_get("address")?,
                    checked_in_at: time_col(r, "at_ms")?,
                    status: r.try_get("status")?,
                    delivery_state: r.try_get("delivery_state")?,
                })
            })
            .collect()
    }
}
