//! Extractor configuration and validating extractors: malformed input becomes the envelope with
//! the right status before a handler runs, and `garde` rules run before any work.

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::web::{self, JsonConfig, PathConfig, QueryConfig};
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};

/// Registers the JSON, path and query extractor settings shared by every route.
pub fn configure_extractors(cfg: &mut web::ServiceConfig, json_limit: usize) {
    cfg.app_data(
        JsonConfig::default()
            .limit(json_limit)
            .error_handler(|err, _| json_error(err).into()),
    )
    .app_data(PathConfig::default().error_handler(|err, _| path_error(&err).into()))
    .app_data(QueryConfig::default().error_handler(|err, _| query_error(&err).into()));
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::ContentType => ApiError::with_message(
            ErrorCode::UnsupportedMediaType,
            "Expected a body with Content-Type: application/json.",
        ),
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::with_message(
            ErrorCode::PayloadTooLarge,
            format!("The request body is larger than {limit} bytes."),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::with_message(
            ErrorCode::ValidationFailed,
            format!("The request body does not match this endpoint: {e}."),
        ),
        JsonPayloadError::Deserialize(e) => ApiError::with_message(
            ErrorCode::InvalidJson,
            format!("The request body is not valid JSON: {e}."),
        ),
        other => ApiError::with_message(
            ErrorCode::BadRequest,
            format!("Could not read the request body: {other}."),
        ),
    }
}

fn path_error(err: &PathError) -> ApiError {
    let PathError::Deserialize(e) = err else {
        return ApiError::new(ErrorCode::InvalidPathParameter);
    };
    ApiError::with_message(
        ErrorCode::InvalidPathParameter,
        format!("A path parameter is malformed: {e}."),
    )
}

fn query_error(err: &QueryPayloadError) -> ApiError {
    let QueryPayloadError::Deserialize(e) = err else {
        return ApiError::new(ErrorCode::InvalidQuery);
    };
    ApiError::with_message(
        ErrorCode::InvalidQuery,
        format!("The query string is malformed: {e}."),
    )
}

/// Runs `garde` validation; a failure is a 422 whose `details` maps each field to its messages.
pub fn validate<T: garde::Validate<Context = ()>>(value: T) -> Result<T, ApiError> {
    value.validate().map_err(|report| {
        let mut fields = Map::new();
        for (path, error) in report.iter() {
            let key = path.to_string();
            let key = if key.is_empty() {
                "body".to_owned()
            } else {
                key
            };
            let entry = fields
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(messages) = entry {
                messages.push(Value::String(error.message().to_owned()));
            }
        }
        ApiError::new(ErrorCode::ValidationFailed).details(Value::Object(fields))
    })?;
    Ok(value)
}

macro_rules! validated_extractor {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<T>(pub T);

        impl<T> $name<T> {
            /// The validated value.
            pub fn into_inner(self) -> T {
                self.0
            }
        }

        impl<T> Deref for $name<T> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.0
            }
        }

        impl<T> FromRequest for $name<T>
        where
            T: DeserializeOwned + garde::Validate<Context = ()> + 'static,
        {
            type Error = actix_web::Error;
            type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

            fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
                let inner = <$inner>::from_request(req, payload);
                Box::pin(async move {
                    let value = inner.await?.into_inner();
                    Ok(Self(validate(value)?))
                })
            }
        }
    };
}

validated_extractor!(
    /// A JSON body, deserialized (400/413/415/422 on failure) and then validated (422).
    ValidJson,
    web::Json<T>
);
validated_extractor!(
    /// A query string, deserialized (400 on failure) and then validated (422).
    ValidQuery,
    web::Query<T>
);

/// `?page=1&page_size=20`: page from 1, page size 1–100.
#[derive(Debug, Clone, Copy, Deserialize, garde::Validate, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number.
    #[garde(range(min = 1, max = 1_000_000))]
    #[param(minimum = 1, maximum = 1_000_000, default = 1)]
    pub page: u32,
    /// Items per page, at most 100.
    #[garde(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub page_size: u32,
}

impl Default for PageQuery {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: 20,
        }
    }
}

impl PageQuery {
    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.page_size)
    }

    /// Rows to take.
    pub fn limit(&self) -> i64 {
        i64::from(self.page_size)
    }

    /// The same page for the data layer.
    pub fn db_page(&self) -> db::Page {
        db::Page::new(self.page, self.page_size)
    }

    /// Wraps one page of `items` out of `total`.
    pub fn page<T>(&self, items: Vec<T>, total: i64) -> Page<T> {
        Page {
            items,
            page: self.page,
            page_size: self.page_size,
            total,
        }
    }
}

/// One page of a list: `{"items": […], "page", "page_size", "total"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The page number, from 1.
    pub page: u32,
    /// The page size asked for.
    pub page_size: u32,
    /// How many items there are across all pages.
    pub total: i64,
}
