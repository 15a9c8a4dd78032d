//! End-to-end SMS check-in capacity and latency: the simulator's load
//! generator sends `ВХОД*<code>` from distinct phones to a real `checkin`
//! process (release build, its own SMPP binds) and measures MO →
//! `deliver_sm_resp` (the row is committed by then) and MO → confirmation
//! `submit_sm`.
//!
//! Each figure is what a thing does when offered more than it can take,
//! never the offered rate:
//! 1. the protocol-only ceiling: the simulator's own ESME (as many binds as
//!    the gateway) acking and replying with no storage, offered
//!    [`Plan::over_rate_per_s`];
//! 2. the gateway offered the same rate: what it achieves (acked, and
//!    replies), and its ratio to the ceiling of the same run;
//! 3. latency: a fresh gateway offered half of what it achieved in 2.
//!
//! Also the gateway's resident memory idle and at its peak, and its CPU per MO.
//!
//! Run: `cargo bench --bench e2e` (add `CHECKIN_TEST_POSTGRES_URL=postgres://…`
//! for PostgreSQL; `./scripts/pg-test-server` starts one; `CHECKIN_BENCH_BIN=…`
//! measures another build of the `checkin` binary). Without `--bench`
//! (as `cargo test --all-targets` runs it) it does a short smoke run on SQLite.

#[path = "../checkin-core/tests/common/mod.rs"]
mod dbs;
mod support;

use std::time::Duration;

use checkin_core::StoreConfig;
use simulator::load::{LoadConfig, LoadReport};
use support::{simulator, Prepared, SMSC_WINDOW};

#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Offered MO rate of the capacity runs: above what anything here takes.
    over_rate_per_s: f64,
    duration: Duration,
    phones: usize,
    with_postgres: bool,
    /// Binds of the gateway, and ESME connections of the ceiling.
    binds: usize,
}

const FULL: Plan = Plan {
    over_rate_per_s: 100_000.0,
    duration: Duration::from_secs(10),
    // More than the gateway can take in a run: every MO it acks is a new
    // check-in, none a repeat (which would be cheaper).
    phones: 500_000,
    with_postgres: true,
    binds: 4,
};
const SMOKE: Plan = Plan {
    over_rate_per_s: 200.0,
    duration: Duration::from_secs(1),
    phones: 1_000,
    with_postgres: false,
    binds: 2,
};

/// MO the load generator keeps waiting for `deliver_sm_resp` at once. Above
/// the SMSC's windows (binds × [`SMSC_WINDOW`]), so the windows, not the
/// generator, bound what is outstanding.
const LOAD_INFLIGHT_MAX: usize = 4000;

fn load_config(plan: Plan, rate_per_s: f64, text: &str) -> LoadConfig {
    LoadConfig {
        rate_per_s,
        duration: plan.duration,
        phones: plan.phones,
        text: text.to_owned(),
        inflight_max: LOAD_INFLIGHT_MAX,
        reply_grace: Duration::from_secs(5),
        progress: false,
    }
}

/// The protocol-only ceiling: ESMEs that ack every MO and reply, no storage,
/// offered more than they take.
async fn ceiling(plan: Plan) -> LoadReport {
    let (sim, port, token) = simulator().await;
    let _esmes = support::ceiling_esmes(&sim, port, plan.binds, &token).await;
    let config = load_config(plan, plan.over_rate_per_s, "ВХОД*572-094-130");
    let report = simulator::load::run(&sim, config, &token).await;
    token.cancel();
    report
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12) // utime, stime (fields 14 and 15 of stat)
}

struct Ours {
    report: LoadReport,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    /// Gateway CPU (user + system) over the load run, in milliseconds.
    cpu_ms: u64,
}

/// The real gateway process on `database_url` (None: SQLite in its data
/// folder), offered `rate_per_s`.
async fn ours(plan: Plan, database_url: Option<String>, rate_per_s: f64) -> Ours {
    let (sim, port, token) = simulator().await;
    let prepared = Prepared::new(port, plan.binds, database_url.as_deref());
    let text = format!("ВХОД*{}", prepared.code);
    let child = prepared.spawn();
    assert!(sim.wait_for_receivers(plan.binds, &token).await);
    tokio::time::sleep(Duration::from_millis(500)).await; // settle before the idle reading
    let pid = child.id();
    let idle_rss_kib = rss_kib(pid, "VmRSS:");
    let cpu_before = cpu_ticks(pid);
    let report = simulator::load::run(&sim, load_config(plan, rate_per_s, &text), &token).await;
    let peak_rss_kib = rss_kib(pid, "VmHWM:");
    // sysconf(_SC_CLK_TCK) is 100 on Linux.
    let cpu_ms = (cpu_ticks(pid) - cpu_before) * 10;
    support::stop(child);
    token.cancel();
    Ours {
        report,
        idle_rss_kib,
        peak_rss_kib,
        cpu_ms,
    }
}

/// MO acknowledged per second.
fn acked_per_s(r: &LoadReport) -> f64 {
    r.delivered as f64 / r.elapsed_s.max(f64::EPSILON)
}

fn capacity_row(name: &str, r: &LoadReport, ceiling: Option<&LoadReport>) -> String {
    let ratio = ceiling
        .map(|c| format!("{:.0} %", 100.0 * acked_per_s(r) / acked_per_s(c)))
        .unwrap_or_else(|| "—".into());
    format!(
        "| {name} | {:.0} | {:.0} | {} / {} | {ratio} |",
        r.achieved_rate_per_s,
        acked_per_s(r),
        r.delivered,
        r.replies,
    )
}

fn latency_row(name: &str, offered: f64, r: &LoadReport) -> String {
    format!(
        "| {name} | {offered:.0} | {:.0} | {} / {} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} |",
        acked_per_s(r),
        r.delivered,
        r.replies,
        r.deliver_latency.p50_ms,
        r.deliver_latency.p99_ms,
        r.deliver_latency.max_ms,
        r.reply_latency.p50_ms,
        r.reply_latency.p99_ms,
    )
}

/// One backend's two runs: above capacity, then at half of what it achieved.
struct Backend {
    name: &'static str,
    over: Ours,
    half_rate_per_s: f64,
    half: Ours,
}

/// A fresh database for one run: `None` for SQLite (each run has its own
/// data folder), a new PostgreSQL database otherwise.
async fn fresh_db(postgres: bool) -> Option<String> {
    if !postgres {
        return None;
    }
    let db = dbs::postgres(StoreConfig::default())
        .await
        .expect("PostgreSQL was reachable a moment ago");
    db.store.close().await;
    Some(db.url)
}

/// Both runs on fresh databases: the half-load run's phones must not be
/// repeats of the first run's (a repeat costs less and gets another reply).
async fn backend(plan: Plan, name: &'static str, postgres: bool) -> Backend {
    let over = ours(plan, fresh_db(postgres).await, plan.over_rate_per_s).await;
    let half_rate_per_s = (acked_per_s(&over.report) / 2.0).max(1.0);
    let half = ours(plan, fresh_db(postgres).await, half_rate_per_s).await;
    Backend {
        name,
        over,
        half_rate_per_s,
        half,
    }
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
        let mut backends = vec![backend(plan, "SQLite", false).await];
        if plan.with_postgres {
            if let Some(db) = dbs::postgres(StoreConfig::default()).await {
                db.store.close().await;
                backends.push(backend(plan, "PostgreSQL", true).await);
            }
        }
        println!(
            "offered {} MO/s for {:?} (capacity runs), {} distinct phones, {} binds, \
             SMSC window {SMSC_WINDOW} per bind, {LOAD_INFLIGHT_MAX} MO in flight at most\n",
            plan.over_rate_per_s, plan.duration, plan.phones, plan.binds
        );
        println!("Capacity (offered more than it takes):\n");
        println!("| ESME | offered, achieved MO/s | MO acked/s | MO acked / replies | of ceiling |");
        println!("|---|---|---|---|---|");
        println!(
            "{}",
            capacity_row("protocol-only ceiling (simulator's ESME)", &ceiling, None)
        );
        for b in &backends {
            let name = format!("checkin on {}", b.name);
            println!("{}", capacity_row(&name, &b.over.report, Some(&ceiling)));
        }
        println!("\nLatency at half of the gateway's capacity (a fresh gateway):\n");
        println!("| gateway | offered MO/s | MO acked/s | MO acked / replies | MO→resp p50 / p99 / max ms | MO→reply p50 / p99 ms |");
        println!("|---|---|---|---|---|---|");
        for b in &backends {
            println!("{}", latency_row(b.name, b.half_rate_per_s, &b.half.report));
        }
        println!("\n| gateway (capacity run) | RSS idle | RSS peak (VmHWM) | CPU per MO (µs) |\n|---|---|---|---|");
        for b in &backends {
            println!(
                "| {} | {:.1} MiB | {:.1} MiB | {:.0} |",
                b.name,
                b.over.idle_rss_kib as f64 / 1024.0,
                b.over.peak_rss_kib as f64 / 1024.0,
                b.over.cpu_ms as f64 * 1000.0 / b.over.report.delivered.max(1) as f64
            );
        }
        for b in &backends {
            assert!(
                b.over.report.delivered > 0 && b.half.report.delivered > 0,
                "the gateway on {} acknowledged no MO",
                b.name
            );
        }
    });
}
