//! End-to-end SMS check-in capacity, cost and latency: the simulator's load
//! generator sends `ВХОД*<code>` from distinct phones to a real `checkin`
//! process (release build, its own SMPP binds) and measures MO →
//! `deliver_sm_resp` (the row is committed by then) and MO → confirmation
//! `submit_sm`. The gateway asks for a delivery receipt with every reply,
//! and acknowledges it.
//!
//! 1. Capacity, with one bind and with four: each figure is what a thing
//!    does when offered more than it can take, never the offered rate:
//!    - the protocol-only ceiling: the simulator's own ESME (as many binds
//!      as the gateway) acking each MO, replying with a `submit_sm` that asks
//!      for a receipt (as the gateway's replies do) and acking the receipt,
//!      with no storage, offered [`Plan::over_rate_per_s`];
//!    - the gateway offered the same rate: what it achieves (acked, replies,
//!      receipts acked), and its ratio to the ceiling of the same run;
//!    - latency: a fresh gateway offered half of what it achieved;
//!    - its resident memory idle and at its peak, and its CPU per MO.
//! 2. Steady load on one bind (window 100): exactly [`Plan::steady_rates`]
//!    offered, and what each check-in costs: gateway CPU, thread switches
//!    (`/proc/PID/task/*/status`), write transactions and statements (the
//!    gateway's `/metrics`), per MO acknowledged; and MO → resp latency.
//! 3. Latency at [`Plan::burst_rate_per_s`]: the gateway's default
//!    configuration but for the SMSC address (one bind, window 100), SMSC
//!    window 100, [`Plan::burst_runs`] runs, each on a fresh gateway: p99
//!    MO → `deliver_sm_resp` of each run.
//! 4. Several operators (issue 20), SQLite: one operator of four binds
//!    beside four operators (`mts`, `beeline`, `megafon`, `tele2`) of one
//!    bind each, the same four binds: the simulator's `Network` (one SMSC,
//!    port, account and range per operator) and the gateway with one
//!    `[[operator]]` section each, offered [`Plan::over_rate_per_s`] spread
//!    over the operators (`run_spread`); MO acked/s, replies and receipts
//!    of each run (and of each operator), four ÷ one, and the gateway's CPU
//!    per MO; [`Plan::operator_rounds`] rounds, alternating which runs
//!    first.
//!
//! Run: `cargo bench --bench e2e` (add `CHECKIN_TEST_POSTGRES_URL=postgres://…`
//! for PostgreSQL; `./scripts/pg-test-server` starts one; `CHECKIN_BENCH_BIN=…`
//! measures another build of the `checkin` binary; `CHECKIN_BENCH_LOG=<file>`
//! keeps the last gateway's log; `CHECKIN_BENCH_ONLY=capacity|steady|burst|operators`
//! one section, with a `phase:` line on stderr naming the gateway's pid for a
//! profiler). Without `--bench` (as `cargo test
//! --all-targets` runs it) it does a short smoke run on SQLite through every
//! section.

#[path = "../checkin-core/tests/common/mod.rs"]
mod dbs;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use checkin_core::StoreConfig;
use simulator::load::{LoadConfig, LoadReport};
use simulator::stats::ReceiptStats;
use simulator::{Network, Simulator};
use support::{simulator, Metrics, Prepared, SMSC_WINDOW};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Offered MO rate of the capacity runs: above what anything here takes.
    over_rate_per_s: f64,
    /// Length of the capacity runs (and of the latency runs at half of it).
    duration: Duration,
    phones: usize,
    with_postgres: bool,
    /// Binds of the gateway, and ESME connections of the ceiling, of each
    /// capacity run.
    capacity_binds: &'static [usize],
    /// Offered MO rates of the steady runs (one bind).
    steady_rates: &'static [f64],
    steady_duration: Duration,
    /// Offered MO rate of the latency runs on the default configuration.
    burst_rate_per_s: f64,
    burst_duration: Duration,
    burst_runs: usize,
    /// Gateway configurations of those latency runs.
    burst_configs: &'static [GatewayConfig],
    /// Before each steady run, how long the idle gateway's CPU and thread
    /// switches are read (what it spends doing nothing, per second).
    idle_window: Duration,
    /// Rounds of the operators section, each a run of [`OPERATOR_CONFIGS`]
    /// (in turn first and second) offered [`Plan::over_rate_per_s`].
    operator_rounds: usize,
}

const FULL: Plan = Plan {
    over_rate_per_s: 100_000.0,
    duration: Duration::from_secs(10),
    // More than the gateway can take in a run: every MO it acks is a new
    // check-in, none a repeat (which would be cheaper).
    phones: 500_000,
    with_postgres: true,
    capacity_binds: &[1, 4],
    steady_rates: &[300.0, 3_000.0],
    steady_duration: Duration::from_secs(10),
    burst_rate_per_s: 6_000.0,
    burst_duration: Duration::from_secs(5),
    burst_runs: 5,
    burst_configs: &[GatewayConfig::Defaults, GatewayConfig::Bench { binds: 1 }],
    idle_window: Duration::from_secs(3),
    operator_rounds: 5,
};
const SMOKE: Plan = Plan {
    over_rate_per_s: 400.0,
    duration: Duration::from_millis(500),
    phones: 1_000,
    with_postgres: false,
    capacity_binds: &[1],
    steady_rates: &[100.0],
    steady_duration: Duration::from_millis(500),
    // Below the default contract (50 segments/s): the replies keep up.
    burst_rate_per_s: 40.0,
    burst_duration: Duration::from_millis(500),
    burst_runs: 1,
    burst_configs: &[GatewayConfig::Defaults],
    idle_window: Duration::from_millis(200),
    operator_rounds: 1,
};

/// p99 MO → `deliver_sm_resp` the latency runs of section 3 are held to.
const P99_TARGET_MS: f64 = 20.0;

/// Four operators' MO acked/s, in % of one operator's with as many binds,
/// that section 4 is held to (issue 20).
const OPERATORS_TARGET_PERCENT: f64 = 90.0;

/// MO the load generator keeps waiting for `deliver_sm_resp` at once. Above
/// the SMSC's windows (binds × [`SMSC_WINDOW`]), so the windows, not the
/// generator, bound what is outstanding.
const LOAD_INFLIGHT_MAX: usize = 4000;

/// Longest wait, after a run, for the receipts of its replies to be
/// produced and acknowledged.
const RECEIPTS_WAIT: Duration = Duration::from_secs(5);

/// How the gateway is configured.
#[derive(Debug, Clone, Copy)]
enum GatewayConfig {
    /// [`Prepared::new`]: `binds` binds, window 100, replies not paced
    /// (`segments_per_second = 0`, a send rate of 1 000 000/s).
    Bench { binds: usize },
    /// [`Prepared::with_defaults`]: the default configuration but for the
    /// SMSC address: one bind, window 100, 50 segments/s per bind, a send
    /// rate of 100/s.
    Defaults,
    /// [`Prepared::operators`]: the first `operators` of
    /// [`support::OPERATORS`], each its own SMSC (the simulator's
    /// [`support::network`]) and `[[operator]]` section of `binds` binds,
    /// otherwise as `Bench`; the load spread over them.
    Operators { operators: usize, binds: usize },
}

/// The operators section's two gateways, the same binds in all: one
/// operator of four binds, four operators of one bind each.
const OPERATOR_CONFIGS: [GatewayConfig; 2] = [
    GatewayConfig::Operators {
        operators: 1,
        binds: 4,
    },
    GatewayConfig::Operators {
        operators: 4,
        binds: 1,
    },
];

impl GatewayConfig {
    /// Binds of each operator.
    fn binds(self) -> usize {
        match self {
            GatewayConfig::Bench { binds } | GatewayConfig::Operators { binds, .. } => binds,
            GatewayConfig::Defaults => 1,
        }
    }

    fn name(self) -> String {
        match self {
            GatewayConfig::Bench { binds } => {
                format!("{binds} bind(s), replies unpaced (segments_per_second 0)")
            }
            GatewayConfig::Defaults => "defaults but the SMSC address (1 bind)".into(),
            GatewayConfig::Operators { operators, binds } => {
                format!("{operators} operator(s) × {binds} bind(s)")
            }
        }
    }

    /// The operators' SMSCs (until the token is cancelled) and the
    /// gateway's data folder and configuration bound to them.
    async fn prepare(self, database_url: Option<&str>) -> (Smscs, Prepared, CancellationToken) {
        if let GatewayConfig::Operators { operators, binds } = self {
            let (net, token) = support::network(operators).await;
            let prepared = Prepared::operators(&net, binds, database_url);
            return (Smscs::Network(net), prepared, token);
        }
        let (sim, port, token) = simulator().await;
        let prepared = match self {
            GatewayConfig::Defaults => Prepared::with_defaults(port, database_url),
            _ => Prepared::new(port, self.binds(), database_url),
        };
        (Smscs::One(sim), prepared, token)
    }
}

/// The far end of a gateway run: one SMSC, or several operators' SMSCs.
enum Smscs {
    One(Simulator),
    Network(Network),
}

impl Smscs {
    fn simulators(&self) -> Vec<&Simulator> {
        match self {
            Smscs::One(sim) => vec![sim],
            Smscs::Network(net) => net.simulators().map(|(_, sim)| sim).collect(),
        }
    }

    /// Waits until each SMSC has `binds` sessions that can receive.
    async fn wait_bound(&self, binds: usize, token: &CancellationToken) -> bool {
        for sim in self.simulators() {
            if !sim.wait_for_receivers(binds, token).await {
                return false;
            }
        }
        true
    }

    /// Offers `config`: to the one SMSC, or spread over the operators (the
    /// rate, the phones and the MOs in flight shared out), with each
    /// operator's own report.
    async fn load(
        &self,
        mut config: LoadConfig,
        token: &CancellationToken,
    ) -> (LoadReport, BTreeMap<String, LoadReport>) {
        match self {
            Smscs::One(sim) => (
                simulator::load::run(sim, config, token).await,
                BTreeMap::new(),
            ),
            Smscs::Network(net) => {
                config.inflight_max = config.inflight_max.div_ceil(net.names().len());
                let spread = simulator::load::run_spread(net, &[], config, token).await;
                (spread.total, spread.operators)
            }
        }
    }

    /// The operators' names, in the order of [`Smscs::simulators`]; none
    /// for one SMSC.
    fn names(&self) -> Vec<String> {
        match self {
            Smscs::One(_) => Vec::new(),
            Smscs::Network(net) => net.names(),
        }
    }

    /// Each SMSC's receipt counters now.
    fn receipts(&self) -> Vec<ReceiptStats> {
        self.simulators()
            .iter()
            .map(|sim| sim.stats().receipts)
            .collect()
    }
}

fn load_config(plan: Plan, rate_per_s: f64, duration: Duration, text: &str) -> LoadConfig {
    LoadConfig {
        rate_per_s,
        duration,
        phones: plan.phones,
        numbers: Vec::new(),
        text: text.to_owned(),
        inflight_max: LOAD_INFLIGHT_MAX,
        reply_grace: Duration::from_secs(5),
        progress: false,
    }
}

/// Waits (at most [`RECEIPTS_WAIT`]) until every `submit_sm` each
/// simulator took has its receipt produced and every receipt produced is
/// answered; each one's receipt counters then.
async fn settle_receipts(sims: &[&Simulator]) -> Vec<ReceiptStats> {
    let end = tokio::time::Instant::now() + RECEIPTS_WAIT;
    loop {
        let stats: Vec<_> = sims.iter().map(|sim| sim.stats()).collect();
        let settled = stats.iter().all(|s| {
            let submits = s.pdus_in.get("submit_sm").copied().unwrap_or(0);
            let r = &s.receipts;
            r.produced >= submits && r.delivered + r.failed >= r.produced
        });
        if settled || tokio::time::Instant::now() >= end {
            return stats.into_iter().map(|s| s.receipts).collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The counters of several SMSCs' receipts added up.
fn receipts_total(each: &[ReceiptStats]) -> ReceiptStats {
    let mut total = ReceiptStats::default();
    for r in each {
        total.produced += r.produced;
        total.delivered += r.delivered;
        total.delivered_late += r.delivered_late;
        total.pending += r.pending;
        total.expired += r.expired;
        total.dropped += r.dropped;
        total.failed += r.failed;
    }
    total
}

struct Ceiling {
    report: LoadReport,
    receipts: ReceiptStats,
}

/// The protocol-only ceiling: `binds` ESMEs that ack every MO and reply
/// asking for a receipt (and ack it), no storage, offered more than they
/// take.
async fn ceiling(plan: Plan, binds: usize) -> Ceiling {
    let (sim, port, token) = simulator().await;
    let _esmes = support::ceiling_esmes_with(&sim, port, binds, true, &token).await;
    let config = load_config(
        plan,
        plan.over_rate_per_s,
        plan.duration,
        "ВХОД*572-094-130",
    );
    let report = simulator::load::run(&sim, config, &token).await;
    let receipts = receipts_total(&settle_receipts(&[&sim]).await);
    token.cancel();
    Ceiling { report, receipts }
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

/// One gateway run.
struct Ours {
    report: LoadReport,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
    /// Gateway CPU (user + system) over the load run and the receipts'
    /// settling, in milliseconds.
    cpu_ms: u64,
    /// Thread switches over the same span, and the threads that exited
    /// meanwhile (their switches are lost).
    switches: u64,
    threads_lost: usize,
    /// Wall time of that span, in seconds.
    span_s: f64,
    /// The idle gateway's CPU (ms) and thread switches per second, read
    /// over [`Plan::idle_window`] before the run (None: not read).
    idle: Option<(f64, f64)>,
    /// `/metrics` just before and just after that span.
    metrics_before: Metrics,
    metrics_after: Metrics,
    receipts: ReceiptStats,
    /// With several operators, each one's report and receipts (in
    /// [`support::OPERATORS`]' order); empty with one SMSC.
    operators: Vec<(String, LoadReport, ReceiptStats)>,
}

impl Ours {
    /// Growth of counter `name` (summed over the series with `labels`).
    fn metric_delta(&self, name: &str, labels: &[&str]) -> f64 {
        self.metrics_after.sum(name, labels) - self.metrics_before.sum(name, labels)
    }

    /// MO acknowledged: the check-ins.
    fn checkins(&self) -> f64 {
        self.report.delivered.max(1) as f64
    }

    fn cpu_us_per_checkin(&self) -> f64 {
        self.cpu_ms as f64 * 1000.0 / self.checkins()
    }
}

/// The real gateway process configured by `gateway` on `database_url`
/// (None: SQLite in its data folder), offered `rate_per_s` for `duration`.
/// With `receipts`, the measured span ends when the receipts of its replies
/// are acknowledged (at most [`RECEIPTS_WAIT`] after the replies).
#[allow(clippy::too_many_arguments)]
async fn ours(
    plan: Plan,
    gateway: GatewayConfig,
    database_url: Option<String>,
    sync: Option<&'static str>,
    rate_per_s: f64,
    duration: Duration,
    receipts: bool,
    idle_window: Duration,
) -> Ours {
    let (smscs, mut prepared, token) = gateway.prepare(database_url.as_deref()).await;
    prepared.sqlite_synchronous = sync;
    let text = format!("ВХОД*{}", prepared.code);
    let child = prepared.spawn_watched();
    assert!(smscs.wait_bound(gateway.binds(), &token).await);
    tokio::time::sleep(Duration::from_millis(500)).await; // settle before the idle reading
    let pid = child.pid();
    let idle_rss_kib = rss_kib(pid, "VmRSS:");
    let idle = if idle_window.is_zero() {
        None
    } else {
        let (cpu, switches) = (cpu_ticks(pid), support::thread_switches(pid));
        tokio::time::sleep(idle_window).await;
        let cpu_ms = (cpu_ticks(pid) - cpu) as f64 * 10.0;
        let (n, _) = support::switches_between(&switches, &support::thread_switches(pid));
        let s = idle_window.as_secs_f64();
        Some((cpu_ms / s, n as f64 / s))
    };
    // Scraped outside the measured span: serving it costs CPU and switches.
    let metrics_before = child.metrics().await;
    let switches_before = support::thread_switches(pid);
    let cpu_before = cpu_ticks(pid);
    let span_start = std::time::Instant::now();
    // For a profiler to attach (`perf record -g -p PID`).
    eprintln!("phase: {rate_per_s} MO/s for {duration:?}, gateway pid {pid}");
    let mut config = load_config(plan, rate_per_s, duration, &text);
    if !receipts {
        // Replies are paced (the default contract): not waited for.
        config.reply_grace = Duration::ZERO;
    }
    let (report, mut reports) = smscs.load(config, &token).await;
    let receipts = if receipts {
        settle_receipts(&smscs.simulators()).await
    } else {
        smscs.receipts()
    };
    // sysconf(_SC_CLK_TCK) is 100 on Linux.
    let cpu_ms = (cpu_ticks(pid) - cpu_before) * 10;
    let (switches, threads_lost) =
        support::switches_between(&switches_before, &support::thread_switches(pid));
    let span_s = span_start.elapsed().as_secs_f64();
    let peak_rss_kib = rss_kib(pid, "VmHWM:");
    let metrics_after = child.metrics().await;
    child.stop();
    token.cancel();
    Ours {
        report,
        idle_rss_kib,
        peak_rss_kib,
        cpu_ms,
        switches,
        threads_lost,
        span_s,
        idle,
        metrics_before,
        metrics_after,
        receipts: receipts_total(&receipts),
        operators: smscs
            .names()
            .into_iter()
            .zip(receipts)
            .map(|(name, receipts)| {
                let report = reports.remove(&name).unwrap_or_default();
                (name, report, receipts)
            })
            .collect(),
    }
}

/// MO acknowledged per second.
fn acked_per_s(r: &LoadReport) -> f64 {
    r.delivered as f64 / r.elapsed_s.max(f64::EPSILON)
}

/// The middle of `v` (the mean of the two middle values of an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `r`'s MO acknowledged per second ÷ `base`'s.
fn ratio(r: &LoadReport, base: &LoadReport) -> f64 {
    acked_per_s(r) / acked_per_s(base)
}

/// A gateway run's memory and CPU per MO.
fn resources_row(binds: impl std::fmt::Display, name: &str, o: &Ours) -> String {
    format!(
        "| {binds} | {name} | {:.1} MiB | {:.1} MiB | {:.0} |",
        o.idle_rss_kib as f64 / 1024.0,
        o.peak_rss_kib as f64 / 1024.0,
        o.cpu_us_per_checkin(),
    )
}

/// A row of what a run offered and achieved; its MO acked/s as a share of
/// `base`'s (a ceiling's, or another run's) when given.
fn capacity_row(
    binds: impl std::fmt::Display,
    name: &str,
    r: &LoadReport,
    receipts: &ReceiptStats,
    base: Option<&LoadReport>,
) -> String {
    let ratio = base
        .map(|c| format!("{:.0} %", 100.0 * ratio(r, c)))
        .unwrap_or_else(|| "—".into());
    format!(
        "| {binds} | {name} | {:.0} | {:.0} | {} / {} | {} / {} | {ratio} |",
        r.achieved_rate_per_s,
        acked_per_s(r),
        r.delivered,
        r.replies,
        receipts.delivered,
        receipts.produced,
    )
}

fn latency_row(binds: usize, name: &str, offered: f64, r: &LoadReport) -> String {
    format!(
        "| {binds} | {name} | {offered:.0} | {:.0} | {} / {} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} |",
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

#[derive(Debug, Clone, Copy)]
struct Backend {
    name: &'static str,
    postgres: bool,
    /// SQLite's `sqlite_synchronous` (`None`: the default, `full`).
    sync: Option<&'static str>,
}

/// A fresh database for one run: `None` for SQLite (each run has its own
/// data folder), a new PostgreSQL database otherwise.
async fn fresh_db(backend: Backend) -> Option<String> {
    if !backend.postgres {
        return None;
    }
    let db = dbs::postgres(StoreConfig::default())
        .await
        .expect("PostgreSQL was reachable a moment ago");
    db.store.close().await;
    Some(db.url)
}

/// One backend's capacity runs on `binds` binds: above capacity, then at
/// half of what it achieved, each on a fresh database (the half-load run's
/// phones must not be repeats of the first run's: a repeat costs less and
/// gets another reply).
struct Capacity {
    backend: Backend,
    over: Ours,
    half_rate_per_s: f64,
    half: Ours,
}

async fn capacity(plan: Plan, backend: Backend, binds: usize) -> Capacity {
    let gateway = GatewayConfig::Bench { binds };
    let over = ours(
        plan,
        gateway,
        fresh_db(backend).await,
        backend.sync,
        plan.over_rate_per_s,
        plan.duration,
        true,
        Duration::ZERO,
    )
    .await;
    let half_rate_per_s = (acked_per_s(&over.report) / 2.0).max(1.0);
    let half = ours(
        plan,
        gateway,
        fresh_db(backend).await,
        backend.sync,
        half_rate_per_s,
        plan.duration,
        true,
        Duration::ZERO,
    )
    .await;
    Capacity {
        backend,
        over,
        half_rate_per_s,
        half,
    }
}

fn steady_row(backend: Backend, rate: f64, o: &Ours) -> String {
    let n = o.checkins();
    let per = |name: &str, labels: &[&str]| o.metric_delta(name, labels) / n;
    let tx = "checkin_db_write_transactions_total";
    let st = "checkin_db_statements_total";
    let idle = match o.idle {
        Some((cpu_ms, switches)) => format!(
            "{cpu_ms:.1} ms/s, {switches:.0}/s over a {:.1} s span: {:.1} µs, {:.2} switches",
            o.span_s,
            cpu_ms * o.span_s * 1000.0 / n,
            switches * o.span_s / n
        ),
        None => "—".into(),
    };
    format!(
        "| {} | {rate:.0} | {:.0} | {} / {} | {} / {} | {:.1} | {:.2} ({} exited) | {:.3} | {:.2} ({:.2} / {:.2}) | {:.2} / {:.2} | {idle} |",
        backend.name,
        acked_per_s(&o.report),
        o.report.delivered,
        o.report.replies,
        o.receipts.delivered,
        o.receipts.produced,
        o.cpu_us_per_checkin(),
        o.switches as f64 / n,
        o.threads_lost,
        per(tx, &[]),
        per(st, &[]),
        per(st, &["kind=\"write\""]),
        per(st, &["kind=\"read\""]),
        o.report.deliver_latency.p50_ms,
        o.report.deliver_latency.p99_ms,
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
        let mut backends = vec![Backend {
            name: "SQLite",
            postgres: false,
            sync: None,
        }];
        if plan.with_postgres {
            if let Some(db) = dbs::postgres(StoreConfig::default()).await {
                db.store.close().await;
                backends.push(Backend {
                    name: "PostgreSQL",
                    postgres: true,
                    sync: None,
                });
            }
        }

        // `CHECKIN_BENCH_ONLY=capacity|steady|burst|operators` runs one section (to
        // profile it); the others print empty tables.
        let only = std::env::var("CHECKIN_BENCH_ONLY").ok();
        let runs = |section: &str| only.as_deref().is_none_or(|o| o == section);

        // 1. Capacity, beside the ceiling of the same binds.
        let mut capacities = Vec::new();
        for &binds in plan.capacity_binds.iter().filter(|_| runs("capacity")) {
            let ceiling = ceiling(plan, binds).await;
            let mut runs = Vec::new();
            for &backend in &backends {
                runs.push(capacity(plan, backend, binds).await);
            }
            capacities.push((binds, ceiling, runs));
        }

        // 2. Steady load, one bind.
        let mut steady = Vec::new();
        // SQLite twice: the durable default beside `normal` (no fsync).
        let steady_backends: Vec<Backend> = backends
            .iter()
            .flat_map(|&b| {
                if b.postgres {
                    vec![b]
                } else {
                    vec![
                        Backend {
                            name: "SQLite, synchronous full (default)",
                            sync: Some("full"),
                            ..b
                        },
                        Backend {
                            name: "SQLite, synchronous normal",
                            sync: Some("normal"),
                            ..b
                        },
                    ]
                }
            })
            .collect();
        for &backend in steady_backends.iter().filter(|_| runs("steady")) {
            for &rate in plan.steady_rates {
                let gateway = GatewayConfig::Bench { binds: 1 };
                let db = fresh_db(backend).await;
                let o = ours(
                    plan,
                    gateway,
                    db,
                    backend.sync,
                    rate,
                    plan.steady_duration,
                    true,
                    plan.idle_window,
                )
                .await;
                steady.push((backend, rate, o));
            }
        }

        // 3. Latency at a fixed high rate, fresh gateways.
        let mut bursts = Vec::new();
        // The default (SQLite `full`) and, beside it, `normal` (no fsync).
        let mut burst_backends = backends.clone();
        burst_backends.insert(
            1,
            Backend {
                name: "SQLite, synchronous normal",
                sync: Some("normal"),
                ..backends[0]
            },
        );
        for &gateway in plan.burst_configs.iter().filter(|_| runs("burst")) {
            for &backend in &burst_backends {
                let mut runs = Vec::new();
                for _ in 0..plan.burst_runs {
                    let db = fresh_db(backend).await;
                    let rate = plan.burst_rate_per_s;
                    let o = ours(
                        plan,
                        gateway,
                        db,
                        backend.sync,
                        rate,
                        plan.burst_duration,
                        false,
                        Duration::ZERO,
                    );
                    runs.push(o.await);
                }
                bursts.push((gateway, backend, runs));
            }
        }

        // 4. Several operators: one operator of four binds beside four
        // operators of one bind, the same rate spread over them; which runs
        // first alternates between rounds.
        let mut operator_rounds = Vec::new();
        for round in (0..plan.operator_rounds).filter(|_| runs("operators")) {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut pair = [None, None];
            for i in order {
                let o = ours(
                    plan,
                    OPERATOR_CONFIGS[i],
                    None,
                    None,
                    plan.over_rate_per_s,
                    plan.duration,
                    true,
                    Duration::ZERO,
                );
                pair[i] = Some(o.await);
            }
            let [Some(one), Some(four)] = pair else {
                unreachable!("both ran")
            };
            operator_rounds.push((one, four));
        }

        println!(
            "Plan: capacity runs offered {} MO/s for {:?} on {:?} bind(s), latency at half of \
             it for as long; steady runs {:?} MO/s for {:?} on 1 bind; {} runs at {} MO/s for \
             {:?}; {} distinct phones, SMSC window {SMSC_WINDOW} per bind, gateway window 100 \
             per bind, receipts asked for every reply (gateway and ceiling), \
             {LOAD_INFLIGHT_MAX} MO in flight at most; a fresh gateway and database per run; \
             backends: {}; {} round(s) of the operators section.\n",
            plan.over_rate_per_s,
            plan.duration,
            plan.capacity_binds,
            plan.steady_rates,
            plan.steady_duration,
            plan.burst_runs,
            plan.burst_rate_per_s,
            plan.burst_duration,
            plan.phones,
            backends
                .iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
                .join(", "),
            plan.operator_rounds,
        );

        println!("Capacity (offered more than it takes), beside the protocol-only ceiling of the same binds:\n");
        println!("| binds | ESME | offered, achieved MO/s | MO acked/s | MO acked / replies | receipts acked / produced | of ceiling |");
        println!("|---|---|---|---|---|---|---|");
        for (binds, ceiling, runs) in &capacities {
            println!(
                "{}",
                capacity_row(
                    *binds,
                    "protocol-only ceiling (simulator's ESME, receipts asked)",
                    &ceiling.report,
                    &ceiling.receipts,
                    None
                )
            );
            for c in runs {
                let name = format!("checkin on {}", c.backend.name);
                println!(
                    "{}",
                    capacity_row(
                        *binds,
                        &name,
                        &c.over.report,
                        &c.over.receipts,
                        Some(&ceiling.report)
                    )
                );
            }
        }

        println!("\nLatency at half of the gateway's capacity (a fresh gateway):\n");
        println!("| binds | gateway | offered MO/s | MO acked/s | MO acked / replies | MO→resp p50 / p99 / max ms | MO→reply p50 / p99 ms |");
        println!("|---|---|---|---|---|---|---|");
        for (binds, _, runs) in &capacities {
            for c in runs {
                println!(
                    "{}",
                    latency_row(*binds, c.backend.name, c.half_rate_per_s, &c.half.report)
                );
            }
        }

        println!("\n| binds | gateway (capacity run) | RSS idle | RSS peak (VmHWM) | CPU per MO (µs) |\n|---|---|---|---|---|");
        for (binds, _, runs) in &capacities {
            for c in runs {
                println!("{}", resources_row(binds, c.backend.name, &c.over));
            }
        }

        println!(
            "\nSteady load, 1 bind, window 100, receipts on, {:?} a run; per check-in (MO \
             acknowledged), over the run until its receipts are acknowledged:\n",
            plan.steady_duration
        );
        println!("| gateway | offered MO/s | MO acked/s | MO acked / replies | receipts acked / produced | CPU µs | thread switches (threads exited) | write transactions | statements (write / read) | MO→resp p50 / p99 ms | idle gateway: CPU, switches; their share per check-in over the span |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for (backend, rate, o) in &steady {
            println!("{}", steady_row(*backend, *rate, o));
        }
        // Issue 23: what a check-in costs at the operator, in segments.
        println!(
            "\nSMS segments per check-in (`checkin_sms_segments_total{{outcome=\"accepted\"}}` \
             over the run ÷ MO acknowledged):\n"
        );
        for (backend, rate, o) in &steady {
            let per = |kind: &str| {
                let kind = format!("kind=\"{kind}\"");
                o.metric_delta(
                    "checkin_sms_segments_total",
                    &["outcome=\"accepted\"", kind.as_str()],
                ) / o.checkins()
            };
            println!(
                "- {} at {rate:.0} MO/s: {:.3} (confirmation {:.3}, repeat {:.3}, other {:.3})",
                backend.name,
                o.metric_delta("checkin_sms_segments_total", &["outcome=\"accepted\""])
                    / o.checkins(),
                per("confirmation"),
                per("repeat"),
                per("other"),
            );
        }

        println!(
            "\nLatency at {} MO/s for {:?}, SMSC window {SMSC_WINDOW}, a fresh gateway each run:\n",
            plan.burst_rate_per_s, plan.burst_duration
        );
        println!("| gateway configuration | backend | run | MO acked/s | MO acked / replies | MO→resp p50 / p99 / max ms | p99 ≤ {P99_TARGET_MS} ms |");
        println!("|---|---|---|---|---|---|---|");
        let mut summaries = Vec::new();
        for (gateway, backend, runs) in &bursts {
            for (i, o) in runs.iter().enumerate() {
                let r = &o.report;
                println!(
                    "| {} | {} | {} | {:.0} | {} / {} | {:.2} / {:.2} / {:.2} | {} |",
                    gateway.name(),
                    backend.name,
                    i + 1,
                    acked_per_s(r),
                    r.delivered,
                    r.replies,
                    r.deliver_latency.p50_ms,
                    r.deliver_latency.p99_ms,
                    r.deliver_latency.max_ms,
                    if r.deliver_latency.p99_ms <= P99_TARGET_MS {
                        "yes"
                    } else {
                        "no"
                    },
                );
            }
            let met = runs
                .iter()
                .filter(|o| o.report.deliver_latency.p99_ms <= P99_TARGET_MS)
                .count();
            summaries.push(format!(
                "{}, {}: p99 ≤ {P99_TARGET_MS} ms in {met} of {} runs",
                gateway.name(),
                backend.name,
                runs.len()
            ));
        }
        println!();
        for s in summaries {
            println!("- {s}");
        }

        println!(
            "\nSeveral operators (issue 20), SQLite, {} beside {}: offered {} MO/s \
             for {:?}, spread over the operators (each an equal share of the rate, of the \
             {LOAD_INFLIGHT_MAX} MO in flight and of the phones, drawn from its range), receipts \
             on, replies unpaced, a fresh gateway and database per run; rounds alternate which \
             runs first:\n",
            OPERATOR_CONFIGS[0].name(),
            OPERATOR_CONFIGS[1].name(),
            plan.over_rate_per_s,
            plan.duration
        );
        println!("| round | gateway | offered, achieved MO/s | MO acked/s | MO acked / replies | receipts acked / produced | of one operator's |");
        println!("|---|---|---|---|---|---|---|");
        for (round, (one, four)) in (1..).zip(&operator_rounds) {
            let [one_name, four_name] = OPERATOR_CONFIGS.map(GatewayConfig::name);
            let row = |name: &str, o: &Ours, base| capacity_row(round, name, &o.report, &o.receipts, base);
            println!("{}", row(&one_name, one, None));
            println!("{}", row(&four_name, four, Some(&one.report)));
            for (name, r, receipts) in &four.operators {
                println!("{}", capacity_row(round, &format!("… of which {name}"), r, receipts, None));
            }
        }
        println!("\n| round | gateway | RSS idle | RSS peak (VmHWM) | CPU per MO (µs) |\n|---|---|---|---|---|");
        for (round, (one, four)) in (1..).zip(&operator_rounds) {
            println!("{}", resources_row(round, &OPERATOR_CONFIGS[0].name(), one));
            println!("{}", resources_row(round, &OPERATOR_CONFIGS[1].name(), four));
        }
        if !operator_rounds.is_empty() {
            let ratios: Vec<f64> = operator_rounds
                .iter()
                .map(|(one, four)| ratio(&four.report, &one.report))
                .collect();
            let cpu = |pick: fn(&(Ours, Ours)) -> &Ours| {
                median(operator_rounds.iter().map(|p| pick(p).cpu_us_per_checkin()).collect())
            };
            let ratio = median(ratios.clone());
            println!(
                "\n- MO acked/s, four operators ÷ one: {} (median {:.1} %; ≥ {OPERATORS_TARGET_PERCENT} %: {})\n\
                 - gateway CPU per MO (medians): one operator {:.0} µs, four {:.0} µs",
                ratios
                    .iter()
                    .map(|r| format!("{:.1} %", 100.0 * r))
                    .collect::<Vec<_>>()
                    .join(", "),
                100.0 * ratio,
                if 100.0 * ratio >= OPERATORS_TARGET_PERCENT {
                    "yes"
                } else {
                    "no"
                },
                cpu(|p| &p.0),
                cpu(|p| &p.1),
            );
        }

        // Every measurement took place, whatever the figures.
        for (binds, ceiling, runs) in &capacities {
            assert!(
                ceiling.report.delivered > 0 && ceiling.receipts.delivered > 0,
                "the ceiling on {binds} bind(s) acked no MO or no receipt"
            );
            for c in runs {
                assert!(
                    c.over.report.delivered > 0 && c.half.report.delivered > 0,
                    "the gateway on {} acknowledged no MO",
                    c.backend.name
                );
            }
        }
        for (backend, rate, o) in &steady {
            assert!(
                o.report.delivered > 0
                    && o.receipts.delivered > 0
                    && o.switches > 0
                    && o.metric_delta("checkin_db_write_transactions_total", &[]) > 0.0
                    && o.metric_delta("checkin_db_statements_total", &[]) > 0.0,
                "the steady run at {rate} MO/s on {} measured nothing",
                backend.name
            );
        }
        for o in operator_rounds.iter().flat_map(|(one, four)| [one, four]) {
            assert!(
                o.report.delivered > 0 && o.receipts.delivered > 0,
                "the operators run acknowledged no MO or no receipt"
            );
            for (name, r, receipts) in &o.operators {
                assert!(
                    r.delivered > 0 && receipts.delivered > 0,
                    "operator {name} acknowledged no MO or no receipt"
                );
            }
        }
        for (_, backend, runs) in &bursts {
            for o in runs {
                assert!(
                    o.report.delivered > 0,
                    "the gateway on {} acknowledged no MO",
                    backend.name
                );
            }
        }
    });
}
