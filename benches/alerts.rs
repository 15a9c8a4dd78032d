//! Alerts per second through the whole delivery path, outbox → notifier
//! (each phone opened at its submit) → link → the bundled simulator, at an
//! unlimited contract (alerts unpaced, no per-recipient cap, the embedded
//! link's unlimited segments), beside the link's own ceiling in the same run:
//! the same gateway's `Link::submit` driven directly with the same text, the
//! same receipt request and as many submits in flight as the notifier keeps.
//!
//! The alerts queue while the kill switch holds them, then are released at
//! once; the rate is counted at the simulator, in `submit_sm` PDUs read (the
//! seed's alert is 4 UCS2 segments of 67 characters, split as the link
//! splits it), from the first to the last segment.
//!
//! Run: `cargo bench --bench alerts` (SQLite). Without `--bench` (as
//! `cargo test --all-targets` runs it) it does a short smoke run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use checkin::config::{Config, Overrides};
use checkin::gateway::{Gateway, GatewayOptions};
use checkin_core::{Msisdn, NewMessage, Priority};
use simulator::Simulator;
use smsc_link::SubmitOptions;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy)]
struct Plan {
    alerts: usize,
    /// Alternating runs of the ceiling and the whole path.
    rounds: usize,
}

const FULL: Plan = Plan {
    alerts: 10_000,
    rounds: 3,
};
const SMOKE: Plan = Plan {
    alerts: 100,
    rounds: 1,
};

/// Longest wait for one run to finish.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn config(data_dir: &std::path::Path, database_url: Option<&str>) -> Config {
    let overrides = Overrides {
        data_dir: Some(data_dir.to_owned()),
        database_url: database_url.map(str::to_owned),
        sim_smpp: Some("127.0.0.1:0".parse().unwrap()),
        sim_http: Some("127.0.0.1:0".parse().unwrap()),
        http: Some("127.0.0.1:0".parse().unwrap()),
        // The instance's own rate out of the way: only the path limits.
        send_rate: Some(1_000_000),
        ..Overrides::default()
    };
    Config::resolve(&overrides).unwrap()
}

fn submits(sim: &Simulator) -> u64 {
    sim.stats().pdus_in.get("submit_sm").copied().unwrap_or(0)
}

/// Waits until the simulator has read `base + segments` submits; returns the
/// time from the first of them to the last.
async fn until_submits(sim: Simulator, base: u64, segments: u64) -> Duration {
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut first = None;
    loop {
        let n = submits(&sim);
        if n > base && first.is_none() {
            first = Some(Instant::now());
        }
        if n >= base + segments {
            return first.map(|t| t.elapsed()).unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {segments} segments",
            n - base
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn alert_text() -> String {
    checkin_core::texts::exposure_alert(
        chrono::Utc::now() - chrono::Duration::days(1),
        &checkin_core::ServiceZone::default(),
    )
}

/// Segments of `text` on the wire, as the link splits it.
fn segments_of(text: &str) -> u64 {
    smsc_link::text::split(text, 0).map_or(1, |parts| parts.len() as u64)
}

/// The link's own ceiling: `n` submits of `text`, `in_flight` at once.
async fn link_ceiling(gateway: &Gateway, sim: &Simulator, n: usize, in_flight: usize) -> f64 {
    let text = Arc::new(alert_text());
    let segments = segments_of(&text) * n as u64;
    let base = submits(sim);
    let counting = tokio::spawn(until_submits(sim.clone(), base, segments));
    let permits = Arc::new(Semaphore::new(in_flight));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (link, text) = (gateway.link.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            let options = SubmitOptions {
                registered_delivery: true,
                ..SubmitOptions::default()
            };
            let to = format!("7915{i:07}");
            let outcome = link.submit(&to, &text, options).await;
            drop(permit);
            outcome.is_ok()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += usize::from(task.await.unwrap());
    }
    assert_eq!(ok, n, "every ceiling submit accepted");
    let span = counting.await.unwrap();
    n as f64 / span.as_secs_f64()
}

/// `n` alerts queued, held, then released: alerts/s at the simulator.
async fn whole_path(gateway: &Gateway, sim: &Simulator, n: usize, round: usize) -> (f64, Duration) {
    let store = &gateway.store;
    let text = alert_text();
    store
        .flags()
        .set_alerts_paused(true, chrono::Utc::now())
        .await
        .unwrap();
    let queueing = Instant::now();
    for i in 0..n {
        let new = NewMessage {
            recipient: Msisdn::parse(&format!("+7916{round}{i:06}")).unwrap(),
            text: text.clone(),
            priority: Priority::Alert,
        };
        store
            .outbox()
            .enqueue(&new, chrono::Utc::now())
            .await
            .unwrap();
    }
    let queued_in = queueing.elapsed();
    let base = submits(sim);
    let counting = tokio::spawn(until_submits(
        sim.clone(),
        base,
        segments_of(&text) * n as u64,
    ));
    store
        .flags()
        .set_alerts_paused(false, chrono::Utc::now())
        .await
        .unwrap();
    let span = counting.await.unwrap();
    (n as f64 / span.as_secs_f64(), queued_in)
}

async fn backend(plan: Plan, label: &str, database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), database_url);
    let mut options = GatewayOptions::from_config(&config);
    options.notifier.alert_segments_per_second = 0;
    options.notifier.recipient_daily_max = 0;
    let in_flight = options.notifier.in_flight_max;
    let gateway = Gateway::start(&config, options).await.unwrap();
    let sim = gateway.simulator.clone().unwrap().simulator;
    assert!(
        tokio::time::timeout(Duration::from_secs(20), gateway.link.wait_bound(1))
            .await
            .unwrap()
    );
    for round in 0..plan.rounds {
        let ceiling = link_ceiling(&gateway, &sim, plan.alerts, in_flight).await;
        let (path, queued_in) = whole_path(&gateway, &sim, plan.alerts, round).await;
        println!(
            "| {label} | {round} | {} | {ceiling:.0} | {path:.0} | {:.0} % | {:.1} s |",
            plan.alerts,
            100.0 * path / ceiling,
            queued_in.as_secs_f64()
        );
    }
    gateway.shutdown().await;
}

fn main() {
    let plan = if std::env::args().any(|a| a == "--bench") {
        FULL
    } else {
        SMOKE
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "| backend | round | alerts ({} segments each) | link ceiling, messages/s | \
             whole path, alerts/s | of ceiling | queueing took |",
            segments_of(&alert_text())
        );
        println!("|---|---|---|---|---|---|---|");
        backend(plan, "SQLite", None).await;
    });
}
