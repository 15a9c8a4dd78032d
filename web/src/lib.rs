//! The HTTP face of the service (axum): the visitor's QR check-in (phone, SMS
//! code, consent → a confirmation with the guard's QR) and the guard's check of
//! that QR; the organizations' cabinet and JSON API (`org`); the health
//! authority's JSON API; `/healthz`, `/readyz`, `/metrics`. Russian UI,
//! rendered on the server, works with JavaScript off.
//!
//! Speaks only to `checkin-core`: an SMS code is an outbox row, and the
//! store's outbox signal wakes the sender (never `smsc_link`, never the
//! notifier).
//!
//! Templates are `maud`: HTML written as Rust macros, checked at compile time,
//! every interpolated value escaped unless it is explicitly `PreEscaped`
//! (only the QR's SVG is). It is maintained, has no run-time template files to
//! ship, and needs no template language beside Rust.

mod api_error;
mod authority;
mod authority_cabinet;
mod client_ip;
mod config;
mod conn;
mod error;
mod guard;
mod limits;
mod oidc;
mod openapi;
mod ops;
mod org;
mod pages;
mod places;
mod security;
mod state;
mod visitor;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use authority::{ApiError, CASES_BATCH_MAX};
pub use config::{OidcConfig, WebConfig};
pub use error::WebError;
pub use ops::{
    CHECKINS, HTTP_CONNECTIONS_CLOSED, HTTP_CONNECTIONS_OPEN, HTTP_REQUEST_SECONDS,
    READY_STORAGE_TIMEOUT,
};
pub use state::{AppState, MetricsRender, Ops, ReadinessProbe};

const STYLE_CSS: &str = include_str!("../static/style.css");
const CLOCK_JS: &str = include_str!("../static/clock.js");
const FOLLOW_JS: &str = include_str!("../static/follow.js");

/// Every page and API route of the web. Each request gets an `x-request-id`
/// (kept if the client sent one, echoed in the response), is logged in a span
/// with it and its matched route, and is timed under that route.
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
        .merge(oidc::routes(state.config()))
        .route(
            "/static/style.css",
            get(|| static_file(STYLE_CSS, "text/css")),
        )
        .route(
            "/static/clock.js",
            get(|| static_file(CLOCK_JS, "text/javascript")),
        )
        .route(
            "/static/follow.js",
            get(|| static_file(FOLLOW_JS, "text/javascript")),
        )
        .merge(org::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(authority::routes(&state))
        .merge(authority_cabinet::routes())
        .route("/api/v1/openapi.json", get(openapi::document))
        // An API client gets JSON even for a path that names no route.
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/api/") {
                ApiError::NoRoute.into_response()
            } else {
                WebError::NotFound.into_response()
            }
        })
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(axum::middleware::from_fn(finish))
        .layer(TraceLayer::new_for_http().make_span_with(ops::request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// What every response goes through, in one layer (each of axum's
/// `map_response` and `from_fn` layers boxes the request's future): axum's
/// plain refusals become our pages (`error::plain_refusals`), the security
/// headers are added (`security::headers`), and the request is timed under
/// its route (`ops::RequestTimer`), in that order.
async fn finish(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let timer = ops::RequestTimer::start(&request);
    let response = next.run(request).await;
    let response = security::headers(error::plain_refusals(response).await).await;
    timer.record(&response);
    response
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
/// in flight and stops the state's code-confirmation committer. Also prunes the rate limiters and deletes expired codes and
/// cabinet sessions. Each connection is bounded as `conn.rs` says (header
/// and idle timeouts, header size, at most `connections_max` at once).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone(), shutdown.clone()));
    let confirmations = state.clone();
    let limits = conn::ConnLimits::from_config(state.config());
    conn::accept_loop(listener, router(state), limits, shutdown.clone()).await;
    shutdown.cancel();
    // The requests are answered: nothing more joins the confirmation queue.
    confirmations.stop_confirmations().await;
    let _ = housekeeping.await;
    Ok(())
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
            .otps()
            .purge_otps(state.now() - EXPIRED_OTP_KEEP)
            .await
        {
            tracing::warn!(error = %e, "could not delete expired SMS codes");
        }
        if let Err(e) = state.store().authority().purge_sessions(state.now()).await {
            tracing::warn!(error = %e, "could not delete expired authority sessions");
        }
        if let Err(e) = state.store().accounts().purge_sessions(state.now()).await {
            tracing::warn!(error = %e, "could not delete expired cabinet sessions");
        }
    }
}
