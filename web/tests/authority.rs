//! The health authority's API through the router on a real SQLite store:
//! every route's success, and each refusal as JSON (no token, a bad token,
//! an organization's token, malformed JSON, a bad phone or time naming its
//! field, a batch too large, storage down).

mod common;

use axum::http::StatusCode;
use common::App;

const CASE: &str = r#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00+03:00"}"#;

#[tokio::test]
async fn one_case_is_recorded_and_reported() {
    let app = App::new().await;
    let reply = app.post_as_authority("/api/v1/cases", CASE).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let id = reply.json()["id"].as_i64().unwrap();
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 1);
    let token = app.authority_token.clone();
    let report = app.get(&format!("/api/v1/cases/{id}"), Some(&token)).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    let report = report.json();
    assert_eq!(report["id"], id);
    assert_eq!(report["confirmed_at"], "2020-10-18T17:13:00+00:00");
    assert_eq!(report["contagious_from"], "2020-10-16T17:13:00+00:00");
    assert_eq!(report["contagious_to"], "2020-11-01T17:13:00+00:00");
}

#[tokio::test]
async fn a_batch_is_recorded_whole() {
    let app = App::new().await;
    let body = format!(
        r#"{{"cases":[{CASE},{{"phone":"8 916 765-43-21","confirmed_at":"2020-10-19T10:00:00Z","contagious_from":"2020-10-17T00:00:00Z","contagious_to":"2020-10-19T00:00:00Z"}}]}}"#
    );
    let reply = app.post_as_authority("/api/v1/cases", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let cases = reply.json()["cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 2);
    assert!(cases.iter().all(|c| c["id"].is_i64()));
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 2);
}

#[tokio::test]
async fn without_a_token_the_api_answers_401() {
    let app = App::new().await;
    let reply = app.post("/api/v1/cases", None, CASE).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "no_token");
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    let reply = app.get("/api/v1/cases/1", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error(), "no_token");
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 0);
}

#[tokio::test]
async fn a_bad_token_answers_401() {
    let app = App::new().await;
    for token in ["0".repeat(64), "x".repeat(500), "not-a-token".into()] {
        let reply = app.post("/api/v1/cases", Some(&token), CASE).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(reply.error(), "bad_token");
        let reply = app.get("/api/v1/cases/1", Some(&token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
    }
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 0);
}

#[tokio::test]
async fn an_organizations_token_is_refused_on_the_authoritys_routes() {
    let app = App::new().await;
    let token = app.org_token.clone();
    let reply = app.post("/api/v1/cases", Some(&token), CASE).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error(), "wrong_token_kind");
    let reply = app.get("/api/v1/cases/1", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 0);
}

#[tokio::test]
async fn malformed_json_answers_400() {
    let app = App::new().await;
    for body in [r#"{"phone":"#, "phone=+79161234567", ""] {
        let reply = app.post_as_authority("/api/v1/cases", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error(), "malformed_json");
    }
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 0);
}

#[tokio::test]
async fn a_bad_phone_or_time_answers_422_naming_the_field() {
    let app = App::new().await;
    let cases = [
        (
            r#"{"phone":"12345","confirmed_at":"2020-10-18T20:13:00Z"}"#,
            "phone",
        ),
        (r#"{"confirmed_at":"2020-10-18T20:13:00Z"}"#, "phone"),
        (
            r#"{"phone":"+79161234567","confirmed_at":"18.10.2020"}"#,
            "confirmed_at",
        ),
        (r#"{"phone":"+79161234567"}"#, "confirmed_at"),
        (
            r#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00Z","contagious_from":"yesterday"}"#,
            "contagious_from",
        ),
        (
            r#"{"cases":[{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00Z"},{"phone":"+7916","confirmed_at":"2020-10-18T20:13:00Z"}]}"#,
            "cases[1].phone",
        ),
        ("[]", ""),
    ];
    for (body, field) in cases {
        let reply = app.post_as_authority("/api/v1/cases", body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(reply.error(), "invalid");
        assert_eq!(reply.json()["field"], field, "{body}");
        assert!(
            !reply.body.contains("7916"),
            "the phone is not echoed: {}",
            reply.body
        );
    }
    // A bad case in a batch: nothing of the batch is recorded.
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 0);
}

#[tokio::test]
async fn a_batch_too_large_answers_413() {
    let app = App::new().await;
    let too_many = format!(
        r#"{{"cases":[{}]}}"#,
        vec![CASE; web::CASES_BATCH_MAX + 1].join(",")
    );
    let reply = app.post_as_authority("/api/v1/cases", &too_many).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error(), "too_large");
    // A body over the byte limit is refused before it is read whole.
    let huge = format!(
        r#"{{"cases":[{CASE}],"pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let reply = app.post_as_authority("/api/v1/cases", &huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error(), "too_large");
    // A full batch is taken (the API's body limit is not the pages' 4 KiB).
    let full = format!(
        r#"{{"cases":[{}]}}"#,
        vec![CASE; web::CASES_BATCH_MAX].join(",")
    );
    let reply = app.post_as_authority("/api/v1/cases", &full).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        app.store.cases().count_cases().await.unwrap(),
        web::CASES_BATCH_MAX as u64
    );
}

#[tokio::test]
async fn a_case_of_another_authority_or_none_is_404() {
    let app = App::new().await;
    let reply = app.post_as_authority("/api/v1/cases", CASE).await;
    let id = reply.json()["id"].as_i64().unwrap();
    let (_, other) = app
        .store
        .orgs()
        .create_authority("Другой регион", common::start_time())
        .await
        .unwrap();
    let reply = app.get(&format!("/api/v1/cases/{id}"), Some(&other)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "not_found");
    let token = app.authority_token.clone();
    for path in ["/api/v1/cases/999", "/api/v1/cases/abc"] {
        let reply = app.get(path, Some(&token)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.error(), "not_found");
    }
}

#[tokio::test]
async fn storage_down_answers_503() {
    let app = App::new().await;
    app.store.close().await;
    let reply = app.post_as_authority("/api/v1/cases", CASE).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error(), "storage_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    let token = app.authority_token.clone();
    let reply = app.get("/api/v1/cases/1", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
}
