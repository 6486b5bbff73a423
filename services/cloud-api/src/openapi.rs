//! cloud-api's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations
//! (each feature's `routes::*::Doc`), served at `/openapi.json` and committed as
//! `docs/openapi/cloud-api.json` (a test keeps the two equal; `just openapi` rewrites the file).

use std::sync::LazyLock;

use utoipa::Modify;
use utoipa::openapi::InfoBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

/// The document, rendered once.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| web::openapi::render(&openapi()));

/// The document: every feature's operations, the bearer scheme and the error envelope.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = crate::routes::openapi();
    doc.info = InfoBuilder::new()
        .title("ContainerPub cloud-api")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The public API: accounts, functions, deployments, invocations, executions, \
             statistics and API keys. Every non-2xx answer is the `Error` envelope.",
        ))
        .build();
    web::openapi::BearerAuth.modify(&mut doc);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Api-Key",
            "A signed invocation: X-Api-Key, X-Timestamp, X-Nonce and X-Signature (docs/API-KEYS.md)",
        ))),
    );
    doc
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The committed document is the generated one. `CP_UPDATE_OPENAPI=1` (what `just openapi`
    /// sets) rewrites the file instead of failing.
    #[test]
    fn the_committed_document_is_current() {
        let file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi/cloud-api.json");
        let generated = super::DOCUMENT.as_str();
        if std::env::var("CP_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi/cloud-api.json is not the document the code generates; run `just openapi`"
        );
    }

    #[test]
    fn every_operation_answers_with_the_error_envelope_and_names_a_tag() {
        let doc = super::openapi();
        assert!(
            doc.paths.paths.len() >= 20,
            "{} paths",
            doc.paths.paths.len()
        );
        for (path, item) in &doc.paths.paths {
            let ops = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
            for op in ops.into_iter().flatten() {
                assert!(
                    op.tags.as_ref().is_some_and(|t| !t.is_empty()),
                    "{path} has no tag"
                );
                let errors = op
                    .responses
                    .responses
                    .keys()
                    .filter(|s| s.starts_with('4'))
                    .count();
                assert!(errors > 0, "{path} documents no error answer");
            }
        }
    }
}
