//! The overview with the kill switch (a confirmation step, then the switch
//! and its audit entry in one transaction), API tokens (issued once,
//! revoked) and the audit log.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use checkin_core::store::{AuditNote, AUDIT_PAGE_MAX};
use serde::Deserialize;

use super::auth::CabinetUser;
use super::pages;
use crate::error::WebError;
use crate::state::AppState;
use crate::visitor::{check_csrf, csrf, csrf_form, form, redirect, CsrfOnly, Page};

pub(crate) fn page(
    status: StatusCode,
    markup: maud::Markup,
    cookies: Vec<axum::http::HeaderValue>,
) -> Response {
    Page {
        status,
        markup,
        cookies,
    }
    .into_response()
}

pub(crate) async fn home(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let paused = state.store().flags().alerts_paused().await?;
    let last = state.store().authority().last_switch().await?;
    let (field, cookies) = csrf(&state, &headers);
    let markup = pages::home(&pages::Home {
        user: &user,
        csrf: &field,
        zone: &state.inner.zone,
        paused,
        last_switch: last.as_ref(),
    });
    Ok(page(StatusCode::OK, markup, cookies))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SwitchQuery {
    #[serde(default)]
    action: String,
}

/// The confirmation step: what pausing (or resuming) does, and its button.
pub(crate) async fn switch_page(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    Query(query): Query<SwitchQuery>,
) -> Result<Response, WebError> {
    let paused = state.store().flags().alerts_paused().await?;
    let pause = match query.action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => !paused,
    };
    let last = state.store().authority().last_switch().await?;
    let (field, cookies) = csrf(&state, &headers);
    let markup = pages::switch_confirm(
        &user,
        &field,
        &state.inner.zone,
        pause,
        paused,
        last.as_ref(),
    );
    Ok(page(StatusCode::OK, markup, cookies))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
}

/// Pauses or resumes alerts (confirmed on the previous page), logged with
/// who did it in the same transaction.
pub(crate) async fn switch(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    body: Result<Form<SwitchForm>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let (paused, action) = match body.action.as_str() {
        "pause" => (true, "alerts_paused"),
        "resume" => (false, "alerts_resumed"),
        _ => return Err(WebError::BadForm),
    };
    let note = AuditNote::new(user.authority_id, &user.email, action, "");
    state
        .store()
        .flags()
        .set_alerts_paused_by(paused, Some(note), state.now())
        .await?;
    tracing::warn!(
        authority = user.authority_id,
        user_id = user.user_id,
        paused,
        "alerts switched from the authority cabinet"
    );
    Ok(redirect("/authority", Vec::new()))
}

async fn tokens_page(
    state: &AppState,
    user: &checkin_core::store::AuthorityUser,
    headers: &HeaderMap,
    status: StatusCode,
    created: Option<&str>,
    why: Option<&str>,
) -> Result<Response, WebError> {
    let tokens = state.store().authority().tokens(user.authority_id).await?;
    let (field, cookies) = csrf(state, headers);
    let markup = pages::tokens(user, &field, &tokens, created, why);
    Ok(page(status, markup, cookies))
}

pub(crate) async fn tokens(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    tokens_page(&state, &user, &headers, StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

/// Issues a token and shows it once, on this response (never in a URL).
pub(crate) async fn create_token(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    match state
        .store()
        .authority()
        .create_token(&user, &body.label, state.now())
        .await
    {
        Ok((info, secret)) => {
            tracing::info!(
                token_id = info.id,
                authority = user.authority_id,
                "authority API token created"
            );
            tokens_page(&state, &user, &headers, StatusCode::OK, Some(&secret), None).await
        }
        Err(e) if e.is_caller_error() => {
            let why = if e.to_string().contains("label") {
                "Название токена слишком длинное."
            } else {
                "Слишком много действующих токенов: отзовите ненужные."
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            tokens_page(&state, &user, &headers, status, None, Some(why)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    csrf_form(&state, &headers, body)?;
    if !state
        .store()
        .authority()
        .revoke_token(&user, id, state.now())
        .await?
    {
        return Err(WebError::NotFound);
    }
    tracing::info!(token_id = id, "authority API token revoked");
    Ok(redirect("/authority/tokens", Vec::new()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct BeforeQuery {
    pub(crate) before: Option<i64>,
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    Query(query): Query<BeforeQuery>,
) -> Result<Response, WebError> {
    let entries = state
        .store()
        .authority()
        .audit(user.authority_id, query.before, AUDIT_PAGE_MAX)
        .await?;
    let next = (entries.len() == AUDIT_PAGE_MAX as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let (field, cookies) = csrf(&state, &headers);
    let markup = pages::audit(&user, &field, &state.inner.zone, &entries, next);
    Ok(page(StatusCode::OK, markup, cookies))
}
