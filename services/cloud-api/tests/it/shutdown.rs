//! Executions survive a graceful shutdown: the real binary is stopped with SIGTERM in the middle
//! of a burst of invocations, and every invocation that was answered has its execution row.

use std::time::Duration;

use db::testing::TestDatabase;
use serde_json::json;
use web::testing::ServiceProcess;

use crate::functions::{as_zip, podman_socket, runner_binary};
use crate::support::{PASSWORD, unique_email};

#[tokio::test]
async fn every_answered_invocation_is_recorded_across_a_sigterm_during_load() {
    let (Some(socket), Some(runner)) = (podman_socket(), runner_binary()) else {
        return;
    };
    let db = TestDatabase::new().await;
    let data = tempfile::tempdir().expect("data dir");
    let sockets = tempfile::Builder::new()
        .prefix("cp")
        .tempdir_in("/tmp")
        .expect("socket root");
    let env = [
        (
            "CLOUD_API_PODMAN__SOCKET",
            socket.to_string_lossy().into_owned(),
        ),
        (
            "CLOUD_API_INVOKE__RUNNER_BINARY",
            runner.to_string_lossy().into_owned(),
        ),
        (
            "CLOUD_API_INVOKE__SOCKET_ROOT",
            sockets.path().to_string_lossy().into_owned(),
        ),
        (
            "CLOUD_API_PATHS__DATA_DIR",
            data.path().to_string_lossy().into_owned(),
        ),
        (
            "CLOUD_API_EMAIL__FILE_DIR",
            data.path().join("mail").to_string_lossy().into_owned(),
        ),
        ("CLOUD_API_SERVER__SHUTDOWN_TIMEOUT_SECS", "20".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut service = ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_cloud-api"),
        "CLOUD_API_",
        db.url(),
        &env,
    );
    service.wait_healthy(Duration::from_secs(30)).await;
    let base = service.base_url.clone();
    let client = reqwest::Client::new();

    let email = unique_email("sigterm");
    let registered = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "first_name": "Sig", "last_name": "Term"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status().as_u16(), 201);
    let login: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("tokens");
    let token = login["access_token"].as_str().expect("a token").to_owned();
    let init: serde_json::Value = client
        .post(format!("{base}/api/functions/init"))
        .bearer_auth(&token)
        .json(&json!({"name": "burst"}))
        .send()
        .await
        .expect("init")
        .json()
        .await
        .expect("function");
    let id = init["id"].as_str().expect("id").to_owned();
    let source = "import time\n\ndef handler(request):\n    time.sleep(0.05)\n    return 'ok'\n";
    let form = reqwest::multipart::Form::new()
        .text("function_id", id.clone())
        .part(
            "archive",
            reqwest::multipart::Part::bytes(as_zip(&[(
                "main.py",
                source.as_bytes().to_vec(),
                0o644,
            )]))
            .file_name("f.zip"),
        );
    let deployed = client
        .post(format!("{base}/api/functions/deploy?wait=true"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .expect("deploy");
    assert_eq!(deployed.status().as_u16(), 201);

    // A burst of calls; SIGTERM arrives while they are in flight.
    let calls: Vec<_> = (0..60)
        .map(|n| {
            let (client, base, token, id) =
                (client.clone(), base.clone(), token.clone(), id.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(n * 10)).await;
                let response = client
                    .post(format!("{base}/api/functions/{id}/invoke"))
                    .bearer_auth(&token)
                    .json(&json!({}))
                    .send()
                    .await;
                response.ok().filter(|r| r.status().is_success()).is_some()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let status = service.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "a graceful exit: {status}");
    let mut answered = 0;
    for call in calls {
        if call.await.expect("a call task") {
            answered += 1;
        }
    }
    assert!(answered > 0, "some calls were answered before the shutdown");

    let mut conn = db.conn().await;
    let rows: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        db::schema::executions::table
            .count()
            .get_result(&mut conn)
            .await
            .expect("count")
    };
    let podman = container::Podman::new(container::PodmanConfig {
        socket: socket.clone(),
        ..Default::default()
    });
    let left = podman
        .list_containers(&container::podman::ContainerFilter {
            labels: std::collections::BTreeMap::from([(
                cloud_api::functions::FUNCTION_LABEL.to_owned(),
                id.clone(),
            )]),
        })
        .await
        .expect("list containers");
    assert!(
        left.is_empty(),
        "the replica removed its instances before exiting: {left:?}"
    );
    assert_eq!(
        rows, answered,
        "every answered invocation has its execution row, none more"
    );
}
