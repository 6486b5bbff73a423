use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use db::FunctionId;
use runner::protocol::Status;
use serde_json::{Value, json};
use web::{ApiError, ErrorCode, KeepBody, RequestId, Users};

use super::{access, function_headers};
use crate::AppState;
use crate::invoke::Call;

/// `ANY /fn/{id}/{path}`: the real method, path, query, headers and body go to the function, and
/// its real status, headers and body come back, with `X-Execution-Id`.
#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/fn/{id}/{tail}",
    tag = "invoke",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ("tail" = String, Path, description = "The path the function sees (may be empty: `/fn/{id}`)"), ("X-Api-Key" = Option<String>, Header, description = "Signed call: the API key's id"), ("X-Timestamp" = Option<i64>, Header, description = "Signed call: unix seconds, within ±300 s"), ("X-Nonce" = Option<String>, Header, description = "Signed call (v1): random, at most 64 characters, never reused"), ("X-Signature" = Option<String>, Header, description = "Signed call: `v1=<base64 HMAC-SHA256>` (or the original's v0); see docs/API-KEYS.md")),
    responses(
        (status = 200, description = "The function's own status, headers and body, with `X-Execution-Id` (any status)"),
        (status = 502, description = "`function_error`, with `execution_id` in `details`", body = web::openapi::ErrorEnvelope),
        (status = 504, description = "`function_timeout`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "No or bad credentials for a non-public function; `signature_expired`, `signature_replayed`, `signature_invalid`, `api_key_invalid`", body = web::openapi::ErrorEnvelope),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 410, description = "Pending deletion", body = web::openapi::ErrorEnvelope),
        (status = 413, description = "Body too large", body = web::openapi::ErrorEnvelope),
        (status = 429, description = "Concurrency or `invocations_per_minute` limit reached; see `Retry-After`", body = web::openapi::ErrorEnvelope),
        (status = 503, description = "No active deployment or the container engine is down; see `Retry-After`", body = web::openapi::ErrorEnvelope),
    ),
    security((), ("bearer" = []), ("api_key" = []))
)]
pub async fn invoke_function_http(
    state: Data<AppState>,
    users: Data<Users>,
    req: HttpRequest,
    request_id: RequestId,
    path: Path<(FunctionId,)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner().0;
    let access = access(&req, &users, &state, id, &body).await?;
    let tail = req.match_info().get("tail").unwrap_or_default();
    let query = url_query(req.query_string());
    let call = Call {
        method: req.method().as_str().to_owned(),
        path: format!("/{tail}"),
        headers: function_headers(&req),
        query,
        body: body.to_vec(),
    };
    let outcome = state
        .invoker
        .invoke(&access, id, call, request_id.as_str())
        .await?;
    let execution_id = outcome.execution_id.to_string();
    let response = &outcome.response;
    let Some(result) = response
        .result
        .as_ref()
        .filter(|_| response.status == Status::Success)
    else {
        let (code, name, message) = match response.status {
            Status::Timeout => (
                ErrorCode::FunctionTimeout,
                "function_timeout",
                "The function did not finish in time.",
            ),
            Status::Oom => (
                ErrorCode::BadGateway,
                "out_of_memory",
                "The function ran out of memory.",
            ),
            Status::NoResult => (
                ErrorCode::BadGateway,
                "no_result",
                "The function exited without a result.",
            ),
            _ => (
                ErrorCode::BadGateway,
                "function_error",
                "The function failed.",
            ),
        };
        return Err(
            ApiError::named(code, name, message).details(json!({ "execution_id": execution_id }))
        );
    };
    let status = StatusCode::from_u16(result.status_code).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    let mut has_type = false;
    for (name, values) in &result.headers {
        let Ok(name) = HeaderName::try_from(name.as_str()) else {
            continue;
        };
        has_type |= name == actix_web::http::header::CONTENT_TYPE;
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                builder.append_header((name.clone(), value));
            }
        }
    }
    builder.insert_header(("x-execution-id", execution_id));
    let body = match &result.body {
        Value::Null => Vec::new(),
        Value::String(text) => text.clone().into_bytes(),
        other => {
            if !has_type {
                builder.insert_header((actix_web::http::header::CONTENT_TYPE, "application/json"));
            }
            serde_json::to_vec(other).map_err(ApiError::internal)?
        }
    };
    let mut http = builder.body(body);
    http.extensions_mut().insert(KeepBody);
    Ok(http)
}

fn url_query(raw: &str) -> std::collections::BTreeMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}
