//! Who is asking: a person of an authority, by the `authority_session`
//! cookie (a random secret, stored only hashed), with log-in and log-out.
//! Passwords are checked like the organization cabinet's (argon2id, the same
//! limit per address, the same CSRF field).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use checkin_core::store::AuthorityUser;
use chrono::Duration;
use serde::Deserialize;

use super::pages;
use crate::client_ip::ClientIp;
use crate::error::WebError;
use crate::security;
use crate::state::AppState;
use crate::visitor::{check_csrf, csrf, csrf_form, form, redirect, CsrfOnly, Page};

/// The cabinet's session cookie.
pub(crate) const SESSION_COOKIE: &str = "authority_session";

/// The logged-in person. Without a live session the browser is sent to the
/// log-in page, unless it shows an organization's credentials (its session
/// cookie or a bearer token): those are refused (403).
#[derive(Debug, Clone)]
pub(crate) struct CabinetUser(pub(crate) AuthorityUser);

impl FromRequestParts<AppState> for CabinetUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(secret) = security::cookie(&parts.headers, SESSION_COOKIE) {
            match state
                .store()
                .authority()
                .session_user(secret, state.now())
                .await
            {
                Ok(Some(user)) => return Ok(CabinetUser(user)),
                Ok(None) => {}
                Err(e) => return Err(WebError::from(e).into_response()),
            }
        }
        if parts.headers.contains_key(header::AUTHORIZATION)
            || security::cookie(&parts.headers, crate::org::ORG_SESSION_COOKIE).is_some()
        {
            return Err(WebError::Forbidden.into_response());
        }
        Err(redirect("/authority/login", Vec::new()))
    }
}

/// The `Set-Cookie` that starts (`Some(secret)`) or ends a session; it lives
/// as long as an organization's (`org_session_h`).
fn session_cookie(state: &AppState, secret: Option<&str>) -> HeaderValue {
    let life_s = i64::from(state.config().org_session_h) * 3600;
    let secure = state.config().cookie_secure;
    match secret {
        Some(secret) => security::set_cookie(SESSION_COOKIE, secret, life_s, secure),
        None => security::set_cookie(SESSION_COOKIE, "", 0, secure),
    }
}

pub(crate) async fn log_in_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (field, cookies) = csrf(&state, &headers);
    Page {
        status: StatusCode::OK,
        markup: pages::log_in(&field, "", None),
        cookies,
    }
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn log_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Form<LogInForm>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    state.inner.limits.take_login(ip)?;
    let record = state.store().authority().login_record(&body.email).await?;
    let (user_id, hash) = match record {
        Some(r) => (Some(r.user_id), Some(r.password_hash)),
        None => (None, None),
    };
    let matches = security::password_matches(hash, body.password).await;
    match user_id.filter(|_| matches) {
        Some(user_id) => {
            let life = Duration::hours(i64::from(state.config().org_session_h));
            let session = state
                .store()
                .authority()
                .open_session(user_id, life, state.now())
                .await?;
            tracing::info!(user_id, "authority user logged in");
            Ok(redirect(
                "/authority",
                vec![session_cookie(&state, Some(&session.secret))],
            ))
        }
        None => {
            tracing::info!("authority log-in refused");
            let (field, cookies) = csrf(&state, &headers);
            Ok(Page {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                markup: pages::log_in(&field, &body.email, Some("Неверная почта или пароль.")),
                cookies,
            }
            .into_response())
        }
    }
}

pub(crate) async fn log_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, WebError> {
    csrf_form(&state, &headers, body)?;
    if let Some(secret) = security::cookie(&headers, SESSION_COOKIE) {
        state
            .store()
            .authority()
            .close_session(secret, state.now())
            .await?;
    }
    Ok(redirect(
        "/authority/login",
        vec![session_cookie(&state, None)],
    ))
}
