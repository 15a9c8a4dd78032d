//! The link's metrics through the `metrics` facade: a recording recorder
//! (global, so this file holds one test) sees binds, in-flight, outcomes,
//! throttle events, round-trip latencies, and what a hostile SMSC sent,
//! every series under its link's `operator` label.

mod common;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use common::{link_config, recorder, start_sim, Fake, WAIT};
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use rusmpp::CommandStatus;
use simulator::{Config, FaultProfile};
use smsc_link::{
    telemetry::{self, Refused},
    Link, LinkConfig, SubmitOptions, SubmitOutcome,
};

/// Counts histogram samples.
#[derive(Debug, Default)]
struct Samples(AtomicU64);

impl HistogramFn for Samples {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every series by `name{label=value,…}`.
#[derive(Debug, Clone, Default)]
struct Recording {
    counters: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
    gauges: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
    histograms: Arc<Mutex<HashMap<String, Arc<Samples>>>>,
}

fn series(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_string()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Recorder for Recording {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut map = self.counters.lock().expect("lock");
        Counter::from_arc(Arc::clone(map.entry(series(key)).or_default()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut map = self.gauges.lock().expect("lock");
        Gauge::from_arc(Arc::clone(map.entry(series(key)).or_default()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut map = self.histograms.lock().expect("lock");
        Histogram::from_arc(Arc::clone(map.entry(series(key)).or_default()))
    }
}

impl Recording {
    fn counter(&self, name: &str) -> u64 {
        let map = self.counters.lock().expect("lock");
        map.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn gauge(&self, name: &str) -> f64 {
        let map = self.gauges.lock().expect("lock");
        map.get(name)
            .map_or(0.0, |g| f64::from_bits(g.load(Ordering::Relaxed)))
    }

    fn samples(&self, name: &str) -> u64 {
        let map = self.histograms.lock().expect("lock");
        map.get(name).map_or(0, |h| h.0.load(Ordering::Relaxed))
    }
}

#[tokio::test]
async fn metrics_count_binds_outcomes_throttles_and_latency() {
    let recording = Recording::default();
    metrics::set_global_recorder(recording.clone()).expect("first recorder");

    let sim = start_sim(Config {
        faults: FaultProfile {
            throttle_per_s: Some(20),
            ..FaultProfile::default()
        },
        ..Config::default()
    })
    .await;
    let (handler, _events) = recorder(0);
    let link = Link::start(
        LinkConfig {
            window_max: 5,
            operator: "mts".into(),
            ..link_config(sim.smpp)
        },
        handler.clone(),
        handler,
    )
    .expect("config");
    assert!(tokio::time::timeout(WAIT, link.wait_bound(1))
        .await
        .expect("bound"));
    let binds = format!("{}{{operator=mts}}", telemetry::BINDS);
    assert_eq!(recording.gauge(&binds), 1.0);

    let mut replies = Vec::new();
    for i in 0..40 {
        let reply = link
            .enqueue("+79161234567", &format!("n{i}"), &SubmitOptions::default())
            .await
            .expect("queued");
        replies.push(reply);
    }
    for reply in replies {
        assert!(matches!(
            reply.await.expect("answered"),
            Ok(SubmitOutcome::Accepted { .. })
        ));
    }
    let accepted = format!("{}{{outcome=accepted,operator=mts}}", telemetry::SUBMITS);
    assert_eq!(recording.counter(&accepted), 40);
    let throttled = format!("{}{{operator=mts}}", telemetry::THROTTLED);
    assert!(recording.counter(&throttled) > 0);
    assert_eq!(recording.counter(&throttled), sim.sim.stats().throttled);
    let rtt = format!("{}{{operator=mts}}", telemetry::SUBMIT_RTT);
    assert!(recording.samples(&rtt) >= 40);
    let in_flight = format!("{}{{operator=mts}}", telemetry::IN_FLIGHT);
    assert_eq!(recording.gauge(&in_flight), 0.0);

    link.shutdown().await;
    assert_eq!(recording.gauge(&binds), 0.0);

    // A hostile SMSC: a stray response, an unknown request, then garbage.
    let refused = |kind: Refused| {
        recording.counter(&format!(
            "{}{{kind={},operator=hostile}}",
            telemetry::PROTOCOL_ERRORS,
            kind.label()
        ))
    };
    let before = [
        Refused::UnexpectedResponse,
        Refused::UnknownCommand,
        Refused::BadLength,
    ]
    .map(refused);
    let fake = Fake::start().await;
    let (handler, _events) = recorder(0);
    let hostile = LinkConfig {
        operator: "hostile".into(),
        ..link_config(fake.addr)
    };
    let link = Link::start(hostile, handler.clone(), handler).expect("config");
    let mut conn = fake.accept(CommandStatus::EsmeRok).await;
    let words = |w: [u32; 4]| w.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
    let mut bytes = words([16, 0x8000_0000, 0, 4_242]);
    bytes.extend(words([16, 0x0000_0555, 0, 4_243]));
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    conn.write_raw(&bytes).await;
    conn.until_closed().await;
    let after = [
        Refused::UnexpectedResponse,
        Refused::UnknownCommand,
        Refused::BadLength,
    ]
    .map(refused);
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2]
        ],
        [1, 1, 1]
    );
    link.shutdown().await;
}
