use actix_web::HttpResponse;
use actix_web::web::Data;
use web::{ApiError, Caller, PageQuery, ValidQuery};

use crate::AppState;

/// `GET /api/functions` → the caller's functions, newest first, paginated.
pub async fn list_functions(
    state: Data<AppState>,
    caller: Caller,
    page: ValidQuery<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page.into_inner();
    let (items, total) = state.functions.list(&caller, &page).await?;
    Ok(HttpResponse::Ok().json(page.page(items, total)))
}
