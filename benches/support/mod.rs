//! What the whole-gateway benches (`e2e.rs`, `ussd.rs`) share: the
//! operator's SMSC (the simulator on port 0) or several operators' (its
//! `Network`), the protocol-only ceiling's ESMEs, and a real `checkin`
//! process with one premises, stopped like an operator stops it.

#![allow(dead_code)] // each bench uses a different part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use simulator::config::{Foreign, OperatorConfig};
use simulator::esme::{Esme, EsmeOptions};
use simulator::{Network, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// `deliver_sm` the simulator keeps outstanding per bind (the SMSC-side
/// window), for the ceiling and the gateway alike. Operators' SMSCs allow
/// 10 to 100+.
pub const SMSC_WINDOW: usize = 100;

/// The simulator serving SMPP on a fresh port, until the token is cancelled.
pub async fn simulator() -> (Simulator, u16, CancellationToken) {
    let token = CancellationToken::new();
    let mut config = simulator::Config::default();
    config.limits.outbound_window_max = SMSC_WINDOW;
    let sim = Simulator::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(sim.clone().serve_smpp(listener, token.clone()));
    (sim, port, token)
}

/// The operators of the several-operators runs: name and the one number
/// range each serves (Moscow's four networks, one prefix each).
pub const OPERATORS: [(&str, &str); 4] = [
    ("mts", "+7916"),
    ("beeline", "+7903"),
    ("megafon", "+7926"),
    ("tele2", "+7977"),
];

/// The simulator playing the first `n` of [`OPERATORS`], each its own SMSC
/// (SMPP port, account `gw_NAME` with password `NAME`, range, receipts),
/// with [`SMSC_WINDOW`] per bind like [`simulator`], until the token is
/// cancelled.
pub async fn network(n: usize) -> (Network, CancellationToken) {
    let token = CancellationToken::new();
    let mut config = simulator::Config::default();
    config.limits.outbound_window_max = SMSC_WINDOW;
    config.operators = OPERATORS[..n]
        .iter()
        .map(|&(name, range)| OperatorConfig {
            name: name.into(),
            smpp: None,
            accounts: vec![format!("gw_{name}:{name}")],
            ranges: vec![range.into()],
            faults: None,
            receipts: None,
            foreign: Foreign::default(),
        })
        .collect();
    let net = Network::new(config, SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let listeners = net.bind_smpp().await.unwrap();
    tokio::spawn(net.clone().serve_smpp(listeners, token.clone()));
    (net, token)
}

/// `binds` of the simulator's own ESME, answering every MO with a reply and
/// storing nothing: the protocol-only ceiling's far end. Bound when this
/// returns; kept alive by the returned handles.
pub async fn ceiling_esmes(
    sim: &Simulator,
    port: u16,
    binds: usize,
    token: &CancellationToken,
) -> Vec<Esme> {
    ceiling_esmes_with(sim, port, binds, false, token).await
}

/// [`ceiling_esmes`] whose replies ask for a delivery receipt when
/// `reply_receipt` (as the gateway's confirmations do); the receipts are
/// acknowledged like any `deliver_sm`.
pub async fn ceiling_esmes_with(
    sim: &Simulator,
    port: u16,
    binds: usize,
    reply_receipt: bool,
    token: &CancellationToken,
) -> Vec<Esme> {
    let mut esmes = Vec::new();
    for _ in 0..binds {
        let options = EsmeOptions {
            reply_to_mo: true,
            keep_delivers: false,
            reply_receipt,
            ..EsmeOptions::default()
        };
        esmes.push(Esme::connect(("127.0.0.1", port), options).await.unwrap());
    }
    assert!(sim.wait_for_receivers(binds, token).await);
    esmes
}

/// The `checkin` binary on `data` with `config`.
/// `CHECKIN_BENCH_BIN` runs another build (an A/B comparison of two commits).
pub fn checkin(data: &Path, config: &Path) -> Command {
    let bin = std::env::var("CHECKIN_BENCH_BIN").unwrap_or(env!("CARGO_BIN_EXE_checkin").into());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SEND_RATE", "1000000")
        // tokio's own knob, passed on for an A/B of the gateway's workers.
        .envs(std::env::var("TOKIO_WORKER_THREADS").map(|v| ("TOKIO_WORKER_THREADS", v)))
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null());
    cmd
}

/// A data folder and configuration for a gateway bound to the simulator on
/// `port` with `binds` binds, and one premises registered through the CLI.
pub struct Prepared {
    _root: tempfile::TempDir,
    pub data: PathBuf,
    pub config: PathBuf,
    /// The premises' code, `123-456-789`.
    pub code: String,
    /// The gateway runs with the default configuration but for the SMSC
    /// address ([`Prepared::with_defaults`]).
    defaults: bool,
    /// `sqlite_synchronous` for the gateway (`CHECKIN_SQLITE_SYNCHRONOUS`);
    /// `None`: its default.
    pub sqlite_synchronous: Option<&'static str>,
}

impl Prepared {
    /// On `database_url` (None: SQLite in the data folder). The link's
    /// defaults but for the binds and the MT side: replies are not paced by
    /// a contract (the send rate is not what is measured).
    pub fn new(port: u16, binds: usize, database_url: Option<&str>) -> Prepared {
        let smsc = format!(
            "[smsc]\n{}{}",
            smsc_keys(port, "checkin", "checkin"),
            bench_link(binds)
        );
        Prepared::with_smscs(&smsc, database_url, false)
    }

    /// The gateway's default configuration but for the SMSC address (and
    /// its credentials): one bind, the default window (100), contract
    /// (`segments_per_second`) and send rate.
    pub fn with_defaults(port: u16, database_url: Option<&str>) -> Prepared {
        let smsc = format!("[smsc]\n{}", smsc_keys(port, "checkin", "checkin"));
        Prepared::with_smscs(&smsc, database_url, true)
    }

    /// One `[[operator]]` section for each operator of `net` (its SMPP
    /// port, account and ranges), each with `binds` binds and otherwise as
    /// [`Prepared::new`]'s link; replies go back through the operator the
    /// MO came through.
    pub fn operators(net: &Network, binds: usize, database_url: Option<&str>) -> Prepared {
        let mut smscs = String::new();
        for (name, sim) in net.simulators() {
            let port = net.smpp_addr(name).expect("bound").port();
            let account = &sim.config().accounts[0];
            let ranges: Vec<String> = net.ranges(name).iter().map(ToString::to_string).collect();
            smscs.push_str(&format!(
                "[[operator]]\nname = {name:?}\nranges = {ranges:?}\n{}{}\n",
                smsc_keys(port, &account.system_id, &account.password),
                bench_link(binds),
            ));
        }
        Prepared::with_smscs(&smscs, database_url, false)
    }

    /// `smscs`: the `[smsc]` section or the `[[operator]]` sections.
    fn with_smscs(smscs: &str, database_url: Option<&str>, defaults: bool) -> Prepared {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let config = root.path().join("checkin.toml");
        let mut toml = String::new();
        if let Some(url) = database_url {
            toml.push_str(&format!("database_url = {url:?}\n"));
        }
        toml.push_str(smscs);
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
            // A usual Moscow address (issue 23's example): longer than one
            // SMS allows, so the segments per check-in show the shortening.
            "Кутузовский пр., д. 57, ТРЦ «Океания»",
        ]);
        let code = premises["code"].as_str().unwrap().to_owned();
        Prepared {
            _root: root,
            data,
            config,
            code,
            defaults,
            sqlite_synchronous: None,
        }
    }

    /// Starts the gateway. `CHECKIN_BENCH_LOG=<file>` keeps its log
    /// (`CHECKIN_LOG` passed on).
    pub fn spawn(&self) -> Child {
        let stderr = match std::env::var_os("CHECKIN_BENCH_LOG") {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        self.command().stderr(stderr).spawn().unwrap()
    }

    fn command(&self) -> Command {
        let mut gateway = checkin(&self.data, &self.config);
        if self.defaults {
            gateway.env_remove("CHECKIN_SEND_RATE");
        }
        if let Some(sync) = self.sqlite_synchronous {
            gateway.env("CHECKIN_SQLITE_SYNCHRONOUS", sync);
        }
        if let Ok(filter) = std::env::var("CHECKIN_LOG") {
            gateway.env("CHECKIN_LOG", filter);
        }
        gateway.stdout(Stdio::null());
        gateway
    }

    /// Starts the gateway and reads where its web listens from the line
    /// `web: http://ADDR/…` it prints on stderr at start. A thread keeps
    /// draining its stderr (into `CHECKIN_BENCH_LOG=<file>` when set).
    pub fn spawn_watched(&self) -> Gateway {
        let mut log =
            std::env::var_os("CHECKIN_BENCH_LOG").map(|p| std::fs::File::create(p).unwrap());
        let mut child = self.command().stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(log) = &mut log {
                    let _ = writeln!(log, "{line}");
                }
                if let Some(addr) = web_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(web) => Gateway { child, web },
            Err(_) => {
                stop(child);
                panic!("the gateway printed no `web: http://ADDR/` line (CHECKIN_BENCH_LOG=<file> keeps its log)");
            }
        }
    }
}

/// An SMSC section's address and credentials (the simulator on `port`).
fn smsc_keys(port: u16, system_id: &str, password: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {port}\nsystem_id = {system_id:?}\npassword = {password:?}\n"
    )
}

/// The benches' link: `binds` binds, window 100, replies not paced by a
/// contract (`segments_per_second = 0`).
fn bench_link(binds: usize) -> String {
    format!("window_max = 100\nsegments_per_second = 0\nbinds = {binds}\n")
}

/// `ADDR` of the gateway's start line `  web: http://ADDR/v/<code> …`.
fn web_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.trim_start().strip_prefix("web: http://")?;
    rest.split('/').next()?.parse().ok()
}

/// A started gateway and where its web listens.
#[derive(Debug)]
pub struct Gateway {
    pub child: Child,
    pub web: SocketAddr,
}

impl Gateway {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `GET /metrics` (Prometheus text).
    pub async fn metrics(&self) -> Metrics {
        let text = http_get(self.web, "/metrics").await;
        Metrics(text)
    }

    /// Stops it as an operator does.
    pub fn stop(self) {
        stop(self.child)
    }
}

/// The body of `GET path` (HTTP/1.0, so neither chunked nor kept alive);
/// panics unless it is a 200.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {path}: {head}"
    );
    body.to_owned()
}

/// Prometheus text.
#[derive(Debug, Clone, Default)]
pub struct Metrics(pub String);

impl Metrics {
    /// The sum of counter `name` over the series whose labels hold every
    /// `label="value"` of `labels`.
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (metric, rest) = match series.split_once('{') {
                    Some((m, rest)) => (m, rest),
                    None => (series, ""),
                };
                (metric == name && labels.iter().all(|want| rest.contains(want)))
                    .then(|| value.parse::<f64>().ok())?
            })
            .sum()
    }
}

/// Context switches of each thread of `pid` (voluntary + nonvoluntary, from
/// `/proc/PID/task/*/status`), by thread id.
pub fn thread_switches(pid: u32) -> HashMap<u32, u64> {
    let mut switches = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return switches;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // exited meanwhile
        };
        let n: u64 = status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        switches.insert(tid, n);
    }
    switches
}

/// Switches between two [`thread_switches`] readings: over the threads
/// alive at `after` (a new one counts from 0), and the threads alive at
/// `before` but gone at `after`, whose switches since `before` are lost.
pub fn switches_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> (u64, usize) {
    let counted = after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    let lost = before.keys().filter(|tid| !after.contains_key(tid)).count();
    (counted, lost)
}

/// Stops the gateway as an operator does (SIGINT) and waits for it.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
