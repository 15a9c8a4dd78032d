//! `ApiError`: every way an organizations' API call fails, as JSON
//! `{"error": code, "message": text}` (the shape of every API refusal, the
//! authority's too) with its 4xx status; storage trouble is
//! logged (never with personal data) and answered 503.

use axum::extract::Json;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use checkin_core::StoreError;

use crate::api_error::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("no bearer token")]
    NoToken,
    #[error("the bearer token is not valid")]
    BadToken,
    #[error("no such premises")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Malformed(String),
    #[error("the request body is too large")]
    TooLarge,
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, text) = match &self {
            ApiError::NoToken => (StatusCode::UNAUTHORIZED, "no_token", self.to_string()),
            ApiError::BadToken => (StatusCode::UNAUTHORIZED, "bad_token", self.to_string()),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", self.to_string()),
            ApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                self.to_string(),
            ),
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed", self.to_string()),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", self.to_string()),
            ApiError::Storage(e) if e.is_caller_error() => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
            }
            ApiError::Storage(e) => {
                // StoreError carries no personal data.
                tracing::error!(error = %e, "API request failed on storage");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage unavailable, try again later".to_owned(),
                )
            }
        };
        let body = ErrorBody {
            error: code,
            field: None,
            message: text,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
