//! The city account (OpenID Connect) instead of the SMS code: the visitor's
//! second button posts the form to `/v/{code}/oidc` (CSRF and consent
//! checked like the SMS way), which keeps the login's secrets in a sealed
//! 10-minute cookie and sends the browser to the provider; the provider
//! sends it back to `/auth/callback`, where the verified phone records the
//! check-in as the one-tap way does. Off (no routes) without an issuer.

pub(crate) mod provider;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use checkin_core::Msisdn;
use serde::Deserialize;

use crate::config::WebConfig;
use crate::error::WebError;
use crate::pages;
use crate::security;
use crate::state::AppState;
use crate::visitor;
use provider::{FlowError, LOGIN_LIFE_S};

/// The cookie that carries a login from our redirect to the callback.
const LOGIN_COOKIE: &str = "oidc";

/// The city account's routes; none when it is off (so they answer 404).
pub(crate) fn routes(config: &WebConfig) -> Router<AppState> {
    if !config.oidc.enabled() {
        return Router::new();
    }
    Router::new()
        .route("/v/{code}/oidc", post(start))
        .route("/auth/callback", get(callback))
}

/// Why a city-account login ended without a check-in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OidcError {
    #[error(transparent)]
    Web(#[from] WebError),
    /// The provider could not be reached (discovery, token, user info).
    #[error("the OpenID provider is unavailable")]
    Unavailable { premises: Option<String> },
    /// No login cookie, an expired or altered one, or a `state` that is not
    /// the cookie's.
    #[error("the login's state is missing or does not match")]
    BadState,
    /// The visitor cancelled at the provider (`error=access_denied`).
    #[error("the login was cancelled at the provider")]
    Cancelled { premises: String },
    /// The provider answered an error, or an answer that failed its checks.
    #[error("the provider's answer was refused")]
    Failed { premises: String },
    #[error("the account has no verified phone")]
    NoVerifiedPhone { premises: String },
    #[error("the account's phone is not a Russian mobile number")]
    NotRussian { premises: String },
}

impl IntoResponse for OidcError {
    fn into_response(self) -> Response {
        let back = |premises: &str| format!("/v/{premises}");
        let (status, title, text, link): (StatusCode, &str, &str, Option<(String, &str)>) =
            match self {
                OidcError::Web(e) => return e.into_response(),
                OidcError::Unavailable { premises } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Вход через mos.ru временно недоступен",
                    "Сервис mos.ru сейчас не отвечает. Отметьтесь по коду из SMS или попробуйте позже.",
                    premises.map(|p| (back(&p), "Отметиться по коду из SMS")),
                ),
                OidcError::BadState => (
                    StatusCode::BAD_REQUEST,
                    "Вход не завершён",
                    "Вход через mos.ru не удалось завершить: ссылка устарела или открыта в другом браузере. Начните заново: отсканируйте QR-код у входа.",
                    None,
                ),
                OidcError::Cancelled { premises } => (
                    StatusCode::FORBIDDEN,
                    "Вход отменён",
                    "Вход через mos.ru отменён. Отметиться можно по коду из SMS.",
                    Some((back(&premises), "Вернуться к отметке")),
                ),
                OidcError::Failed { premises } => (
                    StatusCode::BAD_GATEWAY,
                    "Вход не удался",
                    "mos.ru не подтвердил вход. Попробуйте ещё раз или отметьтесь по коду из SMS.",
                    Some((back(&premises), "Вернуться к отметке")),
                ),
                OidcError::NoVerifiedPhone { premises } => (
                    StatusCode::FORBIDDEN,
                    "Телефон не подтверждён",
                    "В учётной записи mos.ru нет подтверждённого номера телефона. Отметьтесь по коду из SMS.",
                    Some((back(&premises), "Отметиться по коду из SMS")),
                ),
                OidcError::NotRussian { premises } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Номер не подходит",
                    "Номер в учётной записи mos.ru не российский мобильный. Отметьтесь по коду из SMS на российский номер.",
                    Some((back(&premises), "Отметиться по коду из SMS")),
                ),
            };
        let link = link.as_ref().map(|(href, label)| (href.as_str(), *label));
        (
            status,
            Html(pages::message_with_link(title, text, link).into_string()),
        )
            .into_response()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StartBody {
    #[serde(default)]
    csrf: String,
    /// The phone field of the same form: ignored, kept for the form again.
    #[serde(default)]
    phone: String,
    consent: Option<String>,
}

/// `POST /v/{code}/oidc`: consent ticked → the login cookie and off to the
/// provider.
async fn start(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Form<StartBody>, FormRejection>,
) -> Result<Response, OidcError> {
    let (premises, _) = visitor::open_premises(&state, &code).await?;
    let body = visitor::form(body)?;
    visitor::check_csrf(&state, &headers, &body.csrf)?;
    let provider = state.inner.oidc.as_ref().ok_or(WebError::NotFound)?;
    if body.consent.is_none() {
        let shown: String = body.phone.chars().take(32).collect();
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let page = visitor::form_page(
            &state,
            &headers,
            &code,
            status,
            Some(visitor::NO_CONSENT),
            &shown,
            false,
        )
        .await?;
        return Ok(page);
    }
    let premises_code = premises.code.to_string();
    let (url, pending) = provider
        .authorize(premises_code.clone(), true, state.now())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "city-account login could not start");
            OidcError::Unavailable {
                premises: Some(premises_code),
            }
        })?;
    let cookie = security::set_cookie(
        LOGIN_COOKIE,
        &provider.seal(&pending),
        LOGIN_LIFE_S,
        state.config().cookie_secure,
    );
    // A page that moves on by itself rather than a 303: the CSP's
    // `form-action 'self'` also binds the redirects after a form's POST, and
    // the provider is another origin; a meta refresh is a plain navigation.
    let mut response = (
        StatusCode::OK,
        Html(pages::leaving(&url, &state.config().oidc.button_label).into_string()),
    )
        .into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: the provider's answer. The login cookie is deleted
/// whatever the outcome (a login is used once).
async fn callback(
    State(state): State<AppState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let mut response = match finish(&state, query, &headers).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    let clear = security::set_cookie(LOGIN_COOKIE, "", 0, state.config().cookie_secure);
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}

async fn finish(
    state: &AppState,
    query: CallbackQuery,
    headers: &HeaderMap,
) -> Result<Response, OidcError> {
    let provider = state.inner.oidc.as_ref().ok_or(WebError::NotFound)?;
    let pending = security::cookie(headers, LOGIN_COOKIE)
        .and_then(|value| provider.open(value, state.now()))
        .ok_or(OidcError::BadState)?;
    if query.state.as_deref() != Some(pending.state.as_str()) || !pending.consent {
        return Err(OidcError::BadState);
    }
    let premises_code = pending.premises.clone();
    if let Some(error) = query.error {
        if error == "access_denied" {
            tracing::info!("city-account login cancelled at the provider");
            return Err(OidcError::Cancelled {
                premises: premises_code,
            });
        }
        // The provider's error code is a short word of the standard's (not personal).
        let error: String = error.chars().take(64).collect();
        tracing::warn!(%error, "the OpenID provider answered an error");
        return Err(OidcError::Failed {
            premises: premises_code,
        });
    }
    let code = query.code.ok_or(OidcError::BadState)?;
    let (premises, _) = visitor::open_premises(state, &premises_code).await?;
    let phone = provider.verified_phone(code, &pending).await.map_err(|e| {
        // FlowError's text names no token, code or phone.
        tracing::warn!(error = %e, "city-account login failed");
        let premises = premises_code.clone();
        match e {
            FlowError::Unavailable(_) => OidcError::Unavailable {
                premises: Some(premises),
            },
            FlowError::Refused(_) => OidcError::Failed { premises },
            FlowError::NoVerifiedPhone => OidcError::NoVerifiedPhone { premises },
        }
    })?;
    let phone = Msisdn::parse(&phone).map_err(|_| OidcError::NotRussian {
        premises: premises_code,
    })?;
    let now = state.now();
    let recorded = visitor::record_web_checkin(state, &premises, phone.clone(), now).await?;
    tracing::info!(
        premises_id = premises.id,
        "check-in through the city account"
    );
    let cookie = visitor::remember_phone(state, &phone, now);
    Ok(visitor::redirect(
        &visitor::confirmation_path(state, &recorded),
        vec![cookie],
    ))
}
