//! Crash test for alert delivery: the real binary is killed with SIGKILL
//! while 1 000 alerts are being sent and started again against the same
//! simulator. Every alert reaches the simulator at least once, no more
//! duplicates than the SMSC window (`window_max`) can hold in doubt, and once
//! the kill switch is set (from another process, through storage) no alert
//! reaches the SMSC more than a second later. On both backends (PostgreSQL when the test script provides one).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use checkin_core::{Keys, PhoneVault, Store, StoreConfig};
use simulator::Simulator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Alerts queued before the kill.
const ALERTS: usize = 1_000;
/// Alerts queued after the restart, stopped by the kill switch.
const ALERTS_AFTER: usize = 300;
/// The link's window: the most submits a killed process can leave unrecorded.
const WINDOW_MAX: usize = 10;
/// The alerts' rate: 100 alerts/s (3 segments each), so the kill lands
/// mid-way through the 1 000.
const ALERT_SEGMENTS_PER_SECOND: u32 = 300;
/// Quiet time after which the kill switch counts as having taken effect.
const KILL_SWITCH_GRACE: Duration = Duration::from_millis(2_000);
/// The bound: no alert reaches the SMSC later than this after the
/// switch was set in another process (it reads storage every 250 ms, and
/// takes back what its link still queues; only segments already written
/// finish).
const KILL_SWITCH_WITHIN: Duration = Duration::from_secs(1);

/// The real binary on `data` (SQLite there, or the database `db`), pointed
/// at the simulator on `smpp_port` by a `checkin.toml`.
fn checkin_command(data: &Path, db: Option<&str>, smpp_port: u16) -> Command {
    let config = data.join("checkin.toml");
    std::fs::write(
        &config,
        format!(
            "[smsc]\nhost = \"127.0.0.1\"\nport = {smpp_port}\nsystem_id = \"checkin\"\n\
             password = \"checkin\"\nwindow_max = {WINDOW_MAX}\n\n\
             [notifier]\nalert_segments_per_second = {ALERT_SEGMENTS_PER_SECOND}\n\
             recipient_daily_max = 0\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkin"));
    cmd.env_clear();
    if let Some(url) = db {
        cmd.env("CHECKIN_DATABASE_URL", url);
    }
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_CONFIG", &config)
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SEND_RATE", "2000")
        .env("CHECKIN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// The gateway process, killed when the test ends, even by a panic.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(
    data: &Path,
    db: Option<&str>,
    smpp_port: u16,
    sim: &Simulator,
    token: &CancellationToken,
) -> Gateway {
    let child = Gateway(checkin_command(data, db, smpp_port).spawn().unwrap());
    let bound = tokio::time::timeout(Duration::from_secs(30), sim.wait_for_receivers(1, token))
        .await
        .expect("the gateway binds within 30 s");
    assert!(bound);
    child
}

fn phone(batch: usize, i: usize) -> String {
    format!("+7916{batch}{i:06}")
}

/// Complete alerts the simulator received, by recipient (digits only).
fn alerts_by_recipient(sim: &Simulator, text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for m in sim.messages(None, 100_000) {
        if m.complete && m.text == text {
            *out.entry(m.to.trim_start_matches('+').to_owned())
                .or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_sending_alerts_loses_none_and_bounds_duplicates() {
    for (label, db) in common::backends().await {
        crash_and_restart(label, db.as_deref()).await;
    }
}

async fn crash_and_restart(label: &str, db: Option<&str>) {
    let token = CancellationToken::new();
    let sim = Simulator::new(simulator::Config::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smpp_port = listener.local_addr().unwrap().port();
    tokio::spawn(sim.clone().serve_smpp(listener, token.clone()));

    // The test's own handle on the gateway's storage, with its keys.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let keys = Keys::load_or_create(&data.join("keys.toml")).unwrap();
    let url = db
        .map(str::to_owned)
        .unwrap_or_else(|| checkin_core::store::sqlite_url_in(&data));
    let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    // The seed's alert: 3 UCS2 segments.
    let text = checkin_core::texts::exposure_alert(
        chrono::Utc::now() - chrono::Duration::days(1),
        &checkin_core::ServiceZone::default(),
    );
    common::enqueue_alerts(&store, &text, ALERTS, |i| phone(1, i)).await;

    let child = serve(&data, db, smpp_port, &sim, &token).await;
    // Kill once about a third are through, with the rest still queued.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.messages(None, 100_000).len() < ALERTS / 3 {
        assert!(Instant::now() < deadline, "{label}: alerts do not flow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(child);
    let at_kill = alerts_by_recipient(&sim, &text).len();
    eprintln!("{label}: killed with {at_kill} of {ALERTS} alerts through");
    assert!(
        at_kill < ALERTS,
        "{label}: the kill must land mid-way ({at_kill} of {ALERTS} through)"
    );
    let child = serve(&data, db, smpp_port, &sim, &token).await;

    // Every alert arrives at least once.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = alerts_by_recipient(&sim, &text);
        if (0..ALERTS).all(|i| got.contains_key(phone(1, i).trim_start_matches('+'))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: {} of {ALERTS} alerts arrived after the restart",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Duplicates: at most what the killed process had in its window.
    let got = alerts_by_recipient(&sim, &text);
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    eprintln!("{label}: {duplicates} duplicate alerts across the kill");
    assert!(
        duplicates <= WINDOW_MAX,
        "{label}: {duplicates} duplicates, more than the window ({WINDOW_MAX})"
    );

    // The kill switch, set from this process while more alerts flow.
    common::enqueue_alerts(&store, &text, ALERTS_AFTER, |i| phone(2, i)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.messages(None, 100_000).len() < got.values().sum::<usize>() + 20 {
        assert!(Instant::now() < deadline, "{label}: new alerts do not flow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store
        .flags()
        .set_alerts_paused(true, chrono::Utc::now())
        .await
        .unwrap();
    let at_switch = Instant::now();
    let count_at_switch = sim.messages(None, 100_000).len();
    // Segments already written before the switch still finish; wait until
    // the count holds still for the grace, then it must stay still.
    let mut settled = count_at_switch;
    let mut still_since = Instant::now();
    while still_since.elapsed() < KILL_SWITCH_GRACE {
        assert!(
            at_switch.elapsed() < Duration::from_secs(60),
            "{label}: alerts keep flowing after the kill switch"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = sim.messages(None, 100_000).len();
        if now != settled {
            settled = now;
            still_since = Instant::now();
        }
    }
    eprintln!(
        "{label}: {} alerts went out after the kill switch, the last {:?} after it",
        settled - count_at_switch,
        still_since.duration_since(at_switch)
    );
    let last_after = still_since.duration_since(at_switch);
    assert!(
        settled == count_at_switch || last_after <= KILL_SWITCH_WITHIN,
        "{label}: the last alert arrived {last_after:?} after the kill switch"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = sim.messages(None, 100_000).len();
    assert!(
        settled < got.values().sum::<usize>() + ALERTS_AFTER,
        "{label}: the kill switch stopped nothing"
    );
    assert_eq!(later, settled, "{label}: alerts sent after the kill switch");

    drop(child);
    store.close().await;
    token.cancel();
}
