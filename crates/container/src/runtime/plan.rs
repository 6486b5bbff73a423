//! Build plans: the files a runtime adds to the build context, and its Containerfile.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::catalog::{PYTHON_BOOTSTRAP_PATH, Recipe, RuntimeSpec};
use super::detect::SelectedRuntime;
use super::{BuildContext, RuntimeError, dart};

/// The platform's Python bootstrap (SPEC §4 `python` contract), as copied into Python images.
pub const PYTHON_BOOTSTRAP: &str = include_str!("bootstrap.py");

/// Version of the file contract the generated images implement (label `io.containerpub.contract`).
pub const CONTRACT_VERSION: &str = "1";
/// The unprivileged user functions run as.
pub const FUNCTION_USER: &str = "65534:65534";
/// Where pip installs a Python function's `requirements.txt` (the bootstrap adds it to `sys.path`).
pub const PYTHON_PACKAGES_PATH: &str = "/opt/containerpub/packages";

/// Labels every generated image carries; callers may not set them.
const OWN_LABELS: [&str; 3] = [
    "io.containerpub.runtime",
    "io.containerpub.recipe",
    "io.containerpub.contract",
];

/// A file the plan writes into the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path relative to the context directory.
    pub path: String,
    /// Content.
    pub contents: String,
    /// Unix mode.
    pub mode: u32,
}

/// Everything needed to build one function's image from its [`BuildContext`]: the generated
/// files (the Containerfile first), the function files to mark executable, and how the build
/// and the image are to be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    runtime: String,
    recipe: Recipe,
    files: Vec<ContextFile>,
    executables: Vec<String>,
    needs_network: bool,
    command: Vec<String>,
    serve_command: Option<Vec<String>>,
}

impl BuildPlan {
    /// The runtime's name in the catalog.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// Its recipe.
    pub fn recipe(&self) -> Recipe {
        self.recipe
    }

    /// The generated Containerfile (also the first of [`BuildPlan::files`]).
    pub fn containerfile(&self) -> &str {
        self.files
            .first()
            .map(|f| f.contents.as_str())
            .unwrap_or_default()
    }

    /// Every generated file, the Containerfile first.
    pub fn files(&self) -> &[ContextFile] {
        &self.files
    }

    /// Function files (relative to the context) that [`BuildPlan::write`] marks executable.
    pub fn executables(&self) -> &[String] {
        &self.executables
    }

    /// Whether a build step fetches packages (pip, `dart pub get`), so the build must run with
    /// `--network host`; otherwise it runs with `--network none`.
    pub fn needs_network(&self) -> bool {
        self.needs_network
    }

    /// The image's command: one invocation under the file contract.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// The persistent mode's command, when the runtime has one.
    pub fn serve_command(&self) -> Option<&[String]> {
        self.serve_command.as_deref()
    }

    /// Writes the generated files into the context (replacing earlier ones) and marks the
    /// executables. Nothing under `function/` is written.
    pub fn write(&self, context: &BuildContext) -> Result<(), RuntimeError> {
        for file in &self.files {
            let path = context.dir().join(&file.path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| RuntimeError::io("create directory", parent, e))?;
            }
            fs::write(&path, &file.contents).map_err(|e| RuntimeError::io("write", &path, e))?;
            fs::set_permissions(&path, Permissions::from_mode(file.mode))
                .map_err(|e| RuntimeError::io("set permissions on", &path, e))?;
        }
        for executable in &self.executables {
            let path = context.dir().join(executable);
            fs::set_permissions(&path, Permissions::from_mode(0o755))
                .map_err(|e| RuntimeError::io("set permissions on", &path, e))?;
        }
        Ok(())
    }
}

impl SelectedRuntime<'_> {
    /// The build plan for the function unpacked in `context`. `labels` are added to the image
    /// (keys of lower-case letters, digits, `.`, `-`, `/` and `_`, like
    /// `io.containerpub.function`; the `io.containerpub.runtime`, `.recipe` and `.contract`
    /// labels are the platform's own).
    pub fn plan(
        &self,
        context: &BuildContext,
        labels: &BTreeMap<String, String>,
    ) -> Result<BuildPlan, RuntimeError> {
        let spec = self.spec();
        let labels = label_block(self.name(), spec.recipe, labels)?;
        let parts = match spec.recipe {
            Recipe::Python => python(context, self.name(), spec, &labels)?,
            Recipe::Binary => binary(context, self.name(), spec, &labels)?,
            Recipe::Dart => dart::plan(context, self.name(), spec, &labels)?,
        };
        let mut files = vec![ContextFile {
            path: super::CONTAINERFILE.to_owned(),
            contents: parts.containerfile,
            mode: 0o644,
        }];
        files.extend(parts.files);
        Ok(BuildPlan {
            runtime: self.name().to_owned(),
            recipe: spec.recipe,
            files,
            executables: parts.executables,
            needs_network: parts.needs_network,
            command: spec.command(),
            serve_command: spec.serve_command(),
        })
    }
}

/// What a recipe contributes to a plan.
pub(crate) struct RecipeParts {
    pub(crate) containerfile: String,
    pub(crate) files: Vec<ContextFile>,
    pub(crate) executables: Vec<String>,
    pub(crate) needs_network: bool,
}

fn python(
    context: &BuildContext,
    name: &str,
    spec: &RuntimeSpec,
    labels: &str,
) -> Result<RecipeParts, RuntimeError> {
    let dir = context.function_dir();
    if !entry_exists(&dir, "main.py")? {
        return Err(RuntimeError::MissingFile {
            runtime: name.to_owned(),
            file: "main.py",
        });
    }
    let requirements = regular_file(&dir, "requirements.txt")?;
    let mut file = containerfile_header(name);
    let _ = writeln!(file, "FROM {}", spec.run_image);
    let _ = writeln!(
        file,
        "COPY containerpub/bootstrap.py {PYTHON_BOOTSTRAP_PATH}"
    );
    if requirements {
        // Before the function's code, so that a change to the code alone reuses this layer.
        let _ = writeln!(
            file,
            "COPY function/requirements.txt /opt/containerpub/requirements.txt"
        );
        run(
            &mut file,
            &[
                "python3",
                "-m",
                "pip",
                "install",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--no-input",
                "--target",
                PYTHON_PACKAGES_PATH,
                "--requirement",
                "/opt/containerpub/requirements.txt",
            ],
        );
    }
    let _ = writeln!(file, "COPY function/ /function/");
    // Byte-compiles the function, which fails the build on a syntax error.
    run(
        &mut file,
        &["python3", "-m", "compileall", "-q", "/function"],
    );
    finish(&mut file, labels, &spec.command());
    Ok(RecipeParts {
        containerfile: file,
        files: vec![ContextFile {
            path: "containerpub/bootstrap.py".to_owned(),
            contents: PYTHON_BOOTSTRAP.to_owned(),
            mode: 0o644,
        }],
        executables: Vec::new(),
        needs_network: requirements,
    })
}

fn binary(
    context: &BuildContext,
    name: &str,
    spec: &RuntimeSpec,
    labels: &str,
) -> Result<RecipeParts, RuntimeError> {
    if !regular_file(&context.function_dir(), "bootstrap")? {
        return Err(RuntimeError::MissingFile {
            runtime: name.to_owned(),
            file: "bootstrap",
        });
    }
    let mut file = containerfile_header(name);
    let _ = writeln!(file, "FROM {}", spec.run_image);
    let _ = writeln!(file, "COPY function/ /function/");
    finish(&mut file, labels, &spec.command());
    Ok(RecipeParts {
        containerfile: file,
        files: Vec::new(),
        executables: vec![format!("{}/bootstrap", super::FUNCTION_DIR)],
        needs_network: false,
    })
}

pub(crate) fn containerfile_header(runtime: &str) -> String {
    format!(
        "# Generated by ContainerPub for the `{runtime}` runtime. Do not edit.\n\
         # The build context holds the function under function/ and the platform's files under containerpub/.\n"
    )
}

/// A `RUN` in exec form: no shell needed in the image.
pub(crate) fn run(file: &mut String, args: &[&str]) {
    let _ = writeln!(file, "RUN {}", exec_form(args));
}

/// The labels, the unprivileged user and the command: the last, cheapest layers.
pub(crate) fn finish(file: &mut String, labels: &str, command: &[String]) {
    file.push_str(labels);
    let _ = writeln!(file, "USER {FUNCTION_USER}");
    let _ = writeln!(file, "CMD {}", exec_form(command));
}

/// A JSON array of strings, as Containerfiles take them.
pub(crate) fn exec_form<S: AsRef<str>>(args: &[S]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| json_string(a.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `LABEL` instruction with the platform's labels and the caller's, sorted.
fn label_block(
    runtime: &str,
    recipe: Recipe,
    extra: &BTreeMap<String, String>,
) -> Result<String, RuntimeError> {
    let mut labels = vec![
        (OWN_LABELS[0], runtime.to_owned()),
        (OWN_LABELS[1], recipe.as_str().to_owned()),
        (OWN_LABELS[2], CONTRACT_VERSION.to_owned()),
    ];
    for (key, value) in extra {
        let invalid = |reason| RuntimeError::InvalidLabel {
            key: key.clone(),
            reason,
        };
        if OWN_LABELS.contains(&key.as_str()) {
            return Err(invalid("the platform sets this label"));
        }
        let valid_key = key.len() <= 128
            && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && key.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '/' | '_')
            });
        if !valid_key {
            return Err(invalid(
                "a label key is up to 128 characters of a-z, 0-9, `.`, `-`, `/` and `_`",
            ));
        }
        if value.len() > 1024 || value.chars().any(char::is_control) {
            return Err(invalid(
                "a label value is up to 1024 characters without control characters",
            ));
        }
        labels.push((key.as_str(), value.clone()));
    }
    let mut block = String::from("LABEL");
    let last = labels.len() - 1;
    for (i, (key, value)) in labels.iter().enumerate() {
        // Inside double quotes a Containerfile still expands `$NAME` and reads `\` escapes.
        let value = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$");
        let end = if i == last { "\n" } else { " \\\n     " };
        let _ = write!(block, " {key}=\"{value}\"{end}");
    }
    Ok(block)
}

/// Whether `name` exists in `dir` as something a program can open: a regular file, or a link
/// (the archive rules keep links inside the tree). A directory there is an error.
fn entry_exists(dir: &Path, name: &str) -> Result<bool, RuntimeError> {
    match fs::symlink_metadata(dir.join(name)) {
        Ok(meta) if meta.is_dir() => Err(RuntimeError::NotRegularFile {
            file: name.to_owned(),
        }),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RuntimeError::io("read", dir.join(name), e)),
    }
}

/// Whether `name` is a regular file in `dir` (`false` when absent; an error when it is
/// anything else, a link included: the platform reads or changes it).
pub(crate) fn regular_file(dir: &Path, name: &str) -> Result<bool, RuntimeError> {
    match fs::symlink_metadata(dir.join(name)) {
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(_) => Err(RuntimeError::NotRegularFile {
            file: name.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RuntimeError::io("read", dir.join(name), e)),
    }
}
