//! The OpenAPI document of `/api/v1` against the router itself: every
//! `/api/v1` route the router has (every `.route("/api/v1…"` in `web/src`,
//! each method found by asking the router) is in the document with exactly
//! its methods, and every operation of the document is a route. Plus the
//! fixes schemathesis asked for (`scripts/test` fuzzes the running server).

mod api_support;

use std::collections::BTreeSet;
use std::path::Path;

use api_support::App;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::Value;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The path of every `.route(…)` under `/api/v1` in the web's source.
fn api_routes_in_source() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(".route(") {
                let rest = text[at + ".route(".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    panic!("{}: a route whose path is not a literal", path.display());
                };
                let route = &rest[..rest.find('"').unwrap()];
                if route.starts_with("/api/") {
                    found.insert(route.to_owned());
                }
            }
        }
    }
    found
}

async fn document(app: &App) -> Value {
    let reply = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    reply.json()
}

/// The methods the router answers on `path` (no token: a method it has
/// answers 401 or 200, one it lacks 405).
async fn routed_methods(app: &App, path: &str) -> BTreeSet<String> {
    let concrete = path.replace("{id}", "1");
    let mut methods = BTreeSet::new();
    for method in METHODS {
        let request = Request::builder()
            .method(method.clone())
            .uri(&concrete)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let reply = app.send(request).await;
        assert_ne!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {concrete}: the router does not know the route: {}",
            reply.body
        );
        if reply.status != StatusCode::METHOD_NOT_ALLOWED {
            methods.insert(method.as_str().to_lowercase());
        }
    }
    methods
}

#[tokio::test]
async fn every_api_route_of_the_router_is_in_the_document_and_no_other() {
    let app = App::new().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let in_source = api_routes_in_source();
    assert!(
        in_source.len() >= 10,
        "the source scan found too few routes: {in_source:?}"
    );
    let documented: BTreeSet<String> = paths.keys().cloned().collect();
    assert_eq!(
        in_source, documented,
        "routes in the router vs the document"
    );
    for (path, item) in paths {
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| METHODS.iter().any(|m| m.as_str().eq_ignore_ascii_case(k)))
            .cloned()
            .collect();
        assert_eq!(
            routed_methods(&app, path).await,
            documented,
            "methods of {path}: the router's vs the document's"
        );
    }
}

#[tokio::test]
async fn every_operation_names_its_token_and_refuses_with_the_error_body() {
    let app = App::new().await;
    let doc = document(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let scheme = op["security"][0]
                .as_object()
                .and_then(|s| s.keys().next().cloned());
            if path == "/api/v1/openapi.json" {
                assert_eq!(scheme, None, "the document needs no token");
                continue;
            }
            let expected = if path.starts_with("/api/v1/premises") {
                "organization_token"
            } else {
                "authority_token"
            };
            assert_eq!(scheme.as_deref(), Some(expected), "{method} {path}");
            assert_eq!(
                doc["components"]["securitySchemes"][expected]["scheme"],
                "bearer"
            );
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
        }
    }
}

#[tokio::test]
async fn the_limits_the_document_promises_are_the_stores() {
    let app = App::new().await;
    let doc = document(&app).await;
    let limit = doc["paths"]["/api/v1/premises"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        limit["schema"]["maximum"].as_u64(),
        Some(u64::from(checkin_core::store::PREMISES_PAGE_MAX))
    );
    let create = &doc["components"]["schemas"]["CreateBody"]["properties"];
    assert_eq!(
        create["address"]["maxLength"].as_u64(),
        Some(checkin_core::store::ADDRESS_CHARS_MAX as u64)
    );
    assert_eq!(
        create["kind"]["maxLength"].as_u64(),
        Some(checkin_core::store::KIND_CHARS_MAX as u64)
    );
    assert_eq!(create["stay_minutes"]["minimum"].as_u64(), Some(1));
    assert_eq!(
        create["stay_minutes"]["maximum"].as_u64(),
        Some(u64::from(checkin_core::model::STAY_MINUTES_MAX))
    );
    let batch = &doc["components"]["schemas"]["BatchSubmission"]["properties"]["cases"];
    assert_eq!(
        batch["maxItems"].as_u64(),
        Some(web::CASES_BATCH_MAX as u64)
    );
}

/// The typed answers serialize exactly as the `json!` values they replaced
/// (keys in alphabetical order, times as `to_rfc3339`).
#[tokio::test]
async fn the_json_on_the_wire_is_unchanged() {
    let app = App::new().await;
    let reply = app
        .post_as_authority(
            "/api/v1/cases",
            r#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00+03:00","dry_run":true}"#,
        )
        .await;
    assert_eq!(
        reply.body,
        r#"{"dry_run":true,"people":0,"unreachable":0,"visits":0}"#
    );
    let reply = app
        .post_as_authority(
            "/api/v1/cases",
            r#"{"cases":[{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00+03:00"}],"dry_run":true}"#,
        )
        .await;
    assert_eq!(
        reply.body,
        r#"{"cases":[{"people":0,"unreachable":0,"visits":0}],"dry_run":true}"#
    );
    let reply = app
        .post_as_authority(
            "/api/v1/cases",
            r#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00+03:00"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        reply.body,
        r#"{"alerts_queued":0,"id":1,"people":0,"unreachable":0,"visits":0}"#
    );
    let token = app.authority_token.clone();
    let reply = app.get("/api/v1/cases/1", Some(&token)).await;
    assert_eq!(
        reply.body,
        r#"{"alerts":0,"confirmed_at":"2020-10-18T17:13:00+00:00","contagious_from":"2020-10-16T17:13:00+00:00","contagious_to":"2020-11-01T17:13:00+00:00","created_at":"2020-10-20T09:00:00+00:00","delivered":0,"expired":0,"exposed":{"people":0,"unreachable":0,"visits":0},"failed":0,"id":1,"queued":0,"sent":0}"#
    );
    let reply = app.get("/api/v1/alerts", Some(&token)).await;
    assert_eq!(reply.body, r#"{"alerts_paused":false}"#);
    let reply = app
        .post_as_authority("/api/v1/cases", r#"{"phone":"12","confirmed_at":"x"}"#)
        .await;
    assert!(
        reply
            .body
            .starts_with(r#"{"error":"invalid","field":"phone","message":"#),
        "{}",
        reply.body
    );
    let reply = app.get("/api/v1/cases/1", None).await;
    assert!(
        reply.body.starts_with(r#"{"error":"no_token","message":"#),
        "{}",
        reply.body
    );
    let org_token = app.org_token.clone();
    let reply = app.get("/api/v1/premises?limit=1", Some(&org_token)).await;
    assert!(
        reply.body.starts_with(r#"{"items":[{"id":"#),
        "{}",
        reply.body
    );
    let first = reply.json()["items"][0]["id"].as_i64().unwrap();
    assert!(
        reply
            .body
            .ends_with(&format!(r#"}}],"next_cursor":{first}}}"#)),
        "{}",
        reply.body
    );
}
