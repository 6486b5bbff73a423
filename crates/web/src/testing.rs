//! Test support for the services (feature `testing`): run a service's real binary as a child
//! process, as an operator would, and talk to it over HTTP.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago (bound, then released).
///
/// # Panics
/// When no loopback port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// Runs `bin args…` with `DATABASE_URL` set to `database_url` and waits for it to exit.
///
/// # Panics
/// When the binary cannot be started.
pub fn run_to_end(bin: &str, args: &[&str], database_url: &str) -> Output {
    Command::new(bin)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

/// A service binary serving on a free port, killed on drop.
pub struct ServiceProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
}

impl ServiceProcess {
    /// Starts `bin` (`env!("CARGO_BIN_EXE_<name>")`) with `DATABASE_URL` and its server port set
    /// through `<env_prefix>SERVER__PORT`, plus `extra_env`.
    ///
    /// # Panics
    /// When the binary cannot be started.
    pub fn spawn(
        bin: &str,
        env_prefix: &str,
        database_url: &str,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let child = Command::new(bin)
            .env("DATABASE_URL", database_url)
            .env(format!("{env_prefix}SERVER__PORT"), port.to_string())
            .env(format!("{env_prefix}SERVER__WORKERS"), "1")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Polls `GET /health` until it answers 200.
    ///
    /// # Panics
    /// When it does not within `timeout`, or the process exits first.
    pub async fn wait_healthy(&mut self, timeout: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the service exited before it was healthy: {status}");
            }
            let ok = client
                .get(format!("{}/health", self.base_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the service was not healthy within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    ///
    /// # Panics
    /// When the signal cannot be sent or the process does not exit within `timeout`.
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the service") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not exit within {timeout:?} of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The life of a service binary as an operator sees it, asserted step by step: it refuses to
/// serve on a schema with pending migrations (naming `<name> migrate`), `migrate` applies them
/// (and is a no-op the second time), it serves `/health` with the database check, and SIGTERM
/// stops it with a success status.
///
/// # Panics
/// On the first step that does not hold.
pub async fn assert_operator_lifecycle(bin: &str, name: &str, env_prefix: &str) {
    let db = db::testing::TestDatabase::new().await;
    db::migrations::revert_all(db.url())
        .await
        .expect("revert the schema");

    let refused = run_to_end(bin, &["serve"], db.url());
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        !refused.status.success(),
        "it served on a schema with pending migrations"
    );
    assert!(
        output.contains(&format!("run `{name} migrate` first")),
        "the refusal names the command to run: {output}"
    );

    let migrated = run_to_end(bin, &["migrate"], db.url());
    assert!(
        migrated.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(
        db::migrations::pending(db.url())
            .await
            .expect("pending")
            .is_empty()
    );
    let again = run_to_end(bin, &["migrate"], db.url());
    assert!(again.status.success(), "a second migrate is a no-op");

    let mut service = ServiceProcess::spawn(bin, env_prefix, db.url(), &[]);
    service.wait_healthy(Duration::from_secs(20)).await;
    let body: serde_json::Value = reqwest::get(format!("{}/health", service.base_url))
        .await
        .expect("GET /health")
        .json()
        .await
        .expect("a JSON health report");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");

    let status = service.terminate(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "SIGTERM ends the service cleanly: {status}"
    );
}
