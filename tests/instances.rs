//! Several instances, one PostgreSQL: two `checkin serve` processes on one
//! database and one simulator drain the same outbox of alerts. No message
//! is sent twice (rows are claimed with `FOR UPDATE SKIP LOCKED`), both
//! instances send some, and each keeps to its own share of the operator's
//! contract (`[smsc] segments_per_second`, which the alerts' rate follows by
//! default), never over it in any second, counted per segment and bind
//! account in the simulator. PostgreSQL only: skipped with a note when none is
//! configured, failed when `CHECKIN_TEST_REQUIRE_POSTGRES=1`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use checkin_core::{Keys, PhoneVault, Store, StoreConfig};
use simulator::{Account, Simulator};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Alerts queued for the two instances together.
const ALERTS: usize = 500;
/// Each instance's share of the contract, in segments per second (the
/// seed's alert is 3 segments): 15 + 7 alerts per second in all, below
/// what one debug-built instance sends, so that the shares are what binds.
const SHARES: [(&str, u32); 2] = [("inst-a", 45), ("inst-b", 21)];

/// One instance: its own data folder and bind account, the shared database
/// and keys.
fn checkin_command(data: &Path, db: &str, smpp_port: u16, system_id: &str, rate: u32) -> Command {
    let config = data.join("checkin.toml");
    std::fs::write(
        &config,
        format!(
            "[smsc]\nhost = \"127.0.0.1\"\nport = {smpp_port}\nsystem_id = \"{system_id}\"\n\
             password = \"checkin\"\nsegments_per_second = {rate}\n\n\
             [notifier]\nrecipient_daily_max = 0\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_CONFIG", &config)
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_DATABASE_URL", db)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SEND_RATE", "2000")
        .env("CHECKIN_LOG", "warn")
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// The instances, killed when the test ends, even by a panic.
struct Instances(Vec<Child>);

impl Drop for Instances {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_outbox_without_sending_twice() {
    let Some(pg) = common::backends()
        .await
        .into_iter()
        .find_map(|(label, db)| (label == "postgres").then_some(db).flatten())
    else {
        eprintln!("note: no PostgreSQL configured; the two-instance test is skipped");
        return;
    };

    let token = CancellationToken::new();
    let sim_config = simulator::Config {
        accounts: SHARES
            .iter()
            .map(|(id, _)| Account::new(*id, "checkin"))
            .collect(),
        ..simulator::Config::default()
    };
    let sim = Simulator::new(sim_config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smpp_port = listener.local_addr().unwrap().port();
    tokio::spawn(sim.clone().serve_smpp(listener, token.clone()));

    // One key file, copied to each instance's data folder.
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = SHARES.iter().map(|(id, _)| root.path().join(id)).collect();
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    let keys = Keys::load_or_create(&dirs[0].join("keys.toml")).unwrap();
    std::fs::copy(dirs[0].join("keys.toml"), dirs[1].join("keys.toml")).unwrap();
    let store = Store::open(&pg, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();

    // Queued while held by the kill switch, then released to both at once.
    store
        .flags()
        .set_alerts_paused(true, chrono::Utc::now())
        .await
        .unwrap();
    let text = checkin_core::texts::exposure_alert(
        chrono::Utc::now() - chrono::Duration::days(1),
        &checkin_core::ServiceZone::default(),
    );
    common::enqueue_alerts(&store, &text, ALERTS, |i| format!("+79161{i:06}")).await;
    let mut children = Instances(Vec::new());
    for (dir, (id, rate)) in dirs.iter().zip(SHARES) {
        children.0.push(
            checkin_command(dir, &pg, smpp_port, id, rate)
                .spawn()
                .unwrap(),
        );
    }
    let bound = tokio::time::timeout(Duration::from_secs(30), sim.wait_for_receivers(2, &token))
        .await
        .expect("both instances bind within 30 s");
    assert!(bound);
    store
        .flags()
        .set_alerts_paused(false, chrono::Utc::now())
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut by_recipient: HashMap<String, usize> = HashMap::new();
        for m in sim.messages(None, 100_000) {
            if m.complete && m.text == text {
                *by_recipient.entry(m.to.clone()).or_default() += 1;
            }
        }
        if by_recipient.len() == ALERTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {ALERTS} alerts arrived",
            by_recipient.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let any second copy arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = sim.messages(None, 100_000);
    assert_eq!(
        messages.len(),
        ALERTS,
        "a message was sent twice (or a part went astray)"
    );
    for (id, rate) in SHARES {
        let sent = messages.iter().filter(|m| m.system_id == id).count();
        let peak = sim.busiest_second_segments(Some(id));
        eprintln!("{id}: {sent} alerts, at most {peak} segments in one second (share {rate})");
        // Each claims only a few seconds of its own rate, so each gets about
        // its share of the work; half of it at least.
        let total: u32 = SHARES.iter().map(|(_, r)| r).sum();
        let fair = ALERTS * rate as usize / total as usize;
        assert!(
            sent >= fair / 2,
            "{id} sent {sent} of {ALERTS}, its fair share being {fair}"
        );
        assert!(
            peak <= rate as usize,
            "{id} sent {peak} segments in one second, over its share of {rate}"
        );
    }

    drop(children);
    store.close().await;
    token.cancel();
}
