//! The cabinet's HTML handlers: sign-up, log-in/out, the premises (list, add,
//! edit, deactivate, statistics) and API tokens. Every form carries the web's
//! CSRF field; a refused form comes back with the reason (422); another
//! organization's premises or token is a 404 like a missing one.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use checkin_core::store::{NewPremises, PREMISES_PAGE_MAX};
use checkin_core::{Premises, StoreError};
use chrono::Duration;
use serde::Deserialize;

use super::auth::{session_cookie, CabinetOrg, SESSION_COOKIE};
use super::pages::{self, PremisesValues, SignUpValues};
use super::sms_preview::{self, SmsPreview};
use super::stats;
use crate::client_ip::ClientIp;
use crate::error::WebError;
use crate::security;
use crate::state::AppState;
use crate::visitor::{check_csrf, csrf, csrf_form, form, redirect, CsrfOnly, Page};

/// Premises per page of the cabinet's list.
const CABINET_PAGE: u32 = 100;

fn page(
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

/// The Russian reason for a refused form; storage trouble stays an error.
fn refusal(e: StoreError) -> Result<String, WebError> {
    if !e.is_caller_error() {
        return Err(e.into());
    }
    let text = e.to_string();
    let reason = if text.contains("SMS name") {
        // The store refused it (the form checks first): the same words.
        format!(
            "Название для SMS — не длиннее {} знаков, чтобы подтверждение уместилось в одно SMS.",
            checkin_core::texts::SMS_LABEL_UNITS_MAX
        )
    } else if text.contains("address is empty") {
        "Укажите адрес.".to_owned()
    } else if text.contains("address is longer") {
        format!(
            "Адрес длиннее {} символов.",
            checkin_core::store::ADDRESS_CHARS_MAX
        )
    } else if text.contains("control characters") {
        "В адресе недопустимые символы (переводы строк, табуляция).".to_owned()
    } else if text.contains("the stay") {
        format!(
            "Время пребывания — от 1 до {} минут.",
            checkin_core::model::STAY_MINUTES_MAX
        )
    } else if text.contains("kind") {
        "Тип помещения слишком длинный.".to_owned()
    } else if text.contains("password is shorter") {
        format!(
            "Пароль должен быть не короче {} символов.",
            checkin_core::store::PASSWORD_CHARS_MIN
        )
    } else if text.contains("password is longer") {
        "Пароль слишком длинный.".to_owned()
    } else if text.contains("e-mail") && text.contains("exists") {
        "Организация с такой почтой уже зарегистрирована. Войдите.".to_owned()
    } else if text.contains("e-mail") {
        "Почта указана неверно.".to_owned()
    } else if text.contains("name") {
        "Укажите название организации (до 200 символов).".to_owned()
    } else if text.contains("label") {
        "Название токена слишком длинное.".to_owned()
    } else if text.contains("tokens") {
        "Слишком много действующих токенов: отзовите ненужные.".to_owned()
    } else {
        "Проверьте введённые данные.".to_owned()
    };
    Ok(reason)
}

// ---- sign-up, log-in, log-out ----

pub(crate) async fn sign_up_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (field, cookies) = csrf(&state, &headers);
    page(
        StatusCode::OK,
        pages::sign_up(&field, &SignUpValues::default(), None),
        cookies,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignUpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn sign_up(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Form<SignUpForm>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    // Sign-ups hash a password like log-ins: the same limit keeps the CPU ours.
    state.inner.limits.take_login(ip)?;
    // The argon2 hash (tens of ms) runs on this task: sign-ups are rare and
    // limited per address.
    let signed = state
        .store()
        .accounts()
        .sign_up(&body.name, &body.email, &body.password, state.now())
        .await;
    match signed {
        Ok(org) => {
            tracing::info!(org_id = org.id, "organization signed up");
            start_session(&state, org.id).await
        }
        Err(e) => {
            let why = refusal(e)?;
            let (field, cookies) = csrf(&state, &headers);
            let values = SignUpValues {
                name: &body.name,
                email: &body.email,
            };
            Ok(page(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::sign_up(&field, &values, Some(&why)),
                cookies,
            ))
        }
    }
}

async fn start_session(state: &AppState, org_id: i64) -> Result<Response, WebError> {
    let life = Duration::hours(i64::from(state.config().org_session_h));
    let session = state
        .store()
        .accounts()
        .open_session(org_id, life, state.now())
        .await?;
    Ok(redirect(
        "/org",
        vec![session_cookie(state, Some(&session.secret))],
    ))
}

pub(crate) async fn log_in_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (field, cookies) = csrf(&state, &headers);
    page(StatusCode::OK, pages::log_in(&field, "", None), cookies)
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

const WRONG_LOGIN: &str = "Неверная почта или пароль.";

pub(crate) async fn log_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Form<LogInForm>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    state.inner.limits.take_login(ip)?;
    let record = state.store().accounts().login_record(&body.email).await?;
    let (org_id, hash) = match record {
        Some(r) => (Some(r.org_id), r.password_hash),
        None => (None, None),
    };
    let matches = security::password_matches(hash, body.password).await;
    match org_id.filter(|_| matches) {
        Some(org_id) => {
            tracing::info!(org_id, "organization logged in");
            start_session(&state, org_id).await
        }
        None => {
            tracing::info!("cabinet log-in refused");
            let (field, cookies) = csrf(&state, &headers);
            Ok(page(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::log_in(&field, &body.email, Some(WRONG_LOGIN)),
                cookies,
            ))
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
            .accounts()
            .close_session(secret, state.now())
            .await?;
    }
    Ok(redirect("/org/login", vec![session_cookie(&state, None)]))
}

// ---- premises ----

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    after: Option<i64>,
}

async fn dashboard(
    state: &AppState,
    org: &CabinetOrg,
    headers: &HeaderMap,
    after: i64,
    status: StatusCode,
    values: PremisesValues<'_>,
    problem: Option<&str>,
) -> Result<Response, WebError> {
    let premises = state
        .store()
        .orgs()
        .list_premises(org.org_id, after, CABINET_PAGE)
        .await?;
    let next_after = (premises.len() == CABINET_PAGE as usize)
        .then(|| premises.last().map(|p| p.id))
        .flatten();
    let (field, cookies) = csrf(state, headers);
    let markup = pages::dashboard(&pages::Dashboard {
        org_name: &org.name,
        csrf: &field,
        premises: &premises,
        next_after,
        values,
        problem,
    });
    Ok(page(status, markup, cookies))
}

pub(crate) async fn home(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let after = query.after.unwrap_or(0);
    dashboard(
        &state,
        &org,
        &headers,
        after,
        StatusCode::OK,
        PremisesValues::default(),
        None,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PremisesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    stay_minutes: String,
    #[serde(default)]
    sms_label: String,
    /// «Показать SMS»: render the preview, store nothing.
    #[serde(default)]
    preview: Option<String>,
}

impl PremisesForm {
    /// The form's values as the page shows them back, with their preview.
    fn values<'a>(&'a self, preview: &'a SmsPreview) -> PremisesValues<'a> {
        PremisesValues {
            address: &self.address,
            kind: &self.kind,
            stay: &self.stay_minutes,
            sms_label: &self.sms_label,
            preview: Some(preview),
        }
    }
}

/// The stay field: empty is the kind's default; anything but a number is refused.
fn stay_field(text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        format!(
            "Время пребывания — число минут от 1 до {}.",
            checkin_core::model::STAY_MINUTES_MAX
        )
    })
}

pub(crate) async fn add_premises(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    body: Result<Form<PremisesForm>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let preview = sms_preview::preview(&state, &body.address, &body.sms_label);
    let values = body.values(&preview);
    if body.preview.is_some() {
        return dashboard(&state, &org, &headers, 0, StatusCode::OK, values, None).await;
    }
    let refused = match (stay_field(&body.stay_minutes), &preview.refused) {
        (_, Some(why)) => why.clone(),
        (Err(why), None) => why,
        (Ok(stay_minutes), None) => {
            let added = state
                .store()
                .orgs()
                .add_premises_labelled(
                    &NewPremises {
                        org_id: org.org_id,
                        address: body.address.clone(),
                        kind: Some(body.kind.clone()),
                        stay_minutes,
                    },
                    Some(&body.sms_label),
                    state.now(),
                )
                .await;
            match added {
                Ok(p) => {
                    tracing::info!(premises_id = p.id, org_id = org.org_id, "premises added");
                    return Ok(redirect(&format!("/org/premises/{}", p.id), Vec::new()));
                }
                Err(e) => refusal(e)?,
            }
        }
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    dashboard(&state, &org, &headers, 0, status, values, Some(&refused)).await
}

async fn own(state: &AppState, org: &CabinetOrg, id: &str) -> Result<Premises, WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    state
        .store()
        .orgs()
        .org_premises(org.org_id, id)
        .await?
        .ok_or(WebError::NotFound)
}

fn edit_page(
    state: &AppState,
    org: &CabinetOrg,
    headers: &HeaderMap,
    premises: &Premises,
    status: StatusCode,
    values: PremisesValues<'_>,
    problem: Option<&str>,
) -> Response {
    let (field, cookies) = csrf(state, headers);
    let markup = pages::edit(&pages::EditPage {
        org_name: &org.name,
        csrf: &field,
        premises,
        values,
        problem,
    });
    page(status, markup, cookies)
}

pub(crate) async fn premises_page(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let premises = own(&state, &org, &id).await?;
    let stay = premises.stay_minutes.to_string();
    let label = premises.sms_label.clone().unwrap_or_default();
    let preview = sms_preview::preview(&state, &premises.address, &label);
    let values = PremisesValues {
        address: &premises.address,
        kind: &premises.kind,
        stay: &stay,
        sms_label: &label,
        preview: Some(&preview),
    };
    Ok(edit_page(
        &state,
        &org,
        &headers,
        &premises,
        StatusCode::OK,
        values,
        None,
    ))
}

pub(crate) async fn edit_premises(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Form<PremisesForm>, FormRejection>,
) -> Result<Response, WebError> {
    let premises = own(&state, &org, &id).await?;
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let preview = sms_preview::preview(&state, &body.address, &body.sms_label);
    let values = body.values(&preview);
    if body.preview.is_some() {
        return Ok(edit_page(
            &state,
            &org,
            &headers,
            &premises,
            StatusCode::OK,
            values,
            None,
        ));
    }
    // The label is checked (in the preview) before anything is written, so
    // a refused one leaves the address as it was too.
    let refused = match (stay_field(&body.stay_minutes), &preview.refused) {
        (_, Some(why)) => why.clone(),
        (Err(why), None) => why,
        (Ok(stay_minutes), None) => {
            let orgs = state.store().orgs();
            let updated = match orgs
                .update_premises(
                    org.org_id,
                    premises.id,
                    &body.address,
                    Some(&body.kind),
                    stay_minutes,
                )
                .await
            {
                Ok(Some(_)) => {
                    orgs.set_sms_label(Some(org.org_id), premises.id, Some(&body.sms_label))
                        .await
                }
                other => other,
            };
            match updated {
                Ok(Some(p)) => {
                    tracing::info!(premises_id = p.id, "premises edited");
                    return Ok(redirect(&format!("/org/premises/{}", p.id), Vec::new()));
                }
                Ok(None) => return Err(WebError::NotFound),
                Err(e) => refusal(e)?,
            }
        }
    };
    Ok(edit_page(
        &state,
        &org,
        &headers,
        &premises,
        StatusCode::UNPROCESSABLE_ENTITY,
        values,
        Some(&refused),
    ))
}

pub(crate) async fn deactivate(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, WebError> {
    let premises = own(&state, &org, &id).await?;
    csrf_form(&state, &headers, body)?;
    if !state
        .store()
        .orgs()
        .set_org_premises_active(org.org_id, premises.id, false)
        .await?
    {
        return Err(WebError::NotFound);
    }
    tracing::info!(premises_id = premises.id, "premises deactivated");
    Ok(redirect(
        &format!("/org/premises/{}", premises.id),
        Vec::new(),
    ))
}

pub(crate) async fn stats_page(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let premises = own(&state, &org, &id).await?;
    let stats = stats::load(&state, premises.id).await?;
    let day_bars: Vec<(String, u64)> = stats
        .days
        .iter()
        .map(|d| (d.date.format("%d.%m").to_string(), d.total))
        .collect();
    let hour_bars: Vec<(String, u64)> = stats
        .hours
        .iter()
        .map(|h| (format!("{:02}", h.hour), h.total))
        .collect();
    let count = |by: &stats::ByChannel, channel: &str| by.get(channel).copied().unwrap_or(0);
    let rows = stats
        .days
        .iter()
        .rev()
        .map(|d| {
            (
                d.date.format("%d.%m.%Y").to_string(),
                d.total,
                count(&d.by_channel, "sms"),
                count(&d.by_channel, "web"),
            )
        })
        .collect();
    let (field, cookies) = csrf(&state, &headers);
    let markup = pages::stats(&pages::StatsPage {
        org_name: &org.name,
        csrf: &field,
        premises: &premises,
        days_svg: &stats::bar_chart("Отметки по дням", &day_bars),
        hours_svg: &stats::bar_chart("Отметки по часам суток", &hour_bars),
        rows,
    });
    Ok(page(StatusCode::OK, markup, cookies))
}

// ---- API tokens ----

async fn tokens_page(
    state: &AppState,
    org: &CabinetOrg,
    headers: &HeaderMap,
    status: StatusCode,
    created: Option<&str>,
    problem: Option<&str>,
) -> Result<Response, WebError> {
    let tokens = state.store().accounts().tokens(org.org_id).await?;
    let (field, cookies) = csrf(state, headers);
    let markup = pages::tokens(&pages::TokensPage {
        org_name: &org.name,
        csrf: &field,
        tokens: &tokens,
        created,
        problem,
    });
    Ok(page(status, markup, cookies))
}

pub(crate) async fn tokens(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    tokens_page(&state, &org, &headers, StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

/// Creates a token and shows it once, on this response (never in a URL).
pub(crate) async fn create_token(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    match state
        .store()
        .accounts()
        .create_token(org.org_id, &body.label, state.now())
        .await
    {
        Ok((info, secret)) => {
            tracing::info!(token_id = info.id, org_id = org.org_id, "API token created");
            tokens_page(&state, &org, &headers, StatusCode::OK, Some(&secret), None).await
        }
        Err(e) => {
            let why = refusal(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            tokens_page(&state, &org, &headers, status, None, Some(&why)).await
        }
    }
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    org: CabinetOrg,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<Response, WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    csrf_form(&state, &headers, body)?;
    if !state
        .store()
        .accounts()
        .revoke_token(org.org_id, id, state.now())
        .await?
    {
        return Err(WebError::NotFound);
    }
    tracing::info!(token_id = id, "API token revoked");
    Ok(redirect("/org/tokens", Vec::new()))
}

/// The cabinet's first page size is bounded by the store's too.
const _: () = assert!(CABINET_PAGE <= PREMISES_PAGE_MAX);
