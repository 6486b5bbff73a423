//! The application shell both services share: middleware in a fixed order, extractor settings,
//! `/health`, `/metrics`, and the envelope for unknown routes.

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};

use crate::config::{CorsConfig, ServerConfig, TlsConfig};
use crate::error::{ApiError, ErrorCode};
use crate::health::{Health, health};
use crate::request::{TrustedProxies, request_context};

/// What the shell needs, built once per process and cloned into every worker.
#[derive(Clone)]
pub struct Shell {
    metrics: PrometheusMetrics,
    cors: CorsConfig,
    health: web::Data<Health>,
    json_limit: usize,
    proxies: TrustedProxies,
}

impl Shell {
    /// Builds the shell; `namespace` prefixes the Prometheus metric names (`cloud_api`).
    pub fn new(
        namespace: &str,
        server: &ServerConfig,
        cors: CorsConfig,
        health: Health,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let metrics = PrometheusMetricsBuilder::new(namespace)
            .endpoint("/metrics")
            .mask_unmatched_patterns("unmatched")
            .build()?;
        Ok(Self {
            metrics,
            cors,
            health: web::Data::new(health),
            json_limit: server.json_limit_bytes,
            proxies: TrustedProxies::new(&server.trusted_proxies),
        })
    }

    /// The Prometheus registry, for services that add metrics of their own.
    pub fn registry(&self) -> &prometheus::Registry {
        &self.metrics.registry
    }
}

/// The application: the service's routes (`configure`) inside the shared shell.
///
/// Middleware order, outermost first: request context (id, span, envelope) → CORS → metrics.
pub fn app(
    shell: Shell,
    configure: impl FnOnce(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = cors(&shell.cors);
    App::new()
        .app_data(shell.health)
        .app_data(shell.proxies)
        .configure(|cfg| crate::extract::configure_extractors(cfg, shell.json_limit))
        .route("/health", web::get().to(health))
        .configure(configure)
        .default_service(web::to(fallback))
        .wrap(shell.metrics)
        .wrap(cors)
        .wrap(from_fn(request_context))
}

/// Answers what no route handled. actix runs the app's default service both for an unknown
/// path and for a known path with no route for the method; the resource map tells them apart.
async fn fallback(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(if req.resource_map().has_resource(req.path()) {
        ApiError::with_message(
            ErrorCode::MethodNotAllowed,
            format!("{} is not allowed on {}.", req.method(), req.path()),
        )
    } else {
        ApiError::not_found("route")
    })
}

fn cors(config: &CorsConfig) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("x-api-key"),
            header::HeaderName::from_static("x-timestamp"),
            header::HeaderName::from_static("x-nonce"),
            header::HeaderName::from_static("x-signature"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("x-execution-id"),
            header::RETRY_AFTER,
        ])
        .max_age(config.max_age_secs);
    for origin in &config.allowed_origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// Binds and runs `factory`'s app. On SIGTERM it stops accepting connections and lets in-flight
/// requests finish (up to `shutdown_timeout_secs`) before returning; SIGINT (Ctrl-C) and SIGQUIT
/// stop at once, as actix-server does.
pub async fn serve<F, A, B>(server: &ServerConfig, factory: F) -> std::io::Result<()>
where
    F: Fn() -> App<A> + Send + Clone + 'static,
    A: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let http = HttpServer::new(factory).shutdown_timeout(server.shutdown_timeout_secs);
    let address = (server.host.as_str(), server.port);
    let mut http = match &server.tls {
        None => http.bind(address)?,
        Some(tls) => http.bind_rustls_0_23(address, tls_config(tls)?)?,
    };
    if server.workers > 0 {
        http = http.workers(server.workers);
    }
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(host = %server.host, port = server.port, scheme, "listening on {scheme}://{}:{}", server.host, server.port);
    http.run().await
}

/// The rustls server configuration of `[server.tls]`: TLS 1.2 and 1.3, HTTP/1.1 by
/// ALPN. A missing or unreadable file, or a key that does not match the certificate, stops the
/// start with an error naming the file.
pub fn tls_config(tls: &TlsConfig) -> std::io::Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let invalid = |file: &std::path::Path, err: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("server.tls: {}: {err}", file.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| invalid(&tls.cert_file, &err))?;
    if certs.is_empty() {
        return Err(invalid(&tls.cert_file, &"no certificate in the file"));
    }
    let key =
        PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|err| invalid(&tls.key_file, &err))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(&tls.cert_file, &err))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| invalid(&tls.key_file, &err))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
