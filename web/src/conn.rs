//! The connection loop under `serve`: accepts up to `connections_max`
//! connections (one more is accepted and closed at once, counted
//! `over_limit`), serves each with hyper's HTTP/1 server and bounds what a
//! hostile client can hold: a request head larger than `header_bytes_max` is
//! answered 431 by hyper, a head not complete within `header_read_timeout_ms`
//! of its first byte and a connection silent for `idle_timeout_ms` are closed
//! by `Watched`, the socket wrapper that keeps those two clocks.
//!
//! Why our own clocks: hyper's `header_read_timeout` starts when it begins
//! waiting for a head, so it also closes every idle keep-alive connection
//! after the (short) header timeout; the proxy in front then races our close
//! with its next request on that connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::middleware::AddExtension;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::config::WebConfig;
use crate::ops::{HTTP_CONNECTIONS_CLOSED, HTTP_CONNECTIONS_OPEN};

/// How long the loop waits after a failed accept (e.g. out of file
/// descriptors: the kernel keeps the connection queued, retrying at once
/// would spin).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// hyper panics below this (`max_buf_size`'s documented minimum).
const HYPER_BUF_SIZE_MIN: usize = 8192;

/// The bounds on one connection, from `WebConfig`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) header_bytes_max: usize,
    pub(crate) connections_max: usize,
}

impl ConnLimits {
    pub(crate) fn from_config(config: &WebConfig) -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(1)),
            header_bytes_max: config.header_bytes_max,
            connections_max: config.connections_max.max(1),
        }
    }
}

/// Why a connection was closed by us (the `reason` label of
/// [`HTTP_CONNECTIONS_CLOSED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    TooLarge,
    OverLimit,
}

impl Closed {
    fn label(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::TooLarge => "too_large",
            Closed::OverLimit => "over_limit",
        }
    }

    fn count(self) {
        metrics::counter!(HTTP_CONNECTIONS_CLOSED, "reason" => self.label()).increment(1);
    }
}

/// Accepts and serves connections until `shutdown`, then lets each finish
/// its request in flight (idle ones close at once) and returns.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let tracker = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_header_size(limits.header_bytes_max)
        // The read buffer never grows far past the head's limit (hyper's
        // default is ~400 KiB per connection); bodies stream through it.
        .max_buf_size((limits.header_bytes_max + 8192).max(HYPER_BUF_SIZE_MIN));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // Past the cap the connection is closed at once rather than left in
        // the kernel's backlog: the proxy sees the refusal now and can try
        // elsewhere, and the refusal is counted.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            Closed::OverLimit.count();
            drop(stream);
            continue;
        };
        let service = make.call(peer).await.unwrap_or_else(|e| match e {});
        let service = TowerToHyperService::new(service);
        let http = http.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let _open = OpenGauge::new();
            serve_one(stream, service, http, limits, shutdown).await;
        });
    }
    tracker.close();
    tracker.wait().await;
}

/// Counts a connection in [`HTTP_CONNECTIONS_OPEN`] while it lives.
struct OpenGauge;

impl OpenGauge {
    fn new() -> OpenGauge {
        metrics::gauge!(HTTP_CONNECTIONS_OPEN).increment(1.0);
        OpenGauge
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// The router as one connection's hyper service, with its peer's address.
type ConnService = TowerToHyperService<AddExtension<Router, ConnectInfo<SocketAddr>>>;

async fn serve_one(
    stream: TcpStream,
    service: ConnService,
    http: hyper::server::conn::http1::Builder,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::default());
    let service = Tracked {
        inner: service,
        activity: activity.clone(),
    };
    let io = Watched::new(stream, limits, activity.clone());
    let mut conn = pin!(http.serve_connection(TokioIo::new(io), service));
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = shutdown.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    // Our clocks first: hyper may end a connection whose read failed
    // between requests without an error.
    let closed = activity.timed_out().or(match &result {
        Err(e) if e.is_parse_too_large() => Some(Closed::TooLarge),
        _ => None,
    });
    if let Some(closed) = closed {
        closed.count();
    }
    if let Err(e) = result {
        tracing::debug!(error = %e, reason = closed.map_or("error", Closed::label), "connection closed");
    }
}

/// What the service tells the socket wrapper: how many requests have
/// started (a head was parsed) and whether one is being answered; and what
/// the wrapper tells the loop: which clock closed the connection.
#[derive(Debug, Default)]
struct Activity {
    started: AtomicU64,
    busy: AtomicBool,
    header_timeout: AtomicBool,
    idle_timeout: AtomicBool,
}

impl Activity {
    fn timed_out(&self) -> Option<Closed> {
        if self.header_timeout.load(Ordering::Relaxed) {
            Some(Closed::HeaderTimeout)
        } else if self.idle_timeout.load(Ordering::Relaxed) {
            Some(Closed::IdleTimeout)
        } else {
            None
        }
    }
}

/// The connection's service, marking each request's start and end.
#[derive(Debug)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        self.activity.started.fetch_add(1, Ordering::Relaxed);
        self.activity.busy.store(true, Ordering::Relaxed);
        let activity = self.activity.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            // The response's bytes are still to be written; the idle clock
            // that starts now covers a client too slow to read them.
            activity.busy.store(false, Ordering::Relaxed);
            answer
        })
    }
}

/// A socket that fails its read with `TimedOut` when the client holds the
/// connection too long: a request head not complete within
/// `header_read_timeout` of its first byte, or no byte at all for
/// `idle_timeout` (between requests, or mid-body). Writes pass through.
struct Watched {
    inner: TcpStream,
    limits: ConnLimits,
    activity: Arc<Activity>,
    /// Requests started as last seen: a change means a head was complete.
    seen: u64,
    was_busy: bool,
    /// When the current request head's first byte arrived.
    head_from: Option<Instant>,
    /// The last byte read, or the start of the wait for the next head.
    quiet_from: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(inner: TcpStream, limits: ConnLimits, activity: Arc<Activity>) -> Watched {
        let now = Instant::now();
        Watched {
            inner,
            limits,
            activity,
            seen: 0,
            was_busy: false,
            head_from: None,
            quiet_from: now,
            timer: Box::pin(tokio::time::sleep_until(now + limits.idle_timeout)),
        }
    }

    /// Catches up with the service: a new request means its head is done;
    /// the end of one starts the wait for the next.
    fn observe(&mut self, now: Instant) {
        let started = self.activity.started.load(Ordering::Relaxed);
        let busy = self.activity.busy.load(Ordering::Relaxed);
        if started != self.seen || busy != self.was_busy {
            self.seen = started;
            self.was_busy = busy;
            self.head_from = None;
            self.quiet_from = now;
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let now = Instant::now();
        this.observe(now);
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.quiet_from = now;
                    if !this.was_busy && this.head_from.is_none() {
                        this.head_from = Some(now);
                    }
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let idle_at = this.quiet_from + this.limits.idle_timeout;
        let (deadline, header) = match this.head_from {
            Some(from) if !this.was_busy => {
                let head_at = from + this.limits.header_read_timeout;
                if head_at <= idle_at {
                    (head_at, true)
                } else {
                    (idle_at, false)
                }
            }
            _ => (idle_at, false),
        };
        if this.timer.deadline() != deadline {
            this.timer.as_mut().reset(deadline);
        }
        if this.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let flag = if header {
            &this.activity.header_timeout
        } else {
            &this.activity.idle_timeout
        };
        flag.store(true, Ordering::Relaxed);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            if header {
                "request head not complete in time"
            } else {
                "connection idle too long"
            },
        )))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
