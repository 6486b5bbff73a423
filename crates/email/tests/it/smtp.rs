//! Real mail through the local aiosmtpd server, read back from its maildir.

use std::net::TcpListener;
use std::time::Duration;

use email::{
    Delivery, Error, Link, Mail, Mailer, MailerConfig, Recipient, SmtpConfig, TransportKind,
    VerificationCode,
};
use secrecy::SecretString;

use crate::support::{
    first_href, first_link, fresh_code, parse, six_digit_code, smtp_server, unique_recipient,
    wait_for_message,
};

fn mailer(port: u16) -> Mailer {
    let config = MailerConfig {
        smtp: Some(SmtpConfig::plain("127.0.0.1", port)),
        ..MailerConfig::default()
    };
    let mailer = Mailer::new(&config).expect("mailer");
    assert_eq!(mailer.transport_kind(), TransportKind::Smtp);
    mailer
}

#[tokio::test]
async fn verification_code_arrives_and_reads_back() {
    let Some(server) = smtp_server() else { return };
    let mailer = mailer(server.port);
    mailer.check().await.expect("the SMTP server answers");

    let to = unique_recipient("code");
    let code = fresh_code();
    let mail = Mail::VerificationCode {
        code: VerificationCode::parse(&code).expect("six digits"),
        valid_for: Duration::from_secs(15 * 60),
    };
    let delivery = mailer
        .send(&Recipient::parse(&to).expect("address"), &mail)
        .await
        .expect("sent");
    assert_eq!(delivery, Delivery::Smtp);

    let got = parse(&wait_for_message(&server.maildir, &to));
    assert_eq!(got.subject, "Your ContainerPub verification code");
    assert_eq!(got.from, "noreply@containerpub.local");
    assert_eq!(got.to, to);
    assert_eq!(six_digit_code(&got.text), code);
    assert!(got.text.contains("15 minutes"));
    assert!(got.html.contains(&format!(">{code}</p>")), "{}", got.html);
}

#[tokio::test]
async fn password_reset_link_survives_transfer_encoding() {
    let Some(server) = smtp_server() else { return };
    let mailer = mailer(server.port);
    let to = unique_recipient("reset");
    // long enough to be folded by quoted-printable, with characters it must encode
    let link = format!(
        "https://cp.example.test/reset-password/confirm?token={}&from=mail",
        "Ab3-_x".repeat(30)
    );
    let mail = Mail::PasswordReset {
        link: Link::parse(&link).expect("link"),
        valid_for: Duration::from_secs(3600),
    };
    // a display name cannot smuggle in a header
    let recipient = Recipient::parse(&to)
        .expect("address")
        .with_name("Ada\r\nBcc: eve@example.test\r\n Lovelace");
    mailer.send(&recipient, &mail).await.expect("sent");

    let got = parse(&wait_for_message(&server.maildir, &to));
    assert_eq!(got.to_name, "Ada Bcc: eve@example.test Lovelace");
    assert!(!got.bcc_present);
    assert_eq!(got.subject, "Reset your ContainerPub password");
    assert_eq!(first_link(&got.text), link);
    assert_eq!(first_href(&got.html), link);
    assert!(got.text.contains("expires in 1 hour"));
}

#[tokio::test]
async fn temporary_password_and_invitation_arrive_escaped() {
    let Some(server) = smtp_server() else { return };
    let mailer = mailer(server.port);

    let to = unique_recipient("temp");
    let password = "Tmp<&>\"pw'42";
    let mail = Mail::TemporaryPassword {
        password: SecretString::from(password),
    };
    mailer
        .send(&Recipient::parse(&to).expect("address"), &mail)
        .await
        .expect("sent");
    let got = parse(&wait_for_message(&server.maildir, &to));
    assert_eq!(got.subject, "Your temporary ContainerPub password");
    assert!(
        got.text.contains(&format!("    {password}\n")),
        "{}",
        got.text
    );
    assert!(
        got.html.contains("Tmp&lt;&amp;&gt;&quot;pw&#39;42"),
        "{}",
        got.html
    );

    let to = unique_recipient("invite");
    let link = "https://cp.example.test/register?invite=x1&email=y";
    let mail = Mail::EarlyAccessInvitation {
        name: Some("Grace <b>Hopper</b>".to_owned()),
        link: Link::parse(link).expect("link"),
    };
    mailer
        .send(&Recipient::parse(&to).expect("address"), &mail)
        .await
        .expect("sent");
    let got = parse(&wait_for_message(&server.maildir, &to));
    assert_eq!(got.subject, "Your early access to ContainerPub");
    assert!(got.text.starts_with("Hello Grace <b>Hopper</b>,"));
    assert!(got.html.contains("Hello Grace &lt;b&gt;Hopper&lt;/b&gt;,"));
    assert!(!got.html.contains("<b>"));
    assert_eq!(first_link(&got.text), link);
    assert_eq!(first_href(&got.html), link);
}

/// Mail is never dropped silently: with SMTP configured and nothing listening, sending fails.
#[tokio::test]
async fn unreachable_server_is_a_transient_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let config = MailerConfig {
        smtp: Some(SmtpConfig {
            timeout_secs: 2,
            ..SmtpConfig::plain("127.0.0.1", port)
        }),
        ..MailerConfig::default()
    };
    let mailer = Mailer::new(&config).expect("mailer");
    let mail = Mail::VerificationCode {
        code: VerificationCode::parse("123456").expect("six digits"),
        valid_for: Duration::from_secs(60),
    };
    let err = mailer
        .send(
            &Recipient::parse("nobody@example.test").expect("address"),
            &mail,
        )
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, Error::Smtp(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(mailer.check().await.is_err());
}
