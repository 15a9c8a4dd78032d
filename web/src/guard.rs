//! The guard's check, `GET /c/{token}[?premises=CODE]`: valid or not valid,
//! large, with the address, the time of entry and how long ago. Not valid:
//! altered or made-up tokens, a check-in that is gone or at other premises
//! than the token names, an entry older than the freshness, or (when the
//! guard's page names its premises) a check-in somewhere else.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use checkin_core::VenueCode;
use serde::Deserialize;

use crate::error::WebError;
use crate::pages::{self, GuardPage, Place, Verdict};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct GuardQuery {
    /// The premises the guard stands at (the code on the poster).
    premises: Option<String>,
}

fn verdict_only(state: &AppState, verdict: Verdict) -> Response {
    let page = pages::guard(&GuardPage {
        verdict,
        place: None,
        entered: None,
        ago: None,
        fresh_h: state.config().guard_fresh_h,
    });
    // Not a token we know: as a page, "not found".
    (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
}

pub(crate) async fn check(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<GuardQuery>,
) -> Result<Response, WebError> {
    let Ok(claim) = state.inner.secrets.guard.open(&token) else {
        return Ok(verdict_only(&state, Verdict::Tampered));
    };
    let Some(checkin) = state
        .store()
        .checkins()
        .checkin_by_id(claim.checkin_id)
        .await?
    else {
        return Ok(verdict_only(&state, Verdict::Unknown));
    };
    let Some(premises) = state
        .store()
        .orgs()
        .premises_by_id(claim.premises_id)
        .await?
    else {
        return Ok(verdict_only(&state, Verdict::Unknown));
    };
    let org = state
        .store()
        .orgs()
        .organization_name(premises.org_id)
        .await?;
    let now = state.now();
    let age = now - checkin.at;
    let fresh = chrono::Duration::hours(i64::from(state.config().guard_fresh_h));
    let guard_at = query
        .premises
        .as_deref()
        .and_then(|code| VenueCode::parse(code).ok());
    let verdict = if checkin.premises_id != claim.premises_id || checkin.at != claim.at {
        Verdict::PremisesMismatch
    } else if guard_at.is_some_and(|code| code != premises.code) {
        Verdict::OtherPremises
    } else if age > fresh {
        Verdict::Stale
    } else {
        Verdict::Valid
    };
    let entered = state.inner.zone.day_and_time(claim.at);
    let page = pages::guard(&GuardPage {
        verdict,
        place: Some(Place {
            address: &premises.address,
            organization: org.as_deref(),
            code: premises.code.to_string(),
        }),
        entered: Some(&entered),
        ago: Some(pages::ago_text(age.max(chrono::Duration::zero()))),
        fresh_h: state.config().guard_fresh_h,
    });
    Ok((StatusCode::OK, Html(page.into_string())).into_response())
}
