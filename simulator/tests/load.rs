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

/// The USSD load: one-shot dials, each answered by the test ESME's final
/// screen (its session TLVs echoed), under every profile.
#[tokio::test]
async fn ussd_load_completes_every_dialog() {
    let running = common::start(Config::default()).await;
    let _esme = Esme::connect(
        running.smpp,
        EsmeOptions {
            reply_to_mo: true,
            keep_delivers: false,
            ..EsmeOptions::default()
        },
    )
    .await
    .unwrap();
    for profile in ["its_session_info", "umr", "none", "p2"] {
        let config = simulator::load::UssdLoadConfig {
            rate_per_s: 200.0,
            duration: Duration::from_millis(200),
            phones: 1000,
            dial: "*7377*123456789#".into(),
            profile: Some(profile.into()),
            inflight_max: 100,
        };
        let report = simulator::load::run_ussd(&running.sim, config, &running.shutdown).await;
        assert!(report.sent >= 20, "{profile}: {report:?}");
        assert_eq!(report.completed, report.sent, "{profile}: {report:?}");
        assert_eq!(report.screen_latency.count as u64, report.sent);
    }
    let stats = running.sim.stats().ussd;
    assert_eq!(stats.completed, stats.opened);
    assert_eq!(stats.unmatched, 0);
    assert_eq!(running.sim.ussd_dialogs_open(), 0);
}
