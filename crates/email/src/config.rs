use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// How mail leaves the process: through an SMTP server when [`MailerConfig::smtp`] is set,
/// otherwise as `.eml` files in [`MailerConfig::file_dir`] (the embedded default: mail is
/// never dropped silently).
///
/// Deserializes from the services' configuration, for example (TOML):
/// ```toml
/// [email]
/// from = "ContainerPub <noreply@containerpub.local>"
/// file_dir = "data/mail"
/// [email.smtp]
/// host = "127.0.0.1"
/// port = 2525
/// tls = "none"          # none | starttls | tls
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailerConfig {
    /// The sender mailbox, with or without a display name:
    /// `ContainerPub <noreply@containerpub.local>`.
    #[serde(default = "default_from")]
    pub from: String,
    /// The product name used in subjects and bodies.
    #[serde(default = "default_product_name")]
    pub product_name: String,
    /// The SMTP server; `None` selects the file transport.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Where the file transport writes one `<id>.eml` file per message (created when missing).
    #[serde(default = "default_file_dir")]
    pub file_dir: PathBuf,
}

impl Default for MailerConfig {
    /// No SMTP server: mail goes to files under `data/mail`.
    fn default() -> Self {
        Self {
            from: default_from(),
            product_name: default_product_name(),
            smtp: None,
            file_dir: default_file_dir(),
        }
    }
}

fn default_from() -> String {
    "ContainerPub <noreply@containerpub.local>".to_owned()
}

fn default_product_name() -> String {
    "ContainerPub".to_owned()
}

fn default_file_dir() -> PathBuf {
    PathBuf::from("data/mail")
}

/// An SMTP server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or IP address.
    pub host: String,
    /// Port; when absent, the usual port of the TLS mode (25, 587 or 465).
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport security.
    #[serde(default)]
    pub tls: TlsMode,
    /// Login, when the server asks for one.
    #[serde(default)]
    pub credentials: Option<SmtpCredentials>,
    /// Timeout of each SMTP command, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    10
}

impl SmtpConfig {
    /// A server on `host:port` without TLS or login (a local relay such as the one
    /// `deploy/smtp.sh` starts).
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port: Some(port),
            tls: TlsMode::None,
            credentials: None,
            timeout_secs: default_timeout_secs(),
        }
    }

    /// The configured port, or the usual one for [`SmtpConfig::tls`].
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::None => 25,
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
        })
    }

    /// The timeout of each SMTP command.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// Transport security towards the SMTP server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text; for a relay on the loopback interface only.
    None,
    /// Plain connection upgraded with `STARTTLS`, which is required (submission, port 587).
    #[default]
    #[serde(alias = "start_tls")]
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

impl TlsMode {
    /// `none`, `starttls` or `tls`, as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Tls => "tls",
        }
    }
}

/// SMTP login. `Debug` prints neither the user name nor the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpCredentials {
    /// The user name (often an email address, so it is not printed either).
    pub username: String,
    /// The password.
    pub password: SecretString,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &"[REDACTED]")
            .field("password", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_config_deserializes_with_defaults() {
        let config: MailerConfig = serde_json::from_str(
            r#"{"smtp": {"host": "mail.example.test", "tls": "tls",
                "credentials": {"username": "mailer@example.test", "password": "s3cr3t-value"}}}"#,
        )
        .expect("valid config");
        let smtp = config.smtp.as_ref().expect("smtp section");
        assert_eq!(smtp.tls, TlsMode::Tls);
        assert_eq!(smtp.effective_port(), 465);
        assert_eq!(smtp.timeout(), Duration::from_secs(10));
        assert_eq!(config.from, "ContainerPub <noreply@containerpub.local>");
        assert_eq!(config.file_dir, PathBuf::from("data/mail"));

        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
        assert!(!printed.contains("mailer@example.test"), "{printed}");
    }

    #[test]
    fn tls_modes_and_default_ports() {
        for (name, mode, port) in [
            ("none", TlsMode::None, 25),
            ("starttls", TlsMode::StartTls, 587),
            ("start_tls", TlsMode::StartTls, 587),
            ("tls", TlsMode::Tls, 465),
        ] {
            let smtp: SmtpConfig =
                serde_json::from_str(&format!(r#"{{"host": "h", "tls": "{name}"}}"#)).expect(name);
            assert_eq!((smtp.tls, smtp.effective_port()), (mode, port), "{name}");
        }
        let smtp: SmtpConfig = serde_json::from_str(r#"{"host": "h"}"#).expect("host only");
        assert_eq!(smtp.tls, TlsMode::StartTls, "TLS unless switched off");
        assert!(serde_json::from_str::<SmtpConfig>(r#"{"host": "h", "tls": "ssl"}"#).is_err());
        assert!(serde_json::from_str::<SmtpConfig>(r#"{"host": "h", "user": "x"}"#).is_err());
    }
}
