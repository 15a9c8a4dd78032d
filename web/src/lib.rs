//! The HTTP face of the service (axum): the visitor's QR check-in (phone, SMS
//! code, consent → a confirmation with the guard's QR) and the guard's check of
//! that QR. Russian UI, rendered on the server, works with JavaScript off.
//!
//! Speaks only to `checkin-core`: an SMS code is an outbox row, and the sender
//! is woken through the small [`Wake`] hook the owner connects (never
//! `smsc_link`, never the notifier).
//!
//! Templates are `maud`: HTML written as Rust macros, checked at compile time,
//! every interpolated value escaped unless it is explicitly `PreEscaped`
//! (only the QR's SVG is). It is maintained, has no run-time template files to
//! ship, and needs no template language beside Rust.

mod error;
mod guard;
mod limits;
mod pages;
mod security;
mod visitor;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use checkin_core::{Clock, Keys, ServiceZone, Store};
use tokio_util::sync::CancellationToken;

pub use error::WebError;
pub use limits::Limits;
use security::Secrets;

/// Wakes the outbox's sender after an SMS code was queued (the owner
/// connects it to the notifier; a no-op is fine where a poll will do).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The web's settings; every default is documented in `web/README.md`. Reads
/// from a configuration file's section (missing keys take their defaults).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where visitors and guards reach the service: the guard's QR encodes
    /// `{public_base_url}/c/{token}`. Default `http://127.0.0.1:8080`.
    pub public_base_url: String,
    /// Cookies get `Secure` (send only over HTTPS). Default false: the default
    /// service is plain HTTP on the loopback.
    pub cookie_secure: bool,
    /// How long the browser remembers a verified phone. Default 30 days.
    pub remember_phone_days: u32,
    /// How long an SMS code may be entered. Default 300 s.
    pub otp_life_s: u64,
    /// A guard token older than this is shown as stale. Default 12 h.
    pub guard_fresh_h: u32,
    /// SMS codes one phone may get per minute (default 1) and per hour
    /// (default 5).
    pub sms_per_phone_minute: u32,
    pub sms_per_phone_hour: u32,
    /// SMS codes one client address may ask for per hour. Default 60 (a
    /// venue's Wi-Fi or a mobile operator's NAT puts many visitors behind one).
    pub sms_per_ip_hour: u32,
    /// Largest request body accepted. Default 4096 bytes (the forms are tiny).
    pub body_bytes_max: usize,
    /// Most keys (phones, addresses) each rate limiter tracks; beyond it, old
    /// keys are dropped and, if still full, requests are refused. Default 100 000.
    pub rate_keys_max: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            cookie_secure: false,
            remember_phone_days: 30,
            otp_life_s: checkin_core::otp::OTP_LIFE_S_DEFAULT,
            guard_fresh_h: 12,
            sms_per_phone_minute: 1,
            sms_per_phone_hour: 5,
            sms_per_ip_hour: 60,
            body_bytes_max: 4096,
            rate_keys_max: 100_000,
        }
    }
}

/// What every handler shares (cheap clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    zone: ServiceZone,
    clock: Arc<dyn Clock>,
    secrets: Secrets,
    config: WebConfig,
    wake: Wake,
    limits: Limits,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state over `store`; `keys` are the service keys (the web's own
    /// signing keys are derived from them), `wake` wakes the SMS sender.
    pub fn new(
        store: Store,
        keys: &Keys,
        zone: ServiceZone,
        clock: Arc<dyn Clock>,
        config: WebConfig,
        wake: Wake,
    ) -> AppState {
        let limits = Limits::new(&config, clock.clone());
        AppState {
            inner: Arc::new(Inner {
                store,
                zone,
                clock,
                secrets: Secrets::new(keys),
                config,
                wake,
                limits,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &WebConfig {
        &self.inner.config
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}

const STYLE_CSS: &str = include_str!("../static/style.css");
const CLOCK_JS: &str = include_str!("../static/clock.js");

/// Every page of the web.
pub fn router(state: AppState) -> Router {
    let body_bytes_max = state.config().body_bytes_max;
    Router::new()
        .route("/v/{code}", get(visitor::start).post(visitor::request_code))
        .route(
            "/v/{code}/otp",
            get(visitor::code_page).post(visitor::confirm),
        )
        .route("/v/{code}/resend", post(visitor::resend))
        .route("/v/{code}/quick", post(visitor::quick))
        .route("/ok/{token}", get(visitor::confirmation))
        .route("/forget", post(visitor::forget))
        .route("/c/{token}", get(guard::check))
        .route(
            "/static/style.css",
            get(|| static_file(STYLE_CSS, "text/css")),
        )
        .route(
            "/static/clock.js",
            get(|| static_file(CLOCK_JS, "text/javascript")),
        )
        .fallback(|| async { WebError::NotFound })
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(axum::middleware::map_response(security::headers))
        .with_state(state)
}

async fn static_file(body: &'static str, kind: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
}

/// How often rate-limiter keys are pruned and expired SMS codes deleted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// Expired codes are kept this long (a late entry still hears "expired"
/// instead of "unknown"), then deleted.
const EXPIRED_OTP_KEEP: chrono::Duration = chrono::Duration::hours(1);

/// Serves the web on `listener` until `shutdown`, then finishes the requests
/// in flight. Also prunes the rate limiters and deletes expired codes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone(), shutdown.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    let _ = housekeeping.await;
    served
}

async fn housekeeping(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        state.inner.limits.prune();
        if let Err(e) = state
            .store()
            .purge_otps(state.now() - EXPIRED_OTP_KEEP)
            .await
        {
            tracing::warn!(error = %e, "could not delete expired SMS codes");
        }
    }
}
