use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::{ApiKeyId, ApiKeyValidity, FunctionId};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use web::{ApiError, Caller, PageQuery, ValidJson, ValidQuery};

use crate::AppState;
use crate::api_keys::{ApiKeyEnvelope, ApiKeyView, NewKeyEnvelope, NewKeyView};

/// `POST /api/apikey/generate` body.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct GenerateRequest {
    #[garde(skip)]
    function_id: FunctionId,
    /// `1h`, `1d`, `1w`, `1m` or `forever`.
    #[garde(skip)]
    validity: ApiKeyValidity,
    #[garde(length(min = 1, max = 255))]
    name: Option<String>,
}

/// `PUT /api/apikey/{key_id}/update` body.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct UpdateRequest {
    #[garde(length(min = 1, max = 255))]
    name: Option<String>,
    #[garde(skip)]
    validity: Option<ApiKeyValidity>,
}

fn view(key: &db::api_keys::ApiKey) -> ApiKeyView {
    ApiKeyView::new(key, OffsetDateTime::now_utc())
}

/// `POST /api/apikey/generate` → 201 `{api_key: {uuid, name, validity, expires_at, created_at,
/// secret_key}}`; the secret is shown this once.
#[utoipa::path(
    post,
    path = "/api/apikey/generate",
    tag = "api-keys",
    request_body = GenerateRequest,
    responses(
        (status = 201, description = "`{api_key: {uuid, name, validity, expires_at, created_at, secret_key}, warning}`; the secret is shown this once", body = crate::api_keys::NewKeyEnvelope),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 410, description = "Pending deletion", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn generate_api_key(
    state: Data<AppState>,
    caller: Caller,
    body: ValidJson<GenerateRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (key, secret) = state
        .api_keys
        .generate(&caller, body.function_id, body.validity, body.name)
        .await?;
    Ok(HttpResponse::Created().json(NewKeyEnvelope {
        api_key: NewKeyView::new(&key, &secret),
        warning: "Store the secret key now: it is not shown again.",
    }))
}

/// `GET /api/apikey/{function_id}` → `{has_api_key, api_key}`: the current valid key, no secret.
#[utoipa::path(
    get,
    path = "/api/apikey/{function_id}",
    tag = "api-keys",
    params(("function_id" = uuid::Uuid, Path, description = "The function's id")),
    responses(
        (status = 200, description = "`{has_api_key, api_key}`: the current valid key, without its secret"),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_api_key(
    state: Data<AppState>,
    caller: Caller,
    function_id: Path<FunctionId>,
) -> Result<HttpResponse, ApiError> {
    let key = state
        .api_keys
        .current(&caller, function_id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "has_api_key": key.is_some(),
        "api_key": key.as_ref().map(view),
    })))
}

/// `GET /api/apikey/{function_id}/list` → one page: active, then revoked, then expired.
#[utoipa::path(
    get,
    path = "/api/apikey/{function_id}/list",
    tag = "api-keys",
    params(("function_id" = uuid::Uuid, Path, description = "The function's id"), web::PageQuery),
    responses(
        (status = 200, description = "All keys: active, then revoked, then expired", body = web::Page<crate::api_keys::ApiKeyView>),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_api_keys(
    state: Data<AppState>,
    caller: Caller,
    function_id: Path<FunctionId>,
    page: ValidQuery<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page.into_inner();
    let keys = state
        .api_keys
        .list(&caller, function_id.into_inner(), page.db_page())
        .await?;
    let items = keys.items.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(page.page(items, keys.total)))
}

/// `PUT /api/apikey/{key_id}/roll` → `{api_key}` expiring one validity period from now.
#[utoipa::path(
    put,
    path = "/api/apikey/{key_id}/roll",
    tag = "api-keys",
    params(("key_id" = uuid::Uuid, Path, description = "The API key's id")),
    responses(
        (status = 200, description = "`{api_key}` expiring one validity period from now", body = crate::api_keys::ApiKeyEnvelope),
        (status = 404, description = "No such key on a function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn roll_api_key(
    state: Data<AppState>,
    caller: Caller,
    key_id: Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let key = state.api_keys.roll(&caller, key_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ApiKeyEnvelope {
        api_key: view(&key),
    }))
}

/// `PUT /api/apikey/{key_id}/update` `{name?, validity?}` → `{api_key}`.
#[utoipa::path(
    put,
    path = "/api/apikey/{key_id}/update",
    tag = "api-keys",
    params(("key_id" = uuid::Uuid, Path, description = "The API key's id")),
    request_body = UpdateRequest,
    responses(
        (status = 200, description = "`{api_key}` renamed or with its new validity", body = crate::api_keys::ApiKeyEnvelope),
        (status = 404, description = "No such key on a function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn update_api_key(
    state: Data<AppState>,
    caller: Caller,
    key_id: Path<ApiKeyId>,
    body: ValidJson<UpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let key = state
        .api_keys
        .update(&caller, key_id.into_inner(), body.name, body.validity)
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyEnvelope {
        api_key: view(&key),
    }))
}

/// `PUT /api/apikey/{key_id}/enable` → `{api_key}`; an expired key is 409 `api_key_expired`.
/// (The original's `{name}` body is accepted and ignored.)
#[utoipa::path(
    put,
    path = "/api/apikey/{key_id}/enable",
    tag = "api-keys",
    params(("key_id" = uuid::Uuid, Path, description = "The API key's id")),
    responses(
        (status = 200, description = "`{api_key}` active again", body = crate::api_keys::ApiKeyEnvelope),
        (status = 404, description = "No such key on a function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 409, description = "`api_key_expired`: an expired key cannot be enabled", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn enable_api_key(
    state: Data<AppState>,
    caller: Caller,
    key_id: Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let key = state.api_keys.enable(&caller, key_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ApiKeyEnvelope {
        api_key: view(&key),
    }))
}

/// `DELETE /api/apikey/{key_id}/revoke` → `{api_key}`, revoked; the row stays.
#[utoipa::path(
    delete,
    path = "/api/apikey/{key_id}/revoke",
    tag = "api-keys",
    params(("key_id" = uuid::Uuid, Path, description = "The API key's id")),
    responses(
        (status = 200, description = "`{api_key}`, revoked; the row stays for history", body = crate::api_keys::ApiKeyEnvelope),
        (status = 404, description = "No such key on a function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_api_key(
    state: Data<AppState>,
    caller: Caller,
    key_id: Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let key = state.api_keys.revoke(&caller, key_id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ApiKeyEnvelope {
        api_key: view(&key),
    }))
}

/// `DELETE /api/apikey/{key_id}` → 200 `{uuid, deleted: true}`; the key is gone.
#[utoipa::path(
    delete,
    path = "/api/apikey/{key_id}",
    tag = "api-keys",
    params(("key_id" = uuid::Uuid, Path, description = "The API key's id")),
    responses(
        (status = 200, description = "`{uuid, deleted: true}`"),
        (status = 404, description = "No such key on a function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn delete_api_key(
    state: Data<AppState>,
    caller: Caller,
    key_id: Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let id = key_id.into_inner();
    state.api_keys.delete(&caller, id).await?;
    Ok(HttpResponse::Ok().json(json!({ "uuid": id, "deleted": true })))
}
