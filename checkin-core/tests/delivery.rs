//! Storage for delivery under the operator's limits, on both backends: the
//! kill switch (persisted and published), expired messages, the in-doubt
//! copy count, SMSC ids found through their key, the per-recipient daily cap.

mod common;

use checkin_core::{Store, StoreConfig};
use chrono::{DateTime, TimeZone, Utc};
use common::backends;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
}

#[tokio::test]
async fn the_kill_switch_is_persisted_and_published() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        assert!(!store.flags().alerts_paused().await.unwrap(), "{label}");
        let mut watch = store.flags().watch_alerts_paused();
        assert!(!*watch.borrow_and_update(), "{label}");
        store.flags().set_alerts_paused(true, t0()).await.unwrap();
        assert!(watch.has_changed().unwrap(), "{label}: published");
        assert!(*watch.borrow_and_update(), "{label}");
        assert!(store.flags().alerts_paused().await.unwrap(), "{label}");
        // Another process (a second instance, a restart) reads it from storage.
        let other = Store::open(
            &db.url,
            checkin_core::PhoneVault::new(&checkin_core::Keys::generate()),
            StoreConfig::default(),
        )
        .await
        .unwrap();
        let mut theirs = other.flags().watch_alerts_paused();
        assert!(!*theirs.borrow_and_update(), "{label}: not read yet");
        assert!(other.flags().alerts_paused().await.unwrap(), "{label}");
        assert!(*theirs.borrow_and_update(), "{label}: a read publishes");
        store.flags().set_alerts_paused(false, t0()).await.unwrap();
        assert!(!other.flags().alerts_paused().await.unwrap(), "{label}");
        other.close().await;
    }
}
