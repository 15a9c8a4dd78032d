//! USSD check-in capacity and screen latency, beside the SMS figure of the
//! same run: the simulator plays the operator's USSD gateway and dials the
//! one-shot `*7377*<code>#` from distinct phones into a real `checkin`
//! process (release build, its own SMPP binds); each dialog ends with the
//! gateway's final screen (and a confirmation SMS, which the gateway sends
//! too).
//!
//! Each capacity figure is what a thing does when offered more than it can
//! take, never the offered rate:
//! 1. the protocol-only ceiling: the simulator's own ESME (as many binds as
//!    the gateway) ending every dial with a screen at once, no storage;
//! 2. the gateway offered the same: final screens per second, and its
//!    ratio to the ceiling of the same run;
//! 3. SMS in the same run: the gateway (fresh) offered more MO than it
//!    takes, MO acknowledged per second (as `benches/e2e.rs` measures it);
//! 4. screen latency: a fresh gateway offered half of what it achieved in 2.
//!
//! Run: `cargo bench --bench ussd` (`CHECKIN_BENCH_BIN=…` measures another
//! build). Without `--bench` (as `cargo test --all-targets` runs it) it does
//! a short smoke run.

mod support;

use std::time::Duration;

use simulator::load::{LoadConfig, LoadReport, UssdLoadConfig, UssdLoadReport};
use support::{simulator, Prepared, SMSC_WINDOW};

#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Offered dials (and MO) per second of the capacity runs: above what
    /// anything here takes.
    over_rate_per_s: f64,
    duration: Duration,
    phones: usize,
    binds: usize,
}

const FULL: Plan = Plan {
    over_rate_per_s: 100_000.0,
    duration: Duration::from_secs(10),
    // More than the gateway can take in a run: every dial is a new
    // check-in, none a repeat.
    phones: 500_000,
    binds: 4,
};
const SMOKE: Plan = Plan {
    over_rate_per_s: 200.0,
    duration: Duration::from_secs(1),
    phones: 1_000,
    binds: 2,
};

/// Dialogs awaiting their screen at once. Below the 256 session numbers of
/// the default `its_session_info` profile, above what the SMSC windows hold
/// (binds × [`SMSC_WINDOW`] is 400 `deliver_sm`, but a dialog holds its
/// slot until the screen, not the response).
const USSD_INFLIGHT_MAX: usize = 250;
/// MO awaiting `deliver_sm_resp` at once in the SMS run (as in `e2e.rs`).
const MO_INFLIGHT_MAX: usize = 4000;

fn ussd_config(plan: Plan, rate_per_s: f64, code: &str) -> UssdLoadConfig {
    UssdLoadConfig {
        rate_per_s,
        duration: plan.duration,
        phones: plan.phones,
        dial: format!("*7377*{}#", code.replace('-', "")),
        profile: None,
        inflight_max: USSD_INFLIGHT_MAX,
    }
}

/// The protocol-only ceiling: ESMEs that end every dial with a screen.
async fn ceiling(plan: Plan) -> UssdLoadReport {
    let (sim, port, token) = simulator().await;
    let _esmes = support::ceiling_esmes(&sim, port, plan.binds, &token).await;
    let report = simulator::load::run_ussd(
        &sim,
        ussd_config(plan, plan.over_rate_per_s, "572094130"),
        &token,
    )
    .await;
    token.cancel();
    report
}

/// What one gateway run measured.
enum Load {
    Ussd(UssdLoadReport),
    Sms(LoadReport),
}

/// A fresh gateway (SQLite in its own data folder) with one premises,
/// offered `rate_per_s` dials (`ussd`) or MO.
async fn gateway(plan: Plan, rate_per_s: f64, ussd: bool) -> Load {
    let (sim, port, token) = simulator().await;
    let prepared = Prepared::new(port, plan.binds, None);
    let code = prepared.code.clone();
    let child = prepared.spawn();
    assert!(sim.wait_for_receivers(plan.binds, &token).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let load = if ussd {
        Load::Ussd(
            simulator::load::run_ussd(&sim, ussd_config(plan, rate_per_s, &code), &token).await,
        )
    } else {
        let config = LoadConfig {
            rate_per_s,
            duration: plan.duration,
            phones: plan.phones,
            numbers: Vec::new(),
            text: format!("ВХОД*{code}"),
            inflight_max: MO_INFLIGHT_MAX,
            reply_grace: Duration::from_secs(5),
            progress: false,
        };
        Load::Sms(simulator::load::run(&sim, config, &token).await)
    };
    support::stop(child);
    token.cancel();
    load
}

async fn ussd_run(plan: Plan, rate_per_s: f64) -> UssdLoadReport {
    match gateway(plan, rate_per_s, true).await {
        Load::Ussd(r) => r,
        Load::Sms(_) => unreachable!("asked for a ussd run"),
    }
}

fn ussd_row(name: &str, r: &UssdLoadReport, ceiling: Option<&UssdLoadReport>) -> String {
    let ratio = ceiling
        .map(|c| {
            format!(
                "{:.0} %",
                100.0 * r.completed_per_s / c.completed_per_s.max(1e-9)
            )
        })
        .unwrap_or_else(|| "—".into());
    format!(
        "| {name} | {:.0} | {} / {} / {} | {:.2} / {:.2} / {:.2} | {ratio} |",
        r.completed_per_s,
        r.completed,
        r.questions,
        r.failed,
        r.screen_latency.p50_ms,
        r.screen_latency.p99_ms,
        r.screen_latency.max_ms,
    )
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
        let ceiling = ceiling(plan).await;
        let over = ussd_run(plan, plan.over_rate_per_s).await;
        let Load::Sms(sms) = gateway(plan, plan.over_rate_per_s, false).await else {
            unreachable!("asked for an sms run")
        };
        let half_rate_per_s = (over.completed_per_s / 2.0).max(1.0);
        let half = ussd_run(plan, half_rate_per_s).await;
        println!(
            "offered {} dials/s and MO/s for {:?} (capacity runs), {} distinct phones, {} binds, \
             SMSC window {SMSC_WINDOW} per bind, {USSD_INFLIGHT_MAX} dialogs awaiting a screen at most, \
             profile its_session_info, SQLite\n",
            plan.over_rate_per_s, plan.duration, plan.phones, plan.binds
        );
        println!("| USSD one-shot `*7377*<code>#` | final screens/s | final / questions / failed | dial → screen p50 / p99 / max ms | of ceiling |");
        println!("|---|---|---|---|---|");
        println!("{}", ussd_row("protocol-only ceiling (simulator's ESME)", &ceiling, None));
        println!("{}", ussd_row("checkin, offered more than it takes", &over, Some(&ceiling)));
        println!(
            "{}",
            ussd_row(&format!("checkin at half of that ({half_rate_per_s:.0}/s offered)"), &half, None)
        );
        let sms_acked_per_s = sms.delivered as f64 / sms.elapsed_s.max(f64::EPSILON);
        println!(
            "\nSMS in the same run (fresh gateway, offered {} MO/s): {sms_acked_per_s:.0} MO acked/s, \
             {} acked / {} replies; USSD final screens per SMS MO acked: {:.2}",
            plan.over_rate_per_s,
            sms.delivered,
            sms.replies,
            over.completed_per_s / sms_acked_per_s.max(1e-9)
        );
        assert!(over.completed > 0, "the gateway completed no USSD dialog");
        assert!(half.completed > 0, "the gateway completed no USSD dialog");
    });
}
