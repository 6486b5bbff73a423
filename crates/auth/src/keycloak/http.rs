//! HTTP plumbing: the adapter that lets `openidconnect` use the workspace's `reqwest`, and the
//! mapping of Keycloak's answers onto [`Error`].

use std::future::Future;
use std::pin::Pin;

use openidconnect::{AsyncHttpClient, DiscoveryError, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::StatusError;
use crate::{Error, Result};

/// `reqwest` 0.13 behind `openidconnect`'s client trait (its own `reqwest` feature targets 0.12).
pub(crate) struct OidcHttp(pub(crate) reqwest::Client);

/// A failed HTTP exchange under `openidconnect`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OidcHttpError {
    #[error("HTTP request failed")]
    Transport(#[from] reqwest::Error),
    #[error("invalid HTTP response")]
    Http(#[from] openidconnect::http::Error),
}

impl<'c> AsyncHttpClient<'c> for OidcHttp {
    type Error = OidcHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OidcHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = self.0.execute(request).await?;
            let mut builder = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(builder.body(body)?)
        })
    }
}

/// Maps a discovery failure: unreachable or 5xx → unavailable, anything else is configuration.
pub(crate) fn discovery_error(e: DiscoveryError<OidcHttpError>) -> Error {
    match e {
        DiscoveryError::Request(_) => Error::unavailable("discovery", e),
        DiscoveryError::Response(status, _, _) if status.is_server_error() => {
            Error::unavailable("discovery", e)
        }
        DiscoveryError::Parse(_) => Error::response("discovery", e),
        other => Error::Config {
            key: "auth.keycloak.issuer_url",
            reason: other.to_string(),
        },
    }
}

/// An OAuth error body: `{"error": "invalid_grant", "error_description": "…"}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OAuthError {
    #[serde(default)]
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: String,
}

/// Sends a request; transport failures become [`Error::ProviderUnavailable`].
pub(crate) async fn send(
    operation: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    request
        .send()
        .await
        .map_err(|e| Error::unavailable(operation, e.without_url()))
}

/// Reads a JSON body.
pub(crate) async fn json<T: DeserializeOwned>(
    operation: &'static str,
    response: reqwest::Response,
) -> Result<T> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::unavailable(operation, e.without_url()))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::response(operation, e))
}

/// Reads an OAuth error body, or an empty one when it is not JSON.
pub(crate) async fn oauth_error(response: reqwest::Response) -> OAuthError {
    match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => OAuthError::default(),
    }
}

/// The error for an unexpected status: 5xx (and 429) → unavailable, otherwise rejected.
pub(crate) fn status_error(operation: &'static str, status: reqwest::StatusCode) -> Error {
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Error::unavailable(operation, StatusError(status.as_u16()))
    } else {
        Error::ProviderRejected {
            operation,
            status: status.as_u16(),
        }
    }
}
