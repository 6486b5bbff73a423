//! Functions against the real Podman (SPEC §3.2): deploys from zip and tar.gz, versions,
//! a failed build that leaves the previous version serving, atomic rollback (also after the
//! image was pruned), concurrent deploys, hostile archives, and another user's function.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::support::{self, PASSWORD, TestApp, unique_email};

/// The Podman socket of `deploy/podman.sh`; its absence fails CI and skips elsewhere.
pub(crate) fn podman_socket() -> Option<PathBuf> {
    let socket = std::env::var("CP_PODMAN_SOCKET").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/podman/podman.sock"),
        PathBuf::from,
    );
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Some(socket);
    }
    assert!(
        !support::in_ci(),
        "CI is set and Podman is unavailable at {}",
        socket.display()
    );
    eprintln!(
        "NOTICE: skipping, Podman is unavailable at {} (run `bash deploy/podman.sh start`)",
        socket.display()
    );
    None
}

/// The static runner of `deploy/build-runner.sh start` (its path is recorded under `.local/`);
/// its absence fails CI and skips elsewhere.
pub(crate) fn runner_binary() -> Option<PathBuf> {
    let recorded = std::env::var("CONTAINERPUB_RUNNER_BIN").ok().or_else(|| {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/runner/path");
        std::fs::read_to_string(file)
            .ok()
            .map(|p| p.trim().to_owned())
    });
    if let Some(path) = recorded.map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(path);
    }
    assert!(
        !support::in_ci(),
        "CI is set and the runner binary is missing (deploy/build-runner.sh start)"
    );
    eprintln!(
        "NOTICE: skipping, the runner binary is missing (run `bash deploy/build-runner.sh start`)"
    );
    None
}

/// An app with build workers running, and a logged-in user.
pub(crate) struct Harness {
    pub(crate) app: TestApp,
    pub(crate) token: String,
    _stop: watch::Sender<bool>,
    _sockets: tempfile::TempDir,
}

impl Harness {
    pub(crate) async fn start(
        tweak: impl FnOnce(&mut cloud_api::Config) + 'static,
    ) -> Option<Self> {
        let socket = podman_socket()?;
        let runner = runner_binary()?;
        let sockets = tempfile::Builder::new()
            .prefix("cp")
            .tempdir_in("/tmp")
            .expect("a socket root");
        let socket_root = sockets.path().to_owned();
        let app = TestApp::builtin()
            .configure(move |c| {
                c.podman.socket = socket;
                c.invoke.runner_binary = runner;
                c.invoke.socket_root = socket_root;
                tweak(c);
            })
            .start()
            .await;
        let (stop, shutdown) = watch::channel(false);
        let instance = format!("test-{}", uuid::Uuid::new_v4().simple());
        tokio::spawn(cloud_api::workers::build::run(
            app.state.functions.clone(),
            instance,
            2,
            shutdown,
        ));
        let email = unique_email("fn");
        app.register(&email).await;
        let token = app.login(&email, PASSWORD).await.access;
        Some(Self {
            app,
            token,
            _stop: stop,
            _sockets: sockets,
        })
    }

    pub(crate) async fn init(&self, name: &str) -> String {
        let response = self
            .app
            .call(
                reqwest::Method::POST,
                "/api/functions/init",
                Some(&self.token),
                Some(&json!({"name": name})),
            )
            .await;
        assert_eq!(response.status, 201, "{response:?}");
        response.body["id"].as_str().expect("an id").to_owned()
    }

    pub(crate) async fn deploy(
        &self,
        function_id: &str,
        archive: Vec<u8>,
        wait: bool,
    ) -> (u16, Value) {
        deploy_as(&self.app, &self.token, function_id, archive, wait).await
    }

    pub(crate) async fn get(&self, path: &str) -> support::Response {
        self.app
            .call(reqwest::Method::GET, path, Some(&self.token), None)
            .await
    }
}

async fn deploy_as(
    app: &TestApp,
    token: &str,
    function_id: &str,
    archive: Vec<u8>,
    wait: bool,
) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("function_id", function_id.to_owned())
        .part(
            "archive",
            reqwest::multipart::Part::bytes(archive).file_name("function.bin"),
        );
    let url = format!(
        "{}/api/functions/deploy{}",
        app.base_url,
        if wait { "?wait=true" } else { "" }
    );
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("deploy");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub(crate) fn zip(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content, mode) in files {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        out.start_file(*name, options).expect("zip entry");
        out.write_all(content).expect("zip data");
    }
    out.finish().expect("zip").into_inner()
}

fn tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (name, content, mode) in files {
        // Names are written raw: the tar crate itself refuses `..`, which these tests need.
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_cksum();
        builder.append(&header, *content).expect("tar entry");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

pub(crate) fn python(body: &str) -> Vec<(&'static str, Vec<u8>, u32)> {
    let source =
        format!("def handler(request):\n    return {{\"statusCode\": 200, \"body\": {body}}}\n");
    vec![("main.py", source.into_bytes(), 0o644)]
}

pub(crate) fn binary() -> Vec<(&'static str, Vec<u8>, u32)> {
    let script =
        b"#!/bin/sh\necho '{\"statusCode\": 200, \"body\": \"hi\"}' > result.json\n".to_vec();
    vec![("bootstrap", script, 0o755)]
}

pub(crate) fn as_zip(files: &[(&'static str, Vec<u8>, u32)]) -> Vec<u8> {
    zip(&files
        .iter()
        .map(|(n, c, m)| (*n, c.as_slice(), *m))
        .collect::<Vec<_>>())
}

fn as_tar_gz(files: &[(&'static str, Vec<u8>, u32)]) -> Vec<u8> {
    tar_gz(
        &files
            .iter()
            .map(|(n, c, m)| (*n, c.as_slice(), *m))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn python_and_binary_functions_deploy_from_zip_and_tar_gz_and_versions_follow() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    for (name, files) in [("py", python("\"v\"")), ("bin", binary())] {
        let id = h.init(name).await;
        let (status, body) = h.deploy(&id, as_zip(&files), true).await;
        assert_eq!(status, 201, "{name} from zip: {body}");
        assert_eq!(
            (body["version"].as_i64(), body["status"].as_str()),
            (Some(1), Some("active")),
            "{body}"
        );
        let (status, body) = h.deploy(&id, as_tar_gz(&files), true).await;
        assert_eq!(status, 201, "{name} from tar.gz: {body}");
        assert_eq!(body["version"], 2, "{body}");
        let function = h.get(&format!("/api/functions/{id}")).await;
        assert_eq!(
            (
                function.body["status"].as_str(),
                function.body["active_version"].as_i64()
            ),
            (Some("active"), Some(2))
        );
        assert_eq!(
            function.body["runtime"],
            if name == "py" { "python" } else { "binary" }
        );
        let history = h.get(&format!("/api/functions/{id}/deployments")).await;
        let versions: Vec<_> = history.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|d| (d["version"].as_i64(), d["is_active"].as_bool()))
            .collect();
        assert_eq!(
            versions,
            vec![(Some(2), Some(true)), (Some(1), Some(false))],
            "newest first, one active"
        );
    }
    let list = h.get("/api/functions").await;
    assert_eq!(list.body["total"], 2, "{:?}", list.body);
}

#[tokio::test]
async fn a_broken_build_leaves_version_1_serving_and_records_its_log() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let id = h.init("broken").await;
    let (status, _) = h.deploy(&id, as_zip(&python("1")), true).await;
    assert_eq!(status, 201);
    let broken = vec![(
        "main.py",
        b"def handler(request:\n    return 1\n".to_vec(),
        0o644,
    )];
    let (status, body) = h.deploy(&id, as_zip(&broken), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    let deployment_id = body["deployment_id"].as_str().expect("id");
    let detail = h
        .get(&format!("/api/functions/{id}/deployments/{deployment_id}"))
        .await;
    assert_eq!(detail.body["status"], "failed");
    assert!(
        detail.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{:?}",
        detail.body
    );
    assert!(
        detail.body["build_log"]
            .as_str()
            .is_some_and(|l| l.contains("SyntaxError") || l.len() > 20),
        "{:?}",
        detail.body
    );
    let function = h.get(&format!("/api/functions/{id}")).await;
    assert_eq!(
        (
            function.body["status"].as_str(),
            function.body["active_version"].as_i64()
        ),
        (Some("active"), Some(1))
    );
}

#[tokio::test]
async fn rollback_is_atomic_and_rebuilds_a_pruned_image() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let id = h.init("rollback").await;
    for body in ["1", "2"] {
        let (status, answer) = h.deploy(&id, as_zip(&python(body)), true).await;
        assert_eq!(status, 201, "{answer}");
    }
    // A reader that checks, all through the rollbacks, that exactly one deployment is active.
    let function_id: db::FunctionId = id.parse().expect("uuid");
    let (done, mut finished) = watch::channel(false);
    let url = h.app.db_url().to_owned();
    let watcher = tokio::spawn(async move {
        use diesel::prelude::*;
        use diesel_async::{AsyncConnection, RunQueryDsl};
        let mut conn = diesel_async::AsyncPgConnection::establish(&url)
            .await
            .expect("connect");
        let mut checks = 0;
        while !*finished.borrow_and_update() {
            let active: i64 = db::schema::deployments::table
                .filter(db::schema::deployments::function_id.eq(function_id))
                .filter(db::schema::deployments::is_active)
                .count()
                .get_result(&mut conn)
                .await
                .expect("count");
            assert_eq!(active, 1, "exactly one active deployment at every moment");
            checks += 1;
        }
        checks
    });
    for version in [1, 2, 1, 2, 1] {
        let response = h
            .app
            .call(
                reqwest::Method::POST,
                &format!("/api/functions/{id}/rollback"),
                Some(&h.token),
                Some(&json!({"version": version})),
            )
            .await;
        assert_eq!(
            (response.status, response.body["version"].as_i64()),
            (200, Some(version)),
            "{response:?}"
        );
    }
    done.send(true).expect("stop the watcher");
    assert!(watcher.await.expect("watcher") > 0);

    // Prune version 2's image; rolling back to it rebuilds it from the stored archive.
    let mut conn = h.app.conn().await;
    let v2 = db::builds::find_by_version(&mut conn, function_id, 2)
        .await
        .expect("query")
        .expect("v2");
    let image = v2.image_id.expect("an image");
    assert!(
        h.app
            .state
            .functions
            .podman()
            .remove_image(&image, true)
            .await
            .expect("remove")
    );
    let response = h
        .app
        .call(
            reqwest::Method::POST,
            &format!("/api/functions/{id}/rollback"),
            Some(&h.token),
            Some(&json!({"version": 2})),
        )
        .await;
    assert_eq!(
        (response.status, response.body["version"].as_i64()),
        (200, Some(2)),
        "{response:?}"
    );
    let v2 = db::builds::find_by_version(&mut conn, function_id, 2)
        .await
        .expect("query")
        .expect("v2");
    let rebuilt = v2.image_id.expect("an image");
    assert!(
        h.app
            .state
            .functions
            .podman()
            .inspect_image(&rebuilt)
            .await
            .expect("inspect")
            .is_some()
    );

    let unknown = h
        .app
        .call(
            reqwest::Method::POST,
            &format!("/api/functions/{id}/rollback"),
            Some(&h.token),
            Some(&json!({"version": 9})),
        )
        .await;
    unknown.assert_error(404, "not_found");
}

#[tokio::test]
async fn two_concurrent_deploys_get_versions_2_and_3() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let id = h.init("race").await;
    let (status, _) = h.deploy(&id, as_zip(&python("1")), true).await;
    assert_eq!(status, 201);
    let (a, b) = tokio::join!(
        h.deploy(&id, as_zip(&python("2")), true),
        h.deploy(&id, as_tar_gz(&python("3")), true)
    );
    let mut versions = vec![a.1["version"].as_i64(), b.1["version"].as_i64()];
    versions.sort();
    assert_eq!(versions, vec![Some(2), Some(3)], "{a:?} {b:?}");
    assert!(
        [a.0, b.0].iter().all(|s| *s == 201),
        "both builds succeed: {a:?} {b:?}"
    );
    let function = h.get(&format!("/api/functions/{id}")).await;
    assert_eq!(
        function.body["active_version"], 3,
        "the later version is active: {:?}",
        function.body
    );
}

#[tokio::test]
async fn hostile_archives_are_refused_naming_the_entry_and_nothing_is_written() {
    let Some(h) = Harness::start(|c| {
        c.functions.max_file_bytes = 1024;
        c.functions.max_unpacked_bytes = 4096;
    })
    .await
    else {
        return;
    };
    let id = h.init("hostile").await;
    let big = vec![b'a'; 2048];
    let many_zeros = vec![0u8; 8192];
    let mut symlink_out = Vec::new();
    {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            &mut symlink_out,
            flate2::Compression::default(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder
            .append_link(&mut header, "main.py", "/etc/passwd")
            .expect("symlink");
        builder.into_inner().expect("tar").finish().expect("gzip");
    }
    let mut device = Vec::new();
    {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            &mut device,
            flate2::Compression::default(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Char);
        header.set_size(0);
        header.set_mode(0o644);
        header.set_device_major(1).expect("major");
        header.set_device_minor(3).expect("minor");
        header.set_cksum();
        builder
            .append_data(&mut header, "null", std::io::empty())
            .expect("device");
        builder.into_inner().expect("tar").finish().expect("gzip");
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "absolute path",
            zip(&[("/etc/cron.d/x", b"x", 0o644)]),
            "/etc/cron.d/x",
        ),
        (
            "parent directory",
            tar_gz(&[("../escape.py", b"x", 0o644)]),
            "../escape.py",
        ),
        (
            "nested parent",
            zip(&[("a/../../x", b"x", 0o644)]),
            "a/../../x",
        ),
        ("symlink out of the tree", symlink_out, "main.py"),
        ("device file", device, "null"),
        (
            "oversized member",
            zip(&[("main.py", &big, 0o644)]),
            "main.py",
        ),
        (
            "zip bomb",
            zip(&[("main.py", b"x", 0o644), ("zeros", &many_zeros, 0o644)]),
            "zeros",
        ),
        ("not an archive", b"plain text, not an archive".to_vec(), ""),
    ];
    for (what, archive, entry) in cases {
        let (status, body) = h.deploy(&id, archive, false).await;
        assert_eq!(status, 422, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(entry)),
            "{what}: the message names `{entry}`: {body}"
        );
    }
    let history = h.get(&format!("/api/functions/{id}/deployments")).await;
    assert_eq!(history.body["total"], 0, "no deployment was recorded");
    let archives = h.app.config().paths.data_dir.join("archives");
    let stored = walk_files(&archives);
    assert!(stored.is_empty(), "no archive was stored: {stored:?}");
    let function = h.get(&format!("/api/functions/{id}")).await;
    assert_eq!(function.body["status"], "init");
}

fn walk_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk_files(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

#[tokio::test]
async fn another_users_function_is_404_everywhere_and_init_is_idempotent() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let id = h.init("mine").await;
    let again = h
        .app
        .call(
            reqwest::Method::POST,
            "/api/functions/init",
            Some(&h.token),
            Some(&json!({"name": "mine"})),
        )
        .await;
    assert_eq!(
        (
            again.status,
            again.body["already_exists"].as_bool(),
            again.body["id"].as_str()
        ),
        (200, Some(true), Some(id.as_str()))
    );
    let bad_name = h
        .app
        .call(
            reqwest::Method::POST,
            "/api/functions/init",
            Some(&h.token),
            Some(&json!({"name": "../no"})),
        )
        .await;
    bad_name.assert_error(422, "validation_failed");

    let other = unique_email("other");
    h.app.register(&other).await;
    let token = h.app.login(&other, PASSWORD).await.access;
    for path in [
        format!("/api/functions/{id}"),
        format!("/api/functions/{id}/deployments"),
    ] {
        h.app
            .call(reqwest::Method::GET, &path, Some(&token), None)
            .await
            .assert_error(404, "not_found");
    }
    h.app
        .call(
            reqwest::Method::POST,
            &format!("/api/functions/{id}/rollback"),
            Some(&token),
            Some(&json!({"version": 1})),
        )
        .await
        .assert_error(404, "not_found");
    let (status, body) = deploy_as(&h.app, &token, &id, as_zip(&python("1")), false).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let list = h
        .app
        .call(reqwest::Method::GET, "/api/functions", Some(&token), None)
        .await;
    assert_eq!(list.body["total"], 0);
    h.app
        .call(
            reqwest::Method::GET,
            "/api/functions/not-a-uuid",
            Some(&token),
            None,
        )
        .await
        .assert_error(400, "invalid_path_parameter");
}

#[tokio::test]
async fn requirements_txt_is_installed_at_build_time() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let id = h.init("deps").await;
    let files = vec![
        ("requirements.txt", b"six==1.16.0\n".to_vec(), 0o644),
        (
            "main.py",
            b"import six\n\ndef handler(request):\n    return {\"statusCode\": 200, \"body\": six.__version__}\n".to_vec(),
            0o644,
        ),
    ];
    let (status, body) = h.deploy(&id, as_zip(&files), true).await;
    assert_eq!(status, 201, "a build with requirements.txt: {body}");
    let log = body["deployment"]["build_log"].as_str().unwrap_or_default();
    // The pip step is in the recipe; its layer may come from the cache of an earlier build of
    // the same requirements (the same base, the same requirements.txt).
    assert!(
        log.contains("pip\", \"install"),
        "the requirements are installed at build time: {log}"
    );
}
