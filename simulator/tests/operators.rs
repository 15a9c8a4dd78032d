//! One process playing three operators (`[[operator]]`): MOs reach only the
//! bind of the operator their number belongs to, MTs are listed with their
//! operator, faults stay with one operator, the load spreads over all.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{http, Raw};
use rusmpp::{CommandStatus, Pdu};
use simulator::{
    esme::{Esme, EsmeError, EsmeOptions},
    load::{run_spread, LoadConfig},
    Config, Network,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Three operators: A (+7916), B (+7903), C (a range under +7926); each
/// its own account.
const CONFIG: &str = r#"
[delivery]
attempts_max = 1
backoff_initial_ms = 10

[[operator]]
name = "A"
smpp = "127.0.0.1:0"
accounts = ["gwa:pwa"]
ranges = ["+7916"]

[[operator]]
name = "B"
smpp = "127.0.0.1:0"
accounts = ["gwb:pwb"]
ranges = ["+7903"]
receipts = { delay_ms = 10 }

[[operator]]
name = "C"
accounts = ["gwc:pwc"]
ranges = ["+79261000000-+79261999999"]
"#;

const OPERATORS: [(&str, &str, &str); 3] = [
    ("A", "gwa", "pwa"),
    ("B", "gwb", "pwb"),
    ("C", "gwc", "pwc"),
];

struct Running {
    net: Network,
    http: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    fn smpp(&self, name: &str) -> SocketAddr {
        self.net.smpp_addr(name).expect("operator listening")
    }

    async fn esme(&self, name: &str, reply_to_mo: bool) -> Esme {
        let (_, system_id, password) = OPERATORS.iter().find(|o| o.0 == name).expect("operator");
        Esme::connect(
            self.smpp(name),
            EsmeOptions {
                system_id: (*system_id).into(),
                password: (*password).into(),
                reply_to_mo,
                ..EsmeOptions::default()
            },
        )
        .await
        .expect("bind")
    }
}

async fn start() -> Running {
    let config: Config = toml::from_str(CONFIG).expect("config parses");
    let net = Network::new(config, "127.0.0.1:0".parse().expect("addr")).expect("network");
    let shutdown = CancellationToken::new();
    let listeners = net.bind_smpp().await.expect("bind smpp");
    let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let http = http_listener.local_addr().expect("addr");
    tokio::spawn(net.clone().serve_smpp(listeners, shutdown.clone()));
    tokio::spawn(net.clone().serve_http(http_listener, shutdown.clone()));
    Running {
        net,
        http,
        shutdown,
    }
}

/// `deliver_sm` the ESME has received so far (it keeps them after answering).
async fn drain(esme: &mut Esme) -> Vec<String> {
    let mut sources = Vec::new();
    while let Ok(Some(deliver)) =
        tokio::time::timeout(Duration::from_millis(300), esme.next_deliver()).await
    {
        sources.push(deliver.source_addr.to_string());
    }
    sources
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn mo_goes_through_the_operator_of_its_number() {
    let run = start().await;
    let mut a = run.esme("A", false).await;
    let mut b = run.esme("B", false).await;
    let mut c = run.esme("C", false).await;
    // Accounts are per operator: A's account does not bind to B.
    let refused = Esme::connect(
        run.smpp("B"),
        EsmeOptions {
            system_id: "gwa".into(),
            password: "pwa".into(),
            ..EsmeOptions::default()
        },
    )
    .await;
    assert!(
        matches!(refused, Err(EsmeError::BindRefused(_))),
        "{refused:?}"
    );

    let senders = [
        ("+79161110001", "A"),
        ("+79161110002", "A"),
        ("+7 916 111-00-03", "A"),
        ("+79031110001", "B"),
        ("79031110002", "B"),
        ("+79261234567", "C"),
        // In no range: the first operator.
        ("+79991110001", "A"),
    ];
    for (from, operator) in senders {
        let body = format!(r#"{{"from":"{from}","text":"ВХОД*123-456-789"}}"#);
        let (status, answer) = http(run.http, "POST", "/api/mo", Some(&body)).await;
        assert_eq!(status, 200, "{answer}");
        let answer = json(&answer);
        assert_eq!(answer["operator"], operator, "{from}: {answer}");
        assert_eq!(answer["status"], "ESME_ROK");
    }
    assert_eq!(
        drain(&mut a).await,
        ["79161110001", "79161110002", "79161110003", "79991110001"]
    );
    assert_eq!(drain(&mut b).await, ["79031110001", "79031110002"]);
    assert_eq!(drain(&mut c).await, ["79261234567"]);
    for (name, delivered) in [("A", 4), ("B", 2), ("C", 1)] {
        let stats = run.net.simulator(name).expect("operator").stats();
        assert_eq!(stats.mo.delivered, delivered, "{name}");
        assert_eq!(stats.mo.injected, delivered, "{name}");
    }

    // An MT on B's bind is listed as B's.
    let resp = b
        .submit_text("7377", "+79031110001", "Вы вошли", false)
        .await
        .expect("submit");
    assert_eq!(resp.status(), CommandStatus::EsmeRok);
    let (status, list) = http(run.http, "GET", "/api/messages", None).await;
    assert_eq!(status, 200);
    let list = json(&list);
    let messages = list["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{list}");
    assert_eq!(messages[0]["operator"], "B");
    assert_eq!(messages[0]["system_id"], "gwb");
    assert_eq!(messages[0]["to"], "+79031110001");
    for (query, count) in [
        ("?operator=B", 1),
        ("?operator=A", 0),
        ("?operator=C&to=79031110001", 0),
    ] {
        let (status, list) = http(run.http, "GET", &format!("/api/messages{query}"), None).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(
            json(&list)["messages"].as_array().map(Vec::len),
            Some(count),
            "{query}"
        );
    }
    let (status, _) = http(run.http, "GET", "/api/messages?operator=Z", None).await;
    assert_eq!(status, 404);

    // Stats: today's fields summed, and each operator's.
    let (_, stats) = http(run.http, "GET", "/api/stats", None).await;
    let stats = json(&stats);
    assert_eq!(stats["mo"]["delivered"], 7, "{stats}");
    assert_eq!(stats["binds"]["current"]["transceiver"], 3, "{stats}");
    assert_eq!(stats["operators"]["A"]["mo"]["delivered"], 4);
    assert_eq!(stats["operators"]["B"]["mo"]["delivered"], 2);
    assert_eq!(stats["operators"]["B"]["pdus_in"]["submit_sm"], 1);
    assert_eq!(stats["operators"]["C"]["mo"]["delivered"], 1);

    let (_, operators) = http(run.http, "GET", "/api/operators", None).await;
    let operators = json(&operators);
    let list = operators["operators"].as_array().expect("operators");
    assert_eq!(list.len(), 3);
    assert_eq!(list[1]["name"], "B");
    assert_eq!(list[1]["smpp"], run.smpp("B").to_string());
    assert_eq!(list[1]["ranges"], serde_json::json!(["+7903"]));
    assert_eq!(
        list[1]["esmes"],
        serde_json::json!([{"system_id": "gwb", "bind": "transceiver"}])
    );
    assert_eq!(
        list[2]["ranges"],
        serde_json::json!(["+79261000000-+79261999999"])
    );

    let (_, route) = http(run.http, "GET", "/api/route?from=%2B79261000000", None).await;
    assert_eq!(json(&route)["operator"], "C");
    let (status, page) = http(run.http, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("/api/route"));
}

#[tokio::test]
async fn faults_of_one_operator_leave_the_others_alone() {
    let run = start().await;
    let b = run.esme("B", false).await;
    let (status, body) = http(
        run.http,
        "PUT",
        "/api/faults?operator=A",
        Some(r#"{"disconnect_share":1}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(run.http, "PUT", "/api/faults?operator=Z", Some("{}")).await;
    assert_eq!(status, 404);

    // A cuts every connection at its first PDU, the bind included.
    let mut raw = Raw::connect(run.smpp("A")).await;
    raw.send(common::bind_trx("gwa", "pwa")).await;
    assert!(raw.next_or_eof().await.is_none(), "A's bind was answered");
    // B keeps answering and delivering.
    let mut raw_b = Raw::connect(run.smpp("B")).await;
    assert_eq!(raw_b.bind_trx("gwb", "pwb").await, CommandStatus::EsmeRok);
    raw_b.send(Pdu::EnquireLink).await;
    assert!(raw_b.next_or_eof().await.is_some());
    for i in 0..3 {
        let resp = b
            .submit_text("7377", &format!("+7903000000{i}"), "OK", false)
            .await
            .expect("B answers");
        assert_eq!(resp.status(), CommandStatus::EsmeRok);
    }
    let sim = |name| run.net.simulator(name).expect("operator");
    assert_eq!(sim("A").stats().disconnects, 1);
    assert_eq!(sim("B").stats().disconnects, 0);
    assert_eq!(sim("B").messages(None, 100).len(), 3);
    assert_eq!(sim("A").faults().disconnect_share, 1.0);
    assert_eq!(sim("C").faults().disconnect_share, 0.0);
    let (_, faults) = http(run.http, "GET", "/api/faults?operator=A", None).await;
    assert_eq!(json(&faults)["disconnect_share"], 1.0);

    // Without ?operator every operator gets the profile.
    let (status, _) = http(
        run.http,
        "PUT",
        "/api/faults",
        Some(r#"{"throttle_per_s":7}"#),
    )
    .await;
    assert_eq!(status, 200);
    for name in ["A", "B", "C"] {
        assert_eq!(sim(name).faults().throttle_per_s, Some(7), "{name}");
        assert_eq!(sim(name).faults().disconnect_share, 0.0, "{name}");
    }
}

#[tokio::test]
async fn load_spreads_over_three_operators() {
    let run = start().await;
    let mut esmes = Vec::new();
    for (name, _, _) in OPERATORS {
        esmes.push(run.esme(name, true).await);
    }
    let config = LoadConfig {
        rate_per_s: 300.0,
        duration: Duration::from_millis(400),
        phones: 30,
        ..LoadConfig::default()
    };
    let report = run_spread(&run.net, &[], config, &run.shutdown).await;
    assert_eq!(report.operators.len(), 3, "{report:?}");
    let mut sent = 0;
    for (name, _, _) in OPERATORS {
        let r = &report.operators[name];
        let sim = run.net.simulator(name).expect("operator");
        assert!(r.sent >= 10, "{name}: {r:?}");
        assert_eq!(r.delivered, r.sent, "{name}: {r:?}");
        assert_eq!(r.replies, r.sent, "{name}: {r:?}");
        // Each operator's SMSC saw exactly its share, from its own numbers.
        assert_eq!(sim.stats().mo.delivered, r.sent, "{name}");
        let messages = sim.messages(None, 10_000);
        assert_eq!(messages.len() as u64, r.sent, "{name}");
        for m in &messages {
            assert_eq!(run.net.route(&m.to).0, name, "{name}: {}", m.to);
        }
        sent += r.sent;
    }
    assert_eq!(report.total.sent, sent);
    assert_eq!(report.total.delivered, sent);
    assert_eq!(report.total.deliver_latency.count as u64, sent);
}

#[tokio::test]
async fn cli_starts_every_operator_and_spreads_the_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("operators.toml");
    std::fs::write(&path, CONFIG).expect("write config");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(["--http", "127.0.0.1:0", "--config"])
        .arg(&path)
        .args([
            "load",
            "--rate",
            "150",
            "--duration",
            "500ms",
            "--phones",
            "6",
        ])
        .args(["--self-esme", "--operators", "all"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("load timed out")
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for name in ["A", "B", "C"] {
        assert!(
            stderr.lines().any(|l| l.contains("operator listening")
                && l.contains(&format!("operator={name} smpp=127.0.0.1:"))),
            "{stderr}"
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json report");
    let mut sent = 0;
    for name in ["A", "B", "C"] {
        let r = &report["operators"][name];
        let n = r["sent"].as_u64().expect("sent");
        assert!(n >= 10, "{report}");
        assert_eq!(r["delivered"], n, "{report}");
        assert_eq!(r["replies"], n, "{report}");
        sent += n;
    }
    assert_eq!(report["sent"], sent, "{report}");

    // A bad range names its operator and key.
    std::fs::write(&path, CONFIG.replace("+7903\"", "+79o3\"")).expect("write config");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(["--http", "127.0.0.1:0", "--config"])
        .arg(&path)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("operator \"B\": ranges"), "{stderr}");
}

#[tokio::test]
async fn ussd_dials_through_the_operator_of_the_number() {
    let run = start().await;
    let _a = run.esme("A", true).await;
    let _b = run.esme("B", true).await;
    let body = r##"{"from":"+79031234567","dial":"*7377*123456789#"}"##;
    let (status, screen) = http(run.http, "POST", "/api/ussd", Some(body)).await;
    assert_eq!(status, 200, "{screen}");
    let screen = json(&screen);
    assert_eq!(screen["operator"], "B", "{screen}");
    assert_eq!(screen["screen"], "OK", "{screen}");
    assert!(
        screen["dialog"]
            .as_str()
            .is_some_and(|d| d.starts_with("B.")),
        "{screen}"
    );
    let sim = |name| run.net.simulator(name).expect("operator");
    assert_eq!(sim("B").stats().ussd.completed, 1);
    assert_eq!(sim("A").stats().ussd.opened, 0);
    for dialog in ["B.ussd-99", "ussd-1", "Z.ussd-1"] {
        let (status, _) = http(run.http, "DELETE", &format!("/api/ussd/{dialog}"), None).await;
        assert_eq!(status, 404, "{dialog}");
    }
}

/// `foreign = "refuse"`: an SMSC that reaches only its own subscribers
/// answers a message for another operator's number ESME_RINVDSTADR, and
/// delivers its own; the default delivers both (interconnect).
#[tokio::test]
async fn an_operator_that_refuses_foreign_numbers_says_invalid_destination() {
    let config = CONFIG.replace(
        "accounts = [\"gwb:pwb\"]",
        "accounts = [\"gwb:pwb\"]\nforeign = \"refuse\"",
    );
    let config: Config = toml::from_str(&config).expect("config parses");
    let net = Network::new(config, "127.0.0.1:0".parse().expect("addr")).expect("network");
    let shutdown = CancellationToken::new();
    let listeners = net.bind_smpp().await.expect("bind smpp");
    tokio::spawn(net.clone().serve_smpp(listeners, shutdown.clone()));
    let run = Running {
        net,
        http: "127.0.0.1:9".parse().expect("addr"),
        shutdown,
    };
    let b = run.esme("B", false).await;
    let own = b
        .submit_text("7377", "+79031110001", "свой", false)
        .await
        .expect("submit");
    assert_eq!(own.status(), CommandStatus::EsmeRok);
    let foreign = b
        .submit_text("7377", "+79161110001", "чужой", false)
        .await
        .expect("submit");
    assert_eq!(foreign.status(), CommandStatus::EsmeRinvdstadr);
    // A delivers another operator's number (the default).
    let a = run.esme("A", false).await;
    let across = a
        .submit_text("7377", "+79031110002", "через", false)
        .await
        .expect("submit");
    assert_eq!(across.status(), CommandStatus::EsmeRok);
}
