//! Submit throughput of the link (windows 1, 10, 100) against the bundled
//! simulator and against a bare echo SMSC, beside the ceiling of a bare
//! `rusmpp` loopback (a framed echo server answering `submit_sm_resp` at
//! once, driven by a minimal windowed client) measured in the same run;
//! plus the memory held by 100 000 queued submits.
//!
//! `cargo bench -p smsc-link --bench submit` (env `BENCH_N` = submits per
//! run, default 50 000; window 1 runs a tenth of it; `BENCH_THREADS` =
//! runtime workers, default 2).

use std::{
    collections::VecDeque,
    net::SocketAddr,
    time::{Duration, Instant},
};

use futures::{FutureExt, SinkExt, StreamExt};
use rusmpp::{
    pdus::{BindTransceiverResp, SubmitSm, SubmitSmResp},
    tokio_codec::CommandCodec,
    types::{COctetString, OctetString},
    values::DataCoding,
    Command, CommandStatus, Pdu,
};
use smsc_link::{
    HandlerError, Link, LinkConfig, Mo, MoHandler, Receipt, ReceiptHandler, SubmitOptions,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{codec::Framed, sync::CancellationToken};

const TEXT: &str = "Вы отметились: Тверская, 7";

struct Nobody;
impl MoHandler for Nobody {
    async fn on_mo(&self, _mo: Mo) -> Result<(), HandlerError> {
        Ok(())
    }
}
impl ReceiptHandler for Nobody {
    async fn on_receipt(&self, _receipt: Receipt) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// A bare SMSC: answers binds, enquire_link, unbind and every submit_sm at once.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut framed = Framed::new(socket, CommandCodec::new());
                let mut id: u64 = 0;
                while let Some(Ok(command)) = framed.next().await {
                    let seq = command.sequence_number();
                    let pdu: Pdu = match command.pdu() {
                        Some(Pdu::SubmitSm(_)) => {
                            id += 1;
                            let message_id =
                                COctetString::from_string(format!("{id:08x}")).unwrap_or_default();
                            SubmitSmResp::builder()
                                .message_id(message_id)
                                .build()
                                .into()
                        }
                        Some(Pdu::BindTransceiver(_)) => BindTransceiverResp::default().into(),
                        Some(Pdu::EnquireLink) => Pdu::EnquireLinkResp,
                        Some(Pdu::Unbind) => Pdu::UnbindResp,
                        _ => continue,
                    };
                    let resp = Command::new(CommandStatus::EsmeRok, seq, pdu);
                    // Feed, and flush only when no more requests are buffered.
                    if framed.feed(resp).await.is_err() {
                        break;
                    }
                    if framed.read_buffer().len() < 16
                        && SinkExt::<Command>::flush(&mut framed).await.is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// The ceiling: a minimal windowed rusmpp client against the echo server.
async fn bare_ceiling(addr: SocketAddr, window: usize, n: usize) -> f64 {
    let socket = TcpStream::connect(addr).await.expect("connect");
    let _ = socket.set_nodelay(true);
    let mut framed = Framed::new(socket, CommandCodec::new());
    let body = SubmitSm::builder()
        .source_addr(COctetString::from_string("7377".into()).unwrap_or_default())
        .destination_addr(COctetString::from_string("79161234567".into()).unwrap_or_default())
        .data_coding(DataCoding::Ucs2)
        .short_message(
            OctetString::from_vec(TEXT.encode_utf16().flat_map(|u| u.to_be_bytes()).collect())
                .unwrap_or_default(),
        )
        .build();
    let started = Instant::now();
    let (mut sent, mut done, mut seq) = (0usize, 0usize, 0u32);
    let mut outstanding = VecDeque::new();
    while done < n {
        while sent < n && outstanding.len() < window {
            seq += 1;
            framed
                .feed(Command::new(CommandStatus::EsmeRok, seq, body.clone()))
                .await
                .expect("write");
            outstanding.push_back(seq);
            sent += 1;
        }
        SinkExt::<Command>::flush(&mut framed).await.expect("flush");
        // Wait for one response, then take every one already buffered
        // before refilling the window with a single flush.
        let mut next = framed.next().await;
        loop {
            match next {
                Some(Ok(c)) if matches!(c.pdu(), Some(Pdu::SubmitSmResp(_))) => {
                    if let Some(at) = outstanding.iter().position(|s| *s == c.sequence_number()) {
                        outstanding.remove(at);
                    }
                    done += 1;
                }
                Some(Ok(_)) => {}
                _ => panic!("echo server closed"),
            }
            match framed.next().now_or_never() {
                Some(more) => next = more,
                None => break,
            }
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn config(addr: SocketAddr, window_max: usize, queue_max: usize) -> LinkConfig {
    LinkConfig {
        window_max,
        queue_max,
        segments_per_second: 0,
        ..LinkConfig::new(addr.ip().to_string(), addr.port(), "checkin", "checkin")
    }
}

/// Submits through the link, pipelined: every message queued at once.
async fn through_link(addr: SocketAddr, window: usize, n: usize) -> f64 {
    let link = Link::start(config(addr, window, n + 1), Nobody, Nobody).expect("config");
    assert!(link.wait_bound(1).await);
    let started = Instant::now();
    let mut replies = Vec::with_capacity(n);
    for _ in 0..n {
        replies.push(
            link.enqueue("+79161234567", TEXT, &SubmitOptions::default())
                .await
                .expect("queued"),
        );
    }
    for reply in replies {
        match reply.await {
            Ok(Ok(smsc_link::SubmitOutcome::Accepted { .. })) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    link.shutdown().await;
    rate
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// RSS growth with `n` submits queued on a link that cannot bind.
async fn queued_memory(n: usize) -> (u64, u64) {
    // A port nobody listens on: the link keeps reconnecting, nothing drains.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let before = rss_kib();
    let link = Link::start(config(addr, 100, n + 1), Nobody, Nobody).expect("config");
    let started = Instant::now();
    let mut replies = Vec::with_capacity(n);
    for _ in 0..n {
        replies.push(
            link.enqueue("+79161234567", TEXT, &SubmitOptions::default())
                .await
                .expect("queued"),
        );
    }
    let after = rss_kib();
    println!(
        "enqueue alone (split, encode, queue): {:.0} submits/s",
        n as f64 / started.elapsed().as_secs_f64()
    );
    link.shutdown().await;
    drop(replies);
    (before, after)
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let threads: usize = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    // Everything runs as a spawned task on the workers, as callers of the
    // link do in the product (not on the thread blocked in `block_on`).
    let bench = runtime.spawn(async move {
        let echo = echo_server().await;
        let sim = simulator::Simulator::new(simulator::Config {
            limits: simulator::config::Limits {
                messages_max: 1_000,
                ..Default::default()
            },
            ..simulator::Config::default()
        })
        .expect("simulator");
        let shutdown = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sim_addr = listener.local_addr().expect("addr");
        tokio::spawn(sim.clone().serve_smpp(listener, shutdown.clone()));

        println!("submits per second, {n} submits per run (window 1: {}), UCS2 single segment", n / 10);
        println!("| window | bare rusmpp ceiling | link → echo SMSC | link → simulator | link→echo / ceiling |");
        println!("|---:|---:|---:|---:|---:|");
        // Warm-up: sockets, allocator, simulator.
        let _ = bare_ceiling(echo, 10, 1_000).await;
        let _ = through_link(sim_addr, 10, 1_000).await;
        for window in [1usize, 10, 100] {
            let runs = if window == 1 { n / 10 } else { n };
            let ceiling = bare_ceiling(echo, window, runs).await;
            let link_echo = through_link(echo, window, runs).await;
            let link_sim = through_link(sim_addr, window, runs).await;
            println!(
                "| {window} | {ceiling:.0} | {link_echo:.0} | {link_sim:.0} | {:.0}% |",
                100.0 * link_echo / ceiling
            );
        }
        let queued = 100_000;
        let (before, after) = queued_memory(queued).await;
        println!(
            "\nRSS with {queued} submits queued: {before} KiB before, {after} KiB after: {:.0} bytes per queued submit",
            (after.saturating_sub(before) as f64 * 1024.0) / queued as f64
        );
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
    runtime.block_on(bench).expect("bench task");
}
