//! Who is calling admin-api, in two layers expressed in the handler types (SPEC §5):
//! [`Reader`] — any authenticated admin, 401 otherwise; [`Writer`] — a `full_admin`, 403 for a
//! viewer. Every read route takes a `Reader` and every write route a `Writer`, so a route cannot
//! exist without its guard.
//!
//! A token must be valid for the configured provider, issued to the admin client (`admin-api`:
//! tokens of the public API are refused here even for an admin), and carry `full_admin` or
//! `viewer` — as a realm role, a client role of `admin-api`, or a scope in Keycloak mode; as
//! `users.admin_role` (set by `admin-api create-admin`) in built-in mode.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use web::{ApiError, ErrorCode};

use crate::state::AppState;

/// An authenticated admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The token's subject: the Keycloak user id, or the built-in user's UUID.
    pub subject: String,
    /// The admin's username (Keycloak `preferred_username`, else the email).
    pub username: String,
    /// `full_admin` or `viewer`.
    pub role: db::AdminRole,
}

/// Extractor: any authenticated admin (full_admin or viewer); 401 envelope otherwise.
#[derive(Debug, Clone)]
pub struct Reader(pub Admin);

/// Extractor: a full_admin; 401 when unauthenticated, 403 `forbidden` (message naming the role)
/// for a viewer.
#[derive(Debug, Clone)]
pub struct Writer(pub Admin);

fn not_an_admin() -> ApiError {
    ApiError::named(
        ErrorCode::Forbidden,
        "forbidden",
        "This account has no admin role (full_admin or viewer).",
    )
}

/// The admin behind `token`, or the error to answer.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Admin, ApiError> {
    let auth = &state.auth;
    let principal = auth.authenticator.authenticate(token).await?;
    // Tokens issued to another client (cloud-api's users) are not admin tokens.
    if principal.authorized_party.as_deref() != Some(auth.client_id.as_str()) {
        return Err(ApiError::named(
            ErrorCode::Unauthenticated,
            "invalid_token",
            "The access token was not issued to the admin API.",
        ));
    }
    let role =
        auth::AdminRole::from_roles(&principal.roles, &auth.client_id).ok_or_else(not_an_admin)?;
    let role = match role {
        auth::AdminRole::FullAdmin => db::AdminRole::FullAdmin,
        auth::AdminRole::Viewer => db::AdminRole::Viewer,
    };
    let username = match (&principal.username, principal.user_id) {
        (Some(name), _) => name.clone(),
        (None, Some(id)) => {
            let mut conn = db::connect(&state.pool).await?;
            let user = db::users::find_user(&mut conn, id)
                .await?
                .ok_or_else(|| ApiError::from(auth::Error::InvalidToken))?;
            user.email
        }
        (None, None) => principal
            .email
            .clone()
            .unwrap_or_else(|| principal.subject.clone()),
    };
    Ok(Admin {
        subject: principal.subject.clone(),
        username,
        role,
    })
}

/// The outcome of authenticating a request's bearer token, computed by [`resolve`] before any
/// extractor runs.
struct Resolved(Result<Admin, ApiError>);

/// Middleware (wrapping the whole app): authenticates the bearer token, if any, before the
/// handler's extractors run, and leaves the outcome in the request's extensions.
///
/// Why: actix polls a handler's extractors together, and returns the first error of any of them.
/// Were the guard itself asynchronous, a viewer's malformed write body could be answered 422 (or
/// an unknown id 404) before the guard's 403. With the token resolved here, [`Reader`] and
/// [`Writer`] answer on their first poll, and being the first argument of every handler, their
/// 401/403 wins over anything the request contains.
pub async fn resolve(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<Data<AppState>>().cloned()
        && let Ok(token) = web::auth::bearer_token(req.request())
    {
        let outcome = authenticate(&state, token).await;
        req.extensions_mut().insert(Resolved(outcome));
    }
    next.call(req).await
}

fn extract(req: &HttpRequest) -> LocalBoxFuture<'static, Result<Admin, ApiError>> {
    let token = match web::auth::bearer_token(req) {
        Ok(token) => token.to_owned(),
        Err(err) => return Box::pin(std::future::ready(Err(err))),
    };
    if let Some(Resolved(outcome)) = req.extensions_mut().remove::<Resolved>() {
        return Box::pin(std::future::ready(outcome));
    }
    // Not resolved by the middleware (a route served without it): authenticate now.
    let state = req.app_data::<Data<AppState>>().cloned();
    Box::pin(async move {
        let state = state.ok_or_else(|| ApiError::internal("AppState is not registered"))?;
        authenticate(&state, &token).await
    })
}

impl FromRequest for Reader {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admin = extract(req);
        Box::pin(async move { admin.await.map(Reader) })
    }
}

impl FromRequest for Writer {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let admin = extract(req);
        Box::pin(async move {
            let admin = admin.await?;
            if admin.role == db::AdminRole::FullAdmin {
                Ok(Writer(admin))
            } else {
                Err(ApiError::named(
                    ErrorCode::Forbidden,
                    "forbidden",
                    "This action needs the full_admin role; the viewer role is read-only.",
                ))
            }
        })
    }
}
