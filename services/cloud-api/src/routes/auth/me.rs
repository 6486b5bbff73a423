use actix_web::HttpResponse;
use actix_web::web::Data;
use web::{ApiError, Caller};

use crate::AppState;

/// `GET /api/auth/me` → the caller's profile, status, tier, organization and feature roles.
pub async fn get_me(state: Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.identity.profile(&caller).await?))
}
