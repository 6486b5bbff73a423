//! The content-addressed archive store: `<data_dir>/archives/<first two hex digits>/<sha256>.<ext>`.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::{ArchiveError, ArchiveFormat};

/// The SHA-256 of an archive's bytes, as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveDigest(String);

impl ArchiveDigest {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let hash = Sha256::digest(bytes);
        let mut hex = String::with_capacity(64);
        for byte in hash.iter() {
            // Writing to a String cannot fail.
            let _ = fmt::Write::write_fmt(&mut hex, format_args!("{byte:02x}"));
        }
        Self(hex)
    }

    /// Parses a digest written by [`ArchiveDigest`]'s `Display`: exactly 64 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(text.to_owned()))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArchiveDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The text is not 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 digest in lower-case hex")]
pub struct InvalidDigest;

impl FromStr for ArchiveDigest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or(InvalidDigest)
    }
}

/// An archive in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArchive {
    /// The SHA-256 of its bytes, which names it.
    pub sha256: ArchiveDigest,
    /// Its size in bytes.
    pub size: u64,
    /// Its format, from the magic bytes.
    pub format: ArchiveFormat,
    /// Where it is.
    pub path: PathBuf,
    /// `false` when [`ArchiveStore::put`] found the same bytes already stored and wrote nothing
    /// (and always from [`ArchiveStore::get`]).
    pub newly_stored: bool,
}

/// Function archives on the file system, addressed by content hash.
///
/// Writes are atomic (a temporary file in the target directory, flushed, then renamed), so a
/// reader sees a whole archive or none, and several replicas may share the directory. Archives
/// are written `0600`: only the service reads them.
#[derive(Debug, Clone)]
pub struct ArchiveStore {
    root: PathBuf,
}

impl ArchiveStore {
    /// A store under `<data_dir>/archives`, created on first write.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: data_dir.into().join("archives"),
        }
    }

    /// The `archives` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores `bytes` (a zip or tar.gz, told by its magic bytes) under its SHA-256. Identical
    /// bytes already stored are not written again. It does not [`check`](super::check) the
    /// archive: do that first.
    pub fn put(&self, bytes: &[u8]) -> Result<StoredArchive, ArchiveError> {
        let format = ArchiveFormat::detect(bytes).ok_or(ArchiveError::UnknownFormat)?;
        let sha256 = ArchiveDigest::of(bytes);
        let path = self.path(&sha256, format);
        let size = bytes.len() as u64;
        let stored = |newly_stored| StoredArchive {
            sha256: sha256.clone(),
            size,
            format,
            path: path.clone(),
            newly_stored,
        };
        match fs::metadata(&path) {
            // Same name, same size: the same bytes (a partial file never gets this name).
            Ok(meta) if meta.is_file() && meta.len() == size => return Ok(stored(false)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ArchiveError::io("read metadata of", &path, e)),
        }
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(|e| ArchiveError::io("create directory", dir, e))?;
        let mut temp = tempfile::Builder::new()
            .prefix(".incoming-")
            .tempfile_in(dir)
            .map_err(|e| ArchiveError::io("create a temporary file in", dir, e))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| ArchiveError::io("write", temp.path().to_path_buf(), e))?;
        temp.persist(&path)
            .map_err(|e| ArchiveError::io("move a stored archive to", &path, e.error))?;
        // Make the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ArchiveError::io("flush directory", dir, e))?;
        Ok(stored(true))
    }

    /// The stored archive with this digest, if there is one.
    pub fn get(&self, sha256: &ArchiveDigest) -> Result<Option<StoredArchive>, ArchiveError> {
        for format in [ArchiveFormat::Zip, ArchiveFormat::TarGz] {
            let path = self.path(sha256, format);
            match fs::metadata(&path) {
                Ok(meta) => {
                    return Ok(Some(StoredArchive {
                        sha256: sha256.clone(),
                        size: meta.len(),
                        format,
                        path,
                        newly_stored: false,
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ArchiveError::io("read metadata of", path, e)),
            }
        }
        Ok(None)
    }

    /// Removes the archive with this digest. Idempotent: `Ok(false)` when there was none.
    pub fn remove(&self, sha256: &ArchiveDigest) -> Result<bool, ArchiveError> {
        let mut removed = false;
        for format in [ArchiveFormat::Zip, ArchiveFormat::TarGz] {
            let path = self.path(sha256, format);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ArchiveError::io("remove", path, e)),
            }
        }
        Ok(removed)
    }

    /// Where an archive with this digest and format is (or would be) stored.
    pub fn path(&self, sha256: &ArchiveDigest, format: ArchiveFormat) -> PathBuf {
        let hex = sha256.as_str();
        self.root
            .join(&hex[..2])
            .join(format!("{hex}.{}", format.extension()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_hex() {
        let digest = ArchiveDigest::of(b"abc");
        assert_eq!(
            digest.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ArchiveDigest::parse(digest.as_str()), Some(digest));
        assert_eq!(ArchiveDigest::parse("BA7816BF"), None);
        assert!("zz".parse::<ArchiveDigest>().is_err());
    }
}
