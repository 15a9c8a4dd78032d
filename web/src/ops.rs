//! Operations: `GET /healthz` (the process answers), `GET /readyz` (storage
//! commits a small write in time — a full disk or a locked file refuses
//! writes while reads still answer — and the owner's probe says at least one
//! SMPP bind is up), `GET /metrics` (Prometheus text rendered by the owner's
//! recorder), and the HTTP metrics and request-id logging every route gets.
//!
//! The web does not know the SMPP link nor the exporter: the owner hands both
//! in as functions (`state::Ops`), so the web keeps depending on `checkin-core` only.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::request_id::RequestId;

use crate::state::AppState;

/// Histogram: seconds from a request's arrival to its response's head,
/// labels `route` (the matched route, e.g. `/v/{code}`; `unmatched` for the
/// fallback), `method`, `status`.
pub const HTTP_REQUEST_SECONDS: &str = "checkin_http_request_seconds";
/// Gauge: HTTP connections open now (at most `[web] connections_max`).
pub const HTTP_CONNECTIONS_OPEN: &str = "checkin_http_connections_open";
/// Counter: HTTP connections the web closed or refused, label `reason` =
/// header_timeout (the request head not complete in time) | idle_timeout
/// (no byte for `idle_timeout_ms`) | too_large (head over
/// `header_bytes_max`, answered 431) | over_limit (past `connections_max`,
/// closed on accept).
pub const HTTP_CONNECTIONS_CLOSED: &str = "checkin_http_connections_closed_total";
/// Counter: check-ins recorded, labels `channel` = sms | web and `outcome`
/// (sms: checked_in | duplicate | repeat | opted_out | rejected; web:
/// checked_in | duplicate).
pub const CHECKINS: &str = "checkin_checkins_total";

/// How long `/readyz` waits for storage's answer before calling it down.
pub const READY_STORAGE_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a write storage refused keeps `/readyz` at 503 after it: a
/// nearly full disk takes the probe's one page and refuses every check-in.
pub const READY_WRITE_FAILURE_WINDOW: Duration = Duration::from_secs(10);

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// `GET /healthz`: 200 "ok" while the process serves requests.
pub(crate) async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

/// `GET /readyz`: 200 "ready", or 503 with one line per reason.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let mut reasons = Vec::new();
    let probe = state.store().ping_write(state.now());
    match tokio::time::timeout(READY_STORAGE_TIMEOUT, probe).await {
        Ok(Ok(())) => {
            if let Some((ago, e)) = state
                .store()
                .recent_write_failure(READY_WRITE_FAILURE_WINDOW)
            {
                reasons.push(format!(
                    "storage: a write failed {} ms ago: {e}",
                    ago.as_millis()
                ));
            }
        }
        Ok(Err(e)) => reasons.push(format!("storage: cannot write: {e}")),
        Err(_) => reasons.push(format!(
            "storage: no answer within {} ms",
            READY_STORAGE_TIMEOUT.as_millis()
        )),
    }
    // Ready with notes: e.g. one operator of several without a bind.
    let mut notes = String::new();
    if let Some(probe) = &state.ops().readiness {
        match probe() {
            Ok(lines) => {
                for line in lines {
                    notes.push_str(&format!("smpp: {line}\n"));
                }
            }
            Err(reason) => reasons.push(format!("smpp: {reason}")),
        }
    }
    if reasons.is_empty() {
        text(StatusCode::OK, format!("ready\n{notes}"))
    } else {
        tracing::warn!(reasons = %reasons.join("; "), "not ready");
        text(StatusCode::SERVICE_UNAVAILABLE, reasons.join("\n") + "\n")
    }
}

/// `GET /metrics`: the recorder's text (404 when metrics are off).
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match &state.ops().metrics {
        Some(render) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            render(),
        )
            .into_response(),
        None => text(StatusCode::NOT_FOUND, "metrics are off\n".into()),
    }
}

/// Times a request for [`HTTP_REQUEST_SECONDS`], under the matched route
/// (never the raw path: it may hold a guard's token, and its values are
/// unbounded). Start it as the request arrives, record it with the response.
pub(crate) struct RequestTimer {
    route: String,
    method: String,
    started: Instant,
}

impl RequestTimer {
    pub(crate) fn start(request: &Request) -> RequestTimer {
        RequestTimer {
            route: request
                .extensions()
                .get::<MatchedPath>()
                .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned()),
            method: request.method().as_str().to_owned(),
            started: Instant::now(),
        }
    }

    pub(crate) fn record(self, response: &Response) {
        metrics::histogram!(
            HTTP_REQUEST_SECONDS,
            "route" => self.route,
            "method" => self.method,
            "status" => response.status().as_u16().to_string(),
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

/// The span every request is logged in: its id (`x-request-id`, set by the
/// outer layer), method and matched route; no path, query or body, which
/// may hold a phone, a code or a token.
pub(crate) fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!("http", request_id = %id, method = %request.method(), route = %route)
}

/// Counts a web check-in under [`CHECKINS`].
pub(crate) fn count_web_checkin(duplicate: bool) {
    let outcome = if duplicate { "duplicate" } else { "checked_in" };
    metrics::counter!(CHECKINS, "channel" => "web", "outcome" => outcome).increment(1);
}
