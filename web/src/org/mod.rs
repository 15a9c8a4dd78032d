//! The organization cabinet (HTML, Russian) and the organizations' JSON API:
//! accounts and sessions (`auth.rs`), premises, tokens and statistics pages
//! (`cabinet.rs`), posters and QR files (`poster.rs`), check-in counts and
//! their SVG charts (`stats.rs`), the SMS a visitor will read with its
//! segment count (`sms_preview.rs`), the bearer-token API (`api.rs`) and its
//! errors (`error.rs`), the
//! markup (`pages.rs`). Everything an organization reaches is scoped to its
//! own id in the store's queries: another's premises is never found.

pub(crate) mod api;
mod auth;
mod cabinet;
mod error;
mod pages;
mod poster;
mod sms_preview;
mod stats;

pub(crate) use auth::SESSION_COOKIE as ORG_SESSION_COOKIE;
pub(crate) use pages::{log_in_form, problem, token_list, ORG_CSS as ORG_CSS_PATH};

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

const ORG_CSS: &str = include_str!("../../static/org.css");
const ORG_SMS_JS: &str = include_str!("../../static/org-sms.js");

/// Every route of the cabinet and the organizations' API.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/org", get(cabinet::home))
        .route(
            "/org/signup",
            get(cabinet::sign_up_page).post(cabinet::sign_up),
        )
        .route(
            "/org/login",
            get(cabinet::log_in_page).post(cabinet::log_in),
        )
        .route("/org/logout", post(cabinet::log_out))
        .route("/org/premises", post(cabinet::add_premises))
        .route("/org/sms-preview", get(sms_preview::sms_preview))
        .route(
            "/org/premises/{id}",
            get(cabinet::premises_page).post(cabinet::edit_premises),
        )
        .route("/org/premises/{id}/deactivate", post(cabinet::deactivate))
        .route("/org/premises/{id}/stats", get(cabinet::stats_page))
        .route("/org/premises/{id}/poster", get(poster::poster))
        .route("/org/premises/{id}/qr.svg", get(poster::qr_svg_file))
        .route("/org/premises/{id}/qr.png", get(poster::qr_png_file))
        .route("/org/posters", get(poster::posters))
        .route(
            "/org/tokens",
            get(cabinet::tokens).post(cabinet::create_token),
        )
        .route("/org/tokens/{id}/revoke", post(cabinet::revoke_token))
        .route("/api/v1/premises", get(api::list).post(api::create))
        .route(
            "/api/v1/premises/{id}",
            get(api::get_one).patch(api::update),
        )
        .route("/api/v1/premises/{id}/stats", get(api::stats))
        .route("/api/v1/premises/{id}/deactivate", post(api::deactivate))
        .route(
            "/static/org.css",
            get(|| crate::static_file(ORG_CSS, "text/css")),
        )
        .route(
            "/static/org-sms.js",
            get(|| crate::static_file(ORG_SMS_JS, "text/javascript")),
        )
}
