//! Password hashing of the built-in provider: argon2id, PHC strings (`$argon2id$v=19$m=…`).
//!
//! Hashing costs tens of milliseconds of CPU by design; async callers use the `*_blocking`
//! variants, which run on tokio's blocking pool so request handling never stalls on it.

use std::fmt;

use argon2::password_hash::phc::PasswordHash as PhcHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{Error, Result};

/// argon2id cost parameters. The defaults are OWASP's first recommendation for argon2id
/// (19 MiB, 2 passes, 1 lane): tens of milliseconds of one core per hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PasswordConfig {
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
    /// Passes over memory (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// A stored argon2id hash in PHC string form. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a hash read from storage (it is parsed when verified).
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Hashes and verifies passwords with argon2id.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    params: Params,
    /// A hash of a random password with the configured parameters, verified against when the
    /// account does not exist so that both answers take the same time.
    dummy: PasswordHash,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with the given costs. Fails on parameters argon2 rejects.
    pub fn new(config: &PasswordConfig) -> Result<Self> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| Error::Config {
            key: "auth.password",
            reason: e.to_string(),
        })?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut hasher = Self {
            argon2,
            params,
            dummy: PasswordHash(String::new()),
        };
        let dummy_password = crate::secret::new_opaque_token()?;
        hasher.dummy = hasher.hash(&dummy_password)?;
        Ok(hasher)
    }

    /// Hashes `password` with a fresh 16-byte salt from the OS RNG.
    pub fn hash(&self, password: &SecretString) -> Result<PasswordHash> {
        let hash = self
            .argon2
            .hash_password(password.expose_secret().as_bytes())
            .map_err(|e| Error::PasswordHashing(std::sync::Arc::new(e)))?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// `Ok(true)` if `password` matches `hash`, `Ok(false)` if not; an error only for a hash that
    /// cannot be parsed or uses another algorithm. The parameters come from the hash itself, so
    /// hashes made with older costs keep working. The comparison is constant-time.
    pub fn verify(&self, password: &SecretString, hash: &PasswordHash) -> Result<bool> {
        let parsed = PhcHash::new(hash.as_str()).map_err(|_| Error::MalformedPasswordHash)?;
        if parsed.algorithm.as_str() != Algorithm::Argon2id.as_str() {
            return Err(Error::MalformedPasswordHash);
        }
        match self
            .argon2
            .verify_password(password.expose_secret().as_bytes(), &parsed)
        {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(_) => Err(Error::MalformedPasswordHash),
        }
    }

    /// Spends the time of one verification and returns `false`: for logins to unknown accounts,
    /// so response times do not reveal which emails exist.
    pub fn verify_dummy(&self, password: &SecretString) -> bool {
        let _ = self.verify(password, &self.dummy);
        false
    }

    /// `true` when `hash` was made with other costs than the configured ones (or is unreadable):
    /// after a successful login the caller may store a fresh hash.
    pub fn needs_rehash(&self, hash: &PasswordHash) -> bool {
        let Ok(parsed) = PhcHash::new(hash.as_str()) else {
            return true;
        };
        match Params::try_from(&parsed) {
            Ok(p) => {
                parsed.algorithm.as_str() != Algorithm::Argon2id.as_str()
                    || p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    /// [`PasswordHasher::hash`] on tokio's blocking pool.
    pub async fn hash_blocking(&self, password: SecretString) -> Result<PasswordHash> {
        let hasher = self.clone();
        run_blocking(move || hasher.hash(&password)).await
    }

    /// [`PasswordHasher::verify`] on tokio's blocking pool.
    pub async fn verify_blocking(
        &self,
        password: SecretString,
        hash: PasswordHash,
    ) -> Result<bool> {
        let hasher = self.clone();
        run_blocking(move || hasher.verify(&password, &hash)).await
    }

    /// [`PasswordHasher::verify_dummy`] on tokio's blocking pool.
    pub async fn verify_dummy_blocking(&self, password: SecretString) -> bool {
        let hasher = self.clone();
        run_blocking(move || Ok(hasher.verify_dummy(&password)))
            .await
            .unwrap_or(false)
    }
}

/// Runs CPU-heavy work on tokio's blocking pool.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Task(std::sync::Arc::new(e)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small costs keep the tests fast; production uses the defaults.
    fn fast() -> PasswordHasher {
        PasswordHasher::new(&PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_with_the_configured_costs() {
        let h = fast().hash(&secret("correct horse")).unwrap();
        assert!(
            h.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{}",
            h.as_str()
        );
        // A fresh salt each time.
        assert_ne!(h, fast().hash(&secret("correct horse")).unwrap());
    }

    #[test]
    fn verifies_the_right_password_only() {
        let hasher = fast();
        let h = hasher.hash(&secret("correct horse")).unwrap();
        assert!(hasher.verify(&secret("correct horse"), &h).unwrap());
        assert!(!hasher.verify(&secret("correct horsf"), &h).unwrap());
        assert!(!hasher.verify(&secret(""), &h).unwrap());
        assert!(!hasher.verify_dummy(&secret("correct horse")));
    }

    #[test]
    fn hashes_made_with_other_costs_still_verify_and_ask_for_a_rehash() {
        let default_hasher = PasswordHasher::new(&PasswordConfig::default()).unwrap();
        let old = fast().hash(&secret("pw")).unwrap();
        assert!(default_hasher.verify(&secret("pw"), &old).unwrap());
        assert!(default_hasher.needs_rehash(&old));
        let current = default_hasher.hash(&secret("pw")).unwrap();
        assert!(
            current
                .as_str()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
        assert!(!default_hasher.needs_rehash(&current));
    }

    #[test]
    fn malformed_or_foreign_hashes_are_errors_not_mismatches() {
        let hasher = fast();
        for bad in [
            "",
            "not a hash",
            "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
            "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A",
        ] {
            assert!(
                matches!(
                    hasher.verify(&secret("pw"), &PasswordHash::new(bad)),
                    Err(Error::MalformedPasswordHash)
                ),
                "{bad}"
            );
            assert!(hasher.needs_rehash(&PasswordHash::new(bad)) || bad.starts_with("$argon2i$"));
        }
    }

    #[test]
    fn rejects_impossible_parameters_naming_the_key() {
        let err = PasswordHasher::new(&PasswordConfig {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Config {
                key: "auth.password",
                ..
            }
        ));
    }

    #[test]
    fn debug_prints_no_hash() {
        let hasher = fast();
        let h = hasher.hash(&secret("pw")).unwrap();
        assert_eq!(format!("{h:?}"), "PasswordHash(<redacted>)");
        assert!(!format!("{hasher:?}").contains("argon2id$"));
    }

    #[tokio::test]
    async fn blocking_variants_agree() {
        let hasher = fast();
        let h = hasher.hash_blocking(secret("pw")).await.unwrap();
        assert!(
            hasher
                .verify_blocking(secret("pw"), h.clone())
                .await
                .unwrap()
        );
        assert!(!hasher.verify_blocking(secret("px"), h).await.unwrap());
        assert!(!hasher.verify_dummy_blocking(secret("pw")).await);
    }
}
