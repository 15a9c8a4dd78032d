//! The SMS a visitor will read, shown in the cabinet as the organization
//! types its premises' SMS name (issue 23): the confirmation with the label
//! (or the address as `texts::sms_place` shortens it) and its segment count
//! as the SMPP link cuts it (`smpp-text`). The form's «Показать SMS» button
//! renders it without script; `/static/org-sms.js` asks
//! `GET /org/sms-preview` for it on every keystroke, so both show the one
//! text the core will send.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use checkin_core::texts::{self, SmsLabelError, SMS_LABEL_UNITS_MAX};
use serde::{Deserialize, Serialize};

use super::auth::CabinetOrg;
use crate::state::AppState;

/// The confirmation as the visitor reads it, and what it costs.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SmsPreview {
    /// The confirmation at the current time in the service's zone.
    pub text: String,
    /// Segments the link will send it as.
    pub segments: usize,
    /// Why the label would be refused (Russian), if it would.
    pub refused: Option<String>,
}

/// Segments of `text` as the link cuts it (GSM 7-bit when every character
/// fits, else UCS2).
pub(crate) fn segments(text: &str) -> usize {
    smpp_text::encode_auto(text, 0).map_or(0, |parts| parts.parts.len())
}

/// The Russian refusal of an SMS name, naming the limit.
pub(crate) fn label_refusal(e: &SmsLabelError) -> String {
    match e {
        SmsLabelError::TooLong { units } => format!(
            "Название для SMS — не длиннее {SMS_LABEL_UNITS_MAX} знаков (сейчас {units}), \
             чтобы подтверждение уместилось в одно SMS."
        ),
        SmsLabelError::ControlCharacters => {
            "В названии для SMS недопустимые символы (переводы строк, табуляция).".to_owned()
        }
    }
}

/// The preview of an address and label as typed (not stored yet).
pub(crate) fn preview(state: &AppState, address: &str, label: &str) -> SmsPreview {
    let refused = texts::sms_label(label).err().map(|e| label_refusal(&e));
    let place = texts::sms_place_of(address, Some(label));
    let text = texts::confirmation_at(&place, state.now(), &state.inner.zone);
    SmsPreview {
        segments: segments(&text),
        text,
        refused,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PreviewQuery {
    #[serde(default)]
    address: String,
    #[serde(default)]
    label: String,
}

/// Longest text the preview takes (the address' own limit bounds it).
const PREVIEW_CHARS_MAX: usize = 1_000;

/// `GET /org/sms-preview?address=&label=` → `{"text", "segments",
/// "refused"}` for the form's script. Nothing is stored.
pub(crate) async fn sms_preview(
    State(state): State<AppState>,
    _org: CabinetOrg,
    Query(query): Query<PreviewQuery>,
) -> Response {
    let address: String = query.address.chars().take(PREVIEW_CHARS_MAX).collect();
    let label: String = query.label.chars().take(PREVIEW_CHARS_MAX).collect();
    Json(preview(&state, &address, &label)).into_response()
}
