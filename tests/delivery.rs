//! Delivery through the running gateway and its simulator: an OTP's latency
//! (queued → submitted to the SMSC) while 10 000 alerts queue ahead of it,
//! on both backends. The figure is printed (see BENCHMARKS.md).

mod common;

use std::time::{Duration, Instant};

use checkin::gateway::{Gateway, GatewayOptions};
use checkin_core::{Msisdn, NewMessage, Priority};

const ALERTS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_overtakes_ten_thousand_queued_alerts_at_the_alerts_rate() {
    // Alerts at their own rate (the default contract, 50 segments/s).
    for (label, db) in common::backends().await {
        otp_behind_alerts(label, db, None, Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_overtakes_ten_thousand_unpaced_alerts() {
    // The worst case: alerts not paced by their own rate, only by the
    // instance's (1000 messages/s here), so they fill the notifier's 256
    // sends in flight and the link's queue, which the OTP waits behind.
    for (label, db) in common::backends().await {
        otp_behind_alerts(label, db, Some(0), Duration::from_secs(3)).await;
    }
}

/// Queues 10 000 alerts (held by the kill switch, then released), then an
/// OTP; asserts the OTP reaches the simulator within `bound`.
async fn otp_behind_alerts(
    label: &str,
    db: Option<String>,
    alert_segments_per_second: Option<u32>,
    bound: Duration,
) {
    {
        let dir = tempfile::tempdir().unwrap();
        let config = common::config(dir.path(), db.as_deref());
        let mut options = GatewayOptions::from_config(&config);
        if let Some(rate) = alert_segments_per_second {
            options.notifier.alert_segments_per_second = rate;
        }
        options.notifier.recipient_daily_max = 0;
        let gateway = Gateway::start(&config, options).await.unwrap();
        let sim = gateway.simulator.clone().unwrap().simulator;
        tokio::time::timeout(Duration::from_secs(20), gateway.link.wait_bound(1))
            .await
            .unwrap();
        let store = gateway.store.clone();
        // The seed's alert: 3 UCS2 segments.
        let alert_text = checkin_core::texts::exposure_alert(
            chrono::Utc::now() - chrono::Duration::days(1),
            &checkin_core::ServiceZone::default(),
        );
        // Held by the kill switch while they queue (the queueing is slower
        // than the sending), then released all at once.
        store
            .flags()
            .set_alerts_paused(true, chrono::Utc::now())
            .await
            .unwrap();
        let queueing = tokio::spawn({
            let store = store.clone();
            async move {
                common::enqueue_alerts(&store, &alert_text, ALERTS, |i| format!("+7916{i:07}"))
                    .await;
            }
        });
        queueing.await.unwrap();
        store
            .flags()
            .set_alerts_paused(false, chrono::Utc::now())
            .await
            .unwrap();
        // Alerts are flowing and thousands are still queued.
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim.messages(None, 100).len() < 20 {
            assert!(Instant::now() < deadline, "{label}: no alert went out");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut mt = sim.subscribe_mt();
        let otp_to = "+79990000001";
        let queued = Instant::now();
        let new = NewMessage {
            recipient: Msisdn::parse(otp_to).unwrap(),
            text: "Код для входа: 123456".into(),
            priority: Priority::Otp,
        };
        store
            .outbox()
            .enqueue(&new, chrono::Utc::now())
            .await
            .unwrap();
        let latency = loop {
            let message = tokio::time::timeout(Duration::from_secs(30), mt.recv())
                .await
                .expect("the OTP reached the simulator within 30 s");
            match message {
                Ok(m) if m.to.ends_with("79990000001") => break queued.elapsed(),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{label}: {e}"),
            }
        };
        let sent = sim.messages(None, 100_000).len();
        let pacing = match alert_segments_per_second {
            Some(0) => "alerts unpaced".to_owned(),
            Some(rate) => format!("alerts at {rate} segments/s"),
            None => format!(
                "alerts at {} segments/s",
                GatewayOptions::from_config(&config)
                    .notifier
                    .alert_segments_per_second
            ),
        };
        eprintln!(
            "{label}, {pacing}: OTP queued → at the SMSC in {latency:?}, {sent} of {ALERTS} alerts sent by then"
        );
        assert!(
            sent < ALERTS,
            "{label}: the alerts were all gone before the OTP"
        );
        assert!(
            latency < bound,
            "{label}: the OTP waited {latency:?} behind alerts"
        );
        gateway.shutdown().await;
    }
}
