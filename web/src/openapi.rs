//! The OpenAPI 3.1 document of `/api/v1`, generated (`utoipa`) from the
//! handlers' own request and response types and their `#[utoipa::path]`
//! attributes, so it cannot drift from them; served at
//! `GET /api/v1/openapi.json` without a token. Every refusal of both APIs is
//! one `ErrorBody`; the refusals an operation can answer are added here from
//! one table (`refusals`), by the operation's token and shape.
//! `web/tests/openapi.rs` proves every `/api/v1` route of the router is in
//! the document, and `scripts/test` validates and fuzzes it (schemathesis).

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api_error::ErrorBody;

/// The security scheme of an organization's API token (`/org/tokens`).
pub(crate) const ORG_TOKEN: &str = "organization_token";
/// The security scheme of the health authority's token (`checkin authority create`).
pub(crate) const AUTHORITY_TOKEN: &str = "authority_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "checkin API",
        version = "1",
        description = "The organizations' premises API (an organization's token from its cabinet) \
                       and the health authority's cases and alerts API (the authority's token). \
                       Every refusal is `{\"error\", \"message\", \"field\"?}`."
    ),
    paths(
        document,
        crate::org::api::list,
        crate::org::api::create,
        crate::org::api::get_one,
        crate::org::api::update,
        crate::org::api::stats,
        crate::org::api::deactivate,
        crate::authority::submit_cases,
        crate::authority::case_report,
        crate::authority::alerts_state,
        crate::authority::pause_alerts,
        crate::authority::resume_alerts,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Refusals),
    tags(
        (name = "premises", description = "An organization's premises (organization token)"),
        (name = "cases", description = "The health authority's cases (authority token)"),
        (name = "alerts", description = "The alerts kill switch (authority token)"),
    )
)]
struct ApiDoc;

/// The document, built once.
pub(crate) fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "get_openapi",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
pub(crate) async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

/// Adds both security schemes and each operation's refusals.
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for name in [ORG_TOKEN, AUTHORITY_TOKEN] {
            let mut bearer = Http::new(HttpAuthScheme::Bearer);
            bearer.description = Some(match name {
                ORG_TOKEN => {
                    "An organization's API token, issued in its cabinet (/org/tokens)".into()
                }
                _ => "The health authority's token (`checkin authority create`)".into(),
            });
            components.add_security_scheme(name, SecurityScheme::Http(bearer));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let has_id = path.contains('{');
            for (method, op) in [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("patch", &mut item.patch),
            ] {
                if let Some(op) = op {
                    add_refusals(op, has_id, method != "get");
                }
            }
        }
    }
}

/// Which scheme an operation asks for, if any.
fn scheme(op: &Operation) -> Option<&str> {
    op.security
        .as_ref()?
        .iter()
        .find_map(|req| {
            let value = serde_json::to_value(req).ok()?;
            value.as_object()?.keys().next().cloned()
        })
        .and_then(|name| {
            [ORG_TOKEN, AUTHORITY_TOKEN]
                .into_iter()
                .find(|n| *n == name)
        })
}

fn add_refusals(op: &mut Operation, has_id: bool, has_body: bool) {
    let Some(scheme) = scheme(op) else {
        return;
    };
    let mut refusals = vec![
        ("400", "The request could not be read (query, JSON)"),
        ("401", "No bearer token, or not a valid one"),
        (
            "422",
            "A value is not acceptable (`field` names it for the authority)",
        ),
        ("503", "Storage is unavailable; try again later"),
    ];
    if scheme == AUTHORITY_TOKEN {
        refusals.push(("403", "An organization's token on the authority's API"));
        refusals.push(("405", "This route does not take this method"));
    }
    if has_id {
        refusals.push(("404", "No such object (or not yours)"));
    }
    if has_body {
        refusals.push(("413", "The body (or the batch) is too large"));
    }
    for (status, description) in refusals {
        if op.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build();
        op.responses
            .responses
            .insert(status.to_owned(), RefOr::T(response));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_both_schemes() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes[ORG_TOKEN]["scheme"], "bearer");
        assert_eq!(schemes[AUTHORITY_TOKEN]["scheme"], "bearer");
        // Every operation that takes a token answers its refusals with ErrorBody.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if path.ends_with("openapi.json") {
                    continue;
                }
                let responses = op["responses"].as_object().unwrap();
                for status in ["401", "422", "503"] {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
