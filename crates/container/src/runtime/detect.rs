//! Which runtime an unpacked function needs: `containerpub.toml`, else the files at its root.

use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;

use super::catalog::{RuntimeCatalog, RuntimeSpec};
use super::{BuildContext, RuntimeError};

/// The optional manifest at the archive's root.
pub const MANIFEST: &str = "containerpub.toml";
/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// Files whose presence at the root picks a runtime of the catalog, by name.
const MARKERS: [(&str, &str); 3] = [
    ("main.py", "python"),
    ("bootstrap", "binary"),
    ("pubspec.yaml", "dart"),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    runtime: Option<String>,
}

/// How the runtime was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// `containerpub.toml` named it.
    Manifest,
    /// This file was at the archive's root.
    Marker(&'static str),
    /// Asked for by name ([`RuntimeCatalog::select`]), as when rebuilding a stored deployment.
    Named,
}

/// A runtime of the catalog, chosen for one function.
#[derive(Debug, Clone, Copy)]
pub struct SelectedRuntime<'a> {
    name: &'a str,
    spec: &'a RuntimeSpec,
    detection: Detection,
}

impl<'a> SelectedRuntime<'a> {
    /// Its name in the catalog (what the deployment records).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Its images, recipe and command.
    pub fn spec(&self) -> &'a RuntimeSpec {
        self.spec
    }

    /// How it was chosen.
    pub fn detection(&self) -> Detection {
        self.detection
    }
}

impl RuntimeCatalog {
    /// Chooses the runtime of the function unpacked in `context`: the one `containerpub.toml`
    /// names (`runtime = "python"`), else the one its root files point to — `main.py` →
    /// `python`, `bootstrap` → `binary`, `pubspec.yaml` → `dart`. None, or several of those
    /// files without a manifest, is an error the service answers with 422.
    pub fn detect(&self, context: &BuildContext) -> Result<SelectedRuntime<'_>, RuntimeError> {
        let dir = context.function_dir();
        if let Some(name) = read_manifest(&dir)?.and_then(|m| m.runtime) {
            return self.choose(&name, Detection::Manifest);
        }
        let mut found = Vec::new();
        for (file, runtime) in MARKERS {
            match fs::symlink_metadata(dir.join(file)) {
                Ok(_) => found.push((file, runtime)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(RuntimeError::io("look for", dir.join(file), e)),
            }
        }
        match found.as_slice() {
            [] => Err(RuntimeError::NotDetected),
            [(file, runtime)] => self.choose(runtime, Detection::Marker(file)),
            several => Err(RuntimeError::Ambiguous {
                markers: several.iter().map(|(file, _)| *file).collect(),
            }),
        }
    }

    /// The runtime of this name, as recorded by an earlier deployment.
    pub fn select(&self, name: &str) -> Result<SelectedRuntime<'_>, RuntimeError> {
        self.choose(name, Detection::Named)
    }

    fn choose(
        &self,
        name: &str,
        detection: Detection,
    ) -> Result<SelectedRuntime<'_>, RuntimeError> {
        let (name, spec) = self
            .entry(name)
            .ok_or_else(|| RuntimeError::UnknownRuntime {
                name: name.to_owned(),
                known: self.names().collect::<Vec<_>>().join(", "),
            })?;
        Ok(SelectedRuntime {
            name,
            spec,
            detection,
        })
    }
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, RuntimeError> {
    let path = dir.join(MANIFEST);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RuntimeError::io("read", path, e)),
    };
    let invalid = |detail: String| RuntimeError::Manifest { detail };
    if !meta.is_file() {
        return Err(invalid("it must be a regular file".to_owned()));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(invalid("it is larger than 64 KiB".to_owned()));
    }
    let bytes = fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("it is not UTF-8".to_owned()))?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| invalid(e.to_string().trim_end().to_owned()))
}
