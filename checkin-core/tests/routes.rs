//! Routes (issue 20) on both backends: an MO's operator is learned as its
//! phone's route and pins its reply; a message that starts with us is claimed
//! with the learned route; the numbering plan is replaced whole; purge drops
//! routes nobody refreshed.

mod common;

use std::time::Duration;

use checkin_core::store::InboundSms;
use checkin_core::{
    Msisdn, NewMessage, NumberPlan, OperatorName, Priority, ServiceZone, Store, StoreConfig,
};
use chrono::DateTime;
use common::{backends, premises, t0};
use sqlx::Row;

fn op(name: &str) -> OperatorName {
    OperatorName::new(name).unwrap()
}

fn phone(text: &str) -> Msisdn {
    Msisdn::parse(text).unwrap()
}

fn mo(from: &str, text: &str, operator: Option<&str>) -> InboundSms {
    InboundSms {
        from: phone(from),
        text: text.into(),
        received_at: t0(),
        operator: operator.map(op),
    }
}

/// Handles `batch` as the gateway's MO path does, the replies claimed at once.
async fn handle(
    store: &Store,
    batch: Vec<InboundSms>,
    now: DateTime<chrono::Utc>,
) -> Vec<checkin_core::OutboxMessage> {
    let prepared: Vec<_> = batch
        .into_iter()
        .map(|m| store.sms().prepare_sms(m))
        .collect();
    let claim = prepared.len();
    store
        .sms()
        .handle_prepared_sms_claiming(&prepared, &ServiceZone::default(), now, claim)
        .await
        .unwrap()
        .claimed
}

async fn route_of(store: &Store, text: &str) -> Option<String> {
    let hash = store.vault().hash(&phone(text));
    store
        .routes()
        .route_of(&hash)
        .await
        .unwrap()
        .map(|o| o.as_str().to_owned())
}

/// `outbox.operator` of every message to `to`, oldest first.
async fn stored_operators(store: &Store, to: &str) -> Vec<Option<String>> {
    let hash = store.vault().hash(&phone(to));
    sqlx::query("SELECT operator FROM outbox WHERE recipient_hash = $1 ORDER BY id")
        .bind(&hash.0[..])
        .fetch_all(store.pool_for_tests())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<Option<String>, _>("operator").unwrap())
        .collect()
}

#[tokio::test]
async fn an_mo_teaches_its_route_and_pins_its_reply_and_a_port_moves_it() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let code = format!("ВХОД*{}", p.code);
        let (ann, bob, eve) = ("+79161234567", "+79031234567", "+79261234567");
        let claimed = handle(
            store,
            vec![
                mo(ann, &code, Some("mts")),
                mo(bob, "ПОМОЩЬ", Some("beeline")),
                mo(eve, "ПОМОЩЬ", None),
            ],
            t0(),
        )
        .await;
        let routes: Vec<Option<&str>> = claimed
            .iter()
            .map(|m| m.route.as_ref().map(OperatorName::as_str))
            .collect();
        assert_eq!(routes, [Some("mts"), Some("beeline"), None], "{label}");
        assert_eq!(
            route_of(store, ann).await.as_deref(),
            Some("mts"),
            "{label}"
        );
        assert_eq!(
            route_of(store, bob).await.as_deref(),
            Some("beeline"),
            "{label}"
        );
        assert_eq!(
            route_of(store, eve).await,
            None,
            "{label}: no operator, nothing learned"
        );
        assert_eq!(
            stored_operators(store, ann).await,
            [Some("mts".into())],
            "{label}"
        );
        assert_eq!(stored_operators(store, eve).await, [None], "{label}");
        // Read back, the reply keeps its MO's operator.
        let reply = store
            .outbox()
            .message(claimed[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply.route, Some(op("mts")), "{label}");

        // Ann ported her number to Tele2: her next MO moves the route, and
        // the reply goes back the way that MO came.
        let later = t0() + chrono::Duration::minutes(30);
        let claimed = handle(store, vec![mo(ann, "ПОМОЩЬ", Some("tele2"))], later).await;
        assert_eq!(claimed[0].route, Some(op("tele2")), "{label}");
        assert_eq!(
            route_of(store, ann).await.as_deref(),
            Some("tele2"),
            "{label}"
        );
        // The first reply stays pinned to the operator of its own MO.
        let first = store.outbox().messages_to(&phone(ann)).await.unwrap();
        assert_eq!(first[0].route, Some(op("mts")), "{label}");

        // One phone twice in a group: the later MO's operator wins.
        handle(
            store,
            vec![
                mo(bob, "ПОМОЩЬ", Some("megafon")),
                mo(bob, "ПОМОЩЬ", Some("mts")),
            ],
            later,
        )
        .await;
        assert_eq!(
            route_of(store, bob).await.as_deref(),
            Some("mts"),
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_ussd_checkin_teaches_its_route_and_pins_its_sms_confirmation() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let p = premises(store).await;
        let digits = parser::CodeDigits::from_ascii(p.code.digits().as_bytes().try_into().unwrap())
            .expect("nine digits");
        let dialler = phone("+79771234567");
        let prepared =
            store
                .sms()
                .prepare_ussd(dialler.clone(), digits, t0(), true, Some(op("tele2")));
        let claimed = store
            .sms()
            .handle_prepared_sms_claiming(&[prepared], &ServiceZone::default(), t0(), 1)
            .await
            .unwrap()
            .claimed;
        assert_eq!(claimed.len(), 1, "{label}: the SMS confirmation");
        assert_eq!(claimed[0].route, Some(op("tele2")), "{label}");
        assert_eq!(
            route_of(store, "+79771234567").await.as_deref(),
            Some("tele2"),
            "{label}"
        );
    }
}

#[tokio::test]
async fn a_message_that_starts_with_us_is_claimed_with_the_learned_route() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let (known, stranger) = ("+79161234567", "+79031234567");
        let hash = store.vault().hash(&phone(known));
        assert_eq!(
            store
                .routes()
                .learn(&[(hash, op("megafon"))], t0())
                .await
                .unwrap(),
            1
        );
        for to in [known, stranger] {
            store
                .outbox()
                .enqueue(
                    &NewMessage {
                        recipient: phone(to),
                        text: "Код: 1234".into(),
                        priority: Priority::Otp,
                    },
                    t0(),
                )
                .await
                .unwrap();
        }
        let claimed = store.outbox().claim_ready(10, t0()).await.unwrap();
        assert_eq!(claimed.len(), 2, "{label}");
        for m in &claimed {
            let to = store.open_recipient(m).unwrap();
            let want = (to == phone(known)).then(|| op("megafon"));
            assert_eq!(m.route, want, "{label}: {to:?}");
        }
        // The row itself names no operator: the route is read at the claim.
        assert_eq!(stored_operators(store, known).await, [None], "{label}");
    }
}

#[tokio::test]
async fn an_unchanged_route_is_written_again_only_once_a_day_old() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let hash = store.vault().hash(&phone("+79161234567"));
        let routes = store.routes();
        let mts = [(hash, op("mts"))];
        assert_eq!(routes.learn(&mts, t0()).await.unwrap(), 1, "{label}: new");
        let hour = t0() + chrono::Duration::hours(1);
        assert_eq!(
            routes.learn(&mts, hour).await.unwrap(),
            0,
            "{label}: unchanged"
        );
        let moved = [(hash, op("beeline"))];
        assert_eq!(
            routes.learn(&moved, hour).await.unwrap(),
            1,
            "{label}: moved"
        );
        assert_eq!(routes.learn(&moved, hour).await.unwrap(), 0, "{label}");
        let day = hour + chrono::Duration::days(1);
        assert_eq!(
            routes.learn(&moved, day).await.unwrap(),
            1,
            "{label}: refreshed"
        );
        assert_eq!(routes.learn(&[], day).await.unwrap(), 0, "{label}");
        assert_eq!(
            routes.route_of(&hash).await.unwrap(),
            Some(op("beeline")),
            "{label}"
        );
    }
}

#[tokio::test]
async fn an_imported_plan_replaces_the_last_one_whole() {
    for db in backends(StoreConfig::default()).await {
        let (label, store) = (db.label, &db.store);
        let routes = store.routes();
        assert!(routes.plan().await.unwrap().is_empty(), "{label}");
        assert_eq!(routes.plan_imported_at().await.unwrap(), None, "{label}");

        let first = NumberPlan::parse_csv(
            "range,operator\n+7916,mts\n+7903,beeline\n+79030000000-+79030999999,tele2\n",
        )
        .unwrap();
        assert_eq!(
            routes.import_plan(&first, t0()).await.unwrap(),
            3,
            "{label}"
        );
        assert_eq!(
            routes.plan().await.unwrap(),
            first,
            "{label}: in the file's order"
        );
        assert_eq!(
            routes.plan_imported_at().await.unwrap(),
            Some(t0()),
            "{label}"
        );

        let later = t0() + chrono::Duration::minutes(5);
        let second = NumberPlan::parse_csv("range,operator\n+7926,megafon\n+7916,mts\n").unwrap();
        assert_eq!(
            routes.import_plan(&second, later).await.unwrap(),
            2,
            "{label}"
        );
        let plan = routes.plan().await.unwrap();
        assert_eq!(plan, second, "{label}: replaced, not appended");
        assert_eq!(plan.operator_for(&phone("+79031234567")), None, "{label}");
        assert_eq!(
            routes.plan_imported_at().await.unwrap(),
            Some(later),
            "{label}"
        );
    }
}

#[tokio::test]
async fn purge_drops_routes_nobody_refreshed() {
    let config = StoreConfig {
        retention: Duration::from_secs(14 * 24 * 3600),
        ..StoreConfig::default()
    };
    for db in backends(config).await {
        let (label, store) = (db.label, &db.store);
        let (stale, fresh) = (
            store.vault().hash(&phone("+79161234567")),
            store.vault().hash(&phone("+79031234567")),
        );
        let routes = store.routes();
        routes
            .learn(&[(stale, op("mts")), (fresh, op("beeline"))], t0())
            .await
            .unwrap();
        // Beeline's phone keeps texting: its route is refreshed daily.
        let days = |n| t0() + chrono::Duration::days(n);
        routes
            .learn(&[(fresh, op("beeline"))], days(10))
            .await
            .unwrap();
        let report = store.purge(days(20)).await.unwrap();
        assert_eq!(report.routes, 1, "{label}");
        assert_eq!(routes.route_of(&stale).await.unwrap(), None, "{label}");
        assert_eq!(
            routes.route_of(&fresh).await.unwrap(),
            Some(op("beeline")),
            "{label}"
        );
    }
}

#[test]
fn the_shipped_russian_plan_parses_and_maps_the_big_four() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/numbering-plan/ru-mobile.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let plan = NumberPlan::parse_csv(&text).unwrap_or_else(|e| panic!("{e:?}"));
    let per_operator = plan.ranges_per_operator();
    for big in ["mts", "beeline", "megafon", "tele2"] {
        assert!(
            per_operator.get(&op(big)).is_some_and(|n| *n > 10),
            "{big}: {per_operator:?}"
        );
    }
    assert!(
        plan.entries()
            .iter()
            .all(|(r, _)| r.to_string().starts_with("+79")),
        "mobile ranges only"
    );
    // Checked against libphonenumber's carrier data for +7 (9.0.43).
    let cases = [
        ("+79031234567", Some("beeline")),
        ("+79261234567", Some("megafon")),
        ("+79771234567", Some("tele2")),
        ("+79772134567", Some("motiv")),
        ("+79821234567", Some("mts")),
        ("+79807123456", Some("mts")),
        // Not in libphonenumber's data: the learned route or the default.
        ("+79161234567", None),
        ("+74951234567", None),
    ];
    for (to, want) in cases {
        assert_eq!(
            plan.operator_for(&phone(to)).map(OperatorName::as_str),
            want,
            "{to}"
        );
    }
}
