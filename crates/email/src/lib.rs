//! Templated mail (verification code, password reset, temporary password, early-access
//! invitation) sent over SMTP with lettre, or written to files when no SMTP server is configured.
//!
//! ```no_run
//! # async fn example() -> email::Result<()> {
//! use std::time::Duration;
//! use email::{Mail, Mailer, MailerConfig, Recipient, SmtpConfig, VerificationCode};
//!
//! let config = MailerConfig {
//!     smtp: Some(SmtpConfig::plain("127.0.0.1", 2525)),
//!     ..MailerConfig::default()
//! };
//! let mailer = Mailer::new(&config)?;
//! let mail = Mail::VerificationCode {
//!     code: VerificationCode::parse("123456")?,
//!     valid_for: Duration::from_secs(15 * 60),
//! };
//! mailer.send(&Recipient::parse("ada@example.com")?, &mail).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Nothing here logs a recipient address, a code, a link or a password, and `Debug` of every
//! type that holds one prints `[REDACTED]` instead.

mod config;
mod error;
mod mailer;
mod templates;

pub use config::{MailerConfig, SmtpConfig, SmtpCredentials, TlsMode};
pub use error::{Error, Result};
pub use mailer::{Delivery, Mailer, Recipient, TransportKind};
pub use templates::{Link, Mail, MailKind, Rendered, VerificationCode};
