//! The HTTP shell on harness routes: every failure gets the envelope with the right status, the
//! request id travels in and out, and `/health` follows PostgreSQL down and back up.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, test, web as aw};
use db::testing::TestDatabase;
use serde::Deserialize;
use serde_json::{Value, json};
use web::config::{CorsConfig, ServerConfig};
use web::{ApiError, ErrorCode, Health, PageQuery, Shell, ValidJson, ValidQuery};

#[derive(Debug, Deserialize, garde::Validate)]
struct Greeting {
    #[garde(length(min = 1, max = 10))]
    name: String,
}

async fn greet(body: ValidJson<Greeting>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "hello": body.name }))
}

async fn item(id: aw::Path<uuid::Uuid>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "id": id.into_inner() }))
}

async fn list(page: ValidQuery<PageQuery>) -> HttpResponse {
    HttpResponse::Ok().json(page.page(vec![1, 2], 2))
}

async fn broken() -> Result<HttpResponse, ApiError> {
    Err(ApiError::internal(std::io::Error::other(
        "secret connection string leaked",
    )))
}

async fn busy() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::RateLimited).retry_after(7))
}

fn server() -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        workers: 1,
        shutdown_timeout_secs: 1,
        json_limit_bytes: 256,
        trusted_proxies: vec![],
        tls: None,
    }
}

fn shell(health: Health) -> Shell {
    let cors = CorsConfig {
        allowed_origins: vec!["https://console.example".into()],
        max_age_secs: 60,
    };
    // A fresh registry per test: metric names would clash in one shared registry.
    Shell::new("test", &server(), cors, health).expect("shell")
}

macro_rules! harness {
    ($health:expr) => {
        test::init_service(web::app(shell($health), |cfg| {
            cfg.route("/greet", aw::post().to(greet))
                .route("/items/{id}", aw::get().to(item))
                .route("/items", aw::get().to(list))
                .route("/broken", aw::get().to(broken))
                .route("/busy", aw::get().to(busy));
        }))
        .await
    };
}

fn no_checks() -> Health {
    Health::new(Duration::from_millis(500))
}

async fn envelope(
    resp: actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
) -> (StatusCode, Value, Option<HeaderValue>) {
    let status = resp.status();
    let request_id = resp.headers().get("x-request-id").cloned();
    let body: Value = test::read_body_json(resp).await;
    (status, body, request_id)
}

fn assert_envelope(body: &Value, code: &str, request_id: Option<&HeaderValue>) {
    assert_eq!(body["error"], code, "body: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    let header = request_id
        .expect("X-Request-Id header")
        .to_str()
        .expect("ascii");
    assert_eq!(
        body["request_id"], header,
        "the body's request id is the header's"
    );
}

#[actix_web::test]
async fn malformed_json_is_400_with_the_envelope() {
    let app = harness!(no_checks());
    let req = test::TestRequest::post()
        .uri("/greet")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{\"name\": ")
        .to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&body, "invalid_json", id.as_ref());
}

#[actix_web::test]
async fn wrong_shape_and_failed_rules_are_422_with_field_details() {
    let app = harness!(no_checks());
    let req = test::TestRequest::post()
        .uri("/greet")
        .set_json(json!({"nom": "x"}))
        .to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_envelope(&body, "validation_failed", id.as_ref());

    let req = test::TestRequest::post()
        .uri("/greet")
        .set_json(json!({"name": ""}))
        .to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_envelope(&body, "validation_failed", id.as_ref());
    assert!(
        body["details"]["name"].is_array(),
        "field errors keyed by field: {body}"
    );
}

#[actix_web::test]
async fn wrong_content_type_is_415_and_oversized_body_is_413() {
    let app = harness!(no_checks());
    let req = test::TestRequest::post()
        .uri("/greet")
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload("{\"name\": \"a\"}")
        .to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_envelope(&body, "unsupported_media_type", id.as_ref());

    let req = test::TestRequest::post()
        .uri("/greet")
        .set_json(json!({"name": "x".repeat(1000)}))
        .to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_envelope(&body, "payload_too_large", id.as_ref());
}

#[actix_web::test]
async fn bad_path_parameter_is_400() {
    let app = harness!(no_checks());
    let req = test::TestRequest::get()
        .uri("/items/not-a-uuid")
        .to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&body, "invalid_path_parameter", id.as_ref());
}

#[actix_web::test]
async fn bad_query_parameter_is_400_and_out_of_range_is_422() {
    let app = harness!(no_checks());
    let req = test::TestRequest::get().uri("/items?page=abc").to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_envelope(&body, "invalid_query", id.as_ref());

    let req = test::TestRequest::get()
        .uri("/items?page_size=101")
        .to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_envelope(&body, "validation_failed", id.as_ref());
    assert!(body["details"]["page_size"].is_array(), "{body}");

    let req = test::TestRequest::get()
        .uri("/items?page=2&page_size=5")
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        body,
        json!({"items": [1, 2], "page": 2, "page_size": 5, "total": 2})
    );
}

#[actix_web::test]
async fn unknown_route_is_404_and_wrong_method_is_405() {
    let app = harness!(no_checks());
    let req = test::TestRequest::get().uri("/nowhere").to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_envelope(&body, "not_found", id.as_ref());

    let req = test::TestRequest::delete().uri("/greet").to_request();
    let (status, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_envelope(&body, "method_not_allowed", id.as_ref());
}

#[actix_web::test]
async fn internal_errors_carry_no_internal_text() {
    let app = harness!(no_checks());
    let req = test::TestRequest::get().uri("/broken").to_request();
    let resp = test::call_service(&app, req).await;
    let (status, body, id) = envelope(resp).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_envelope(&body, "internal_error", id.as_ref());
    assert!(
        !body.to_string().contains("secret"),
        "the cause leaked: {body}"
    );
}

#[actix_web::test]
async fn rate_limited_answers_retry_after() {
    let app = harness!(no_checks());
    let resp = test::call_service(&app, test::TestRequest::get().uri("/busy").to_request()).await;
    assert_eq!(
        resp.headers()
            .get(header::RETRY_AFTER)
            .map(HeaderValue::as_bytes),
        Some(&b"7"[..])
    );
    let (status, body, id) = envelope(resp).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_envelope(&body, "rate_limited", id.as_ref());
}

#[actix_web::test]
async fn a_valid_client_request_id_is_kept_and_an_invalid_one_replaced() {
    let app = harness!(no_checks());
    let req = test::TestRequest::get()
        .uri("/nowhere")
        .insert_header(("x-request-id", "trace-42.a_b"))
        .to_request();
    let (_, body, id) = envelope(test::call_service(&app, req).await).await;
    assert_eq!(
        id.as_ref().map(HeaderValue::as_bytes),
        Some(&b"trace-42.a_b"[..])
    );
    assert_eq!(body["request_id"], "trace-42.a_b");

    let req = test::TestRequest::get()
        .uri("/items?page=1")
        .insert_header(("x-request-id", "bad id!"))
        .to_request();
    let resp = test::call_service(&app, req).await;
    let id = resp
        .headers()
        .get("x-request-id")
        .expect("header")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(id, "bad id!");
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "a generated id is a UUID: {id}"
    );
}

#[actix_web::test]
async fn cors_preflight_allows_configured_origin_and_signing_headers() {
    let app = harness!(no_checks());
    let req = test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/greet")
        .insert_header((header::ORIGIN, "https://console.example"))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
        .insert_header((
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "x-signature, x-api-key, x-timestamp, x-nonce",
        ))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert!(resp.status().is_success(), "preflight: {}", resp.status());
    assert_eq!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(HeaderValue::as_bytes),
        Some(&b"https://console.example"[..])
    );

    let req = test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/greet")
        .insert_header((header::ORIGIN, "https://evil.example"))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[actix_web::test]
async fn metrics_count_requests_per_route() {
    let app = harness!(no_checks());
    for _ in 0..3 {
        test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/items/6f1c7e0c-0000-4000-8000-000000000000")
                .to_request(),
        )
        .await;
    }
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).expect("utf-8");
    assert!(
        text.contains(
            r#"test_http_requests_total{endpoint="/items/{id}",method="GET",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains("test_http_requests_duration_seconds_bucket"),
        "{text}"
    );
}

#[actix_web::test]
async fn health_is_ok_with_a_reachable_database() {
    let db = TestDatabase::new().await;
    let app = harness!(Health::new(Duration::from_secs(2)).with_database(db.pool().clone()));
    let resp = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["status"], "ok");
}

/// PostgreSQL behind a TCP relay the test can cut: health turns 503 while it is cut and back to
/// 200 once it is restored, with the same app and pool.
#[actix_web::test]
async fn health_follows_the_database_down_and_back_up() {
    let db = TestDatabase::new().await;
    let relay = relay::Relay::start(db.url()).await;
    let pool = db::build_pool(&db::PoolConfig {
        acquire_timeout_ms: 500,
        ..db::PoolConfig::new(relay.url())
    })
    .expect("pool");
    let app = harness!(Health::new(Duration::from_secs(2)).with_database(pool));

    let (status, _, _) = health(&app).await;
    assert_eq!(status, StatusCode::OK);

    relay.cut().await;
    let (status, body, retry_after) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert!(retry_after.is_some());

    relay.restore().await;
    let (status, body, _) = health(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn health<S, B>(app: &S) -> (StatusCode, Value, Option<HeaderValue>)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let resp = test::call_service(app, test::TestRequest::get().uri("/health").to_request()).await;
    let status = resp.status();
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let body: Value = test::read_body_json(resp).await;
    (status, body, retry_after)
}

mod relay {
    //! A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused
    //! by closing the listener) and restored on the same port.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Mutex;
    use tokio::task::JoinHandle;

    pub struct Relay {
        addr: SocketAddr,
        target: SocketAddr,
        url: String,
        tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    }

    impl Relay {
        pub async fn start(database_url: &str) -> Self {
            let parsed = url_host_port(database_url);
            let target: SocketAddr = tokio::net::lookup_host(parsed.clone())
                .await
                .expect("resolve")
                .next()
                .expect("address");
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let url = database_url.replacen(&parsed, &addr.to_string(), 1);
            let relay = Self {
                addr,
                target,
                url,
                tasks: Arc::default(),
            };
            relay.serve(listener).await;
            relay
        }

        pub fn url(&self) -> String {
            self.url.clone()
        }

        async fn serve(&self, listener: TcpListener) {
            let target = self.target;
            let tasks = self.tasks.clone();
            let accept = tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    tasks.lock().await.push(pipe);
                }
            });
            self.tasks.lock().await.push(accept);
        }

        pub async fn cut(&self) {
            for task in self.tasks.lock().await.drain(..) {
                task.abort();
                let _ = task.await;
            }
        }

        pub async fn restore(&self) {
            let listener = TcpListener::bind(self.addr)
                .await
                .expect("rebind the same port");
            self.serve(listener).await;
        }
    }

    fn url_host_port(url: &str) -> String {
        let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
        let host_port = after_at.split('/').next().expect("host:port");
        host_port.to_owned()
    }
}
