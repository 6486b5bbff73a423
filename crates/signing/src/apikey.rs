//! API-key secrets: 32 random bytes from the OS RNG, shown once as text with a recognisable
//! prefix. The text as shown is the HMAC key (its UTF-8 bytes), as in the original platform.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

use crate::{Error, Result};

/// The fixed prefix of every secret, so a leaked one is recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "cpk_";
/// Random bytes in a secret.
pub const SECRET_BYTES: usize = 32;
/// Characters of the secret kept in clear (`api_keys.key_prefix`) to recognise a key: the fixed
/// prefix and 6 more, far too few to sign with.
pub const DISPLAY_PREFIX_LEN: usize = SECRET_PREFIX.len() + 6;

/// An API key's secret text. `Debug` prints only its recognisable prefix.
#[derive(Clone)]
pub struct ApiKeySecret(SecretString);

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

impl ApiKeySecret {
    /// A fresh secret: [`SECRET_PREFIX`] and base64url (no padding) of [`SECRET_BYTES`] bytes
    /// from the operating system's RNG.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; SECRET_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Random)?;
        let text = format!(
            "{SECRET_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        Ok(Self(SecretString::from(text)))
    }

    /// A secret from its text (decrypted from storage, or a client's configuration). Any text
    /// works as an HMAC key, so keys of the original platform (base64 of 64 bytes) stay usable.
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(SecretString::from(text.into()))
    }

    /// The text as shown once to the user; it is also the HMAC key.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The first characters, stored in clear to recognise a key.
    pub fn display_prefix(&self) -> &str {
        let text = self.expose();
        let end = text
            .char_indices()
            .nth(DISPLAY_PREFIX_LEN)
            .map_or(text.len(), |(i, _)| i);
        &text[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_long_enough() {
        let a = ApiKeySecret::generate().unwrap();
        let b = ApiKeySecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(SECRET_PREFIX));
        let random = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a.expose()[SECRET_PREFIX.len()..])
            .unwrap();
        assert_eq!(random.len(), SECRET_BYTES);
        assert_eq!(a.display_prefix().len(), DISPLAY_PREFIX_LEN);
        assert!(a.expose().starts_with(a.display_prefix()));
    }

    #[test]
    fn debug_prints_no_secret() {
        let secret = ApiKeySecret::generate().unwrap();
        let debug = format!("{secret:?}");
        assert!(!debug.contains(secret.expose()), "{debug}");
        assert!(debug.contains(secret.display_prefix()));
        assert!(debug.len() < 40);
    }
}
