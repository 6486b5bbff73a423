//! The format-independent half of unpacking: every entry of either format goes through
//! [`Unpacker`], which enforces the limits and the tree rules and (when given a root) writes.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::Path;

use super::path::{self, display_name};
use super::{ArchiveError, ArchiveFormat, ArchiveLimits, ArchiveSummary};

const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;
const DIR_MODE: u32 = 0o755;
const COPY_BUFFER: usize = 64 * 1024;

/// What a path of the tree is, as far as the entries seen so far tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File {
        size: u64,
        executable: bool,
    },
    /// A directory the archive has an entry for.
    Dir,
    /// A directory only implied by the path of the entry named here.
    ImpliedDir(String),
    Symlink,
}

#[derive(Debug)]
struct PendingLink {
    entry: String,
    path: String,
    target: String,
}

/// Validates entries one by one and, with a root, writes them under it.
///
/// Symbolic links are checked and created only in [`Unpacker::finish`], after every other
/// entry: until then nothing in the tree is a link, so writing a file never goes through one.
pub(crate) struct Unpacker<'a> {
    limits: &'a ArchiveLimits,
    format: ArchiveFormat,
    root: Option<&'a Path>,
    nodes: HashMap<String, Node>,
    links: Vec<PendingLink>,
    entries: u64,
    files: u64,
    bytes: u64,
    buffer: Box<[u8]>,
}

impl<'a> Unpacker<'a> {
    /// `root`: where to write, or `None` to validate only.
    pub(crate) fn new(
        limits: &'a ArchiveLimits,
        format: ArchiveFormat,
        root: Option<&'a Path>,
    ) -> Self {
        Self {
            limits,
            format,
            root,
            nodes: HashMap::new(),
            links: Vec::new(),
            entries: 0,
            files: 0,
            bytes: 0,
            buffer: vec![0; COPY_BUFFER].into_boxed_slice(),
        }
    }

    pub(crate) fn format(&self) -> ArchiveFormat {
        self.format
    }

    pub(crate) fn limits(&self) -> &'a ArchiveLimits {
        self.limits
    }

    /// A directory entry.
    pub(crate) fn dir(&mut self, raw: &[u8]) -> Result<(), ArchiveError> {
        let entry = display_name(raw);
        let Some(path) = path::normalize(raw)? else {
            return Ok(()); // `./`: the root itself
        };
        self.count(&entry)?;
        self.claim(&entry, &path, Node::Dir)?;
        if let Some(root) = self.root {
            let dir = root.join(&path);
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(&dir)
                .map_err(|e| ArchiveError::io("create directory", dir, e))?;
        }
        Ok(())
    }

    /// A regular file: `declared` is the size its header claims (checked early, never trusted),
    /// `mode` its Unix mode if the archive has one (only the executable bits are kept).
    pub(crate) fn file(
        &mut self,
        raw: &[u8],
        declared: u64,
        mode: Option<u32>,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let entry = display_name(raw);
        let path = self.file_path(raw, &entry)?;
        self.count(&entry)?;
        self.check_size(&entry, declared)?;
        let executable = mode.is_some_and(|m| m & 0o111 != 0);
        self.claim(
            &entry,
            &path,
            Node::File {
                size: 0,
                executable,
            },
        )?;
        let size = self.write(&entry, &path, executable, data)?;
        self.nodes.insert(path, Node::File { size, executable });
        self.files += 1;
        Ok(())
    }

    /// A symbolic link. Its target is checked in [`Unpacker::finish`], when the whole tree is
    /// known.
    pub(crate) fn symlink(&mut self, raw: &[u8], target: &[u8]) -> Result<(), ArchiveError> {
        let entry = display_name(raw);
        let path = self.file_path(raw, &entry)?;
        self.count(&entry)?;
        let target = path::link_target(&entry, target)?.to_owned();
        self.claim(&entry, &path, Node::Symlink)?;
        self.links.push(PendingLink {
            entry,
            path,
            target,
        });
        Ok(())
    }

    /// A hard link (tar only). Its target is a path from the archive's root and must be a
    /// regular file that came earlier; the link becomes an independent copy of it.
    pub(crate) fn hardlink(&mut self, raw: &[u8], target_raw: &[u8]) -> Result<(), ArchiveError> {
        let entry = display_name(raw);
        let path = self.file_path(raw, &entry)?;
        self.count(&entry)?;
        let target_text = path::link_target(&entry, target_raw)?;
        let out_of_tree = || ArchiveError::LinkOutOfTree {
            entry: entry.clone(),
            target: target_text.to_owned(),
        };
        let target = match path::normalize(target_raw) {
            Ok(Some(target)) => target,
            Ok(None) | Err(ArchiveError::ParentComponent { .. }) => return Err(out_of_tree()),
            Err(_) => {
                return Err(ArchiveError::BadLink {
                    entry,
                    target: target_text.to_owned(),
                    reason: "the target is not a usable path",
                });
            }
        };
        let Some(&Node::File { size, executable }) = self.nodes.get(&target) else {
            return Err(ArchiveError::BadLink {
                entry,
                target: target_text.to_owned(),
                reason: "a hard link must point to a regular file earlier in the archive",
            });
        };
        self.check_size(&entry, size)?;
        self.claim(&entry, &path, Node::File { size, executable })?;
        if let Some(root) = self.root {
            let source = root.join(&target);
            let mut data = File::open(&source).map_err(|e| ArchiveError::io("open", source, e))?;
            self.write(&entry, &path, executable, &mut data)?;
        } else {
            self.bytes += size;
        }
        self.files += 1;
        Ok(())
    }

    /// A device file, fifo or socket: always refused.
    pub(crate) fn special(&self, raw: &[u8], kind: &'static str) -> ArchiveError {
        ArchiveError::SpecialFile {
            entry: display_name(raw),
            kind,
        }
    }

    /// Checks every link against the finished tree, creates the links, and normalises directory
    /// permissions.
    pub(crate) fn finish(self) -> Result<ArchiveSummary, ArchiveError> {
        for link in &self.links {
            self.check_link(link)?;
        }
        if let Some(root) = self.root {
            for link in &self.links {
                let at = root.join(&link.path);
                if let Some(parent) = at.parent() {
                    DirBuilder::new()
                        .recursive(true)
                        .mode(DIR_MODE)
                        .create(parent)
                        .map_err(|e| ArchiveError::io("create directory", parent, e))?;
                }
                symlink(&link.target, &at).map_err(|e| ArchiveError::io("create link", at, e))?;
            }
            for (path, node) in &self.nodes {
                if matches!(node, Node::Dir | Node::ImpliedDir(_)) {
                    let dir = root.join(path);
                    fs::set_permissions(&dir, Permissions::from_mode(DIR_MODE))
                        .map_err(|e| ArchiveError::io("set permissions on", dir, e))?;
                }
            }
        }
        Ok(ArchiveSummary {
            format: self.format,
            entries: self.entries,
            files: self.files,
            links: self.links.len() as u64,
            unpacked_bytes: self.bytes,
        })
    }

    /// A link may point anywhere inside the tree, resolved from its own directory, as long as
    /// the way there never climbs above the root and never passes *through* another link (only
    /// the last component may be one). Then resolving it by hand gives the same answer as the
    /// kernel will, whatever the other links point to.
    fn check_link(&self, link: &PendingLink) -> Result<(), ArchiveError> {
        let mut at: Vec<&str> = path::parent(&link.path)
            .split('/')
            .filter(|c| !c.is_empty())
            .collect();
        let components: Vec<&str> = link
            .target
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        for (i, component) in components.iter().enumerate() {
            if *component == ".." {
                if at.pop().is_none() {
                    return Err(ArchiveError::LinkOutOfTree {
                        entry: link.entry.clone(),
                        target: link.target.clone(),
                    });
                }
                continue;
            }
            at.push(component);
            let last = i + 1 == components.len();
            if !last && self.nodes.get(&at.join("/")) == Some(&Node::Symlink) {
                return Err(ArchiveError::BadLink {
                    entry: link.entry.clone(),
                    target: link.target.clone(),
                    reason: "the target passes through another link",
                });
            }
        }
        Ok(())
    }

    /// The normalised path of a non-directory entry (which cannot be the root).
    fn file_path(&self, raw: &[u8], entry: &str) -> Result<String, ArchiveError> {
        path::normalize(raw)?.ok_or_else(|| ArchiveError::BadName {
            entry: entry.to_owned(),
            reason: "only a directory can be the root of the archive",
        })
    }

    fn count(&mut self, entry: &str) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_files {
            return Err(ArchiveError::TooManyFiles {
                entry: entry.to_owned(),
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    fn check_size(&self, entry: &str, size: u64) -> Result<(), ArchiveError> {
        if size > self.limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                entry: entry.to_owned(),
                limit: self.limits.max_file_bytes,
            });
        }
        if self.bytes.saturating_add(size) > self.limits.max_unpacked_bytes {
            return Err(ArchiveError::UnpackedTooLarge {
                entry: entry.to_owned(),
                limit: self.limits.max_unpacked_bytes,
            });
        }
        Ok(())
    }

    /// Records `path` in the tree: its ancestors become directories, and it must not exist yet
    /// (except as a directory implied by earlier entries, when it is one).
    fn claim(&mut self, entry: &str, path: &str, node: Node) -> Result<(), ArchiveError> {
        for ancestor in path::ancestors(path) {
            match self.nodes.get(ancestor) {
                None => {
                    self.nodes
                        .insert(ancestor.to_owned(), Node::ImpliedDir(entry.to_owned()));
                }
                Some(Node::Dir | Node::ImpliedDir(_)) => {}
                Some(_) => {
                    return Err(ArchiveError::PathConflict {
                        entry: entry.to_owned(),
                        other: ancestor.to_owned(),
                    });
                }
            }
        }
        match (self.nodes.get(path), &node) {
            (None, _) | (Some(Node::ImpliedDir(_)), Node::Dir) => {
                self.nodes.insert(path.to_owned(), node);
                Ok(())
            }
            (Some(Node::ImpliedDir(by)), _) => Err(ArchiveError::PathConflict {
                entry: entry.to_owned(),
                other: by.clone(),
            }),
            (Some(_), _) => Err(ArchiveError::Duplicate {
                entry: entry.to_owned(),
            }),
        }
    }

    /// Copies `data` to `path` under the root (or nowhere when validating only), counting the
    /// bytes actually read against both limits. Returns the size.
    fn write(
        &mut self,
        entry: &str,
        path: &str,
        executable: bool,
        data: &mut dyn Read,
    ) -> Result<u64, ArchiveError> {
        let mode = if executable { EXEC_MODE } else { FILE_MODE };
        let mut out = match self.root {
            Some(root) => {
                let target = root.join(path);
                Some((self.create_file(&target, mode)?, target))
            }
            None => None,
        };
        let mut size: u64 = 0;
        loop {
            let read = match data.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ArchiveError::Corrupt {
                        format: self.format,
                        entry: Some(entry.to_owned()),
                        detail: e.to_string(),
                    });
                }
            };
            size += read as u64;
            if size > self.limits.max_file_bytes {
                return Err(ArchiveError::FileTooLarge {
                    entry: entry.to_owned(),
                    limit: self.limits.max_file_bytes,
                });
            }
            if self.bytes + size > self.limits.max_unpacked_bytes {
                return Err(ArchiveError::UnpackedTooLarge {
                    entry: entry.to_owned(),
                    limit: self.limits.max_unpacked_bytes,
                });
            }
            if let Some((file, target)) = out.as_mut() {
                file.write_all(&self.buffer[..read])
                    .map_err(|e| ArchiveError::io("write", target.clone(), e))?;
            }
        }
        self.bytes += size;
        Ok(size)
    }

    /// Creates a new file (never through an existing one) with exactly `mode`, whatever the
    /// umask, creating missing parent directories.
    fn create_file(&self, target: &Path, mode: u32) -> Result<File, ArchiveError> {
        if let Some(parent) = target.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)
                .map_err(|e| ArchiveError::io("create directory", parent, e))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(target)
            .map_err(|e| ArchiveError::io("create", target, e))?;
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| ArchiveError::io("set permissions on", target, e))?;
        Ok(file)
    }
}
