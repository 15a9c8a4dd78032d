//! The MO load generator: injects MO messages at a target rate from many
//! phones into a running simulator, and measures MO → `deliver_sm_resp` and
//! MO → reply `submit_sm` (the ESME answering the phone) latencies. Its USSD
//! twin ([`run_ussd`]) dials one-shot codes and measures dial → screen.
//!
//! It runs in-process against a [`Simulator`], so a benchmark or a test can
//! call [`run`] directly; `simulator load` wraps it with live progress.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use tokio::{sync::Semaphore, time::Instant};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{lock, network::Network, store::digits, MoRequest, Simulator, UssdDial};

/// Latency samples kept per kind; later samples are not recorded.
pub const SAMPLES_MAX: usize = 1_000_000;

/// MOs per phone remembered while waiting for replies; older ones are
/// forgotten (their replies then match a newer MO).
pub const WAITING_PER_PHONE_MAX: usize = 64;

/// What to generate.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Target MO rate per second.
    pub rate_per_s: f64,
    /// How long to inject.
    pub duration: Duration,
    /// Distinct sender numbers (`+7900…`), used round-robin.
    pub phones: usize,
    /// Sender numbers used round-robin instead of `phones` generated ones
    /// (a spread over operators draws them from each one's ranges).
    pub numbers: Vec<String>,
    /// Text of every MO.
    pub text: String,
    /// MOs waiting for their `deliver_sm_resp` at once; a tick finding
    /// none free is counted as `skipped`.
    pub inflight_max: usize,
    /// Time to wait for replies after the last MO.
    pub reply_grace: Duration,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            rate_per_s: 100.0,
            duration: Duration::from_secs(10),
            phones: 1000,
            numbers: Vec::new(),
            text: "ВХОД*123-456-789".into(),
            inflight_max: 1000,
            reply_grace: Duration::from_secs(2),
            progress: false,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (microseconds).
    pub fn of(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i] as f64 / 1000.0
        };
        Self {
            count: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Outcome of a load run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// MO injected.
    pub sent: u64,
    /// MO acknowledged with ESME_ROK.
    pub delivered: u64,
    /// MO refused, unanswered or without a receiver.
    pub failed: u64,
    /// Ticks with no free in-flight slot.
    pub skipped: u64,
    /// Replies (MT to a phone with an MO outstanding) seen.
    pub replies: u64,
    /// Injection time in seconds.
    pub elapsed_s: f64,
    /// `sent / elapsed_s`.
    pub achieved_rate_per_s: f64,
    /// MO → `deliver_sm_resp`.
    pub deliver_latency: Percentiles,
    /// MO → reply `submit_sm`.
    pub reply_latency: Percentiles,
}

#[derive(Debug, Default)]
struct Shared {
    report: LoadReport,
    deliver_us: Vec<u64>,
    reply_us: Vec<u64>,
    /// Phone digits → injection times of its MOs still waiting for a
    /// reply, oldest first (at most [`WAITING_PER_PHONE_MAX`]).
    waiting: HashMap<String, VecDeque<Instant>>,
}

fn push_sample(samples: &mut Vec<u64>, d: Duration) {
    if samples.len() < SAMPLES_MAX {
        samples.push(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }
}

/// Runs the load until `config.duration` has passed or `shutdown` is cancelled.
pub async fn run(sim: &Simulator, config: LoadConfig, shutdown: &CancellationToken) -> LoadReport {
    let (mut report, deliver_us, reply_us) = run_samples(sim, config, shutdown).await;
    report.deliver_latency = Percentiles::of(deliver_us);
    report.reply_latency = Percentiles::of(reply_us);
    report
}

/// [`run`], returning the latency samples (µs) instead of their percentiles.
async fn run_samples(
    sim: &Simulator,
    config: LoadConfig,
    shutdown: &CancellationToken,
) -> (LoadReport, Vec<u64>, Vec<u64>) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let phones: Vec<String> = if config.numbers.is_empty() {
        (0..config.phones.max(1))
            .map(|i| format!("+7900{i:07}"))
            .collect()
    } else {
        config.numbers.clone()
    };
    let stop_replies = CancellationToken::new();
    let mut mt = sim.subscribe_mt();
    let replies = {
        let shared = shared.clone();
        let stop = stop_replies.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = stop.cancelled() => break,
                    m = mt.recv() => m,
                };
                let message = match message {
                    Ok(m) => m,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                };
                let mut s = lock(&shared);
                let at = s
                    .waiting
                    .get_mut(&digits(&message.to))
                    .and_then(VecDeque::pop_front);
                if let Some(at) = at {
                    push_sample(&mut s.reply_us, at.elapsed());
                    s.report.replies += 1;
                }
            }
        })
    };

    let permits = Arc::new(Semaphore::new(config.inflight_max.max(1)));
    let tasks = TaskTracker::new();
    let period = Duration::from_secs_f64(1.0 / config.rate_per_s.max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut next_progress = started + Duration::from_secs(1);
    let mut n: usize = 0;
    while started.elapsed() < config.duration {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            lock(&shared).report.skipped += 1;
            continue;
        };
        let phone = phones[n % phones.len()].clone();
        n += 1;
        let sim = sim.clone();
        let task_shared = shared.clone();
        let text = config.text.clone();
        tasks.spawn(async move {
            let shared = task_shared;
            let at = Instant::now();
            {
                let mut s = lock(&shared);
                let queue = s.waiting.entry(digits(&phone)).or_default();
                if queue.len() >= WAITING_PER_PHONE_MAX {
                    queue.pop_front();
                }
                queue.push_back(at);
                s.report.sent += 1;
            }
            let result = sim.inject_mo(MoRequest::new(phone, text)).await;
            let mut s = lock(&shared);
            match result {
                Ok(report) if report.delivered => {
                    push_sample(&mut s.deliver_us, at.elapsed());
                    s.report.delivered += 1;
                }
                _ => s.report.failed += 1,
            }
            drop(permit);
        });
        if config.progress && Instant::now() >= next_progress {
            next_progress += Duration::from_secs(1);
            let s = lock(&shared);
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "[{secs:5.1}s] sent {} ok {} failed {} replies {} skipped {} rate {:.0}/s",
                s.report.sent,
                s.report.delivered,
                s.report.failed,
                s.report.replies,
                s.report.skipped,
                s.report.sent as f64 / secs.max(0.001)
            );
        }
    }
    let elapsed = started.elapsed();
    tasks.close();
    tasks.wait().await;
    // Replies may trail the last deliver_sm_resp.
    let grace_end = Instant::now() + config.reply_grace;
    let mut mt = sim.subscribe_mt();
    while Instant::now() < grace_end && lock(&shared).waiting.values().any(|q| !q.is_empty()) {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(grace_end) => break,
            _ = mt.recv() => tokio::task::yield_now().await,
        }
    }
    stop_replies.cancel();
    let _ = replies.await;
    let mut s = lock(&shared);
    let mut report = std::mem::take(&mut s.report);
    report.elapsed_s = elapsed.as_secs_f64();
    report.achieved_rate_per_s = report.sent as f64 / report.elapsed_s.max(0.001);
    (
        report,
        std::mem::take(&mut s.deliver_us),
        std::mem::take(&mut s.reply_us),
    )
}

/// Outcome of a load spread over operators: the totals (the fields of a
/// [`LoadReport`]) and each operator's own.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpreadReport {
    /// Every operator together.
    #[serde(flatten)]
    pub total: LoadReport,
    /// Per operator, by name.
    pub operators: std::collections::BTreeMap<String, LoadReport>,
}

/// Runs `config` spread over `operators` of `net` (all when empty): each
/// gets an equal share of the rate and of the phones, whose numbers come
/// from its ranges (numbers another operator would take are skipped), and
/// its MOs go through its own SMSC. An operator that owns no number of its
/// own (a default without ranges, shadowed by the others) sends nothing.
pub async fn run_spread(
    net: &Network,
    operators: &[String],
    config: LoadConfig,
    shutdown: &CancellationToken,
) -> SpreadReport {
    let names: Vec<String> = if operators.is_empty() {
        net.names()
    } else {
        operators.to_vec()
    };
    let share = names.len().max(1);
    let phones = config.phones.max(1).div_ceil(share);
    let mut runs = Vec::new();
    for name in &names {
        let Some(sim) = net.simulator(name) else {
            continue;
        };
        let numbers = operator_numbers(net, name, phones);
        if numbers.is_empty() {
            continue;
        }
        let config = LoadConfig {
            rate_per_s: config.rate_per_s / share as f64,
            numbers,
            progress: false,
            ..config.clone()
        };
        runs.push(async move { (name.clone(), run_samples(sim, config, shutdown).await) });
    }
    let mut out = SpreadReport::default();
    let (mut deliver_us, mut reply_us) = (Vec::new(), Vec::new());
    for (name, (mut report, d, r)) in futures::future::join_all(runs).await {
        let t = &mut out.total;
        t.sent += report.sent;
        t.delivered += report.delivered;
        t.failed += report.failed;
        t.skipped += report.skipped;
        t.replies += report.replies;
        t.elapsed_s = t.elapsed_s.max(report.elapsed_s);
        report.deliver_latency = Percentiles::of(d.clone());
        report.reply_latency = Percentiles::of(r.clone());
        deliver_us.extend(d);
        reply_us.extend(r);
        out.operators.insert(name, report);
    }
    out.total.achieved_rate_per_s = out.total.sent as f64 / out.total.elapsed_s.max(0.001);
    out.total.deliver_latency = Percentiles::of(deliver_us);
    out.total.reply_latency = Percentiles::of(reply_us);
    out
}

/// `n` numbers operator `name` serves, round-robin over its ranges; the
/// first operator without ranges gets `+7900…` numbers no range claims.
fn operator_numbers(net: &Network, name: &str, n: usize) -> Vec<String> {
    let ranges = net.ranges(name);
    let candidate = |i: usize| -> String {
        if ranges.is_empty() {
            format!("+7900{i:07}")
        } else {
            ranges[i % ranges.len()].number((i / ranges.len()) as u64)
        }
    };
    // Bounded: a range mostly shadowed by another operator's yields few.
    (0..n.saturating_mul(4))
        .map(candidate)
        .filter(|number| net.route(number).0 == name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(n)
        .collect()
}

/// What [`run_ussd`] generates: one-shot dials from distinct phones.
#[derive(Debug, Clone)]
pub struct UssdLoadConfig {
    /// Target dials per second.
    pub rate_per_s: f64,
    /// How long to dial.
    pub duration: Duration,
    /// Distinct phones (`+7901…`), used round-robin; a phone whose dialog
    /// is still open when its turn comes again counts as `failed`.
    pub phones: usize,
    /// What every phone dials, e.g. `*7377*123456789#`.
    pub dial: String,
    /// Operator profile (the simulator's configured one when `None`).
    pub profile: Option<String>,
    /// Dialogs waiting for their screen at once; a tick finding none free
    /// is counted as `skipped`.
    pub inflight_max: usize,
}

/// Outcome of a USSD load run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UssdLoadReport {
    /// Dials made.
    pub sent: u64,
    /// Dials answered with a final screen.
    pub completed: u64,
    /// Dials answered with a question (then aborted, freeing the phone).
    pub questions: u64,
    /// Dials refused, unanswered, timed out or busy.
    pub failed: u64,
    /// Ticks with no free in-flight slot.
    pub skipped: u64,
    /// Dialling time in seconds.
    pub elapsed_s: f64,
    /// `sent / elapsed_s`.
    pub achieved_rate_per_s: f64,
    /// `completed / elapsed_s`.
    pub completed_per_s: f64,
    /// Dial → screen (the first screen, final or not).
    pub screen_latency: Percentiles,
}

/// Dials until `config.duration` has passed or `shutdown` is cancelled,
/// then waits for the dialogs still open.
pub async fn run_ussd(
    sim: &Simulator,
    config: UssdLoadConfig,
    shutdown: &CancellationToken,
) -> UssdLoadReport {
    let shared = Arc::new(Mutex::new((UssdLoadReport::default(), Vec::<u64>::new())));
    let permits = Arc::new(Semaphore::new(config.inflight_max.max(1)));
    let tasks = TaskTracker::new();
    let period = Duration::from_secs_f64(1.0 / config.rate_per_s.max(0.001));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let phones = config.phones.max(1);
    let started = Instant::now();
    let mut n: usize = 0;
    while started.elapsed() < config.duration {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            lock(&shared).0.skipped += 1;
            continue;
        };
        let mut dial = UssdDial::new(format!("+7901{:07}", n % phones), config.dial.clone());
        dial.profile = config.profile.clone();
        n += 1;
        let sim = sim.clone();
        let shared = shared.clone();
        tasks.spawn(async move {
            let at = Instant::now();
            lock(&shared).0.sent += 1;
            let result = sim.ussd_dial(dial).await;
            let elapsed = at.elapsed();
            if let Ok(screen) = &result {
                if screen.continues {
                    let _ = sim.ussd_abort(&screen.dialog).await;
                }
            }
            let mut s = lock(&shared);
            match result {
                Ok(screen) => {
                    push_sample(&mut s.1, elapsed);
                    if screen.continues {
                        s.0.questions += 1;
                    } else {
                        s.0.completed += 1;
                    }
                }
                Err(_) => s.0.failed += 1,
            }
            drop(permit);
        });
    }
    let elapsed = started.elapsed();
    tasks.close();
    tasks.wait().await;
    let mut s = lock(&shared);
    let mut report = std::mem::take(&mut s.0);
    report.elapsed_s = elapsed.as_secs_f64();
    report.achieved_rate_per_s = report.sent as f64 / report.elapsed_s.max(0.001);
    report.completed_per_s = report.completed as f64 / report.elapsed_s.max(0.001);
    report.screen_latency = Percentiles::of(std::mem::take(&mut s.1));
    report
}
