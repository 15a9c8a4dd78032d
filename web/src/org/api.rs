//! The organizations' JSON API under `/api/v1/premises`, for chains with
//! hundreds of premises: create, list (by cursor), get, set the SMS name
//! (`PATCH`), statistics, deactivate. Bearer token of the organization; every query is scoped to it,
//! so another organization's premises answers 404 exactly like a missing one.
//! Errors are `{"error": code, "message": text}`, as in every API.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Json, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use checkin_core::store::{NewPremises, PREMISES_PAGE_MAX};
use checkin_core::{texts, Premises};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiOrg;
use super::error::ApiError;
use super::sms_preview;
use super::stats;
use crate::state::AppState;

/// Premises per page when the caller names no `limit`.
pub(crate) const PAGE_LIMIT_DEFAULT: u32 = 100;

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(value)) => Ok(value),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
        Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Invalid(e.body_text())),
        Err(e) => Err(ApiError::Malformed(e.body_text())),
    }
}

/// A premises as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PremisesView {
    #[schema(example = 1)]
    id: i64,
    /// The code in the QR's URL (`/v/{code}`).
    #[schema(example = "AB12CD")]
    code: String,
    #[schema(example = "ул. Тверская, 13")]
    address: String,
    /// The short name SMS texts use (`null`: the address, shortened).
    #[schema(example = "Кафе на Тверской")]
    sms_label: Option<String>,
    /// The confirmation a visitor gets now, and its segments.
    sms_confirmation: SmsConfirmation,
    #[schema(example = "кафе")]
    kind: String,
    /// How long a visit is taken to last.
    #[schema(example = 90)]
    stay_minutes: u32,
    /// `false` once deactivated: the code takes no check-ins.
    active: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    #[schema(example = "https://checkin.example/org/premises/1/poster")]
    poster_url: String,
    #[schema(example = "https://checkin.example/org/premises/1/qr.svg")]
    qr_url: String,
    #[schema(example = "https://checkin.example/org/premises/1/qr.png")]
    qr_png_url: String,
}

/// The poster's and the QR's absolute URLs of premises `id`.
pub(crate) fn urls(state: &AppState, id: i64) -> (String, String, String) {
    let base = state.config().public_base_url.trim_end_matches('/');
    (
        format!("{base}/org/premises/{id}/poster"),
        format!("{base}/org/premises/{id}/qr.svg"),
        format!("{base}/org/premises/{id}/qr.png"),
    )
}

/// The confirmation as the visitor reads it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SmsConfirmation {
    text: String,
    /// SMS segments the text takes.
    #[schema(example = 1)]
    segments: usize,
}

fn view(state: &AppState, p: Premises) -> PremisesView {
    let (poster_url, qr_url, qr_png_url) = urls(state, p.id);
    let text = texts::confirmation(&p, state.now(), &state.inner.zone);
    PremisesView {
        id: p.id,
        code: p.code.to_string(),
        sms_confirmation: SmsConfirmation {
            segments: sms_preview::segments(&text),
            text,
        },
        sms_label: p.sms_label,
        address: p.address,
        kind: p.kind,
        stay_minutes: p.stay_minutes,
        active: p.active,
        created_at: p.created_at,
        poster_url,
        qr_url,
        qr_png_url,
    }
}

/// A new premises.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"address": "ул. Тверская, 13", "kind": "кафе", "stay_minutes": 90}))]
pub(crate) struct CreateBody {
    /// Trimmed; at most `ADDRESS_CHARS_MAX` characters, none a control one.
    #[schema(min_length = 1, max_length = 300)]
    address: String,
    /// What kind of place (free text, at most `KIND_CHARS_MAX` characters;
    /// a default when absent).
    #[serde(default)]
    #[schema(max_length = 60)]
    kind: Option<String>,
    /// How long a visit is taken to last, 1..=`STAY_MINUTES_MAX` (a default
    /// by kind when absent).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 960)]
    stay_minutes: Option<u32>,
    /// The short name SMS texts use: at most `texts::SMS_LABEL_UNITS_MAX`
    /// characters (else 422 naming it).
    #[serde(default)]
    sms_label: Option<String>,
}

/// `POST /api/v1/premises` → 201 with the premises, its code and URLs.
#[utoipa::path(
    post,
    path = "/api/v1/premises",
    operation_id = "create_premises",
    tag = "premises",
    security(("organization_token" = [])),
    request_body = CreateBody,
    responses((status = 201, description = "The premises, its code and URLs", body = PremisesView))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    org: ApiOrg,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let premises = state
        .store()
        .orgs()
        .add_premises_labelled(
            &NewPremises {
                org_id: org.org_id,
                address: body.address,
                kind: body.kind,
                stay_minutes: body.stay_minutes,
            },
            body.sms_label.as_deref(),
            state.now(),
        )
        .await?;
    tracing::info!(
        premises_id = premises.id,
        org_id = org.org_id,
        "premises added by API"
    );
    Ok((StatusCode::CREATED, Json(view(&state, premises))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// The last id of the previous page (`next_cursor`).
    cursor: Option<i64>,
    /// Premises per page (100 when absent).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// One page of premises, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PremisesPage {
    items: Vec<PremisesView>,
    /// The `cursor` of the next page; `null` on the last one.
    next_cursor: Option<i64>,
}

/// `GET /api/v1/premises?cursor=&limit=`: `{"items": [...], "next_cursor": id|null}`.
#[utoipa::path(
    get,
    path = "/api/v1/premises",
    operation_id = "list_premises",
    tag = "premises",
    security(("organization_token" = [])),
    params(ListQuery),
    responses((status = 200, description = "A page of the organization's premises", body = PremisesPage))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    org: ApiOrg,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let limit = query.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=PREMISES_PAGE_MAX).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be 1..={PREMISES_PAGE_MAX}"
        )));
    }
    let items = state
        .store()
        .orgs()
        .list_premises(org.org_id, query.cursor.unwrap_or(0), limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|p| p.id))
        .flatten();
    let items: Vec<PremisesView> = items.into_iter().map(|p| view(&state, p)).collect();
    Ok(Json(PremisesPage { items, next_cursor }).into_response())
}

async fn own(state: &AppState, org: ApiOrg, id: &str) -> Result<Premises, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    state
        .store()
        .orgs()
        .org_premises(org.org_id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The id of one of the organization's premises.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only described: the handlers read the id as text (not a number: 404)
pub(crate) struct PremisesId {
    id: i64,
}

/// `GET /api/v1/premises/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/premises/{id}",
    operation_id = "get_premises",
    tag = "premises",
    security(("organization_token" = [])),
    params(PremisesId),
    responses((status = 200, description = "The premises", body = PremisesView))
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    org: ApiOrg,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let premises = own(&state, org, &id).await?;
    Ok(Json(view(&state, premises)).into_response())
}

/// What `PATCH` changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sms_label": "Кафе на Тверской"}))]
pub(crate) struct UpdateBody {
    /// The SMS name; `null` or `""` clears it (the address, shortened).
    sms_label: Option<String>,
}

/// `PATCH /api/v1/premises/{id}` `{"sms_label": …}` → the premises; a name
/// over `texts::SMS_LABEL_UNITS_MAX` is 422 `invalid`, naming the limit.
#[utoipa::path(
    patch,
    path = "/api/v1/premises/{id}",
    operation_id = "update_premises",
    tag = "premises",
    security(("organization_token" = [])),
    params(PremisesId),
    request_body = UpdateBody,
    responses((status = 200, description = "The premises", body = PremisesView))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    org: ApiOrg,
    Path(id): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let premises = own(&state, org, &id).await?;
    let body = json_body(body)?;
    let premises = state
        .store()
        .orgs()
        .set_sms_label(Some(org.org_id), premises.id, body.sms_label.as_deref())
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(premises_id = premises.id, "SMS name set by API");
    Ok(Json(view(&state, premises)).into_response())
}

/// `GET /api/v1/premises/{id}/stats`: per day and per hour, by channel.
#[utoipa::path(
    get,
    path = "/api/v1/premises/{id}/stats",
    operation_id = "premises_stats",
    tag = "premises",
    security(("organization_token" = [])),
    params(PremisesId),
    responses((status = 200, description = "Check-ins per day and per hour, by channel", body = stats::Stats))
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    org: ApiOrg,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let premises = own(&state, org, &id).await?;
    let stats = stats::load(&state, premises.id).await?;
    Ok(Json(stats).into_response())
}

/// `POST /api/v1/premises/{id}/deactivate`: the code stops taking check-ins.
#[utoipa::path(
    post,
    path = "/api/v1/premises/{id}/deactivate",
    operation_id = "deactivate_premises",
    tag = "premises",
    security(("organization_token" = [])),
    params(PremisesId),
    responses((status = 200, description = "The premises, now inactive", body = PremisesView))
)]
pub(crate) async fn deactivate(
    State(state): State<AppState>,
    org: ApiOrg,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let premises = own(&state, org, &id).await?;
    if !state
        .store()
        .orgs()
        .set_org_premises_active(org.org_id, premises.id, false)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    let premises = own(&state, org, &id).await?;
    Ok(Json(view(&state, premises)).into_response())
}
