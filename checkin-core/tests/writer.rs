//! The one writer: every write goes through it, and send results that ride along with another transaction learn that
//! transaction's fate before anyone else can write (multi-thread runtime).

mod common;

use checkin_core::store::{InboundSms, NewOrganization, SendResult};
use checkin_core::{Msisdn, OutboxStatus, ServiceZone, Store, StoreConfig};
use chrono::{DateTime, TimeZone, Utc};
use common::{backends, TestDb};
use sqlx::Connection;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
}

/// The segment id that makes the injected trigger refuse a row.
const POISON: &str = "poison";

/// Makes every UPDATE of an outbox row to `smsc_message_ids = POISON` fail,
/// from a connection of the test's own (the store's readers cannot write).
async fn inject_failing_row(db: &TestDb) {
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(&format!(
            "CREATE TRIGGER poison BEFORE UPDATE ON outbox \
             WHEN NEW.smsc_message_ids = '{POISON}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(&format!(
            "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.smsc_message_ids = '{POISON}' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER poison BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION poison()",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
}

/// `count` replies queued already claimed (`sending`), as the MO path leaves
/// them for its sender; returns their ids.
async fn claimed_replies(store: &Store, round: usize, count: usize) -> Vec<i64> {
    let prepared: Vec<_> = (0..count)
        .map(|k| {
            store.sms().prepare_sms(InboundSms {
                from: Msisdn::parse(&format!("+7916{round:03}{k:04}")).unwrap(),
                text: "ПОМОЩЬ".into(),
                received_at: t0(),
                operator: None,
            })
        })
        .collect();
    let done = store
        .sms()
        .handle_prepared_sms_claiming(&prepared, &ServiceZone::default(), t0(), count)
        .await
        .unwrap();
    assert_eq!(done.claimed.len(), count);
    done.claimed.iter().map(|m| m.id).collect()
}

/// Callers recording results at once.
const CALLERS: usize = 8;
/// Results each caller records.
const RESULTS_PER_CALLER: usize = 3;
const ROUNDS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_results_never_report_ok_while_their_rows_stay_sending() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        inject_failing_row(&db).await;
        let mut failed_calls = 0;
        for round in 0..ROUNDS {
            let ids = claimed_replies(store, round, CALLERS * RESULTS_PER_CALLER).await;
            let mut tasks = Vec::new();
            for (caller, rows) in ids.chunks(RESULTS_PER_CALLER).enumerate() {
                let results: Vec<(i64, SendResult)> = rows
                    .iter()
                    .enumerate()
                    .map(|(k, id)| {
                        // The first caller's last row is refused by the database.
                        let segment = if caller == 0 && k + 1 == rows.len() {
                            POISON.to_owned()
                        } else {
                            format!("id-{id}")
                        };
                        let result = SendResult::Sent {
                            message_ids: vec![segment],
                        };
                        (*id, result)
                    })
                    .collect();
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let outcome = store.outbox().record_send_results(&results, t0()).await;
                    (results, outcome)
                }));
            }
            for task in tasks {
                let (results, outcome) = task.await.unwrap();
                if outcome.is_err() {
                    failed_calls += 1;
                    continue;
                }
                for (id, _) in &results {
                    let stored = store.outbox().message(*id).await.unwrap().unwrap();
                    assert_eq!(
                        stored.status,
                        OutboxStatus::Sent,
                        "{label}, round {round}: recording returned Ok, yet message {id} is {:?}",
                        stored.status
                    );
                }
            }
        }
        // The poisoned call fails every round.
        assert!(
            failed_calls >= ROUNDS,
            "{label}: {failed_calls} failed calls"
        );
    }
}

/// (That the store's SQLite readers cannot write is checked where they live,
/// `store/db/sqlite.rs`: they are threads of the store, out of a test's reach.)
#[tokio::test]
async fn on_sqlite_the_store_writes_and_its_readers_see_it() {
    let db = common::sqlite(StoreConfig::default()).await;
    let created = db
        .store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Кафе".into(),
                email: "cafe@example.ru".into(),
                password: None,
            },
            t0(),
        )
        .await
        .unwrap();
    let found = sqlx::query("SELECT id FROM organizations WHERE email = 'cafe@example.ru'")
        .fetch_all(db.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(created.organization.id > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_send_result_fails_alone() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        inject_failing_row(&db).await;
        for round in 0..20 {
            let ids = claimed_replies(store, round, 2).await;
            let result = |id: i64, segment: &str| {
                let result = SendResult::Sent {
                    message_ids: vec![segment.to_owned()],
                };
                [(id, result)]
            };
            let (poisoned, good) = (result(ids[0], POISON), result(ids[1], "ok"));
            // An MO group commits meanwhile; on SQLite the results may ride with it.
            let prepared: Vec<_> = (0..5)
                .map(|k| {
                    store.sms().prepare_sms(InboundSms {
                        from: Msisdn::parse(&format!("+7926{round:03}{k:04}")).unwrap(),
                        text: "ПОМОЩЬ".into(),
                        received_at: t0(),
                        operator: None,
                    })
                })
                .collect();
            let zone = ServiceZone::default();
            let outbox = store.outbox();
            let (refused, recorded, group) = tokio::join!(
                outbox.record_send_results(&poisoned, t0()),
                outbox.record_send_results(&good, t0()),
                store
                    .sms()
                    .handle_prepared_sms_claiming(&prepared, &zone, t0(), 0),
            );
            assert!(refused.is_err(), "{label}");
            recorded.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(group.unwrap().outcomes.len(), 5, "{label}");
            let stored = store.outbox().message(ids[1]).await.unwrap().unwrap();
            assert_eq!(stored.status, OutboxStatus::Sent, "{label}");
            let stored = store.outbox().message(ids[0]).await.unwrap().unwrap();
            assert_eq!(stored.status, OutboxStatus::Sending, "{label}");
        }
    }
}

/// Callers that gave up while waiting for the writer; their results stay queued.
const ABANDONED_CALLS: usize = 2000;

/// The race of issue 14, staged: a carrying transaction fails while a caller
/// whose results it took waits for the next turn. That caller must learn the
/// failure before it can write, not find nothing to do and report `Ok`. The
/// carrier runs on the test's own thread (not a runtime worker), so the waiter
/// it lets in runs on a worker at once, in parallel; the results of callers
/// that gave up make the carrier's list of callers to tell long.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_learns_that_its_carrier_failed_before_it_can_write() {
    let db = common::sqlite(StoreConfig::default()).await;
    inject_failing_row(&db).await;
    // Each round loses the race on the old code more often than not.
    for round in 0..3 {
        stage_a_failing_carry(&db, round).await;
    }
}

/// One round of the staged race.
async fn stage_a_failing_carry(db: &TestDb, round: usize) {
    use sqlx::Executor;
    let store = &db.store;
    let ids = claimed_replies(store, round, 2).await;
    let sent = |id: i64, segment: &str| {
        let result = SendResult::Sent {
            message_ids: vec![segment.to_owned()],
        };
        vec![(id, result)]
    };
    // SQLite's write lock, held from outside: the carrier waits in its turn.
    let mut outside = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    outside.execute("BEGIN IMMEDIATE").await.unwrap();
    let poisoned = sent(ids[0], POISON);
    let outbox = store.outbox();
    let carrier = outbox.record_send_results(&poisoned, t0());
    tokio::pin!(carrier);
    tokio::select! {
        outcome = &mut carrier => panic!("the carrier finished early: {outcome:?}"),
        _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
    }
    let abandoned: Vec<_> = (0..ABANDONED_CALLS)
        .map(|k| {
            let store = store.clone();
            let results = sent(-1 - (round * ABANDONED_CALLS + k) as i64, "gone");
            tokio::spawn(async move { store.outbox().record_send_results(&results, t0()).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for task in &abandoned {
        task.abort();
    }
    for task in abandoned {
        let _ = task.await;
    }
    let waiter = {
        let store = store.clone();
        let results = sent(ids[1], "ok");
        tokio::spawn(async move { store.outbox().record_send_results(&results, t0()).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    outside.execute("ROLLBACK").await.unwrap();
    assert!(carrier.await.is_err(), "the refused row fails its caller");
    let outcome = waiter.await.unwrap();
    let stored = store.outbox().message(ids[1]).await.unwrap().unwrap();
    assert!(
        outcome.is_err() || stored.status == OutboxStatus::Sent,
        "round {round}: recording returned {outcome:?}, yet the message is {:?}",
        stored.status
    );
}
