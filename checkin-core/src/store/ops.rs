//! What operations and the health authority's API need of storage: a cheap
//! reachability check (`/readyz`), the outbox's depth per priority (a gauge,
//! counted up to a bound) and bearer tokens resolved to who holds them.

use super::db;

use super::error::StoreError;
use super::handles::Orgs;
use super::handles::Outbox;
use super::orgs::token_hash;
use crate::model::Priority;

/// An authority, as its bearer token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub id: i64,
    pub name: String,
}

/// Who holds an API token: the two kinds of token are never interchangeable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHolder {
    Authority(Authority),
    /// An organization's API token (its id).
    Organization(i64),
}

/// Outbox rows waiting per priority, each counted up to a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxDepth {
    pub otp: u64,
    pub confirmation: u64,
    pub alert: u64,
}

impl OutboxDepth {
    /// `(priority, rows waiting)` for each priority.
    pub fn by_priority(&self) -> [(Priority, u64); 3] {
        [
            (Priority::Otp, self.otp),
            (Priority::Confirmation, self.confirmation),
            (Priority::Alert, self.alert),
        ]
    }
}

impl Outbox {
    /// Rows `pending` per priority, each count stopping at `count_max` (so the
    /// gauge's query costs at most that many index entries per priority,
    /// walked on the pending-only `outbox_ready` index).
    pub async fn depth(&self, count_max: u64) -> Result<OutboxDepth, StoreError> {
        let cap = i64::try_from(count_max).unwrap_or(i64::MAX);
        let mut depth = OutboxDepth::default();
        for priority in [Priority::Otp, Priority::Confirmation, Priority::Alert] {
            let row = db::query(
                "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM outbox \
                 WHERE status = 'pending' AND priority = $1 LIMIT $2) AS waiting",
            )
            .bind(priority.as_i64())
            .bind(cap)
            .read_one(self.store.pool())
            .await?;
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            match priority {
                Priority::Otp => depth.otp = n,
                Priority::Confirmation => depth.confirmation = n,
                Priority::Alert => depth.alert = n,
            }
        }
        Ok(depth)
    }
}

impl Orgs<'_> {
    /// Who holds `token`: an authority, an organization, or nobody.
    pub async fn token_holder(self, token: &str) -> Result<Option<TokenHolder>, StoreError> {
        let hash = token_hash(token);
        let row = db::query(
            "SELECT a.id, a.name FROM authority_tokens t JOIN authorities a ON a.id = t.authority_id \
             WHERE t.token_hash = $1 AND t.revoked_at_ms IS NULL",
        )
        .bind(&hash)
        .read_optional(self.store.pool())
        .await?;
        if let Some(row) = row {
            return Ok(Some(TokenHolder::Authority(Authority {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })));
        }
        // Any organization's token, revoked ones too: it is still not the
        // authority's, and the answer says so (403, not 401).
        let row = db::query("SELECT org_id AS id FROM org_tokens WHERE token_hash = $1")
            .bind(&hash)
            .read_optional(self.store.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get("id"))
            .transpose()?
            .map(TokenHolder::Organization))
    }
}
