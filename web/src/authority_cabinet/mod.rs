//! The health authority's cabinet (HTML, Russian, works without script):
//! its people's log-in (`auth.rs`), the overview with the kill switch, API
//! tokens and the audit log (`cabinet.rs`), the case upload with its dry run
//! and a self-refreshing progress page (`upload.rs`), the cases with their
//! alerts' delivery and the report as CSV (`cases.rs`), and the markup
//! (`pages.rs`). Everything is scoped to the session's authority; an
//! organization's session or token is refused (403).

mod auth;
mod cabinet;
mod cases;
mod pages;
mod upload;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// Every route of the cabinet (each under `/authority`).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/authority", get(cabinet::home))
        .route(
            "/authority/login",
            get(auth::log_in_page).post(auth::log_in),
        )
        .route("/authority/logout", post(auth::log_out))
        .route(
            "/authority/alerts",
            get(cabinet::switch_page).post(cabinet::switch),
        )
        .route(
            "/authority/tokens",
            get(cabinet::tokens).post(cabinet::create_token),
        )
        .route("/authority/tokens/{id}/revoke", post(cabinet::revoke_token))
        .route("/authority/audit", get(cabinet::audit))
        .route(
            "/authority/upload",
            get(upload::form_page)
                .post(upload::upload)
                .layer(DefaultBodyLimit::max(upload::UPLOAD_BYTES_MAX)),
        )
        .route("/authority/upload/{job}", get(upload::job_page))
        .route("/authority/upload/{job}/send", post(upload::send))
        .route("/authority/cases", get(cases::list))
        .route("/authority/cases.csv", get(cases::report_csv))
        .route("/authority/cases/{id}", get(cases::case_page))
}
