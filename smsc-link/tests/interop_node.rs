//! Interop with an independent SMSC: `tests/node/server.js`, built on the
//! npm package `smpp` (node-smpp). Checks bind_transceiver, a UCS2 MO, a
//! Cyrillic reply with a receipt request, and the receipt matched to it.
//! Runs `npm install` there first when `node_modules` is missing.

mod common;

use std::{path::PathBuf, process::Stdio};

use common::{link_config, next_event, recorder, Event, WAIT};
use smsc_link::{DeliveryState, Link, SubmitOptions, SubmitOutcome};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{ChildStdout, Command},
};

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

async fn npm_install_once() {
    let dir = node_dir();
    if dir.join("node_modules/smpp").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .await
        .expect("npm runs");
    assert!(status.success(), "npm install failed");
}

/// The next stdout line of the server starting with `prefix`, without it.
async fn line(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    loop {
        let next = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("server output in time")
            .expect("readable")
            .expect("server still running");
        if let Some(rest) = next.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
}

#[tokio::test]
async fn bind_mo_reply_and_receipt_with_node_smpp() {
    npm_install_once().await;
    let mut server = Command::new("node")
        .arg("server.js")
        .arg("0")
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let stdout = server.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port: u16 = line(&mut lines, "PORT ").await.parse().expect("a port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    let (handler, mut events) = recorder(0);
    let link = Link::start(link_config(addr), handler.clone(), handler).expect("config");
    assert_eq!(line(&mut lines, "BIND ").await, "checkin");

    // The UCS2 MO, decoded, and acknowledged ESME_ROK after the handler.
    match next_event(&mut events).await {
        Event::Mo(mo) => {
            assert_eq!(mo.text, "ВХОД*123-456-789");
            assert_eq!(mo.from, "+79161234567");
            assert_eq!(mo.to, "7377");
        }
        other => panic!("expected the MO, got {other:?}"),
    }
    assert_eq!(line(&mut lines, "MO_RESP ").await, "0");

    // The reply, in UCS2, with a receipt requested.
    let reply = "Вы отметились: Тверская, 7";
    let options = SubmitOptions {
        registered_delivery: true,
        ..SubmitOptions::default()
    };
    let ids = match link.submit("+79161234567", reply, options).await {
        Ok(SubmitOutcome::Accepted { message_ids }) => message_ids,
        other => panic!("expected Accepted, got {other:?}"),
    };
    let submit: serde_json::Value =
        serde_json::from_str(&line(&mut lines, "SUBMIT ").await).expect("json");
    assert_eq!(submit["text"], reply);
    assert_eq!(submit["data_coding"], 8);
    assert_eq!(submit["to"], "79161234567");
    assert_eq!(submit["from"], "7377");

    match next_event(&mut events).await {
        Event::Receipt(r) => {
            assert_eq!(r.message_id, ids[0]);
            assert_eq!(Some(r.raw_message_id.as_str()), submit["id"].as_str());
            assert_eq!(r.state, DeliveryState::Delivered);
        }
        other => panic!("expected the receipt, got {other:?}"),
    }
    assert_eq!(line(&mut lines, "RECEIPT_RESP ").await, "0");
    link.shutdown().await;
    let _ = server.kill().await;
}
