//! What both services' OpenAPI 3.1 documents share: the error envelope, the bearer scheme, the
//! rendering of a document to the JSON committed under `docs/openapi/`, and the route serving it.
//! Each service derives its own `utoipa::OpenApi` from its handlers' annotations.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, PartialSchema, ToSchema};

/// The body of every non-2xx answer (SPEC §2).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorEnvelope {
    /// A stable code: `not_found`, `validation_failed`, `signature_expired`, …
    #[schema(example = "not_found")]
    pub error: String,
    /// Text for humans; a 5xx carries no internal detail.
    pub message: String,
    /// The request's id, also in the `X-Request-Id` header.
    pub request_id: String,
    /// Field errors (422: field → messages) or other specifics of the error.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Adds the `bearer` security scheme (an access token in `Authorization: Bearer …`) that
/// operations name with `security(("bearer" = []))`.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components
            .schemas
            .entry("Error".to_owned())
            .or_insert_with(ErrorEnvelope::schema);
    }
}

/// The document as committed under `docs/openapi/`: pretty JSON ending with a newline.
pub fn render(openapi: &OpenApi) -> String {
    let mut json = openapi
        .to_pretty_json()
        .expect("an OpenAPI document serializes");
    json.push('\n');
    json
}

/// `GET /openapi.json`: serves a rendered document.
pub fn serve_document(
    document: &'static str,
) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone {
    move || {
        std::future::ready(
            HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .body(document),
        )
    }
}
