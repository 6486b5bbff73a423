//! Gzip-compressed tar archives, read as a stream with the `tar` and `flate2` crates.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use flate2::read::GzDecoder;
use tar::EntryType;

use super::path::display_name;
use super::unpack::Unpacker;
use super::{ArchiveError, ArchiveFormat};

/// Header blocks allowed per entry on top of its data in the decompressed stream (its header,
/// a PAX or GNU long-name header and their data, padding), so that a stream of headers alone
/// (a long name of a gigabyte of zeros) cannot get around the unpacked-size limit.
const OVERHEAD_PER_ENTRY: u64 = 8 * 1024;

/// Feeds every entry of the tar.gz archive in `reader` to `unpacker`.
pub(crate) fn walk<R: Read>(reader: R, unpacker: &mut Unpacker<'_>) -> Result<(), ArchiveError> {
    let limits = unpacker.limits();
    let cap = limits.max_unpacked_bytes.saturating_add(
        limits
            .max_files
            .saturating_add(16)
            .saturating_mul(OVERHEAD_PER_ENTRY),
    );
    let exceeded = Rc::new(Cell::new(false));
    let stream = Capped {
        inner: GzDecoder::new(reader),
        left: cap,
        exceeded: Rc::clone(&exceeded),
    };
    let max_unpacked = limits.max_unpacked_bytes;
    // Any failure while the stream is over its cap is that limit, whatever the parser says.
    let over_cap = |entry: &str, error: ArchiveError| {
        if exceeded.get() {
            ArchiveError::UnpackedTooLarge {
                entry: entry.to_owned(),
                limit: max_unpacked,
            }
        } else {
            error
        }
    };
    // Header damage is about no entry in particular: say where it was found.
    let corrupt = |after: Option<&str>, error: &io::Error| ArchiveError::Corrupt {
        format: ArchiveFormat::TarGz,
        entry: None,
        detail: match after {
            Some(entry) => format!("{error} (in the header after entry `{entry}`)"),
            None => error.to_string(),
        },
    };

    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| over_cap("(the first header)", corrupt(None, &e)))?;
    let mut last: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            let at = last.as_deref().unwrap_or("(the first header)");
            over_cap(at, corrupt(last.as_deref(), &e))
        })?;
        let raw = entry.path_bytes().into_owned();
        let name = last.insert(display_name(&raw));
        let entry_type = entry.header().entry_type();
        let result = match entry_type {
            // Old (v7) archives mark a directory only by the trailing slash of its name.
            EntryType::Regular if raw.ends_with(b"/") => unpacker.dir(&raw),
            EntryType::Regular | EntryType::Continuous => {
                let declared = entry.size();
                let mode = entry.header().mode().ok();
                unpacker.file(&raw, declared, mode, &mut entry)
            }
            EntryType::Directory => unpacker.dir(&raw),
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if entry_type == EntryType::Symlink {
                    unpacker.symlink(&raw, &target)
                } else {
                    unpacker.hardlink(&raw, &target)
                }
            }
            EntryType::Char => Err(unpacker.special(&raw, "character device")),
            EntryType::Block => Err(unpacker.special(&raw, "block device")),
            EntryType::Fifo => Err(unpacker.special(&raw, "fifo")),
            // Archive-wide metadata (`git archive` writes the commit id there): nothing to write.
            EntryType::XGlobalHeader => Ok(()),
            EntryType::GNUSparse => Err(ArchiveError::Unsupported {
                entry: name.clone(),
                detail: "sparse files".to_owned(),
            }),
            other => Err(ArchiveError::Unsupported {
                entry: name.clone(),
                detail: format!("tar entry type {:?}", other.as_byte() as char),
            }),
        };
        result.map_err(|e| over_cap(name, e))?;
    }
    Ok(())
}

/// Stops reading (with an error) once more than `left` bytes came out of the decompressor.
struct Capped<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a stream that ends exactly at the cap from a longer one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.set(true);
                    Err(io::Error::other(
                        "the decompressed archive is over its size limit",
                    ))
                }
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        self.left -= read as u64;
        Ok(read)
    }
}
