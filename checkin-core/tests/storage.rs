//! The storage suite: the same behaviour on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use checkin_core::store::{NewOrganization, NewPremises, SendResult};
use checkin_core::{
    Channel, CheckinError, Msisdn, NewCase, NewCheckIn, NewMessage, OutboxStatus, Premises,
    Priority, Store, StoreConfig, VenueCode,
};
use chrono::{DateTime, TimeZone, Utc};
use common::{backends, TestDb};
use sqlx::Row;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
}

fn minutes(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

fn phone(text: &str) -> Msisdn {
    Msisdn::parse(text).unwrap()
}

async fn premises(store: &Store, address: &str) -> Premises {
    let org = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Кафе «Ромашка»".into(),
                email: format!("owner{}@example.ru", rand::random::<u32>()),
                password: Some("secret".into()),
            },
            t0(),
        )
        .await
        .unwrap();
    store
        .orgs()
        .add_premises(
            &NewPremises {
                org_id: org.organization.id,
                address: address.into(),
                kind: Some("кафе".into()),
                stay_minutes: None,
            },
            t0(),
        )
        .await
        .unwrap()
}

fn visit(phone_text: &str, code: VenueCode, at: DateTime<Utc>) -> NewCheckIn {
    NewCheckIn {
        phone: phone(phone_text),
        code,
        channel: Channel::Sms,
        at,
        consent: true,
    }
}

#[tokio::test]
async fn dedupe_window_returns_the_existing_checkin() {
    for db in backends(StoreConfig::default()).await {
        let TestDb { label, store, .. } = &db;
        let p = premises(store, "ул. Тверская, 13").await;
        let other = premises(store, "ул. Арбат, 1").await;

        let first = store
            .checkins()
            .record_checkin(&visit("+79161234567", p.code, t0()))
            .await
            .unwrap();
        assert!(!first.duplicate, "{label}");
        assert_eq!(first.premises.address, "ул. Тверская, 13", "{label}");

        // A redelivery 5 minutes later, written another way: the same visit.
        let again = store
            .checkins()
            .record_checkin(&visit("8 916 123-45-67", p.code, t0() + minutes(5)))
            .await
            .unwrap();
        assert!(again.duplicate, "{label}");
        assert_eq!(again.checkin.id, first.checkin.id, "{label}");
        assert_eq!(again.checkin.at, t0(), "{label}: the original time is kept");

        // Exactly at the window's edge and beyond: a new visit.
        let edge = store
            .checkins()
            .record_checkin(&visit("+79161234567", p.code, t0() + minutes(10)))
            .await
            .unwrap();
        assert!(!edge.duplicate, "{label}");
        // Other premises, other phone: not duplicates.
        let elsewhere = store
            .checkins()
            .record_checkin(&visit("+79161234567", other.code, t0() + minutes(1)))
            .await
            .unwrap();
        assert!(!elsewhere.duplicate, "{label}");
        let someone_else = store
            .checkins()
            .record_checkin(&visit("+79031112233", p.code, t0() + minutes(1)))
            .await
            .unwrap();
        assert!(!someone_else.duplicate, "{label}");

        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            3,
            "{label}"
        );
        assert_eq!(
            store.checkins().count_checkins(other.id).await.unwrap(),
            1,
            "{label}"
        );
        assert_eq!(
            store
                .checkins()
                .checkins_of(&phone("+79161234567"))
                .await
                .unwrap()
                .len(),
            3,
            "{label}"
        );
    }
}

#[tokio::test]
async fn concurrent_redeliveries_record_one_row() {
    for db in backends(StoreConfig::default()).await {
        let store = &db.store;
        let p = premises(store, "пр. Мира, 5").await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let new = visit("+79161234567", p.code, t0() + chrono::Duration::seconds(i));
            tasks.push(tokio::spawn(async move {
                store.checkins().record_checkin(&new).await
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            if !task.await.unwrap().unwrap().duplicate {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "{}", db.label);
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            1,
            "{}",
            db.label
        );
    }
}

/// What a caller holding a visitor's text does: parse the code, then record.
async fn check_in_text(store: &Store, text: &str) -> Result<bool, CheckinError> {
    let code = VenueCode::parse(text)?;
    Ok(store
        .checkins()
        .record_checkin(&visit("+79161234567", code, t0()))
        .await?
        .duplicate)
}

#[tokio::test]
async fn unknown_inactive_and_typo_are_distinct_errors() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store, "ул. Тверская, 13").await;
        let closed = premises(store, "ул. Тверская, 15").await;
        assert!(store
            .orgs()
            .set_premises_active(closed.id, false)
            .await
            .unwrap());

        // A valid code nobody registered.
        let mut unknown = VenueCode::generate(&mut rand::thread_rng());
        while unknown == p.code || unknown == closed.code {
            unknown = VenueCode::generate(&mut rand::thread_rng());
        }
        // The registered code with its last two digits swapped (or one digit changed).
        let digits = p.code.digits();
        let mut typo: Vec<char> = digits.chars().collect();
        if typo[7] != typo[8] {
            typo.swap(7, 8);
        } else {
            typo[8] = if typo[8] == '0' { '1' } else { '0' };
        }
        let typo: String = typo.into_iter().collect();

        let outcome = check_in_text(store, &unknown.to_string()).await;
        assert!(
            matches!(outcome, Err(CheckinError::UnknownCode)),
            "{label}: {outcome:?}"
        );
        let outcome = check_in_text(store, &closed.code.to_string()).await;
        assert!(
            matches!(outcome, Err(CheckinError::InactivePremises)),
            "{label}: {outcome:?}"
        );
        let outcome = check_in_text(store, &typo).await;
        assert!(
            matches!(outcome, Err(CheckinError::Typo)),
            "{label}: {outcome:?}"
        );
        let outcome = check_in_text(store, "123-456-78").await;
        assert!(
            matches!(outcome, Err(CheckinError::WrongLength { digits: 8 })),
            "{label}: {outcome:?}"
        );
        for e in [
            CheckinError::UnknownCode,
            CheckinError::InactivePremises,
            CheckinError::Typo,
        ] {
            assert!(!e.is_temporary());
        }
        // None of them recorded anything.
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            0,
            "{label}"
        );
        assert_eq!(
            store.checkins().count_checkins(closed.id).await.unwrap(),
            0,
            "{label}"
        );
        // And the real code works.
        assert!(!check_in_text(store, &p.code.to_string()).await.unwrap());
    }
}

#[tokio::test]
async fn a_batch_commits_together_with_per_item_outcomes() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store, "ул. Тверская, 13").await;
        let mut unknown = VenueCode::generate(&mut rand::thread_rng());
        while unknown == p.code {
            unknown = VenueCode::generate(&mut rand::thread_rng());
        }
        let batch = vec![
            visit("+79160000001", p.code, t0()),
            visit("+79160000002", unknown, t0()),
            visit("+79160000003", p.code, t0()),
            // The same visitor twice in one batch: the second is a duplicate.
            visit("+79160000001", p.code, t0() + minutes(1)),
        ];
        let results = store.checkins().record_checkins(&batch).await.unwrap();
        assert_eq!(results.len(), 4, "{label}");
        assert!(!results[0].as_ref().unwrap().duplicate, "{label}");
        assert!(
            matches!(results[1], Err(CheckinError::UnknownCode)),
            "{label}"
        );
        assert!(!results[2].as_ref().unwrap().duplicate, "{label}");
        let dup = results[3].as_ref().unwrap();
        assert!(dup.duplicate, "{label}");
        assert_eq!(
            dup.checkin.id,
            results[0].as_ref().unwrap().checkin.id,
            "{label}"
        );
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            2,
            "{label}"
        );
    }
}

/// The phone's national digits in the forms they could take in a table dump.
fn needles(national: &str) -> Vec<String> {
    vec![
        national.to_owned(),
        hex::encode(national),
        hex::encode(format!("+7{national}")),
    ]
}

#[tokio::test]
async fn no_phone_number_is_stored_in_clear() {
    let national = "9161234567";
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store, "ул. Сретенка, 7").await;
        let visitor = phone(&format!("+7{national}"));
        store
            .checkins()
            .record_checkin(&visit(visitor.as_str(), p.code, t0()))
            .await
            .unwrap();
        store
            .cases()
            .add_case(
                &NewCase {
                    authority_id: None,
                    phone: visitor.clone(),
                    confirmed_at: t0(),
                    contagious_from: t0() - minutes(60 * 48),
                    contagious_to: t0(),
                },
                t0(),
            )
            .await
            .unwrap();
        let id = store
            .outbox()
            .enqueue(
                &NewMessage {
                    recipient: visitor.clone(),
                    text: "Вы отметились".into(),
                    priority: Priority::Confirmation,
                },
                t0(),
            )
            .await
            .unwrap();
        // The number is still recoverable for sending...
        let message = store.outbox().message(id).await.unwrap().unwrap();
        assert_eq!(store.open_recipient(&message).unwrap(), visitor);

        // ...but appears nowhere in the stored bytes.
        let dump = dump(&db).await;
        assert!(
            dump.contains("Сретенка"),
            "{label}: the dump must see the data at all"
        );
        for needle in needles(national) {
            assert!(
                !dump.contains(&needle),
                "{label}: {needle} found in the database"
            );
        }
    }
}

/// Everything the database holds, as text: the raw SQLite files (WAL included), or
/// every row of every PostgreSQL table.
async fn dump(db: &TestDb) -> String {
    match db.store.backend() {
        checkin_core::Backend::Sqlite => {
            let mut all = String::new();
            for file in db.sqlite_files() {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(file).unwrap()));
            }
            all
        }
        checkin_core::Backend::Postgres => {
            let tables = sqlx::query(
                "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(db.store.pool_for_tests())
            .await
            .unwrap();
            let mut all = String::new();
            for table in tables {
                let name: String = table.try_get("t").unwrap();
                let rows = sqlx::query(&format!("SELECT CAST(x AS TEXT) AS r FROM {name} x"))
                    .fetch_all(db.store.pool_for_tests())
                    .await
                    .unwrap();
                for row in rows {
                    all.push_str(&row.try_get::<String, _>("r").unwrap());
                    all.push('\n');
                }
            }
            all
        }
    }
}

#[tokio::test]
async fn retention_deletes_exactly_what_is_older_than_the_limit() {
    let config = StoreConfig {
        retention: Duration::from_secs(28 * 24 * 3600),
        ..StoreConfig::default()
    };
    let now = t0() + chrono::Duration::days(60);
    let limit = now - chrono::Duration::days(28);
    let ages = [
        (limit - chrono::Duration::days(1), false),
        (limit - chrono::Duration::milliseconds(1), false),
        (limit, true),
        (limit + chrono::Duration::milliseconds(1), true),
        (now - chrono::Duration::days(1), true),
    ];
    for db in backends(config.clone()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store, "ул. Тверская, 13").await;
        let mut kept_ids = Vec::new();
        for (i, (at, kept)) in ages.iter().enumerate() {
            let who = format!("+7916000000{i}");
            let c = store
                .checkins()
                .record_checkin(&visit(&who, p.code, *at))
                .await
                .unwrap();
            store
                .cases()
                .add_case(
                    &NewCase {
                        authority_id: None,
                        phone: phone(&who),
                        confirmed_at: *at,
                        contagious_from: *at - minutes(60),
                        contagious_to: *at,
                    },
                    *at,
                )
                .await
                .unwrap();
            let m = store
                .outbox()
                .enqueue(
                    &NewMessage {
                        recipient: phone(&who),
                        text: "текст".into(),
                        priority: Priority::Alert,
                    },
                    *at,
                )
                .await
                .unwrap();
            store
                .outbox()
                .mark_sent(m, &["1".into()], *at)
                .await
                .unwrap();
            if *kept {
                kept_ids.push((c.checkin.id, m));
            }
        }
        let report = store.purge(now).await.unwrap();
        assert_eq!(
            (report.checkins, report.cases, report.messages),
            (2, 2, 2),
            "{label}"
        );
        assert_eq!(
            store.checkins().count_checkins(p.id).await.unwrap(),
            3,
            "{label}"
        );
        assert_eq!(store.cases().count_cases().await.unwrap(), 3, "{label}");
        for (_, m) in &kept_ids {
            assert!(
                store.outbox().message(*m).await.unwrap().is_some(),
                "{label}"
            );
        }
        // Purging again deletes nothing more.
        assert_eq!(
            store.purge(now).await.unwrap(),
            Default::default(),
            "{label}"
        );
    }
}

#[tokio::test]
async fn outbox_claims_by_priority_and_tracks_status() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let to = phone("+79161234567");
        let mut ids = Vec::new();
        for (text, priority) in [
            ("alert", Priority::Alert),
            ("confirmation", Priority::Confirmation),
            ("otp 1234", Priority::Otp),
        ] {
            let new = NewMessage {
                recipient: to.clone(),
                text: text.into(),
                priority,
            };
            ids.push(store.outbox().enqueue(&new, t0()).await.unwrap());
        }
        let claimed = store.outbox().claim_ready(2, t0()).await.unwrap();
        let texts: Vec<&str> = claimed.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["otp 1234", "confirmation"], "{label}");
        assert!(claimed
            .iter()
            .all(|m| m.status == OutboxStatus::Sending && m.attempts == 1));
        assert_eq!(store.open_recipient(&claimed[0]).unwrap(), to, "{label}");

        store
            .outbox()
            .mark_sent(claimed[0].id, &["a1".into(), "a2".into()], t0())
            .await
            .unwrap();
        let sent = store
            .outbox()
            .message(claimed[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent.status, OutboxStatus::Sent, "{label}");
        assert_eq!(sent.smsc_message_ids, ["a1", "a2"], "{label}");

        let later = t0() + minutes(1);
        store
            .outbox()
            .mark_retry(claimed[1].id, "throttled", later, t0())
            .await
            .unwrap();
        // Not due yet: only the alert is claimable now.
        let next = store.outbox().claim_ready(10, t0()).await.unwrap();
        assert_eq!(next.len(), 1, "{label}");
        assert_eq!(next[0].text, "alert", "{label}");
        let retried = store.outbox().claim_ready(10, later).await.unwrap();
        assert_eq!(retried.len(), 1, "{label}");
        assert_eq!(retried[0].attempts, 2, "{label}");
        store
            .outbox()
            .mark_failed(next[0].id, "rejected", t0())
            .await
            .unwrap();
        let failed = store.outbox().message(next[0].id).await.unwrap().unwrap();
        assert_eq!(failed.status, OutboxStatus::Failed, "{label}");
    }
}

#[tokio::test]
async fn send_results_of_every_kind_are_recorded_in_one_call() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let to = phone("+79161234567");
        let mut ids = Vec::new();
        for k in 0..5 {
            let new = NewMessage {
                recipient: to.clone(),
                text: format!("message {k}"),
                priority: Priority::Confirmation,
            };
            ids.push(store.outbox().enqueue(&new, t0()).await.unwrap());
        }
        assert_eq!(store.outbox().claim_ready(10, t0()).await.unwrap().len(), 5);
        let later = t0() + minutes(5);
        let results = [
            (
                ids[0],
                SendResult::Sent {
                    message_ids: vec!["0A".into(), "0B".into()],
                },
            ),
            (
                ids[1],
                SendResult::Failed {
                    reason: "rejected: 0x0000000B".into(),
                },
            ),
            (
                ids[2],
                SendResult::Unknown {
                    reason: "response lost".into(),
                },
            ),
            (
                ids[3],
                SendResult::Retry {
                    reason: "throttled".into(),
                    next_attempt_at: later,
                },
            ),
            (
                ids[4],
                SendResult::Sent {
                    message_ids: vec!["4".into()],
                },
            ),
        ];
        let now = t0() + minutes(1);
        store
            .outbox()
            .record_send_results(&results, now)
            .await
            .unwrap();
        let mut got = Vec::new();
        for id in &ids {
            got.push(store.outbox().message(*id).await.unwrap().unwrap());
        }
        let statuses: Vec<OutboxStatus> = got.iter().map(|m| m.status).collect();
        assert_eq!(
            statuses,
            [
                OutboxStatus::Sent,
                OutboxStatus::Failed,
                OutboxStatus::Unknown,
                OutboxStatus::Pending,
                OutboxStatus::Sent
            ],
            "{label}"
        );
        assert_eq!(got[0].smsc_message_ids, ["0A", "0B"], "{label}");
        assert_eq!(got[4].smsc_message_ids, ["4"], "{label}");
        assert!(got.iter().all(|m| m.updated_at == now), "{label}");
        // Only the retry moves its due time; the others keep theirs.
        assert_eq!(got[3].next_attempt_at, later, "{label}");
        assert_eq!(got[0].next_attempt_at, t0(), "{label}");
        assert!(
            store
                .outbox()
                .claim_ready(10, now)
                .await
                .unwrap()
                .is_empty(),
            "{label}"
        );
        let retried = store.outbox().claim_ready(10, later).await.unwrap();
        assert_eq!(retried.len(), 1, "{label}");
        assert_eq!(retried[0].id, ids[3], "{label}");
    }
}

#[tokio::test]
async fn within_a_priority_the_longest_due_is_claimed_first() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let to = phone("+79161234567");
        let mut ids = Vec::new();
        for k in 0..3 {
            let new = NewMessage {
                recipient: to.clone(),
                text: format!("message {k}"),
                priority: Priority::Alert,
            };
            ids.push(
                store
                    .outbox()
                    .enqueue(&new, t0() + minutes(k))
                    .await
                    .unwrap(),
            );
        }
        // The first is retried later than the others were queued.
        assert_eq!(
            store.outbox().claim_ready(1, t0()).await.unwrap()[0].id,
            ids[0]
        );
        store
            .outbox()
            .mark_retry(ids[0], "throttled", t0() + minutes(10), t0())
            .await
            .unwrap();
        let claimed = store
            .outbox()
            .claim_ready(10, t0() + minutes(10))
            .await
            .unwrap();
        let order: Vec<i64> = claimed.iter().map(|m| m.id).collect();
        assert_eq!(order, [ids[1], ids[2], ids[0]], "{label}");
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_orgs_validate() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        store.migrate().await.unwrap();
        let bad = store
            .orgs()
            .create_org(
                &NewOrganization {
                    name: "X".into(),
                    email: "not-an-email".into(),
                    password: None,
                },
                t0(),
            )
            .await;
        assert!(bad.is_err(), "{label}");
        let p = premises(store, "  ул. Тверская, 13  ").await;
        assert_eq!(p.address, "ул. Тверская, 13", "{label}");
        assert_eq!(p.stay_minutes, checkin_core::model::STAY_MINUTES_DEFAULT);
        let found = store
            .orgs()
            .premises_by_code(&p.code)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, p, "{label}");
        let no_org = store
            .orgs()
            .add_premises(
                &NewPremises {
                    org_id: 999_999,
                    address: "где-то".into(),
                    kind: None,
                    stay_minutes: None,
                },
                t0(),
            )
            .await;
        assert!(no_org.is_err(), "{label}");
    }
}

#[tokio::test]
async fn a_background_checkpoint_moves_the_wal_into_the_database_file() {
    let config = StoreConfig {
        // Commits never checkpoint by themselves here.
        sqlite_autocheckpoint_pages: 1_000_000,
        ..StoreConfig::default()
    };
    let db = common::sqlite(config).await;
    let store = &db.store;
    let p = premises(store, "ул. Тверская, 13").await;
    let main_file = db
        .sqlite_dir
        .as_ref()
        .unwrap()
        .path()
        .join("checkin.sqlite");
    let before = std::fs::metadata(&main_file).unwrap().len();
    for chunk in 0..4 {
        let batch: Vec<NewCheckIn> = (0..250)
            .map(|i| visit(&format!("+7916{:07}", chunk * 1000 + i), p.code, t0()))
            .collect();
        store.checkins().record_checkins(&batch).await.unwrap();
    }
    // Everything is still in the WAL: the database file has not grown.
    assert_eq!(std::fs::metadata(&main_file).unwrap().len(), before);
    store.checkpoint().await.unwrap();
    let after = std::fs::metadata(&main_file).unwrap().len();
    assert!(
        after > before,
        "checkpoint copied nothing: {before} -> {after} bytes"
    );
    assert_eq!(store.checkins().count_checkins(p.id).await.unwrap(), 1000);
}
