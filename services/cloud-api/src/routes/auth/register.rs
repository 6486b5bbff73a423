use actix_web::HttpResponse;
use actix_web::web::Data;
use serde_json::json;
use web::{ApiError, ClientInfo, ValidJson};

use crate::AppState;
use crate::identity::{Registration, UserView};

/// `POST /api/auth/register` → 201 `{user}`.
pub async fn register_user(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<Registration>,
) -> Result<HttpResponse, ApiError> {
    let user = state.identity.register(body.into_inner(), &client).await?;
    Ok(HttpResponse::Created().json(json!({ "user": UserView::from(&user) })))
}
