//! Service-wide switches kept in the `flags` table and published in memory:
//! today the kill switch, `alerts_paused`. The health authority sets it (the
//! ops helper's HTTP routes, or a CLI); the notifier watches it and starts no
//! alert while it is set, so alert submits stop within a second while OTPs
//! and confirmations keep flowing.
//!
//! The table is the truth (it survives a restart and is shared by every
//! instance on one PostgreSQL); the watch is this process's copy, updated by
//! every `set_alerts_paused` and every `alerts_paused` read, so a notifier
//! that polls the flag once a second also sees another instance's switch.

use super::db;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::authority::{insert_audit, AuditNote};
use super::base::to_ms;
use super::error::StoreError;
use super::handles::Flags;

/// The kill switch's row in `flags`.
const ALERTS_PAUSED: &str = "alerts_paused";

impl Flags<'_> {
    /// Sets or clears the kill switch: persisted, then published to this
    /// process's watchers (the notifier stops starting alerts at once).
    pub async fn set_alerts_paused(
        &self,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.set_alerts_paused_by(paused, None, now).await
    }

    /// Sets or clears the kill switch like [`Flags::set_alerts_paused`],
    /// writing `audit` (who did it) in the same transaction.
    pub async fn set_alerts_paused_by(
        &self,
        paused: bool,
        audit: Option<AuditNote>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store
            .write(move |tx| {
                if let Some(note) = &audit {
                    insert_audit(tx, note, now)?;
                }
                db::query(
                    "INSERT INTO flags (name, value, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             updated_at_ms = excluded.updated_at_ms",
                )
                .bind(ALERTS_PAUSED)
                .bind(i64::from(paused))
                .bind(to_ms(now))
                .execute(tx)?;
                Ok(())
            })
            .await?;
        self.store.flags_signal().alerts_paused.send_replace(paused);
        Ok(())
    }

    /// Whether alerts are paused, read from storage (another instance may
    /// have switched it); the watch is updated with what was read.
    pub async fn alerts_paused(&self) -> Result<bool, StoreError> {
        let row = db::query("SELECT value FROM flags WHERE name = $1")
            .bind(ALERTS_PAUSED)
            .read_optional(self.store.pool())
            .await?;
        let paused = match row {
            Some(row) => row.try_get::<i64, _>("value")? != 0,
            None => false,
        };
        self.store
            .flags_signal()
            .alerts_paused
            .send_if_modified(|current| std::mem::replace(current, paused) != paused);
        Ok(paused)
    }

    /// This process's view of the kill switch, updated by every set and read
    /// (cheap: no storage).
    pub fn watch_alerts_paused(&self) -> watch::Receiver<bool> {
        self.store.flags_signal().alerts_paused.subscribe()
    }
}
