//! Helpers shared by the integration tests: a simulator on 127.0.0.1:0 and
//! a raw SMPP client that sees every PDU.

#![allow(dead_code)]

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use rusmpp::{
    pdus::{BindTransceiver, BindTransmitter},
    types::COctetString,
    values::InterfaceVersion,
    Command, CommandStatus, Pdu,
};
use simulator::{Config, Inbound, Simulator, SmppCodec};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{codec::Framed, sync::CancellationToken};

/// A running simulator.
pub struct Running {
    pub sim: Simulator,
    pub smpp: SocketAddr,
    pub http: SocketAddr,
    pub shutdown: CancellationToken,
    pub smpp_task: tokio::task::JoinHandle<Result<(), simulator::Error>>,
}

pub async fn start(config: Config) -> Running {
    let sim = Simulator::new(config).expect("config");
    let shutdown = CancellationToken::new();
    let smpp_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smpp");
    let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let smpp = smpp_listener.local_addr().expect("addr");
    let http = http_listener.local_addr().expect("addr");
    let smpp_task = tokio::spawn(sim.clone().serve_smpp(smpp_listener, shutdown.clone()));
    tokio::spawn(sim.clone().serve_http(http_listener, shutdown.clone()));
    Running {
        sim,
        smpp,
        http,
        shutdown,
        smpp_task,
    }
}

/// A raw client: sends commands, reads every PDU.
pub struct Raw {
    pub framed: Framed<TcpStream, SmppCodec>,
    seq: u32,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            framed: Framed::new(stream, SmppCodec::new(65_536)),
            seq: 0,
        }
    }

    pub async fn send(&mut self, pdu: impl Into<Pdu>) -> u32 {
        self.seq += 1;
        let command = Command::new(CommandStatus::EsmeRok, self.seq, pdu);
        self.framed.send(&command).await.expect("send");
        self.seq
    }

    pub async fn respond(&mut self, seq: u32, pdu: impl Into<Pdu>) {
        let command = Command::new(CommandStatus::EsmeRok, seq, pdu);
        self.framed.send(&command).await.expect("send");
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.framed.get_mut().write_all(bytes).await.expect("write");
    }

    /// Next decoded command (panics on EOF or an invalid frame).
    pub async fn next(&mut self) -> Command {
        match self.framed.next().await {
            Some(Ok(Inbound::Command(c))) => *c,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    /// Next frame, or None at EOF.
    pub async fn next_or_eof(&mut self) -> Option<Command> {
        match self.framed.next().await {
            Some(Ok(Inbound::Command(c))) => Some(*c),
            _ => None,
        }
    }

    pub async fn call(&mut self, pdu: impl Into<Pdu>) -> Command {
        let seq = self.send(pdu).await;
        let response = self.next().await;
        assert_eq!(response.sequence_number(), seq);
        response
    }

    pub async fn bind_trx(&mut self, system_id: &str, password: &str) -> CommandStatus {
        self.call(bind_trx(system_id, password)).await.status()
    }
}

pub fn bind_trx(system_id: &str, password: &str) -> BindTransceiver {
    BindTransceiver::builder()
        .system_id(COctetString::from_string(system_id.into()).expect("system_id"))
        .password(COctetString::from_string(password.into()).expect("password"))
        .interface_version(InterfaceVersion::Smpp3_4)
        .build()
}

pub fn bind_tx(system_id: &str, password: &str) -> BindTransmitter {
    BindTransmitter::builder()
        .system_id(COctetString::from_string(system_id.into()).expect("system_id"))
        .password(COctetString::from_string(password.into()).expect("password"))
        .interface_version(InterfaceVersion::Smpp3_4)
        .build()
}

/// A minimal HTTP/1.1 call against the real control API; returns the status
/// code and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect http");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_string())
}
