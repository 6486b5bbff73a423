//! The OpenAPI 3.1 document of admin-api, generated from the handlers' `#[utoipa::path]`
//! annotations and the request/response types' `ToSchema` derives. Served at `/openapi.json` and
//! committed as `docs/openapi/admin-api.json` (a test fails when they differ; `just openapi`
//! regenerates the file).
//!
//! Each route module exposes `pub fn openapi() -> utoipa::openapi::OpenApi` (usually
//! `ApiDoc::openapi()` of a `#[derive(OpenApi)]` listing its paths); [`document`] merges them.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ContainerPub admin-api",
        description = "Administration of ContainerPub (SPEC §5). Every route but login, refresh, logout and verify-session takes `Authorization: Bearer <admin access token>`; reads need the `viewer` or `full_admin` role, writes `full_admin`. Every non-2xx answer is the error envelope `{error, message, request_id, details?}`.",
        license(name = "MIT")
    ),
    modifiers(&BearerAuth)
)]
struct Root;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
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
    }
}

/// The whole document: the root merged with every route module's part.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Root::openapi();
    for part in routes::openapi_parts() {
        doc.merge(part);
    }
    doc
}

/// The document as committed: pretty JSON with a trailing newline.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// `docs/openapi/admin-api.json`, relative to the workspace.
    fn committed_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi/admin-api.json")
    }

    /// The committed document is the generated one. `just openapi` (`CP_UPDATE_OPENAPI=1`)
    /// rewrites the file instead of comparing.
    #[test]
    fn committed_document_matches_the_code() {
        let generated = document_json();
        let path = committed_path();
        if std::env::var("CP_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}; run `just openapi`", path.display()));
        assert!(
            committed == generated,
            "{} differs from the code's OpenAPI document; run `just openapi` and commit it",
            path.display()
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_bearer_security() {
        let json: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        assert!(
            json["openapi"].as_str().unwrap().starts_with("3.1"),
            "{json}"
        );
        assert_eq!(
            json["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(json["paths"]["/api/admin/auth/me"]["get"].is_object());
    }
}
