//! Keys the embedded default generates for itself on first start (the built-in signing key, the
//! environment key, …) so a newcomer configures nothing; production sets them in configuration.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

use crate::{Error, Result};

/// Reads key `name` from `dir`, or creates it there (32 random bytes, base64, mode 0600) when it
/// does not exist yet. Creation is exclusive, so two processes starting at once end up with the
/// same key.
pub fn load_or_generate(dir: &Path, name: &str) -> Result<SecretString> {
    let path = dir.join(name);
    let error = |source| Error::KeyFile {
        path: path.clone(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(existing.trim().to_owned()));
    }
    std::fs::create_dir_all(dir).map_err(error)?;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Random)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(encoded.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(error)?;
            tracing::info!(key = name, "generated key {name} in {}", dir.display());
            Ok(SecretString::from(encoded))
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read_to_string(&path).map_err(error)?;
            Ok(SecretString::from(existing.trim().to_owned()))
        }
        Err(err) => Err(error(err)),
    }
}

/// Where a key comes from: `configured` (base64 text) if set, else the file `file` if set, else
/// — only when `generate_in` is given (development mode) — a key generated once into that
/// directory as `name`. Production passes `None`, so a key that is not configured is an error
/// naming `config_key`.
pub fn resolve(
    config_key: &'static str,
    configured: &SecretString,
    file: Option<&Path>,
    generate_in: Option<&Path>,
    name: &str,
) -> Result<SecretString> {
    use secrecy::ExposeSecret;
    if !configured.expose_secret().trim().is_empty() {
        return Ok(configured.clone());
    }
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|source| Error::KeyFile {
            path: file.to_owned(),
            source,
        })?;
        return Ok(SecretString::from(text.trim().to_owned()));
    }
    match generate_in {
        Some(dir) => load_or_generate(dir, name),
        None => Err(Error::MissingKey { name: config_key }),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_key_is_generated_once_and_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path(), "k").unwrap();
        let second = load_or_generate(dir.path(), "k").unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(first.expose_secret())
                .unwrap()
                .len(),
            32
        );
        let mode = std::fs::metadata(dir.path().join("k"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn production_needs_a_configured_key_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = SecretString::from(String::new());
        assert!(matches!(
            resolve("k", &empty, None, None, "k"),
            Err(Error::MissingKey { name: "k" })
        ));
        let file = dir.path().join("given");
        std::fs::write(&file, "abc\n").unwrap();
        let from_file = resolve("k", &empty, Some(&file), None, "k").unwrap();
        assert_eq!(from_file.expose_secret(), "abc");
        let configured = SecretString::from("xyz".to_owned());
        assert_eq!(
            resolve("k", &configured, Some(&file), None, "k")
                .unwrap()
                .expose_secret(),
            "xyz"
        );
        let generated = resolve("k", &empty, None, Some(dir.path()), "gen").unwrap();
        assert_eq!(generated.expose_secret().len(), 44);
    }
}
