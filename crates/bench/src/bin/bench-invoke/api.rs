//! The few cloud-api calls the bench makes, over loopback HTTP with reqwest.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::json;

/// The invocation envelope every measured call sends: `{"body": {"n": 1}}`, so the function sees
/// the JSON body `{"n":1}` (the direct baseline sends the same, see `direct::request`).
pub const ENVELOPE: &[u8] = br#"{"body":{"n":1}}"#;

/// One cloud-api replica, with a logged-in user.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    bearer: Option<HeaderValue>,
    signer: Option<std::sync::Arc<signing::Signer>>,
}

/// What one invocation answered.
#[derive(Debug, Clone, Copy)]
pub struct Invoked {
    /// The HTTP status.
    pub status: u16,
    /// Whether the answer names an execution (the platform recorded, or will record, one).
    pub recorded: bool,
    /// The answer's `cold_start`, when it has one.
    pub cold_start: Option<bool>,
    /// `success: true` and the function's own result (`{"ok": true, ...}`).
    pub ok: bool,
}

#[derive(Deserialize)]
struct InvokeAnswer {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default)]
    cold_start: Option<bool>,
    #[serde(default)]
    result: Option<FunctionResult>,
}

#[derive(Deserialize)]
struct FunctionResult {
    #[serde(default)]
    ok: bool,
}

impl Api {
    /// A client of the replica at `base` (`http://127.0.0.1:PORT`). One connection pool per
    /// client, kept alive; no proxy (loopback only).
    pub fn new(base: &str, max_connections: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(max_connections)
            .pool_idle_timeout(Duration::from_secs(300))
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            bearer: None,
            signer: None,
        })
    }

    /// The same client, invoking with signature v1 of `signer` instead of the bearer token.
    pub fn signed(&self, signer: signing::Signer) -> Self {
        Self {
            bearer: None,
            signer: Some(std::sync::Arc::new(signer)),
            ..self.clone()
        }
    }

    /// `POST /api/apikey/generate` (validity 1d) → the key id and its secret.
    pub async fn generate_key(&self, function: &str) -> Result<(String, String)> {
        let answer = self
            .json(
                "generate API key",
                self.http
                    .post(self.url("/api/apikey/generate"))
                    .json(&json!({"function_id": function, "validity": "1d", "name": "bench"})),
            )
            .await?;
        let key = &answer["api_key"];
        match (key["uuid"].as_str(), key["secret_key"].as_str()) {
            (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
            _ => bail!("generate answered without uuid and secret_key"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.bearer {
            Some(bearer) => request.header(AUTHORIZATION, bearer.clone()),
            None => request,
        }
    }

    /// Sends `request` and returns the JSON body of a 2xx answer; anything else is an error that
    /// names `what`, the status and the body.
    async fn json(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value> {
        let response = self
            .authed(request)
            .send()
            .await
            .with_context(|| format!("{what}: no answer from {}", self.base))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("{what}: reading the answer"))?;
        if !status.is_success() {
            bail!(
                "{what} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        if body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&body).with_context(|| format!("{what}: the answer is not JSON"))
    }

    /// Waits (bounded) until `GET /health` answers 200.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let answered = self.http.get(self.url("/health")).send().await;
            if answered.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{} does not answer GET /health with 200", self.base);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /api/auth/register`.
    pub async fn register(&self, email: &str, password: &str) -> Result<()> {
        let body = json!({
            "email": email, "password": password, "first_name": "Invoke", "last_name": "Bench",
        });
        self.json(
            "register",
            self.http.post(self.url("/api/auth/register")).json(&body),
        )
        .await
        .map(drop)
    }

    /// `POST /api/auth/login`; later calls carry the access token (it lives 5 minutes: log in
    /// again before each phase).
    pub async fn login(&mut self, email: &str, password: &str) -> Result<()> {
        let body = json!({"email": email, "password": password});
        let answer = self
            .json(
                "login",
                self.http.post(self.url("/api/auth/login")).json(&body),
            )
            .await?;
        let token = answer["access_token"]
            .as_str()
            .context("login answered without an access_token")?;
        self.bearer = Some(
            HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the token is not a header value")?,
        );
        Ok(())
    }

    /// `POST /api/functions/init` → the new function's id.
    pub async fn init_function(&self, name: &str) -> Result<String> {
        let answer = self
            .json(
                "init",
                self.http
                    .post(self.url("/api/functions/init"))
                    .json(&json!({"name": name})),
            )
            .await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .context("init answered without an id")
    }

    /// `POST /api/functions/deploy?wait=true` of a tar.gz: returns once the version is active.
    pub async fn deploy(&self, function: &str, archive: Vec<u8>) -> Result<()> {
        let part = reqwest::multipart::Part::bytes(archive)
            .file_name("function.tar.gz")
            .mime_str("application/gzip")?;
        let form = reqwest::multipart::Form::new()
            .text("function_id", function.to_owned())
            .part("archive", part);
        let answer = self
            .json(
                "deploy",
                self.http
                    .post(self.url("/api/functions/deploy?wait=true"))
                    .multipart(form),
            )
            .await?;
        let status = answer["status"].as_str().unwrap_or_default();
        if status != "active" {
            bail!("the deploy of {function} ended {status:?}: {answer}");
        }
        Ok(())
    }

    /// `POST /api/functions/{id}/invoke` with [`ENVELOPE`]. An answer that is not HTTP at all is
    /// an error; any HTTP status is an [`Invoked`].
    pub async fn invoke(&self, url: &str) -> Result<Invoked> {
        let mut request = self
            .authed(self.http.post(url))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(signer) = &self.signer {
            // The request target as sent: the URL without scheme and authority.
            let target = url
                .strip_prefix(&self.base)
                .context("the invoke URL is not on this replica")?;
            for (name, value) in signer.sign_v1_now("POST", target, ENVELOPE).pairs() {
                request = request.header(name, value);
            }
        }
        let response = request.body(ENVELOPE).send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        let answer: Option<InvokeAnswer> = serde_json::from_slice(&body).ok();
        Ok(Invoked {
            status,
            recorded: answer.as_ref().is_some_and(|a| a.execution_id.is_some()),
            cold_start: answer.as_ref().and_then(|a| a.cold_start),
            ok: answer.is_some_and(|a| a.success && a.result.is_some_and(|r| r.ok)),
        })
    }

    /// The URL [`Api::invoke`] takes for `function`.
    pub fn invoke_url(&self, function: &str) -> String {
        self.url(&format!("/api/functions/{function}/invoke"))
    }

    /// `GET /api/functions/{id}/executions` → its `total`.
    pub async fn executions_total(&self, function: &str) -> Result<i64> {
        let answer = self
            .json(
                "executions",
                self.http.get(self.url(&format!(
                    "/api/functions/{function}/executions?page=1&page_size=1"
                ))),
            )
            .await?;
        answer["total"]
            .as_i64()
            .context("the executions page has no total")
    }
}
