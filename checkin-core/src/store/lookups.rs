//! Look-ups the web's pages need: one check-in by id (the guard's check) and
//! an organization's name (the visitor's page).

use super::db::{self, Row};

use super::base::time_col;
use super::error::StoreError;
use super::handles::{Checkins, Orgs};
use crate::model::{Channel, CheckIn};

fn checkin_row(row: &Row) -> Result<CheckIn, StoreError> {
    let channel: String = row.try_get("channel")?;
    Ok(CheckIn {
        id: row.try_get("id")?,
        premises_id: row.try_get("premises_id")?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::Corrupt(format!("channel {channel:?}")))?,
        consent: super::base::flag_col(row, "consent")?,
        at: time_col(row, "checked_in_at_ms")?,
    })
}

impl Checkins<'_> {
    /// One check-in by id (the guard's check), without the phone.
    pub async fn checkin_by_id(self, id: i64) -> Result<Option<CheckIn>, StoreError> {
        let row = db::query(
            "SELECT id, premises_id, channel, consent, checked_in_at_ms FROM checkins WHERE id = $1",
        )
        .bind(id)
        .read_optional(self.store.pool())
        .await?;
        row.as_ref().map(checkin_row).transpose()
    }
}

impl Orgs<'_> {
    /// The name of organization `id`.
    pub async fn organization_name(self, id: i64) -> Result<Option<String>, StoreError> {
        let row = db::query("SELECT name FROM organizations WHERE id = $1")
            .bind(id)
            .read_optional(self.store.pool())
            .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }
}
