//! Throughput benchmark: `deliver_sm` round trips per second the simulator
//! sustains against a trivial ESME that answers every `deliver_sm` at once,
//! at windows 1, 10 and 100, next to the bare `rusmpp` loopback ceiling (a
//! framed echo of the same PDU over a loopback TCP socket).
//!
//! `cargo bench -p simulator --bench throughput`; `BENCH_RUNS` (default 5)
//! and `BENCH_SECS` (default 2) set the runs per case and their length.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use rusmpp::{
    pdus::DeliverSmResp, tokio_codec::CommandCodec, Command, CommandId, CommandStatus, Pdu,
};
use simulator::{
    esme::{Esme, EsmeOptions},
    pdu::mo_deliver_sm,
    text::{encode_parts, Encoding},
    Config, MoRequest, Simulator,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{codec::Framed, sync::CancellationToken};

const TEXT: &str = "ВХОД*123-456-789";
const PHONE: &str = "+79161234567";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Round trips per second through the simulator with `window` MOs in flight.
async fn simulator_run(window: usize, secs: u64) -> f64 {
    let mut config = Config::default();
    config.limits.outbound_window_max = window;
    let sim = Simulator::new(config).expect("simulator");
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(sim.clone().serve_smpp(listener, shutdown.clone()));
    let esme = Esme::connect(
        addr,
        EsmeOptions {
            keep_delivers: false,
            ..EsmeOptions::default()
        },
    )
    .await
    .expect("esme");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let workers: Vec<_> = (0..window)
        .map(|_| {
            let sim = sim.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let report = sim
                        .inject_mo(MoRequest::new(PHONE, TEXT))
                        .await
                        .expect("mo");
                    assert!(report.delivered);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    drop(esme);
    shutdown.cancel();
    let _ = server.await;
    rate
}

/// Round trips per second of a bare rusmpp client/echo pair, same PDU, same window.
async fn loopback_run(window: usize, secs: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        socket.set_nodelay(true).expect("nodelay");
        let mut framed = Framed::new(socket, CommandCodec::new());
        while let Some(Ok(command)) = framed.next().await {
            let resp = Command::new(
                CommandStatus::EsmeRok,
                command.sequence_number(),
                DeliverSmResp::default(),
            );
            if framed.send(&resp).await.is_err() {
                break;
            }
        }
    });
    let socket = TcpStream::connect(addr).await.expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    // One task owns the socket, as the simulator's session does.
    let mut framed = Framed::new(socket, CommandCodec::new());
    let encoded = encode_parts(TEXT, Encoding::Ucs2, 0).expect("encode");
    let pdu = mo_deliver_sm(
        PHONE,
        "7377",
        encoded.data_coding,
        false,
        encoded.parts[0].clone(),
    )
    .expect("pdu");
    let mut seq = 0u32;
    for _ in 0..window {
        seq += 1;
        framed
            .feed(Command::new(
                CommandStatus::EsmeRok,
                seq,
                Pdu::DeliverSm(pdu.clone()),
            ))
            .await
            .expect("feed");
    }
    SinkExt::<Command>::flush(&mut framed).await.expect("flush");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut done = 0u64;
    while let Some(Ok(resp)) = framed.next().await {
        assert_eq!(resp.id(), CommandId::DeliverSmResp);
        done += 1;
        if Instant::now() >= deadline {
            break;
        }
        seq += 1;
        framed
            .send(Command::new(
                CommandStatus::EsmeRok,
                seq,
                Pdu::DeliverSm(pdu.clone()),
            ))
            .await
            .expect("send");
    }
    done as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let runs = env_or("BENCH_RUNS", 5).max(1);
    let secs = env_or("BENCH_SECS", 2).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("deliver_sm round trips/s, median of {runs} runs of {secs}s each");
    println!();
    println!("| window | simulator (MO → deliver_sm → resp) | bare rusmpp loopback | ratio |");
    println!("|---:|---:|---:|---:|");
    for window in [1usize, 10, 100] {
        let mut sim = Vec::new();
        let mut bare = Vec::new();
        for _ in 0..runs {
            sim.push(runtime.block_on(simulator_run(window, secs)));
            bare.push(runtime.block_on(loopback_run(window, secs)));
        }
        let (s, b) = (median(sim.clone()), median(bare.clone()));
        eprintln!("window {window}: simulator runs {sim:.0?}, loopback runs {bare:.0?}");
        println!("| {window} | {s:.0} | {b:.0} | {:.2} |", s / b);
    }
}
