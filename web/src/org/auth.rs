//! Who is asking: a cabinet session (the `org_session` cookie) or an API
//! bearer token, each resolved to the organization it belongs to.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::error::WebError;
use crate::security;
use crate::state::AppState;
use crate::visitor::redirect;

/// The cabinet's session cookie: a random secret, stored only hashed.
pub(crate) const SESSION_COOKIE: &str = "org_session";
/// Longest bearer token we try to read (ours are 64 hex characters).
const BEARER_CHARS_MAX: usize = 128;

/// The organization of the cabinet's logged-in user; without a live session
/// the browser is sent to the log-in page.
#[derive(Debug, Clone)]
pub(crate) struct CabinetOrg {
    pub org_id: i64,
    pub name: String,
}

impl FromRequestParts<AppState> for CabinetOrg {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match session_org(state, &parts.headers).await {
            Ok(Some(org)) => Ok(org),
            Ok(None) => Err(redirect("/org/login", Vec::new())),
            Err(e) => Err(e.into_response()),
        }
    }
}

async fn session_org(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CabinetOrg>, WebError> {
    let Some(secret) = security::cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let org = state
        .store()
        .accounts()
        .session_org(secret, state.now())
        .await?;
    Ok(org.map(|o| CabinetOrg {
        org_id: o.org_id,
        name: o.name,
    }))
}

/// The `Set-Cookie` that starts (`Some(secret)`) or ends a session.
pub(crate) fn session_cookie(state: &AppState, secret: Option<&str>) -> HeaderValue {
    let life_s = i64::from(state.config().org_session_h) * 3600;
    match secret {
        Some(secret) => {
            security::set_cookie(SESSION_COOKIE, secret, life_s, state.config().cookie_secure)
        }
        None => security::set_cookie(SESSION_COOKIE, "", 0, state.config().cookie_secure),
    }
}

/// The organization an `Authorization: Bearer …` token belongs to; none or
/// a wrong one is a JSON 401.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiOrg {
    pub org_id: i64,
}

impl FromRequestParts<AppState> for ApiOrg {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let secret = bearer(&parts.headers).ok_or(ApiError::NoToken)?;
        let org_id = state
            .store()
            .accounts()
            .token_org(secret)
            .await?
            .ok_or(ApiError::BadToken)?;
        Ok(ApiOrg { org_id })
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= BEARER_CHARS_MAX)
        .then_some(token)
}

/// Posters and QR files: a cabinet session or a bearer token (the API hands
/// out their URLs). A request with an `Authorization` header is judged by its
/// token (a JSON 401 when wrong); one without, by its session (else the
/// log-in page).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnyOrg {
    pub org_id: i64,
}

impl FromRequestParts<AppState> for AnyOrg {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let api = ApiOrg::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
            return Ok(AnyOrg { org_id: api.org_id });
        }
        let org = CabinetOrg::from_request_parts(parts, state).await?;
        Ok(AnyOrg { org_id: org.org_id })
    }
}
