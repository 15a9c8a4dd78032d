//! End-to-end SMS check-in throughput: the simulator's load generator sends
//! `ВХОД*<code>` from distinct phones to a real `checkin` process (release
//! build, its own SMPP bind) and measures MO → `deliver_sm_resp` (the row is
//! committed by then) and MO → confirmation `submit_sm`. Beside it, in the
//! same run, the protocol-only ceiling: the simulator's own ESME acking and
//! replying with no storage. Also the gateway's resident memory idle and at
//! its peak under load.
//!
//! Run: `cargo bench --bench e2e` (add `CHECKIN_TEST_POSTGRES_URL=postgres://…`
//! for PostgreSQL; `./scripts/pg-test-server` starts one; `CHECKIN_BENCH_BIN=…`
//! measures another build of the `checkin` binary). Without `--bench`
//! (as `cargo test --all-targets` runs it) it does a short smoke run on SQLite.

#[path = "../checkin-core/tests/common/mod.rs"]
mod dbs;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use checkin_core::StoreConfig;
use simulator::esme::{Esme, EsmeOptions};
use simulator::load::{LoadConfig, LoadReport};
use simulator::Simulator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
struct Plan {
    rate_per_s: f64,
    duration: Duration,
    phones: usize,
    with_postgres: bool,
}

const FULL: Plan = Plan {
    rate_per_s: 20000.0,
    duration: Duration::from_secs(10),
    // More than the run can send (20 000/s × 10 s): every MO is a new check-in,
    // none a repeat the dedupe window would answer without a reply.
    phones: 250_000,
    with_postgres: true,
};
const SMOKE: Plan = Plan {
    rate_per_s: 50.0,
    duration: Duration::from_secs(1),
    phones: 100,
    with_postgres: false,
};

/// `deliver_sm` the simulator keeps outstanding per bind (the SMSC-side window),
/// for the ceiling and the gateway alike. Operators' SMSCs allow 10 to 100.
const SMSC_WINDOW: usize = 100;

async fn simulator() -> (Simulator, u16, CancellationToken) {
    let token = CancellationToken::new();
    let mut config = simulator::Config::default();
    config.limits.outbound_window_max = SMSC_WINDOW;
    let sim = Simulator::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(sim.clone().serve_smpp(listener, token.clone()));
    (sim, port, token)
}

fn load_config(plan: Plan, text: &str) -> LoadConfig {
    LoadConfig {
        rate_per_s: plan.rate_per_s,
        duration: plan.duration,
        phones: plan.phones,
        text: text.to_owned(),
        inflight_max: 1000,
        reply_grace: Duration::from_secs(5),
        progress: false,
    }
}

/// The protocol-only ceiling: an ESME that acks every MO and replies, no storage.
async fn ceiling(plan: Plan) -> LoadReport {
    let (sim, port, token) = simulator().await;
    let options = EsmeOptions {
        reply_to_mo: true,
        keep_delivers: false,
        ..EsmeOptions::default()
    };
    let _esme = Esme::connect(("127.0.0.1", port), options).await.unwrap();
    assert!(sim.wait_for_receivers(1, &token).await);
    let report = simulator::load::run(&sim, load_config(plan, "ВХОД*572-094-130"), &token).await;
    token.cancel();
    report
}

fn checkin(data: &Path, config: &Path) -> Command {
    // CHECKIN_BENCH_BIN runs another build (an A/B comparison of two commits).
    let bin = std::env::var("CHECKIN_BENCH_BIN").unwrap_or(env!("CARGO_BIN_EXE_checkin").into());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SEND_RATE", "1000000")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null());
    cmd
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

/// The real gateway process on `database_url` (None: SQLite in its data folder).
async fn ours(plan: Plan, database_url: Option<String>) -> Ours {
    let (sim, port, token) = simulator().await;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let config = root.path().join("checkin.toml");
    let mut toml = String::new();
    if let Some(url) = &database_url {
        toml.push_str(&format!("database_url = {url:?}\n"));
    }
    toml.push_str(&format!(
        "[smsc]\nhost = \"127.0.0.1\"\nport = {port}\nsystem_id = \"checkin\"\n\
         password = \"checkin\"\nwindow_max = 100\nsegments_per_second = 0\n\
         deliveries_in_flight_max = 1024\nbinds = 4\n"
    ));
    std::fs::write(&config, toml).unwrap();
    let run = |args: &[&str]| -> serde_json::Value {
        let out = checkin(&data, &config).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let org = run(&[
        "org",
        "create",
        "--name",
        "Bench",
        "--email",
        "bench@example.ru",
    ]);
    let premises = run(&[
        "premises",
        "add",
        "--org",
        &org["id"].to_string(),
        "--address",
        "ул. Тверская, 13",
    ]);
    let text = format!("ВХОД*{}", premises["code"].as_str().unwrap());

    // CHECKIN_BENCH_LOG=<file> keeps the gateway's log (CHECKIN_LOG passed on).
    let stderr = match std::env::var_os("CHECKIN_BENCH_LOG") {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let mut gateway = checkin(&data, &config);
    if let Ok(filter) = std::env::var("CHECKIN_LOG") {
        gateway.env("CHECKIN_LOG", filter);
    }
    let mut child: Child = gateway
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    assert!(sim.wait_for_receivers(1, &token).await);
    tokio::time::sleep(Duration::from_millis(500)).await; // settle before the idle reading
    let pid = child.id();
    let idle_rss_kib = rss_kib(pid, "VmRSS:");
    let cpu_before = cpu_ticks(pid);
    let report = simulator::load::run(&sim, load_config(plan, &text), &token).await;
    let peak_rss_kib = rss_kib(pid, "VmHWM:");
    // sysconf(_SC_CLK_TCK) is 100 on Linux.
    let cpu_ms = (cpu_ticks(pid) - cpu_before) * 10;
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = child.wait();
    token.cancel();
    Ours {
        report,
        idle_rss_kib,
        peak_rss_kib,
        cpu_ms,
    }
}

fn row(name: &str, r: &LoadReport, ceiling: Option<&LoadReport>) -> String {
    let rate = r.delivered as f64 / r.elapsed_s.max(f64::EPSILON);
    let ratio = ceiling
        .map(|c| {
            format!(
                "{:.0} %",
                100.0 * rate / (c.delivered as f64 / c.elapsed_s.max(f64::EPSILON))
            )
        })
        .unwrap_or_else(|| "—".into());
    format!(
        "| {name} | {:.0} | {} / {} | {:.2} / {:.2} | {:.2} / {:.2} | {ratio} |",
        rate,
        r.delivered,
        r.replies,
        r.deliver_latency.p50_ms,
        r.deliver_latency.p99_ms,
        r.reply_latency.p50_ms,
        r.reply_latency.p99_ms,
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
        let sqlite = ours(plan, None).await;
        let postgres = if plan.with_postgres {
            match dbs::postgres(StoreConfig::default()).await {
                Some(db) => {
                    db.store.close().await;
                    Some(ours(plan, Some(db.url)).await)
                }
                None => None,
            }
        } else {
            None
        };
        println!(
            "target {} MO/s for {:?}, {} distinct phones, 1000 MO in flight at most, \
             SMSC window {SMSC_WINDOW}\n",
            plan.rate_per_s, plan.duration, plan.phones
        );
        println!("| ESME | check-ins/s (MO acked) | MO acked / replies | MO→resp p50 / p99 ms | MO→reply p50 / p99 ms | of ceiling |");
        println!("|---|---|---|---|---|---|");
        println!("{}", row("protocol-only ceiling (simulator's ESME)", &ceiling, None));
        println!("{}", row("checkin on SQLite", &sqlite.report, Some(&ceiling)));
        if let Some(pg) = &postgres {
            println!("{}", row("checkin on PostgreSQL", &pg.report, Some(&ceiling)));
        }
        println!("\n| gateway | RSS idle | RSS peak (VmHWM) | CPU per MO (µs) |\n|---|---|---|---|");
        let line = |name: &str, o: &Ours| {
            println!(
                "| {name} | {:.1} MiB | {:.1} MiB | {:.0} |",
                o.idle_rss_kib as f64 / 1024.0,
                o.peak_rss_kib as f64 / 1024.0,
                o.cpu_ms as f64 * 1000.0 / o.report.delivered.max(1) as f64
            )
        };
        line("SQLite", &sqlite);
        if let Some(pg) = &postgres {
            line("PostgreSQL", pg);
        }
        assert!(sqlite.report.delivered > 0, "the gateway acknowledged no MO");
    });
}
