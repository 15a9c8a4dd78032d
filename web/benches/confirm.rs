//! Web confirmations per second: the correct SMS code `POST /v/{code}/otp`
//! through to the committed check-in (its `303` to the confirmation), beside
//! an axum hello-world (`GET /` → `hello`) measured by the same load
//! generator in the same run.
//!
//! Each ceiling is what the bare thing does when offered more than it can
//! take (closed loop: [`CONNECTIONS`] keep-alive connections, each sending
//! its next request as soon as the last is answered), never an offered rate:
//! 1. hello-world ceiling: requests/s;
//! 2. confirmation ceiling: `web::serve` on a fresh SQLite store (with the
//!    gateway's background WAL checkpoints), production settings except the
//!    per-address SMS limit (every seeded visitor comes from 127.0.0.1); its
//!    ratio to 1 (a probe on another fresh store sizes the seeding first);
//! 3. latency: on a fresh store, half of 2 offered at a fixed rate (open
//!    loop); each latency runs from the request's intended send time, so a
//!    stall is charged to every request it delayed (no coordinated omission);
//! 4. for the breakdown, the store alone: `confirm_otp` called by as many
//!    tasks, no HTTP; then the same through the web's group-commit queue
//!    (`Confirmations`).
//!
//! Visitors are seeded through the real routes (`GET /v/{code}` for the CSRF
//! cookie and field, `POST /v/{code}` for a code and its ticket); the code is
//! read from its SMS in the outbox. Every confirmation must answer `303` to
//! `/ok/…` and the store must then hold exactly one check-in per
//! confirmation; anything else fails the bench.
//!
//! The load generator is written here (hyper's HTTP/1.1 client) because the
//! load tools at hand send the same request over and over, and every
//! confirmation needs its own code and ticket.
//!
//! Run: `cargo bench -p web --bench confirm`. Without `--bench` (as
//! `cargo test --all-targets` runs it) it does a short smoke run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkin_core::otp::{sms_text, OtpCode, OtpKey};
use checkin_core::store::{NewOrganization, NewOtp, NewPremises, OtpCheck, OtpEntry};
use checkin_core::{
    ConfirmConfig, Confirmations, Keys, Msisdn, PhoneVault, Premises, ServiceZone, Store,
    StoreConfig, SystemClock,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use web::{AppState, WebConfig};

/// Keep-alive connections of the load generator (oha's default is 50).
const CONNECTIONS: usize = 50;
/// Connections that seed visitors (not measured).
const SEED_CONNECTIONS: usize = 16;
/// Worker threads of the server's runtime and of the generator's: the
/// machine's two cores each (`checkin serve` uses one per core).
const WORKERS: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Length of each measured phase.
    duration: Duration,
    /// Visitors seeded for the probe that sizes the ceiling's seeding (if
    /// the ceiling's run out first, its rate is taken over the shorter time).
    probe_visitors: usize,
    full: bool,
}

const FULL: Plan = Plan {
    duration: Duration::from_secs(10),
    probe_visitors: 2_000,
    full: true,
};
const SMOKE: Plan = Plan {
    duration: Duration::from_secs(1),
    probe_visitors: 200,
    full: false,
};

/// Most visitors seeded for one phase (the limiters' `rate_keys_max` is
/// 100 000 phones).
const VISITORS_MAX: usize = 90_000;

type Body = Full<Bytes>;

/// One keep-alive HTTP/1.1 connection.
async fn connect(addr: SocketAddr) -> SendRequest<Body> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// A response's status, `Location` and `Set-Cookie`, and its body (read
/// whole, so the connection can carry the next request).
struct Reply {
    status: StatusCode,
    location: String,
    set_cookie: Vec<String>,
    body: Bytes,
}

async fn send(conn: &mut SendRequest<Body>, request: Request<Body>) -> Reply {
    conn.ready().await.expect("connection ready");
    let response = conn.send_request(request).await.expect("response");
    let status = response.status();
    let header_text = |v: &hyper::header::HeaderValue| v.to_str().unwrap_or_default().to_owned();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(header_text)
        .unwrap_or_default();
    let set_cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(header_text)
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        location,
        set_cookie,
        body,
    }
}

fn get(path: &str) -> Request<Body> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::HOST, "127.0.0.1")
        .body(Body::default())
        .unwrap()
}

fn post(path: &str, cookie: &str, form: String) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "127.0.0.1")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap()
}

/// What the load generator sends: hello-world's `GET /`, or the
/// confirmation of seeded visitor `i`.
#[derive(Clone)]
enum Load {
    Hello,
    Confirm(Arc<Visitors>),
}

impl Load {
    /// Request `i`, or `None` when there is no such visitor.
    fn request(&self, i: usize) -> Option<Request<Body>> {
        match self {
            Load::Hello => Some(get("/")),
            Load::Confirm(v) => {
                let visitor = v.list.get(i)?;
                let form = format!(
                    "csrf={}&t={}&code={}",
                    v.csrf_field, visitor.ticket, visitor.code
                );
                Some(post(&v.otp_path, &v.cookie, form))
            }
        }
    }

    /// Whether `reply` is the success of this load.
    fn ok(&self, reply: &Reply) -> bool {
        match self {
            Load::Hello => reply.status == StatusCode::OK && &reply.body[..] == b"hello",
            Load::Confirm(_) => {
                reply.status == StatusCode::SEE_OTHER && reply.location.starts_with("/ok/")
            }
        }
    }
}

/// What a phase measured.
#[derive(Debug, Default)]
struct Outcome {
    ok: usize,
    failed: usize,
    /// The first failure's status and body, to say why.
    first_failure: Option<String>,
    /// From the first request to the last answer.
    elapsed: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
}

impl Outcome {
    fn per_s(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn merge(parts: Vec<Outcome>, elapsed: Duration) -> Outcome {
        let mut all = Outcome {
            elapsed,
            ..Outcome::default()
        };
        for part in parts {
            all.ok += part.ok;
            all.failed += part.failed;
            all.first_failure = all.first_failure.or(part.first_failure);
            all.latencies.extend(part.latencies);
        }
        all.latencies.sort_unstable();
        all
    }

    fn record(&mut self, load: &Load, reply: &Reply, latency: Duration) {
        if load.ok(reply) {
            self.ok += 1;
            self.latencies.push(latency);
        } else {
            self.failed += 1;
            if self.first_failure.is_none() {
                self.first_failure = Some(format!(
                    "{} {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
                ));
            }
        }
    }
}

/// Closed loop: [`CONNECTIONS`] connections, each sending its next request
/// as soon as the last is answered, until `duration` has passed or the
/// requests run out.
async fn closed_loop(addr: SocketAddr, load: Load, duration: Duration) -> Outcome {
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(connect(addr).await);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (load, next) = (load.clone(), next.clone());
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                let mut last = start;
                while Instant::now() < deadline {
                    let Some(request) = load.request(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let sent = Instant::now();
                    let reply = send(&mut conn, request).await;
                    last = Instant::now();
                    outcome.record(&load, &reply, last - sent);
                }
                (outcome, last)
            })
        })
        .collect();
    let mut parts = Vec::new();
    let mut end = start;
    for worker in workers {
        let (outcome, last) = worker.await.unwrap();
        parts.push(outcome);
        end = end.max(last);
    }
    Outcome::merge(parts, end - start)
}

/// Open loop: request `i` is due at `start + i / rate`, whatever happened
/// to the ones before; [`CONNECTIONS`] connections take the due requests in
/// order, and each latency runs from the due time.
async fn open_loop(addr: SocketAddr, load: Load, rate_per_s: f64, count: usize) -> Outcome {
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(connect(addr).await);
    }
    // Unbounded by design: the backlog is what an overloaded server would
    // see as waiting visitors, and it is charged to their latencies.
    let (tx, rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let rx = Arc::new(Mutex::new(rx));
    let start = Instant::now() + Duration::from_millis(20);
    let workers: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (load, rx) = (load.clone(), rx.clone());
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                let mut last = start;
                loop {
                    let Some((i, due)) = rx.lock().await.recv().await else {
                        break;
                    };
                    let request = load.request(i).expect("a seeded visitor per request");
                    let reply = send(&mut conn, request).await;
                    last = Instant::now();
                    outcome.record(&load, &reply, last - due);
                }
                (outcome, last)
            })
        })
        .collect();
    let interval = Duration::from_secs_f64(1.0 / rate_per_s);
    for i in 0..count {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        tx.send((i, due)).unwrap();
    }
    drop(tx);
    let mut parts = Vec::new();
    let mut end = start;
    for worker in workers {
        let (outcome, last) = worker.await.unwrap();
        parts.push(outcome);
        end = end.max(last);
    }
    Outcome::merge(parts, end - start)
}

/// A seeded visitor: the ticket of a pending code and the code from its SMS.
struct Visitor {
    ticket: String,
    code: String,
}

/// Every seeded visitor of one premises; one browser's CSRF cookie and field
/// serve them all (the token is the cookie's HMAC, not per visitor).
struct Visitors {
    otp_path: String,
    cookie: String,
    csrf_field: String,
    list: Vec<Visitor>,
}

/// The web on a fresh SQLite store in a temp dir.
struct Web {
    _dir: tempfile::TempDir,
    store: Store,
    keys: Keys,
    premises: Premises,
    addr: SocketAddr,
    stop: CancellationToken,
}

/// The production settings, except the per-address SMS limit: every seeded
/// visitor comes from 127.0.0.1. The per-phone limits stay (each seeded
/// phone asks once).
fn bench_config() -> WebConfig {
    WebConfig {
        sms_per_ip_hour: 1_000_000_000,
        ..WebConfig::default()
    }
}

async fn start_web() -> Web {
    let dir = tempfile::tempdir().unwrap();
    let url = checkin_core::store::sqlite_url_in(dir.path());
    let keys = Keys::generate();
    // As `checkin serve` opens it (`src/gateway.rs`): with the background
    // checkpoints below, a commit checkpoints by itself only past 16 Ki pages.
    let config = StoreConfig {
        sqlite_autocheckpoint_pages: 16 * 1024,
        ..StoreConfig::default()
    };
    let store = Store::open(&url, PhoneVault::new(&keys), config)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let org = store
        .orgs()
        .create_org(
            &NewOrganization {
                name: "Кафе «Ромашка»".into(),
                email: "bench@example.ru".into(),
                password: None,
            },
            now,
        )
        .await
        .unwrap()
        .organization;
    let premises = store
        .orgs()
        .add_premises(
            &NewPremises {
                org_id: org.id,
                address: "Тверская ул., 1".into(),
                kind: None,
                stay_minutes: None,
            },
            now,
        )
        .await
        .unwrap();
    let state = AppState::new(
        store.clone(),
        &keys,
        ServiceZone::default(),
        Arc::new(SystemClock),
        bench_config(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(web::serve(listener, state, stop.clone()));
    tokio::spawn(checkpoints(store.clone(), stop.clone()));
    Web {
        _dir: dir,
        store,
        keys,
        premises,
        addr,
        stop,
    }
}

/// What `checkin serve` does beside the web on SQLite (`src/gateway.rs`,
/// every 250 ms): a passive WAL checkpoint, so commits do not stop to
/// checkpoint.
async fn checkpoints(store: Store, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        let _ = store.checkpoint().await;
    }
}

fn phone(i: usize) -> String {
    format!("+7916{:07}", i)
}

/// `count` visitors with pending codes, through the real routes; the codes
/// are read from their SMS in the outbox (on `server`, where the store
/// lives).
async fn seed(web: &Web, server: &tokio::runtime::Handle, count: usize) -> Visitors {
    let path = format!("/v/{}", web.premises.code);
    let mut conn = connect(web.addr).await;
    let page = send(&mut conn, get(&path)).await;
    assert_eq!(page.status, StatusCode::OK);
    let cookie = page
        .set_cookie
        .iter()
        .find_map(|c| c.split(';').next().filter(|p| p.starts_with("csrf=")))
        .expect("a CSRF cookie")
        .to_owned();
    let html = String::from_utf8_lossy(&page.body);
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let csrf_field = html[start..start + html[start..].find('"').unwrap()].to_owned();

    let next = Arc::new(AtomicUsize::new(0));
    let mut seeders = Vec::new();
    for _ in 0..SEED_CONNECTIONS {
        let (next, path, cookie, csrf_field) = (
            next.clone(),
            path.clone(),
            cookie.clone(),
            csrf_field.clone(),
        );
        let mut conn = connect(web.addr).await;
        seeders.push(tokio::spawn(async move {
            let mut tickets = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return tickets;
                }
                let form = format!("csrf={csrf_field}&phone=%2B{}&consent=1", &phone(i)[1..]);
                let reply = send(&mut conn, post(&path, &cookie, form)).await;
                assert_eq!(
                    reply.status,
                    StatusCode::SEE_OTHER,
                    "seeding: {}",
                    String::from_utf8_lossy(&reply.body)
                );
                let ticket = reply
                    .location
                    .split_once("?t=")
                    .expect("the code page's ticket")
                    .1
                    .to_owned();
                tickets.push((i, ticket));
            }
        }));
    }
    let mut tickets = Vec::new();
    for seeder in seeders {
        tickets.extend(seeder.await.unwrap());
    }
    tickets.sort_unstable();
    // The codes from their SMS, read by id (the outbox is not indexed by
    // recipient: a look-up per phone would scan it each time).
    let store = web.store.clone();
    let list = server
        .spawn(async move {
            let mut codes = std::collections::HashMap::with_capacity(tickets.len());
            let mut id = 0;
            while codes.len() < tickets.len() {
                id += 1;
                let sms = store
                    .outbox()
                    .message(id)
                    .await
                    .unwrap()
                    .expect("every seeded code's SMS");
                let code: String = sms.text.chars().filter(char::is_ascii_digit).collect();
                assert!(
                    codes
                        .insert(store.open_recipient(&sms).unwrap(), code)
                        .is_none(),
                    "one SMS per phone"
                );
            }
            tickets
                .into_iter()
                .map(|(i, ticket)| Visitor {
                    ticket,
                    code: codes[&Msisdn::parse(&phone(i)).unwrap()].clone(),
                })
                .collect()
        })
        .await
        .unwrap();
    Visitors {
        otp_path: format!("{path}/otp"),
        cookie,
        csrf_field,
        list,
    }
}

/// Fails loudly unless every confirmation answered `303` and committed
/// exactly one check-in.
async fn check_committed(web: &Web, server: &tokio::runtime::Handle, outcome: &Outcome) {
    assert_eq!(
        outcome.failed, 0,
        "{} requests were not confirmations; the first: {:?}",
        outcome.failed, outcome.first_failure
    );
    let (store, premises_id) = (web.store.clone(), web.premises.id);
    let stored = server
        .spawn(async move { store.checkins().count_checkins(premises_id).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored, outcome.ok as u64,
        "check-ins stored vs confirmations answered"
    );
}

/// The store alone: `issue_otp` for `count` phones, then `confirm_otp` of
/// each from [`CONNECTIONS`] tasks at once, as fast as it goes; `grouped`:
/// through the web's queue instead (`Confirmations`, group commit). Runs on
/// the server's runtime.
async fn store_only(count: usize, grouped: bool) -> Outcome {
    let web = start_web().await;
    let key = OtpKey::new(&web.keys);
    let now = chrono::Utc::now();
    let mut issued = Vec::with_capacity(count);
    for i in 0..count {
        let phone = Msisdn::parse(&phone(i)).unwrap();
        let code = OtpCode::generate();
        let new = NewOtp {
            phone: &phone,
            premises_id: web.premises.id,
            code: &code,
            expires_at: now + chrono::Duration::minutes(5),
            text: sms_text(&code),
        };
        let id = web.store.otps().issue_otp(&new, &key, now).await.unwrap();
        issued.push((id, code));
    }
    let issued = Arc::new(issued);
    let next = Arc::new(AtomicUsize::new(0));
    let (queue, committer) = Confirmations::new(
        web.store.clone(),
        OtpKey::new(&web.keys),
        ConfirmConfig::default(),
    );
    let committer = tokio::spawn(committer.run(web.stop.clone().cancelled_owned()));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (store, key, issued, next, queue) = (
                web.store.clone(),
                OtpKey::new(&web.keys),
                issued.clone(),
                next.clone(),
                queue.clone(),
            );
            let premises_id = web.premises.id;
            tokio::spawn(async move {
                let mut ok = 0;
                while let Some((id, code)) = issued.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let check = if grouped {
                        queue
                            .confirm(OtpEntry {
                                id: *id,
                                premises_id,
                                code: code.clone(),
                                consent: true,
                                at: chrono::Utc::now(),
                            })
                            .await
                    } else {
                        store
                            .otps()
                            .confirm_otp(*id, premises_id, code, &key, true, chrono::Utc::now())
                            .await
                    }
                    .unwrap();
                    assert!(matches!(check, OtpCheck::Confirmed { .. }));
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        ok += task.await.unwrap();
    }
    let elapsed = start.elapsed();
    let stored = web
        .store
        .checkins()
        .count_checkins(web.premises.id)
        .await
        .unwrap();
    assert_eq!(stored, ok as u64);
    web.stop.cancel();
    drop(queue);
    committer.await.unwrap();
    Outcome {
        ok,
        elapsed,
        ..Outcome::default()
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let plan = if std::env::args().any(|a| a == "--bench") {
        FULL
    } else {
        SMOKE
    };
    let server = runtime();
    let client = runtime();
    let handle = server.handle().clone();

    // 1. hello-world ceiling. (Each phase is announced on stderr, so a
    // profiler can be attached to one.)
    eprintln!("phase: hello-world ceiling");
    let hello_stop = CancellationToken::new();
    let hello_addr = server.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let stop = hello_stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        addr
    });
    let hello = client.block_on(closed_loop(hello_addr, Load::Hello, plan.duration));
    hello_stop.cancel();
    assert_eq!(hello.failed, 0, "hello-world: {:?}", hello.first_failure);

    // 2. confirmation ceiling: a probe sizes the seeding (each code lives
    // `otp_life_s`, 5 min, so seeding far more than a run takes is no
    // option), then a fresh store is seeded with 1.5 times the probe's rate
    // for `duration` and offered all of it.
    eprintln!("phase: probe");
    let web = server.block_on(start_web());
    let visitors = Arc::new(client.block_on(seed(&web, &handle, plan.probe_visitors)));
    let probe = client.block_on(closed_loop(
        web.addr,
        Load::Confirm(visitors),
        plan.duration,
    ));
    client.block_on(check_committed(&web, &handle, &probe));
    web.stop.cancel();
    let ceiling_visitors = ((probe.per_s() * plan.duration.as_secs_f64() * 1.5).ceil() as usize)
        .clamp(plan.probe_visitors, VISITORS_MAX);
    let web = server.block_on(start_web());
    let seed_start = Instant::now();
    let visitors = Arc::new(client.block_on(seed(&web, &handle, ceiling_visitors)));
    let seeded_in = seed_start.elapsed();
    let seeded = visitors.list.len();
    eprintln!("phase: confirmation ceiling");
    let ceiling = client.block_on(closed_loop(
        web.addr,
        Load::Confirm(visitors.clone()),
        plan.duration,
    ));
    client.block_on(check_committed(&web, &handle, &ceiling));
    web.stop.cancel();
    if ceiling.ok == visitors.list.len() {
        println!(
            "note: the ceiling used every seeded visitor ({}) in {:.1} s",
            ceiling.ok,
            ceiling.elapsed.as_secs_f64()
        );
    }

    // 3. latency at half the confirmation ceiling, on a fresh store.
    let half_rate_per_s = ceiling.per_s() / 2.0;
    // At most `VISITORS_MAX`, like the ceiling's: past the limiters' keys the
    // web sheds load (429) instead of sending codes (the run is then shorter).
    let count =
        ((half_rate_per_s * plan.duration.as_secs_f64()).ceil() as usize).clamp(1, VISITORS_MAX);
    let web = server.block_on(start_web());
    let visitors = Arc::new(client.block_on(seed(&web, &handle, count)));
    eprintln!("phase: latency at half");
    let half = client.block_on(open_loop(
        web.addr,
        Load::Confirm(visitors),
        half_rate_per_s,
        count,
    ));
    client.block_on(check_committed(&web, &handle, &half));
    web.stop.cancel();

    // 4. the store alone, for the breakdown.
    eprintln!("phase: store alone");
    let store = server.block_on(store_only(seeded.min(20_000), false));
    let grouped = server.block_on(store_only(seeded.min(20_000), true));

    let ratio = ceiling.per_s() / hello.per_s();
    println!(
        "web confirm bench ({} connections, {WORKERS}+{WORKERS} workers, SQLite)",
        CONNECTIONS
    );
    println!(
        "  hello-world ceiling:   {:>9.0} req/s  ({} in {:.2} s; p50 {:.2} ms, p99 {:.2} ms)",
        hello.per_s(),
        hello.ok,
        hello.elapsed.as_secs_f64(),
        ms(hello.percentile(50.0)),
        ms(hello.percentile(99.0)),
    );
    println!(
        "  confirmation ceiling:  {:>9.0} conf/s ({} in {:.2} s; p50 {:.2} ms, p99 {:.2} ms; seeded {} in {:.1} s)",
        ceiling.per_s(),
        ceiling.ok,
        ceiling.elapsed.as_secs_f64(),
        ms(ceiling.percentile(50.0)),
        ms(ceiling.percentile(99.0)),
        seeded,
        seeded_in.as_secs_f64(),
    );
    println!(
        "  seeding (POST /v/{{code}} from {SEED_CONNECTIONS} connections, then each SMS read): {:.0} visitors/s",
        seeded as f64 / seeded_in.as_secs_f64()
    );
    println!("  ratio:                 {:>9.1} %", ratio * 100.0);
    println!(
        "  at half ({:.0}/s offered, open loop, {} requests): achieved {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        half_rate_per_s,
        half.ok,
        half.per_s(),
        ms(half.percentile(50.0)),
        ms(half.percentile(99.0)),
        ms(half.percentile(100.0)),
    );
    println!(
        "  store alone (confirm_otp, {} tasks): {:.0} conf/s ({} in {:.2} s)",
        CONNECTIONS,
        store.per_s(),
        store.ok,
        store.elapsed.as_secs_f64()
    );
    println!(
        "  store alone (Confirmations, group commit, {} tasks): {:.0} conf/s ({} in {:.2} s)",
        CONNECTIONS,
        grouped.per_s(),
        grouped.ok,
        grouped.elapsed.as_secs_f64()
    );
    println!("  every confirmation answered 303 and committed exactly one check-in");
    if plan.full {
        let met = ratio >= 0.25 && half.percentile(99.0) <= Duration::from_millis(50);
        println!(
            "  target (ratio >= 25 %, p99 <= 50 ms at half): {}",
            if met { "met" } else { "NOT met" }
        );
    }
}
