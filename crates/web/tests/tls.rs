//! `[server.tls]`: `web::serve` answers HTTPS with the configured certificate, and a bad key file
//! stops the start with an error naming the file.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use actix_web::{HttpResponse, web as aw};
use web::config::{CorsConfig, ServerConfig, TlsConfig};
use web::{Health, Shell};

/// A test CA and a certificate it signed for 127.0.0.1, made with the `openssl` command (Debian's
/// ca-certificates depends on it) in `dir`. Returns the server's files and the CA certificate.
fn certificates(dir: &Path) -> (TlsConfig, Vec<u8>) {
    let file = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_owned();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        file("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write ext");
    #[rustfmt::skip]
    openssl(&["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "1", "-subj", "/CN=test CA", "-keyout", &file("ca.key"), "-out", &file("ca.pem")]);
    #[rustfmt::skip]
    openssl(&["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=127.0.0.1", "-keyout", &file("key.pem"), "-out", &file("leaf.csr")]);
    #[rustfmt::skip]
    openssl(&["x509", "-req", "-in", &file("leaf.csr"), "-CA", &file("ca.pem"), "-CAkey", &file("ca.key"),
        "-CAcreateserial", "-days", "1", "-extfile", &file("leaf.ext"), "-out", &file("cert.pem")]);
    let tls = TlsConfig {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
    };
    (tls, std::fs::read(dir.join("ca.pem")).expect("ca"))
}

fn server(port: u16, tls: TlsConfig) -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port,
        workers: 1,
        shutdown_timeout_secs: 1,
        json_limit_bytes: 256,
        trusted_proxies: vec![],
        tls: Some(tls),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[actix_web::test]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, ca) = certificates(dir.path());
    let config = server(free_port(), tls.clone());
    let cors = CorsConfig {
        allowed_origins: vec![],
        max_age_secs: 60,
    };
    let shell = Shell::new(
        "tls",
        &config,
        cors,
        Health::new(Duration::from_millis(500)),
    )
    .expect("shell");
    let serving = config.clone();
    let server = actix_web::rt::spawn(async move {
        web::serve(&serving, move || {
            web::app(shell.clone(), |cfg| {
                cfg.route(
                    "/hello",
                    aw::get().to(|| async { HttpResponse::Ok().body("hi") }),
                );
            })
        })
        .await
    });

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("pem")])
        .build()
        .expect("client");
    let url = format!("https://127.0.0.1:{}/hello", config.port);
    let mut answer = client.get(&url).send().await;
    for _ in 0..100 {
        if answer.is_ok() || server.is_finished() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        answer = client.get(&url).send().await;
    }
    let resp = answer.unwrap_or_else(|err| panic!("the server answers HTTPS: {err:?}"));
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.text().await.expect("body"), "hi");

    // Plain HTTP on the same port is not served.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/hello", config.port)).await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
    server.abort();
}

#[actix_web::test]
async fn a_bad_key_file_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut tls, _) = certificates(dir.path());
    tls.key_file = dir.path().join("missing.pem");
    let err = web::app::tls_config(&tls).expect_err("missing key is refused");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    std::fs::write(dir.path().join("garbage.pem"), "not a key").expect("write");
    tls.key_file = dir.path().join("garbage.pem");
    let err = web::app::tls_config(&tls).expect_err("garbage key is refused");
    assert!(err.to_string().contains("garbage.pem"), "{err}");
}
