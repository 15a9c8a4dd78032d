//! Hostile web clients against `web::serve` on port 0 (real sockets): a
//! client sending its headers a byte at a time is closed within the header
//! timeout (which does not cut a kept-alive connection between requests),
//! idle connections are closed after the idle timeout and refused past the
//! cap, an oversized head gets 431 before it ends, and the
//! visitor's page keeps its latency while all of them hold connections. Each
//! checks the connection metrics; the tests run one at a time because the
//! process has one recorder.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use web::{AppState, Ops, WebConfig, HTTP_CONNECTIONS_CLOSED, HTTP_CONNECTIONS_OPEN};

/// The metrics are the process's: one test at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The test binary's one recorder (a process has at most one).
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().unwrap())
        .clone()
}

/// A sample's value in the recorder's text (`name` with its labels, as
/// rendered), 0 when absent.
fn sample(name: &str) -> f64 {
    recorder()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn open() -> f64 {
    sample(HTTP_CONNECTIONS_OPEN)
}

fn closed(reason: &str) -> f64 {
    sample(&format!("{HTTP_CONNECTIONS_CLOSED}{{reason=\"{reason}\"}}"))
}

/// Waits (up to `within`) until `done` holds.
async fn until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

struct Server {
    addr: SocketAddr,
    code: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(config: WebConfig) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let (keys, store, premises) = common::venue(dir.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = recorder();
        let state = AppState::new(
            store,
            &keys,
            checkin_core::ServiceZone::default(),
            Arc::new(checkin_core::SystemClock),
            WebConfig {
                public_base_url: format!("http://{addr}"),
                ..config
            },
        )
        .with_ops(Ops {
            readiness: None,
            metrics: Some(Arc::new(move || handle.render())),
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(web::serve(listener, state, shutdown.clone()));
        Server {
            addr,
            code: premises.code.to_string(),
            shutdown,
            task,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Whether the server closed `stream` (end of stream or reset) within
/// `within`; anything it answered before is returned too.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (read.is_ok(), got)
}

/// One `GET path` on a kept-alive connection; the status and body length.
async fn get(stream: &mut TcpStream, path: &str) -> (u16, usize) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: checkin.test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed mid-head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, length)
}

/// Sends `head`'s bytes one at a time, `every` apart, until the server
/// closes (the write fails) or the head is sent (or the task is aborted,
/// which closes the socket's writing half).
fn trickle(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    head: String,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for byte in head.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_closed_within_the_header_timeout() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(WebConfig {
        header_read_timeout_ms: 500,
        ..WebConfig::default()
    })
    .await;
    let before = closed("header_timeout");

    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, writer) = stream.into_split();
    let head = format!(
        "GET /v/{} HTTP/1.1\r\nHost: checkin.test\r\n\r\n",
        server.code
    );
    let started = Instant::now();
    // A byte every 100 ms: each byte resets an idle clock, never the
    // head's.
    let _writing = trickle(writer, head, Duration::from_millis(100));
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "still open after 5 s: {read:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(1500),
        "closed after {elapsed:?}, the header timeout is 500 ms"
    );
    assert!(
        until(Duration::from_secs(1), || closed("header_timeout")
            == before + 1.0)
        .await
    );

    // And /metrics says so.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: checkin.test\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains(&format!(
            "{HTTP_CONNECTIONS_CLOSED}{{reason=\"header_timeout\"}}"
        )),
        "{text}"
    );
    assert!(text.contains(HTTP_CONNECTIONS_OPEN), "{text}");
    server.stop().await;
}

/// The header clock starts at a head's first byte, not when the server
/// starts waiting: a kept-alive connection quiet for longer than the header
/// timeout (but not the idle one) still serves its next request. hyper's own
/// `header_read_timeout` would close it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_outlives_the_header_timeout() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(WebConfig {
        header_read_timeout_ms: 300,
        idle_timeout_ms: 5000,
        ..WebConfig::default()
    })
    .await;
    let before = (closed("header_timeout"), closed("idle_timeout"));
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let path = format!("/v/{}", server.code);
    assert_eq!(get(&mut stream, &path).await.0, 200);
    // Time passing is what is tested: three header timeouts.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(get(&mut stream, &path).await.0, 200);
    assert_eq!((closed("header_timeout"), closed("idle_timeout")), before);
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_refused_past_the_cap_and_closed_when_idle() {
    let _serial = SERIAL.lock().await;
    const CAP: usize = 1500;
    const CLIENTS: usize = 2000;
    let server = Server::start(WebConfig {
        idle_timeout_ms: 2000,
        connections_max: CAP,
        ..WebConfig::default()
    })
    .await;
    let (over_before, idle_before) = (closed("over_limit"), closed("idle_timeout"));
    assert_eq!(open(), 0.0);

    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let client = TcpStream::connect(server.addr).await.unwrap();
        clients.push((client, Instant::now()));
    }
    assert!(
        until(Duration::from_secs(2), || open() == CAP as f64
            && closed("over_limit")
                == over_before + (CLIENTS - CAP) as f64)
        .await,
        "open {}, refused {}",
        open(),
        closed("over_limit") - over_before
    );

    // How long each client's connection lived: the ones past the cap are
    // closed at once, the others after their idle timeout.
    let mut watchers = tokio::task::JoinSet::new();
    for (mut client, connected) in clients {
        watchers.spawn(async move {
            let (closed, _) = closed_within(&mut client, Duration::from_secs(10)).await;
            assert!(closed, "still open after 10 s");
            connected.elapsed()
        });
    }
    let mut at = watchers.join_all().await;
    at.sort();
    let idle = Duration::from_millis(2000);
    let (at_once, held) = at.split_at(CLIENTS - CAP);
    assert!(
        at_once.last().unwrap() < &Duration::from_millis(1000),
        "refused ones closed by {:?}",
        at_once.last()
    );
    assert!(
        held[0] >= idle - Duration::from_millis(100) && held[CAP - 1] < idle * 2,
        "held ones closed from {:?} to {:?}, the idle timeout is {idle:?}",
        held[0],
        held[CAP - 1]
    );
    assert!(
        until(Duration::from_secs(1), || open() == 0.0
            && closed("idle_timeout") == idle_before + CAP as f64)
        .await,
        "open {}, closed idle {}",
        open(),
        closed("idle_timeout") - idle_before
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_is_refused_431_before_it_ends() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(WebConfig::default()).await;
    let before = closed("too_large");

    // Just under the 16 KiB limit: served.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let path = format!("/v/{}?pad={}", server.code, "a".repeat(15 * 1024));
    assert_eq!(get(&mut stream, &path).await.0, 200);

    // 64 KiB of one header that never ends: the answer comes anyway, so the
    // server stopped reading at its limit instead of buffering the rest.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /v/{} HTTP/1.1\r\nHost: checkin.test\r\nX-Pad: {}",
        server.code,
        "a".repeat(64 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let (closed_in_time, answer) = closed_within(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "answered {answer:?}");
    assert!(closed_in_time, "not closed after the 431");
    assert!(
        until(Duration::from_secs(1), || closed("too_large")
            == before + 1.0)
        .await
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visitor_page_keeps_its_latency_among_hostile_clients() {
    let _serial = SERIAL.lock().await;
    const IDLE: usize = 2000;
    const SLOW: usize = 100;
    const REQUESTS: usize = 200;
    let server = Server::start(WebConfig::default()).await;

    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let (reader, writer) = TcpStream::connect(server.addr).await.unwrap().into_split();
        let head = format!(
            "GET /v/{} HTTP/1.1\r\nHost: checkin.test\r\n\r\n",
            server.code
        );
        let writing = trickle(writer, head, Duration::from_millis(200));
        slow.push((reader, writing));
    }
    assert!(
        until(Duration::from_secs(2), || open() == (IDLE + SLOW) as f64).await,
        "open {}",
        open()
    );

    let mut visitor = TcpStream::connect(server.addr).await.unwrap();
    let path = format!("/v/{}", server.code);
    // Warm-up, not measured: the first requests prepare statements and
    // fill caches.
    for _ in 0..10 {
        assert_eq!(get(&mut visitor, &path).await.0, 200);
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let (status, length) = get(&mut visitor, &path).await;
        latencies.push(started.elapsed());
        assert_eq!(status, 200);
        assert!(length > 0);
    }
    latencies.sort();
    let p99 = latencies[REQUESTS * 99 / 100 - 1];
    assert!(
        p99 < Duration::from_millis(50),
        "p99 {p99:?} over {REQUESTS} requests (p50 {:?}, max {:?})",
        latencies[REQUESTS / 2],
        latencies[REQUESTS - 1]
    );
    // The hostile clients were there the whole time.
    assert_eq!(open(), (IDLE + SLOW + 1) as f64);

    for (reader, writing) in slow {
        writing.abort();
        let _ = writing.await;
        drop(reader);
    }
    drop(idle);
    drop(visitor);
    assert!(
        until(Duration::from_secs(5), || open() == 0.0).await,
        "open {}",
        open()
    );
    server.stop().await;
}
