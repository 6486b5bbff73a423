//! The runtime catalog: runtime names mapped to base images, a build recipe and a run command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RuntimeError;

/// Development base image of the `python` runtime, built locally by a script in `deploy/`.
pub const DEV_PYTHON_IMAGE: &str = "localhost/containerpub/python:3";
/// Development base image of the `binary` runtime (a static busybox), and the run image of
/// compiled Dart functions.
pub const DEV_BINARY_IMAGE: &str = "localhost/containerpub/binary:1";
/// Build image of the `dart` runtime. There is no Dart SDK on the development machines (no
/// package, no registry): Dart functions build only where this image can be pulled.
pub const DART_BUILD_IMAGE: &str = "docker.io/library/dart:stable";

/// Where the Python bootstrap lives in Python images.
pub const PYTHON_BOOTSTRAP_PATH: &str = "/opt/containerpub/bootstrap.py";
/// Where the `binary` and `dart` runtimes' executable lives in the image.
pub const BINARY_PATH: &str = "/function/bootstrap";

/// How a runtime's image is built: the recipe decides what the build context holds and what
/// the generated Containerfile does. The image references and the command are configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// `main.py` + the platform's bootstrap; `requirements.txt` installed with pip.
    Python,
    /// An executable `bootstrap`, copied as it is.
    Binary,
    /// A Dart package with one `@cloudFunction` class: an entry point is generated and
    /// compiled with `dart compile exe` in a build stage; the executable runs on a small image.
    Dart,
}

impl Recipe {
    /// The recipe's name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Binary => "binary",
            Self::Dart => "dart",
        }
    }

    fn default_command(self) -> Vec<String> {
        match self {
            Self::Python => vec!["python3".to_owned(), PYTHON_BOOTSTRAP_PATH.to_owned()],
            Self::Binary | Self::Dart => vec![BINARY_PATH.to_owned()],
        }
    }

    fn has_build_stage(self) -> bool {
        self == Self::Dart
    }
}

/// One runtime of the catalog.
///
/// ```toml
/// [runtimes.python]
/// recipe = "python"
/// run_image = "registry.example.com/containerpub/python:3.11"
///
/// [runtimes.dart]
/// recipe = "dart"
/// build_image = "docker.io/library/dart:stable"
/// run_image = "registry.example.com/containerpub/binary:1"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSpec {
    /// How the image is built.
    pub recipe: Recipe,
    /// The build stage's image: required by the `dart` recipe, refused by the single-stage
    /// ones (they build in their run image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_image: Option<String>,
    /// The image the function runs on (the base of the final stage).
    pub run_image: String,
    /// The image's command; the recipe's default when absent (`python3
    /// /opt/containerpub/bootstrap.py`, or `/function/bootstrap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

impl RuntimeSpec {
    /// The command that runs one invocation (the image's `CMD`).
    pub fn command(&self) -> Vec<String> {
        self.command
            .clone()
            .unwrap_or_else(|| self.recipe.default_command())
    }

    /// The command of the persistent mode, for runtimes that have one (python: the command
    /// followed by `--serve`; see the [module](super) documentation for the protocol).
    pub fn serve_command(&self) -> Option<Vec<String>> {
        (self.recipe == Recipe::Python).then(|| {
            let mut command = self.command();
            command.push("--serve".to_owned());
            command
        })
    }

    fn validate(&self, name: &str) -> Result<(), RuntimeError> {
        let invalid = |detail: String| RuntimeError::Catalog {
            runtime: name.to_owned(),
            detail,
        };
        check_image(&self.run_image).map_err(|d| invalid(format!("run_image: {d}")))?;
        match (&self.build_image, self.recipe.has_build_stage()) {
            (Some(image), true) => {
                check_image(image).map_err(|d| invalid(format!("build_image: {d}")))?;
            }
            (None, true) => {
                return Err(invalid(format!(
                    "the {} recipe needs a build_image",
                    self.recipe.as_str()
                )));
            }
            (Some(_), false) => {
                return Err(invalid(format!(
                    "the {} recipe builds in its run_image; remove build_image",
                    self.recipe.as_str()
                )));
            }
            (None, false) => {}
        }
        if let Some(command) = &self.command
            && command.first().is_none_or(|c| c.is_empty())
        {
            return Err(invalid("the command is empty".to_owned()));
        }
        Ok(())
    }
}

/// A full image reference with its registry and tag (`localhost/name:tag`,
/// `registry.example.com/name:tag`), as [`ImageRef`](crate::ImageRef) accepts it: a short name
/// would make Podman search registries.
fn check_image(image: &str) -> Result<(), String> {
    crate::ImageRef::parse(image)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn check_name(name: &str) -> Result<(), RuntimeError> {
    let mut chars = name.chars();
    let valid = name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(RuntimeError::Catalog {
            runtime: name.to_owned(),
            detail: "a runtime name is 1 to 32 characters of a-z, 0-9, `_` and `-`, starting with a letter".to_owned(),
        })
    }
}

/// The runtimes this platform builds, by name. Deserialised from configuration (a table of
/// [`RuntimeSpec`] keyed by name) and checked on the way in; [`RuntimeCatalog::default`] is the
/// development catalog.
///
/// File detection picks the names `python`, `binary` and `dart`; `containerpub.toml` may name any
/// runtime of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, RuntimeSpec>",
    into = "BTreeMap<String, RuntimeSpec>"
)]
pub struct RuntimeCatalog {
    runtimes: BTreeMap<String, RuntimeSpec>,
}

impl RuntimeCatalog {
    /// A catalog of these runtimes, checked: names, full image references, a build image
    /// exactly where the recipe has a build stage, a non-empty command.
    pub fn new(runtimes: BTreeMap<String, RuntimeSpec>) -> Result<Self, RuntimeError> {
        for (name, spec) in &runtimes {
            check_name(name)?;
            spec.validate(name)?;
        }
        Ok(Self { runtimes })
    }

    /// The runtime of this name.
    pub fn get(&self, name: &str) -> Option<&RuntimeSpec> {
        self.runtimes.get(name)
    }

    /// The runtimes' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.runtimes.keys().map(String::as_str)
    }

    pub(crate) fn entry(&self, name: &str) -> Option<(&str, &RuntimeSpec)> {
        self.runtimes
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }
}

impl Default for RuntimeCatalog {
    /// The development catalog: local base images (`localhost/containerpub/…`) for `python`
    /// and `binary`; `dart` builds in the registry's Dart image, so it builds only where that
    /// can be pulled, and runs on the local binary image.
    fn default() -> Self {
        let spec = |recipe, build: Option<&str>, run: &str| RuntimeSpec {
            recipe,
            build_image: build.map(str::to_owned),
            run_image: run.to_owned(),
            command: None,
        };
        Self {
            runtimes: BTreeMap::from([
                (
                    "python".to_owned(),
                    spec(Recipe::Python, None, DEV_PYTHON_IMAGE),
                ),
                (
                    "binary".to_owned(),
                    spec(Recipe::Binary, None, DEV_BINARY_IMAGE),
                ),
                (
                    "dart".to_owned(),
                    spec(Recipe::Dart, Some(DART_BUILD_IMAGE), DEV_BINARY_IMAGE),
                ),
            ]),
        }
    }
}

impl TryFrom<BTreeMap<String, RuntimeSpec>> for RuntimeCatalog {
    type Error = RuntimeError;

    fn try_from(runtimes: BTreeMap<String, RuntimeSpec>) -> Result<Self, Self::Error> {
        Self::new(runtimes)
    }
}

impl From<RuntimeCatalog> for BTreeMap<String, RuntimeSpec> {
    fn from(catalog: RuntimeCatalog) -> Self {
        catalog.runtimes
    }
}
