//! Interop with an independent USSD gateway: `tests/node/ussd_gateway.js`,
//! built on the npm package `smpp` (node-smpp), listens as the operator's
//! SMSC; the real gateway binds to it (`[smsc]`), and the peer dials
//! `*7377*CODE#` and `*7377#` (answering the question with the code) and
//! reports the screens it read. Runs `npm ci` there first when
//! `node_modules` is missing (`scripts/test` does it too).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use checkin::gateway::{Gateway, GatewayOptions};
use checkin_core::texts::ussd as screens;
use serde_json::Value;
use smsc_link::LinkConfig;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(30);

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

async fn npm_ci_once() {
    let dir = node_dir();
    if dir.join("node_modules/smpp").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .status()
        .await
        .expect("npm runs");
    assert!(status.success(), "npm ci failed");
}

/// The peer's next line starting with `prefix`, without it.
async fn line(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    loop {
        let next = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("peer output in time")
            .expect("readable")
            .expect("peer still running");
        assert!(
            !next.starts_with("UNMATCHED") && !next.starts_with("REFUSED"),
            "{next}"
        );
        if let Some(rest) = next.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
}

async fn screen(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    serde_json::from_str(&line(lines, "SCREEN ").await).expect("json")
}

#[tokio::test]
async fn node_smpp_ussd_gateway_dials_one_shot_and_menu() {
    npm_ci_once().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), None);
    // The premises first (its code is the peer's argument): the store is
    // the gateway's, opened here before the peer is started.
    let probe = Gateway::start(&config, GatewayOptions::from_config(&config))
        .await
        .unwrap();
    let premises = common::premises_in(&probe.store, "ул. Тверская, 13").await;
    probe.shutdown().await;

    let mut peer = Command::new("node")
        .arg("ussd_gateway.js")
        .arg("0")
        .arg(premises.code.digits())
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(peer.stdout.take().expect("stdout")).lines();
    let port: u16 = line(&mut lines, "PORT ").await.parse().expect("a port");
    common::one_operator(
        &mut config,
        LinkConfig::new("127.0.0.1", port, "checkin", "checkin"),
    );
    let gateway = Gateway::start(&config, GatewayOptions::from_config(&config))
        .await
        .unwrap();
    assert_eq!(line(&mut lines, "BIND ").await, "checkin");

    // One-shot: the final screen (PSSR response, end of session set).
    let one_shot = screen(&mut lines).await;
    assert_eq!(one_shot["to"], "79161234567", "{one_shot}");
    assert_eq!(one_shot["from"], "7377", "{one_shot}");
    assert_eq!(one_shot["ussd_service_op"], 17, "{one_shot}");
    assert_eq!(one_shot["data_coding"], 8, "{one_shot}");
    assert_eq!(one_shot["its_session_info"], serde_json::json!([1, 3]));
    let text = one_shot["text"].as_str().unwrap();
    assert!(
        text.starts_with("Вход отмечен: ул. Тверская, 13, "),
        "{text}"
    );

    // The menu: the question (USSR request, the session goes on), then the
    // final screen after the answer.
    let question = screen(&mut lines).await;
    assert_eq!(question["to"], "79161234568", "{question}");
    assert_eq!(question["ussd_service_op"], 2, "{question}");
    assert_eq!(question["its_session_info"], serde_json::json!([2, 2]));
    assert_eq!(question["text"], screens::ask());
    let last = screen(&mut lines).await;
    assert_eq!(last["ussd_service_op"], 17, "{last}");
    assert_eq!(last["its_session_info"], serde_json::json!([2, 7]));
    let text = last["text"].as_str().unwrap();
    assert!(
        text.starts_with("Вход отмечен: ул. Тверская, 13, "),
        "{text}"
    );
    line(&mut lines, "DONE").await;

    gateway.shutdown().await;
    let _ = peer.kill().await;
}
