//! The test harness: [`TestApp`] runs the real cloud-api (`cloud_api::app`) on a free loopback
//! port, with its own migrated database, its own data directory, mail to the local SMTP server and
//! the chosen identity provider; a second instance on the same database and data directory stands
//! for a second replica. Also: reading mail back out of the SMTP server's maildir, and the guards
//! for the services a test needs (Keycloak, SMTP).
//!
//! Keycloak and SMTP come from `deploy/keycloak.sh start` and `deploy/smtp.sh start`. When one is
//! missing, a test that needs it prints a notice and returns — unless `CI` is set, where it fails.
//! Overrides: `CP_KEYCLOAK_ISSUER`, `CP_KEYCLOAK_CLIENT_ID`, `CP_KEYCLOAK_CLIENT_SECRET`,
//! `CP_SMTP_PORT`, `CP_LOCAL` (whose `mail/` is the maildir).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::HttpServer;
use actix_web::dev::ServerHandle;
use auth::keycloak::Keycloak;
use cloud_api::config::{Config, ProviderKind};
use cloud_api::identity::Provider;
use cloud_api::{AppState, app};
use db::testing::TestDatabase;
use db::users::User;
use diesel_async::RunQueryDsl;
use mail_parser::MessageParser;
use secrecy::SecretString;
use serde_json::{Value, json};

/// A password every rule accepts.
pub const PASSWORD: &str = "Correct-Horse-Battery-9";

/// Whether this is a CI run (a missing service is then a failure, never a skip).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A missing service: a failure in CI, a printed notice (and `false`: skip) elsewhere.
fn missing(service: &str, why: &str, start: &str) -> bool {
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
// Keycloak

/// The realm the Keycloak tests run against.
pub fn keycloak_config() -> auth::keycloak::KeycloakConfig {
    auth::keycloak::KeycloakConfig::new(
        env_or(
            "CP_KEYCLOAK_ISSUER",
            "http://127.0.0.1:8180/realms/containerpub",
        ),
        env_or("CP_KEYCLOAK_CLIENT_ID", "cloud-api"),
        SecretString::from(env_or("CP_KEYCLOAK_CLIENT_SECRET", "cloud-api-secret")),
    )
}

/// Whether the realm answers. When it does not: panics in CI, prints a notice elsewhere.
pub async fn keycloak_available() -> bool {
    let config = keycloak_config();
    let issuer = config.issuer_url.clone();
    match Keycloak::discover(config).await {
        Ok(_) => true,
        Err(e) if e.is_unavailable() => missing(
            "Keycloak",
            &format!("{issuer}: {e}"),
            "deploy/keycloak.sh start",
        ),
        Err(e) => panic!("Keycloak discovery of {issuer} failed: {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// SMTP and the maildir

/// The local SMTP server: its port and the maildir it stores messages in.
#[derive(Clone, Debug)]
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// The SMTP server of `deploy/smtp.sh` (started through the script when nothing answers).
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
            let script = workspace_root().join("deploy/smtp.sh");
            let status = Command::new(&script)
                .arg("start")
                .status()
                .map_err(|e| format!("could not run {}: {e}", script.display()))?;
            if !status.success() || !accepts(port) {
                return Err(format!(
                    "nothing answers on 127.0.0.1:{port} and `{} start` failed ({status})",
                    script.display()
                ));
            }
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
    pub html: String,
}

/// The raw message whose envelope recipient (aiosmtpd's `X-RcptTo`) is `recipient`, if one has
/// arrived.
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

fn parse_mail(raw: &[u8]) -> Mail {
    let message = MessageParser::default()
        .parse(raw)
        .expect("a parseable RFC 5322 message");
    Mail {
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    }
}

/// Waits (polling, up to 15 s) for the message to `recipient`.
///
/// # Panics
/// When none arrives in time.
pub async fn wait_for_mail(recipient: &str) -> Mail {
    let smtp = smtp().expect("the SMTP server (check smtp_available first)");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(raw) = find_message(&smtp.maildir, recipient) {
            return parse_mail(&raw);
        }
        assert!(
            Instant::now() < deadline,
            "no mail for {recipient} in {} within 15 s",
            smtp.maildir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether any message to `recipient` has arrived (no waiting).
pub fn has_mail(recipient: &str) -> bool {
    smtp().is_ok_and(|s| find_message(&s.maildir, recipient).is_some())
}

/// The only run of exactly six digits in `text`.
pub fn six_digit_code(text: &str) -> String {
    let runs: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 6)
        .collect();
    assert_eq!(runs.len(), 1, "exactly one six-digit code in: {text}");
    runs[0].to_owned()
}

/// The first `http(s)://` URL in plain text that contains `part`.
pub fn link_containing(text: &str, part: &str) -> String {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '<' || c == '>' || c == '"'))
        .find(|w| w.starts_with("http") && w.contains(part))
        .unwrap_or_else(|| panic!("no link containing {part} in: {text}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The application

/// The database and data directory that the instances of one [`TestApp`] share.
struct Shared {
    config: Config,
    // Declared last: dropped after the instances' pools are gone.
    db: TestDatabase,
    _data_dir: tempfile::TempDir,
}

/// A change to the configuration, applied before the app is built.
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

    /// Seconds a caller's account row is cached.
    pub fn user_cache_ttl_secs(self, secs: u64) -> Self {
        self.configure(move |c| c.auth.user_cache_ttl_secs = secs)
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
        config.auth.keycloak = keycloak_config();
        // Cheap argon2id costs: these tests are about flows, not about hashing strength.
        config.auth.builtin.password = auth::password::PasswordConfig {
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
        };
        let smtp_port = smtp().map_or(2525, |s| s.port);
        config.email.smtp = Some(email::SmtpConfig::plain("127.0.0.1", smtp_port));
        config.email.file_dir = data_dir.path().join("mail");
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        let shared = Arc::new(Shared {
            config,
            db,
            _data_dir: data_dir,
        });
        TestApp::launch(shared, 1).await
    }
}

/// One running instance of cloud-api, with an HTTP client aimed at it.
pub struct TestApp {
    /// The instance's state (its caches, its Keycloak client).
    pub state: AppState,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    client: reqwest::Client,
    server: ServerHandle,
    listener: tokio::task::JoinHandle<()>,
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

    /// An app in Keycloak mode (check [`keycloak_available`] first).
    pub fn keycloak() -> TestAppBuilder {
        TestAppBuilder {
            provider: ProviderKind::Keycloak,
            tweaks: Vec::new(),
        }
    }

    /// The builder for `provider`.
    pub fn with_provider(provider: ProviderKind) -> TestAppBuilder {
        TestAppBuilder {
            provider,
            tweaks: Vec::new(),
        }
    }

    async fn launch(shared: Arc<Shared>, instance: i64) -> Self {
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
        // Cross-replica invalidations, as main.rs runs them.
        let url = shared.db.url().to_owned();
        let invalidations = tokio::spawn(state.identity.invalidations().clone().listen(url));
        let app = Self {
            state,
            base_url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            server: handle,
            listener: invalidations,
            shared,
        };
        app.wait_until_listening(instance).await;
        app.wait_until_healthy().await;
        app
    }

    /// A second instance (replica) on the same database and data directory, with its own
    /// caches, its own invalidation listener and its own port.
    pub async fn second_instance(&self) -> TestApp {
        Self::launch(self.shared.clone(), 2).await
    }

    /// Waits until `instances` invalidation listeners have run `LISTEN` on the test database.
    async fn wait_until_listening(&self, instances: i64) {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut conn = self.shared.db.conn().await;
            let listening = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND query LIKE 'LISTEN %'",
            )
            .get_result::<Count>(&mut conn)
            .await
            .expect("count the listeners")
            .n;
            if listening >= instances {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the invalidation listener did not start within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
            assert!(
                Instant::now() < deadline,
                "the app was not healthy within 10 s"
            );
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

    /// A connection to the app's database.
    pub async fn conn(&self) -> db::PooledConnection {
        self.shared.db.conn().await
    }

    /// The app's Keycloak client (Keycloak mode only).
    pub fn keycloak_client(&self) -> &Keycloak {
        match self.state.identity.provider() {
            Provider::Keycloak(kc) => kc,
            Provider::Builtin(_) => panic!("this app runs the built-in provider"),
        }
    }

    /// The user row with `email`, if any.
    pub async fn user_by_email(&self, email: &str) -> Option<User> {
        db::users::find_user_by_email(&mut *self.conn().await, email)
            .await
            .expect("look the user up")
    }

    /// Deletes the Keycloak user with `email`, if there is one (best effort cleanup).
    pub async fn delete_keycloak_user(&self, email: &str) {
        let admin = self.keycloak_client().admin();
        if let Ok(Some(user)) = admin.find_user_by_email(email).await
            && let Err(e) = admin.delete_user(&user.id).await
        {
            eprintln!("could not delete the Keycloak user of {email}: {e}");
        }
    }

    // -- HTTP ---------------------------------------------------------------------------------

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

    /// Sends `method path` with raw headers and body, for requests a typed client will not make.
    pub async fn call_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        Response::read(request.send().await.expect("the request reaches the app")).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.call(reqwest::Method::POST, path, None, Some(body))
            .await
    }

    /// `GET /api/auth/me` with `token`.
    pub async fn me(&self, token: &str) -> Response {
        self.call(reqwest::Method::GET, "/api/auth/me", Some(token), None)
            .await
    }

    /// Registers `email` with [`PASSWORD`]; asserts 201.
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/auth/register",
                &json!({"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"}),
            )
            .await;
        assert_eq!(response.status, 201, "register {email}: {response:?}");
        response.body
    }

    /// `POST /api/auth/login`.
    pub async fn try_login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in; asserts 200 and the token answer's shape.
    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let response = self.try_login(email, password).await;
        assert_eq!(response.status, 200, "login {email}: {response:?}");
        Tokens::from_body(&response.body)
    }

    /// `POST /api/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// `POST /api/auth/logout` with the bearer token and the refresh token.
    pub async fn logout(&self, tokens: &Tokens) -> Response {
        self.call(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(&tokens.access),
            Some(&json!({"refresh_token": tokens.refresh})),
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.listener.abort();
        // Sends the stop command now; the returned future would only wait for it.
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
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "the envelope has a message: {self:?}"
        );
        assert!(
            self.body["request_id"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "the envelope has a request id: {self:?}"
        );
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The tokens of a login or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    /// Reads (and checks the shape of) a token answer.
    #[track_caller]
    pub fn from_body(body: &Value) -> Self {
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");
        assert!(
            body["refresh_expires_in"].as_u64().is_some_and(|s| s > 0),
            "{body}"
        );
        let token = |name: &str| {
            body[name]
                .as_str()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| panic!("a non-empty {name} in {body}"))
                .to_owned()
        };
        Self {
            access: token("access_token"),
            refresh: token("refresh_token"),
        }
    }
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, start.elapsed());
        }
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Captured logs

static LOGS: OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogSink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of this test binary (all levels of our crates, `info` of the others,
/// every thread) to a buffer that [`captured_logs`] reads. Call it before starting the app.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = LogSink(buffer.clone());
        let filter = tracing_subscriber::EnvFilter::new(
            "info,cloud_api=trace,web=trace,db=trace,signing=trace,auth=trace",
        );
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        // Another test may have installed one first: then nothing is captured, which the
        // callers notice (they check that something was captured).
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
}

/// Everything logged since [`capture_logs`].
pub fn captured_logs() -> String {
    LOGS.get()
        .and_then(|b| {
            b.lock()
                .ok()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
        })
        .unwrap_or_default()
}
