//! The authority's cases with their alerts' delivery (`Cases::report`, what
//! `GET /api/v1/cases/{id}` reads), one case with the premises and times it
//! exposed (addresses, never phones), and the delivery report as CSV (every
//! cell through `csv_cell`). Another authority's case is a 404.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use checkin_core::csv_cell;
use checkin_core::store::{AuthorityUser, CaseReport, AUTHORITY_CASES_PAGE_MAX};

use super::auth::CabinetUser;
use super::cabinet::{page, BeforeQuery};
use super::pages;
use crate::error::WebError;
use crate::state::AppState;
use crate::visitor::csrf;

/// Cases on one page of the list.
const CASES_PAGE: u32 = 50;
/// Cases in the CSV report (the newest).
const CSV_CASES_MAX: u32 = AUTHORITY_CASES_PAGE_MAX;

async fn reports(
    state: &AppState,
    user: &AuthorityUser,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<CaseReport>, WebError> {
    let ids = state
        .store()
        .authority()
        .case_ids(user.authority_id, before, limit)
        .await?;
    let mut reports = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(report) = state.store().cases().report(id).await? {
            reports.push(report);
        }
    }
    Ok(reports)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    Query(query): Query<BeforeQuery>,
) -> Result<Response, WebError> {
    let reports = reports(&state, &user, query.before, CASES_PAGE).await?;
    let next = (reports.len() == CASES_PAGE as usize)
        .then(|| reports.last().map(|r| r.case.id))
        .flatten();
    let (field, cookies) = csrf(&state, &headers);
    let markup = pages::cases(&user, &field, &state.inner.zone, &reports, next);
    Ok(page(StatusCode::OK, markup, cookies))
}

pub(crate) async fn case_page(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    let report = state
        .store()
        .cases()
        .report(id)
        .await?
        .filter(|r| r.case.authority_id == Some(user.authority_id))
        .ok_or(WebError::NotFound)?;
    let visits = state.store().authority().exposed_visits(id).await?;
    let (field, cookies) = csrf(&state, &headers);
    let markup = pages::case(&user, &field, &state.inner.zone, &report, &visits);
    Ok(page(StatusCode::OK, markup, cookies))
}

/// One CSV line, each cell formula-safe and quoted when it must be.
fn csv_line(cells: &[&str]) -> String {
    let mut line = cells
        .iter()
        .map(|cell| {
            let cell = csv_cell(cell);
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The delivery report of the newest cases as CSV.
pub(crate) async fn report_csv(
    State(state): State<AppState>,
    CabinetUser(user): CabinetUser,
) -> Result<Response, WebError> {
    let reports = reports(&state, &user, None, CSV_CASES_MAX).await?;
    let mut body = csv_line(&[
        "case",
        "confirmed_at",
        "visits",
        "people",
        "unreachable",
        "alerts",
        "queued",
        "sent",
        "delivered",
        "failed",
        "expired",
    ]);
    for r in &reports {
        let numbers = [
            r.counts.visits,
            r.counts.people,
            r.counts.unreachable,
            r.alerts,
            r.states.queued,
            r.states.sent,
            r.states.delivered,
            r.states.failed,
            r.states.expired,
        ]
        .map(|n| n.to_string());
        let id = r.case.id.to_string();
        let confirmed = r.case.confirmed_at.to_rfc3339();
        let mut cells = vec![id.as_str(), confirmed.as_str()];
        cells.extend(numbers.iter().map(String::as_str));
        body.push_str(&csv_line(&cells));
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"delivery.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}
