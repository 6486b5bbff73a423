//! Archive validation, unpacking and the content-addressed store, against archives built here
//! with the `zip` and `tar` crates — hostile ones included.
#![expect(
    clippy::unwrap_used,
    reason = "the helpers that build archives panic on failure, like the tests"
)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use container::archive::{
    self, ArchiveDigest, ArchiveError, ArchiveFormat, ArchiveLimits, ArchiveStore,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

// ---------------------------------------------------------------------------------------------
// Building archives

/// One tar member, with its name and link target written raw into the header (the `tar`
/// crate's setters refuse the hostile names these tests need).
struct Member<'a> {
    name: &'a [u8],
    kind: EntryType,
    mode: u32,
    data: &'a [u8],
    link: &'a [u8],
    /// Size written in the header, when it should lie about `data`.
    claimed: Option<u64>,
}

fn file(name: &str, data: &'static [u8]) -> Member<'static> {
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    Member {
        name: name.as_bytes(),
        kind: EntryType::Regular,
        mode: 0o644,
        data,
        link: b"",
        claimed: None,
    }
}

fn of_kind(name: &'static str, kind: EntryType, link: &'static str) -> Member<'static> {
    Member {
        name: name.as_bytes(),
        kind,
        mode: if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        },
        data: b"",
        link: link.as_bytes(),
        claimed: None,
    }
}

fn tar_gz(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for m in members {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..m.name.len()].copy_from_slice(m.name);
        header.as_old_mut().linkname[..m.link.len()].copy_from_slice(m.link);
        header.set_entry_type(m.kind);
        header.set_mode(m.mode);
        header.set_mtime(1_700_000_000);
        header.set_size(m.claimed.unwrap_or(m.data.len() as u64));
        header.set_cksum();
        builder.append(&header, m.data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

enum Z<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
    /// A file entry with raw external attributes (the Unix mode is the high 16 bits).
    Raw(&'a str, u32),
}

fn zip(entries: &[Z<'_>]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for entry in entries {
        match entry {
            Z::File(name, data, mode) => {
                writer
                    .start_file(*name, options.unix_permissions(*mode))
                    .unwrap();
                writer.write_all(data).unwrap();
            }
            Z::Dir(name) => writer.add_directory(*name, options).unwrap(),
            Z::Link(name, target) => writer.add_symlink(*name, *target, options).unwrap(),
            Z::Raw(name, attributes) => {
                writer
                    .start_file(*name, options.external_attributes(*attributes))
                    .unwrap();
            }
        }
    }
    writer.finish().unwrap().into_inner()
}

/// Replaces every occurrence of `from` by `to` (same length) in the archive's bytes: local
/// headers and central directory alike.
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut found = 0;
    for i in 0..=bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            found += 1;
        }
    }
    assert!(found > 0, "nothing to patch");
}

// ---------------------------------------------------------------------------------------------
// Checking refusals

fn small_limits() -> ArchiveLimits {
    ArchiveLimits {
        max_archive_bytes: 4 * 1024 * 1024,
        max_unpacked_bytes: 8 * 1024 * 1024,
        max_files: 10,
        max_file_bytes: 2 * 1024 * 1024,
    }
}

/// Both `check` and `unpack` refuse the archive with the same error, and the unpack leaves no
/// trace: no destination, nothing beside it.
fn refused(bytes: &[u8], limits: &ArchiveLimits) -> ArchiveError {
    let checked = archive::check(bytes, limits).expect_err("check accepted a hostile archive");
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("function");
    let unpacked =
        archive::unpack(bytes, &dest, limits).expect_err("unpack accepted a hostile archive");
    assert_eq!(checked.to_string(), unpacked.to_string());
    assert!(!dest.exists(), "the destination was created");
    let left: Vec<_> = fs::read_dir(parent.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(unpacked.is_rejection(), "{unpacked}");
    unpacked
}

fn assert_entry(error: &ArchiveError, entry: &str) {
    assert_eq!(error.entry(), Some(entry), "{error}");
    assert!(
        error.to_string().contains(entry),
        "the message does not name `{entry}`: {error}"
    );
}

#[test]
fn absolute_paths_are_refused() {
    let limits = ArchiveLimits::default();
    for bytes in [
        tar_gz(&[file("/etc/cron.d/x", b"x")]),
        zip(&[Z::File("/etc/cron.d/x", b"x", 0o644)]),
    ] {
        let error = refused(&bytes, &limits);
        assert!(
            matches!(error, ArchiveError::AbsolutePath { .. }),
            "{error}"
        );
        assert_entry(&error, "/etc/cron.d/x");
    }
}

#[test]
fn parent_components_are_refused() {
    let limits = ArchiveLimits::default();
    for name in ["../x", "a/../../x", "a/../b"] {
        for bytes in [
            tar_gz(&[file("ok.txt", b"ok"), file(name, b"x")]),
            zip(&[Z::File("ok.txt", b"ok", 0o644), Z::File(name, b"x", 0o644)]),
        ] {
            let error = refused(&bytes, &limits);
            assert!(
                matches!(error, ArchiveError::ParentComponent { .. }),
                "{error}"
            );
            assert_entry(&error, name);
        }
    }
}

#[test]
fn symlinks_out_of_the_tree_are_refused() {
    let limits = ArchiveLimits::default();
    for (name, target) in [
        ("passwd", "/etc/passwd"),
        ("up", ".."),
        ("deep/up", "../.."),
        ("sneaky", "a/../../etc"),
    ] {
        for bytes in [
            tar_gz(&[of_kind(name, EntryType::Symlink, target)]),
            zip(&[Z::Link(name, target)]),
        ] {
            let error = refused(&bytes, &limits);
            assert!(
                matches!(error, ArchiveError::LinkOutOfTree { .. }),
                "{name} -> {target}: {error}"
            );
            assert_entry(&error, name);
            assert!(error.to_string().contains(target));
        }
    }
}

#[test]
fn a_symlink_through_another_link_is_refused() {
    // `sub/s -> ..` is the root (allowed on its own), but `l -> sub/s/..` would climb out of
    // the tree through it, though by hand it looks like `sub`.
    let bytes = tar_gz(&[
        of_kind("sub/s", EntryType::Symlink, ".."),
        of_kind("l", EntryType::Symlink, "sub/s/.."),
    ]);
    let error = refused(&bytes, &ArchiveLimits::default());
    assert!(matches!(error, ArchiveError::BadLink { .. }), "{error}");
    assert_entry(&error, "l");
}

#[test]
fn nothing_may_be_stored_beneath_a_link() {
    let limits = ArchiveLimits::default();
    // The link first, then a file "inside" it: writing it would go through the link.
    let bytes = tar_gz(&[
        of_kind("etc", EntryType::Symlink, "real"),
        file("etc/passwd", b"x"),
    ]);
    let error = refused(&bytes, &limits);
    assert!(
        matches!(error, ArchiveError::PathConflict { .. }),
        "{error}"
    );
    assert_entry(&error, "etc/passwd");
    // The other order.
    let bytes = zip(&[Z::File("etc/passwd", b"x", 0o644), Z::Link("etc", "real")]);
    let error = refused(&bytes, &limits);
    assert!(
        matches!(error, ArchiveError::PathConflict { .. }),
        "{error}"
    );
    assert_entry(&error, "etc");
}

#[test]
fn hard_links_out_of_the_tree_are_refused() {
    let limits = ArchiveLimits::default();
    for target in ["/etc/passwd", "../outside", "a/../../outside"] {
        let bytes = tar_gz(&[file("a/x", b"x"), of_kind("evil", EntryType::Link, target)]);
        let error = refused(&bytes, &limits);
        assert!(
            matches!(error, ArchiveError::LinkOutOfTree { .. }),
            "{target}: {error}"
        );
        assert_entry(&error, "evil");
    }
    // Inside the tree, but not to an earlier regular file.
    let bytes = tar_gz(&[
        of_kind("evil", EntryType::Link, "later"),
        file("later", b"x"),
    ]);
    let error = refused(&bytes, &limits);
    assert!(matches!(error, ArchiveError::BadLink { .. }), "{error}");
    assert_entry(&error, "evil");
}

#[test]
fn device_files_and_fifos_are_refused() {
    let limits = ArchiveLimits::default();
    for (kind, name, word) in [
        (EntryType::Char, "null", "character device"),
        (EntryType::Block, "sda", "block device"),
        (EntryType::Fifo, "pipe", "fifo"),
    ] {
        let error = refused(&tar_gz(&[of_kind(name, kind, "")]), &limits);
        assert!(matches!(error, ArchiveError::SpecialFile { .. }), "{error}");
        assert_entry(&error, name);
        assert!(error.to_string().contains(word));
    }
    for (mode, name) in [(0o020_644, "null"), (0o010_644, "pipe")] {
        let error = refused(&zip(&[Z::Raw(name, mode << 16)]), &limits);
        assert!(matches!(error, ArchiveError::SpecialFile { .. }), "{error}");
        assert_entry(&error, name);
    }
}

#[test]
fn a_member_claiming_a_gigabyte_is_refused_before_reading() {
    let mut member = file("huge.bin", b"");
    member.claimed = Some(1 << 30);
    let error = refused(&tar_gz(&[member]), &ArchiveLimits::default());
    assert!(
        matches!(error, ArchiveError::FileTooLarge { .. }),
        "{error}"
    );
    assert_entry(&error, "huge.bin");
}

#[test]
fn zip_bombs_are_refused_by_counting_real_bytes() {
    let limits = small_limits();
    let zeros = vec![0u8; 1024 * 1024];
    // Ten highly compressible megabytes, over the 8 MiB limit on the unpacked total.
    let names: Vec<String> = (0..10).map(|i| format!("zeros-{i}")).collect();
    let entries: Vec<Z<'_>> = names
        .iter()
        .map(|n| Z::File(n, zeros.as_slice(), 0o644))
        .collect();
    let bytes = zip(&entries);
    assert!(bytes.len() < 100_000, "the bomb is {} bytes", bytes.len());
    let error = refused(&bytes, &limits);
    assert!(
        matches!(error, ArchiveError::UnpackedTooLarge { .. }),
        "{error}"
    );
    assert_entry(&error, "zeros-8");

    // The same as tar.gz.
    let members: Vec<Member<'_>> = names
        .iter()
        .map(|n| Member {
            data: zeros.as_slice(),
            ..file(n, b"")
        })
        .collect();
    let error = refused(&tar_gz(&members), &limits);
    assert!(
        matches!(error, ArchiveError::UnpackedTooLarge { .. }),
        "{error}"
    );
    assert_entry(&error, "zeros-8");
}

#[test]
fn a_long_name_bomb_is_capped_too() {
    // A GNU long-name header of 20 MiB (the `tar` crate reads it whole into memory): the cap on
    // the decompressed stream stops it before any entry.
    let long_name = vec![b'a'; 20 * 1024 * 1024];
    let bomb = Member {
        data: &long_name,
        ..of_kind("././@LongLink", EntryType::GNULongName, "")
    };
    let error = refused(&tar_gz(&[bomb, file("x", b"x")]), &small_limits());
    assert!(
        matches!(error, ArchiveError::UnpackedTooLarge { .. }),
        "{error}"
    );
    assert_entry(&error, "(the first header)");
}

#[test]
fn a_zip_member_lying_about_its_size_is_refused() {
    // 3 MiB of zeros whose headers (local and central) claim 16 bytes: the per-file limit of
    // 2 MiB is enforced on what comes out of the decompressor.
    let zeros = vec![0u8; 3 * 1024 * 1024];
    let mut bytes = zip(&[Z::File("liar.bin", &zeros, 0o644)]);
    let real = u32::try_from(zeros.len()).unwrap().to_le_bytes();
    patch(&mut bytes, &real, &16u32.to_le_bytes());
    let error = refused(&bytes, &small_limits());
    assert!(
        matches!(
            error,
            ArchiveError::FileTooLarge { .. } | ArchiveError::Corrupt { .. }
        ),
        "{error}"
    );
    assert_entry(&error, "liar.bin");
}

#[test]
fn too_many_files_are_refused() {
    let limits = small_limits();
    let names: Vec<String> = (0..11).map(|i| format!("f{i:02}")).collect();
    let entries: Vec<Z<'_>> = names.iter().map(|n| Z::File(n, b"x", 0o644)).collect();
    let error = refused(&zip(&entries), &limits);
    assert!(
        matches!(error, ArchiveError::TooManyFiles { .. }),
        "{error}"
    );
    assert_entry(&error, "f10");

    let members: Vec<Member<'_>> = names.iter().map(|n| file(n, b"x")).collect();
    let error = refused(&tar_gz(&members), &limits);
    assert!(
        matches!(error, ArchiveError::TooManyFiles { .. }),
        "{error}"
    );
    assert_entry(&error, "f10");
}

#[test]
fn duplicate_entries_are_refused() {
    let limits = ArchiveLimits::default();
    let error = refused(
        &tar_gz(&[file("a.txt", b"1"), file("a.txt", b"2")]),
        &limits,
    );
    assert!(matches!(error, ArchiveError::Duplicate { .. }), "{error}");
    assert_entry(&error, "a.txt");

    let error = refused(
        &tar_gz(&[file("dir/a.txt", b"1"), file("./dir//a.txt", b"2")]),
        &limits,
    );
    assert!(matches!(error, ArchiveError::Duplicate { .. }), "{error}");
    assert_entry(&error, "./dir//a.txt");

    // The zip writer refuses duplicates, so rename `b.txt` to `a.txt` in the bytes.
    let mut bytes = zip(&[Z::File("a.txt", b"1", 0o644), Z::File("b.txt", b"2", 0o644)]);
    patch(&mut bytes, b"b.txt", b"a.txt");
    let error = refused(&bytes, &limits);
    assert!(matches!(error, ArchiveError::Duplicate { .. }), "{error}");
    assert_entry(&error, "a.txt");
}

#[test]
fn a_file_cannot_also_be_a_directory() {
    let error = refused(
        &tar_gz(&[file("a", b"x"), file("a/b", b"y")]),
        &ArchiveLimits::default(),
    );
    assert!(
        matches!(error, ArchiveError::PathConflict { .. }),
        "{error}"
    );
    assert_entry(&error, "a/b");
}

#[test]
fn unusable_names_are_refused() {
    let limits = ArchiveLimits::default();
    let mut member = file("x", b"x");
    member.name = b"caf\xe9.txt";
    let error = refused(&tar_gz(&[member]), &limits);
    assert!(matches!(error, ArchiveError::BadName { .. }), "{error}");
    let error = refused(&zip(&[Z::File("dir\\file.txt", b"x", 0o644)]), &limits);
    assert!(matches!(error, ArchiveError::BadName { .. }), "{error}");
    assert_entry(&error, "dir\\file.txt");
}

#[test]
fn size_and_format_are_checked_first() {
    let bytes = zip(&[Z::File("a", &[7; 4096], 0o644)]);
    let limits = ArchiveLimits {
        max_archive_bytes: 100,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        archive::check(&bytes, &limits),
        Err(ArchiveError::TooLarge { limit: 100, .. })
    ));
    let error = refused(
        b"#!/bin/sh\necho not an archive\n",
        &ArchiveLimits::default(),
    );
    assert!(matches!(error, ArchiveError::UnknownFormat), "{error}");
    // Right magic, garbage after it.
    let error = refused(b"PK\x03\x04garbage", &ArchiveLimits::default());
    assert!(matches!(error, ArchiveError::Corrupt { .. }), "{error}");
    let mut truncated = tar_gz(&[file("a", &[1; 10_000])]);
    truncated.truncate(truncated.len() / 2);
    let error = refused(&truncated, &ArchiveLimits::default());
    assert!(matches!(error, ArchiveError::Corrupt { .. }), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Good archives

/// Every path under `root` with its type, mode and content (or link target).
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                walk(root, &path, out);
                format!("dir {mode:o}")
            } else {
                let content = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
                format!("file {mode:o} {content:?}")
            };
            out.insert(rel, what);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn good_tar() -> Vec<u8> {
    let mut setuid = file("app/run", b"#!/bin/sh\necho run\n");
    setuid.mode = 0o4755;
    let mut readonly = file("app/data/config.json", b"{\"a\": 1}");
    readonly.mode = 0o400;
    // What `git archive` puts first: archive-wide metadata, not a file.
    let global = Member {
        data: b"52 comment=0123456789abcdef0123456789abcdef01234567\n",
        ..of_kind("pax_global_header", EntryType::XGlobalHeader, "")
    };
    tar_gz(&[
        global,
        of_kind("./", EntryType::Directory, ""),
        of_kind("app/", EntryType::Directory, ""),
        setuid,
        readonly,
        file("README", b"hello"),
        of_kind("bin/start", EntryType::Symlink, "../app/run"),
        of_kind("current", EntryType::Symlink, "app"),
        of_kind("empty/", EntryType::Directory, ""),
    ])
}

fn good_zip() -> Vec<u8> {
    zip(&[
        Z::Dir("app/"),
        Z::File("app/run", b"#!/bin/sh\necho run\n", 0o4755),
        Z::File("app/data/config.json", b"{\"a\": 1}", 0o400),
        Z::File("README", b"hello", 0o644),
        Z::Link("bin/start", "../app/run"),
        Z::Link("current", "app"),
        Z::Dir("empty/"),
    ])
}

#[test]
fn zip_and_tar_gz_unpack_to_the_same_tree() {
    let limits = ArchiveLimits::default();
    let parent = tempfile::tempdir().unwrap();
    let from_tar = parent.path().join("from-tar");
    let from_zip = parent.path().join("from-zip");
    let tar_summary = archive::unpack(&good_tar(), &from_tar, &limits).unwrap();
    let zip_summary = archive::unpack(&good_zip(), &from_zip, &limits).unwrap();

    let expected: BTreeMap<String, String> = [
        ("README", "file 644 \"hello\""),
        ("app", "dir 755"),
        ("app/data", "dir 755"),
        ("app/data/config.json", "file 644 \"{\\\"a\\\": 1}\""),
        ("app/run", "file 755 \"#!/bin/sh\\necho run\\n\""),
        ("bin", "dir 755"),
        ("bin/start", "link -> ../app/run"),
        ("current", "link -> app"),
        ("empty", "dir 755"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(tree(&from_tar), expected);
    assert_eq!(tree(&from_zip), expected);
    assert_eq!(
        fs::metadata(&from_tar).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // The links work, and only inside.
    assert_eq!(
        fs::read_to_string(from_zip.join("bin/start")).unwrap(),
        "#!/bin/sh\necho run\n"
    );

    assert_eq!(tar_summary.format, ArchiveFormat::TarGz);
    assert_eq!(zip_summary.format, ArchiveFormat::Zip);
    for summary in [tar_summary, zip_summary] {
        assert_eq!(summary.files, 3);
        assert_eq!(summary.links, 2);
        assert_eq!(summary.unpacked_bytes, 5 + 8 + 19);
    }
    // Only the two destinations: no staging directory left over.
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 2);
    // `check` agrees without writing.
    assert_eq!(archive::check(&good_zip(), &limits).unwrap(), zip_summary);
}

#[test]
fn hard_links_inside_become_copies() {
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("f");
    let mut exe = file("bin/tool", b"#!/bin/sh\n");
    exe.mode = 0o755;
    let bytes = tar_gz(&[exe, of_kind("bin/alias", EntryType::Link, "bin/tool")]);
    let summary = archive::unpack(&bytes, &dest, &ArchiveLimits::default()).unwrap();
    assert_eq!(summary.files, 2);
    assert_eq!(summary.unpacked_bytes, 20);
    let alias = fs::symlink_metadata(dest.join("bin/alias")).unwrap();
    assert!(alias.is_file());
    assert_eq!(alias.nlink(), 1, "a copy, not a hard link");
    assert_eq!(alias.mode() & 0o777, 0o755);
    assert_eq!(fs::read(dest.join("bin/alias")).unwrap(), b"#!/bin/sh\n");
}

#[test]
fn unpack_file_reads_from_disk_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let stored = dir.path().join("a.tar.gz");
    fs::write(&stored, good_tar()).unwrap();
    let dest = dir.path().join("out");
    archive::unpack_file(&stored, &dest, &ArchiveLimits::default()).unwrap();
    assert!(dest.join("README").is_file());
    let error = archive::unpack_file(&stored, &dest, &ArchiveLimits::default()).unwrap_err();
    assert!(matches!(error, ArchiveError::DestinationExists { .. }));
    assert!(!error.is_rejection());
}

// ---------------------------------------------------------------------------------------------
// The store

#[test]
fn the_store_is_content_addressed_and_dedupes() {
    let data = tempfile::tempdir().unwrap();
    let store = ArchiveStore::new(data.path());
    let bytes = good_zip();
    let first = store.put(&bytes).unwrap();
    assert!(first.newly_stored);
    assert_eq!(first.format, ArchiveFormat::Zip);
    assert_eq!(first.size, bytes.len() as u64);
    assert_eq!(first.sha256, ArchiveDigest::of(&bytes));
    let hex = first.sha256.as_str();
    assert_eq!(
        first.path,
        data.path()
            .join("archives")
            .join(&hex[..2])
            .join(format!("{hex}.zip"))
    );
    assert_eq!(fs::read(&first.path).unwrap(), bytes);
    assert_eq!(
        fs::metadata(&first.path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The same bytes again: same archive, nothing written.
    let inode = fs::metadata(&first.path).unwrap().ino();
    let second = store.put(&bytes).unwrap();
    assert!(!second.newly_stored);
    assert_eq!(second.path, first.path);
    assert_eq!(fs::metadata(&second.path).unwrap().ino(), inode);
    // No temporary file left beside it.
    assert_eq!(
        fs::read_dir(first.path.parent().unwrap()).unwrap().count(),
        1
    );

    let tgz = store.put(&good_tar()).unwrap();
    assert!(tgz.path.to_string_lossy().ends_with(".tar.gz"));
    assert_eq!(tgz.format, ArchiveFormat::TarGz);

    let got = store.get(&first.sha256).unwrap().unwrap();
    assert_eq!(
        (got.path, got.size, got.format),
        (first.path.clone(), first.size, first.format)
    );
    assert!(store.remove(&first.sha256).unwrap());
    assert!(
        !store.remove(&first.sha256).unwrap(),
        "remove is idempotent"
    );
    assert_eq!(store.get(&first.sha256).unwrap(), None);
    assert!(store.get(&tgz.sha256).unwrap().is_some());

    assert!(matches!(
        store.put(b"plain text"),
        Err(ArchiveError::UnknownFormat)
    ));
}
