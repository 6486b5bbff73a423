//! Packs a build context directory into the tar archive that `POST /libpod/build` takes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Packs `dir` into an uncompressed tar: entries sorted by name, symbolic links stored as links
/// (never followed), headers deterministic (no owner, no times), so that the same files give the
/// same archive and the builder's layer cache can hit. Files other than regular files,
/// directories and symbolic links are refused.
pub(crate) fn pack(dir: &Path) -> Result<Vec<u8>> {
    let err = |path: &Path, source| Error::Context {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(dir).map_err(|e| err(dir, e))?;
    if !meta.is_dir() {
        return Err(err(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let mut stack: Vec<(PathBuf, PathBuf)> = vec![(dir.to_path_buf(), PathBuf::new())];
    while let Some((abs, rel)) = stack.pop() {
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(&abs)
            .map_err(|e| err(&abs, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| err(&abs, e))?;
        entries.sort_by_key(fs::DirEntry::file_name);
        let mut subdirs = Vec::new();
        for entry in entries {
            let path = entry.path();
            let name = rel.join(entry.file_name());
            let file_type = entry.file_type().map_err(|e| err(&path, e))?;
            if file_type.is_dir() {
                builder
                    .append_dir(&name, &path)
                    .map_err(|e| err(&path, e))?;
                subdirs.push((path, name));
            } else if file_type.is_file() || file_type.is_symlink() {
                builder
                    .append_path_with_name(&path, &name)
                    .map_err(|e| err(&path, e))?;
            } else {
                return Err(err(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a regular file, directory or link",
                    ),
                ));
            }
        }
        // Pushed in reverse so that the stack pops them in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    builder.into_inner().map_err(|e| err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_files_and_keeps_links_as_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("b.txt"), "b").expect("write");
        fs::write(dir.path().join("sub/a.txt"), "a").expect("write");
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).expect("symlink");

        let tar = pack(dir.path()).expect("pack");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let path = entry.path().expect("path").display().to_string();
            let kind = entry.header().entry_type();
            if path == "link" {
                assert!(
                    kind.is_symlink(),
                    "the link must stay a link, not the host file"
                );
                assert_eq!(
                    entry.link_name().expect("link").as_deref(),
                    Some(Path::new("/etc/hostname"))
                );
            }
            seen.push(path);
        }
        assert_eq!(seen, ["b.txt", "link", "sub", "sub/a.txt"]);
        assert_eq!(
            pack(dir.path()).expect("pack again"),
            tar,
            "packing is deterministic"
        );
    }

    #[test]
    fn a_missing_context_names_the_path() {
        match pack(Path::new("/nonexistent/context")) {
            Err(Error::Context { path, .. }) => assert_eq!(path, Path::new("/nonexistent/context")),
            other => panic!("expected Context, got {other:?}"),
        }
    }
}
