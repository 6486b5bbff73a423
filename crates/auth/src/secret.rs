//! Small primitives for secrets: random opaque tokens, their SHA-256 fingerprints, and
//! constant-time comparison.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// Length in bytes of the random part of opaque tokens (refresh and reset tokens).
pub const OPAQUE_TOKEN_BYTES: usize = 32;

/// SHA-256 of a token's text: what is stored in PostgreSQL instead of the token, and the key of the
/// introspection cache. Knowing it does not let anyone use the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes the token's text (its UTF-8 bytes).
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Hashes a secret token without exposing it elsewhere.
    pub fn of_secret(token: &SecretString) -> Self {
        Self::of(token.expose_secret())
    }

    /// Rebuilds a hash read from storage; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw 32 bytes, for a `BYTEA` column.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, for a `NOTIFY` payload that tells other replicas to drop a cached token.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parses [`TokenHash::to_hex`] output.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// Compares two hashes in constant time.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    // A fingerprint, not the secret; the first bytes are enough to correlate in a debugger.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::Random)
}

/// A new opaque token: [`OPAQUE_TOKEN_BYTES`] bytes from the OS RNG, base64url without padding
/// (43 characters).
pub fn new_opaque_token() -> Result<SecretString> {
    let mut bytes = [0u8; OPAQUE_TOKEN_BYTES];
    fill_random(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    bytes.fill(0);
    Ok(SecretString::from(token))
}

/// Compares two byte strings in constant time (for equal lengths; the length itself is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_tokens_are_43_chars_of_base64url_and_distinct() {
        let a = new_opaque_token().unwrap();
        let b = new_opaque_token().unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert!(
            a.expose_secret()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
        let decoded = URL_SAFE_NO_PAD.decode(a.expose_secret()).unwrap();
        assert_eq!(decoded.len(), OPAQUE_TOKEN_BYTES);
    }

    #[test]
    fn token_hash_is_sha256_of_the_text() {
        // echo -n abc | sha256sum
        let h = TokenHash::of("abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_slice(h.as_bytes()), Some(h));
        assert!(TokenHash::from_slice(&[0u8; 31]).is_none());
        assert!(TokenHash::from_hex("zz").is_none());
        assert!(h.ct_eq(&TokenHash::of("abc")));
        assert!(!h.ct_eq(&TokenHash::of("abd")));
    }

    #[test]
    fn debug_shows_only_a_prefix_of_the_hash() {
        let shown = format!("{:?}", TokenHash::of("abc"));
        assert_eq!(shown, "TokenHash(ba7816bf…)");
    }

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"samesame"));
    }
}
