//! Bounded shutdown: the real binary with replies queued behind a stalled
//! SMSC, which then vanishes or stays bound and silent, stops on SIGTERM
//! within `shutdown_timeout_ms`; started again against a live SMSC, it
//! delivers every reply that was queued, none more than twice. On both
//! backends (PostgreSQL when the test script provides one).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use simulator::{FaultProfile, MoRequest, Simulator};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Visitors texting in; each stored check-in queues one confirmation.
const MO_COUNT: usize = 300;
const LOAD_CONCURRENCY: usize = 32;
/// The bound given to the gateway, and the slack allowed for process exit.
const SHUTDOWN_TIMEOUT_MS: u64 = 5_000;
const EXIT_SLACK: Duration = Duration::from_secs(3);

/// The real binary on `data` (SQLite there) or on the database `db`.
fn checkin_command(data: &Path, db: Option<&str>, smpp_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkin"));
    cmd.env_clear();
    if let Some(url) = db {
        cmd.env("CHECKIN_DATABASE_URL", url);
    }
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SMSC_HOST", "127.0.0.1")
        .env("CHECKIN_SMSC_PORT", smpp_port.to_string())
        .env("CHECKIN_SMSC_SYSTEM_ID", "checkin")
        .env("CHECKIN_SMSC_PASSWORD", "checkin")
        .env("CHECKIN_SEND_RATE", "2000")
        .env(
            "CHECKIN_SHUTDOWN_TIMEOUT_MS",
            SHUTDOWN_TIMEOUT_MS.to_string(),
        )
        .env("CHECKIN_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

fn json_line(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A simulator serving SMPP on a fresh port, reached through a TCP relay:
/// cancelling the token makes the SMSC vanish as a killed process does
/// (connections reset, the port refuses).
async fn smsc() -> (Simulator, u16, CancellationToken) {
    let sim = Simulator::new(simulator::Config::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inner = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    tokio::spawn({
        let (sim, token) = (sim.clone(), token.clone());
        async move {
            let _ = sim.serve_smpp(listener, token).await;
        }
    });
    let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = relay.local_addr().unwrap().port();
    let killed = token.clone();
    tokio::spawn(async move {
        let connections = tokio_util::task::TaskTracker::new();
        loop {
            let (mut outer, _) = tokio::select! {
                accepted = relay.accept() => accepted.unwrap(),
                _ = killed.cancelled() => break,
            };
            let killed = killed.clone();
            connections.spawn(async move {
                let Ok(mut to_sim) = tokio::net::TcpStream::connect(inner).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut outer, &mut to_sim) => {}
                    _ = killed.cancelled() => {}
                }
            });
        }
        // Dropping the relay listener: the port refuses from now on.
    });
    (sim, port, token)
}

async fn serve(data: &Path, db: Option<&str>, port: u16, sim: &Simulator, log: &str) -> Child {
    let log = std::fs::File::create(data.parent().unwrap().join(log)).unwrap();
    let child = checkin_command(data, db, port)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let token = CancellationToken::new();
    let bound = tokio::time::timeout(Duration::from_secs(30), sim.wait_for_receivers(1, &token))
        .await
        .expect("the gateway binds within 30 s");
    assert!(bound);
    child
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit, at most `within`; kills it (and fails) past that.
fn exits_within(child: &mut Child, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            return started.elapsed();
        }
        if started.elapsed() > within {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve did not stop within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn phone(i: usize) -> String {
    format!("+79171{i:06}")
}

/// Complete messages `sims` received for `phone`, all together.
fn received(sims: &[&Simulator], phone: &str) -> usize {
    sims.iter()
        .map(|s| {
            s.messages(Some(phone), 10)
                .iter()
                .filter(|m| m.complete)
                .count()
        })
        .sum()
}

/// Every message `sim` received.
fn total(sim: &Simulator) -> usize {
    sim.messages(None, 100_000).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_smsc_gone_stops_within_the_bound_and_loses_no_reply() {
    for (label, db) in common::backends().await {
        eprintln!("{label}:");
        scenario(true, db.as_deref()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_smsc_stalled_stops_within_the_bound_and_loses_no_reply() {
    for (label, db) in common::backends().await {
        eprintln!("{label}:");
        scenario(false, db.as_deref()).await;
    }
}

/// Replies queue behind a stalled SMSC; then it vanishes (`vanish`) or stays
/// bound and silent, and the gateway gets SIGTERM. On `db` (None: SQLite).
async fn scenario(vanish: bool, db: Option<&str>) {
    let (first, first_port, first_stop) = smsc().await;
    // Every submit is answered only after 30 s: the window fills and the
    // other replies queue behind it, as when an SMSC stalls.
    first
        .set_faults(
            serde_json::from_value::<FaultProfile>(serde_json::json!({
                "latency": { "min_ms": 30_000, "max_ms": 30_000 }
            }))
            .unwrap(),
        )
        .unwrap();

    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let org = json_line(
        checkin_command(&data, db, first_port)
            .args(["org", "create", "--name", "Кафе", "--email", "c@example.ru"])
            .output()
            .unwrap(),
    );
    let premises = json_line(
        checkin_command(&data, db, first_port)
            .args([
                "premises",
                "add",
                "--org",
                &org["id"].to_string(),
                "--address",
                "ул. Тверская, 13",
            ])
            .output()
            .unwrap(),
    );
    let text = format!("ВХОД*{}", premises["code"].as_str().unwrap());

    let mut child = serve(&data, db, first_port, &first, "serve-1.log").await;
    let permits = Arc::new(Semaphore::new(LOAD_CONCURRENCY));
    let mut tasks = Vec::new();
    for i in 0..MO_COUNT {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (sim, text) = (first.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            let report = sim.inject_mo(MoRequest::new(phone(i), &text)).await;
            drop(permit);
            matches!(&report, Ok(r) if r.status == "ESME_ROK")
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap(), "every MO is acknowledged");
    }
    // Some replies reached the SMSC (unanswered); the rest wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    while total(&first) == 0 {
        assert!(Instant::now() < deadline, "no reply reached the SMSC");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The SMSC vanishes (the link keeps trying to bind), or stays bound with
    // its window full and every answer 30 s away. Then SIGTERM.
    if vanish {
        first_stop.cancel();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sigterm(&child);
    let took = exits_within(
        &mut child,
        Duration::from_millis(SHUTDOWN_TIMEOUT_MS) + EXIT_SLACK,
    );
    let state = if vanish { "gone" } else { "stalled" };
    eprintln!("serve stopped {took:?} after SIGTERM with the SMSC {state}");
    first_stop.cancel();

    // Started again against a live SMSC: every queued reply goes out.
    let (second, second_port, second_stop) = smsc().await;
    let mut child = serve(&data, db, second_port, &second, "serve-2.log").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..MO_COUNT {
        loop {
            let got = received(&[&first, &second], &phone(i));
            if got >= 1 {
                assert!(got <= 2, "{}: {got} copies", phone(i));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never got its confirmation ({} of {MO_COUNT} delivered before the restart)",
                phone(i),
                total(&first)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!(
        "{} replies reached the first SMSC, {} the second",
        total(&first),
        total(&second)
    );
    sigterm(&child);
    exits_within(
        &mut child,
        Duration::from_millis(SHUTDOWN_TIMEOUT_MS) + EXIT_SLACK,
    );
    second_stop.cancel();
}
