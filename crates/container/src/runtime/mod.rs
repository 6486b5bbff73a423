//! Function runtimes (SPEC §4): the catalog, runtime detection and build plans.
//!
//! A [`RuntimeCatalog`] (configuration, with development defaults) maps a runtime name to its
//! base images, a [`Recipe`] and a run command. For one deploy:
//!
//! 1. unpack the archive into `<context>/function` ([`BuildContext::function_dir`], with
//!    [`crate::archive::unpack_file`]);
//! 2. [`RuntimeCatalog::detect`] the runtime: `containerpub.toml` may name it
//!    (`runtime = "python"`), else `main.py` → `python`, `bootstrap` → `binary`,
//!    `pubspec.yaml` → `dart`; none or several is a [`RuntimeError`] the service answers
//!    with 422;
//! 3. [`SelectedRuntime::plan`] the build and [`BuildPlan::write`] its files beside the
//!    function: a `Containerfile` (base images fully qualified, the function copied to
//!    `/function`, `USER 65534:65534`, `io.containerpub.*` labels) and the recipe's own files;
//! 4. build the context with Podman, with `--network host` only when
//!    [`BuildPlan::needs_network`] (pip or `dart pub get`), else `--network none`.
//!
//! All of it is blocking file-system work: call it from `spawn_blocking`.
//!
//! # Recipes
//! - **python**: the platform's bootstrap ([`PYTHON_BOOTSTRAP`], installed at
//!   `/opt/containerpub/bootstrap.py`) imports `main` from `/function` and calls
//!   `handler(request)`; `requirements.txt` is installed with pip into
//!   `/opt/containerpub/packages` before the code is copied (so a code change reuses that
//!   layer); the code is byte-compiled, so a syntax error fails the build. The run image needs
//!   `python3` (and pip, for functions with requirements).
//! - **binary**: `bootstrap` (a regular file at the archive's root) is copied with the rest and
//!   made executable; it runs once per invocation.
//! - **dart**: an entry point is generated around the package's one `@cloudFunction` class
//!   (written to [`ENTRY_PACKAGE_PATH`] in the package), compiled with `dart compile exe` in a build stage
//!   on the runtime's `build_image`, and copied with the Dart image's `/runtime/` files onto
//!   the run image. There is no Dart SDK on the development machines: Dart functions build only
//!   where `docker.io/library/dart:stable` (or the configured build image) can be pulled.
//!
//! # The file contract
//! Every image runs one invocation in a fresh working directory that holds `request.json`
//! `{method, path, headers, query, body, raw}` and `.env.config` (`KEY=VALUE` lines). It
//! writes `result.json` `{statusCode, headers, body}` and `logs.json`
//! `{error: [], debug: [], info: []}` (entries `{message, timestamp, metadata?}`) and exits 0.
//! When the function fails it writes a 500 `result.json` whose body is
//! `{"error": {"type", "message"}}` (never a traceback), adds the error to `logs.json` and
//! exits 1.
//!
//! # The Python persistent mode
//! [`BuildPlan::serve_command`] (`python3 /opt/containerpub/bootstrap.py --serve`) keeps one
//! interpreter warm for many invocations, driven over its stdin and stdout, one JSON object per
//! line:
//! - at start it writes `{"ready": true}`, or `{"ready": false, "error": {type, message}}` when
//!   importing `main` failed (each request is then answered with that error);
//! - each request line `{"id": any, "request": {method, path, headers, query, body, raw},
//!   "env"?: {NAME: value}, "dir"?: path}` is answered by one line `{"id", "ok": bool,
//!   "result": {statusCode, headers, body}, "logs": {error, debug, info},
//!   "error": {type, message} | null}`; `env` is added to the process environment, `dir` is
//!   the working directory during that call;
//! - a line that is not such an object is answered `{"id": null, "ok": false, "error":
//!   {"type": "ProtocolError", …}}` and the loop goes on; end of input ends the process (0);
//! - the protocol owns the real stdout and stdin: the function's `print` and `logging` go to
//!   `logs`, and file descriptors 1 and 0 are pointed at stderr and `/dev/null`.

mod catalog;
mod dart;
mod dart_scan;
mod detect;
mod plan;

use std::io;
use std::path::{Path, PathBuf};

pub use catalog::{
    BINARY_PATH, DART_BUILD_IMAGE, DEV_BINARY_IMAGE, DEV_PYTHON_IMAGE, PYTHON_BOOTSTRAP_PATH,
    Recipe, RuntimeCatalog, RuntimeSpec,
};
pub use dart::{ENTRY_CONTEXT_PATH, ENTRY_PACKAGE_PATH};
pub use detect::{Detection, MANIFEST, SelectedRuntime};
pub use plan::{
    BuildPlan, CONTRACT_VERSION, ContextFile, FUNCTION_USER, PYTHON_BOOTSTRAP, PYTHON_PACKAGES_PATH,
};

/// The Containerfile's name in the build context.
pub const CONTAINERFILE: &str = "Containerfile";
/// The directory of the build context that holds the unpacked function.
pub const FUNCTION_DIR: &str = "function";

/// A build context directory: the unpacked function under `function/`, and the generated
/// files beside it (`Containerfile`, `containerpub/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    dir: PathBuf,
}

impl BuildContext {
    /// The context at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The context directory (what `podman build` is given).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the archive is unpacked: `<dir>/function`.
    pub fn function_dir(&self) -> PathBuf {
        self.dir.join(FUNCTION_DIR)
    }

    /// The generated Containerfile: `<dir>/Containerfile`.
    pub fn containerfile(&self) -> PathBuf {
        self.dir.join(CONTAINERFILE)
    }
}

/// Why no runtime could be chosen or no build planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// `containerpub.toml` cannot be read as a manifest.
    #[error("containerpub.toml is invalid: {detail}")]
    Manifest {
        /// What is wrong.
        detail: String,
    },
    /// The manifest names a runtime the catalog does not have.
    #[error("unknown runtime `{name}` (this platform has: {known})")]
    UnknownRuntime {
        /// The name asked for.
        name: String,
        /// The catalog's names, comma-separated.
        known: String,
    },
    /// Several root files point to different runtimes and no manifest decides.
    #[error("the runtime is ambiguous: the archive has {}; name it in containerpub.toml (runtime = \"…\")", markers.join(" and "))]
    Ambiguous {
        /// The root files found.
        markers: Vec<&'static str>,
    },
    /// Nothing tells the runtime.
    #[error(
        "cannot tell the runtime: put main.py (python), bootstrap (binary) or pubspec.yaml (dart) at the archive's root, or name the runtime in containerpub.toml"
    )]
    NotDetected,
    /// A file the runtime needs is missing.
    #[error("the `{runtime}` runtime needs `{file}` at the archive's root")]
    MissingFile {
        /// The runtime.
        runtime: String,
        /// The file.
        file: &'static str,
    },
    /// A file the platform reads or changes is a directory or a link.
    #[error("`{file}` must be a regular file")]
    NotRegularFile {
        /// The file, relative to the archive's root.
        file: String,
    },
    /// A source file too large to scan.
    #[error("`{file}` is too large to read (over 4 MiB)")]
    TooLargeToRead {
        /// The file, relative to the archive's root.
        file: String,
    },
    /// A file that must be text is not UTF-8.
    #[error("`{file}` is not UTF-8 text")]
    NotUtf8 {
        /// The file, relative to the archive's root.
        file: String,
    },
    /// `pubspec.yaml` has no usable package name.
    #[error("pubspec.yaml: {detail}")]
    Pubspec {
        /// What is wrong.
        detail: String,
    },
    /// No class is annotated `@cloudFunction` and extends `CloudDartFunction`.
    #[error("no class annotated @cloudFunction that extends CloudDartFunction was found{hint}")]
    NoCloudFunction {
        /// Annotated classes that do not extend it, if any.
        hint: String,
    },
    /// More than one such class.
    #[error("only one class may be annotated @cloudFunction, found {}", found.join(", "))]
    SeveralCloudFunctions {
        /// `Class in file` for each.
        found: Vec<String>,
    },
    /// The class exists but the entry point cannot use it.
    #[error("the @cloudFunction class `{class}` in {file} cannot be used: {reason}")]
    UnusableCloudFunction {
        /// The class.
        class: String,
        /// Its file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The archive has a file the platform generates.
    #[error("`{file}` is reserved for the entry point the platform generates")]
    ReservedFile {
        /// The file.
        file: String,
    },
    /// The configured catalog is wrong (a configuration error, found at start-up).
    #[error("runtime `{runtime}` in the catalog: {detail}")]
    Catalog {
        /// The runtime.
        runtime: String,
        /// What is wrong.
        detail: String,
    },
    /// A label the caller asked for cannot be set.
    #[error("image label `{key}`: {reason}")]
    InvalidLabel {
        /// The label key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A failure of this machine.
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

impl RuntimeError {
    /// `true` when the function's archive is at fault (the service answers 422 with this
    /// message); `false` for configuration, caller and machine errors.
    pub fn is_rejection(&self) -> bool {
        !matches!(
            self,
            Self::Catalog { .. } | Self::InvalidLabel { .. } | Self::Io { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
