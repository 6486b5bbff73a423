//! Function archives: validation, unpacking and the content-addressed store.
//!
//! A function is uploaded as a zip or a gzip-compressed tar archive; the format is told by the
//! magic bytes, never by a file name. The deploy pipeline (SPEC §3.2) is:
//!
//! 1. [`check`] the upload against the caller's [`ArchiveLimits`] — nothing is written;
//! 2. [`ArchiveStore::put`] it under its SHA-256 (identical uploads are stored once);
//! 3. at build time, [`unpack_file`] the stored archive into a fresh directory of the build
//!    context (it is checked again on the way: the limits may have changed).
//!
//! All of it is blocking file-system work: call it from `spawn_blocking`.
//!
//! # What an archive may hold
//! Regular files, directories and links, with relative UTF-8 names that use `/` as the
//! separator. Refused, with an error that names the entry ([`ArchiveError::entry`]):
//! - absolute paths, any `..` component (even `a/../b`), backslashes, control characters, names
//!   the file system cannot hold;
//! - device files, fifos and sockets; encrypted zip entries; compression other than stored and
//!   deflate; sparse tar members;
//! - two entries for one path (after dropping `.` components and repeated slashes), or a path
//!   used as both a file and a directory;
//! - more entries than [`ArchiveLimits::max_files`] (files, directories and links all count);
//!   a member over [`ArchiveLimits::max_file_bytes`]; more than
//!   [`ArchiveLimits::max_unpacked_bytes`] in total. Sizes are counted on the bytes actually
//!   decompressed, so a header that lies (a zip bomb) changes nothing; a header that claims too
//!   much is refused before anything is read.
//!
//! Links are allowed when they are harmless:
//! - a **symbolic link** must be relative and resolve inside the tree from its own directory,
//!   without climbing above the root at any step and without passing *through* another link
//!   (only its last component may be a link); nothing may be stored beneath a link. Links are
//!   created last, after every file, so no write ever goes through one;
//! - a **hard link** (tar) must name a regular file that came earlier in the archive, and is
//!   unpacked as an independent copy of it (counted against the limits again).
//!
//! # What is written
//! [`unpack`] writes into a temporary directory beside the destination and renames it into
//! place only when every entry has passed, so a refused archive leaves nothing behind.
//! Permissions are normalised: directories `0755`, files `0644`, or `0755` when the archive
//! gave the file any executable bit; owners, times, setuid/setgid/sticky bits and extended
//! attributes are not kept.

mod error;
mod path;
mod read_tar;
mod read_zip;
mod store;
mod unpack;

use std::fmt;
use std::fs::{self, File, Permissions};
use std::io::{BufReader, Cursor, Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use error::ArchiveError;
pub use store::{ArchiveDigest, ArchiveStore, InvalidDigest, StoredArchive};

use unpack::Unpacker;

const MIB: u64 = 1024 * 1024;

/// The limits an archive is checked against. The service fills them from the caller's tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveLimits {
    /// Size of the archive itself. Default 50 MiB.
    pub max_archive_bytes: u64,
    /// Total size of the unpacked files. Default 200 MiB.
    pub max_unpacked_bytes: u64,
    /// Number of entries: files, directories and links. Default 5000.
    pub max_files: u64,
    /// Size of one unpacked file. Default 100 MiB.
    pub max_file_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_archive_bytes: 50 * MIB,
            max_unpacked_bytes: 200 * MIB,
            max_files: 5000,
            max_file_bytes: 100 * MIB,
        }
    }
}

/// An archive format, as told by the magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// A zip archive (`PK\x03\x04`, or `PK\x05\x06` when empty).
    Zip,
    /// A tar archive compressed with gzip (`\x1f\x8b`).
    TarGz,
}

impl ArchiveFormat {
    /// Tells the format from the first bytes of an archive.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(Self::Zip),
            [0x1f, 0x8b, ..] => Some(Self::TarGz),
            _ => None,
        }
    }

    /// The file extension the store uses: `zip` or `tar.gz`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Zip => "zip",
            Self::TarGz => "tar.gz",
        }
    }
}

impl fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// What an accepted archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Its format.
    pub format: ArchiveFormat,
    /// Entries counted against [`ArchiveLimits::max_files`].
    pub entries: u64,
    /// Regular files (hard links included).
    pub files: u64,
    /// Symbolic links.
    pub links: u64,
    /// Total size of the files, as actually decompressed.
    pub unpacked_bytes: u64,
}

/// Checks an archive against `limits` and the rules of the [module](self) without writing
/// anything (every member is decompressed and counted).
pub fn check(archive: &[u8], limits: &ArchiveLimits) -> Result<ArchiveSummary, ArchiveError> {
    let format = detect(archive, archive.len() as u64, limits)?;
    walk(Cursor::new(archive), format, limits, None)
}

/// Checks an archive and unpacks it into `dest`, which must not exist yet and whose parent
/// must. On any refusal or failure nothing is left at `dest` or beside it.
pub fn unpack(
    archive: &[u8],
    dest: &Path,
    limits: &ArchiveLimits,
) -> Result<ArchiveSummary, ArchiveError> {
    let format = detect(archive, archive.len() as u64, limits)?;
    unpack_into(Cursor::new(archive), format, dest, limits)
}

/// [`unpack`] for an archive on disk, such as [`StoredArchive::path`].
pub fn unpack_file(
    archive: &Path,
    dest: &Path,
    limits: &ArchiveLimits,
) -> Result<ArchiveSummary, ArchiveError> {
    let file = File::open(archive).map_err(|e| ArchiveError::io("open", archive, e))?;
    let size = file
        .metadata()
        .map_err(|e| ArchiveError::io("read metadata of", archive, e))?
        .len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    let read = reader
        .read(&mut magic)
        .map_err(|e| ArchiveError::io("read", archive, e))?;
    let format = detect(&magic[..read], size, limits)?;
    reader
        .rewind()
        .map_err(|e| ArchiveError::io("read", archive, e))?;
    unpack_into(reader, format, dest, limits)
}

fn detect(magic: &[u8], size: u64, limits: &ArchiveLimits) -> Result<ArchiveFormat, ArchiveError> {
    if size > limits.max_archive_bytes {
        return Err(ArchiveError::TooLarge {
            size,
            limit: limits.max_archive_bytes,
        });
    }
    ArchiveFormat::detect(magic).ok_or(ArchiveError::UnknownFormat)
}

fn walk<R: Read + Seek>(
    reader: R,
    format: ArchiveFormat,
    limits: &ArchiveLimits,
    root: Option<&Path>,
) -> Result<ArchiveSummary, ArchiveError> {
    let mut unpacker = Unpacker::new(limits, format, root);
    match unpacker.format() {
        ArchiveFormat::Zip => read_zip::walk(reader, &mut unpacker)?,
        ArchiveFormat::TarGz => read_tar::walk(reader, &mut unpacker)?,
    }
    unpacker.finish()
}

fn unpack_into<R: Read + Seek>(
    reader: R,
    format: ArchiveFormat,
    dest: &Path,
    limits: &ArchiveLimits,
) -> Result<ArchiveSummary, ArchiveError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(ArchiveError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Dropped (and removed with everything in it) on every early return.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.unpacking-"))
        .tempdir_in(parent)
        .map_err(|e| ArchiveError::io("create a directory in", parent, e))?;
    fs::set_permissions(staging.path(), Permissions::from_mode(0o755))
        .map_err(|e| ArchiveError::io("set permissions on", staging.path(), e))?;
    let summary = walk(reader, format, limits, Some(staging.path()))?;
    let staged = staging.keep();
    if let Err(e) = fs::rename(&staged, dest) {
        // Best effort: the error that matters is the rename's.
        let _ = fs::remove_dir_all(&staged);
        return Err(ArchiveError::io("move the unpacked archive to", dest, e));
    }
    Ok(summary)
}
