//! The notifier against a real store: priority order, retries, permanent and
//! unknown outcomes, the rate limit, and recovery of messages left in flight.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use checkin_core::{
    Keys, Msisdn, NewMessage, OutboxStatus, PhoneVault, Priority, Store, StoreConfig, SystemClock,
};
use notifier::{Notifier, NotifierConfig, SendOptions, SendOutcome, SmsSender};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A sender that answers from a per-text script (default: accepted) and reports
/// every call on a channel.
struct ScriptedSender {
    script: Mutex<HashMap<String, Vec<SendOutcome>>>,
    calls: mpsc::UnboundedSender<String>,
}

impl SmsSender for ScriptedSender {
    async fn send(&self, _to: &Msisdn, text: &str, _options: &SendOptions) -> SendOutcome {
        let outcome = {
            let mut script = self.script.lock().unwrap();
            match script.get_mut(text) {
                Some(list) if !list.is_empty() => list.remove(0),
                _ => SendOutcome::Accepted {
                    message_ids: vec![format!("id-{text}")],
                },
            }
        };
        self.calls.send(text.to_owned()).unwrap();
        outcome
    }
}

struct Harness {
    store: Store,
    _dir: tempfile::TempDir,
    calls: mpsc::UnboundedReceiver<String>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = checkin_core::store::sqlite_url_in(dir.path());
    let store = Store::open(
        &url,
        PhoneVault::new(&Keys::generate()),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    (store, dir)
}

async fn enqueue(store: &Store, text: &str, priority: Priority) -> i64 {
    let new = NewMessage {
        recipient: Msisdn::parse("+79161234567").unwrap(),
        text: text.into(),
        priority,
    };
    store
        .outbox()
        .enqueue(&new, chrono::Utc::now())
        .await
        .unwrap()
}

fn start(
    store: Store,
    dir: tempfile::TempDir,
    config: NotifierConfig,
    script: &[(&str, Vec<SendOutcome>)],
) -> Harness {
    let (notifier, calls) = notifier(&store, config, script);
    spawn(store, dir, notifier, calls)
}

/// A notifier not running yet, and the channel its sender reports calls on.
fn notifier(
    store: &Store,
    config: NotifierConfig,
    script: &[(&str, Vec<SendOutcome>)],
) -> (Notifier<ScriptedSender>, mpsc::UnboundedReceiver<String>) {
    let (tx, calls) = mpsc::unbounded_channel();
    let sender = ScriptedSender {
        script: Mutex::new(
            script
                .iter()
                .map(|(t, o)| (t.to_string(), o.clone()))
                .collect(),
        ),
        calls: tx,
    };
    let notifier = Notifier::new(store.clone(), sender, Arc::new(SystemClock), config);
    (notifier, calls)
}

/// Runs `notifier` until the harness stops it.
fn spawn(
    store: Store,
    dir: tempfile::TempDir,
    notifier: Notifier<ScriptedSender>,
    calls: mpsc::UnboundedReceiver<String>,
) -> Harness {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move { notifier.run(token).await.unwrap() });
    Harness {
        store,
        _dir: dir,
        calls,
        shutdown,
        task,
    }
}

/// A notifier subscribed to the store's outbox (its hand-off lane open),
/// not running yet.
async fn prepared(
    store: &Store,
    config: NotifierConfig,
) -> (Notifier<ScriptedSender>, mpsc::UnboundedReceiver<String>) {
    let (notifier, calls) = notifier(store, config, &[]);
    (notifier.prepare().await.unwrap(), calls)
}

impl Harness {
    /// The next `n` texts handed to the sender (bounded wait).
    async fn sends(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let text = tokio::time::timeout(Duration::from_secs(10), self.calls.recv())
                .await
                .expect("the notifier sent nothing for 10 s")
                .unwrap();
            out.push(text);
        }
        out
    }

    /// Waits (bounded) until message `id` reaches `status`.
    async fn until_status(&self, id: i64, status: OutboxStatus) -> checkin_core::OutboxMessage {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.store.outbox().message(id).await.unwrap().unwrap();
            if m.status == status {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "message {id} stuck in {:?}",
                m.status
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the notifier; returns the data folder, which must outlive any
    /// later look at the store (the file is gone once it is dropped).
    async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        self.task.await.unwrap();
        self._dir
    }
}

fn quick() -> NotifierConfig {
    NotifierConfig {
        retry_delay_min: Duration::from_millis(20),
        retry_delay_max: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
        messages_per_second: NonZeroU32::new(10_000).unwrap(),
        // Many tests send several alerts to one number.
        recipient_daily_max: 0,
        ..NotifierConfig::default()
    }
}

#[tokio::test]
async fn sends_in_priority_order() {
    let (store, dir) = store().await;
    enqueue(&store, "alert", Priority::Alert).await;
    enqueue(&store, "confirmation", Priority::Confirmation).await;
    let otp = enqueue(&store, "otp", Priority::Otp).await;
    let config = NotifierConfig {
        in_flight_max: 1,
        ..quick()
    };
    let mut h = start(store, dir, config, &[]);
    assert_eq!(h.sends(3).await, ["otp", "confirmation", "alert"]);
    let sent = h.until_status(otp, OutboxStatus::Sent).await;
    assert_eq!(sent.smsc_message_ids, ["id-otp"]);
    h.stop().await;
}

#[tokio::test]
async fn temporary_failures_are_retried_then_given_up() {
    let (store, dir) = store().await;
    let flaky = enqueue(&store, "flaky", Priority::Confirmation).await;
    let hopeless = enqueue(&store, "hopeless", Priority::Confirmation).await;
    let busy = |n| {
        (0..n)
            .map(|_| SendOutcome::Temporary {
                reason: "throttled".into(),
            })
            .collect::<Vec<_>>()
    };
    let config = NotifierConfig {
        attempts_max: 3,
        ..quick()
    };
    let mut h = start(
        store,
        dir,
        config,
        &[("flaky", busy(1)), ("hopeless", busy(100))],
    );
    // flaky: 2 calls; hopeless: 3 calls (attempts_max), in some interleaving.
    let mut calls = h.sends(5).await;
    calls.sort();
    assert_eq!(
        calls,
        ["flaky", "flaky", "hopeless", "hopeless", "hopeless"]
    );
    let ok = h.until_status(flaky, OutboxStatus::Sent).await;
    assert_eq!(ok.attempts, 2);
    let failed = h.until_status(hopeless, OutboxStatus::Failed).await;
    assert_eq!(failed.attempts, 3);
    h.stop().await;
}

/// An operator's outage (`Deferred`) costs a message time, not attempts:
/// deferred past `attempts_max`, it still goes out once its way is back.
#[tokio::test]
async fn a_deferred_message_waits_past_attempts_max_and_goes_out() {
    let (store, dir) = store().await;
    let waiting = enqueue(&store, "waiting", Priority::Alert).await;
    let down = (0..5)
        .map(|_| SendOutcome::Deferred {
            reason: "operator beeline: no bind up".into(),
        })
        .collect::<Vec<_>>();
    let config = NotifierConfig {
        attempts_max: 3,
        ..quick()
    };
    let mut h = start(store, dir, config, &[("waiting", down)]);
    assert_eq!(h.sends(6).await, ["waiting"; 6]);
    let sent = h.until_status(waiting, OutboxStatus::Sent).await;
    assert_eq!(sent.attempts, 6);
    h.stop().await;
}

#[tokio::test]
async fn rejected_and_unknown_are_not_resent() {
    let (store, dir) = store().await;
    let rejected = enqueue(&store, "rejected", Priority::Alert).await;
    let unknown = enqueue(&store, "unknown", Priority::Alert).await;
    let mut h = start(
        store,
        dir,
        quick(),
        &[
            (
                "rejected",
                vec![SendOutcome::Rejected {
                    reason: "ESME_RINVDSTADR".into(),
                }],
            ),
            (
                "unknown",
                vec![SendOutcome::Unknown {
                    reason: "response lost".into(),
                }],
            ),
        ],
    );
    let mut calls = h.sends(2).await;
    calls.sort();
    assert_eq!(calls, ["rejected", "unknown"]);
    h.until_status(rejected, OutboxStatus::Failed).await;
    h.until_status(unknown, OutboxStatus::Unknown).await;
    // Give a wrong resend every chance to happen, then check none did.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.calls.try_recv().is_err(), "nothing is sent twice");
    h.stop().await;
}

#[tokio::test]
async fn the_rate_limit_holds() {
    let (store, dir) = store().await;
    for i in 0..12 {
        enqueue(&store, &format!("m{i}"), Priority::Alert).await;
    }
    let config = NotifierConfig {
        messages_per_second: NonZeroU32::new(5).unwrap(),
        ..quick()
    };
    let started = Instant::now();
    let mut h = start(store, dir, config, &[]);
    h.sends(12).await;
    let elapsed = started.elapsed();
    // A burst of 5, then 7 more at 200 ms each: at least 1.4 s.
    assert!(
        elapsed >= Duration::from_millis(1300),
        "12 sends at 5/s took {elapsed:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn messages_left_in_flight_by_a_crash_are_sent_on_start() {
    let (store, dir) = store().await;
    let id = enqueue(&store, "orphan", Priority::Confirmation).await;
    // A previous run claimed it and died.
    let claimed = store
        .outbox()
        .claim_ready(10, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let mut h = start(store, dir, quick(), &[]);
    assert_eq!(h.sends(1).await, ["orphan"]);
    h.until_status(id, OutboxStatus::Sent).await;
    h.stop().await;
}

#[tokio::test]
async fn a_wake_sends_without_waiting_for_the_poll() {
    let (store, dir) = store().await;
    let config = NotifierConfig {
        poll_interval: Duration::from_secs(3600),
        ..quick()
    };
    let (tx, mut calls) = mpsc::unbounded_channel();
    let sender = ScriptedSender {
        script: Mutex::new(HashMap::new()),
        calls: tx,
    };
    let notifier = Notifier::new(store.clone(), sender, Arc::new(SystemClock), config);
    let waker = store.outbox();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(notifier.run(shutdown.clone()));
    // Let it find the outbox empty and go to sleep on the hour-long poll.
    tokio::time::sleep(Duration::from_millis(100)).await;
    enqueue(&store, "now", Priority::Otp).await;
    waker.wake();
    let text = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .expect("woken notifier sends at once")
        .unwrap();
    assert_eq!(text, "now");
    shutdown.cancel();
    task.await.unwrap().unwrap();
    drop(dir);
}

/// Messages claimed the way the MO pipeline claims its replies (in the
/// producer's own transaction), as the hand-off lane receives them.
async fn claimed(store: &Store, texts: &[&str]) -> Vec<checkin_core::OutboxMessage> {
    for text in texts {
        enqueue(store, text, Priority::Confirmation).await;
    }
    let claimed = store
        .outbox()
        .claim_ready(100, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), texts.len());
    claimed
}

#[tokio::test]
async fn handed_over_messages_are_sent_without_a_claim() {
    let (store, dir) = store().await;
    let config = NotifierConfig {
        // No poll or wake: only the lane can bring these.
        poll_interval: Duration::from_secs(3600),
        handoff_max: 8,
        ..quick()
    };
    let handoff = store.outbox();
    let (notifier, calls) = prepared(&store, config).await;
    // Claimed before the notifier runs: `enqueue` wakes it, and a running
    // one would claim them itself.
    let messages = claimed(&store, &["a", "b", "c"]).await;
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    let mut h = spawn(store.clone(), dir, notifier, calls);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handoff.room(), 8);
    assert!(handoff
        .hand_over(messages, chrono::Utc::now())
        .await
        .is_empty());
    let mut sent = h.sends(3).await;
    sent.sort();
    assert_eq!(sent, ["a", "b", "c"]);
    for id in ids {
        let m = h.until_status(id, OutboxStatus::Sent).await;
        assert_eq!(m.attempts, 1);
    }
    h.stop().await;
    // A stopped notifier takes nothing more.
    assert_eq!(handoff.room(), 0);
}

/// Sends with a window of one, after `c1`, `c2` were handed over and
/// `outbox` queued (text, priority).
async fn order_with_lane(outbox: &[(&str, Priority)], n: usize) -> Vec<String> {
    let (store, dir) = store().await;
    let config = NotifierConfig {
        in_flight_max: 1,
        handoff_max: 8,
        ..quick()
    };
    let handoff = store.outbox();
    let (notifier, calls) = prepared(&store, config).await;
    assert!(handoff
        .hand_over(claimed(&store, &["c1", "c2"]).await, chrono::Utc::now())
        .await
        .is_empty());
    for (text, priority) in outbox {
        enqueue(&store, text, *priority).await;
    }
    let mut h = spawn(store, dir, notifier, calls);
    let sent = h.sends(n).await;
    h.stop().await;
    sent
}

#[tokio::test]
async fn an_otp_in_the_outbox_goes_before_handed_over_confirmations() {
    let sent = order_with_lane(&[("otp", Priority::Otp)], 3).await;
    assert_eq!(sent, ["otp", "c1", "c2"]);
}

#[tokio::test]
async fn handed_over_confirmations_go_before_alerts_in_the_outbox() {
    let alerts = [("a1", Priority::Alert), ("a2", Priority::Alert)];
    let sent = order_with_lane(&alerts, 4).await;
    assert_eq!(sent, ["c1", "c2", "a1", "a2"]);
}

#[tokio::test]
async fn handed_over_but_unsent_messages_go_back_to_the_outbox_at_shutdown() {
    let (store, dir) = store().await;
    let config = NotifierConfig {
        // One send a second: most of the lane is still waiting at shutdown.
        messages_per_second: NonZeroU32::new(1).unwrap(),
        poll_interval: Duration::from_secs(3600),
        handoff_max: 8,
        ..quick()
    };
    let handoff = store.outbox();
    let (notifier, calls) = prepared(&store, config).await;
    let messages = claimed(&store, &["a", "b", "c", "d"]).await;
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    assert!(handoff
        .hand_over(messages, chrono::Utc::now())
        .await
        .is_empty());
    let h = spawn(store.clone(), dir, notifier, calls);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _dir = h.stop().await;
    let mut statuses = Vec::new();
    for id in ids {
        statuses.push(store.outbox().message(id).await.unwrap().unwrap().status);
    }
    // Nothing is left claimed by a notifier that is gone: each one was sent
    // or is due again.
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, OutboxStatus::Sent | OutboxStatus::Pending)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&OutboxStatus::Pending), "{statuses:?}");
}

#[tokio::test]
async fn any_producer_that_enqueues_wakes_the_notifier_without_knowing_it() {
    let (store, dir) = store().await;
    let config = NotifierConfig {
        poll_interval: Duration::from_secs(3600),
        ..quick()
    };
    let mut h = start(store.clone(), dir, config, &[]);
    // Let it find the outbox empty and go to sleep on the hour-long poll.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A producer with nothing but the store (the web's OTPs, the exposure job).
    enqueue(&store, "otp", Priority::Otp).await;
    assert_eq!(h.sends(1).await, ["otp"]);
    h.stop().await;
}

#[tokio::test]
async fn a_notifier_open_to_hand_overs_still_recovers_what_a_crash_left_claimed() {
    let (store, dir) = store().await;
    let id = enqueue(&store, "orphan", Priority::Confirmation).await;
    // A previous run claimed it and died.
    let claimed = store
        .outbox()
        .claim_ready(10, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // Its lane open, as the gateway runs it: nobody had to requeue first.
    let (notifier, calls) = prepared(&store, quick()).await;
    assert!(store.outbox().room() > 0);
    let mut h = spawn(store, dir, notifier, calls);
    assert_eq!(h.sends(1).await, ["orphan"]);
    h.until_status(id, OutboxStatus::Sent).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.calls.try_recv().is_err(), "nothing is sent twice");
    h.stop().await;
}

/// Runs a notifier over `store` on `clock` with a scripted sender.
fn start_on_clock(
    store: Store,
    dir: tempfile::TempDir,
    clock: Arc<checkin_core::ManualClock>,
    script: &[(&str, Vec<SendOutcome>)],
) -> Harness {
    let (tx, calls) = mpsc::unbounded_channel();
    let sender = ScriptedSender {
        script: Mutex::new(
            script
                .iter()
                .map(|(t, o)| (t.to_string(), o.clone()))
                .collect(),
        ),
        calls: tx,
    };
    let notifier = Notifier::new(store.clone(), sender, clock, quick());
    spawn(store, dir, notifier, calls)
}

#[tokio::test]
async fn an_otp_queued_while_no_bind_is_up_expires_unsent_once_older_than_its_life() {
    let (store, dir) = store().await;
    let t0 = chrono::Utc::now();
    let clock = Arc::new(checkin_core::ManualClock::new(t0));
    let new = NewMessage {
        recipient: Msisdn::parse("+79161234567").unwrap(),
        text: "otp".into(),
        priority: Priority::Otp,
    };
    let id = store.outbox().enqueue(&new, t0).await.unwrap();
    let link_down = SendOutcome::Temporary {
        reason: "no bind".into(),
    };
    let mut h = start_on_clock(store, dir, clock.clone(), &[("otp", vec![link_down])]);
    assert_eq!(h.sends(1).await, ["otp"]);
    h.until_status(id, OutboxStatus::Pending).await;
    // The bind comes back after the code's life: it is never written.
    clock.advance(chrono::Duration::minutes(5) + chrono::Duration::seconds(1));
    let expired = h.until_status(id, OutboxStatus::Expired).await;
    assert_eq!(expired.attempts, 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        h.calls.try_recv().is_err(),
        "an expired OTP reached the sender"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_alert_older_than_48_hours_expires_unsent_and_a_younger_one_goes() {
    let (store, dir) = store().await;
    let now = chrono::Utc::now();
    let clock = Arc::new(checkin_core::ManualClock::new(now));
    let mut ids = Vec::new();
    for (text, age) in [("stale", 48 * 60 + 1), ("fresh", 47 * 60)] {
        let new = NewMessage {
            recipient: Msisdn::parse("+79161234567").unwrap(),
            text: text.into(),
            priority: Priority::Alert,
        };
        let queued = now - chrono::Duration::minutes(age);
        ids.push(store.outbox().enqueue(&new, queued).await.unwrap());
    }
    let mut h = start_on_clock(store, dir, clock, &[]);
    assert_eq!(h.sends(1).await, ["fresh"]);
    h.until_status(ids[0], OutboxStatus::Expired).await;
    h.until_status(ids[1], OutboxStatus::Sent).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        h.calls.try_recv().is_err(),
        "the stale alert reached the sender"
    );
    h.stop().await;
}

/// `n` alerts queued to one recipient each (no daily cap in the way).
async fn alerts(store: &Store, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let new = NewMessage {
            recipient: Msisdn::parse(&format!("+7916{i:07}")).unwrap(),
            text: format!("alert {i}"),
            priority: Priority::Alert,
        };
        ids.push(
            store
                .outbox()
                .enqueue(&new, chrono::Utc::now())
                .await
                .unwrap(),
        );
    }
    ids
}

#[tokio::test]
async fn the_kill_switch_stops_alerts_within_a_second_while_otps_keep_flowing() {
    let (store, dir) = store().await;
    alerts(&store, 300).await;
    let config = NotifierConfig {
        alert_segments_per_second: 50,
        ..quick()
    };
    let mut h = start(store.clone(), dir, config, &[]);
    h.sends(5).await;
    store
        .flags()
        .set_alerts_paused(true, chrono::Utc::now())
        .await
        .unwrap();
    let paused_at = Instant::now();
    // Whatever was already on its way may still finish within the second.
    let mut late = Vec::new();
    while paused_at.elapsed() < Duration::from_secs(1) {
        if let Ok(Some(text)) =
            tokio::time::timeout(Duration::from_millis(50), h.calls.recv()).await
        {
            late.push((paused_at.elapsed(), text));
        }
    }
    assert!(
        late.len() <= 2,
        "alerts kept going after the switch: {late:?}"
    );
    let otp = enqueue(&store, "otp", Priority::Otp).await;
    assert_eq!(h.sends(1).await, ["otp"]);
    h.until_status(otp, OutboxStatus::Sent).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        h.calls.try_recv().is_err(),
        "an alert went out while paused"
    );
    // Released: alerts flow again.
    store
        .flags()
        .set_alerts_paused(false, chrono::Utc::now())
        .await
        .unwrap();
    assert!(h.sends(3).await.iter().all(|t| t.starts_with("alert")));
    h.stop().await;
}

#[tokio::test]
async fn alerts_keep_their_own_rate_and_never_hold_back_an_otp() {
    let (store, dir) = store().await;
    alerts(&store, 600).await;
    let config = NotifierConfig {
        // One segment each (the scripted sender's default): 20 alerts a second.
        alert_segments_per_second: 20,
        ..quick()
    };
    let mut h = start(store.clone(), dir, config, &[]);
    h.sends(1).await;
    let started = Instant::now();
    let sent = h.sends(20).await.len();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "{sent} alerts in {took:?}: faster than 20 segments/s"
    );
    let queued = Instant::now();
    enqueue(&store, "otp", Priority::Otp).await;
    loop {
        let text = h.sends(1).await.remove(0);
        if text == "otp" {
            break;
        }
    }
    let latency = queued.elapsed();
    assert!(
        latency < Duration::from_millis(300),
        "the OTP waited {latency:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn the_daily_cap_holds_a_recipients_further_alerts_until_the_next_day() {
    let (store, dir) = store().await;
    let mut ids = Vec::new();
    for text in ["a1", "a2", "a3"] {
        ids.push(enqueue(&store, text, Priority::Alert).await);
    }
    let otp = enqueue(&store, "otp", Priority::Otp).await;
    let config = NotifierConfig {
        recipient_daily_max: 2,
        in_flight_max: 1,
        ..quick()
    };
    let mut h = start(store.clone(), dir, config, &[]);
    assert_eq!(h.sends(3).await, ["otp", "a1", "a2"]);
    h.until_status(otp, OutboxStatus::Sent).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let m = store.outbox().message(ids[2]).await.unwrap().unwrap();
        if m.status == OutboxStatus::Pending
            && m.next_attempt_at > chrono::Utc::now() + chrono::Duration::minutes(1)
        {
            break m;
        }
        assert!(Instant::now() < deadline, "the third alert was not held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(held.next_attempt_at.time(), chrono::NaiveTime::MIN);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.calls.try_recv().is_err(), "a third alert went out today");
    h.stop().await;
}

#[tokio::test]
async fn only_a_few_seconds_of_alerts_are_claimed_at_once() {
    let (store, dir) = store().await;
    let ids = alerts(&store, 600).await;
    let config = NotifierConfig {
        // One segment each: 10 alerts a second, so about 20 claimed at most.
        alert_segments_per_second: 10,
        ..quick()
    };
    let mut h = start(store.clone(), dir, config, &[]);
    h.sends(3).await;
    let mut claimed = 0;
    for id in &ids {
        let m = store.outbox().message(*id).await.unwrap().unwrap();
        if m.status == OutboxStatus::Sending {
            claimed += 1;
        }
    }
    // Another instance sharing the outbox finds the rest to claim.
    assert!(
        claimed <= 2 * 10 + 1,
        "{claimed} alerts claimed at once at 10 a second"
    );
    h.stop().await;
}

/// What the slow sender saw: a send started, went out, or was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Started,
    Sent,
    Withdrawn,
}

/// A sender far behind the alerts' rate, like a link whose queue is longer
/// than its contract: each send waits `hold` before it goes, unless the
/// kill switch withdraws it first.
struct SlowSender {
    hold: Duration,
    calls: mpsc::UnboundedSender<Seen>,
}

impl SmsSender for SlowSender {
    async fn send(&self, _to: &Msisdn, _text: &str, options: &SendOptions) -> SendOutcome {
        let _ = self.calls.send(Seen::Started);
        let withdrawn = async {
            match &options.withdraw {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(self.hold) => {
                let _ = self.calls.send(Seen::Sent);
                SendOutcome::Accepted { message_ids: Vec::new() }
            }
            _ = withdrawn => {
                let _ = self.calls.send(Seen::Withdrawn);
                SendOutcome::Withdrawn { reason: "withdrawn".into() }
            }
        }
    }
}

#[tokio::test]
async fn a_pause_set_by_another_process_takes_back_alerts_the_sender_still_holds() {
    let (store, dir) = store().await;
    let ids = alerts(&store, 40).await;
    // Another process on the same database: its flag reaches this
    // notifier only through storage.
    let other = Store::open(
        &checkin_core::store::sqlite_url_in(dir.path()),
        PhoneVault::new(&Keys::generate()),
        StoreConfig::default(),
    )
    .await
    .unwrap();
    let config = NotifierConfig {
        alert_segments_per_second: 100,
        ..quick()
    };
    let (tx, mut calls) = mpsc::unbounded_channel();
    let sender = SlowSender {
        hold: Duration::from_secs(30),
        calls: tx,
    };
    let notifier = Notifier::new(store.clone(), sender, Arc::new(SystemClock), config);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let token = shutdown.clone();
        async move { notifier.run(token).await.unwrap() }
    });
    // Every alert handed to the sender, none gone out yet.
    let mut started = 0;
    while started < ids.len() {
        let seen = tokio::time::timeout(Duration::from_secs(10), calls.recv())
            .await
            .expect("the notifier hands alerts over")
            .unwrap();
        assert_eq!(seen, Seen::Started);
        started += 1;
    }
    other
        .flags()
        .set_alerts_paused(true, chrono::Utc::now())
        .await
        .unwrap();
    let paused_at = Instant::now();
    let mut withdrawn = 0;
    while withdrawn < ids.len() {
        let seen = tokio::time::timeout(Duration::from_secs(1), calls.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{withdrawn} of {} withdrawn after {:?}",
                    ids.len(),
                    paused_at.elapsed()
                )
            })
            .unwrap();
        assert_eq!(seen, Seen::Withdrawn, "nothing goes out once paused");
        withdrawn += 1;
    }
    let took = paused_at.elapsed();
    assert!(took <= Duration::from_secs(1), "withdrawn after {took:?}");
    // Back in the outbox, not failed: they go when alerts are released.
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in &ids {
        loop {
            let m = store.outbox().message(*id).await.unwrap().unwrap();
            if m.status == OutboxStatus::Pending {
                break;
            }
            assert!(Instant::now() < deadline, "alert {id} left {:?}", m.status);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    other
        .flags()
        .set_alerts_paused(false, chrono::Utc::now())
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(2), calls.recv())
        .await
        .expect("released alerts start again")
        .unwrap();
    assert_eq!(seen, Seen::Started);
    shutdown.cancel();
    task.await.unwrap();
    other.close().await;
}
