//! The JSON body of every refusal of both APIs (organizations' and the
//! health authority's): a leaf, so the handlers that answer it and the
//! OpenAPI document that describes it both stand above it.

use serde::Serialize;
use utoipa::ToSchema;

/// Every API refusal (4xx, 5xx) of both APIs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid", "field": "confirmed_at", "message": "is missing"}))]
pub(crate) struct ErrorBody {
    /// A stable code: `no_token`, `bad_token`, `wrong_token_kind`, `not_found`,
    /// `malformed`, `malformed_json`, `invalid`, `too_large`,
    /// `method_not_allowed`, `unavailable`, `storage_unavailable`.
    #[schema(example = "invalid")]
    pub(crate) error: &'static str,
    /// Which field of the request is wrong (the authority's 422s).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "cases[1].phone")]
    pub(crate) field: Option<String>,
    /// For people: what is wrong.
    pub(crate) message: String,
}
