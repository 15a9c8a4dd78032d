//! The load generator against an in-process simulator and a replying ESME.

mod common;

use std::time::Duration;

use simulator::{
    esme::{Esme, EsmeOptions},
    load::{run, LoadConfig},
    Config,
};

#[tokio::test]
async fn load_run_counts_deliveries_and_replies() {
    let running = common::start(Config::default()).await;
    let _esme = Esme::connect(
        running.smpp,
        EsmeOptions {
            reply_to_mo: true,
            ..EsmeOptions::default()
        },
    )
    .await
    .unwrap();
    let config = LoadConfig {
        rate_per_s: 200.0,
        duration: Duration::from_millis(300),
        phones: 10,
        ..LoadConfig::default()
    };
    let report = run(&running.sim, config, &running.shutdown).await;
    assert!(report.sent >= 30, "{report:?}");
    assert_eq!(report.delivered, report.sent, "{report:?}");
    assert_eq!(report.failed, 0);
    assert_eq!(report.replies, report.sent, "{report:?}");
    assert_eq!(report.deliver_latency.count as u64, report.sent);
    assert!(report.deliver_latency.p50_ms <= report.deliver_latency.p99_ms);
}
