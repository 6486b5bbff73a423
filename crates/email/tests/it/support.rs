//! Finding the local SMTP server and reading messages back out of its maildir.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mail_parser::{Message, MessageParser, MimeHeaders};

/// The server `deploy/smtp.sh` runs: where it listens and where it stores what it receives.
#[derive(Clone, Debug)]
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// The local SMTP server, started through `deploy/smtp.sh start` if it is not running yet.
/// When there is none: in CI (env `CI` set) the test fails; elsewhere it prints a notice and
/// the caller skips.
pub fn smtp_server() -> Option<SmtpServer> {
    static SERVER: OnceLock<Result<SmtpServer, String>> = OnceLock::new();
    let found = SERVER.get_or_init(|| {
        let port = match std::env::var("CP_SMTP_PORT") {
            Ok(p) => p
                .parse()
                .map_err(|_| format!("CP_SMTP_PORT={p} is not a port"))?,
            Err(_) => 2525,
        };
        let local = std::env::var_os("CP_LOCAL")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".local"));
        let maildir = local.join("mail");
        if !accepts(port) {
            let script = workspace_root().join("deploy/smtp.sh");
            let status = Command::new(&script)
                .arg("start")
                .status()
                .map_err(|e| format!("could not run {}: {e}", script.display()))?;
            if !status.success() || !accepts(port) {
                return Err(format!(
                    "no SMTP server on 127.0.0.1:{port} and `{} start` failed ({status})",
                    script.display()
                ));
            }
        }
        Ok(SmtpServer { port, maildir })
    });
    match found {
        Ok(server) => Some(server.clone()),
        Err(why) if in_ci() => panic!("CI is set and the SMTP test server is missing: {why}"),
        Err(why) => {
            eprintln!("SKIPPED: {why}; run `deploy/smtp.sh start` to run this test");
            None
        }
    }
}

/// A recipient address no other test (or test run) uses.
pub fn unique_recipient(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "{tag}-{}-{nanos}-{}@example.test",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits (up to 10 s) for the message addressed to `recipient` to appear in the maildir and
/// returns its raw bytes. aiosmtpd's Mailbox handler records the envelope recipient in the
/// `X-RcptTo` header.
pub fn wait_for_message(maildir: &Path, recipient: &str) -> Vec<u8> {
    let needle = format!("X-RcptTo: {recipient}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(raw) = std::fs::read(entry.path()) else {
                    continue;
                };
                let header_end = find(&raw, b"\n\n").unwrap_or(raw.len());
                if String::from_utf8_lossy(&raw[..header_end])
                    .lines()
                    .any(|l| l.trim_end() == needle)
                {
                    return raw;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no message for {recipient} in {} after 10 s",
            maildir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A parsed message with exactly one plain-text and one HTML body in a `multipart/alternative`.
pub struct Parsed {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub to_name: String,
    pub bcc_present: bool,
    pub text: String,
    pub html: String,
}

pub fn parse(raw: &[u8]) -> Parsed {
    let message: Message<'_> = MessageParser::default()
        .parse(raw)
        .expect("a parseable RFC 5322 message");
    let ct = message.content_type().expect("a Content-Type header");
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative")),
        "top-level content type"
    );
    assert_eq!(message.text_body_count(), 1, "one text/plain part");
    assert_eq!(message.html_body_count(), 1, "one text/html part");
    let addr = |a: Option<&mail_parser::Address<'_>>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned()
    };
    Parsed {
        subject: message.subject().unwrap_or_default().to_owned(),
        from: addr(message.from()),
        to: addr(message.to()),
        to_name: message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .unwrap_or_default()
            .to_owned(),
        bcc_present: message.bcc().is_some(),
        text: message.body_text(0).expect("text part").into_owned(),
        html: message.body_html(0).expect("html part").into_owned(),
    }
}

/// The only run of exactly six digits in `text`.
pub fn six_digit_code(text: &str) -> String {
    let runs: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 6)
        .collect();
    assert_eq!(runs.len(), 1, "exactly one six-digit code in: {text}");
    runs[0].to_owned()
}

/// The first `http(s)://` URL in plain text (up to the next whitespace).
pub fn first_link(text: &str) -> String {
    let start = text.find("http").expect("a link in the text");
    text[start..]
        .split(char::is_whitespace)
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The value of the first `href="…"` attribute, with `&amp;` undone.
pub fn first_href(html: &str) -> String {
    let start = html.find("href=\"").expect("an href in the HTML") + "href=\"".len();
    let end = html[start..].find('"').expect("a closing quote") + start;
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// A code that differs from run to run.
pub fn fresh_code() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{:06}", nanos % 1_000_000)
}
