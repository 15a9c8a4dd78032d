//! `WebError`: every way a request ends without its page, each as a clear
//! Russian page with its status; a storage caller error is a 400, storage
//! trouble (a service error) is logged (never with personal data) and shown
//! as a plain 500.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use checkin_core::StoreError;

use crate::pages;

/// What a page refused for a storage failure asks the browser to wait, in
/// seconds (the page itself says "через минуту").
const STORAGE_RETRY_AFTER_S: u64 = 60;

/// Which limit refused an SMS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    PhoneMinute,
    PhoneHour,
    Address,
    /// Cabinet log-in attempts from one address.
    Login,
    /// The limiter is full of keys (under attack): everyone waits a little.
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("no such page")]
    NotFound,
    #[error("the premises code is not nine digits")]
    NotACode,
    #[error("the premises code's check digit does not match")]
    CodeTypo,
    #[error("no premises has this code")]
    UnknownPremises,
    #[error("the premises does not take check-ins")]
    ClosedPremises { address: String },
    #[error("these credentials do not open this page")]
    Forbidden,
    #[error("the form's CSRF token is missing or wrong")]
    Csrf,
    #[error("the form could not be read")]
    BadForm,
    #[error("the request body is too large")]
    TooLarge,
    #[error("the SMS code link is not valid")]
    BadTicket,
    #[error("rate limited ({limit:?}) for {wait:?}")]
    RateLimited { limit: Limit, wait: Duration },
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, text): (StatusCode, &str, String) = match &self {
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Страница не найдена",
                "Такой страницы нет. Отсканируйте QR-код на плакате у входа ещё раз.".into(),
            ),
            WebError::NotACode => (
                StatusCode::NOT_FOUND,
                "Код не найден",
                "В адресе нет кода помещения из 9 цифр. Отсканируйте QR-код на плакате у входа ещё раз.".into(),
            ),
            WebError::CodeTypo => (
                StatusCode::NOT_FOUND,
                "В коде ошибка",
                "Код помещения набран с ошибкой. Сверьте 9 цифр с плакатом у входа или отсканируйте QR-код ещё раз.".into(),
            ),
            WebError::UnknownPremises => (
                StatusCode::NOT_FOUND,
                "Код не найден",
                "Помещения с таким кодом нет. Проверьте код на плакате у входа.".into(),
            ),
            WebError::ClosedPremises { address } => (
                StatusCode::GONE,
                "Отметка не принимается",
                format!("{address}: отметка по этому коду сейчас не принимается. Обратитесь к охране."),
            ),
            WebError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Доступ запрещён",
                "Эта страница — для органа здравоохранения. Войдите под его учётной записью.".into(),
            ),
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "Форма устарела",
                "Страница устарела. Откройте её заново и отправьте форму ещё раз.".into(),
            ),
            WebError::BadForm => (
                StatusCode::BAD_REQUEST,
                "Форма не прочитана",
                "Не удалось прочитать форму. Откройте страницу заново.".into(),
            ),
            WebError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Слишком длинный запрос",
                "Запрос слишком длинный. Откройте страницу заново.".into(),
            ),
            WebError::BadTicket => (
                StatusCode::NOT_FOUND,
                "Ссылка недействительна",
                "Ссылка для ввода кода недействительна. Начните заново: отсканируйте QR-код у входа.".into(),
            ),
            WebError::RateLimited { limit, wait } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Слишком много запросов",
                rate_text(*limit, *wait),
            ),
            // The request was refused as wrong (a caller error): the user's
            // to fix, not logged as the service's failure; its text is the
            // store's English, so the page stays generic.
            WebError::Storage(e) if e.is_caller_error() => {
                tracing::info!("web request refused by storage as invalid");
                (
                    StatusCode::BAD_REQUEST,
                    "Запрос не принят",
                    "Запрос не может быть выполнен. Проверьте введённые данные и попробуйте снова.".into(),
                )
            }
            WebError::Storage(e) => {
                // StoreError carries no phone numbers or codes (they are bound
                // parameters, never part of an error's text).
                tracing::error!(error = %e, "web request failed on storage");
                // Temporary by nature (the database is down or busy): 503
                // with a Retry-After, as the page says.
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Ошибка сервиса",
                    "Сервис временно недоступен. Попробуйте ещё раз через минуту.".into(),
                )
            }
        };
        let mut response =
            (status, Html(pages::message(title, &text).into_string())).into_response();
        let retry_after_s = match &self {
            WebError::RateLimited { wait, .. } => Some(wait.as_secs().max(1)),
            WebError::Storage(e) if !e.is_caller_error() => Some(STORAGE_RETRY_AFTER_S),
            _ => None,
        };
        if let Some(seconds) = retry_after_s {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// "try again in N min" for a limit.
fn rate_text(limit: Limit, wait: Duration) -> String {
    let when = pages::wait_text(wait);
    match limit {
        Limit::PhoneMinute => {
            format!("Код на этот номер уже отправлен. Новый код можно запросить {when}.")
        }
        Limit::PhoneHour => {
            format!("На этот номер отправлено слишком много кодов. Попробуйте снова {when}.")
        }
        Limit::Address => {
            format!("С вашего подключения запрошено слишком много кодов. Попробуйте снова {when}.")
        }
        Limit::Login => format!("Слишком много попыток входа. Попробуйте снова {when}."),
        Limit::Busy => format!("Сервис перегружен. Попробуйте снова {when}."),
    }
}

/// Axum's own refusals (a path or query it cannot decode, a wrong method, a
/// body of the wrong type) come as plain text: they get the same Russian
/// pages as ours. Our pages and files, which name their content type, pass.
pub(crate) async fn plain_refusals(response: Response) -> Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !status.is_client_error() || !plain {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => WebError::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => WebError::TooLarge,
        StatusCode::METHOD_NOT_ALLOWED => {
            let page = pages::message(
                "Так нельзя",
                "Эта страница так не открывается. Отсканируйте QR-код у входа ещё раз.",
            );
            return (status, Html(page.into_string())).into_response();
        }
        _ => WebError::BadForm,
    };
    let mut page = error.into_response();
    *page.status_mut() = status;
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_caller_error_is_a_400_and_a_service_error_a_503() {
        let caller = WebError::Storage(StoreError::Invalid("the address is empty".into()));
        assert_eq!(caller.into_response().status(), StatusCode::BAD_REQUEST);
        let service = WebError::Storage(StoreError::Database(checkin_core::store::DbError::Closed));
        let response = service.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "60");
    }
}
