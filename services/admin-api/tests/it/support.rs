//! The test harness: [`TestApp`] runs the real admin-api (`admin_api::app`) on a free loopback
//! port with its own migrated database and data directory, and hands out admin tokens:
//! [`TestApp::full_admin_token`] and [`TestApp::viewer_token`].
//!
//! Built-in mode (the default): the two admins are platform users whose `admin_role` is set (as
//! `admin-api create-admin` does), and their tokens come from a built-in admin-api session.
//! Keycloak mode: the realm's `dev-admin` / `dev-viewer` log in through the `admin-api` client.
//! Tests that need Keycloak or SMTP skip locally when the service is missing, and FAIL when `CI`
//! is set. Overrides: `CP_KEYCLOAK_ISSUER`, `CP_SMTP_PORT`, `CP_LOCAL`.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::HttpServer;
use actix_web::dev::ServerHandle;
use admin_api::config::{Config, ProviderKind};
use admin_api::{AppState, app};
use auth::builtin::{BuiltinProvider, SessionMeta};
use db::testing::TestDatabase;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Whether this is a CI run (a missing service is then a failure, never a skip).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A missing service: a failure in CI, a printed notice (and `false`: skip) elsewhere.
pub fn missing(service: &str, why: &str, start: &str) -> bool {
    assert!(
        !in_ci(),
        "CI is set and {service} is unavailable: {why} (start it with `{start}`)"
    );
    eprintln!("NOTICE: skipping, {service} is unavailable: {why}. Run `{start}` to run this test.");
    false
}

/// An email address no other test (or run) uses.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.test", uuid::Uuid::new_v4().simple())
}

// ---------------------------------------------------------------------------------------------
// Keycloak, SMTP and the maildir

/// The realm's issuer.
pub fn keycloak_issuer() -> String {
    env_or(
        "CP_KEYCLOAK_ISSUER",
        "http://127.0.0.1:8180/realms/containerpub",
    )
}

/// Whether the realm answers. When it does not: panics in CI, prints a notice elsewhere.
pub async fn keycloak_available() -> bool {
    let config = auth::keycloak::KeycloakConfig::new(
        keycloak_issuer(),
        "admin-api",
        SecretString::from("admin-api-secret".to_owned()),
    );
    match auth::keycloak::Keycloak::discover(config).await {
        Ok(_) => true,
        Err(e) if e.is_unavailable() => missing(
            "Keycloak",
            &format!("{}: {e}", keycloak_issuer()),
            "deploy/keycloak.sh start",
        ),
        Err(e) => panic!("Keycloak discovery failed: {e:?}"),
    }
}

/// The local SMTP server's port and maildir.
#[derive(Clone, Debug)]
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// The SMTP server of `deploy/smtp.sh`.
pub fn smtp() -> Result<Smtp, String> {
    static SMTP: OnceLock<Result<Smtp, String>> = OnceLock::new();
    SMTP.get_or_init(|| {
        let port = match std::env::var("CP_SMTP_PORT") {
            Ok(p) => p
                .parse()
                .map_err(|_| format!("CP_SMTP_PORT={p} is not a port"))?,
            Err(_) => 2525,
        };
        let local = std::env::var_os("CP_LOCAL")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".local"));
        if !accepts(port) {
            return Err(format!("nothing answers on 127.0.0.1:{port}"));
        }
        Ok(Smtp {
            port,
            maildir: local.join("mail"),
        })
    })
    .clone()
}

/// Whether the SMTP server runs. When it does not: panics in CI, prints a notice elsewhere.
pub fn smtp_available() -> bool {
    match smtp() {
        Ok(_) => true,
        Err(why) => missing("the SMTP test server", &why, "deploy/smtp.sh start"),
    }
}

/// A received message, decoded.
#[derive(Debug)]
pub struct Mail {
    pub subject: String,
    pub text: String,
}

fn find_message(maildir: &Path, recipient: &str) -> Option<Vec<u8>> {
    let needle = format!("X-RcptTo: {recipient}");
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(raw) = std::fs::read(entry.path()) else {
                continue;
            };
            let header_end = raw
                .windows(2)
                .position(|w| w == b"\n\n")
                .unwrap_or(raw.len());
            if String::from_utf8_lossy(&raw[..header_end])
                .lines()
                .any(|l| l.trim_end().eq_ignore_ascii_case(&needle))
            {
                return Some(raw);
            }
        }
    }
    None
}

/// Waits (up to 15 s) for the message to `recipient`.
pub async fn wait_for_mail(recipient: &str) -> Mail {
    let smtp = smtp().expect("the SMTP server (check smtp_available first)");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(raw) = find_message(&smtp.maildir, recipient) {
            let message = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("a parseable message");
            return Mail {
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message
                    .body_text(0)
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
            };
        }
        assert!(
            Instant::now() < deadline,
            "no mail for {recipient} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether any message to `recipient` has arrived.
pub fn has_mail(recipient: &str) -> bool {
    smtp().is_ok_and(|s| find_message(&s.maildir, recipient).is_some())
}

/// A fixed HS256 key for the built-in provider (base64 of 32 bytes), so the test can mint
/// sessions the app accepts.
pub const SIGNING_KEY: &str = "YWRtaW4tYXBpLXRlc3Qtc2lnbmluZy1rZXktMzJieXRlcyE=";

/// The database and data directory of one app.
struct Shared {
    config: Config,
    db: TestDatabase,
    _data_dir: tempfile::TempDir,
}

type Tweak = Box<dyn FnOnce(&mut Config)>;

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    provider: ProviderKind,
    tweaks: Vec<Tweak>,
}

impl TestAppBuilder {
    /// Changes the configuration before the app is built.
    pub fn configure(mut self, tweak: impl FnOnce(&mut Config) + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Starts the app on a fresh database.
    pub async fn start(self) -> TestApp {
        let db = TestDatabase::new().await;
        let data_dir = tempfile::tempdir().expect("a temporary data directory");
        let mut config = Config::load(None).expect("the default configuration");
        config.base.database.url = SecretString::from(db.url().to_owned());
        config.base.database.max_connections = 8;
        config.paths.data_dir = data_dir.path().to_owned();
        config.auth.provider = self.provider;
        config.auth.builtin.signing_key = SecretString::from(SIGNING_KEY.to_owned());
        config.auth.keycloak.issuer_url = env_or(
            "CP_KEYCLOAK_ISSUER",
            "http://127.0.0.1:8180/realms/containerpub",
        );
        config.email.file_dir = data_dir.path().join("mail");
        if let Ok(smtp) = smtp() {
            config.email.smtp = Some(email::SmtpConfig::plain("127.0.0.1", smtp.port));
        }
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        let shared = Arc::new(Shared {
            config,
            db,
            _data_dir: data_dir,
        });
        TestApp::launch(shared).await
    }
}

/// One running admin-api, with an HTTP client aimed at it.
pub struct TestApp {
    /// The app's state.
    pub state: AppState,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    client: reqwest::Client,
    server: ServerHandle,
    shared: Arc<Shared>,
}

impl TestApp {
    /// An app with the built-in provider.
    pub fn builtin() -> TestAppBuilder {
        TestAppBuilder {
            provider: ProviderKind::Builtin,
            tweaks: Vec::new(),
        }
    }

    /// An app in Keycloak mode (check Keycloak is available first).
    pub fn keycloak() -> TestAppBuilder {
        TestAppBuilder {
            provider: ProviderKind::Keycloak,
            tweaks: Vec::new(),
        }
    }

    async fn launch(shared: Arc<Shared>) -> Self {
        let state = AppState::build(&shared.config)
            .await
            .expect("the application state");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
        let port = listener.local_addr().expect("its address").port();
        let factory_state = state.clone();
        let server = HttpServer::new(move || app(factory_state.clone()))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .expect("serve on the bound port")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        let app = Self {
            state,
            base_url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            server: handle,
            shared,
        };
        app.wait_until_healthy().await;
        app
    }

    async fn wait_until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self
                .client
                .get(format!("{}/health", self.base_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(Instant::now() < deadline, "not healthy within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The configuration the app runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The test database's URL.
    pub fn db_url(&self) -> &str {
        self.shared.db.url()
    }

    /// The audit rows of `action`.
    pub async fn audit_rows(&self, action: &str) -> Vec<db::audit::AuditEntry> {
        let filter = db::audit::AuditFilter {
            action: Some(action.to_owned()),
            ..Default::default()
        };
        db::audit::list(&mut *self.conn().await, &filter, db::Page::new(1, 100))
            .await
            .expect("read the audit log")
            .items
    }

    /// A connection to the app's database.
    pub async fn conn(&self) -> db::PooledConnection {
        self.shared.db.conn().await
    }

    /// Inserts a platform user with `email` (and an admin role, as `create-admin` sets it).
    pub async fn insert_user(&self, email: &str, role: Option<db::AdminRole>) -> db::users::User {
        let mut new = db::users::NewUser::new(email, "Test", "User");
        new.admin_role = role;
        db::users::insert_user(&mut *self.conn().await, &new)
            .await
            .expect("insert a user")
    }

    /// A built-in admin-api access token for `user_id`, as a login would issue.
    pub async fn builtin_token(&self, user_id: db::UserId) -> String {
        let provider =
            BuiltinProvider::new(&self.shared.config.auth.builtin).expect("the built-in provider");
        let meta = SessionMeta {
            client: "admin-api",
            client_addr: None,
            user_agent: None,
        };
        let tokens = provider
            .open_session(&mut *self.conn().await, user_id, meta)
            .await
            .expect("open a session");
        tokens.access_token.expose_secret().to_owned()
    }

    async fn admin_token(&self, role: db::AdminRole) -> String {
        let user = self
            .insert_user(&unique_email(role.as_str()), Some(role))
            .await;
        self.builtin_token(user.id).await
    }

    /// A token of a `full_admin`.
    pub async fn full_admin_token(&self) -> String {
        self.admin_token(db::AdminRole::FullAdmin).await
    }

    /// A token of a `viewer`.
    pub async fn viewer_token(&self) -> String {
        self.admin_token(db::AdminRole::Viewer).await
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Response::read(request.send().await.expect("the request reaches the app")).await
    }

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// `PUT path` with `token` and a JSON body.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.call(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }

    /// `DELETE path` with `token`.
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.call(reqwest::Method::DELETE, path, Some(token), None)
            .await
    }

    /// `POST /api/admin/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/admin/auth/login",
            None,
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// `POST path` with `token` and a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Response {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read the body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "a JSON body for {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// The envelope's `error` code.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    /// Asserts the status and the envelope's error code, and that the envelope is complete.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(
            (self.status, self.error()),
            (status, error),
            "expected {status} {error}: {self:?}"
        );
        assert!(
            self.body["request_id"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "the envelope has a request id: {self:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// cloud-api beside it

/// cloud-api, the real binary, in Keycloak mode on the same database, to see what admin writes
/// do to users of the public API. (A process, not a library: admin-api must not depend on
/// cloud-api, see docs/ARCHITECTURE.md.)
pub struct CloudApi {
    pub base_url: String,
    client: reqwest::Client,
    child: std::process::Child,
    _data_dir: tempfile::TempDir,
}

/// A password cloud-api's rules accept.
pub const USER_PASSWORD: &str = "Correct-Horse-Battery-9";

/// The cloud-api binary of this workspace, built (or found up to date) now.
fn cloud_api_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = std::process::Command::new(cargo)
                .args([
                    "build",
                    "--locked",
                    "--quiet",
                    "-p",
                    "cloud-api",
                    "--bin",
                    "cloud-api",
                ])
                .current_dir(workspace_root())
                .status()
                .expect("run cargo build -p cloud-api");
            assert!(status.success(), "cargo build -p cloud-api failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            target.join("debug").join("cloud-api")
        })
        .clone()
}

impl CloudApi {
    /// Starts cloud-api (Keycloak mode, client `cloud-api`) on `app`'s database.
    pub async fn start(app: &TestApp) -> Self {
        let binary = tokio::task::spawn_blocking(cloud_api_binary)
            .await
            .expect("build cloud-api");
        let data_dir = tempfile::tempdir().expect("a temporary data directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = std::process::Command::new(binary);
        command
            .env("DATABASE_URL", app.db_url())
            .env("CLOUD_API_SERVER__PORT", port.to_string())
            .env("CLOUD_API_SERVER__WORKERS", "1")
            .env("CLOUD_API_DATABASE__MAX_CONNECTIONS", "4")
            .env("CLOUD_API_PATHS__DATA_DIR", data_dir.path())
            .env(
                "CLOUD_API_INVOKE__SOCKET_ROOT",
                data_dir.path().join("sockets"),
            )
            .env("CLOUD_API_AUTH__PROVIDER", "keycloak")
            .env("CLOUD_API_AUTH__KEYCLOAK__ISSUER_URL", keycloak_issuer())
            .env("CLOUD_API_EMAIL__FILE_DIR", data_dir.path().join("mail"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .current_dir(workspace_root());
        if let Ok(smtp) = smtp() {
            command
                .env("CLOUD_API_EMAIL__SMTP__HOST", "127.0.0.1")
                .env("CLOUD_API_EMAIL__SMTP__PORT", smtp.port.to_string())
                .env("CLOUD_API_EMAIL__SMTP__TLS", "none");
        }
        let child = command.spawn().expect("start cloud-api");
        let cloud = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            child,
            _data_dir: data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Any answer of /health (200, or 503 while a dependency such as Podman is down) means
        // the API is up; the Keycloak-backed routes are what these tests use.
        while cloud
            .client
            .get(format!("{}/health", cloud.base_url))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "cloud-api did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cloud
    }

    /// `method path` with an optional token and body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Response::read(request.send().await.expect("cloud-api answers")).await
    }

    /// Registers `email` with [`USER_PASSWORD`]; asserts 201.
    pub async fn register(&self, email: &str) {
        let response = self
            .call(
                reqwest::Method::POST,
                "/api/auth/register",
                None,
                Some(
                    &serde_json::json!({"email": email, "password": USER_PASSWORD,
                    "first_name": "Ada", "last_name": "Lovelace"}),
                ),
            )
            .await;
        assert_eq!(response.status, 201, "register {email}: {response:?}");
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.call(
            reqwest::Method::POST,
            "/api/auth/login",
            None,
            Some(&serde_json::json!({"email": email, "password": password})),
        )
        .await
    }

    /// `GET /api/auth/me`.
    pub async fn me(&self, token: &str) -> Response {
        self.call(reqwest::Method::GET, "/api/auth/me", Some(token), None)
            .await
    }
}

impl Drop for CloudApi {
    fn drop(&mut self) {
        // Ends only the process this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    /// The app's Keycloak client (Keycloak mode only).
    pub fn keycloak_client(&self) -> &auth::keycloak::Keycloak {
        match &self.state.auth.provider {
            admin_api::state::Provider::Keycloak(kc) => kc,
            admin_api::state::Provider::Builtin(_) => panic!("built-in mode"),
        }
    }

    /// Deletes the Keycloak user with `email`, if any (best-effort cleanup).
    pub async fn delete_keycloak_user(&self, email: &str) {
        let admin = self.keycloak_client().admin();
        if let Ok(Some(user)) = admin.find_user_by_email(email).await
            && let Err(e) = admin.delete_user(&user.id).await
        {
            eprintln!("could not delete the Keycloak user of {email}: {e}");
        }
    }

    /// Logs the realm's `dev-admin` (full_admin) or `dev-viewer` in through admin-api.
    pub async fn keycloak_admin_token(&self, username: &str) -> String {
        let response = self.login(username, &format!("{username}-password")).await;
        assert_eq!(response.status, 200, "login {username}: {response:?}");
        response.body["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    }
}
