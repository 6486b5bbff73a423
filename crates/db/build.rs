//! Rebuilds the crate when a migration changes (diesel's `embed_migrations!` cannot ask for it
//! itself) and computes `DB_MIGRATIONS_FINGERPRINT`, an FNV-1a hash of every file under
//! `migrations/` (relative path and contents, in sorted order).

use std::path::{Path, PathBuf};

fn main() {
    // Read at run time, not with `env!`: a build script compiled in another checkout (a copied
    // `target/`) would otherwise keep hashing that checkout's migrations.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest_dir).join("../../migrations");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    collect(&dir, &mut files);
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for file in &files {
        let rel = file.strip_prefix(&dir).unwrap_or(file);
        feed(rel.to_string_lossy().as_bytes());
        feed(&[0]);
        match std::fs::read(file) {
            Ok(bytes) => feed(&bytes),
            Err(e) => panic!("cannot read {}: {e}", file.display()),
        }
        feed(&[0]);
    }
    println!("cargo::rustc-env=DB_MIGRATIONS_FINGERPRINT={hash:016x}");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}
