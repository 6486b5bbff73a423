//! `POST /api/functions/{id}/invoke` (the original's envelope) and `ANY /fn/{id}/{path}` (the
//! HTTP gateway), SPEC §3.3.

mod envelope;
mod gateway;

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{ServiceConfig, post, route};
use db::FunctionId;
use signing::SignedRequest;
use web::{ApiError, Users};

use crate::AppState;
use crate::api_keys::SignedCall;
use crate::invoke::Access;

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(envelope::invoke_function, gateway::invoke_function_http))]
pub struct Doc;

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

/// Who is calling function `id`: a bearer token must be valid (it is never ignored); a request
/// with `X-Signature` must carry a valid signature of an API key of this function (SPEC §3.6:
/// v1 signs the raw `body` and the request target as sent; v0 the envelope's `body` field); no
/// credentials at all is anonymous, which only a public function accepts.
async fn access(
    req: &HttpRequest,
    users: &Users,
    state: &AppState,
    id: FunctionId,
    body: &[u8],
) -> Result<Access, ApiError> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        let token = web::auth::bearer_token(req)?;
        return Ok(Access::User(users.caller(token).await?));
    }
    let Some(signature) = req.headers().get("x-signature") else {
        return Ok(Access::Anonymous);
    };
    let text = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path(), |pq| pq.as_str());
    let call = SignedCall {
        api_key: text("x-api-key"),
        request: SignedRequest {
            timestamp: text("x-timestamp").unwrap_or_default(),
            nonce: text("x-nonce"),
            signature: signature.to_str().unwrap_or_default(),
            method: req.method().as_str(),
            path_and_query,
            body,
        },
    };
    let key = state
        .api_keys
        .verify(id, &call, || state.invoker.function_owner(id))
        .await?;
    Ok(Access::ApiKey(key))
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
