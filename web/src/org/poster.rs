//! Posters: a printable A4 page per premises (QR of `{public_base_url}/v/{code}`,
//! the code in large digits, the SMS and USSD instructions, the address), one
//! document for many premises (a page break between them, at most
//! `POSTERS_MAX`), and the QR alone as SVG or PNG.

use std::io::Cursor;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use checkin_core::texts::SHORT_NUMBER;
use checkin_core::Premises;

use super::auth::AnyOrg;
use super::pages::{self, PosterData};
use crate::error::WebError;
use crate::state::AppState;
use crate::visitor::qr_svg;

/// Most posters in one printable document (a chain prints in parts).
pub(crate) const POSTERS_MAX: u32 = 500;
/// Smallest side of the PNG QR, in pixels (prints sharp at 10 cm).
const QR_PNG_PIXELS_MIN: u32 = 600;

/// The check-in URL the QR of `premises` encodes.
pub(crate) fn checkin_url(state: &AppState, premises: &Premises) -> String {
    let base = state.config().public_base_url.trim_end_matches('/');
    format!("{base}/v/{}", premises.code)
}

pub(crate) fn poster_data(state: &AppState, premises: &Premises) -> PosterData {
    let url = checkin_url(state, premises);
    PosterData {
        address: premises.address.clone(),
        code: premises.code.to_string(),
        sms: format!(
            "Отправьте СМС на номер {SHORT_NUMBER} с текстом ВХОД*{}",
            premises.code
        ),
        ussd: format!("*{SHORT_NUMBER}*{}#", premises.code.digits()),
        qr_svg: qr_svg(&url),
        url,
    }
}

async fn own(state: &AppState, org_id: i64, id: &str) -> Result<Premises, WebError> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound)?;
    state
        .store()
        .orgs()
        .org_premises(org_id, id)
        .await?
        .ok_or(WebError::NotFound)
}

/// `GET /org/premises/{id}/poster`.
pub(crate) async fn poster(
    State(state): State<AppState>,
    org: AnyOrg,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let premises = own(&state, org.org_id, &id).await?;
    let data = [poster_data(&state, &premises)];
    Ok(Html(pages::posters(&data).into_string()).into_response())
}

/// `GET /org/posters[?ids=1,2,3]` (or `?ids=1&ids=2`, as the cabinet's
/// check boxes send it): one printable document of the selected premises, all
/// active ones (up to `POSTERS_MAX`) when none is selected; only the
/// organization's own premises are ever in it.
pub(crate) async fn posters(
    State(state): State<AppState>,
    org: AnyOrg,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let mut wanted: Vec<i64> = Vec::new();
    for pair in query.as_deref().unwrap_or("").split('&') {
        let Some(ids) = pair.strip_prefix("ids=") else {
            continue;
        };
        // Commas may come encoded.
        for id in ids.replace("%2C", ",").replace("%2c", ",").split(',') {
            if wanted.len() >= POSTERS_MAX as usize {
                break;
            }
            let id = id.trim();
            if !id.is_empty() {
                wanted.push(id.parse().map_err(|_| WebError::BadForm)?);
            }
        }
    }
    let wanted = (!wanted.is_empty()).then_some(wanted);
    let all = state
        .store()
        .orgs()
        .list_premises(org.org_id, 0, POSTERS_MAX)
        .await?;
    let data: Vec<PosterData> = all
        .iter()
        .filter(|p| p.active && wanted.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .map(|p| poster_data(&state, p))
        .collect();
    Ok(Html(pages::posters(&data).into_string()).into_response())
}

fn file(kind: &'static str, name: String, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /org/premises/{id}/qr.svg`: the poster's QR, to download.
pub(crate) async fn qr_svg_file(
    State(state): State<AppState>,
    org: AnyOrg,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let premises = own(&state, org.org_id, &id).await?;
    let svg = qr_svg(&checkin_url(&state, &premises));
    let name = format!("qr-{}.svg", premises.code.digits());
    Ok(file("image/svg+xml", name, svg.into_bytes()))
}

/// `GET /org/premises/{id}/qr.png`.
pub(crate) async fn qr_png_file(
    State(state): State<AppState>,
    org: AnyOrg,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let premises = own(&state, org.org_id, &id).await?;
    let png = qr_png(&checkin_url(&state, &premises)).ok_or(WebError::NotFound)?;
    let name = format!("qr-{}.png", premises.code.digits());
    Ok(file("image/png", name, png))
}

/// The QR of `url` as a PNG (grey levels, quiet zone included).
pub(crate) fn qr_png(url: &str) -> Option<Vec<u8>> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    let image = code
        .render::<image::Luma<u8>>()
        .min_dimensions(QR_PNG_PIXELS_MIN, QR_PNG_PIXELS_MIN)
        .build();
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).ok()?;
    Some(out.into_inner())
}
