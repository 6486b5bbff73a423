//! The file transport: the embedded default when no SMTP server is configured.

use std::path::PathBuf;
use std::time::Duration;

use email::{Delivery, Mail, Mailer, MailerConfig, Recipient, TransportKind, VerificationCode};

use crate::support::{fresh_code, parse, six_digit_code, unique_recipient};

/// A directory of its own under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let name = unique_recipient(tag).replace('@', "-");
        Self(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn without_smtp_mail_is_written_to_an_eml_file() {
    let dir = TempDir::new("mail-files");
    // a directory that does not exist yet is created
    let config = MailerConfig {
        file_dir: dir.0.join("outbox"),
        ..MailerConfig::default()
    };
    assert!(config.smtp.is_none());
    let mailer = Mailer::new(&config).expect("mailer");
    assert_eq!(mailer.transport_kind(), TransportKind::File);
    assert_eq!(mailer.file_dir(), Some(config.file_dir.as_path()));
    mailer.check().await.expect("directory exists");

    let to = unique_recipient("file");
    let code = fresh_code();
    let mail = Mail::VerificationCode {
        code: VerificationCode::parse(&code).expect("six digits"),
        valid_for: Duration::from_secs(15 * 60),
    };
    let Delivery::File { path } = mailer
        .send(&Recipient::parse(&to).expect("address"), &mail)
        .await
        .expect("written")
    else {
        panic!("the file transport reports a file");
    };
    assert_eq!(path.parent(), Some(config.file_dir.as_path()));
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("eml"));

    let got = parse(&std::fs::read(&path).expect("the .eml file"));
    assert_eq!(got.to, to);
    assert_eq!(got.subject, "Your ContainerPub verification code");
    assert_eq!(six_digit_code(&got.text), code);
    assert!(got.html.contains(&code));

    // what `format` returns is what the transport wrote
    let formatted = mailer
        .format(&Recipient::parse(&to).expect("address"), &mail)
        .expect("formatted");
    assert_eq!(six_digit_code(&parse(&formatted).text), code);
}

#[test]
fn a_file_in_place_of_the_directory_is_an_error() {
    let dir = TempDir::new("mail-blocked");
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let blocker = dir.0.join("outbox");
    std::fs::write(&blocker, b"not a directory").expect("file");
    let config = MailerConfig {
        file_dir: blocker,
        ..MailerConfig::default()
    };
    let err = Mailer::new(&config).expect_err("cannot create the directory");
    assert!(matches!(err, email::Error::MailDir { .. }), "{err:?}");
}

#[test]
fn mailer_can_live_in_shared_app_state() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Mailer>();
}
