//! AES-256-GCM sealing of secrets at rest (ring): a random 96-bit nonce per message, and
//! associated data that binds a ciphertext to its row so it cannot be moved to another.

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

use crate::{Error, Result};

/// A ciphertext (with its tag) and the nonce it was sealed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
    /// The 12-byte nonce.
    pub nonce: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Seals and opens with one AES-256 key. `Debug` prints nothing of the key.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

impl Sealer {
    /// A sealer for a base64 key of 32 bytes (`name` is the config key, for the error).
    pub fn from_base64(name: &'static str, key: &SecretString) -> Result<Self> {
        let bad = || Error::BadKey { name, expected: 32 };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| bad())?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| bad())?;
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plaintext`, bound to `context` (for example the row's id).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| Error::Random)?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buffer,
            )
            .map_err(|_| Error::Random)?;
        Ok(Sealed {
            ciphertext: buffer,
            nonce: nonce.to_vec(),
        })
    }

    /// Opens what [`Sealer::seal`] sealed with the same `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>> {
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| Error::Unseal)?;
        let mut buffer = sealed.ciphertext.clone();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .map_err(|_| Error::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        Sealer::from_base64("test", &SecretString::from(key)).unwrap()
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let s = sealer();
        let a = s.seal(b"API_TOKEN=xyz", b"fn-1").unwrap();
        let b = s.seal(b"API_TOKEN=xyz", b"fn-1").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(s.open(&a, b"fn-1").unwrap(), b"API_TOKEN=xyz");
    }

    #[test]
    fn another_context_or_a_flipped_bit_does_not_open() {
        let s = sealer();
        let mut sealed = s.seal(b"secret", b"fn-1").unwrap();
        assert!(matches!(s.open(&sealed, b"fn-2"), Err(Error::Unseal)));
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(s.open(&sealed, b"fn-1"), Err(Error::Unseal)));
    }

    #[test]
    fn a_short_key_is_refused_and_debug_hides_it() {
        assert!(Sealer::from_base64("k", &SecretString::from("c2hvcnQ=".to_owned())).is_err());
        assert_eq!(format!("{:?}", sealer()), "Sealer(<key>)");
    }
}
