//! Helpers shared by the integration tests: the bundled simulator on
//! 127.0.0.1:0, handlers that record what they get, a scriptable fake
//! SMSC (for what the simulator cannot do: 16-bit references, SAR TLVs,
//! receipts before responses, silent windows, raw bytes of a hostile
//! peer) and a freezable TCP proxy.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use rusmpp::{Command, CommandStatus, Pdu};
use simulator::{Config, Simulator};
use smsc_link::{
    codec::{Frame, LinkCodec},
    HandlerError, LinkConfig, Mo, MoHandler, Receipt, ReceiptHandler,
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_util::{codec::Framed, sync::CancellationToken};

/// Longest any test waits for an event before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running simulator.
pub struct Sim {
    pub sim: Simulator,
    pub smpp: SocketAddr,
    pub shutdown: CancellationToken,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start_sim(config: Config) -> Sim {
    let sim = Simulator::new(config).expect("simulator config");
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let smpp = listener.local_addr().expect("addr");
    tokio::spawn(sim.clone().serve_smpp(listener, shutdown.clone()));
    Sim {
        sim,
        smpp,
        shutdown,
    }
}

/// A link configuration for `addr` with test-sized timeouts.
pub fn link_config(addr: SocketAddr) -> LinkConfig {
    LinkConfig {
        response_timeout_ms: 2_000,
        reconnect_backoff_min_ms: 20,
        reconnect_backoff_max_ms: 200,
        throttle_backoff_min_ms: 20,
        throttle_backoff_max_ms: 200,
        segments_per_second: 0,
        ..LinkConfig::new(addr.ip().to_string(), addr.port(), "checkin", "checkin")
    }
}

/// What the handlers saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Mo(Mo),
    MoFailed(Mo),
    Receipt(Receipt),
}

/// A handler for both MO and receipts that records every call; it fails
/// the first `fail_mo` MO calls.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Event>,
    fail_mo: Arc<AtomicUsize>,
}

pub fn recorder(fail_mo: usize) -> (Recorder, mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Recorder {
            tx,
            fail_mo: Arc::new(AtomicUsize::new(fail_mo)),
        },
        rx,
    )
}

impl MoHandler for Recorder {
    async fn on_mo(&self, mo: Mo) -> Result<(), HandlerError> {
        let fail = self
            .fail_mo
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            let _ = self.tx.send(Event::MoFailed(mo));
            return Err(HandlerError("storage unavailable".into()));
        }
        let _ = self.tx.send(Event::Mo(mo));
        Ok(())
    }
}

impl ReceiptHandler for Recorder {
    async fn on_receipt(&self, receipt: Receipt) -> Result<(), HandlerError> {
        let _ = self.tx.send(Event::Receipt(receipt));
        Ok(())
    }
}

/// The next event, or a test failure after [`WAIT`].
pub async fn next_event(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("handlers alive")
}

/// A scriptable SMSC on 127.0.0.1:0: the test drives each connection.
pub struct Fake {
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

impl Fake {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Self { listener, addr }
    }

    /// Accepts one connection and answers its bind with `status`.
    pub async fn accept(&self, status: CommandStatus) -> Conn {
        let (socket, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("a connection in time")
            .expect("accept");
        let mut conn = Conn {
            framed: Framed::new(socket, LinkCodec::default()),
            seq: 1000,
        };
        let bind = conn.read().await;
        let resp = match bind.pdu() {
            Some(Pdu::BindTransceiver(_)) => Pdu::BindTransceiverResp(Default::default()),
            Some(Pdu::BindTransmitter(_)) => Pdu::BindTransmitterResp(Default::default()),
            Some(Pdu::BindReceiver(_)) => Pdu::BindReceiverResp(Default::default()),
            other => panic!("expected a bind, got {other:?}"),
        };
        conn.send(Command::new(status, bind.sequence_number(), resp))
            .await;
        conn
    }

    /// Accepts one connection and reads its bind without answering it.
    pub async fn accept_unanswered(&self) -> (Conn, Command) {
        let (socket, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("a connection in time")
            .expect("accept");
        let mut conn = Conn {
            framed: Framed::new(socket, LinkCodec::default()),
            seq: 1000,
        };
        let bind = conn.read().await;
        (conn, bind)
    }
}

/// One connection of the fake SMSC.
pub struct Conn {
    pub framed: Framed<TcpStream, LinkCodec>,
    seq: u32,
}

impl Conn {
    /// The next PDU (enquire_link answered on the way).
    pub async fn read(&mut self) -> Command {
        loop {
            let frame = tokio::time::timeout(WAIT, self.framed.next())
                .await
                .expect("a pdu in time")
                .expect("connection open")
                .expect("readable");
            match frame {
                Frame::Command(c) if matches!(c.pdu(), Some(Pdu::EnquireLink)) => {
                    let resp = Command::new(
                        CommandStatus::EsmeRok,
                        c.sequence_number(),
                        Pdu::EnquireLinkResp,
                    );
                    self.send(resp).await;
                }
                Frame::Command(c) => return *c,
                Frame::Undecodable { command_id, .. } => {
                    panic!("undecodable pdu 0x{command_id:08x}")
                }
                Frame::SubmitSmResp { .. } => panic!("submit_sm_resp sent to the smsc"),
                Frame::BadLength { command_length, .. } => {
                    panic!("command_length {command_length} from the link")
                }
            }
        }
    }

    pub async fn send(&mut self, command: Command) {
        self.framed.send(command).await.expect("write");
    }

    /// Sends a request and returns its sequence number.
    pub async fn request(&mut self, pdu: impl Into<Pdu>) -> u32 {
        self.seq += 1;
        let seq = self.seq;
        self.send(Command::new(CommandStatus::EsmeRok, seq, pdu))
            .await;
        seq
    }

    /// Reads PDUs until the response to `seq`; returns its status.
    pub async fn response_to(&mut self, seq: u32) -> CommandStatus {
        loop {
            let c = self.read().await;
            if c.sequence_number() == seq {
                return c.status();
            }
        }
    }

    /// Writes `bytes` as they are (a hostile or broken SMSC).
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        let socket = self.framed.get_mut();
        socket.write_all(bytes).await.expect("write");
        socket.flush().await.expect("flush");
    }

    /// The next frame as read, `None` once the link closed the connection.
    pub async fn frame(&mut self) -> Option<Frame> {
        match tokio::time::timeout(WAIT, self.framed.next()).await {
            Ok(Some(Ok(frame))) => Some(frame),
            Ok(None | Some(Err(_))) => None,
            Err(_) => panic!("neither a pdu nor a close within {WAIT:?}"),
        }
    }

    /// The next frame, which must be a command.
    pub async fn command(&mut self) -> Command {
        match self.frame().await {
            Some(Frame::Command(c)) => *c,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    /// Waits for the link to close the connection; what it wrote meanwhile.
    pub async fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.frame().await {
            frames.push(frame);
        }
        frames
    }

    pub async fn close(self) {
        let mut socket = self.framed.into_inner();
        let _ = socket.shutdown().await;
    }
}

/// A TCP proxy to `target` that can silence the SMSC→ESME direction of
/// the connections opened so far (bytes swallowed, connection kept open):
/// a link that went silent. Later connections work normally.
pub struct Proxy {
    pub addr: SocketAddr,
    /// Connections numbered below this (from 0) are silenced.
    pub silenced_below: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
}

impl Proxy {
    /// Silences every connection opened so far.
    pub fn silence(&self) {
        self.silenced_below
            .store(self.connections.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

pub async fn proxy(target: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silenced_below = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let (silenced, count) = (Arc::clone(&silenced_below), Arc::clone(&connections));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let number = count.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let silenced = Arc::clone(&silenced);
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
            });
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if number < silenced.load(Ordering::SeqCst) {
                        continue;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Proxy {
        addr,
        silenced_below,
        connections,
    }
}

/// A handler that holds every MO until the test adds permits to `release`
/// (one per MO), and counts how many it holds at once.
#[derive(Clone)]
pub struct Slow {
    pub release: Arc<tokio::sync::Semaphore>,
    pub seen: Arc<AtomicUsize>,
    pub running: Arc<AtomicUsize>,
    pub running_most: Arc<AtomicUsize>,
}

impl Default for Slow {
    fn default() -> Self {
        Self {
            release: Arc::new(tokio::sync::Semaphore::new(0)),
            seen: Arc::default(),
            running: Arc::default(),
            running_most: Arc::default(),
        }
    }
}

impl Slow {
    /// Waits until the handler was called `n` times.
    pub async fn wait_seen(&self, n: usize) {
        tokio::time::timeout(WAIT, async {
            while self.seen.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} MO handled in time"));
    }
}

impl MoHandler for Slow {
    async fn on_mo(&self, _mo: Mo) -> Result<(), HandlerError> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.running_most.fetch_max(now, Ordering::SeqCst);
        let permit = self.release.acquire().await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        permit
            .map(|p| p.forget())
            .map_err(|_| HandlerError("closed".into()))
    }
}

impl ReceiptHandler for Slow {
    async fn on_receipt(&self, _receipt: Receipt) -> Result<(), HandlerError> {
        Ok(())
    }
}
