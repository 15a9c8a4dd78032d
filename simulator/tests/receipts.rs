//! Store-and-forward of delivery receipts: a receipt that finds no bind of
//! its `system_id` waits for one, retries survive disconnects, the queue
//! is bounded and its receipts expire.

mod common;

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::{http, start};
use rusmpp::{pdus::DeliverSm, Command, CommandStatus, Pdu};
use simulator::{
    config::{DeliveryConfig, ReceiptConfig},
    esme::{Bind, Esme, EsmeOptions},
    Config, FaultProfile, Simulator,
};

/// Receipts 50 ms after the submit, retries every 10–50 ms.
fn quick() -> Config {
    Config {
        receipts: ReceiptConfig {
            delay_ms: 50,
            ..ReceiptConfig::default()
        },
        delivery: DeliveryConfig {
            response_timeout_ms: 500,
            backoff_initial_ms: 10,
            backoff_max_ms: 50,
            ..DeliveryConfig::default()
        },
        ..Config::default()
    }
}

fn esme(bind: Bind) -> EsmeOptions {
    EsmeOptions {
        bind,
        ..EsmeOptions::default()
    }
}

fn message_id(response: &Command) -> String {
    match response.pdu() {
        Some(Pdu::SubmitSmResp(resp)) => resp.message_id().as_str().to_string(),
        other => panic!("expected submit_sm_resp, got {other:?}"),
    }
}

/// The id a receipt reports (`id:…` of its text).
fn receipted_id(deliver: &DeliverSm) -> String {
    assert_eq!(u8::from(deliver.esm_class) & 0x04, 0x04, "not a receipt");
    let text = String::from_utf8_lossy(deliver.short_message().as_ref()).to_string();
    text.strip_prefix("id:")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("receipt text {text:?}"))
        .to_string()
}

/// Polls `done` on the simulator's stats until it holds (at most `wait`).
async fn until(sim: &Simulator, wait: Duration, done: impl Fn(&simulator::StatsSnapshot) -> bool) {
    let deadline = Instant::now() + wait;
    while !done(&sim.stats()) {
        assert!(
            Instant::now() < deadline,
            "condition not met: {:?}",
            sim.stats().receipts
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Failed before: the simulator gave a receipt up when no bind of its
/// `system_id` was there at its first try.
#[tokio::test]
async fn a_receipt_due_while_unbound_is_delivered_after_the_esme_binds_again() {
    let mut config = quick();
    config.receipts.delay_ms = 200;
    let run = start(config).await;
    let first = Esme::connect(run.smpp, esme(Bind::Transceiver))
        .await
        .unwrap();
    let response = first
        .submit_text("7377", "79161234567", "hello", true)
        .await
        .unwrap();
    assert_eq!(response.status(), CommandStatus::EsmeRok);
    let id = message_id(&response);
    first.unbind().await.unwrap();
    drop(first);
    // Due and tried with nobody bound (produced and tried in one step of
    // the current-thread runtime).
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.produced == 1
    })
    .await;

    let mut again = Esme::connect(run.smpp, esme(Bind::Receiver)).await.unwrap();
    let receipt = tokio::time::timeout(Duration::from_secs(5), again.next_deliver())
        .await
        .expect("the receipt comes after the bind")
        .unwrap();
    assert_eq!(receipted_id(&receipt), id);
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.delivered == 1
    })
    .await;
    run.shutdown.cancel();
}

async fn connect_until_bound(addr: SocketAddr) -> Esme {
    // The disconnect fault may cut the bind itself; bounded retries.
    for _ in 0..1000 {
        if let Ok(esme) = Esme::connect(addr, esme(Bind::Transceiver)).await {
            return esme;
        }
    }
    panic!("never bound");
}

/// Every `deliver_sm` a closed ESME had received (and acknowledged).
async fn drain(esme: &mut Esme, seen: &mut HashMap<String, usize>) {
    while let Some(deliver) = esme.next_deliver().await {
        *seen.entry(receipted_id(&deliver)).or_default() += 1;
    }
}

/// Under disconnects only, every accepted submit that asked for a receipt
/// gets its receipt acknowledged: the simulator counts each once, the ESME
/// sees each at least once (a second copy only when the acknowledgement
/// of the first was lost to a disconnect, as with a real SMSC). Failed
/// before: only the receipts whose tries found a bind arrived (the share
/// is printed).
#[tokio::test]
async fn under_disconnects_every_receipt_is_acknowledged() {
    const SUBMITS: usize = 200;
    let mut config = quick();
    config.faults = FaultProfile {
        seed: Some(19),
        disconnect_share: 0.05,
        ..FaultProfile::default()
    };
    let run = start(config).await;
    let mut accepted = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut current = connect_until_bound(run.smpp).await;
    while accepted.len() < SUBMITS {
        let to = format!("7916{:07}", accepted.len());
        match current.submit_text("7377", &to, "confirmed", true).await {
            Ok(response) => {
                // Disconnects are the only fault: every answer is ESME_ROK.
                assert_eq!(response.status(), CommandStatus::EsmeRok);
                accepted.push(message_id(&response));
            }
            Err(_) => {
                // A submit cut by the fault was never stored: resent.
                drain(&mut current, &mut seen).await;
                current = connect_until_bound(run.smpp).await;
            }
        }
    }
    // Receipts keep coming (and the fault keeps cutting) until every one
    // produced is in, or the deadline. A reset connection may also lose a
    // `submit_sm_resp`: that message is stored, resent, and both copies
    // get a receipt, so the simulator may produce more than `SUBMITS`.
    let all_in = |seen: &HashMap<String, usize>| {
        accepted.iter().all(|id| seen.contains_key(id))
            && seen.len() as u64 >= run.sim.stats().receipts.produced
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !all_in(&seen) {
        match tokio::time::timeout(Duration::from_millis(50), current.next_deliver()).await {
            Ok(Some(deliver)) => *seen.entry(receipted_id(&deliver)).or_default() += 1,
            Ok(None) => current = connect_until_bound(run.smpp).await,
            Err(_) => {}
        }
    }
    let got = accepted.iter().filter(|id| seen.contains_key(*id)).count();
    let copies: usize = seen.values().sum::<usize>() - seen.len();
    let stats = run.sim.stats();
    eprintln!(
        "disconnects only: {got} of {} receipts acknowledged by the ESME ({:.0} %), \
         {} receipts seen, {copies} second copies, {} disconnects; simulator: {:?}",
        accepted.len(),
        100.0 * got as f64 / accepted.len() as f64,
        seen.len(),
        stats.disconnects,
        stats.receipts,
    );
    assert_eq!(got, accepted.len(), "a receipt never reached the ESME");
    // A disconnect loses the acknowledgements of at most a window's worth.
    let window = run.sim.config().limits.outbound_window_max;
    assert!(
        copies <= stats.disconnects as usize * window,
        "a second copy without a lost acknowledgement"
    );
    // The simulator counts each receipt it produced acknowledged once, and
    // the ESME has seen each.
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.delivered == s.receipts.produced
    })
    .await;
    let produced = run.sim.stats().receipts.produced;
    assert!(produced >= SUBMITS as u64, "{produced} receipts produced");
    assert_eq!(seen.len() as u64, produced, "receipts the ESME has seen");
    run.shutdown.cancel();
}

/// More receipts than `pending_max` wait for a receiver: the oldest are
/// dropped and counted, the rest delivered in order once one binds.
#[tokio::test]
async fn the_pending_queue_is_bounded() {
    let mut config = quick();
    config.receipts.delay_ms = 0;
    config.receipts.pending_max = 5;
    let run = start(config).await;
    let sender = Esme::connect(run.smpp, esme(Bind::Transmitter))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..8 {
        let to = format!("7916000000{n}");
        let response = sender.submit_text("7377", &to, "x", true).await.unwrap();
        ids.push(message_id(&response));
    }
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.produced == 8 && s.receipts.dropped == 3 && s.receipts.pending == 5
    })
    .await;
    let (status, body) = http(run.http, "GET", "/api/stats", None).await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["receipts"]["dropped"], 3, "{body}");
    assert_eq!(stats["receipts"]["pending"], 5, "{body}");

    let mut receiver = Esme::connect(run.smpp, esme(Bind::Receiver)).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        let deliver = tokio::time::timeout(Duration::from_secs(5), receiver.next_deliver())
            .await
            .expect("a queued receipt")
            .unwrap();
        got.push(receipted_id(&deliver));
    }
    assert_eq!(got, ids[3..], "the newest five, oldest first");
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.delivered == 5 && s.receipts.delivered_late == 5 && s.receipts.pending == 0
    })
    .await;
    run.shutdown.cancel();
}

/// A receipt nobody binds for is given up after `validity_ms`.
#[tokio::test]
async fn receipts_expire_after_their_validity() {
    let mut config = quick();
    config.receipts.delay_ms = 0;
    config.receipts.validity_ms = 100;
    let run = start(config).await;
    let sender = Esme::connect(run.smpp, esme(Bind::Transmitter))
        .await
        .unwrap();
    for n in 0..2 {
        let to = format!("7916000000{n}");
        sender.submit_text("7377", &to, "x", true).await.unwrap();
    }
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.expired == 2 && s.receipts.pending == 0
    })
    .await;
    let mut receiver = Esme::connect(run.smpp, esme(Bind::Receiver)).await.unwrap();
    let late = tokio::time::timeout(Duration::from_millis(300), receiver.next_deliver()).await;
    assert!(late.is_err(), "an expired receipt was delivered: {late:?}");
    assert_eq!(run.sim.stats().receipts.delivered, 0);
    run.shutdown.cancel();
}

/// A receipt answered with a temporary error is retried until the ESME
/// takes it; one refused for good (ESME_RX_P_APPN) is not retried.
#[tokio::test]
async fn temporary_refusals_are_retried_and_permanent_ones_are_not() {
    let mut config = quick();
    config.receipts.delay_ms = 0;
    let run = start(config).await;
    let esme = Esme::connect(run.smpp, esme(Bind::Transceiver))
        .await
        .unwrap();
    let errors =
        |s: &simulator::StatsSnapshot, name: &str| s.esme_errors.get(name).copied().unwrap_or(0);
    esme.set_deliver_status(CommandStatus::EsmeRxTAppn);
    esme.submit_text("7377", "79161234567", "x", true)
        .await
        .unwrap();
    until(&run.sim, Duration::from_secs(5), |s| {
        errors(s, "ESME_RX_T_APPN") >= 3
    })
    .await;
    esme.set_deliver_status(CommandStatus::EsmeRok);
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.delivered == 1 && s.receipts.delivered_late == 1 && s.receipts.pending == 0
    })
    .await;

    esme.set_deliver_status(CommandStatus::EsmeRxPAppn);
    esme.submit_text("7377", "79161234568", "x", true)
        .await
        .unwrap();
    until(&run.sim, Duration::from_secs(5), |s| {
        s.receipts.failed == 1 && s.receipts.pending == 0
    })
    .await;
    // A retry would come within the backoff (at most 50 ms): an enquire_link
    // round trip after 100 ms shows none came.
    tokio::time::sleep(Duration::from_millis(100)).await;
    esme.request(Pdu::EnquireLink).await.unwrap();
    assert_eq!(errors(&run.sim.stats(), "ESME_RX_P_APPN"), 1);
    run.shutdown.cancel();
}
