use std::collections::BTreeMap;

use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use db::FunctionId;
use runner::protocol::Status;
use serde::Deserialize;
use serde_json::{Value, json};
use web::{ApiError, ErrorCode, KeepBody, RequestId, Users};

use super::{access, function_headers};
use crate::AppState;
use crate::invoke::Call;

/// The original envelope: `{body?, query?, headers?, method?, path?}`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
struct Envelope {
    #[serde(default)]
    body: Value,
    #[serde(default)]
    query: BTreeMap<String, Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    method: Option<String>,
    path: Option<String>,
}

/// `POST /api/functions/{id}/invoke` → 200 `{success, result, status_code, headers,
/// execution_id, duration_ms, cold_start}`; a failing function 502, a timeout 504.
#[utoipa::path(
    post,
    path = "/api/functions/{id}/invoke",
    tag = "invoke",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ("X-Api-Key" = Option<String>, Header, description = "Signed call: the API key's id"), ("X-Timestamp" = Option<i64>, Header, description = "Signed call: unix seconds, within ±300 s"), ("X-Nonce" = Option<String>, Header, description = "Signed call (v1): random, at most 64 characters, never reused"), ("X-Signature" = Option<String>, Header, description = "Signed call: `v1=<base64 HMAC-SHA256>` (or the original's v0); see docs/API-KEYS.md")),
    request_body = Envelope,
    responses(
        (status = 200, description = "`{success, result, status_code, headers, execution_id, duration_ms, cold_start}`"),
        (status = 502, description = "The function failed: `{success: false, error, message, execution_id, duration_ms, cold_start}`"),
        (status = 504, description = "The function timed out (same shape as 502)"),
        (status = 401, description = "No or bad credentials for a non-public function; `signature_expired`, `signature_replayed`, `signature_invalid`, `api_key_invalid`", body = web::openapi::ErrorEnvelope),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 410, description = "Pending deletion", body = web::openapi::ErrorEnvelope),
        (status = 413, description = "Body too large", body = web::openapi::ErrorEnvelope),
        (status = 429, description = "Concurrency or `invocations_per_minute` limit reached; see `Retry-After`", body = web::openapi::ErrorEnvelope),
        (status = 503, description = "No active deployment or the container engine is down; see `Retry-After`", body = web::openapi::ErrorEnvelope),
    ),
    security((), ("bearer" = []), ("api_key" = []))
)]
pub async fn invoke_function(
    state: Data<AppState>,
    users: Data<Users>,
    req: HttpRequest,
    request_id: RequestId,
    id: Path<FunctionId>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let access = access(&req, &users, &state, id, &body).await?;
    if body.len() > state.invoker.max_body_bytes() {
        return Err(ApiError::named(
            ErrorCode::PayloadTooLarge,
            "body_too_large",
            "The request body is too large.",
        ));
    }
    let envelope: Envelope = if body.is_empty() {
        Envelope::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::with_message(
                ErrorCode::InvalidJson,
                format!("The request body is not a valid invocation envelope: {e}."),
            )
        })?
    };
    let raw = match &envelope.body {
        Value::Null => Vec::new(),
        Value::String(text) => text.clone().into_bytes(),
        other => serde_json::to_vec(other).map_err(ApiError::internal)?,
    };
    let mut headers = function_headers(&req);
    headers.extend(envelope.headers);
    if envelope.body.is_object() || envelope.body.is_array() {
        headers
            .entry("content-type".to_owned())
            .or_insert_with(|| "application/json".to_owned());
    }
    let query = envelope
        .query
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            )
        })
        .collect();
    let call = Call {
        method: envelope
            .method
            .unwrap_or_else(|| "POST".to_owned())
            .to_ascii_uppercase(),
        path: envelope.path.unwrap_or_else(|| "/".to_owned()),
        headers,
        query,
        body: raw,
    };
    let outcome = state
        .invoker
        .invoke(&access, id, call, request_id.as_str())
        .await?;
    let response = &outcome.response;
    let (status, body) = match (response.status, &response.result) {
        (Status::Success, Some(result)) => (
            actix_web::http::StatusCode::OK,
            json!({
                "success": true,
                "result": result.body,
                "status_code": result.status_code,
                "headers": result.headers,
                "execution_id": outcome.execution_id,
                "duration_ms": response.duration_ms,
                "cold_start": outcome.cold_start,
            }),
        ),
        (status, _) => {
            let (http, error) = match status {
                Status::Timeout => (
                    actix_web::http::StatusCode::GATEWAY_TIMEOUT,
                    "function_timeout",
                ),
                Status::Oom => (actix_web::http::StatusCode::BAD_GATEWAY, "out_of_memory"),
                Status::NoResult => (actix_web::http::StatusCode::BAD_GATEWAY, "no_result"),
                _ => (actix_web::http::StatusCode::BAD_GATEWAY, "function_error"),
            };
            (
                http,
                json!({
                    "success": false,
                    "error": error,
                    "message": response.error,
                    "execution_id": outcome.execution_id,
                    "duration_ms": response.duration_ms,
                    "cold_start": outcome.cold_start,
                }),
            )
        }
    };
    let mut http = HttpResponse::build(status).json(body);
    http.extensions_mut().insert(KeepBody);
    Ok(http)
}
