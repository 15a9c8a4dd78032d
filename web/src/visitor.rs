//! The visitor's way: `/v/{code}` (phone + consent) → an SMS code → the code
//! page → the confirmation `/ok/{token}` with the guard's QR; with a
//! remembered phone, one tap (`/v/{code}/quick`). Every form carries the CSRF
//! field; every POST answers with a redirect or the form again with the reason.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use checkin_core::guard::GuardClaim;
use checkin_core::otp::{sms_text, OtpCode, OTP_ATTEMPTS_MAX};
use checkin_core::store::{NewOtp, OtpCheck, OtpEntry};
use checkin_core::{
    Channel, CheckinError, CodeError, Msisdn, NewCheckIn, Premises, Recorded, VenueCode,
};
use maud::Markup;
use serde::Deserialize;

use crate::client_ip::ClientIp;
use crate::error::WebError;
use crate::pages::{self, CheckinForm, CodeForm, Confirmation};
use crate::places::Place;
use crate::security::{self, CSRF_COOKIE, PHONE_COOKIE};
use crate::state::AppState;

/// A page with its status and the cookies to set.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) markup: Markup,
    pub(crate) cookies: Vec<HeaderValue>,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, Html(self.markup.into_string())).into_response();
        for cookie in self.cookies {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// 303 See Other to `location` (after a POST), setting `cookies`.
pub(crate) fn redirect(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The CSRF field for this browser's cookie, and the cookie to set when it
/// has none yet.
pub(crate) fn csrf(state: &AppState, headers: &HeaderMap) -> (String, Vec<HeaderValue>) {
    match security::cookie(headers, CSRF_COOKIE) {
        Some(cookie) => (state.inner.secrets.csrf_field(cookie), Vec::new()),
        None => {
            let cookie = security::new_csrf_cookie();
            // A session cookie: it lives as long as the browser keeps the tab.
            let set = HeaderValue::from_str(&format!(
                "{CSRF_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax{}",
                if state.config().cookie_secure {
                    "; Secure"
                } else {
                    ""
                }
            ))
            .expect("base64 cookie");
            (state.inner.secrets.csrf_field(&cookie), vec![set])
        }
    }
}

pub(crate) fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    field: &str,
) -> Result<(), WebError> {
    state
        .inner
        .secrets
        .check_csrf(security::cookie(headers, CSRF_COOKIE), field)
}

/// A form that carries only the CSRF field (log-outs, revocations,
/// confirmations of the cabinets).
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// Reads a [`CsrfOnly`] form and checks its field.
pub(crate) fn csrf_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Form<CsrfOnly>, FormRejection>,
) -> Result<(), WebError> {
    let body = form(body)?;
    check_csrf(state, headers, &body.csrf)
}

/// A form, or the clear page for one we cannot read.
pub(crate) fn form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, WebError> {
    match form {
        Ok(Form(value)) => Ok(value),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(WebError::TooLarge),
        Err(_) => Err(WebError::BadForm),
    }
}

/// The premises a path's code names, open for check-ins.
pub(crate) async fn open_premises(
    state: &AppState,
    code: &str,
) -> Result<(Premises, Option<String>), WebError> {
    let code = VenueCode::parse(code).map_err(|e| match e {
        CodeError::CheckDigit => WebError::CodeTypo,
        CodeError::InvalidCharacter | CodeError::WrongLength { .. } => WebError::NotACode,
    })?;
    let premises = state
        .store()
        .orgs()
        .premises_by_code(&code)
        .await?
        .ok_or(WebError::UnknownPremises)?;
    if !premises.active {
        return Err(WebError::ClosedPremises {
            address: premises.address,
        });
    }
    let org = state
        .store()
        .orgs()
        .organization_name(premises.org_id)
        .await?;
    Ok((premises, org))
}

/// [`open_premises`] for a code entry, remembered for a moment
/// (`places.rs` says why that is safe there).
async fn open_premises_remembered(state: &AppState, code: &str) -> Result<Arc<Place>, WebError> {
    let now = std::time::Instant::now();
    if let Ok(venue) = VenueCode::parse(code) {
        if let Some(place) = state.inner.places.get(&venue, now) {
            if place.premises.active {
                return Ok(place);
            }
        }
    }
    let (premises, organization) = open_premises(state, code).await?;
    let place = Arc::new(Place {
        premises,
        organization,
    });
    state.inner.places.put(place.clone(), now);
    Ok(place)
}

fn place<'a>(premises: &'a Premises, org: &'a Option<String>) -> pages::Place<'a> {
    pages::Place {
        address: &premises.address,
        organization: org.as_deref(),
        code: premises.code.to_string(),
    }
}

/// The phone this browser remembers, if any.
fn remembered(state: &AppState, headers: &HeaderMap) -> Option<Msisdn> {
    let value = security::cookie(headers, PHONE_COOKIE)?;
    let life = chrono::Duration::days(i64::from(state.config().remember_phone_days));
    state
        .inner
        .secrets
        .open_phone_cookie(state.store().vault(), value, state.now(), life)
}

/// `GET /v/{code}`: the address, a phone field and the consent box (or one
/// tap, with a remembered phone).
pub(crate) async fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    code: &str,
    status: StatusCode,
    problem: Option<&str>,
    phone_value: &str,
    consent: bool,
) -> Result<Response, WebError> {
    let (premises, org) = open_premises(state, code).await?;
    let (csrf_field, cookies) = csrf(state, headers);
    let markup = pages::checkin_form(&CheckinForm {
        place: place(&premises, &org),
        csrf: &csrf_field,
        problem,
        phone_value,
        consent,
        remembered: remembered(state, headers).map(|p| p.masked()),
        city_account: state
            .config()
            .oidc
            .enabled()
            .then_some(state.config().oidc.button_label.as_str()),
    });
    Ok(Page {
        status,
        markup,
        cookies,
    }
    .into_response())
}

pub(crate) async fn start(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    form_page(&state, &headers, &code, StatusCode::OK, None, "", false).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PhoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    phone: String,
    consent: Option<String>,
}

pub(crate) const NO_CONSENT: &str =
    "Без согласия на уведомления отметка невозможна: отметьте галочку.";
const BAD_PHONE: &str =
    "Номер не распознан. Введите российский мобильный номер, например +7 916 123-45-67.";

/// `POST /v/{code}`: checks phone and consent, sends a code, and goes to the
/// code page.
pub(crate) async fn request_code(
    State(state): State<AppState>,
    Path(code): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Form<PhoneForm>, FormRejection>,
) -> Result<Response, WebError> {
    let (premises, _) = open_premises(&state, &code).await?;
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let consent = body.consent.is_some();
    // Kept for the form again only when short: it is the visitor's own input.
    let shown: String = body.phone.chars().take(32).collect();
    let phone = match Msisdn::parse(&body.phone) {
        Ok(phone) => phone,
        Err(_) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form_page(
                &state,
                &headers,
                &code,
                status,
                Some(BAD_PHONE),
                &shown,
                consent,
            )
            .await;
        }
    };
    if !consent {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return form_page(
            &state,
            &headers,
            &code,
            status,
            Some(NO_CONSENT),
            &shown,
            false,
        )
        .await;
    }
    send_code(&state, &premises, &phone, ip).await
}

/// Sends a fresh code to `phone` for `premises` (within the limits) and
/// redirects to its page.
async fn send_code(
    state: &AppState,
    premises: &Premises,
    phone: &Msisdn,
    ip: std::net::IpAddr,
) -> Result<Response, WebError> {
    let hash = state.store().vault().hash(phone);
    state.inner.limits.take_sms(&hash, ip)?;
    let now = state.now();
    let code = OtpCode::generate();
    let life = chrono::Duration::seconds(i64::try_from(state.config().otp_life_s).unwrap_or(300));
    let new = NewOtp {
        phone,
        premises_id: premises.id,
        code: &code,
        expires_at: now + life,
        text: sms_text(&code),
    };
    let id = state
        .store()
        .otps()
        .issue_otp(&new, &state.inner.secrets.otp, now)
        .await?;
    tracing::info!(otp_id = id, premises_id = premises.id, "SMS code queued");
    let ticket = state.inner.secrets.ticket(id);
    Ok(redirect(
        &format!("/v/{}/otp?t={ticket}", premises.code),
        Vec::new(),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TicketQuery {
    #[serde(default)]
    t: String,
}

/// `GET /v/{code}/otp?t=…`: the code field.
pub(crate) async fn code_page(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(query): Query<TicketQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (premises, org) = open_premises(&state, &code).await?;
    state.inner.secrets.open_ticket(&query.t)?;
    let (csrf_field, cookies) = csrf(&state, &headers);
    let markup = pages::code_form(&CodeForm {
        place: place(&premises, &org),
        csrf: &csrf_field,
        ticket: &query.t,
        problem: None,
        resend_only: false,
    });
    Ok(Page {
        status: StatusCode::OK,
        markup,
        cookies,
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CodeBody {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    t: String,
    #[serde(default)]
    code: String,
}

/// `POST /v/{code}/otp`: the right code records the check-in and shows the
/// confirmation; a wrong one says how many tries remain.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Form<CodeBody>, FormRejection>,
) -> Result<Response, WebError> {
    let remembered = open_premises_remembered(&state, &code).await?;
    let (premises, org) = (&remembered.premises, &remembered.organization);
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let id = state.inner.secrets.open_ticket(&body.t)?;
    let again = |status: StatusCode, problem: String, resend_only: bool| {
        let (csrf_field, cookies) = csrf(&state, &headers);
        Page {
            status,
            markup: pages::code_form(&CodeForm {
                place: place(premises, org),
                csrf: &csrf_field,
                ticket: &body.t,
                problem: Some(&problem),
                resend_only,
            }),
            cookies,
        }
        .into_response()
    };
    let Ok(otp) = OtpCode::parse(&body.code) else {
        return Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Введите 6 цифр из SMS.".into(),
            false,
        ));
    };
    let now = state.now();
    let check = state
        .confirm_otp(OtpEntry {
            id,
            premises_id: premises.id,
            code: otp,
            consent: true,
            at: now,
        })
        .await?;
    Ok(match check {
        OtpCheck::Confirmed { recorded, phone } => {
            crate::ops::count_web_checkin(recorded.duplicate);
            let cookie = remember_phone(&state, &phone, now);
            redirect(&confirmation_path(&state, &recorded), vec![cookie])
        }
        OtpCheck::Wrong { attempts_left: 0 } => again(
            StatusCode::FORBIDDEN,
            "Неверный код. Попытки исчерпаны: запросите новый код.".into(),
            true,
        ),
        OtpCheck::Wrong { attempts_left } => again(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Неверный код. Осталось попыток: {attempts_left} из {OTP_ATTEMPTS_MAX}."),
            false,
        ),
        OtpCheck::Expired => again(
            StatusCode::GONE,
            "Срок действия кода истёк. Запросите новый код.".into(),
            true,
        ),
        OtpCheck::AttemptsExhausted => again(
            StatusCode::FORBIDDEN,
            "Слишком много неверных попыток. Запросите новый код.".into(),
            true,
        ),
        OtpCheck::Used => again(
            StatusCode::GONE,
            "Этот код уже использован. Для новой отметки запросите новый код.".into(),
            true,
        ),
        OtpCheck::Unknown => return Err(WebError::BadTicket),
        OtpCheck::InactivePremises => {
            return Err(WebError::ClosedPremises {
                address: premises.address.clone(),
            })
        }
    })
}

/// Where the confirmation of `recorded` is shown.
pub(crate) fn confirmation_path(state: &AppState, recorded: &Recorded) -> String {
    let token = state.inner.secrets.guard.sign(&GuardClaim {
        checkin_id: recorded.checkin.id,
        premises_id: recorded.checkin.premises_id,
        at: recorded.checkin.at,
    });
    let earlier = if recorded.duplicate { "?earlier=1" } else { "" };
    format!("/ok/{token}{earlier}")
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResendBody {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    t: String,
}

/// `POST /v/{code}/resend`: a new code to the same phone (within the limits).
pub(crate) async fn resend(
    State(state): State<AppState>,
    Path(code): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Form<ResendBody>, FormRejection>,
) -> Result<Response, WebError> {
    let (premises, _) = open_premises(&state, &code).await?;
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let id = state.inner.secrets.open_ticket(&body.t)?;
    let issued = state
        .store()
        .otps()
        .issued_otp(id)
        .await?
        .filter(|o| o.premises_id == premises.id)
        .ok_or(WebError::BadTicket)?;
    send_code(&state, &premises, &issued.phone, ip).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct QuickBody {
    #[serde(default)]
    csrf: String,
    consent: Option<String>,
}

/// `POST /v/{code}/quick`: one tap with the remembered phone, no SMS.
pub(crate) async fn quick(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Form<QuickBody>, FormRejection>,
) -> Result<Response, WebError> {
    let (premises, _) = open_premises(&state, &code).await?;
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let Some(phone) = remembered(&state, &headers) else {
        // The cookie expired or was forgotten meanwhile: the usual way.
        return Ok(redirect(&format!("/v/{}", premises.code), Vec::new()));
    };
    if body.consent.is_none() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return form_page(&state, &headers, &code, status, Some(NO_CONSENT), "", false).await;
    }
    let recorded = record_web_checkin(&state, &premises, phone, state.now()).await?;
    Ok(redirect(&confirmation_path(&state, &recorded), Vec::new()))
}

/// Records a check-in at `premises` by a phone verified without an SMS code
/// (remembered, or the city account's): channel Web, consent given.
pub(crate) async fn record_web_checkin(
    state: &AppState,
    premises: &Premises,
    phone: Msisdn,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Recorded, WebError> {
    let new = NewCheckIn {
        phone,
        code: premises.code,
        channel: Channel::Web,
        at,
        consent: true,
    };
    state
        .store()
        .checkins()
        .record_checkin(&new)
        .await
        .map_err(|e| match e {
            CheckinError::Storage(e) => WebError::Storage(e),
            CheckinError::InactivePremises => WebError::ClosedPremises {
                address: premises.address.clone(),
            },
            _ => WebError::UnknownPremises,
        })
        .inspect(|recorded| crate::ops::count_web_checkin(recorded.duplicate))
}

/// The `Set-Cookie` that remembers the verified `phone` on this browser.
pub(crate) fn remember_phone(
    state: &AppState,
    phone: &Msisdn,
    now: chrono::DateTime<chrono::Utc>,
) -> HeaderValue {
    let value = state
        .inner
        .secrets
        .phone_cookie(state.store().vault(), phone, now);
    let max_age_s = i64::from(state.config().remember_phone_days) * 24 * 3600;
    security::set_cookie(
        PHONE_COOKIE,
        &value,
        max_age_s,
        state.config().cookie_secure,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct ForgetBody {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `POST /forget`: «Забыть этот телефон» — deletes the remembered phone.
pub(crate) async fn forget(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<ForgetBody>, FormRejection>,
) -> Result<Response, WebError> {
    let body = form(body)?;
    check_csrf(&state, &headers, &body.csrf)?;
    let clear = security::set_cookie(PHONE_COOKIE, "", 0, state.config().cookie_secure);
    // Only back to our own pages: never an open redirect.
    let next = if (body.next.starts_with("/v/") || body.next.starts_with("/ok/"))
        && body.next.len() <= 200
        && !body.next.contains("//")
        && body.next.is_ascii()
    {
        body.next.as_str()
    } else {
        "/"
    };
    Ok(redirect(next, vec![clear]))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmationQuery {
    earlier: Option<String>,
}

/// `GET /ok/{token}`: the confirmation (address, time, the guard's QR, a live
/// clock and a moving bar).
pub(crate) async fn confirmation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<ConfirmationQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let claim = state
        .inner
        .secrets
        .guard
        .open(&token)
        .map_err(|_| WebError::NotFound)?;
    let checkin = state
        .store()
        .checkins()
        .checkin_by_id(claim.checkin_id)
        .await?
        .filter(|c| c.premises_id == claim.premises_id && c.at == claim.at)
        .ok_or(WebError::NotFound)?;
    let premises = state
        .store()
        .orgs()
        .premises_by_id(checkin.premises_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let org = state
        .store()
        .orgs()
        .organization_name(premises.org_id)
        .await?;
    let guard_url = format!(
        "{}/c/{token}",
        state.config().public_base_url.trim_end_matches('/')
    );
    let qr_svg = qr_svg(&guard_url);
    let zone = &state.inner.zone;
    let entered = zone.day_and_time(checkin.at);
    let local = state.now().with_timezone(&zone.0);
    let now_text = local.format("%H:%M:%S").to_string();
    let offset_min = {
        use chrono::Offset;
        local.offset().fix().local_minus_utc() / 60
    };
    let has_phone = remembered(&state, &headers).is_some();
    let (csrf_field, cookies) = if has_phone {
        csrf(&state, &headers)
    } else {
        (String::new(), Vec::new())
    };
    let self_path = format!("/ok/{token}");
    let markup = pages::confirmation(&Confirmation {
        place: place(&premises, &org),
        entered: &entered,
        now_text: &now_text,
        offset_min,
        qr_svg: &qr_svg,
        guard_url: &guard_url,
        earlier: query.earlier.is_some(),
        forget_csrf: has_phone.then_some(csrf_field.as_str()),
        self_path: &self_path,
    });
    Ok(Page {
        status: StatusCode::OK,
        markup,
        cookies,
    }
    .into_response())
}

/// The QR of `url` as an inline SVG (empty if the URL cannot be encoded,
/// which a configured base URL of sane length never hits; the link below it
/// still works).
pub(crate) fn qr_svg(url: &str) -> String {
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .build(),
        Err(e) => {
            tracing::warn!(error = %e, "the guard URL does not fit a QR code");
            String::new()
        }
    }
}
