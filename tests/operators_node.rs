//! Issue 20, interop: two operators, one played by the bundled simulator's
//! network, the other by an independent SMSC (`tests/node/sms_smsc.js`, on
//! the npm package `smpp`). An MO through each is answered through the SMSC
//! it came through, and only there.

mod common;

use std::process::Stdio;
use std::time::Duration;

use checkin::gateway::{Gateway, GatewayOptions};
use common::node::{line, node_dir, npm_ci_once, WAIT};
use serde_json::{json, Value};
use simulator::Network;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// The node peer's subscriber.
const NODE_PHONE: &str = "79771234567";
/// A simulator subscriber.
const SIM_PHONE: &str = "+79161110001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_through_an_independent_smsc_is_answered_there_and_the_simulators_there() {
    npm_ci_once().await;
    let dir = tempfile::tempdir().unwrap();
    // The premises first (their code is the peer's argument), in the store
    // the gateway will open.
    let probe_config = common::config(dir.path(), None);
    let probe = Gateway::start(&probe_config, GatewayOptions::from_config(&probe_config))
        .await
        .unwrap();
    let premises = common::premises_in(&probe.store, "ул. Тверская, 13").await;
    probe.shutdown().await;

    let sim_config: simulator::Config = toml::from_str(
        r#"
[[operator]]
name = "mts"
accounts = ["gwa:pwa"]
ranges = ["+7916"]
"#,
    )
    .unwrap();
    let net = Network::new(sim_config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let stop = CancellationToken::new();
    let listeners = net.bind_smpp().await.unwrap();
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_http = http_listener.local_addr().unwrap();
    tokio::spawn(net.clone().serve_smpp(listeners, stop.clone()));
    tokio::spawn(net.clone().serve_http(http_listener, stop.clone()));

    let mut peer = Command::new("node")
        .arg("sms_smsc.js")
        .arg("0")
        .arg(premises.code.digits())
        .arg(NODE_PHONE)
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(peer.stdout.take().expect("stdout")).lines();
    let port: u16 = line(&mut lines, "PORT ").await.parse().expect("a port");

    let operators = format!(
        r#"
[[operator]]
name = "mts"
host = "127.0.0.1"
port = {}
system_id = "gwa"
password = "pwa"
ranges = ["+7916"]

[[operator]]
name = "tele2"
host = "127.0.0.1"
port = {port}
system_id = "nodegw"
password = "nodepw"
ranges = ["+7977"]
"#,
        net.smpp_addr("mts").unwrap().port()
    );
    let config = common::config_with_file(dir.path(), None, &operators);
    let gateway = Gateway::start(&config, GatewayOptions::from_config(&config))
        .await
        .unwrap();

    // The independent SMSC's subscriber: acknowledged, answered there (the
    // peer may read the reply before the acknowledgement's callback runs:
    // both lines, in either order).
    assert_eq!(line(&mut lines, "BIND ").await, "nodegw");
    let (mut acked, mut reply) = (None, None);
    while acked.is_none() || reply.is_none() {
        let next = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("peer output in time")
            .expect("readable")
            .expect("peer still running");
        if let Some(status) = next.strip_prefix("MO acked ") {
            acked = Some(status.trim().to_owned());
        } else if let Some(json) = next.strip_prefix("SMS ") {
            reply = Some(serde_json::from_str::<Value>(json).unwrap());
        }
    }
    assert_eq!(acked.as_deref(), Some("0"));
    let reply = reply.unwrap();
    assert_eq!(reply["to"], NODE_PHONE, "{reply}");
    let text = reply["text"].as_str().unwrap();
    assert!(text.starts_with("Вход отмечен"), "{text}");

    // The simulator's subscriber: answered through the simulator only.
    let (status, body) = common::http(
        sim_http,
        "POST",
        "/api/mo",
        Some(
            &json!({ "from": SIM_PHONE, "to": "7377", "text": format!("ВХОД*{}", premises.code) }),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/messages?to={}", SIM_PHONE.replace('+', "%2B"));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, body) = common::http(sim_http, "GET", &path, None).await;
        let messages = body["messages"].as_array().unwrap().clone();
        if let Some(m) = messages.iter().find(|m| m["complete"] == true) {
            assert_eq!(m["operator"], "mts", "{m}");
            assert!(m["text"].as_str().unwrap().starts_with("Вход отмечен"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reply at the simulator"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing more reached the independent SMSC.
    let more = tokio::time::timeout(Duration::from_millis(500), lines.next_line()).await;
    assert!(
        !matches!(&more, Ok(Ok(Some(l))) if l.starts_with("SMS ")),
        "{more:?}"
    );

    gateway.shutdown().await;
    stop.cancel();
    let _ = peer.kill().await;
}
