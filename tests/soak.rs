//! The soak: the whole product (gateway, web, notifier, bundled simulator
//! with a fault profile) under mixed load for `CHECKIN_SOAK_SECONDS`
//! (default 120, what CI runs; `CHECKIN_SOAK_SECONDS=1800` is the long one):
//! SMS check-ins, web check-ins with an SMS code, and a stream of cases with
//! their alerts. Memory, file descriptors and tasks stay flat after the
//! warm-up, the MO round trip's p99 does not drift, every visitor is
//! confirmed, every alert arrives, none more than twice (checked as the soak
//! goes, `CHECK_AFTER` after each visit, so the simulator keeps only a few
//! minutes of messages and its memory is full before the warm-up ends). The
//! figures are printed (`--nocapture`) for BENCHMARKS.md.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use checkin::gateway::GatewayOptions;
use checkin_core::Premises;
use chrono::Utc;
use common::browser::Browser;
use common::Running;
use serde_json::json;
use simulator::{FaultProfile, MoRequest, Simulator};

/// SMS check-ins offered per second (new phones, a few premises).
const SMS_PER_S: u64 = 40;
/// A web check-in (poster page, code by SMS, code entered) every this long.
const WEB_EVERY: Duration = Duration::from_secs(2);
/// A case every this long, at fresh premises with `CASE_VISITORS` visitors:
/// the case's own visit and `CASE_VISITORS - 1` alerts.
const CASE_EVERY: Duration = Duration::from_secs(10);
const CASE_VISITORS: usize = 4;
/// How often the process is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// MOs waiting for their answer at once.
const MO_IN_FLIGHT_MAX: usize = 64;
/// A visitor's confirmation (and a case visitor's alert) is checked this long
/// after the MO was acknowledged (the case recorded).
const CHECK_AFTER: Duration = Duration::from_secs(90);
/// MT messages the simulator keeps: about five minutes of the soak's, well
/// beyond `CHECK_AFTER`, so its store is full before the warm-up ends.
const SIM_MESSAGES_MAX: usize = 15_000;
/// SMSC ids the receipt book keeps: about four minutes of the soak's sends.
const RECEIPT_IDS_MAX: usize = 10_000;

fn faults() -> FaultProfile {
    serde_json::from_value(json!({
        "seed": 19,
        "drop_response_share": 0.001,
        "disconnect_share": 0.0005,
        "submit_error_share": 0.002,
    }))
    .unwrap()
}

fn is_alert(text: &str) -> bool {
    text.contains("с подтвержденным COVID-19")
}

fn phone(kind: u32, i: usize) -> String {
    format!("+79{kind}{i:07}")
}

/// One sample of the process (every field is printed).
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: usize,
    tasks: usize,
    mo_p50_ms: f64,
    mo_p99_ms: f64,
    mos: usize,
    /// The SMSC's disconnects and dropped responses (the fault profile's)
    /// since the last sample.
    faults: u64,
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The `percent`th percentile of `v` (0 when empty).
fn percentile(mut v: Vec<f64>, percent: usize) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[(v.len() * percent / 100).min(v.len() - 1)]
}

/// Delivers an MO as an SMSC would: again while no bind is up.
async fn deliver(sim: &Simulator, from: &str, text: &str) -> Option<Duration> {
    for _ in 0..400 {
        let started = Instant::now();
        match sim.inject_mo(MoRequest::new(from, text)).await {
            Err(simulator::Error::NoReceiver) => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Ok(report) if report.delivered => return Some(started.elapsed()),
            _ => return None,
        }
    }
    None
}

/// The web's code way (poster, phone and consent, the SMS code, the code).
async fn web_checkin(run: &Running, premises: &Premises, phone: &str) -> bool {
    let mut browser = Browser {
        addr: run.gateway.web_addr,
        jar: BTreeMap::new(),
    };
    let poster = format!("/v/{}", premises.code.to_string().replace('-', ""));
    let page = browser.request("GET", &poster, &[]).await;
    let csrf = page.field("csrf");
    let sent = browser
        .request(
            "POST",
            &poster,
            &[("csrf", &csrf), ("phone", phone), ("consent", "1")],
        )
        .await;
    if sent.status != 303 {
        return false;
    }
    let texts = run.until_messages(phone, 1).await;
    let code: String = texts[0].chars().filter(char::is_ascii_digit).collect();
    let form = browser.request("GET", &sent.location, &[]).await;
    let (csrf, ticket) = (form.field("csrf"), form.field("t"));
    let done = browser
        .request(
            "POST",
            &format!("{poster}/otp"),
            &[("csrf", &csrf), ("t", &ticket), ("code", &code)],
        )
        .await;
    done.status == 303 && done.location.starts_with("/ok/")
}

/// Visitors whose confirmation (or alert) is to be checked, oldest first.
#[derive(Default)]
struct Due {
    confirmations: VecDeque<(Instant, String)>,
    alerts: VecDeque<(Instant, String)>,
    confirmations_checked: usize,
    alerts_checked: usize,
}

impl Due {
    fn is_empty(&self) -> bool {
        self.confirmations.is_empty() && self.alerts.is_empty()
    }

    /// Checks every entry older than `CHECK_AFTER` at `now`: one or two
    /// copies arrived. One still missing stays due until `OVERDUE_MAX` later,
    /// then fails the soak.
    fn check(&mut self, sim: &Simulator, now: Instant) {
        for (queue, alert, checked) in [
            (
                &mut self.confirmations,
                false,
                &mut self.confirmations_checked,
            ),
            (&mut self.alerts, true, &mut self.alerts_checked),
        ] {
            let mut missing = VecDeque::new();
            while let Some((at, phone)) = queue.pop_front() {
                if now < at + CHECK_AFTER {
                    queue.push_front((at, phone));
                    break;
                }
                let copies = sim
                    .messages(Some(&phone), 10)
                    .iter()
                    .filter(|m| m.complete && is_alert(&m.text) == alert)
                    .count();
                assert!(copies <= 2, "{phone}: {copies} copies (alert: {alert})");
                if copies > 0 {
                    *checked += 1;
                    continue;
                }
                assert!(
                    Instant::now() < at + CHECK_AFTER + OVERDUE_MAX,
                    "{phone}: nothing arrived in {:?} (alert: {alert})",
                    CHECK_AFTER + OVERDUE_MAX
                );
                missing.push_back((at, phone));
            }
            // Still missing: checked again next time, first.
            while let Some(entry) = missing.pop_back() {
                queue.push_front(entry);
            }
        }
    }
}

/// How long after a fault (the sample counting it) MOs may still finish
/// late: the simulator redelivers an unanswered MO twice, 5 s apart.
const FAULT_SHADOW: Duration = Duration::from_secs(15);

/// The SMSC's disconnects and dropped responses so far.
fn fault_count(sim: &Simulator) -> u64 {
    let stats = sim.stats();
    stats.disconnects + stats.dropped_responses
}

/// How much longer than `CHECK_AFTER` a missing message may take.
const OVERDUE_MAX: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_stays_flat_under_a_long_mixed_load() {
    let seconds: u64 = std::env::var("CHECKIN_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let span = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), None);
    // Every web visitor comes from 127.0.0.1: the per-address SMS limit
    // (a defence against one address asking codes for many phones) would
    // refuse them after its hourly count.
    config.web.sms_per_ip_hour = 1_000_000;
    // Bounded structures sized to fill within the warm-up, so what grows
    // after it is a leak, not a bound being reached: the simulator's store,
    // the receipt book, SQLite's reader caches (4 MiB each).
    config.store.connections_max = 2;
    let mut options = GatewayOptions::from_config(&config);
    options.simulator.limits.messages_max = SIM_MESSAGES_MAX;
    options.receipt_ids_max = RECEIPT_IDS_MAX;
    let run = Arc::new(common::start_with_options("soak", config, options, dir).await);
    let sim = run.gateway.simulator.clone().unwrap().simulator;
    let web = run.gateway.web_addr;
    let token = run
        .gateway
        .store
        .orgs()
        .create_authority("Роспотребнадзор", Utc::now())
        .await
        .unwrap()
        .1;
    let mut venues = Vec::new();
    for address in ["ул. Тверская, 13", "Кутузовский пр., 30", "ул. Арбат, 10"]
    {
        venues.push(run.premises(address).await);
    }
    sim.set_faults(faults()).unwrap();

    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let sms_sent = Arc::new(AtomicUsize::new(0));
    let unacked = Arc::new(AtomicUsize::new(0));
    // Acknowledged visitors and alerted case visitors, waiting to be checked.
    let acked = Arc::new(Mutex::new(VecDeque::<(Instant, String)>::new()));
    let mut due = Due::default();
    let window = Arc::new(tokio::sync::Semaphore::new(MO_IN_FLIGHT_MAX));
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut web_visitors = Vec::new();
    let mut web_failed = 0;
    let mut cases = 0;
    let mut next = (Instant::now(), Instant::now(), Instant::now() + CASE_EVERY);
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
    let mut faults_seen = fault_count(&sim);
    let tick = Duration::from_millis(1000 / SMS_PER_S);
    let mut i = 0_usize;
    while started.elapsed() < span {
        let now = Instant::now();
        if now >= next.0 {
            // SMS check-ins, each its own phone.
            next.0 += tick;
            let permit = window.clone().acquire_owned().await.unwrap();
            let text = format!("ВХОД*{}", venues[i % venues.len()].code);
            let from = phone(16, i);
            let (sim, latencies, unacked, acked) = (
                sim.clone(),
                latencies.clone(),
                unacked.clone(),
                acked.clone(),
            );
            tokio::spawn(async move {
                match deliver(&sim, &from, &text).await {
                    Some(took) => {
                        latencies.lock().unwrap().push(took.as_secs_f64() * 1e3);
                        acked.lock().unwrap().push_back((Instant::now(), from));
                    }
                    None => {
                        unacked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(permit);
            });
            sms_sent.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
        if now >= next.1 {
            next.1 += WEB_EVERY;
            let visitor = phone(26, web_visitors.len());
            if web_checkin(&run, &venues[web_visitors.len() % venues.len()], &visitor).await {
                web_visitors.push(visitor);
            } else {
                web_failed += 1;
            }
        }
        if now >= next.2 {
            // A case at fresh premises: its visitors first, then the case.
            next.2 += CASE_EVERY;
            let premises = run
                .premises(&format!("ул. Новый Арбат, {}", 100 + cases))
                .await;
            let text = format!("ВХОД*{}", premises.code);
            let visitors: Vec<String> = (0..CASE_VISITORS)
                .map(|k| phone(36, cases * CASE_VISITORS + k))
                .collect();
            for v in &visitors {
                assert!(
                    deliver(&sim, v, &text).await.is_some(),
                    "a case visitor's MO"
                );
            }
            let case = json!({"phone": visitors[0], "confirmed_at": Utc::now().to_rfc3339()});
            let (status, body) =
                common::api(web, "POST", "/api/v1/cases", &token, Some(&case)).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["alerts_queued"], CASE_VISITORS - 1, "{body}");
            let at = Instant::now();
            due.alerts
                .extend(visitors.iter().skip(1).map(|v| (at, v.clone())));
            due.confirmations
                .extend(visitors.into_iter().map(|v| (at, v)));
            cases += 1;
        }
        if now >= next_sample {
            next_sample += SAMPLE_EVERY;
            due.confirmations.extend(acked.lock().unwrap().drain(..));
            due.check(&sim, Instant::now());

            let lat = std::mem::take(&mut *latencies.lock().unwrap());
            let faults = fault_count(&sim);
            let since = faults - std::mem::replace(&mut faults_seen, faults);
            samples.push(Sample {
                at_s: started.elapsed().as_secs_f64(),
                rss_kib: rss_kib(),
                fds: fds(),
                tasks: tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                mo_p50_ms: percentile(lat.clone(), 50),
                mo_p99_ms: percentile(lat.clone(), 99),
                mos: lat.len(),
                faults: since,
            });
        }
        let wake = next.0.min(next.1).min(next.2).min(next_sample);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
    }
    // Every MO answered.
    let _ = window.acquire_many(MO_IN_FLIGHT_MAX as u32).await.unwrap();

    // Flat after the warm-up (the first quarter): the last quarter against
    // the second. Memory by its peak (a leak only adds); descriptors, tasks
    // and the MO round trip's p99 by their medians: a reconnect under the
    // fault profile parks MOs and tasks for seconds, which is a spike, not a
    // leak, while a leak raises the median too. (One dropped response costs
    // a sample's p99 the link's response timeout.)
    let quarter = samples.len() / 4;
    assert!(
        quarter >= 1,
        "too short a soak to judge: {} samples",
        samples.len()
    );
    let peak = |range: &[Sample], f: fn(&Sample) -> f64| range.iter().map(f).fold(0.0, f64::max);
    let median = |range: &[Sample], f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = range.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (warm, late) = (
        &samples[quarter..2 * quarter],
        &samples[samples.len() - quarter..],
    );
    let (rss_warm, rss_late) = (
        peak(warm, |s| s.rss_kib as f64),
        peak(late, |s| s.rss_kib as f64),
    );
    let (fds_warm, fds_late) = (
        median(warm, |s| s.fds as f64),
        median(late, |s| s.fds as f64),
    );
    let (tasks_warm, tasks_late) = (
        median(warm, |s| s.tasks as f64),
        median(late, |s| s.tasks as f64),
    );
    // The p99 of windows the SMSC did no harm in lately: an MO in flight at
    // a disconnect waits for the reconnect, and a dropped `submit_sm_resp`
    // leaves its receipt's `deliver_sm` held unanswered in the SMSC's window
    // for up to `receipt_hold_ms`; such an MO is redelivered within
    // `FAULT_SHADOW`. How many faults a quarter draws is chance, not drift.
    let calm: Vec<bool> = (0..samples.len())
        .map(|k| {
            let since = samples[k].at_s - FAULT_SHADOW.as_secs_f64();
            samples[..=k]
                .iter()
                .all(|s| s.faults == 0 || s.at_s < since)
        })
        .collect();
    let calm_median = |from: usize, to: usize| {
        let mut v: Vec<f64> = (from..to)
            .filter(|&k| calm[k])
            .map(|k| samples[k].mo_p99_ms)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let (p99_warm, p99_late) = (
        calm_median(quarter, 2 * quarter),
        calm_median(samples.len() - quarter, samples.len()),
    );
    // The p50, which a few MOs stalled by a fault do not move, over every
    // window: judged in every run, however many faults it drew.
    let (p50_warm, p50_late) = (median(warm, |s| s.mo_p50_ms), median(late, |s| s.mo_p50_ms));
    for s in &samples {
        eprintln!("soak: {s:?}");
    }
    eprintln!(
        "soak: {seconds} s, {} SMS check-ins ({} not acknowledged), {} web check-ins ({web_failed} \
         refused), {cases} cases; RSS {:.1} → {:.1} MiB, fds {fds_warm} → {fds_late}, tasks \
         {tasks_warm} → {tasks_late} (medians of the second and the last quarter; RSS their \
         peaks), MO p50 {p50_warm:.1} → {p50_late:.1} ms (medians), p99 {p99_warm:?} → {p99_late:?} ms \
         (medians of windows without a fault lately)",
        sms_sent.load(Ordering::Relaxed),
        unacked.load(Ordering::Relaxed),
        web_visitors.len(),
        rss_warm / 1024.0,
        rss_late / 1024.0,
    );
    assert!(
        rss_late <= rss_warm * 1.25 + 8.0 * 1024.0,
        "memory grows: {rss_warm} → {rss_late} KiB"
    );
    assert!(
        fds_late <= fds_warm + 16.0,
        "descriptors grow: {fds_warm} → {fds_late}"
    );
    assert!(
        tasks_late <= tasks_warm * 1.5 + 64.0,
        "tasks grow: {tasks_warm} → {tasks_late}"
    );
    assert!(
        p50_late <= (p50_warm * 3.0).max(50.0),
        "the MO p50 drifts: {p50_warm} → {p50_late} ms"
    );
    if let (Some(warm), Some(late)) = (p99_warm, p99_late) {
        assert!(
            late <= (warm * 3.0).max(200.0),
            "the MO p99 drifts: {warm} → {late} ms"
        );
    }
    assert_eq!(web_failed, 0, "web check-ins refused");

    // Every visitor confirmed, every alert arrived, none more than twice:
    // the last ones (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(120);
    due.confirmations.extend(acked.lock().unwrap().drain(..));
    while !due.is_empty() {
        due.check(&sim, Instant::now() + CHECK_AFTER);
        assert!(
            Instant::now() < deadline || due.is_empty(),
            "{} visitors unconfirmed, {} alerts missing",
            due.confirmations.len(),
            due.alerts.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "soak: {} confirmations and {} alerts checked (at most two copies each)",
        due.confirmations_checked, due.alerts_checked
    );
    Arc::try_unwrap(run).ok().unwrap().stop().await;
}
