//! Storage for delivery under the operator's limits, on both backends: the
//! kill switch (persisted and published), expired messages, the in-doubt
//! copy count, SMSC ids found through their key, the per-recipient daily cap.

mod common;

use checkin_core::store::SendResult;
use checkin_core::{Msisdn, NewMessage, OutboxStatus, Priority, Store, StoreConfig};
use chrono::{DateTime, TimeZone, Utc};
use common::backends;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
}

async fn enqueue(store: &Store, text: &str, priority: Priority) -> i64 {
    let new = NewMessage {
        recipient: Msisdn::parse("+79161234567").unwrap(),
        text: text.into(),
        priority,
    };
    store.outbox().enqueue(&new, t0()).await.unwrap()
}

#[tokio::test]
async fn copies_in_doubt_add_up_over_runs_and_expired_rows_stay_unsent() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let otp = enqueue(store, "otp", Priority::Otp).await;
        let alert = enqueue(store, "alert", Priority::Alert).await;
        let claimed = store.outbox().claim_ready(10, t0()).await.unwrap();
        assert_eq!(claimed.len(), 2, "{label}");
        assert!(claimed.iter().all(|m| m.copies_in_doubt == 0), "{label}");
        let interrupted = |n| SendResult::Interrupted {
            reason: "stopping".into(),
            copies_in_doubt: n,
        };
        let expired = SendResult::Expired {
            reason: "too old".into(),
        };
        store
            .outbox()
            .record_send_results(&[(otp, interrupted(1)), (alert, expired)], t0())
            .await
            .unwrap();
        // The next run claims the OTP with its count; the alert stays expired.
        let again = store.outbox().claim_ready(10, t0()).await.unwrap();
        assert_eq!(again.len(), 1, "{label}");
        assert_eq!((again[0].id, again[0].copies_in_doubt), (otp, 1), "{label}");
        store
            .outbox()
            .record_send_results(&[(otp, interrupted(1))], t0())
            .await
            .unwrap();
        let m = store.outbox().message(otp).await.unwrap().unwrap();
        assert_eq!(
            (m.status, m.copies_in_doubt),
            (OutboxStatus::Pending, 2),
            "{label}"
        );
        let a = store.outbox().message(alert).await.unwrap().unwrap();
        assert_eq!(a.status, OutboxStatus::Expired, "{label}");
    }
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

#[tokio::test]
async fn the_daily_cap_is_counted_per_recipient_and_day_and_alerts_can_be_left_unclaimed() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let (a, b) = (
            Msisdn::parse("+79161234567").unwrap(),
            Msisdn::parse("+79161234568").unwrap(),
        );
        let outbox = store.outbox();
        assert!(
            outbox.take_daily_quota(&a, t0(), 2).await.unwrap(),
            "{label}"
        );
        assert!(
            outbox.take_daily_quota(&a, t0(), 2).await.unwrap(),
            "{label}"
        );
        assert!(
            !outbox.take_daily_quota(&a, t0(), 2).await.unwrap(),
            "{label}"
        );
        assert!(
            outbox.take_daily_quota(&b, t0(), 2).await.unwrap(),
            "{label}"
        );
        let tomorrow = t0() + chrono::Duration::days(1);
        assert!(
            outbox.take_daily_quota(&a, tomorrow, 2).await.unwrap(),
            "{label}"
        );

        enqueue(store, "alert", Priority::Alert).await;
        let confirmation = enqueue(store, "confirmation", Priority::Confirmation).await;
        let claimed = outbox
            .claim_ready_upto(10, Priority::Confirmation, t0())
            .await
            .unwrap();
        let ids: Vec<i64> = claimed.iter().map(|m| m.id).collect();
        assert_eq!(ids, [confirmation], "{label}: no alert");
        assert_eq!(
            outbox.claim_ready(10, t0()).await.unwrap().len(),
            1,
            "{label}"
        );
    }
}

#[tokio::test]
async fn sent_segments_ids_find_their_message_by_key() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let first = enqueue(store, "first", Priority::Alert).await;
        let second = enqueue(store, "second", Priority::Alert).await;
        store.outbox().claim_ready(10, t0()).await.unwrap();
        let sent = |ids: &[&str]| SendResult::Sent {
            message_ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        store
            .outbox()
            .record_send_results(
                &[(first, sent(&["a1", "a2", "a3"])), (second, sent(&["b1"]))],
                t0(),
            )
            .await
            .unwrap();
        let outbox = store.outbox();
        assert_eq!(
            outbox.message_for_smsc_id("a2").await.unwrap(),
            Some(first),
            "{label}"
        );
        assert_eq!(
            outbox.message_for_smsc_id("b1").await.unwrap(),
            Some(second),
            "{label}"
        );
        assert_eq!(
            outbox.message_for_smsc_id("zz").await.unwrap(),
            None,
            "{label}"
        );
        // An SMSC that reuses an id: the latest message has it.
        store
            .outbox()
            .record_send_results(&[(second, sent(&["a1"]))], t0())
            .await
            .unwrap();
        assert_eq!(
            outbox.message_for_smsc_id("a1").await.unwrap(),
            Some(second),
            "{label}"
        );
        // The same id twice in one batch (PostgreSQL refuses an upsert that
        // meets one key twice): the batch, and every status in it, is written.
        let third = enqueue(store, "third", Priority::Confirmation).await;
        let retried = enqueue(store, "retried", Priority::Confirmation).await;
        store.outbox().claim_ready(10, t0()).await.unwrap();
        let retry = SendResult::Retry {
            reason: "ESME_RSUBMITFAIL".into(),
            next_attempt_at: t0(),
        };
        store
            .outbox()
            .record_send_results(
                &[
                    (first, sent(&["c1"])),
                    (third, sent(&["c1"])),
                    (retried, retry),
                ],
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(
            outbox.message_for_smsc_id("c1").await.unwrap(),
            Some(third),
            "{label}"
        );
        let m = outbox.message(retried).await.unwrap().unwrap();
        assert_eq!(m.status, OutboxStatus::Pending, "{label}");
        // Purged with the outbox.
        let later = t0() + chrono::Duration::days(60);
        store.purge(later).await.unwrap();
        assert_eq!(
            outbox.message_for_smsc_id("a2").await.unwrap(),
            None,
            "{label}"
        );
    }
}

/// Issue 13: phones are opened only at the submit, never for a whole batch. A
/// claimed message carries its recipient sealed, so neither its `Debug` (a
/// log line, a panic) nor its bytes hold the number; only the vault opens it.
#[tokio::test]
async fn a_claimed_batch_holds_no_phone_in_clear() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let phones: Vec<Msisdn> = (0..5)
            .map(|i| Msisdn::parse(&format!("+7916123456{i}")).unwrap())
            .collect();
        for to in &phones {
            let new = NewMessage {
                recipient: to.clone(),
                text: "alert".into(),
                priority: Priority::Alert,
            };
            store.outbox().enqueue(&new, t0()).await.unwrap();
        }
        let claimed = store.outbox().claim_ready(10, t0()).await.unwrap();
        assert_eq!(claimed.len(), phones.len(), "{label}");
        for m in &claimed {
            // Not even a masked number (`+7916***4560` shows its last digits).
            let shown = format!("{:?}", m.recipient);
            assert!(
                !shown.chars().any(|c| c.is_ascii_digit()),
                "{label}: {shown}"
            );
        }
        let other = checkin_core::PhoneVault::new(&checkin_core::Keys::generate());
        let mut opened = Vec::new();
        for m in &claimed {
            let bytes = m.recipient.as_bytes();
            assert!(
                !bytes.windows(9).any(|w| w == b"916123456"),
                "{label}: the number in clear"
            );
            assert!(other.open_phone(&m.recipient).is_err(), "{label}");
            assert_eq!(
                m.recipient_hash,
                store.vault().hash(&store.open_recipient(m).unwrap()),
                "{label}"
            );
            opened.push(store.open_recipient(m).unwrap());
        }
        opened.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(opened, phones, "{label}: the vault opens each one");
    }
}
