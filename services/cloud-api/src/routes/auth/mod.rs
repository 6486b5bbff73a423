//! `/api/auth/*` (SPEC §3.1).

mod login;
mod logout;
mod me;
mod refresh;
mod register;
mod reset_password;

use actix_web::web::{ServiceConfig, get, post, scope};
use auth::TokenSet;
use secrecy::ExposeSecret;
use serde::Serialize;

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    register::register_user,
    login::login,
    refresh::refresh_tokens,
    logout::logout,
    reset_password::request_password_reset,
    reset_password::confirm_password_reset,
    me::get_me,
))]
pub struct Doc;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/api/auth")
            .route("/register", post().to(register::register_user))
            .route("/login", post().to(login::login))
            .route("/refresh", post().to(refresh::refresh_tokens))
            .route("/logout", post().to(logout::logout))
            .route(
                "/reset-password",
                post().to(reset_password::request_password_reset),
            )
            .route(
                "/reset-password/confirm",
                post().to(reset_password::confirm_password_reset),
            )
            .route("/me", get().to(me::get_me)),
    );
}

/// The token answer of login and refresh.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenResponse<'a> {
    access_token: &'a str,
    refresh_token: &'a str,
    expires_in: u64,
    refresh_expires_in: u64,
    token_type: &'static str,
}

impl<'a> From<&'a TokenSet> for TokenResponse<'a> {
    fn from(tokens: &'a TokenSet) -> Self {
        Self {
            access_token: tokens.access_token.expose_secret(),
            refresh_token: tokens.refresh_token.expose_secret(),
            expires_in: tokens.expires_in,
            refresh_expires_in: tokens.refresh_expires_in,
            token_type: TokenSet::TOKEN_TYPE,
        }
    }
}
