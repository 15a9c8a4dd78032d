//! The `simulator` binary's command line: accounts from flags, and the
//! `load` subcommand's JSON report.

mod common;

use std::{process::Stdio, time::Duration};

use rusmpp::CommandStatus;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

/// Time the binary may take to start or to finish a short load run.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn accounts_come_from_flags() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args([
            "--smpp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--account",
            "gw1:secret1",
        ])
        .args(["--account", "gw2:secret2"])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn simulator");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let smpp = tokio::time::timeout(CLI_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some(rest) = line.split("smpp=").nth(1) {
                return rest.split_whitespace().next().expect("address").to_string();
            }
        }
        panic!("the simulator exited before listening");
    })
    .await
    .expect("simulator start timed out");
    let mut c = common::Raw::connect(smpp.parse().expect("socket address")).await;
    assert_eq!(
        c.bind_trx("checkin", "checkin").await,
        CommandStatus::EsmeRinvsysid
    );
    assert_eq!(
        c.bind_trx("gw1", "secret2").await,
        CommandStatus::EsmeRinvpaswd
    );
    assert_eq!(c.bind_trx("gw2", "secret2").await, CommandStatus::EsmeRok);
}

#[tokio::test]
async fn load_reports_json() {
    let child = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(["--smpp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args([
            "load",
            "--rate",
            "100",
            "--duration",
            "500ms",
            "--phones",
            "5",
            "--self-esme",
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(CLI_TIMEOUT, child)
        .await
        .expect("load timed out")
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("MO -> deliver_sm_resp ms: p50"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    let sent = report["sent"].as_u64().expect("sent");
    assert!(sent >= 40, "{report}");
    assert_eq!(report["delivered"], sent);
    assert_eq!(report["replies"], sent);
    assert!(report["reply_latency"]["p99_ms"].as_f64().is_some());
}
