//! `POST /api/functions/{id}/invoke` (the original's envelope) and `ANY /fn/{id}/{path}` (the
//! HTTP gateway), SPEC §3.3.

mod envelope;
mod gateway;

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{ServiceConfig, post, route};
use web::{ApiError, Users};

use crate::invoke::Access;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route(
        "/api/functions/{id}/invoke",
        post().to(envelope::invoke_function),
    )
    .route("/fn/{id}", route().to(gateway::invoke_function_http))
    .route(
        "/fn/{id}/{tail:.*}",
        route().to(gateway::invoke_function_http),
    );
}

/// Who is calling: a bearer token must be valid (it is never ignored); no credentials at all is
/// anonymous, which only a public function accepts. API-key signatures (`X-Signature`) are
/// checked here too once API keys exist; until then a signed request is refused as such.
async fn access(req: &HttpRequest, users: &Users) -> Result<Access, ApiError> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        let token = web::auth::bearer_token(req)?;
        return Ok(Access::User(users.caller(token).await?));
    }
    if req.headers().contains_key("x-signature") {
        return Err(ApiError::named(
            web::ErrorCode::Unauthenticated,
            "api_key_invalid",
            "Signed requests need an API key of this function.",
        ));
    }
    Ok(Access::Anonymous)
}

/// The request headers a function sees: everything but the caller's credentials.
fn function_headers(req: &HttpRequest) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    for (name, value) in req.headers() {
        let name = name.as_str();
        if matches!(
            name,
            "authorization" | "x-api-key" | "x-signature" | "x-timestamp" | "x-nonce"
        ) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            headers
                .entry(name.to_owned())
                .and_modify(|v: &mut String| {
                    v.push_str(", ");
                    v.push_str(value);
                })
                .or_insert_with(|| value.to_owned());
        }
    }
    headers
}
