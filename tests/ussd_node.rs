//! Interop with an independent USSD gateway: `tests/node/ussd_gateway.js`,
//! built on the npm package `smpp` (node-smpp), listens as the operator's
//! SMSC; the real gateway binds to it (`[smsc]`), and the peer dials
//! `*7377*CODE#` and `*7377#` (answering the question with the code) and
//! reports the screens it read. Runs `npm ci` there first when
//! `node_modules` is missing (`scripts/test` does it too).

mod common;

use std::process::Stdio;

use checkin::gateway::{Gateway, GatewayOptions};
use checkin_core::texts::ussd as screens;
use common::node::{line, node_dir, npm_ci_once};
use serde_json::Value;
use smsc_link::LinkConfig;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

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
