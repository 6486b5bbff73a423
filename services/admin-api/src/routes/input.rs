//! Small input helpers shared by the organizations, tiers and observability routes.

use serde::{Deserialize, Deserializer};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use web::ValidJson;
use web::{ApiError, ErrorCode};

/// A 422 whose `details` name one field.
pub fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed).details(json!({ field: [message] }))
}

/// A name without surrounding white space; a blank one is a 422 on `field`.
pub fn trimmed_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(field_error(field, "must not be blank"));
    }
    Ok(name.to_owned())
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: absent → `None`, `null` →
/// `Some(None)`, a value → `Some(Some(value))`.
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// An optional RFC 3339 timestamp in a query string (a `+` decoded as a space is put back).
pub fn rfc3339_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<OffsetDateTime>, D::Error> {
    let Some(text) = Option::<String>::deserialize(de)? else {
        return Ok(None);
    };
    OffsetDateTime::parse(&text.replace(' ', "+"), &Rfc3339)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 timestamp")))
}

/// A 422 on `to` when the range `[from, to)` is reversed.
pub fn check_range(
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<(), ApiError> {
    match (from, to) {
        (Some(from), Some(to)) if from > to => Err(field_error("to", "must not be before `from`")),
        _ => Ok(()),
    }
}

/// A write route's JSON body, extracted without failing: actix runs a handler's extractors
/// concurrently, so a bad body could otherwise be answered (422) before the `Writer` guard
/// (401/403). Take it with [`take_body!`] inside the handler, after the guard passed.
pub type Body<T> = Result<ValidJson<T>, actix_web::Error>;

/// The validated body of a [`Body`], or returns its error response from the handler.
macro_rules! take_body {
    ($body:expr) => {
        match $body {
            Ok(body) => body.into_inner(),
            Err(err) => return Ok(err.error_response()),
        }
    };
}
pub(crate) use take_body;

/// `?page&page_size` as documented in the OpenAPI document (parsed as [`web::PageQuery`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "describes web::PageQuery in the OpenAPI document only"
)]
pub struct PageQueryParams {
    /// 1-based page number (default 1).
    page: Option<u32>,
    /// Items per page, 1–100 (default 20).
    page_size: Option<u32>,
}
