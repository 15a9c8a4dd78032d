//! The health authority's JSON API, behind the authority's bearer token
//! (`checkin authority create`): `POST /api/v1/cases` (one case or a batch,
//! or a dry run: the core's exposure matching), `GET /api/v1/cases/{id}`
//! (what it exposed, where its alerts are), and the kill switch `POST
//! /api/v1/alerts/pause` / `resume` (`GET /api/v1/alerts` reads it). Every refusal is a JSON body
//! `{"error": code, "message": text, "field"?: where}` with a 4xx status, and
//! storage trouble a 503 with `Retry-After`.
//!
//! An organization's token is refused here (403), and this token is not an
//! organization's: the two are looked up in different tables.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use checkin_core::exposure::ExposureConfig;
use checkin_core::store::{Authority, CaseRecorded, CaseReport, ExposureCounts, TokenHolder};
use checkin_core::{Msisdn, NewCase, StoreError};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::api_error::ErrorBody;
use crate::state::AppState;

/// Most cases in one `POST /api/v1/cases` (413 beyond): the batch is one
/// transaction, and this keeps the SQLite writer for about a second.
pub const CASES_BATCH_MAX: usize = 1000;
/// Largest body of the authority's API: a full batch with room to spare.
pub const API_BODY_BYTES_MAX: usize = 1024 * 1024;
/// A confirmation dated later than this after now is a mistake.
const CONFIRMED_AHEAD_MAX: Duration = Duration::days(1);
/// Longest token looked up (ours are 64 hex digits).
const TOKEN_CHARS_MAX: usize = 128;
/// Seconds a client is asked to wait when storage is down.
const RETRY_AFTER_S: &str = "5";

/// The authority's routes, with their own body limit.
pub(crate) fn routes(_state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases", post(submit_cases).fallback(wrong_method))
        .route(
            "/api/v1/cases/{id}",
            get(case_report).fallback(wrong_method),
        )
        .route("/api/v1/alerts", get(alerts_state).fallback(wrong_method))
        .route(
            "/api/v1/alerts/pause",
            post(pause_alerts).fallback(wrong_method),
        )
        .route(
            "/api/v1/alerts/resume",
            post(resume_alerts).fallback(wrong_method),
        )
        .layer(DefaultBodyLimit::max(API_BODY_BYTES_MAX))
}

/// A method the route does not take: JSON like every other refusal here.
async fn wrong_method() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Why an API request got no answer but an error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no bearer token (Authorization: Bearer …)")]
    NoToken,
    #[error("the token is not valid")]
    BadToken,
    #[error("an organization's token cannot use the health authority's API")]
    OrganizationToken,
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("more than {max} cases in one request")]
    TooManyCases { max: usize },
    #[error("the body is larger than {max} bytes")]
    BodyTooLarge { max: usize },
    #[error("no such case")]
    NotFound,
    #[error("no such API route")]
    NoRoute,
    #[error("this route does not take this method")]
    MethodNotAllowed,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl ApiError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NoToken => (StatusCode::UNAUTHORIZED, "no_token"),
            ApiError::BadToken => (StatusCode::UNAUTHORIZED, "bad_token"),
            ApiError::OrganizationToken => (StatusCode::FORBIDDEN, "wrong_token_kind"),
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::TooManyCases { .. } | ApiError::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            }
            ApiError::NotFound | ApiError::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Storage(e) if e.is_caller_error() => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            ApiError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Invalid { message, .. } => message.clone(),
            ApiError::Storage(e) if !e.is_caller_error() => {
                // StoreError carries no phone (they are bound parameters).
                tracing::error!(error = %e, "authority API request failed on storage");
                "storage is unavailable; try again later".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: code,
            field,
            message,
        };
        let mut response = (status, Json(body)).into_response();
        match status {
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_S));
            }
            _ => {}
        }
        response
    }
}

/// The authority a request's bearer token belongs to.
#[derive(Debug, Clone)]
pub(crate) struct AuthorityBearer(pub(crate) Authority);

/// The token of `Authorization: Bearer <token>`, if any.
pub(crate) fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for AuthorityBearer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer_token(parts) else {
            // An organization's cabinet session is not the authority's either.
            let org = crate::security::cookie(&parts.headers, crate::org::ORG_SESSION_COOKIE);
            return Err(org.map_or(ApiError::NoToken, |_| ApiError::OrganizationToken));
        };
        if token.chars().count() > TOKEN_CHARS_MAX {
            return Err(ApiError::BadToken);
        }
        match state.store().orgs().token_holder(token).await? {
            Some(TokenHolder::Authority(authority)) => Ok(AuthorityBearer(authority)),
            Some(TokenHolder::Organization(_)) => Err(ApiError::OrganizationToken),
            None => Err(ApiError::BadToken),
        }
    }
}

/// What one `POST /api/v1/cases` asks for.
#[derive(Debug)]
pub(crate) struct Submission {
    pub(crate) cases: Vec<NewCase>,
    /// `{"cases": […]}` rather than one case: the answer is a list too.
    pub(crate) batch: bool,
    pub(crate) dry_run: bool,
}

/// Reads a submission: one case object, or `{"cases": […]}`, each with
/// `phone`, `confirmed_at` (RFC 3339) and optionally `contagious_from` /
/// `contagious_to`; `dry_run` beside them. Errors name the field.
pub(crate) fn parse_submission(
    body: &[u8],
    authority_id: i64,
    exposure: &ExposureConfig,
    now: DateTime<Utc>,
) -> Result<Submission, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()))?;
    let Value::Object(mut top) = value else {
        return Err(ApiError::invalid("", "the body must be a JSON object"));
    };
    let dry_run = match top.remove("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::invalid("dry_run", "must be true or false")),
    };
    let Some(cases) = top.remove("cases") else {
        let case = parse_case(&top, "", authority_id, exposure, now)?;
        return Ok(Submission {
            cases: vec![case],
            batch: false,
            dry_run,
        });
    };
    if let Some(extra) = top.keys().next() {
        return Err(ApiError::invalid(
            extra.as_str(),
            "unknown field beside \"cases\"",
        ));
    }
    let Value::Array(items) = cases else {
        return Err(ApiError::invalid("cases", "must be an array of cases"));
    };
    if items.len() > CASES_BATCH_MAX {
        return Err(ApiError::TooManyCases {
            max: CASES_BATCH_MAX,
        });
    }
    if items.is_empty() {
        return Err(ApiError::invalid("cases", "is empty"));
    }
    let cases = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("cases[{i}].");
            match item {
                Value::Object(fields) => parse_case(fields, &at, authority_id, exposure, now),
                _ => Err(ApiError::invalid(
                    format!("cases[{i}]"),
                    "must be an object",
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Submission {
        cases,
        batch: true,
        dry_run,
    })
}

const CASE_FIELDS: [&str; 4] = ["phone", "confirmed_at", "contagious_from", "contagious_to"];

fn parse_case(
    fields: &Map<String, Value>,
    at: &str,
    authority_id: i64,
    exposure: &ExposureConfig,
    now: DateTime<Utc>,
) -> Result<NewCase, ApiError> {
    if let Some(extra) = fields.keys().find(|k| !CASE_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("{at}{extra}"), "unknown field"));
    }
    let text = |name: &str| -> Result<Option<&str>, ApiError> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::invalid(format!("{at}{name}"), "must be a string")),
        }
    };
    let phone =
        text("phone")?.ok_or_else(|| ApiError::invalid(format!("{at}phone"), "is missing"))?;
    let phone =
        Msisdn::parse(phone).map_err(|e| ApiError::invalid(format!("{at}phone"), e.to_string()))?;
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        text(name)?
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::invalid(
                            format!("{at}{name}"),
                            "must be an RFC 3339 time, e.g. 2020-10-18T20:13:00+03:00",
                        )
                    })
            })
            .transpose()
    };
    let confirmed_at = time("confirmed_at")?
        .ok_or_else(|| ApiError::invalid(format!("{at}confirmed_at"), "is missing"))?;
    if confirmed_at > now + CONFIRMED_AHEAD_MAX {
        return Err(ApiError::invalid(
            format!("{at}confirmed_at"),
            "is in the future",
        ));
    }
    let case = exposure.new_case(
        Some(authority_id),
        phone,
        confirmed_at,
        time("contagious_from")?,
        time("contagious_to")?,
    );
    if case.contagious_from > case.contagious_to {
        return Err(ApiError::invalid(
            format!("{at}contagious_to"),
            "is before contagious_from",
        ));
    }
    Ok(case)
}

/// One case as `POST /api/v1/cases` takes it (read by `parse_submission`,
/// which names the wrong field; this type describes it).
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // only described
pub(crate) struct CaseInput {
    /// The person's phone (E.164, or a Russian number as people write it).
    #[schema(example = "+79161234567")]
    phone: String,
    /// When the case was confirmed (RFC 3339, at most a day ahead).
    #[schema(example = "2020-10-18T20:13:00+03:00", format = DateTime)]
    confirmed_at: String,
    /// The start of the contagious window (default: configured days before `confirmed_at`).
    #[schema(format = DateTime)]
    contagious_from: Option<String>,
    /// The end of the contagious window (default: configured days after `confirmed_at`).
    #[schema(format = DateTime)]
    contagious_to: Option<String>,
}

/// One case, optionally a dry run.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "+79161234567", "confirmed_at": "2020-10-18T20:13:00+03:00"}))]
#[allow(dead_code)] // only described
pub(crate) struct CaseSubmission {
    #[schema(example = "+79161234567")]
    phone: String,
    #[schema(example = "2020-10-18T20:13:00+03:00", format = DateTime)]
    confirmed_at: String,
    #[schema(format = DateTime)]
    contagious_from: Option<String>,
    #[schema(format = DateTime)]
    contagious_to: Option<String>,
    /// `true`: only count what the case would expose; nothing is recorded.
    dry_run: Option<bool>,
}

/// Up to `CASES_BATCH_MAX` cases in one transaction (all or nothing).
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"cases": [{"phone": "+79161234567", "confirmed_at": "2020-10-18T20:13:00+03:00"}], "dry_run": true}))]
#[allow(dead_code)] // only described
pub(crate) struct BatchSubmission {
    #[schema(min_items = 1, max_items = 1000)]
    cases: Vec<CaseInput>,
    dry_run: Option<bool>,
}

/// What `POST /api/v1/cases` takes: one case, or a batch.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only described
pub(crate) enum Submitted {
    One(CaseSubmission),
    Batch(BatchSubmission),
}

/// What a case exposes (counts only, never a phone). Fields in the order
/// the JSON has always had them (alphabetical).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Exposed {
    /// Distinct people behind the visits.
    #[schema(example = 12)]
    people: u64,
    /// Distinct exposed people who cannot be alerted (`СТОП`, no consent).
    #[schema(example = 1)]
    unreachable: u64,
    /// Exposed visits of people who can be alerted.
    #[schema(example = 14)]
    visits: u64,
}

impl From<&ExposureCounts> for Exposed {
    fn from(counts: &ExposureCounts) -> Exposed {
        Exposed {
            people: counts.people,
            unreachable: counts.unreachable,
            visits: counts.visits,
        }
    }
}

/// One case of a dry run (single): its counts, `dry_run: true`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunCase {
    dry_run: bool,
    #[serde(flatten)]
    exposed: Exposed,
}

/// A batch's dry run.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRunBatch {
    cases: Vec<Exposed>,
    dry_run: bool,
}

/// One recorded case: its id, what it exposed, the alerts it queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordedCase {
    #[schema(example = 12)]
    alerts_queued: u64,
    #[schema(example = 1)]
    id: i64,
    #[serde(flatten)]
    exposed: Exposed,
}

/// A recorded batch, in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordedBatch {
    cases: Vec<RecordedCase>,
}

/// The answer to a dry run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum DryRunAnswer {
    One(DryRunCase),
    Batch(DryRunBatch),
}

/// The answer to recorded cases.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum RecordedAnswer {
    One(RecordedCase),
    Batch(RecordedBatch),
}

/// One case, as `GET /api/v1/cases/{id}` reports it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CaseReportView {
    /// Alerts this case queued (still stored).
    alerts: u64,
    #[schema(format = DateTime, example = "2020-10-18T17:13:00+00:00")]
    confirmed_at: String,
    #[schema(format = DateTime)]
    contagious_from: String,
    #[schema(format = DateTime)]
    contagious_to: String,
    #[schema(format = DateTime)]
    created_at: String,
    /// Alerts the handset has (a receipt said so).
    delivered: u64,
    /// Alerts that expired before being sent.
    expired: u64,
    /// What it exposed when uploaded.
    exposed: Exposed,
    /// Alerts refused or undeliverable.
    failed: u64,
    id: i64,
    /// Alerts waiting in the outbox or being submitted.
    queued: u64,
    /// Alerts accepted by the SMSC, no receipt yet.
    sent: u64,
}

/// Whether alerts are paused.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertsState {
    alerts_paused: bool,
}

/// The id of one of the authority's cases.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only described: the handler reads the id as text (not a number: 404)
pub(crate) struct CaseId {
    id: i64,
}

/// The request body, or why it could not be read (too large: 413).
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge {
                max: API_BODY_BYTES_MAX,
            }
        } else {
            ApiError::Malformed(rejection.body_text())
        }
    })
}

/// `POST /api/v1/cases`: a dry run answers the counts and queues nothing;
/// otherwise the cases are recorded and matched in one transaction (all or
/// nothing) and 201 answers what each exposed and queued.
#[utoipa::path(
    post,
    path = "/api/v1/cases",
    operation_id = "submit_cases",
    tag = "cases",
    security(("authority_token" = [])),
    request_body = Submitted,
    responses(
        (status = 200, description = "A dry run: what the cases would expose", body = DryRunAnswer),
        (status = 201, description = "Recorded and matched: what each exposed and queued", body = RecordedAnswer),
    )
)]
pub(crate) async fn submit_cases(
    State(state): State<AppState>,
    AuthorityBearer(authority): AuthorityBearer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let now = state.now();
    let exposure = state.store().config().exposure;
    let submission = parse_submission(&body, authority.id, &exposure, now)?;
    tracing::info!(
        authority = authority.id,
        cases = submission.cases.len(),
        dry_run = submission.dry_run,
        "cases submitted"
    );
    if submission.dry_run {
        let mut answers = Vec::with_capacity(submission.cases.len());
        for case in &submission.cases {
            answers.push(Exposed::from(
                &state.store().cases().dry_run(case, now).await?,
            ));
        }
        let body = match (submission.batch, answers.pop()) {
            (false, Some(exposed)) => DryRunAnswer::One(DryRunCase {
                dry_run: true,
                exposed,
            }),
            (_, last) => {
                answers.extend(last);
                DryRunAnswer::Batch(DryRunBatch {
                    cases: answers,
                    dry_run: true,
                })
            }
        };
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    let mut recorded: Vec<RecordedCase> = state
        .store()
        .cases()
        .record_and_match_batch(&submission.cases, now)
        .await?
        .iter()
        .map(recorded_view)
        .collect();
    let body = match (submission.batch, recorded.pop()) {
        (false, Some(one)) => RecordedAnswer::One(one),
        (_, last) => {
            recorded.extend(last);
            RecordedAnswer::Batch(RecordedBatch { cases: recorded })
        }
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn recorded_view(recorded: &CaseRecorded) -> RecordedCase {
    RecordedCase {
        alerts_queued: recorded.alerts_queued,
        id: recorded.case.id,
        exposed: Exposed::from(&recorded.counts),
    }
}

fn report_view(report: &CaseReport) -> CaseReportView {
    let case = &report.case;
    let states = &report.states;
    CaseReportView {
        alerts: report.alerts,
        confirmed_at: case.confirmed_at.to_rfc3339(),
        contagious_from: case.contagious_from.to_rfc3339(),
        contagious_to: case.contagious_to.to_rfc3339(),
        created_at: case.created_at.to_rfc3339(),
        delivered: states.delivered,
        expired: states.expired,
        exposed: Exposed::from(&report.counts),
        failed: states.failed,
        id: case.id,
        queued: states.queued,
        sent: states.sent,
    }
}

/// `GET /api/v1/cases/{id}`: the authority's own cases only (another
/// authority's is "not found", like one that does not exist).
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}",
    operation_id = "get_case",
    tag = "cases",
    security(("authority_token" = [])),
    params(CaseId),
    responses((status = 200, description = "The case: what it exposed, where its alerts are", body = CaseReportView))
)]
pub(crate) async fn case_report(
    State(state): State<AppState>,
    AuthorityBearer(authority): AuthorityBearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    let report = state
        .store()
        .cases()
        .report(id)
        .await?
        .filter(|r| r.case.authority_id == Some(authority.id))
        .ok_or(ApiError::NotFound)?;
    Ok(Json(report_view(&report)).into_response())
}

/// `GET /api/v1/alerts`: whether alerts are paused (read from storage:
/// another instance may have switched it).
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "get_alerts",
    tag = "alerts",
    security(("authority_token" = [])),
    responses((status = 200, description = "Whether alerts are paused", body = AlertsState))
)]
pub(crate) async fn alerts_state(
    State(state): State<AppState>,
    _authority: AuthorityBearer,
) -> Result<Response, ApiError> {
    let paused = state.store().flags().alerts_paused().await?;
    Ok(Json(AlertsState {
        alerts_paused: paused,
    })
    .into_response())
}

/// `POST /api/v1/alerts/pause`: the kill switch; no alert is submitted
/// from a second after it, while codes and confirmations keep flowing.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/pause",
    operation_id = "pause_alerts",
    tag = "alerts",
    security(("authority_token" = [])),
    responses((status = 200, description = "Alerts are paused", body = AlertsState))
)]
pub(crate) async fn pause_alerts(
    State(state): State<AppState>,
    AuthorityBearer(authority): AuthorityBearer,
) -> Result<Response, ApiError> {
    set_paused(&state, &authority, true).await
}

/// `POST /api/v1/alerts/resume`: alerts flow again.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/resume",
    operation_id = "resume_alerts",
    tag = "alerts",
    security(("authority_token" = [])),
    responses((status = 200, description = "Alerts flow", body = AlertsState))
)]
pub(crate) async fn resume_alerts(
    State(state): State<AppState>,
    AuthorityBearer(authority): AuthorityBearer,
) -> Result<Response, ApiError> {
    set_paused(&state, &authority, false).await
}

async fn set_paused(
    state: &AppState,
    authority: &Authority,
    paused: bool,
) -> Result<Response, ApiError> {
    state
        .store()
        .flags()
        .set_alerts_paused(paused, state.now())
        .await?;
    tracing::warn!(
        authority = authority.id,
        authority_name = %authority.name,
        paused,
        "alerts kill switch set"
    );
    Ok(Json(AlertsState {
        alerts_paused: paused,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 10, 20, 12, 0, 0).unwrap()
    }

    fn field_of(result: Result<Submission, ApiError>) -> String {
        match result {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn one_case_takes_the_default_window() {
        let s = parse_submission(
            br#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00+03:00"}"#,
            7,
            &ExposureConfig::default(),
            now(),
        )
        .unwrap();
        assert!(!s.batch && !s.dry_run);
        let case = &s.cases[0];
        assert_eq!(case.authority_id, Some(7));
        assert_eq!(
            case.confirmed_at,
            Utc.with_ymd_and_hms(2020, 10, 18, 17, 13, 0).unwrap()
        );
        assert_eq!(case.contagious_from, case.confirmed_at - Duration::days(2));
        assert_eq!(case.contagious_to, case.confirmed_at + Duration::days(14));
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |body: &str| {
            field_of(parse_submission(
                body.as_bytes(),
                1,
                &ExposureConfig::default(),
                now(),
            ))
        };
        assert_eq!(bad(r#"{"confirmed_at":"2020-10-18T20:13:00Z"}"#), "phone");
        assert_eq!(
            bad(r#"{"phone":"12","confirmed_at":"2020-10-18T20:13:00Z"}"#),
            "phone"
        );
        assert_eq!(
            bad(r#"{"phone":"+79161234567","confirmed_at":"18.10.2020"}"#),
            "confirmed_at"
        );
        assert_eq!(
            bad(
                r#"{"cases":[{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00Z"},{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00Z","contagious_from":"2020-10-19T00:00:00Z","contagious_to":"2020-10-18T00:00:00Z"}]}"#
            ),
            "cases[1].contagious_to"
        );
        assert_eq!(
            bad(r#"{"phone":"+79161234567","confirmed_at":"2020-10-28T20:13:00Z"}"#),
            "confirmed_at"
        );
        assert_eq!(bad(r#"{"cases":[]}"#), "cases");
        assert_eq!(bad(r#"{"cases":[1]}"#), "cases[0]");
        assert_eq!(
            bad(r#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00Z","name":"x"}"#),
            "name"
        );
        assert_eq!(
            bad(
                r#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00Z","dry_run":"yes"}"#
            ),
            "dry_run"
        );
        assert!(matches!(
            parse_submission(b"{\"phone\":", 1, &ExposureConfig::default(), now()),
            Err(ApiError::Malformed(_))
        ));
    }

    /// The described case types name exactly the fields `parse_submission` reads.
    #[test]
    fn the_described_submission_is_the_parsed_one() {
        fn properties<T: utoipa::PartialSchema>() -> Vec<String> {
            let schema = serde_json::to_value(T::schema()).unwrap();
            let mut keys: Vec<String> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            keys.sort();
            assert_eq!(schema["additionalProperties"], false);
            keys
        }
        let mut case: Vec<String> = CASE_FIELDS.iter().map(|f| f.to_string()).collect();
        case.sort();
        assert_eq!(properties::<CaseInput>(), case);
        case.push("dry_run".into());
        case.sort();
        assert_eq!(properties::<CaseSubmission>(), case);
        assert_eq!(properties::<BatchSubmission>(), ["cases", "dry_run"]);
    }

    #[test]
    fn a_batch_over_the_limit_is_refused_whole() {
        let one = r#"{"phone":"+79161234567","confirmed_at":"2020-10-18T20:13:00Z"}"#;
        let body = format!(
            "{{\"cases\":[{}]}}",
            vec![one; CASES_BATCH_MAX + 1].join(",")
        );
        assert!(matches!(
            parse_submission(body.as_bytes(), 1, &ExposureConfig::default(), now()),
            Err(ApiError::TooManyCases { .. })
        ));
    }
}
