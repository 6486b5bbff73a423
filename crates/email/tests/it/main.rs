//! Integration tests of the mail crate: real mail through a real SMTP server (Debian's aiosmtpd,
//! started with `deploy/smtp.sh start`, which these tests run themselves when no server answers),
//! read back from its maildir; and the file transport.

mod file;
mod smtp;
mod support;
