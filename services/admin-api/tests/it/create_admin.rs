//! `admin-api create-admin`, run as an operator runs it, then the admin logs in.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{SIGNING_KEY, TestApp};

fn run(app: &TestApp, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let data = tempfile::tempdir().expect("a data directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_admin-api"))
        .arg("create-admin")
        .args(args)
        .env("DATABASE_URL", app.db_url())
        .env("ADMIN_API_PATHS__DATA_DIR", data.path())
        .env("ADMIN_API_AUTH__BUILTIN__SIGNING_KEY", SIGNING_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run admin-api");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("write the password");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("admin-api exits")
}

#[tokio::test]
async fn create_admin_makes_a_user_who_can_log_in_with_the_role() {
    let app = TestApp::builtin().start().await;
    let out = run(
        &app,
        &[
            "--email",
            "ops@example.test",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("Operator-Password-7\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let login = app.login("ops@example.test", "Operator-Password-7").await;
    assert_eq!(login.status, 200, "{login:?}");
    let token = login.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/admin/auth/me", token).await.body["role"],
        "viewer"
    );

    // Promoting the same user keeps the password; a generated one is printed for a new user.
    let out = run(&app, &["--email", "ops@example.test"], None);
    assert!(out.status.success(), "{out:?}");
    let login = app.login("ops@example.test", "Operator-Password-7").await;
    let token = login.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/admin/auth/me", token).await.body["role"],
        "full_admin"
    );
    let out = run(&app, &["--email", "new@example.test"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("generated password (shown once): "))
        .expect("the generated password")
        .to_owned();
    assert_eq!(app.login("new@example.test", &password).await.status, 200);
    assert_eq!(app.audit_rows("user.admin_role").await.len(), 3);

    let out = run(&app, &["--email", "x@example.test", "--role", "root"], None);
    assert!(!out.status.success());
}
