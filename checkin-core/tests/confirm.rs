//! Code confirmations committed in groups, on both backends: each entry of a
//! group is answered as `confirm_otp` would answer it alone (right, wrong,
//! expired, used, exhausted, unknown, closed premises; one code entered twice
//! in one group passes once; a phone confirmed twice is one visit), an entry
//! that fails rolls back only itself, and the queue (`Confirmations`) answers every caller, then refuses once stopped.

mod common;

use checkin_core::otp::{OtpCode, OtpKey, OTP_ATTEMPTS_MAX};
use checkin_core::store::{NewOtp, OtpCheck, OtpEntry};
use checkin_core::{
    Backend, ConfirmConfig, Confirmations, Keys, Msisdn, Premises, Store, StoreConfig,
};
use chrono::{DateTime, Duration, Utc};
use common::{backends, premises, t0};
use sqlx::{Connection, Executor, Row};

fn phone(i: u32) -> Msisdn {
    Msisdn::parse(&format!("+7916{i:07}")).unwrap()
}

fn code(text: &str) -> OtpCode {
    OtpCode::parse(text).unwrap()
}

/// Issues `code` for phone `i` at `premises`, alive for five minutes.
async fn issue(store: &Store, key: &OtpKey, premises: &Premises, i: u32, code: &OtpCode) -> i64 {
    let phone = phone(i);
    let new = NewOtp {
        phone: &phone,
        premises_id: premises.id,
        code,
        expires_at: t0() + Duration::minutes(5),
        text: checkin_core::otp::sms_text(code),
    };
    store.otps().issue_otp(&new, key, t0()).await.unwrap()
}

fn entry(id: i64, premises: &Premises, code: &OtpCode, at: DateTime<Utc>) -> OtpEntry {
    OtpEntry {
        id,
        premises_id: premises.id,
        code: code.clone(),
        consent: true,
        at,
    }
}

async fn otp_column(store: &Store, id: i64, column: &str) -> Option<i64> {
    sqlx::query(&format!("SELECT {column} FROM otps WHERE id = $1"))
        .bind(id)
        .fetch_one(store.pool_for_tests())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn checkins_count(store: &Store) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM checkins")
        .fetch_one(store.pool_for_tests())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

#[tokio::test]
async fn a_mixed_group_answers_each_entry_as_alone() {
    for db in backends(StoreConfig::default()).await {
        let (store, label) = (&db.store, db.label);
        let key = OtpKey::new(&Keys::generate());
        let here = premises(store).await;
        let closed = premises(store).await;
        let right = code("123456");
        let wrong = code("000000");
        let at = t0() + Duration::minutes(1);
        let confirmed = issue(store, &key, &here, 1, &right).await;
        let mistyped = issue(store, &key, &here, 2, &right).await;
        let late = issue(store, &key, &here, 3, &right).await;
        let used = issue(store, &key, &here, 4, &right).await;
        let twice = issue(store, &key, &here, 5, &right).await;
        let exhausted = issue(store, &key, &here, 6, &right).await;
        let at_closed = issue(store, &key, &closed, 7, &right).await;
        assert!(matches!(
            store
                .otps()
                .confirm_otp(used, here.id, &right, &key, true, at)
                .await
                .unwrap(),
            OtpCheck::Confirmed { .. }
        ));
        for _ in 0..OTP_ATTEMPTS_MAX {
            store
                .otps()
                .confirm_otp(exhausted, here.id, &wrong, &key, true, at)
                .await
                .unwrap();
        }
        store
            .orgs()
            .set_premises_active(closed.id, false)
            .await
            .unwrap();
        let before = checkins_count(store).await;

        let entries = [
            entry(confirmed, &here, &right, at),
            entry(mistyped, &here, &wrong, at),
            entry(late, &here, &right, t0() + Duration::minutes(6)),
            entry(used, &here, &right, at),
            entry(twice, &here, &right, at),
            entry(twice, &here, &right, at),
            entry(exhausted, &here, &right, at),
            entry(at_closed, &closed, &right, at),
            entry(confirmed + 1000, &here, &right, at),
            // Another premises' code is unknown here.
            entry(mistyped, &closed, &right, at),
        ];
        let checks: Vec<OtpCheck> = store
            .otps()
            .confirm_otp_group(&entries, &key)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(checks.len(), entries.len(), "{label}");
        match &checks[0] {
            OtpCheck::Confirmed { recorded, phone: p } => {
                assert_eq!(p, &phone(1), "{label}");
                assert!(!recorded.duplicate, "{label}");
                assert_eq!(recorded.checkin.at, at, "{label}");
            }
            other => panic!("{label}: {other:?}"),
        }
        assert_eq!(
            checks[1],
            OtpCheck::Wrong {
                attempts_left: OTP_ATTEMPTS_MAX - 1
            },
            "{label}"
        );
        assert_eq!(checks[2], OtpCheck::Expired, "{label}");
        assert_eq!(checks[3], OtpCheck::Used, "{label}");
        assert!(
            matches!(&checks[4], OtpCheck::Confirmed { phone: p, .. } if p == &phone(5)),
            "{label}: {:?}",
            checks[4]
        );
        assert_eq!(checks[5], OtpCheck::Used, "{label}: the second entry");
        assert_eq!(checks[6], OtpCheck::AttemptsExhausted, "{label}");
        assert_eq!(checks[7], OtpCheck::InactivePremises, "{label}");
        assert_eq!(checks[8], OtpCheck::Unknown, "{label}");
        assert_eq!(checks[9], OtpCheck::Unknown, "{label}");

        // Committed: the two check-ins, the spent codes, the wrong attempt.
        assert_eq!(checkins_count(store).await, before + 2, "{label}");
        assert!(otp_column(store, confirmed, "used_at_ms").await.is_some());
        assert!(otp_column(store, twice, "used_at_ms").await.is_some());
        assert_eq!(otp_column(store, mistyped, "attempts").await, Some(1));
        assert_eq!(otp_column(store, mistyped, "used_at_ms").await, None);
        assert_eq!(otp_column(store, late, "used_at_ms").await, None);
    }
}

/// The dedupe window inside one group: a phone confirmed twice at one
/// premises is one visit (the second entry gets the first's check-in), a
/// visit stored before the group is returned rather than repeated, another
/// premises is another visit, and each entry keeps its own consent.
#[tokio::test]
async fn one_group_dedupes_visits_as_entries_one_at_a_time_would() {
    for db in backends(StoreConfig::default()).await {
        let (store, label) = (&db.store, db.label);
        let key = OtpKey::new(&Keys::generate());
        let here = premises(store).await;
        let there = premises(store).await;
        let right = code("246802");
        let at = t0() + Duration::minutes(2);
        let first = issue(store, &key, &here, 1, &right).await;
        let again = issue(store, &key, &here, 1, &right).await;
        let elsewhere = issue(store, &key, &there, 1, &right).await;
        let earlier = issue(store, &key, &here, 2, &right).await;
        let repeat = issue(store, &key, &here, 2, &right).await;
        let no_consent = issue(store, &key, &here, 3, &right).await;
        let stored = match store
            .otps()
            .confirm_otp(
                earlier,
                here.id,
                &right,
                &key,
                true,
                t0() + Duration::minutes(1),
            )
            .await
            .unwrap()
        {
            OtpCheck::Confirmed { recorded, .. } => recorded.checkin,
            other => panic!("{label}: {other:?}"),
        };
        let before = checkins_count(store).await;
        let mut refused = entry(no_consent, &here, &right, at);
        refused.consent = false;
        let checks: Vec<OtpCheck> = store
            .otps()
            .confirm_otp_group(
                &[
                    entry(first, &here, &right, at),
                    entry(repeat, &here, &right, at),
                    entry(again, &here, &right, at + Duration::seconds(1)),
                    entry(elsewhere, &there, &right, at),
                    refused,
                ],
                &key,
            )
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let recorded: Vec<_> = checks
            .iter()
            .map(|c| match c {
                OtpCheck::Confirmed { recorded, phone } => (recorded.clone(), phone.clone()),
                other => panic!("{label}: {other:?}"),
            })
            .collect();
        let (new, _) = &recorded[0];
        assert!(!new.duplicate, "{label}");
        assert_eq!(new.checkin.at, at, "{label}");
        assert_eq!(recorded[1].0.checkin, stored, "{label}: the stored visit");
        assert!(recorded[1].0.duplicate, "{label}");
        assert_eq!(
            recorded[2].0.checkin, new.checkin,
            "{label}: the group's own"
        );
        assert!(recorded[2].0.duplicate, "{label}");
        assert_eq!(recorded[2].1, phone(1), "{label}");
        assert!(!recorded[3].0.duplicate, "{label}: another premises");
        assert_eq!(recorded[3].0.checkin.premises_id, there.id, "{label}");
        assert_ne!(recorded[3].0.checkin.id, new.checkin.id, "{label}");
        assert!(!recorded[4].0.checkin.consent, "{label}");
        assert!(recorded[0].0.checkin.consent, "{label}");
        assert_eq!(checkins_count(store).await, before + 3, "{label}");
        // Every code of the group is spent, the duplicates' too.
        for id in [first, again, elsewhere, repeat, no_consent] {
            assert!(
                otp_column(store, id, "used_at_ms").await.is_some(),
                "{label}"
            );
            assert_eq!(otp_column(store, id, "attempts").await, Some(1), "{label}");
        }
        // The stored rows are the ones answered.
        let by_id = store.checkins().checkins_of(&phone(3)).await.unwrap();
        assert_eq!(by_id, vec![recorded[4].0.checkin.clone()], "{label}");
    }
}

/// Makes every check-in at `premises` fail inside the database, after the
/// code's own update ran (a trigger), so only a savepoint can undo that.
async fn fail_checkins_at(db: &common::TestDb, premises: &Premises) {
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let id = premises.id;
    match db.store.backend() {
        Backend::Sqlite => {
            conn.execute(
                format!(
                    "CREATE TRIGGER staged_failure BEFORE INSERT ON checkins \
                     WHEN NEW.premises_id = {id} BEGIN SELECT RAISE(ABORT, 'staged failure'); END"
                )
                .as_str(),
            )
            .await
            .unwrap();
        }
        Backend::Postgres => {
            conn.execute(
                "CREATE FUNCTION staged_failure() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'staged failure'; END $$ LANGUAGE plpgsql",
            )
            .await
            .unwrap();
            conn.execute(
                format!(
                    "CREATE TRIGGER staged_failure BEFORE INSERT ON checkins FOR EACH ROW \
                     WHEN (NEW.premises_id = {id}) EXECUTE FUNCTION staged_failure()"
                )
                .as_str(),
            )
            .await
            .unwrap();
        }
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_failing_entry_rolls_back_only_itself() {
    for db in backends(StoreConfig::default()).await {
        let (store, label) = (&db.store, db.label);
        let key = OtpKey::new(&Keys::generate());
        let here = premises(store).await;
        let broken = premises(store).await;
        let right = code("654321");
        let first = issue(store, &key, &here, 1, &right).await;
        let failing = issue(store, &key, &broken, 2, &right).await;
        let unreadable = issue(store, &key, &here, 3, &right).await;
        let last = issue(store, &key, &here, 4, &right).await;
        fail_checkins_at(&db, &broken).await;
        // A phone that no longer opens: this entry fails before it writes.
        {
            let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
            sqlx::query("UPDATE otps SET phone_sealed = $1 WHERE id = $2")
                .bind(vec![0u8; 40])
                .bind(unreadable)
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let before = checkins_count(store).await;
        let at = t0() + Duration::minutes(1);
        let checks = store
            .otps()
            .confirm_otp_group(
                &[
                    entry(first, &here, &right, at),
                    entry(failing, &broken, &right, at),
                    entry(unreadable, &here, &right, at),
                    entry(last, &here, &right, at),
                ],
                &key,
            )
            .await
            .unwrap();
        assert!(
            matches!(&checks[0], Ok(OtpCheck::Confirmed { .. })),
            "{label}: {:?}",
            checks[0]
        );
        assert!(checks[1].is_err(), "{label}: {:?}", checks[1]);
        assert!(checks[2].is_err(), "{label}: {:?}", checks[2]);
        assert!(
            matches!(&checks[3], Ok(OtpCheck::Confirmed { .. })),
            "{label}: {:?}",
            checks[3]
        );
        assert_eq!(checkins_count(store).await, before + 2, "{label}");
        // The failed entry's own update was rolled back: the code is unspent
        // and its attempt not counted.
        assert_eq!(otp_column(store, failing, "used_at_ms").await, None);
        assert_eq!(otp_column(store, failing, "attempts").await, Some(0));
        assert!(otp_column(store, first, "used_at_ms").await.is_some());
        assert!(otp_column(store, last, "used_at_ms").await.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_answers_every_caller_and_refuses_once_stopped() {
    for db in backends(StoreConfig::default()).await {
        let (store, label) = (db.store.clone(), db.label);
        let key = OtpKey::new(&Keys::generate());
        let here = premises(&store).await;
        let right = code("111222");
        let wrong = code("999999");
        let mut ids = Vec::new();
        for i in 0..60 {
            ids.push(issue(&store, &key, &here, i, &right).await);
        }
        let (queue, committer) = Confirmations::new(
            store.clone(),
            key.clone(),
            ConfirmConfig {
                queue_max: 8,
                batch_max: 16,
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(committer.run(async {
            let _ = stopped.await;
        }));
        let at = t0() + Duration::minutes(1);
        // Every code entered right twice (once passes), and every third
        // also wrong once before, all at once.
        let mut tasks = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let mut entries = vec![entry(id, &here, &right, at), entry(id, &here, &right, at)];
            if i % 3 == 0 {
                entries.insert(0, entry(id, &here, &wrong, at));
            }
            for e in entries {
                let queue = queue.clone();
                tasks.push(tokio::spawn(async move {
                    (e.id, queue.confirm(e).await.unwrap())
                }));
            }
        }
        let mut confirmed = std::collections::HashMap::new();
        for task in tasks {
            let (id, check) = task.await.unwrap();
            match check {
                OtpCheck::Confirmed { .. } => *confirmed.entry(id).or_insert(0) += 1,
                OtpCheck::Used | OtpCheck::Wrong { .. } => {}
                other => panic!("{label}: {other:?}"),
            }
        }
        assert_eq!(confirmed.len(), ids.len(), "{label}");
        assert!(confirmed.values().all(|&n| n == 1), "{label}");
        assert_eq!(checkins_count(&store).await, ids.len() as i64, "{label}");

        stop.send(()).unwrap();
        running.await.unwrap();
        if store.backend() == Backend::Sqlite {
            let late = queue.confirm(entry(ids[0], &here, &right, at)).await;
            assert!(late.is_err(), "{label}: {late:?}");
        }
    }
}
