use std::fmt;
use std::path::{Path, PathBuf};

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{MailerConfig, SmtpConfig, TlsMode};
use crate::error::{Error, Result};
use crate::templates::Mail;

/// A validated recipient mailbox. `Debug` does not print the address.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(Mailbox);

impl Recipient {
    /// Parses an email address (`user@example.com`, without a display name).
    pub fn parse(address: &str) -> Result<Self> {
        let email = address.trim().parse().map_err(Error::InvalidRecipient)?;
        Ok(Self(Mailbox::new(None, email)))
    }

    /// Adds a display name (`Ada Lovelace <ada@example.com>`). Control characters are dropped
    /// and whitespace collapsed; an empty name is ignored.
    pub fn with_name(self, name: &str) -> Self {
        let name = name
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Self(Mailbox::new(
            (!name.is_empty()).then_some(name),
            self.0.email,
        ))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recipient([REDACTED])")
    }
}

/// Which transport a [`Mailer`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// An SMTP server.
    Smtp,
    /// `.eml` files in a directory.
    File,
}

/// What became of a message that was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The SMTP server accepted it.
    Smtp,
    /// It was written to this file.
    File {
        /// The `.eml` file.
        path: PathBuf,
    },
}

/// Sends [`Mail`] through the transport chosen by [`MailerConfig`]. Cheap to clone (the SMTP
/// connection pool is shared); `Debug` prints no credentials.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    product_name: String,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Smtp {
        inner: AsyncSmtpTransport<Tokio1Executor>,
        host: String,
        port: u16,
        tls: TlsMode,
    },
    File {
        inner: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl Mailer {
    /// Builds the mailer: SMTP when `config.smtp` is set, else the file transport (its directory
    /// is created now). Nothing is sent or connected yet; see [`Mailer::check`].
    pub fn new(config: &MailerConfig) -> Result<Self> {
        let from = config.from.parse().map_err(Error::InvalidSender)?;
        let transport = match &config.smtp {
            Some(smtp) => smtp_transport(smtp)?,
            None => file_transport(&config.file_dir)?,
        };
        Ok(Self {
            from,
            product_name: config.product_name.clone(),
            transport,
        })
    }

    /// The transport in use.
    pub fn transport_kind(&self) -> TransportKind {
        match self.transport {
            Transport::Smtp { .. } => TransportKind::Smtp,
            Transport::File { .. } => TransportKind::File,
        }
    }

    /// The directory of the file transport, `None` for SMTP.
    pub fn file_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Smtp { .. } => None,
            Transport::File { dir, .. } => Some(dir),
        }
    }

    /// Renders `mail` (plain text and HTML, as `multipart/alternative`) and sends it to `to`.
    pub async fn send(&self, to: &Recipient, mail: &Mail) -> Result<Delivery> {
        let message = self.message(to, mail)?;
        let delivery = match &self.transport {
            Transport::Smtp { inner, .. } => {
                inner.send(message).await.map_err(Error::Smtp)?;
                Delivery::Smtp
            }
            Transport::File { inner, dir } => {
                let id = inner.send(message).await.map_err(Error::File)?;
                Delivery::File {
                    path: dir.join(format!("{id}.eml")),
                }
            }
        };
        tracing::debug!(
            mail.kind = mail.kind().as_str(),
            mail.transport = ?self.transport_kind(),
            "mail sent"
        );
        Ok(delivery)
    }

    /// The message [`Mailer::send`] would send (RFC 5322 bytes, CRLF line ends), without sending it.
    pub fn format(&self, to: &Recipient, mail: &Mail) -> Result<Vec<u8>> {
        Ok(self.message(to, mail)?.formatted())
    }

    fn message(&self, to: &Recipient, mail: &Mail) -> Result<Message> {
        let rendered = mail.render(&self.product_name);
        Message::builder()
            .from(self.from.clone())
            .to(to.0.clone())
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(Error::Build)
    }

    /// Checks that mail can go out: the SMTP server answers (connect, `EHLO`, `NOOP`, `QUIT`),
    /// or the file transport's directory exists. For a health check.
    pub async fn check(&self) -> Result<()> {
        match &self.transport {
            Transport::Smtp { inner, .. } => {
                inner.test_connection().await.map_err(Error::Smtp)?;
                Ok(())
            }
            Transport::File { dir, .. } => match std::fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(Error::MailDir {
                    dir: dir.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        "not a directory",
                    ),
                }),
                Err(source) => Err(Error::MailDir {
                    dir: dir.clone(),
                    source,
                }),
            },
        }
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mailer");
        d.field("product_name", &self.product_name);
        match &self.transport {
            Transport::Smtp {
                host, port, tls, ..
            } => d
                .field("transport", &"smtp")
                .field("host", host)
                .field("port", port)
                .field("tls", tls),
            Transport::File { dir, .. } => d.field("transport", &"file").field("dir", dir),
        };
        d.finish_non_exhaustive()
    }
}

fn smtp_transport(config: &SmtpConfig) -> Result<Transport> {
    let setup = |source| Error::SmtpSetup {
        host: config.host.clone(),
        source,
    };
    let host = config.host.as_str();
    let builder = match config.tls {
        TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        TlsMode::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(setup)?
        }
        TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(setup)?,
    };
    let port = config.effective_port();
    let mut builder = builder.port(port).timeout(Some(config.timeout()));
    if let Some(credentials) = &config.credentials {
        builder = builder.credentials(Credentials::new(
            credentials.username.clone(),
            credentials.password.expose_secret().to_owned(),
        ));
    }
    Ok(Transport::Smtp {
        inner: builder.build(),
        host: config.host.clone(),
        port,
        tls: config.tls,
    })
}

fn file_transport(dir: &Path) -> Result<Transport> {
    std::fs::create_dir_all(dir).map_err(|source| Error::MailDir {
        dir: dir.to_owned(),
        source,
    })?;
    tracing::info!(mail.dir = %dir.display(), "no SMTP server configured: mail is written to files");
    Ok(Transport::File {
        inner: AsyncFileTransport::new(dir),
        dir: dir.to_owned(),
    })
}
