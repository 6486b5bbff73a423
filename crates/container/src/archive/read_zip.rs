//! Zip archives, read from the central directory with the `zip` crate.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};

use zip::CompressionMethod;
use zip::ZipArchive;
use zip::read::ZipFileEntry;
use zip::result::ZipError;

use super::path::display_name;
use super::unpack::Unpacker;
use super::{ArchiveError, ArchiveFormat};

/// Longest link target read from a zip entry (one more than accepted, so that a longer one is
/// seen and refused).
const MAX_TARGET_READ: u64 = 4097;

enum Kind {
    Dir,
    File(Option<u32>),
    Symlink,
    Special(&'static str),
}

/// Feeds every entry of the zip archive in `reader` to `unpacker`.
pub(crate) fn walk<R: Read + Seek>(
    reader: R,
    unpacker: &mut Unpacker<'_>,
) -> Result<(), ArchiveError> {
    let mut archive = ZipArchive::new(reader).map_err(|e| corrupt(None, &e))?;
    let metadata = archive.metadata();
    let max_files = unpacker.limits().max_files;
    if archive.len() as u64 > max_files {
        let entry = usize::try_from(max_files)
            .ok()
            .and_then(|i| metadata.entry(i).ok())
            .map(|e| display_name(e.name_raw()))
            .unwrap_or_default();
        return Err(ArchiveError::TooManyFiles {
            entry,
            limit: max_files,
        });
    }
    // The crate indexes entries by name and keeps one of each; find the name it merged.
    if metadata.has_duplicate_names() {
        let dir_start = archive.central_directory_start();
        let mut reader = archive.into_inner();
        let entry = repeated_name(&mut reader, dir_start)
            .unwrap_or_else(|| "(a name listed twice in the central directory)".to_owned());
        return Err(ArchiveError::Duplicate { entry });
    }
    // Local headers that disagree with the central directory (the same archive showing other
    // files to other tools), overlapping entries, hidden local entries.
    archive
        .validate_header_consistency()
        .map_err(|e| corrupt(None, &e))?;

    for index in 0..archive.len() {
        let entry = metadata.entry(index).map_err(|e| corrupt(None, &e))?;
        let raw = entry.name_raw().to_vec();
        let shown = display_name(&raw);
        if entry.encrypted() {
            return Err(ArchiveError::Unsupported {
                entry: shown,
                detail: "the entry is encrypted".to_owned(),
            });
        }
        let method = entry.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(ArchiveError::Unsupported {
                entry: shown,
                detail: format!(
                    "compression method {method:?} (only stored and deflate are accepted)"
                ),
            });
        }
        match kind(&entry) {
            Kind::Dir => unpacker.dir(&raw)?,
            Kind::File(mode) => {
                let declared = entry.size();
                let mut data = archive.by_index(index).map_err(|e| open_error(shown, &e))?;
                unpacker.file(&raw, declared, mode, &mut data)?;
            }
            Kind::Symlink => {
                let data = archive
                    .by_index(index)
                    .map_err(|e| open_error(shown.clone(), &e))?;
                let mut target = Vec::new();
                data.take(MAX_TARGET_READ)
                    .read_to_end(&mut target)
                    .map_err(|e| ArchiveError::Corrupt {
                        format: ArchiveFormat::Zip,
                        entry: Some(shown),
                        detail: e.to_string(),
                    })?;
                unpacker.symlink(&raw, &target)?;
            }
            Kind::Special(kind) => return Err(unpacker.special(&raw, kind)),
        }
    }
    Ok(())
}

/// The entry type, from the Unix mode when the archive records one, else from the name.
fn kind(entry: &ZipFileEntry<'_>) -> Kind {
    let named_dir = entry.name_raw().ends_with(b"/");
    let mode = entry.unix_mode();
    match mode.map(|m| m & 0o170_000) {
        Some(0o120_000) => Kind::Symlink,
        Some(0o040_000) => Kind::Dir,
        Some(0o020_000) => Kind::Special("character device"),
        Some(0o060_000) => Kind::Special("block device"),
        Some(0o010_000) => Kind::Special("fifo"),
        Some(0o140_000) => Kind::Special("socket"),
        Some(0o100_000 | 0) | None if named_dir => Kind::Dir,
        Some(0o100_000 | 0) | None => Kind::File(mode),
        Some(_) => Kind::Special("file of an unknown type"),
    }
}

fn corrupt(entry: Option<String>, error: &ZipError) -> ArchiveError {
    ArchiveError::Corrupt {
        format: ArchiveFormat::Zip,
        entry,
        detail: error.to_string(),
    }
}

fn open_error(entry: String, error: &ZipError) -> ArchiveError {
    match error {
        ZipError::UnsupportedArchive(detail) => ArchiveError::Unsupported {
            entry,
            detail: (*detail).to_owned(),
        },
        ZipError::CompressionMethodNotSupported(method) => ArchiveError::Unsupported {
            entry,
            detail: format!("compression method {method}"),
        },
        _ => corrupt(Some(entry), error),
    }
}

/// Walks the raw central directory (APPNOTE 4.3.12: a 46-byte fixed part, then the name, extra
/// field and comment) and returns the first name that occurs twice. Only used to name the
/// entry in the error: the `zip` crate reports that names repeat, not which one.
fn repeated_name<R: Read + Seek>(reader: &mut R, dir_start: u64) -> Option<String> {
    const SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    reader.seek(SeekFrom::Start(dir_start)).ok()?;
    let mut seen = HashSet::new();
    let mut header = [0u8; 46];
    loop {
        reader.read_exact(&mut header).ok()?;
        if header[..4] != SIGNATURE {
            return None;
        }
        let field = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let mut name = vec![0; usize::from(field(28))];
        reader.read_exact(&mut name).ok()?;
        let skip = i64::from(field(30)) + i64::from(field(32));
        reader.seek(SeekFrom::Current(skip)).ok()?;
        if !seen.insert(name.clone()) {
            return Some(display_name(&name));
        }
    }
}
