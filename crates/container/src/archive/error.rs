//! The archive module's error type.

use std::io;
use std::path::PathBuf;

use super::ArchiveFormat;

/// Why an archive was refused, or why storing or unpacking it failed.
///
/// Every refusal caused by the archive itself names the offending entry as it is spelled in the
/// archive, so that the message can go back to the uploader unchanged;
/// [`ArchiveError::is_rejection`] tells those apart from failures of this machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The archive itself is over the size limit.
    #[error("the archive is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: u64,
        /// The limit it broke.
        limit: u64,
    },
    /// The bytes are neither a zip archive nor a gzip stream.
    #[error("the archive is neither a zip archive nor a gzip-compressed tar archive")]
    UnknownFormat,
    /// The archive cannot be parsed, or an entry's data is damaged (bad checksum, truncated).
    #[error("the {format} archive is damaged{}: {detail}", at_entry(entry.as_deref()))]
    Corrupt {
        /// Format detected from the magic bytes.
        format: ArchiveFormat,
        /// The entry being read when the damage was found, when there was one.
        entry: Option<String>,
        /// What the parser said.
        detail: String,
    },
    /// An entry's path is absolute.
    #[error("entry `{entry}` has an absolute path")]
    AbsolutePath {
        /// The entry, as named in the archive.
        entry: String,
    },
    /// An entry's path has a `..` component (even one that would stay inside the tree).
    #[error("entry `{entry}` has a `..` path component")]
    ParentComponent {
        /// The entry, as named in the archive.
        entry: String,
    },
    /// An entry's name cannot be used as a path here.
    #[error("entry `{entry}` has an unusable name: {reason}")]
    BadName {
        /// The entry, as named in the archive (non-UTF-8 bytes replaced).
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A symbolic or hard link points outside the archive's tree.
    #[error("entry `{entry}` is a link to `{target}`, which is outside the archive")]
    LinkOutOfTree {
        /// The link entry, as named in the archive.
        entry: String,
        /// Its target, as written in the archive.
        target: String,
    },
    /// A link stays inside the tree but is refused for another reason.
    #[error("entry `{entry}` is a link to `{target}`, which is not allowed: {reason}")]
    BadLink {
        /// The link entry, as named in the archive.
        entry: String,
        /// Its target, as written in the archive.
        target: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A device file, fifo or socket.
    #[error("entry `{entry}` is a {kind}; only regular files, directories and links are allowed")]
    SpecialFile {
        /// The entry, as named in the archive.
        entry: String,
        /// What kind of special file it is.
        kind: &'static str,
    },
    /// One member is larger than the per-file limit (declared or actually read).
    #[error("entry `{entry}` is larger than the limit of {limit} bytes per file")]
    FileTooLarge {
        /// The entry, as named in the archive.
        entry: String,
        /// The per-file limit.
        limit: u64,
    },
    /// More entries (files, directories and links together) than allowed.
    #[error("the archive has more than {limit} entries (refused at `{entry}`)")]
    TooManyFiles {
        /// The first entry over the limit.
        entry: String,
        /// The entry limit.
        limit: u64,
    },
    /// The unpacked content would be larger than allowed (counted while reading, never from
    /// headers alone).
    #[error("the archive unpacks to more than {limit} bytes (refused at `{entry}`)")]
    UnpackedTooLarge {
        /// The entry being read when the limit was crossed.
        entry: String,
        /// The limit on the unpacked size.
        limit: u64,
    },
    /// Two entries with the same path (after removing `.` components and repeated slashes).
    #[error("entry `{entry}` appears more than once in the archive")]
    Duplicate {
        /// The second occurrence, as named in the archive.
        entry: String,
    },
    /// A path used both as a directory and as a file or link.
    #[error(
        "entry `{entry}` conflicts with `{other}`: one path cannot be both a directory and a file or link"
    )]
    PathConflict {
        /// The entry that was refused.
        entry: String,
        /// The path it conflicts with.
        other: String,
    },
    /// An entry needs a feature this platform does not accept (encryption, an unusual compression
    /// method, sparse files, an unknown entry type).
    #[error("entry `{entry}` is not supported: {detail}")]
    Unsupported {
        /// The entry, as named in the archive.
        entry: String,
        /// What is not supported.
        detail: String,
    },
    /// [`unpack`](super::unpack) only creates fresh directories.
    #[error("the destination {} already exists", path.display())]
    DestinationExists {
        /// The destination given.
        path: PathBuf,
    },
    /// A failure of this machine (file system), not of the archive.
    #[error("could not {op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn at_entry(entry: Option<&str>) -> String {
    entry
        .map(|e| format!(" at entry `{e}`"))
        .unwrap_or_default()
}

impl ArchiveError {
    /// `true` when the archive itself is at fault: the service answers 422 (413 for
    /// [`ArchiveError::TooLarge`]) with this error's message. `false` for failures of this
    /// machine ([`ArchiveError::Io`]) and for a misused destination, which are server errors.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, Self::Io { .. } | Self::DestinationExists { .. })
    }

    /// The archive entry the error is about, when it is about one.
    pub fn entry(&self) -> Option<&str> {
        match self {
            Self::Corrupt { entry, .. } => entry.as_deref(),
            Self::AbsolutePath { entry }
            | Self::ParentComponent { entry }
            | Self::BadName { entry, .. }
            | Self::LinkOutOfTree { entry, .. }
            | Self::BadLink { entry, .. }
            | Self::SpecialFile { entry, .. }
            | Self::FileTooLarge { entry, .. }
            | Self::TooManyFiles { entry, .. }
            | Self::UnpackedTooLarge { entry, .. }
            | Self::Duplicate { entry }
            | Self::PathConflict { entry, .. }
            | Self::Unsupported { entry, .. } => Some(entry),
            Self::TooLarge { .. }
            | Self::UnknownFormat
            | Self::DestinationExists { .. }
            | Self::Io { .. } => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
