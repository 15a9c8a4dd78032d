//! Crash test: the gateway process is killed with SIGKILL under MO load and
//! started again. Every MO the simulator saw acknowledged with ESME_ROK must be
//! in the database, and every stored check-in must get its confirmation.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkin_core::{Keys, Msisdn, PhoneVault, Store, StoreConfig};
use simulator::{MoRequest, Simulator};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// MO injected in all; the kill comes once a third of them are acknowledged.
const MO_COUNT: usize = 600;
/// MO in flight at once from the load.
const LOAD_CONCURRENCY: usize = 32;

fn checkin_command(data: &Path, smpp_port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHECKIN_DATA_DIR", data)
        .env("CHECKIN_HTTP", "127.0.0.1:0")
        .env("CHECKIN_SMSC_HOST", "127.0.0.1")
        .env("CHECKIN_SMSC_PORT", smpp_port.to_string())
        .env("CHECKIN_SMSC_SYSTEM_ID", "checkin")
        .env("CHECKIN_SMSC_PASSWORD", "checkin")
        .env("CHECKIN_SEND_RATE", "2000")
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

async fn serve(data: &Path, smpp_port: u16, sim: &Simulator, token: &CancellationToken) -> Child {
    let child = checkin_command(data, smpp_port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bound = tokio::time::timeout(Duration::from_secs(30), sim.wait_for_receivers(1, token))
        .await
        .expect("the gateway binds within 30 s");
    assert!(bound);
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_mo() {
    let token = CancellationToken::new();
    let sim = Simulator::new(simulator::Config::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smpp_port = listener.local_addr().unwrap().port();
    tokio::spawn(sim.clone().serve_smpp(listener, token.clone()));

    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let org = json_line(
        checkin_command(&data, smpp_port)
            .args([
                "org",
                "create",
                "--name",
                "Магазин",
                "--email",
                "shop@example.ru",
            ])
            .output()
            .unwrap(),
    );
    let premises = json_line(
        checkin_command(&data, smpp_port)
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

    let mut child = serve(&data, smpp_port, &sim, &token).await;

    // The load: distinct phones, so each acknowledged MO is one check-in.
    let permits = Arc::new(Semaphore::new(LOAD_CONCURRENCY));
    let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..MO_COUNT {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (load_sim, text, acked) = (sim.clone(), text.clone(), acked.clone());
        let phone = format!("+79170{i:06}");
        tasks.push(tokio::spawn(async move {
            let report = load_sim.inject_mo(MoRequest::new(&phone, &text)).await;
            drop(permit);
            let ok = matches!(&report, Ok(r) if r.status == "ESME_ROK");
            if ok {
                acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            (phone, ok)
        }));
        if i == MO_COUNT / 3 {
            // Mid-load: kill the gateway without warning, then start it again.
            let in_flight = LOAD_CONCURRENCY - permits.available_permits();
            assert!(in_flight > 0, "the kill must come with MO in flight");
            child.kill().unwrap();
            child.wait().unwrap();
            child = serve(&data, smpp_port, &sim, &token).await;
        }
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        let (phone, ok) = task.await.unwrap();
        if ok {
            acknowledged.push(phone);
        }
    }
    eprintln!(
        "{} of {MO_COUNT} MO acknowledged across the kill",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > MO_COUNT / 2,
        "most MO are acknowledged ({} of {MO_COUNT})",
        acknowledged.len()
    );

    // Every acknowledged MO is in the database (read with the gateway's keys).
    let keys = Keys::load_or_create(&data.join("keys.toml")).unwrap();
    let url = checkin_core::store::sqlite_url_in(&data);
    let store = Store::open(&url, PhoneVault::new(&keys), StoreConfig::default())
        .await
        .unwrap();
    for phone in &acknowledged {
        let visits = store
            .checkins()
            .checkins_of(&Msisdn::parse(phone).unwrap())
            .await
            .unwrap();
        assert_eq!(
            visits.len(),
            1,
            "{phone} was acknowledged but is not stored"
        );
    }

    // Every stored check-in gets its confirmation (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..MO_COUNT {
        let phone = format!("+79170{i:06}");
        if store
            .checkins()
            .checkins_of(&Msisdn::parse(&phone).unwrap())
            .await
            .unwrap()
            .is_empty()
        {
            continue;
        }
        loop {
            let got = sim.messages(Some(&phone), 10);
            if got
                .iter()
                .any(|m| m.complete && m.text.starts_with("Вход отмечен: ул. Тверская, 13"))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{phone} is stored but got no confirmation"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    store.close().await;
    child.kill().unwrap();
    child.wait().unwrap();
    token.cancel();
}
