use std::path::PathBuf;

/// Errors of the mail crate.
///
/// No message names a recipient address, a code, a link or a password. The `source` of
/// [`Error::Smtp`] is lettre's error, which may quote the SMTP server's reply; log it with care.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured sender (`from`) is not a valid mailbox.
    #[error("the configured sender address is invalid")]
    InvalidSender(#[source] lettre::address::AddressError),
    /// A recipient address is not a valid mailbox.
    #[error("the recipient address is invalid")]
    InvalidRecipient(#[source] lettre::address::AddressError),
    /// A verification code is not exactly six ASCII digits.
    #[error("a verification code must be exactly six digits")]
    InvalidVerificationCode,
    /// A link is not an absolute `http`/`https` URL, or contains whitespace or control characters.
    #[error("a link must be an absolute http(s) URL without whitespace")]
    InvalidLink,
    /// The SMTP transport could not be set up (for example TLS parameters for the host).
    #[error("the SMTP transport for host `{host}` could not be set up")]
    SmtpSetup {
        /// The configured SMTP host.
        host: String,
        /// lettre's error.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The directory of the file transport could not be created.
    #[error("the mail directory `{}` could not be created", dir.display())]
    MailDir {
        /// The configured directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The message could not be assembled.
    #[error("the message could not be built")]
    Build(#[source] lettre::error::Error),
    /// The SMTP server could not be reached or refused the message.
    #[error("SMTP delivery failed")]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// The file transport could not write the message.
    #[error("the message file could not be written")]
    File(#[source] lettre::transport::file::Error),
}

impl Error {
    /// True when trying the same delivery again later may succeed: the SMTP server could not
    /// be reached, timed out or answered with a transient (4xx) reply. False for a permanent
    /// (5xx) reply, a TLS failure and every error that is not about delivery.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Smtp(e) => {
                e.is_transient()
                    || e.is_timeout()
                    || !(e.is_permanent() || e.is_client() || e.is_tls() || e.is_response())
            }
            _ => false,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
