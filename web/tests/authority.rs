//! The health authority's API through the router on a real SQLite store:
//! every route's success, and each refusal as JSON (no token, a bad token,
//! an organization's token, malformed JSON, a bad phone or time naming its
//! field, a batch too large, storage down).

mod api_support;
use api_support as common;

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
    assert_eq!(report["alerts"], 0);
}

/// The case (CASE's phone) at the premises at 20:13; who shared it with them.
async fn seed_visits(app: &App) {
    app.visit("+79161234567", &app.premises, 0, true).await;
    // Two people there with the case, with consent; one of them twice
    // (earlier the same evening, outside the case's presence, and at 20:30).
    app.visit("+79160000001", &app.premises, 10, true).await;
    app.visit("+79160000002", &app.premises, -300, true).await;
    app.visit("+79160000002", &app.premises, 17, true).await;
    // Without consent (web): exposed, not reachable.
    app.visit("+79160000003", &app.premises, 20, false).await;
    // Elsewhere at the same time: not exposed.
    app.visit("+79160000004", &app.other, 5, true).await;
}

#[tokio::test]
async fn a_dry_run_counts_and_queues_nothing() {
    let app = App::new().await;
    seed_visits(&app).await;
    let body = CASE.replace('}', r#","dry_run":true}"#);
    let reply = app.post_as_authority("/api/v1/cases", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.json(),
        serde_json::json!({"dry_run": true, "visits": 2, "people": 2, "unreachable": 1})
    );
    assert_eq!(app.store.cases().count_cases().await.unwrap(), 0);
    assert_eq!(app.outbox_rows().await, 0);
    // A batch's dry run: per case.
    let body = format!(r#"{{"dry_run":true,"cases":[{CASE},{CASE}]}}"#);
    let reply = app.post_as_authority("/api/v1/cases", &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["cases"][1]["visits"], 2);
    assert_eq!(app.outbox_rows().await, 0);
}

#[tokio::test]
async fn a_case_queues_its_alerts_once_and_reports_them() {
    let app = App::new().await;
    seed_visits(&app).await;
    let reply = app.post_as_authority("/api/v1/cases", CASE).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["alerts_queued"], 2, "{json}");
    assert_eq!(json["visits"], 2);
    assert_eq!(json["people"], 2);
    assert_eq!(json["unreachable"], 1);
    assert_eq!(app.outbox_rows().await, 2);
    let id = json["id"].as_i64().unwrap();
    let token = app.authority_token.clone();
    let report = app
        .get(&format!("/api/v1/cases/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(report["alerts"], 2, "{report}");
    assert_eq!(report["queued"], 2);
    assert_eq!(report["sent"], 0);
    assert_eq!(report["delivered"], 0);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["expired"], 0);
    assert_eq!(report["exposed"]["unreachable"], 1);
    // The same case again: recorded, nothing new queued.
    let again = app.post_as_authority("/api/v1/cases", CASE).await.json();
    assert_eq!(again["alerts_queued"], 0, "{again}");
    assert_eq!(app.outbox_rows().await, 2);
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

#[tokio::test]
async fn the_kill_switch_pauses_and_resumes_alerts() {
    let app = App::new().await;
    let token = app.authority_token.clone();
    let state = app.get("/api/v1/alerts", Some(&token)).await;
    assert_eq!(state.status, StatusCode::OK);
    assert_eq!(state.json()["alerts_paused"], false);
    let reply = app.post("/api/v1/alerts/pause", Some(&token), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["alerts_paused"], true);
    assert!(app.store.flags().alerts_paused().await.unwrap());
    assert!(*app.store.flags().watch_alerts_paused().borrow());
    assert_eq!(
        app.get("/api/v1/alerts", Some(&token)).await.json()["alerts_paused"],
        true
    );
    let reply = app.post("/api/v1/alerts/resume", Some(&token), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["alerts_paused"], false);
    assert!(!app.store.flags().alerts_paused().await.unwrap());
}

#[tokio::test]
async fn the_kill_switch_refuses_no_token_a_bad_one_and_an_organizations() {
    let app = App::new().await;
    let org = app.org_token.clone();
    for path in ["/api/v1/alerts/pause", "/api/v1/alerts/resume"] {
        let reply = app.post(path, None, "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.error(), "no_token");
        let reply = app.post(path, Some(&"0".repeat(64)), "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(reply.error(), "bad_token");
        let reply = app.post(path, Some(&org), "").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(reply.error(), "wrong_token_kind");
    }
    assert_eq!(
        app.get("/api/v1/alerts", Some(&org)).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(!app.store.flags().alerts_paused().await.unwrap());
}

#[tokio::test]
async fn the_kill_switch_with_storage_down_answers_503() {
    let app = App::new().await;
    let token = app.authority_token.clone();
    app.store.close().await;
    let reply = app.post("/api/v1/alerts/pause", Some(&token), "").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error(), "storage_unavailable");
}

#[tokio::test]
async fn a_wrong_method_answers_405_in_json() {
    let app = App::new().await;
    let token = app.authority_token.clone();
    let reply = app.get("/api/v1/cases", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error(), "method_not_allowed");
    let reply = app.get("/api/v1/alerts/pause", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error(), "method_not_allowed");
    assert!(!app.store.flags().alerts_paused().await.unwrap());
}

#[tokio::test]
async fn an_unknown_api_path_answers_json_404() {
    let app = App::new().await;
    for path in ["/api/v1/nothing", "/api/v2/cases", "/api/"] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.error(), "not_found", "{path}");
    }
    // Pages outside the API keep the HTML 404.
    let reply = app.get("/nothing", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body.contains("<html"), "{}", reply.body);
}
