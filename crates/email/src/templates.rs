//! The messages the platform sends, each rendered to a plain-text and an HTML part.
//!
//! Templates are small functions: every value is HTML-escaped before it enters the HTML part,
//! and links are checked to be absolute `http(s)` URLs before a message can be built.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// A six-digit email-verification code. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(String);

impl VerificationCode {
    /// Accepts exactly six ASCII digits.
    pub fn parse(code: &str) -> Result<Self> {
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(Error::InvalidVerificationCode)
        }
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode([REDACTED])")
    }
}

/// An absolute `http` or `https` URL put into a message (it usually carries a single-use token,
/// so `Debug` does not print it).
#[derive(Clone, PartialEq, Eq)]
pub struct Link(String);

impl Link {
    /// The longest link accepted, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Accepts an absolute `http://` or `https://` URL with a host, no whitespace and no control
    /// characters, at most [`Link::MAX_LEN`] bytes long.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or(Error::InvalidLink)?;
        let host_present = rest
            .chars()
            .next()
            .is_some_and(|c| !matches!(c, '/' | '?' | '#'));
        let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if host_present && clean && url.len() <= Self::MAX_LEN {
            Ok(Self(url.to_owned()))
        } else {
            Err(Error::InvalidLink)
        }
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Link([REDACTED])")
    }
}

/// A message the platform sends. `Debug` prints only the kind.
#[derive(Clone)]
pub enum Mail {
    /// The six-digit code of the (deprecated) email-verification flow.
    VerificationCode {
        /// The code.
        code: VerificationCode,
        /// How long the code stays valid.
        valid_for: Duration,
    },
    /// A link to choose a new password (the built-in provider's reset flow).
    PasswordReset {
        /// The single-use reset link.
        link: Link,
        /// How long the link stays valid.
        valid_for: Duration,
    },
    /// A temporary password set by an administrator; it must be changed at the next login.
    TemporaryPassword {
        /// The password.
        password: SecretString,
    },
    /// The answer to an approved early-access request, with the link to register.
    EarlyAccessInvitation {
        /// The name given in the request, if any.
        name: Option<String>,
        /// Where to register.
        link: Link,
    },
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mail::{:?}", self.kind())
    }
}

/// Which template a [`Mail`] uses, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// [`Mail::VerificationCode`]
    VerificationCode,
    /// [`Mail::PasswordReset`]
    PasswordReset,
    /// [`Mail::TemporaryPassword`]
    TemporaryPassword,
    /// [`Mail::EarlyAccessInvitation`]
    EarlyAccessInvitation,
}

impl MailKind {
    /// A stable snake_case name: `verification_code`, `password_reset`, `temporary_password`,
    /// `early_access_invitation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerificationCode => "verification_code",
            Self::PasswordReset => "password_reset",
            Self::TemporaryPassword => "temporary_password",
            Self::EarlyAccessInvitation => "early_access_invitation",
        }
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rendered message: subject, plain-text part and HTML part. `Debug` prints only the subject
/// (the bodies hold codes, links and passwords).
#[derive(Clone)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part.
    pub html: String,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Mail {
    /// The template this message uses.
    pub fn kind(&self) -> MailKind {
        match self {
            Self::VerificationCode { .. } => MailKind::VerificationCode,
            Self::PasswordReset { .. } => MailKind::PasswordReset,
            Self::TemporaryPassword { .. } => MailKind::TemporaryPassword,
            Self::EarlyAccessInvitation { .. } => MailKind::EarlyAccessInvitation,
        }
    }

    /// Renders the subject and both parts; `product` is the product name shown in them.
    pub fn render(&self, product: &str) -> Rendered {
        match self {
            Self::VerificationCode { code, valid_for } => {
                verification_code(product, code, *valid_for)
            }
            Self::PasswordReset { link, valid_for } => password_reset(product, link, *valid_for),
            Self::TemporaryPassword { password } => temporary_password(product, password),
            Self::EarlyAccessInvitation { name, link } => {
                early_access_invitation(product, name.as_deref(), link)
            }
        }
    }
}

fn verification_code(product: &str, code: &VerificationCode, valid_for: Duration) -> Rendered {
    let code = code.0.as_str();
    let valid_for = human_duration(valid_for);
    let text = format!(
        "Hello,\n\n\
         your {product} verification code is:\n\n    {code}\n\n\
         It expires in {valid_for}. If you did not ask for it, you can ignore this message.\n"
    );
    let body = format!(
        "<p>Hello,</p>\n\
         <p>your {product} verification code is:</p>\n\
         <p style=\"font-size:28px;font-weight:bold;letter-spacing:6px;font-family:monospace;\">{code}</p>\n\
         <p>It expires in {valid_for}. If you did not ask for it, you can ignore this message.</p>",
        product = escape(product),
        code = escape(code),
        valid_for = escape(&valid_for),
    );
    Rendered {
        subject: format!("Your {product} verification code"),
        text,
        html: layout(product, &format!("Your {product} verification code"), &body),
    }
}

fn password_reset(product: &str, link: &Link, valid_for: Duration) -> Rendered {
    let link = link.0.as_str();
    let valid_for = human_duration(valid_for);
    let text = format!(
        "Hello,\n\n\
         someone asked to reset the password of your {product} account. To choose a new password, \
         open this link:\n\n{link}\n\n\
         The link works once and expires in {valid_for}. If you did not ask for it, you can ignore \
         this message: your password stays as it is.\n"
    );
    let body = format!(
        "<p>Hello,</p>\n\
         <p>someone asked to reset the password of your {product} account.</p>\n\
         {button}\n\
         <p>Or copy this link into your browser:<br><span style=\"word-break:break-all;\">{link}</span></p>\n\
         <p>The link works once and expires in {valid_for}. If you did not ask for it, you can \
         ignore this message: your password stays as it is.</p>",
        product = escape(product),
        button = button(link, "Choose a new password"),
        link = escape(link),
        valid_for = escape(&valid_for),
    );
    Rendered {
        subject: format!("Reset your {product} password"),
        text,
        html: layout(product, &format!("Reset your {product} password"), &body),
    }
}

fn temporary_password(product: &str, password: &SecretString) -> Rendered {
    let password = password.expose_secret();
    let text = format!(
        "Hello,\n\n\
         an administrator set a temporary password for your {product} account:\n\n    {password}\n\n\
         Sign in with it; you will be asked to choose a new password straight away.\n"
    );
    let body = format!(
        "<p>Hello,</p>\n\
         <p>an administrator set a temporary password for your {product} account:</p>\n\
         <p style=\"font-size:18px;font-family:monospace;\">{password}</p>\n\
         <p>Sign in with it; you will be asked to choose a new password straight away.</p>",
        product = escape(product),
        password = escape(password),
    );
    Rendered {
        subject: format!("Your temporary {product} password"),
        text,
        html: layout(
            product,
            &format!("Your temporary {product} password"),
            &body,
        ),
    }
}

fn early_access_invitation(product: &str, name: Option<&str>, link: &Link) -> Rendered {
    let link = link.0.as_str();
    let name = name.map(one_line).filter(|n| !n.is_empty());
    let greeting = match &name {
        Some(name) => format!("Hello {name},"),
        None => "Hello,".to_owned(),
    };
    let text = format!(
        "{greeting}\n\n\
         your request for early access to {product} has been approved. Create your account here:\n\n\
         {link}\n\nWelcome aboard!\n"
    );
    let body = format!(
        "<p>{greeting}</p>\n\
         <p>your request for early access to {product} has been approved.</p>\n\
         {button}\n\
         <p>Or copy this link into your browser:<br><span style=\"word-break:break-all;\">{link}</span></p>\n\
         <p>Welcome aboard!</p>",
        greeting = escape(&greeting),
        product = escape(product),
        button = button(link, "Create your account"),
        link = escape(link),
    );
    Rendered {
        subject: format!("Your early access to {product}"),
        text,
        html: layout(product, &format!("Your early access to {product}"), &body),
    }
}

/// The HTML document around a message body; `body` is HTML already, the rest is escaped here.
fn layout(product: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n\
         <body style=\"margin:0;padding:24px;background:#f6f7f9;color:#1f2328;\
         font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;\">\n\
         <div style=\"max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px;\">\n\
         {body}\n\
         <p style=\"margin-top:32px;font-size:12px;color:#6e7781;\">{product}</p>\n\
         </div>\n\
         </body>\n\
         </html>\n",
        title = escape(title),
        product = escape(product),
    )
}

/// A link styled as a button; both arguments are raw text.
fn button(href: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{href}\" style=\"display:inline-block;padding:10px 18px;background:#0969da;\
         color:#ffffff;border-radius:6px;text-decoration:none;\">{label}</a></p>",
        href = escape(href),
        label = escape(label),
    )
}

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Collapses whitespace and drops control characters, so a user-supplied value stays on one line.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// "15 minutes", "1 hour", "2 days": the largest whole unit, rounding minutes up (at least one).
fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3_600 && secs.is_multiple_of(3_600) {
        (secs / 3_600, "hour")
    } else {
        (secs.div_ceil(60).max(1), "minute")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_code_accepts_six_digits_only() {
        assert!(VerificationCode::parse("012345").is_ok());
        for bad in ["12345", "1234567", "12345a", " 12345", "١٢٣٤٥٦", ""] {
            assert!(VerificationCode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn link_must_be_absolute_http() {
        assert!(Link::parse("https://example.test/reset?token=a&b=c").is_ok());
        assert!(Link::parse("http://127.0.0.1:8080/x").is_ok());
        for bad in [
            "javascript:alert(1)",
            "ftp://example.test",
            "https://",
            "https:///path",
            "https://exa mple.test",
            "https://example.test/\r\nBcc: x",
            "//example.test",
        ] {
            assert!(Link::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Link::parse(&format!("https://e.test/{}", "a".repeat(Link::MAX_LEN))).is_err());
    }

    #[test]
    fn html_values_are_escaped() {
        let link = Link::parse("https://example.test/register?a=1&b=\"2\"").expect("valid link");
        let mail = Mail::EarlyAccessInvitation {
            name: Some("<script>alert('x')</script>\r\nBcc: evil".to_owned()),
            link,
        };
        let r = mail.render("Container<Pub>");
        assert!(!r.html.contains("<script>"));
        assert!(
            r.html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Bcc: evil")
        );
        assert!(
            r.html
                .contains("href=\"https://example.test/register?a=1&amp;b=&quot;2&quot;\"")
        );
        assert!(r.html.contains("Container&lt;Pub&gt;"));
        // the text part is not HTML: values appear as they are, but on one line
        assert!(
            r.text
                .starts_with("Hello <script>alert('x')</script> Bcc: evil,\n")
        );
        assert!(r.text.contains("https://example.test/register?a=1&b=\"2\""));
    }

    #[test]
    fn every_template_renders_its_value_in_both_parts() {
        let code = Mail::VerificationCode {
            code: VerificationCode::parse("493817").expect("valid code"),
            valid_for: Duration::from_secs(15 * 60),
        }
        .render("ContainerPub");
        assert_eq!(code.subject, "Your ContainerPub verification code");
        assert!(code.text.contains("493817") && code.html.contains("493817"));
        assert!(code.text.contains("15 minutes"));

        let reset = Mail::PasswordReset {
            link: Link::parse("https://cp.test/reset?t=abc").expect("valid link"),
            valid_for: Duration::from_secs(3600),
        }
        .render("ContainerPub");
        assert!(reset.text.contains("https://cp.test/reset?t=abc"));
        assert!(reset.html.contains("href=\"https://cp.test/reset?t=abc\""));
        assert!(reset.text.contains("1 hour"));

        let temp = Mail::TemporaryPassword {
            password: SecretString::from("Tmp-<&>-pass"),
        }
        .render("ContainerPub");
        assert!(temp.text.contains("Tmp-<&>-pass"));
        assert!(temp.html.contains("Tmp-&lt;&amp;&gt;-pass"));
    }

    #[test]
    fn debug_prints_no_secret() {
        let mail = Mail::TemporaryPassword {
            password: SecretString::from("hunter2-secret"),
        };
        let code = VerificationCode::parse("123456").expect("valid code");
        let link = Link::parse("https://cp.test/reset?t=tok").expect("valid link");
        let printed = format!("{mail:?} {code:?} {link:?} {:?}", mail.render("P"));
        for secret in ["hunter2-secret", "123456", "tok"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(0)), "1 minute");
        assert_eq!(human_duration(Duration::from_secs(61)), "2 minutes");
        assert_eq!(human_duration(Duration::from_secs(900)), "15 minutes");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(5400)), "90 minutes");
        assert_eq!(human_duration(Duration::from_secs(2 * 86_400)), "2 days");
    }
}
