//! Image builds, inspection, listing and removal.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::Method;
use podman_api::opts::{ImageListFilter, ImageListOpts};
use time::OffsetDateTime;

use super::http::{Body, error_message, status_error, with_timeout};
use super::{ImageRef, Podman, context};
use crate::error::{Error, Resource, Result};

/// The network the `RUN` steps of a build get. Never Podman's bridge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BuildNetwork {
    /// No network (only loopback): the default; nothing is fetched.
    #[default]
    None,
    /// The host's network, for a step that must reach a package registry
    /// (`pip install -r requirements.txt`).
    Host,
}

impl BuildNetwork {
    /// The libpod build endpoint (4.3) takes the network of `RUN` steps from `networkmode` as
    /// buildah's numeric policy (1 disabled, 2 enabled) together with `nsoptions`; the strings
    /// `none`/`host` are silently ignored and the steps then share the HOST's network namespace
    /// (seen here: `RUN ls /sys/class/net` listed eth0). These are the values `podman build
    /// --network none|host` sends.
    fn query_pairs(self) -> [(&'static str, &'static str); 2] {
        match self {
            Self::None => [
                ("networkmode", "1"),
                (
                    "nsoptions",
                    r#"[{"Name":"network","Host":false,"Path":""}]"#,
                ),
            ],
            Self::Host => [
                ("networkmode", "2"),
                ("nsoptions", r#"[{"Name":"network","Host":true,"Path":""}]"#),
            ],
        }
    }
}

/// What to build: a context directory holding a Containerfile, and the tag to give the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The context directory; everything in it is sent to Podman.
    pub context: PathBuf,
    /// The recipe's path inside the context; `None` lets Podman look for `Containerfile`, then
    /// `Dockerfile`.
    pub containerfile: Option<String>,
    /// The tag of the built image.
    pub tag: ImageRef,
    /// The network of `RUN` steps.
    pub network: BuildNetwork,
    /// Labels set on the image.
    pub labels: BTreeMap<String, String>,
    /// `ARG` values.
    pub build_args: BTreeMap<String, String>,
    /// Build every step again instead of reusing cached layers.
    pub no_cache: bool,
}

impl BuildSpec {
    /// A build of `context` tagged `tag`, without network, with the layer cache.
    pub fn new(context: impl Into<PathBuf>, tag: ImageRef) -> Self {
        Self {
            context: context.into(),
            containerfile: None,
            tag,
            network: BuildNetwork::None,
            labels: BTreeMap::new(),
            build_args: BTreeMap::new(),
            no_cache: false,
        }
    }

    fn query(&self) -> Result<String> {
        let json = |field, map: &BTreeMap<String, String>| {
            serde_json::to_string(map).map_err(|e| Error::InvalidSpec {
                field,
                reason: e.to_string(),
            })
        };
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("t", self.tag.as_str())
            // Without an output format the endpoint reuses no cached layer at all (every step
            // runs again on every build); this is the format `podman build` sends.
            .append_pair("outputformat", "application/vnd.oci.image.manifest.v1+json")
            .append_pair("layers", "true")
            .append_pair("rm", "true")
            .append_pair("nocache", if self.no_cache { "true" } else { "false" });
        q.extend_pairs(self.network.query_pairs());
        if let Some(file) = &self.containerfile {
            q.append_pair("dockerfile", file);
        }
        if !self.labels.is_empty() {
            q.append_pair("labels", &json("labels", &self.labels)?);
        }
        if !self.build_args.is_empty() {
            q.append_pair("buildargs", &json("build_args", &self.build_args)?);
        }
        Ok(q.finish())
    }
}

/// A successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image id (64 hex digits).
    pub id: String,
    /// The manifest digest (`sha256:…`), when Podman reports one.
    pub digest: Option<String>,
    /// The tag it was given.
    pub tag: ImageRef,
    /// The build output (capped at `build_log_limit_bytes`, the tail kept).
    pub log: String,
    /// How long the build took, context packing included.
    pub duration: Duration,
}

/// An image as inspected or listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (64 hex digits).
    pub id: String,
    /// The manifest digest (`sha256:…`), when known.
    pub digest: Option<String>,
    /// Its names (`localhost/NAME:TAG`).
    pub names: Vec<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Size in bytes.
    pub size: u64,
    /// Creation time, when known.
    pub created: Option<OffsetDateTime>,
}

/// Which images [`Podman::list_images`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilter {
    /// Only images carrying all of these labels with these values (evaluated by Podman).
    pub labels: BTreeMap<String, String>,
    /// Only images with a name starting with this prefix, e.g. `localhost/fn-`.
    pub name_prefix: Option<String>,
}

/// The build log, capped: past `limit` bytes the oldest output is dropped.
struct BuildLog {
    text: String,
    limit: usize,
    dropped: bool,
}

impl BuildLog {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        if self.text.len() > self.limit.saturating_mul(2) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.text.len() <= self.limit {
            return;
        }
        let mut cut = self.text.len() - self.limit;
        while !self.text.is_char_boundary(cut) {
            cut += 1;
        }
        // Start at a line if one begins soon after the cut.
        if let Some(nl) = self.text[cut..].find('\n').filter(|&n| n < 200) {
            cut += nl + 1;
        }
        self.text.drain(..cut);
        self.dropped = true;
    }

    fn finish(mut self) -> String {
        self.trim();
        if self.dropped {
            self.text.insert_str(0, "[earlier build output dropped]\n");
        }
        self.text
    }
}

/// One line of libpod's build stream.
#[derive(serde::Deserialize)]
struct BuildLine {
    stream: Option<String>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(serde::Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

fn labels(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

fn size(bytes: Option<i64>) -> u64 {
    bytes.and_then(|b| u64::try_from(b).ok()).unwrap_or(0)
}

impl Podman {
    /// Builds an image from `spec.context` (`POST /libpod/build`) and tags it `spec.tag`.
    /// Packs the context (uncompressed, links kept as links), streams the build output into the
    /// log, and inspects the result for its id and digest. No request timeout applies: wrap the
    /// call in the caller's deadline.
    ///
    /// # Errors
    /// [`Error::BuildFailed`] with the log when a step fails or the base image is missing;
    /// [`Error::Context`] when the context cannot be read; [`Error::Unreachable`], [`Error::Api`].
    pub async fn build_image(&self, spec: &BuildSpec) -> Result<BuiltImage> {
        // Podman 4.3's layer-cache lookup can trip over a layer that a concurrent `rmi` (of an
        // unrelated image sharing the base) is removing: the build fails at once with "layer not
        // known" before running any step of ours. That is the engine's race, not the function's
        // fault, so such a build is tried again (twice at most) instead of failing the deploy.
        let mut attempt = 0;
        loop {
            match self.build_image_once(spec).await {
                Err(Error::BuildFailed { message, .. })
                    if attempt < 2 && message.contains("layer not known") =>
                {
                    attempt += 1;
                    tracing::warn!(tag = spec.tag.as_str(), %message, "retrying a build that hit a storage race");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    async fn build_image_once(&self, spec: &BuildSpec) -> Result<BuiltImage> {
        const OP: &str = "build image";
        let started = Instant::now();
        let query = spec.query()?;
        let dir = spec.context.clone();
        let tar = tokio::task::spawn_blocking(move || context::pack(&dir))
            .await
            .map_err(|e| Error::Context {
                path: spec.context.clone(),
                source: std::io::Error::other(e),
            })??;

        let response = self
            .http
            .send(
                Method::POST,
                &format!("/libpod/build?{query}"),
                Body::Tar(tar),
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.http.read_body(response).await?;
            // 4xx: the build could not begin with this context (no Containerfile, bad
            // parameters): a failed build like any other. 5xx: Podman's own trouble.
            if status.is_client_error() {
                let (_, message) = error_message(&body);
                let log = format!("{message}\n");
                return Err(Error::BuildFailed { message, log });
            }
            return Err(status_error(
                OP,
                Resource::Image,
                spec.tag.as_str(),
                status,
                &body,
            ));
        }

        let mut log = BuildLog {
            text: String::new(),
            limit: self.config.build_log_limit_bytes.max(1024),
            dropped: false,
        };
        let mut failure: Option<String> = None;
        let mut pending: Vec<u8> = Vec::new();
        let mut last_stream = String::new();
        let mut body = response.into_body();
        let mut handle_line = |line: &[u8], log: &mut BuildLog| {
            if line.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            match serde_json::from_slice::<BuildLine>(line) {
                Ok(BuildLine {
                    stream: Some(s), ..
                }) => {
                    log.push(&s);
                    if !s.trim().is_empty() {
                        s.trim().clone_into(&mut last_stream);
                    }
                }
                Ok(BuildLine {
                    error,
                    error_detail,
                    ..
                }) => {
                    let message = error_detail
                        .and_then(|d| d.message)
                        .or(error)
                        .unwrap_or_else(|| String::from_utf8_lossy(line).into_owned());
                    log.push(&message);
                    if !message.ends_with('\n') {
                        log.push("\n");
                    }
                    failure.get_or_insert_with(|| message.trim().to_owned());
                }
                Err(_) => {
                    log.push(&String::from_utf8_lossy(line));
                    log.push("\n");
                }
            }
        };
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Unreachable {
                socket: self.socket().to_path_buf(),
                source: Box::new(e),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                handle_line(&line, &mut log);
            }
        }
        handle_line(&pending, &mut log);

        if let Some(message) = failure {
            return Err(Error::BuildFailed {
                message,
                log: log.finish(),
            });
        }
        let log = log.finish();
        let image = self.inspect_image(spec.tag.as_str()).await?.ok_or_else(|| Error::Protocol {
            operation: OP,
            reason: format!("the build ended without error but {} does not exist (last output: {last_stream})", spec.tag),
        })?;
        Ok(BuiltImage {
            id: image.id,
            digest: image.digest,
            tag: spec.tag.clone(),
            log,
            duration: started.elapsed(),
        })
    }

    /// Inspects an image by name or id; `None` when it does not exist.
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`].
    pub async fn inspect_image(&self, name: &str) -> Result<Option<ImageInfo>> {
        const OP: &str = "inspect image";
        // Podman 4.3 sometimes answers an inspect that races a concurrent build or removal with
        // a 500 "invalid memory address or nil pointer dereference" (a panic it recovered from).
        // Inspecting is a read, so it is asked again (twice at most) rather than failing a
        // deploy whose image was built fine.
        let mut attempt = 0;
        let data = loop {
            let result = with_timeout(OP, self.request_timeout(), async {
                self.api
                    .images()
                    .get(name)
                    .inspect()
                    .await
                    .map_err(|e| self.api_error(OP, Resource::Image, name, e))
            })
            .await;
            match result {
                Ok(data) => break data,
                Err(e) if e.is_not_found() => return Ok(None),
                Err(Error::Api {
                    status: 500,
                    ref message,
                    ..
                }) if attempt < 2 && message.contains("nil pointer dereference") => {
                    attempt += 1;
                    tracing::warn!(image = name, %message, "retrying an inspect Podman panicked on");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Some(ImageInfo {
            id: data.id.unwrap_or_default(),
            digest: data.digest.filter(|d| !d.is_empty()),
            names: data.repo_tags.unwrap_or_default(),
            labels: labels(data.labels),
            size: size(data.size),
            created: data
                .created
                .and_then(|c| OffsetDateTime::from_unix_timestamp(c.timestamp()).ok()),
        }))
    }

    /// Lists images (`GET /libpod/images/json`): label filters are applied by Podman, the name
    /// prefix here.
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`].
    pub async fn list_images(&self, filter: &ImageFilter) -> Result<Vec<ImageInfo>> {
        const OP: &str = "list images";
        let opts = ImageListOpts::builder()
            .filter(
                filter
                    .labels
                    .iter()
                    .map(|(k, v)| ImageListFilter::LabelKeyVal(k.clone(), v.clone())),
            )
            .build();
        let list = with_timeout(OP, self.request_timeout(), async {
            self.api
                .images()
                .list(&opts)
                .await
                .map_err(|e| self.api_error(OP, Resource::Image, "*", e))
        })
        .await?;
        let prefix = filter.name_prefix.as_deref().unwrap_or("");
        Ok(list
            .into_iter()
            .filter_map(|image| {
                let names = image.names.unwrap_or_default();
                (prefix.is_empty() || names.iter().any(|n| n.starts_with(prefix))).then(|| {
                    ImageInfo {
                        id: image.id.unwrap_or_default(),
                        digest: image.digest.filter(|d| !d.is_empty()),
                        names,
                        labels: labels(image.labels),
                        size: size(image.size),
                        created: image
                            .created
                            .and_then(|c| OffsetDateTime::from_unix_timestamp(c).ok()),
                    }
                })
            })
            .collect())
    }

    /// Removes an image by name or id. Idempotent: an image that does not exist is `Ok(false)`.
    /// Without `force`, an image used by a container is not removed ([`Error::Conflict`]); with
    /// it, such containers are removed too.
    ///
    /// # Errors
    /// [`Error::Conflict`], [`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`].
    pub async fn remove_image(&self, name: &str, force: bool) -> Result<bool> {
        const OP: &str = "remove image";
        let result = with_timeout(OP, self.request_timeout(), async {
            let image = self.api.images().get(name);
            let removed = if force {
                image.remove().await
            } else {
                image.delete().await
            };
            removed.map_err(|e| self.api_error(OP, Resource::Image, name, e))
        })
        .await;
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_log_keeps_its_tail() {
        let mut log = BuildLog {
            text: String::new(),
            limit: 1024,
            dropped: false,
        };
        for i in 0..1000 {
            log.push(&format!("line {i}\n"));
        }
        let text = log.finish();
        assert!(
            text.starts_with("[earlier build output dropped]\nline "),
            "{}",
            &text[..60]
        );
        assert!(text.ends_with("line 999\n"));
        assert!(text.len() <= 1024 + 40);
    }

    #[test]
    fn the_build_query_is_encoded() {
        let mut spec = BuildSpec::new(
            "/tmp/ctx",
            ImageRef::parse("localhost/fn/a:1").expect("ref"),
        );
        spec.labels
            .insert("containerpub.function".into(), "a b&c".into());
        spec.network = BuildNetwork::Host;
        let q = spec.query().expect("query");
        assert!(q.starts_with("t=localhost%2Ffn%2Fa%3A1&"), "{q}");
        // What `podman build --network host` sends: the numeric policy with nsoptions, and an
        // output format (without which no cached layer is reused).
        assert!(
            q.contains("&networkmode=2&nsoptions=%5B%7B%22Name%22%3A%22network%22%2C%22Host%22%3Atrue%2C%22Path%22%3A%22%22%7D%5D"),
            "{q}"
        );
        assert!(
            q.contains("&outputformat=application%2Fvnd.oci.image.manifest.v1%2Bjson&"),
            "{q}"
        );
        assert!(
            q.contains("labels=%7B%22containerpub.function%22%3A%22a+b%26c%22%7D"),
            "{q}"
        );
    }
}
