//! What keeps the pages safe: the security headers, the CSRF token of every
//! form (a signed double submit), the signed link to the code page (ticket),
//! and the cookie that remembers a verified phone.
//! Every secret here is derived from the service keys.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use checkin_core::guard::GuardKey;
use checkin_core::otp::{derive_key, OtpKey};
use checkin_core::privacy::KEY_BYTES;
use checkin_core::{Keys, Msisdn, PhoneVault};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::WebError;

/// Tag bytes kept of each HMAC (128 bits).
const TAG_BYTES: usize = 16;
/// Random bytes of a CSRF cookie.
const CSRF_BYTES: usize = 16;
/// Longest cookie value we try to read (a sealed phone is ~60 bytes).
const COOKIE_CHARS_MAX: usize = 256;

pub(crate) const CSRF_COOKIE: &str = "csrf";
pub(crate) const PHONE_COOKIE: &str = "phone";

/// The web's keys, each for one purpose; each HMAC is keyed once here (its
/// padded key blocks hashed), then cloned per use.
pub(crate) struct Secrets {
    pub guard: GuardKey,
    pub otp: OtpKey,
    csrf: Hmac<Sha256>,
    ticket: Hmac<Sha256>,
    phone_cookie: Hmac<Sha256>,
}

fn keyed(key: &[u8; KEY_BYTES]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

fn tag(key: &Hmac<Sha256>, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
    let mut mac = key.clone();
    for part in parts {
        mac.update(part);
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&full[..TAG_BYTES]);
    out
}

fn tag_ok(key: &Hmac<Sha256>, parts: &[&[u8]], claimed: &[u8]) -> bool {
    let mut mac = key.clone();
    for part in parts {
        mac.update(part);
    }
    mac.verify_truncated_left(claimed).is_ok() && claimed.len() == TAG_BYTES
}

impl Secrets {
    pub(crate) fn new(keys: &Keys) -> Secrets {
        Secrets {
            guard: GuardKey::new(keys),
            otp: OtpKey::new(keys),
            csrf: keyed(&derive_key(keys, "web/csrf")),
            ticket: keyed(&derive_key(keys, "web/otp-ticket")),
            phone_cookie: keyed(&derive_key(keys, "web/phone-cookie")),
        }
    }

    /// The form field that goes with the CSRF cookie `cookie`.
    pub(crate) fn csrf_field(&self, cookie: &str) -> String {
        URL_SAFE_NO_PAD.encode(tag(&self.csrf, &[cookie.as_bytes()]))
    }

    /// A form is ours when its field is the tag of the browser's cookie: a
    /// foreign site can make the browser send the cookie, but cannot read it,
    /// nor compute the tag.
    pub(crate) fn check_csrf(&self, cookie: Option<&str>, field: &str) -> Result<(), WebError> {
        let cookie = cookie.ok_or(WebError::Csrf)?;
        let claimed = URL_SAFE_NO_PAD
            .decode(field.trim())
            .map_err(|_| WebError::Csrf)?;
        if tag_ok(&self.csrf, &[cookie.as_bytes()], &claimed) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }

    /// The code page's link parameter: the code's id, signed (so nobody
    /// walks other visitors' codes by id).
    pub(crate) fn ticket(&self, otp_id: i64) -> String {
        let id = otp_id.to_be_bytes();
        let mut bytes = id.to_vec();
        bytes.extend_from_slice(&tag(&self.ticket, &[&id]));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn open_ticket(&self, ticket: &str) -> Result<i64, WebError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(ticket.trim())
            .map_err(|_| WebError::BadTicket)?;
        if bytes.len() != 8 + TAG_BYTES {
            return Err(WebError::BadTicket);
        }
        let (id, claimed) = bytes.split_at(8);
        if !tag_ok(&self.ticket, &[id], claimed) {
            return Err(WebError::BadTicket);
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(id);
        Ok(i64::from_be_bytes(word))
    }

    /// The remembered-phone cookie's value: the time it was issued and the
    /// phone sealed by the vault (the browser cannot read the number), signed.
    pub(crate) fn phone_cookie(
        &self,
        vault: &PhoneVault,
        phone: &Msisdn,
        now: DateTime<Utc>,
    ) -> String {
        let mut body = now.timestamp_millis().to_be_bytes().to_vec();
        body.extend_from_slice(&vault.seal(phone));
        let tag = tag(&self.phone_cookie, &[&body]);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The phone a cookie remembers, if it is ours and younger than `life`.
    pub(crate) fn open_phone_cookie(
        &self,
        vault: &PhoneVault,
        value: &str,
        now: DateTime<Utc>,
        life: chrono::Duration,
    ) -> Option<Msisdn> {
        let (body, claimed) = value.split_once('.')?;
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        let claimed = URL_SAFE_NO_PAD.decode(claimed).ok()?;
        if body.len() < 8 || !tag_ok(&self.phone_cookie, &[&body], &claimed) {
            return None;
        }
        let (issued, sealed) = body.split_at(8);
        let mut word = [0u8; 8];
        word.copy_from_slice(issued);
        let issued = DateTime::from_timestamp_millis(i64::from_be_bytes(word))?;
        if now - issued > life || issued > now + chrono::Duration::minutes(5) {
            return None;
        }
        vault.open(sealed).ok()
    }
}

/// A fresh CSRF cookie value.
pub(crate) fn new_csrf_cookie() -> String {
    let mut bytes = [0u8; CSRF_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of cookie `name` in the request, if sent (and of sane length).
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= COOKIE_CHARS_MAX)
}

/// A `Set-Cookie` header: always `HttpOnly` and `SameSite=Lax`, `Secure` when
/// configured; `max_age_s` 0 deletes the cookie.
pub(crate) fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).expect("cookie values are base64 and fixed words")
}

/// Adds the security headers to every response.
pub(crate) async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    // No inline script or style: the scripts are /static/clock.js, the
    // cabinet's /static/org-sms.js, which asks this origin for its preview,
    // and the authority cabinet's /static/follow.js, which asks it for the
    // page it follows.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The guard's token is in the URL: never hand it to another site.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether `password` matches the argon2id `hash` (none: an unknown
/// account, checked all the same so the time tells nothing), off the async
/// reactor: the cabinets' log-ins.
pub(crate) async fn password_matches(hash: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        checkin_core::store::password_matches(hash.as_deref(), &password)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_values_round_trip_and_refuse_tampering() {
        let keys = Keys::generate();
        let secrets = Secrets::new(&keys);
        let vault = PhoneVault::new(&keys);
        let csrf = new_csrf_cookie();
        let field = secrets.csrf_field(&csrf);
        assert!(secrets.check_csrf(Some(&csrf), &field).is_ok());
        assert!(secrets
            .check_csrf(Some(&new_csrf_cookie()), &field)
            .is_err());
        assert!(secrets.check_csrf(None, &field).is_err());
        assert!(secrets.check_csrf(Some(&csrf), "").is_err());

        assert_eq!(secrets.open_ticket(&secrets.ticket(77)).unwrap(), 77);
        let mut forged = secrets.ticket(77).into_bytes();
        forged[3] ^= 1;
        assert!(secrets
            .open_ticket(&String::from_utf8_lossy(&forged))
            .is_err());

        let phone = Msisdn::parse("+79161234567").unwrap();
        let now = Utc::now();
        let value = secrets.phone_cookie(&vault, &phone, now);
        assert!(!value.contains("9161234567"));
        let life = chrono::Duration::days(30);
        assert_eq!(
            secrets.open_phone_cookie(&vault, &value, now, life),
            Some(phone)
        );
        let later = now + chrono::Duration::days(31);
        assert_eq!(secrets.open_phone_cookie(&vault, &value, later, life), None);
        let other = Secrets::new(&Keys::generate());
        assert_eq!(other.open_phone_cookie(&vault, &value, now, life), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; csrf=xyz ;phone=p.q"),
        );
        assert_eq!(cookie(&h, "csrf"), Some("xyz"));
        assert_eq!(cookie(&h, "phone"), Some("p.q"));
        assert_eq!(cookie(&h, "nope"), None);
    }
}
