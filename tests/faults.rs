//! No visitor left without a confirmation: MO load through a simulator with
//! its seeded fault profile (dropped responses, disconnects, throttling,
//! submit errors), and once with disconnects only. Every stored check-in gets
//! at least one confirmation and none more than two; the counts are printed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use checkin::config::{Config, Overrides};
use checkin::gateway::{Gateway, GatewayOptions};
use checkin_core::Msisdn;
use notifier::NotifierConfig;
use simulator::{FaultProfile, MoRequest, Simulator};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Visitors, one MO each.
const MO_COUNT: usize = 800;
const LOAD_CONCURRENCY: usize = 32;

/// The operator conditions of issue 9.
fn operator_faults() -> FaultProfile {
    serde_json::from_value(serde_json::json!({
        "seed": 42,
        "drop_response_share": 0.01,
        "disconnect_share": 0.002,
        "throttle_per_s": 150,
        "submit_error_share": 0.01,
    }))
    .unwrap()
}

fn disconnects_only() -> FaultProfile {
    serde_json::from_value(serde_json::json!({
        "seed": 7,
        "disconnect_share": 0.005,
    }))
    .unwrap()
}

fn phone(run: usize, i: usize) -> String {
    format!("+7918{run}{i:06}")
}

/// The gateway bound to `port` through `[smsc]`, with short timeouts so the
/// test takes seconds.
fn config(dir: &std::path::Path, database_url: Option<&str>, port: u16) -> Config {
    let file = dir.join("checkin.toml");
    std::fs::write(
        &file,
        format!(
            "[smsc]\nhost = \"127.0.0.1\"\nport = {port}\nsystem_id = \"checkin\"\n\
             password = \"checkin\"\nresponse_timeout_ms = 1000\nreceipt_hold_ms = 1000\n\
             reconnect_backoff_min_ms = 50\nreconnect_backoff_max_ms = 500\n\
             segments_per_second = 0\nthrottle_backoff_max_ms = 1000\n"
        ),
    )
    .unwrap();
    Config::resolve(&Overrides {
        config: Some(file),
        data_dir: Some(dir.join("data")),
        database_url: database_url.map(str::to_owned),
        http: Some("127.0.0.1:0".parse().unwrap()),
        send_rate: Some(2000),
        ..Overrides::default()
    })
    .unwrap()
}

/// `receipts_all`: every confirmation's row gets its delivery state.
async fn run(
    label: &str,
    run: usize,
    database_url: Option<String>,
    faults: FaultProfile,
    receipts_all: bool,
) {
    let sim = Simulator::new(simulator::Config::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    tokio::spawn(sim.clone().serve_smpp(listener, stop.clone()));

    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), database_url.as_deref(), port);
    let options = GatewayOptions {
        notifier: NotifierConfig {
            retry_delay_min: Duration::from_millis(200),
            retry_delay_max: Duration::from_secs(2),
            poll_interval: Duration::from_millis(100),
            ..GatewayOptions::from_config(&config).notifier
        },
        ..GatewayOptions::from_config(&config)
    };
    let gateway = Gateway::start(&config, options).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(20), gateway.link.wait_bound(1))
            .await
            .unwrap(),
        "the link binds"
    );
    let running = common::Running {
        label: "faults",
        gateway,
        http: "127.0.0.1:1".parse().unwrap(),
        database_url: config.database_url.clone(),
        data_dir: dir,
    };
    let premises = running.premises("ул. Тверская, 13").await;
    let text = format!("ВХОД*{}", premises.code);
    sim.set_faults(faults).unwrap();

    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(LOAD_CONCURRENCY));
    let mut tasks = Vec::new();
    for i in 0..MO_COUNT {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (sim, text) = (sim.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            // A real SMSC keeps an MO while the ESME reconnects; the
            // simulator refuses it when nobody is bound: try again shortly.
            for _ in 0..200 {
                match sim.inject_mo(MoRequest::new(phone(run, i), &text)).await {
                    Err(simulator::Error::NoReceiver) => {
                        tokio::time::sleep(Duration::from_millis(25)).await
                    }
                    _ => break,
                }
            }
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let store = &running.gateway.store;
    let mut stored = Vec::new();
    for i in 0..MO_COUNT {
        let p = phone(run, i);
        if !store
            .checkins()
            .checkins_of(&Msisdn::parse(&p).unwrap())
            .await
            .unwrap()
            .is_empty()
        {
            stored.push(p);
        }
    }
    let copies = |p: &str| {
        sim.messages(Some(p), 10)
            .iter()
            .filter(|m| m.complete && m.text.starts_with("Вход отмечен: ул. Тверская, 13"))
            .count()
    };
    // Every stored check-in confirmed (bounded wait)…
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing = stored.iter().filter(|p| copies(p) == 0).count();
        if missing == 0 {
            break;
        }
        if Instant::now() >= deadline {
            for p in stored.iter().filter(|p| copies(p) == 0) {
                let rows = store
                    .outbox()
                    .messages_to(&Msisdn::parse(p).unwrap())
                    .await
                    .unwrap();
                for m in rows {
                    eprintln!(
                        "{label}: unconfirmed: {:?}, {} attempt(s), ids {:?}, SMSC has {}",
                        m.status,
                        m.attempts,
                        m.smsc_message_ids,
                        sim.messages(Some(p), 10).len()
                    );
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{label}: {missing} of {} stored check-ins never got a confirmation",
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    // …and a late resend would have had its time (resend after 1 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut histogram = [0usize; 4];
    for p in &stored {
        histogram[copies(p).min(3)] += 1;
    }
    // Receipts were asked for the confirmations and land on their rows: the
    // simulator holds each a second, keeps those it could not deliver while
    // no bind was up and delivers them after the reconnect (bounded wait).
    let first: Vec<_> = stored.iter().take(100).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (with_receipt, rows, missing) = loop {
        let (mut with_receipt, mut rows, mut missing) = (0, 0, Vec::new());
        for p in &first {
            for m in store
                .outbox()
                .messages_to(&Msisdn::parse(p).unwrap())
                .await
                .unwrap()
            {
                rows += 1;
                if store.outbox().delivery_state(m.id).await.unwrap().is_some() {
                    with_receipt += 1;
                } else {
                    let at_smsc: Vec<Vec<String>> = sim
                        .messages(Some(p), 10)
                        .iter()
                        .map(|x| x.parts.iter().map(|q| q.message_id.clone()).collect())
                        .collect();
                    missing.push(format!(
                        "{:?}, {} attempt(s), ids {:?}, at the SMSC {at_smsc:?}",
                        m.status, m.attempts, m.smsc_message_ids
                    ));
                }
            }
        }
        if missing.is_empty() || Instant::now() >= deadline {
            break (with_receipt, rows, missing);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let receipts = sim.stats().receipts;
    eprintln!(
        "{label}: {with_receipt} of the first 100 visitors' {rows} confirmations have a delivery \
         state; receipts produced {}, acknowledged {}, given up {}; our errors to deliver_sm {:?}; \
         without one: {missing:#?}",
        receipts.produced,
        receipts.delivered,
        receipts.failed,
        sim.stats().esme_errors
    );
    if receipts_all {
        assert!(missing.is_empty(), "{label}: rows without a delivery state");
    } else {
        // Dropped `submit_sm_resp`s leave copies whose SMSC id nobody knows:
        // their receipts cannot find a row.
        assert!(with_receipt > 0, "{label}: receipts are recorded");
    }
    let stats = sim.stats();
    eprintln!(
        "{label}: {} MO, {} stored; confirmations per visitor: 0 → {}, 1 → {}, 2 → {}, more → {}; \
         SMSC faults: {} responses dropped, {} disconnects, {} throttled, errors {:?}; {took:?}",
        MO_COUNT,
        stored.len(),
        histogram[0],
        histogram[1],
        histogram[2],
        histogram[3],
        stats.dropped_responses,
        stats.disconnects,
        stats.throttled,
        stats.errors,
    );
    assert!(stored.len() > MO_COUNT / 2, "{label}: most MO are stored");
    assert_eq!(histogram[0], 0, "{label}: a visitor got no confirmation");
    assert_eq!(histogram[3], 0, "{label}: a visitor got more than two");
    running.stop().await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_visitor_is_confirmed_under_the_operator_fault_profile() {
    for (n, (label, url)) in common::backends().await.into_iter().enumerate() {
        run(label, n, url, operator_faults(), false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_visitor_is_confirmed_with_disconnects_only() {
    run(
        "sqlite, disconnects only",
        5,
        None,
        disconnects_only(),
        true,
    )
    .await;
}

/// A permanent refusal is recorded with its SMPP status, not retried; a
/// temporary one (ESME_RSUBMITFAIL) is retried until it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_keep_their_status_and_temporary_ones_are_retried() {
    let sim = Simulator::new(simulator::Config::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    tokio::spawn(sim.clone().serve_smpp(listener, stop.clone()));
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), None, port);
    let options = GatewayOptions {
        notifier: NotifierConfig {
            retry_delay_min: Duration::from_millis(100),
            retry_delay_max: Duration::from_millis(200),
            poll_interval: Duration::from_millis(50),
            ..GatewayOptions::from_config(&config).notifier
        },
        ..GatewayOptions::from_config(&config)
    };
    let gateway = Gateway::start(&config, options).await.unwrap();
    assert!(gateway.link.wait_bound(1).await);
    let running = common::Running {
        label: "statuses",
        gateway,
        http: "127.0.0.1:1".parse().unwrap(),
        database_url: config.database_url.clone(),
        data_dir: dir,
    };
    let premises = running.premises("ул. Тверская, 13").await;
    let text = format!("ВХОД*{}", premises.code);
    let store = &running.gateway.store;
    let last_error = |phone: &'static str| async move {
        let m = &store
            .outbox()
            .messages_to(&Msisdn::parse(phone).unwrap())
            .await
            .unwrap()[0];
        let row: (String, Option<String>) =
            sqlx::query_as("SELECT status, last_error FROM outbox WHERE id = $1")
                .bind(m.id)
                .fetch_one(store.pool_for_tests())
                .await
                .unwrap();
        row
    };

    sim.set_faults(
        serde_json::from_value(serde_json::json!({
            "submit_error_share": 1.0, "submit_error_status": 0x0B
        }))
        .unwrap(),
    )
    .unwrap();
    sim.inject_mo(MoRequest::new("+79190000001", &text))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, error) = last_error("+79190000001").await;
        if status == "failed" {
            let error = error.unwrap_or_default();
            assert!(error.contains("ESME_RINVDSTADR (0x0B)"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "still {status}: {error:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    sim.set_faults(
        serde_json::from_value(serde_json::json!({
            "submit_error_share": 1.0, "submit_error_status": 0x45
        }))
        .unwrap(),
    )
    .unwrap();
    sim.inject_mo(MoRequest::new("+79190000002", &text))
        .await
        .unwrap();
    // Refused a few times (retried, never failed), then the SMSC recovers.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, error) = last_error("+79190000002").await;
    assert_ne!(status, "failed", "{error:?}");
    sim.set_faults(FaultProfile::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.messages(Some("+79190000002"), 10).is_empty() {
        assert!(
            Instant::now() < deadline,
            "never sent after the SMSC recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    stop.cancel();
}
