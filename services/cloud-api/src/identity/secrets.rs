//! Secrets the embedded default generates for itself on first start (the built-in signing key,
//! the verification-code key) so a newcomer configures nothing; production sets them in config.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

use super::SetupError;

/// A directory of generated secrets, one file each, readable by the owner only.
pub(super) struct SecretDir {
    dir: PathBuf,
}

impl SecretDir {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Reads secret `name`, or creates it (32 random bytes, base64) when it does not exist yet.
    /// Creation is exclusive, so two processes starting at once end up with the same secret.
    pub(super) fn load_or_generate(&self, name: &str) -> Result<SecretString, SetupError> {
        let path = self.dir.join(name);
        let error = |source| SetupError::Secret {
            path: path.clone(),
            source,
        };
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(SecretString::from(existing.trim().to_owned()));
        }
        std::fs::create_dir_all(&self.dir).map_err(error)?;
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| {
            error(std::io::Error::other(
                "the system random number generator failed",
            ))
        })?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(encoded.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(error)?;
                tracing::info!(secret = name, "generated {name} in {}", self.dir.display());
                Ok(SecretString::from(encoded))
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let existing = std::fs::read_to_string(&path).map_err(error)?;
                Ok(SecretString::from(existing.trim().to_owned()))
            }
            Err(err) => Err(error(err)),
        }
    }
}
