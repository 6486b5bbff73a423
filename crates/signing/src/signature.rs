//! Signed requests (SPEC §3.6): the canonical strings of signature v1 and of the original's v0,
//! HMAC-SHA256 under the secret's text, constant-time verification, the ±300 s window and the
//! token that replay protection remembers.
//!
//! v1: `X-Signature: v1=<base64 HMAC(secret, "v1\n{ts}\n{nonce}\n{METHOD}\n{path_and_query}\n{hex sha256(body)}")>`
//! v0: `X-Signature: <base64 HMAC(secret, "{ts}:{compact JSON of the envelope's body field, or empty}")>`

use base64::Engine;
use ring::{digest, hmac};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::apikey::ApiKeySecret;

/// Seconds a timestamp may be off from the server's clock, either way.
pub const WINDOW_SECS: i64 = 300;
/// Longest `X-Nonce`.
pub const MAX_NONCE_LEN: usize = 64;

/// Why a signed request is refused (each maps to a stable 401 code in the service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing or malformed (`signature_invalid`).
    #[error("the signature headers are malformed: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the window (`signature_expired`).
    #[error("the timestamp is outside the signature window")]
    Expired,
    /// The signature does not match (`signature_invalid`).
    #[error("the signature does not match")]
    Mismatch,
    /// v0 signatures are disabled in configuration (`signature_invalid`).
    #[error("signature v0 is disabled")]
    V0Disabled,
}

/// The HMAC-SHA256 key of one API key, ready to sign and verify. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<secret>)")
    }
}

impl SigningKey {
    /// The key of `secret`: the UTF-8 bytes of its text, exactly as shown.
    pub fn new(secret: &ApiKeySecret) -> Self {
        Self(hmac::Key::new(
            hmac::HMAC_SHA256,
            secret.expose().as_bytes(),
        ))
    }

    /// HMAC-SHA256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        hmac::sign(&self.0, message).as_ref().to_vec()
    }

    /// Whether `tag` is the HMAC of `message`, compared in constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, message, tag).is_ok()
    }
}

/// Lower-case hex of SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = digest::digest(&digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for byte in hash.as_ref() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// The string signature v1 signs. `path_and_query` is the request target as sent: the path,
/// plus `?` and the raw query string when there is one.
pub fn v1_canonical(
    timestamp: i64,
    nonce: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    format!(
        "v1\n{timestamp}\n{nonce}\n{method}\n{path_and_query}\n{}",
        sha256_hex(body)
    )
}

/// The string signature v0 signs: `{timestamp}:{payload}`.
pub fn v0_message(timestamp: &str, payload: &str) -> String {
    format!("{timestamp}:{payload}")
}

/// The v0 payload of an invocation envelope's raw bytes: the compact JSON of its `body` field as
/// the client wrote it (key order and number spelling kept, whitespace outside strings removed),
/// or empty when the field is absent or null, or the bytes are not a JSON object.
pub fn v0_payload(envelope: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, default)]
        body: Option<&'a RawValue>,
    }
    match serde_json::from_slice::<Envelope<'_>>(envelope) {
        Ok(Envelope { body: Some(raw) }) if raw.get() != "null" => compact_json(raw.get()),
        _ => String::new(),
    }
}

/// `raw` (valid JSON) without whitespace outside strings.
pub fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The signature headers of a request, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `X-Timestamp`.
    pub timestamp: &'a str,
    /// `X-Nonce` (v1).
    pub nonce: Option<&'a str>,
    /// `X-Signature`.
    pub signature: &'a str,
    /// The method as sent.
    pub method: &'a str,
    /// The request target as sent (path, `?`, raw query).
    pub path_and_query: &'a str,
    /// The raw body.
    pub body: &'a [u8],
}

/// What replay protection must remember of a verified request, until `expires_at` (unix
/// seconds): the v1 nonce, or the v0 signature itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayToken {
    /// `v1:<nonce>` or `v0:<signature>`.
    pub token: String,
    /// When the request's timestamp leaves the window.
    pub expires_at: i64,
}

/// Checks a signed request against `key` at `now` (unix seconds): the timestamp window first
/// (cheap), then the HMAC in constant time. `allow_v0` enables the original scheme. On success,
/// the token replay protection must remember.
pub fn verify(
    key: &SigningKey,
    request: &SignedRequest<'_>,
    now: i64,
    allow_v0: bool,
) -> Result<ReplayToken, VerifyError> {
    let timestamp: i64 = request
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed("X-Timestamp must be unix seconds"))?;
    if (now - timestamp).abs() > WINDOW_SECS {
        return Err(VerifyError::Expired);
    }
    let expires_at = timestamp + WINDOW_SECS;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(v1) = request.signature.trim().strip_prefix("v1=") {
        let nonce = request
            .nonce
            .filter(|n| !n.is_empty() && n.len() <= MAX_NONCE_LEN)
            .ok_or(VerifyError::Malformed(
                "X-Nonce (1 to 64 characters) is required",
            ))?;
        let tag = b64
            .decode(v1)
            .map_err(|_| VerifyError::Malformed("the signature is not base64"))?;
        let canonical = v1_canonical(
            timestamp,
            nonce,
            request.method,
            request.path_and_query,
            request.body,
        );
        if !key.verify(canonical.as_bytes(), &tag) {
            return Err(VerifyError::Mismatch);
        }
        Ok(ReplayToken {
            token: format!("v1:{nonce}"),
            expires_at,
        })
    } else {
        if !allow_v0 {
            return Err(VerifyError::V0Disabled);
        }
        let signature = request.signature.trim();
        let tag = b64
            .decode(signature)
            .map_err(|_| VerifyError::Malformed("the signature is not base64"))?;
        let message = v0_message(request.timestamp.trim(), &v0_payload(request.body));
        if !key.verify(message.as_bytes(), &tag) {
            return Err(VerifyError::Mismatch);
        }
        Ok(ReplayToken {
            token: format!("v0:{signature}"),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Signer;

    const NOW: i64 = 1_700_000_000;

    fn key() -> (ApiKeySecret, SigningKey) {
        let secret = ApiKeySecret::generate().unwrap();
        let key = SigningKey::new(&secret);
        (secret, key)
    }

    #[test]
    fn the_spec_v0_test_vectors() {
        let key = SigningKey::new(&ApiKeySecret::from_text("test-secret-key"));
        let b64 = base64::engine::general_purpose::STANDARD;
        let tag = key.sign(v0_message("1234567890", r#"{"test":"data"}"#).as_bytes());
        assert_eq!(
            b64.encode(tag),
            "QkEU/uuZE2vbAPrL3prk8KWujDvjpFkgSWimV9KSj+s="
        );
        let empty = key.sign(v0_message("1234567890", "").as_bytes());
        assert_eq!(
            b64.encode(empty),
            "kFmINydxEqkTnfwhm5urtF020cMzJL8jG/PJrnH+0tw="
        );
        // And through the verifier, from an envelope written with spaces.
        let request = SignedRequest {
            timestamp: "1234567890",
            nonce: None,
            signature: "QkEU/uuZE2vbAPrL3prk8KWujDvjpFkgSWimV9KSj+s=",
            method: "POST",
            path_and_query: "/api/functions/x/invoke",
            body: br#"{ "body": { "test" : "data" } }"#,
        };
        let token = verify(&key, &request, 1_234_567_890, true).unwrap();
        assert_eq!(
            token.token,
            "v0:QkEU/uuZE2vbAPrL3prk8KWujDvjpFkgSWimV9KSj+s="
        );
        assert_eq!(
            verify(&key, &request, 1_234_567_890, false),
            Err(VerifyError::V0Disabled)
        );
    }

    /// The vector docs/API-KEYS.md computes with curl + openssl (so the recipe matches the code).
    #[test]
    fn the_v1_vector_of_the_openssl_recipe() {
        let signer = Signer::new("id", ApiKeySecret::from_text("cpk_test-secret"));
        let headers = signer.sign_v1(
            "POST",
            "/fn/0192f0c4-0000-7000-8000-000000000000/hello?x=1",
            br#"{"n":1}"#,
            1_700_000_000,
            "nonce-1",
        );
        assert_eq!(
            headers.signature,
            "v1=Ls0Il2AbZ0QywBOPdUoFi/hc+DyvstPzirpR5nm/QEk="
        );
    }

    #[test]
    fn v0_payload_keeps_order_and_strings() {
        assert_eq!(
            v0_payload(br#"{"body": {"b": 1, "a": "x y\" z"}}"#),
            r#"{"b":1,"a":"x y\" z"}"#
        );
        assert_eq!(v0_payload(br#"{"body": null}"#), "");
        assert_eq!(v0_payload(b"{}"), "");
        assert_eq!(v0_payload(b""), "");
        assert_eq!(v0_payload(br#"{"body": [1, 2.50]}"#), "[1,2.50]");
    }

    #[test]
    fn v1_round_trip() {
        let (secret, key) = key();
        let signer = Signer::new("key-id", secret);
        let headers = signer.sign_v1("POST", "/fn/x/a?b=1", b"hello", NOW, "n-1");
        let request = SignedRequest {
            timestamp: &headers.timestamp,
            nonce: headers.nonce.as_deref(),
            signature: &headers.signature,
            method: "POST",
            path_and_query: "/fn/x/a?b=1",
            body: b"hello",
        };
        assert!(headers.signature.starts_with("v1="));
        let token = verify(&key, &request, NOW, false).unwrap();
        assert_eq!(
            token,
            ReplayToken {
                token: "v1:n-1".to_owned(),
                expires_at: NOW + WINDOW_SECS
            }
        );
    }

    #[test]
    fn tampering_with_any_part_is_refused() {
        let (secret, key) = key();
        let signer = Signer::new("key-id", secret);
        let headers = signer.sign_v1("POST", "/fn/x/a?b=1", b"hello", NOW, "n-1");
        let good = SignedRequest {
            timestamp: &headers.timestamp,
            nonce: headers.nonce.as_deref(),
            signature: &headers.signature,
            method: "POST",
            path_and_query: "/fn/x/a?b=1",
            body: b"hello",
        };
        let other_ts = (NOW + 1).to_string();
        let cases = [
            SignedRequest {
                method: "PUT",
                ..good
            },
            SignedRequest {
                path_and_query: "/fn/x/b?b=1",
                ..good
            },
            SignedRequest {
                path_and_query: "/fn/x/a?b=2",
                ..good
            },
            SignedRequest {
                path_and_query: "/fn/x/a",
                ..good
            },
            SignedRequest {
                body: b"hellp",
                ..good
            },
            SignedRequest {
                nonce: Some("n-2"),
                ..good
            },
            SignedRequest {
                timestamp: &other_ts,
                ..good
            },
        ];
        for case in cases {
            assert_eq!(
                verify(&key, &case, NOW, true),
                Err(VerifyError::Mismatch),
                "{case:?}"
            );
        }
        let (_, other_key) = self::key();
        assert_eq!(
            verify(&other_key, &good, NOW, true),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn the_window_is_299_in_and_301_out_both_ways() {
        let (secret, key) = key();
        let signer = Signer::new("key-id", secret);
        for (offset, ok) in [
            (299, true),
            (-299, true),
            (300, true),
            (301, false),
            (-301, false),
        ] {
            let ts = NOW + offset;
            let headers = signer.sign_v1("GET", "/", b"", ts, "n");
            let request = SignedRequest {
                timestamp: &headers.timestamp,
                nonce: headers.nonce.as_deref(),
                signature: &headers.signature,
                method: "GET",
                path_and_query: "/",
                body: b"",
            };
            let result = verify(&key, &request, NOW, false);
            assert_eq!(result.is_ok(), ok, "offset {offset}: {result:?}");
            if !ok {
                assert_eq!(result, Err(VerifyError::Expired));
            }
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let (_, key) = key();
        let base = SignedRequest {
            timestamp: "1700000000",
            nonce: Some("n"),
            signature: "v1=AAAA",
            method: "GET",
            path_and_query: "/",
            body: b"",
        };
        assert!(matches!(
            verify(
                &key,
                &SignedRequest {
                    timestamp: "soon",
                    ..base
                },
                NOW,
                true
            ),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            verify(
                &key,
                &SignedRequest {
                    nonce: None,
                    ..base
                },
                NOW,
                true
            ),
            Err(VerifyError::Malformed(_))
        ));
        let long = "n".repeat(65);
        assert!(matches!(
            verify(
                &key,
                &SignedRequest {
                    nonce: Some(&long),
                    ..base
                },
                NOW,
                true
            ),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            verify(
                &key,
                &SignedRequest {
                    signature: "v1=%%%",
                    ..base
                },
                NOW,
                true
            ),
            Err(VerifyError::Malformed(_))
        ));
        assert_eq!(verify(&key, &base, NOW, true), Err(VerifyError::Mismatch));
    }

    #[test]
    fn sha256_hex_of_nothing() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
