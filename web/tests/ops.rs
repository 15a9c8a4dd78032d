//! `/healthz`, `/readyz` (each reason it is not ready), `/metrics` (off, on,
//! HTTP latency under the matched route, never the raw path) and the
//! request id every response carries.

mod api_support;
use api_support as common;

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::App;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use web::{MetricsRender, Ops, ReadinessProbe};

/// The test binary's one recorder (a process has at most one).
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().unwrap())
        .clone()
}

/// What a probe answers: ready with notes, or the reason it is not.
type Answer = Arc<Mutex<Result<Vec<String>, String>>>;

/// A probe whose answer the test sets.
fn probe() -> (ReadinessProbe, Answer) {
    let answer = Arc::new(Mutex::new(Ok(Vec::new())));
    let read = answer.clone();
    (Arc::new(move || read.lock().unwrap().clone()), answer)
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = App::new().await;
    let reply = app.get("/healthz", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "ok\n");
}

#[tokio::test]
async fn readyz_is_ready_with_storage_and_a_bind() {
    let (readiness, _) = probe();
    let app = App::with_ops(Ops {
        readiness: Some(readiness),
        metrics: None,
    })
    .await;
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "ready\n");
}

#[tokio::test]
async fn readyz_names_a_link_without_binds() {
    let (readiness, answer) = probe();
    let app = App::with_ops(Ops {
        readiness: Some(readiness),
        metrics: None,
    })
    .await;
    *answer.lock().unwrap() = Err("no SMPP bind up (0 of 1): connection refused".into());
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.body,
        "smpp: no SMPP bind up (0 of 1): connection refused\n"
    );
    // Back once a bind is up.
    *answer.lock().unwrap() = Ok(Vec::new());
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    // Ready, with a note: one operator of several has no bind.
    *answer.lock().unwrap() = Ok(vec!["operator beeline: no bind up (0 of 1)".into()]);
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        "ready\nsmpp: operator beeline: no bind up (0 of 1)\n"
    );
}

#[tokio::test]
async fn readyz_names_storage_down_and_both_reasons_together() {
    let (readiness, answer) = probe();
    let app = App::with_ops(Ops {
        readiness: Some(readiness),
        metrics: None,
    })
    .await;
    app.store.close().await;
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.starts_with("storage: "), "{}", reply.body);
    assert_eq!(reply.body.lines().count(), 1, "{}", reply.body);
    *answer.lock().unwrap() = Err("no SMPP bind up (0 of 1)".into());
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let lines: Vec<&str> = reply.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", reply.body);
    assert!(lines[0].starts_with("storage: "));
    assert_eq!(lines[1], "smpp: no SMPP bind up (0 of 1)");
}

/// A full disk or a file another process holds locked refuse every write
/// while reads still answer: readiness is a write, not a read. Here another
/// connection holds SQLite's write lock.
#[tokio::test]
async fn readyz_says_storage_is_down_while_it_cannot_write() {
    use sqlx::Connection;
    let app = App::new().await;
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    let url = checkin_core::store::sqlite_url_in(app._dir.path());
    let mut locker = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();
    app.store.ping().await.expect("reads still answer");
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.starts_with("storage: "), "{}", reply.body);
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    // Ready again by itself once the lock is gone (the probe stuck behind it
    // ends within the busy timeout).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let reply = app.get("/readyz", None).await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", reply.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_without_a_probe_checks_storage_only() {
    let app = App::new().await;
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_404_when_off() {
    let app = App::new().await;
    assert_eq!(
        app.get("/metrics", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn metrics_time_requests_under_their_route_not_their_path() {
    let handle = recorder();
    let render: MetricsRender = Arc::new(move || handle.render());
    let app = App::with_ops(Ops {
        readiness: None,
        metrics: Some(render),
    })
    .await;
    // A page with a code in its path, and a path no route matches.
    app.get("/v/572094130", None).await;
    app.get("/no/such/572094130", None).await;
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = reply.body;
    assert!(
        text.contains(
            r#"checkin_http_request_seconds_count{route="/v/{code}",method="GET",status="404"} "#
        ) || text.contains(
            r#"checkin_http_request_seconds{route="/v/{code}",method="GET",status="404""#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(!text.contains("572094130"), "{text}");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_clients() {
    let app = App::new().await;
    let reply = app.get("/healthz", None).await;
    let id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let reply = app
        .send(
            Request::get("/healthz")
                .header("x-request-id", "lb-1234")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "lb-1234");
}
