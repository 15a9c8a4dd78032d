//! Interop with an independent SMPP client: the PyPI `smpplib` ESME in
//! `tests/py/esme.py` binds, receives an injected Cyrillic MO, submits a
//! 3-part UCS2 reply that `GET /api/messages` shows reassembled, and gets
//! its receipts.
//!
//! Needs `python3`. When `import smpplib` fails the test installs it with
//! `python3 -m pip install --quiet smpplib` (PyPI must be reachable then).

mod common;

use std::{path::Path, time::Duration};

use simulator::{config::ReceiptConfig, Config};
use tokio::process::Command;

/// Time the Python ESME may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

async fn ensure_smpplib() {
    let probe = Command::new("python3")
        .args(["-c", "import smpplib"])
        .status()
        .await;
    match probe {
        Ok(status) if status.success() => return,
        Ok(_) => {}
        Err(e) => panic!("python3 is needed for the interop test: {e}"),
    }
    let install = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "smpplib"])
        .status()
        .await
        .expect("run pip");
    assert!(install.success(), "pip install smpplib failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpplib_esme_round_trip() {
    ensure_smpplib().await;
    let config = Config {
        receipts: ReceiptConfig {
            delay_ms: 50,
            ..ReceiptConfig::default()
        },
        ..Config::default()
    };
    let run = common::start(config).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/esme.py");
    let child = Command::new("python3")
        .arg(&script)
        .args(["--smpp-port", &run.smpp.port().to_string()])
        .args(["--http-port", &run.http.port().to_string()])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child)
        .await
        .expect("python esme timed out")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python esme failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("interop ok"), "{stdout}");
    let stats = run.sim.stats();
    assert_eq!(stats.pdus_in.get("submit_sm"), Some(&3));
}
