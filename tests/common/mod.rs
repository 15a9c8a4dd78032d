//! End-to-end harness: a real gateway (storage + link + pipeline + notifier)
//! with the bundled simulator on 127.0.0.1:0, driven only through the
//! simulator's HTTP control API, on SQLite and (when configured) PostgreSQL.

#![allow(dead_code)] // each test binary uses a different part

#[path = "../../checkin-core/tests/common/mod.rs"]
mod dbs;

pub mod browser;
pub mod cli;
pub mod node;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use checkin::config::{Config, OperatorConfig, Overrides};
use checkin::gateway::{Gateway, GatewayOptions};
use checkin_core::store::{NewOrganization, NewPremises};
use checkin_core::{Premises, StoreConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running gateway and where to reach its simulator.
pub struct Running {
    pub label: &'static str,
    pub gateway: Gateway,
    pub http: SocketAddr,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
}

/// Backends to run on: SQLite always, PostgreSQL when the environment names one.
pub async fn backends() -> Vec<(&'static str, Option<String>)> {
    let mut out = vec![("sqlite", None)];
    if let Some(pg) = dbs::postgres(StoreConfig::default()).await {
        pg.store.close().await;
        out.push(("postgres", Some(pg.url)));
    }
    out
}

pub fn config(data_dir: &std::path::Path, database_url: Option<&str>) -> Config {
    let overrides = Overrides {
        data_dir: Some(data_dir.to_owned()),
        database_url: database_url.map(str::to_owned),
        sim_smpp: Some("127.0.0.1:0".parse().unwrap()),
        sim_http: Some("127.0.0.1:0".parse().unwrap()),
        http: Some("127.0.0.1:0".parse().unwrap()),
        send_rate: Some(1000),
        ..Overrides::default()
    };
    Config::resolve(&overrides).unwrap()
}

/// [`config`] with `toml` as its `checkin.toml` (written into `data_dir`),
/// as an operator writes `[[operator]]` sections.
pub fn config_with_file(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    toml: &str,
) -> Config {
    let path = data_dir.join("checkin.toml");
    std::fs::write(&path, toml).unwrap();
    let overrides = Overrides {
        config: Some(path),
        data_dir: Some(data_dir.to_owned()),
        database_url: database_url.map(str::to_owned),
        http: Some("127.0.0.1:0".parse().unwrap()),
        send_rate: Some(1000),
        ..Overrides::default()
    };
    Config::resolve(&overrides).unwrap()
}

/// Makes `link` the configuration's one operator, `default` (what a
/// `[smsc]` section gives), with the simulator's USSD profile.
pub fn one_operator(config: &mut Config, link: smsc_link::LinkConfig) {
    let name = checkin_core::OperatorName::new("default").unwrap();
    config.operators = vec![OperatorConfig {
        name: name.clone(),
        link,
        ranges: Vec::new(),
        ussd: config.simulator_ussd.clone(),
    }];
    config.default_operator = Some(name);
}

pub async fn start_with(
    label: &'static str,
    config: Config,
    data_dir: tempfile::TempDir,
) -> Running {
    let options = GatewayOptions::from_config(&config);
    start_with_options(label, config, options, data_dir).await
}

pub async fn start_with_options(
    label: &'static str,
    config: Config,
    options: GatewayOptions,
    data_dir: tempfile::TempDir,
) -> Running {
    let gateway = Gateway::start(&config, options).await.unwrap();
    let sim = gateway
        .simulator
        .clone()
        .expect("no [smsc]: the simulator runs");
    tokio::time::timeout(Duration::from_secs(20), gateway.link.wait_bound(1))
        .await
        .expect("the link binds to the simulator");
    Running {
        label,
        gateway,
        http: sim.http_addr,
        database_url: config.database_url,
        data_dir,
    }
}

pub async fn start(label: &'static str, database_url: Option<String>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), database_url.as_deref());
    start_with(label, config, dir).await
}

impl Running {
    pub async fn premises(&self, address: &str) -> Premises {
        premises_in(&self.gateway.store, address).await
    }

    /// `POST /api/mo`: the simulator delivers the text and reports the ESME's answer.
    pub async fn send_mo(&self, from: &str, text: &str) -> Value {
        let (status, body) = http(
            self.http,
            "POST",
            "/api/mo",
            Some(&json!({ "from": from, "to": "7377", "text": text })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `GET /api/messages?to=…`: what the gateway sent to `to`.
    pub async fn messages_to(&self, to: &str) -> Vec<String> {
        let path = format!("/api/messages?to={}", to.replace('+', "%2B"));
        let (status, body) = http(self.http, "GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["complete"].as_bool() == Some(true))
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits (bounded) until `to` has received `n` messages; returns them.
    pub async fn until_messages(&self, to: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.messages_to(to).await;
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {to} got {got:?}, wanted {n}",
                self.label
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.gateway.shutdown().await;
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough for the
/// control API's JSON.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    http_as(addr, method, path, None, body).await
}

/// `GET /readyz`: (status, the text).
pub async fn readyz(web: SocketAddr) -> (u16, String) {
    let (status, body) = http(web, "GET", "/readyz", None).await;
    (status, body.as_str().unwrap_or_default().to_owned())
}

/// One request to the web's API with a bearer `token` (an authority's or
/// an organization's); (status, JSON body).
pub async fn api(
    web: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    http_as(web, method, path, Some(token), body).await
}

async fn http_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let authorization = bearer
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// The body of a `Transfer-Encoding: chunked` answer.
pub fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// `n` alerts of `text` queued in the outbox, the i-th to `phone(i)`, one
/// transaction each (as the notifier will find them).
pub async fn enqueue_alerts(
    store: &checkin_core::Store,
    text: &str,
    n: usize,
    phone: impl Fn(usize) -> String,
) {
    enqueue_messages(store, text, n, checkin_core::Priority::Alert, phone).await;
}

/// `n` messages of `text` at `priority` queued in the outbox, the i-th to
/// `phone(i)`, one transaction each.
pub async fn enqueue_messages(
    store: &checkin_core::Store,
    text: &str,
    n: usize,
    priority: checkin_core::Priority,
    phone: impl Fn(usize) -> String,
) {
    for i in 0..n {
        let new = checkin_core::NewMessage {
            recipient: checkin_core::Msisdn::parse(&phone(i)).unwrap(),
            text: text.to_owned(),
            priority,
        };
        store
            .outbox()
            .enqueue(&new, chrono::Utc::now())
            .await
            .unwrap();
    }
}

/// Premises at `address` of a fresh organization.
pub async fn premises_in(store: &checkin_core::Store, address: &str) -> Premises {
    let now = chrono::Utc::now();
    let org = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Кафе".into(),
                email: format!("cafe{}@example.ru", rand::random::<u32>()),
                password: None,
            },
            now,
        )
        .await
        .unwrap();
    store
        .orgs()
        .add_premises(
            &NewPremises {
                org_id: org.organization.id,
                address: address.into(),
                kind: None,
                stay_minutes: None,
            },
            now,
        )
        .await
        .unwrap()
}
