//! The client side: signs requests as a caller of a function does (used by the tests and the
//! benchmark; `docs/API-KEYS.md` shows the same with curl and openssl).

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::apikey::ApiKeySecret;
use crate::signature::{SigningKey, v0_message, v1_canonical};

/// The headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Api-Key`: the key's public id.
    pub api_key: String,
    /// `X-Timestamp`: unix seconds.
    pub timestamp: String,
    /// `X-Nonce` (v1 only).
    pub nonce: Option<String>,
    /// `X-Signature`.
    pub signature: String,
}

impl SignedHeaders {
    /// `(name, value)` pairs to add to a request.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("X-Api-Key", self.api_key.clone()),
            ("X-Timestamp", self.timestamp.clone()),
            ("X-Signature", self.signature.clone()),
        ];
        if let Some(nonce) = &self.nonce {
            pairs.push(("X-Nonce", nonce.clone()));
        }
        pairs
    }
}

/// Signs requests with one API key. `Debug` prints no secret.
#[derive(Clone)]
pub struct Signer {
    key_id: String,
    key: SigningKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for key `key_id` with its secret text.
    pub fn new(key_id: impl Into<String>, secret: ApiKeySecret) -> Self {
        Self {
            key_id: key_id.into(),
            key: SigningKey::new(&secret),
            rng: SystemRandom::new(),
        }
    }

    /// Signature v1 of a request at `timestamp` with `nonce`.
    pub fn sign_v1(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> SignedHeaders {
        let canonical = v1_canonical(timestamp, nonce, method, path_and_query, body);
        let tag = self.key.sign(canonical.as_bytes());
        SignedHeaders {
            api_key: self.key_id.clone(),
            timestamp: timestamp.to_string(),
            nonce: Some(nonce.to_owned()),
            signature: format!(
                "v1={}",
                base64::engine::general_purpose::STANDARD.encode(tag)
            ),
        }
    }

    /// Signature v1 now, with a fresh random nonce.
    pub fn sign_v1_now(&self, method: &str, path_and_query: &str, body: &[u8]) -> SignedHeaders {
        self.sign_v1(method, path_and_query, body, unix_now(), &self.nonce())
    }

    /// Signature v0 (the original scheme) of an envelope whose `body` field's compact JSON is
    /// `payload` (empty when it has none).
    pub fn sign_v0(&self, timestamp: i64, payload: &str) -> SignedHeaders {
        let tag = self
            .key
            .sign(v0_message(&timestamp.to_string(), payload).as_bytes());
        SignedHeaders {
            api_key: self.key_id.clone(),
            timestamp: timestamp.to_string(),
            nonce: None,
            signature: base64::engine::general_purpose::STANDARD.encode(tag),
        }
    }

    /// 16 random bytes, base64url: a fresh nonce.
    pub fn nonce(&self) -> String {
        let mut bytes = [0u8; 16];
        // The OS RNG does not fail on Linux; a failure leaves zeroes and the server refuses the replay.
        let _ = self.rng.fill(&mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_and_debug_hides_the_secret() {
        let secret = ApiKeySecret::generate().unwrap();
        let text = secret.expose().to_owned();
        let signer = Signer::new("id", secret);
        assert_ne!(signer.nonce(), signer.nonce());
        let debug = format!("{signer:?}");
        assert!(!debug.contains(&text) && debug.contains("id"), "{debug}");
        let headers = signer.sign_v1_now("GET", "/", b"");
        assert_eq!(headers.pairs().len(), 4);
    }
}
