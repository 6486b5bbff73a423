use actix_web::HttpResponse;
use actix_web::web::Data;
use web::{ApiError, Caller, PageQuery, ValidQuery};

use crate::AppState;

/// `GET /api/functions` → the caller's functions, newest first, paginated.
#[utoipa::path(
    get,
    path = "/api/functions",
    tag = "functions",
    params(web::PageQuery),
    responses(
        (status = 200, description = "The caller's functions, paginated", body = web::Page<crate::functions::FunctionView>),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_functions(
    state: Data<AppState>,
    caller: Caller,
    page: ValidQuery<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page.into_inner();
    let (items, total) = state.functions.list(&caller, &page).await?;
    Ok(HttpResponse::Ok().json(page.page(items, total)))
}
