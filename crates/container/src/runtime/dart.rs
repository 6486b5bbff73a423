//! The `dart` recipe: the original platform's functions. The package's one class annotated
//! `@cloudFunction` that extends `CloudDartFunction` gets a generated entry point
//! (`bin/containerpub_entry.dart`, the original's `bin/main.dart`, written beside the user's
//! files rather than over them), compiled with `dart compile exe` in a build stage; the
//! executable and the Dart runtime's `/runtime/` files go onto the small run image.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use super::catalog::{BINARY_PATH, RuntimeSpec};
use super::dart_scan::{self, AnnotatedClass, PartOf};
use super::plan::{ContextFile, RecipeParts, containerfile_header, finish, regular_file, run};
use super::{BuildContext, RuntimeError};

/// The generated entry point, in the build context.
pub const ENTRY_CONTEXT_PATH: &str = "containerpub/entry.dart";
/// The generated entry point, in the package as it is compiled (reserved: an archive may not
/// have this file).
pub const ENTRY_PACKAGE_PATH: &str = "bin/containerpub_entry.dart";

const TEMPLATE: &str = include_str!("dart_entry.dart");
const LOGGER_IMPORT: &str = "import 'package:dart_cloud_logger/dart_cloud_logger.dart';\n";
const LOGGER_CLASS: &str = "
/// Hands the function's log calls to [_Logs].
class _Logger extends CloudDartFunctionLogger {
  _Logger(this._logs);

  final _Logs _logs;

  @override
  void printLog(
    LoggerTypeAction level,
    String message, {
    Map<String, dynamic>? metadata,
  }) {
    _logs.add(level.name, message, metadata);
  }
}
";
/// The largest `pubspec.yaml` and `.dart` file read.
const MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024;
/// Directories not searched for the function class: tests may define fakes, build output and
/// tool directories are not the package's code.
const SKIPPED_DIRS: [&str; 2] = ["build", "test"];

pub(crate) fn plan(
    context: &BuildContext,
    name: &str,
    spec: &RuntimeSpec,
    labels: &str,
) -> Result<RecipeParts, RuntimeError> {
    let dir = context.function_dir();
    if !regular_file(&dir, "pubspec.yaml")? {
        return Err(RuntimeError::MissingFile {
            runtime: name.to_owned(),
            file: "pubspec.yaml",
        });
    }
    if fs::symlink_metadata(dir.join(ENTRY_PACKAGE_PATH)).is_ok() {
        return Err(RuntimeError::ReservedFile {
            file: ENTRY_PACKAGE_PATH.to_owned(),
        });
    }
    let package = pubspec_name(&read_source(&dir, "pubspec.yaml")?)?;
    let function = find_cloud_function(&dir)?;
    let entry = entry_point(&package, &function)?;

    let build_image = spec.build_image.as_deref().unwrap_or_default();
    let mut file = containerfile_header(name);
    let _ = writeln!(file, "FROM {build_image} AS build");
    let _ = writeln!(file, "WORKDIR /app");
    // The dependencies first: a change to the code alone reuses the `pub get` layer.
    let _ = writeln!(file, "COPY function/pubspec.* /app/");
    run(&mut file, &["dart", "pub", "get"]);
    let _ = writeln!(file, "COPY function/ /app/");
    let _ = writeln!(file, "COPY {ENTRY_CONTEXT_PATH} /app/{ENTRY_PACKAGE_PATH}");
    run(&mut file, &["dart", "pub", "get", "--offline"]);
    run(
        &mut file,
        &[
            "dart",
            "compile",
            "exe",
            ENTRY_PACKAGE_PATH,
            "-o",
            "/app/bootstrap",
        ],
    );
    file.push('\n');
    let _ = writeln!(file, "FROM {}", spec.run_image);
    // The Dart image's minimal runtime files (C library, certificates) for AOT executables.
    let _ = writeln!(file, "COPY --from=build /runtime/ /");
    let _ = writeln!(file, "COPY --from=build /app/bootstrap {BINARY_PATH}");
    finish(&mut file, labels, &spec.command());
    Ok(RecipeParts {
        containerfile: file,
        files: vec![ContextFile {
            path: ENTRY_CONTEXT_PATH.to_owned(),
            contents: entry,
            mode: 0o644,
        }],
        executables: Vec::new(),
        needs_network: true,
    })
}

/// The annotated class and the files involved.
#[derive(Debug)]
struct CloudFunction {
    class: AnnotatedClass,
    /// The file that declares it, relative to the package root.
    file: String,
    /// The library to import: the file itself, or the library it is `part of`.
    library: String,
}

fn read_source(dir: &Path, rel: &str) -> Result<String, RuntimeError> {
    let path = dir.join(rel);
    let meta = fs::symlink_metadata(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(RuntimeError::TooLargeToRead {
            file: rel.to_owned(),
        });
    }
    let bytes = fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    String::from_utf8(bytes).map_err(|_| RuntimeError::NotUtf8 {
        file: rel.to_owned(),
    })
}

/// The package name: the top-level `name:` of `pubspec.yaml` (a Dart package name is a
/// lower-case identifier, so a line scan is enough; YAML's other forms are not needed).
pub(crate) fn pubspec_name(pubspec: &str) -> Result<String, RuntimeError> {
    let pubspec = pubspec.strip_prefix('\u{feff}').unwrap_or(pubspec);
    let invalid = |detail: String| RuntimeError::Pubspec { detail };
    for line in pubspec.lines() {
        let Some(rest) = line.strip_prefix("name") else {
            continue;
        };
        let Some(value) = rest.trim_start_matches([' ', '\t']).strip_prefix(':') else {
            continue;
        };
        let value = value.trim();
        let value = match value.chars().next() {
            Some(quote @ ('"' | '\'')) => value[1..]
                .split_once(quote)
                .map(|(inner, _)| inner)
                .ok_or_else(|| invalid("the `name:` value has no closing quote".to_owned()))?,
            _ => value.split(" #").next().unwrap_or_default().trim(),
        };
        let valid = value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(invalid(format!(
                "`{value}` is not a Dart package name (lower-case letters, digits and `_`)"
            )));
        }
        return Ok(value.to_owned());
    }
    Err(invalid("it has no top-level `name:`".to_owned()))
}

/// Every `.dart` file of the package (relative paths, sorted), links and the
/// [`SKIPPED_DIRS`] and hidden directories left out.
fn dart_files(root: &Path) -> Result<Vec<String>, RuntimeError> {
    let mut found = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(rel) = pending.pop() {
        let dir = root.join(&rel);
        let entries = fs::read_dir(&dir).map_err(|e| RuntimeError::io("list", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| RuntimeError::io("list", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|e| RuntimeError::io("list", &dir, e))?;
            if kind.is_dir() {
                let skipped = name.starts_with('.')
                    || (rel.is_empty() && SKIPPED_DIRS.contains(&name.as_str()));
                if !skipped {
                    pending.push(path);
                }
            } else if kind.is_file() && name.ends_with(".dart") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn find_cloud_function(root: &Path) -> Result<CloudFunction, RuntimeError> {
    let mut candidates = Vec::new();
    let mut not_extending = Vec::new();
    for file in dart_files(root)? {
        let source = match read_source(root, &file) {
            Ok(source) => source,
            // Not Dart source the compiler would take either; it cannot hold the function.
            Err(RuntimeError::NotUtf8 { .. }) => continue,
            Err(e) => return Err(e),
        };
        let scanned = dart_scan::scan(&source);
        for class in scanned.classes {
            if class.extends.as_deref() == Some("CloudDartFunction") {
                candidates.push((class, file.clone(), scanned.part_of.clone()));
            } else {
                not_extending.push(format!("{} in {file}", class.name));
            }
        }
    }
    let (class, file, part_of) = match candidates.len() {
        0 => {
            let hint = if not_extending.is_empty() {
                String::new()
            } else {
                format!(
                    " (annotated, but not extending CloudDartFunction: {})",
                    not_extending.join(", ")
                )
            };
            return Err(RuntimeError::NoCloudFunction { hint });
        }
        1 => candidates.remove(0),
        _ => {
            return Err(RuntimeError::SeveralCloudFunctions {
                found: candidates
                    .iter()
                    .map(|(class, file, _)| format!("{} in {file}", class.name))
                    .collect(),
            });
        }
    };
    let unusable = |reason: String| RuntimeError::UnusableCloudFunction {
        class: class.name.clone(),
        file: file.clone(),
        reason,
    };
    if class.name.starts_with('_') {
        return Err(unusable(
            "it is private (its name starts with `_`), so the generated entry point cannot reach it".to_owned(),
        ));
    }
    if class.is_abstract {
        return Err(unusable(
            "it is abstract, so it cannot be instantiated".to_owned(),
        ));
    }
    let library = match part_of {
        None => file.clone(),
        Some(PartOf::Name(name)) => {
            return Err(unusable(format!(
                "it is in a part of the library `{name}`; write `part of '<file>.dart';` instead"
            )));
        }
        Some(PartOf::Uri(uri)) => {
            let library = part_owner(&file, &uri).ok_or_else(|| {
                unusable(format!(
                    "its file is `part of '{uri}'`, which is not a file of the package"
                ))
            })?;
            if !regular_file(root, &library)? {
                return Err(unusable(format!(
                    "its file is `part of '{uri}'`, which does not exist"
                )));
            }
            library
        }
    };
    Ok(CloudFunction {
        class,
        file,
        library,
    })
}

/// The library file a `part of '<uri>'` names, relative to the package root.
fn part_owner(file: &str, uri: &str) -> Option<String> {
    if uri.is_empty() || uri.starts_with('/') || uri.starts_with("dart:") {
        return None;
    }
    if let Some(package_path) = uri.strip_prefix("package:") {
        let (_, rest) = package_path.split_once('/')?;
        return normalise(&format!("lib/{rest}"));
    }
    let parent = file.rsplit_once('/').map_or("", |(parent, _)| parent);
    normalise(&format!("{parent}/{uri}"))
}

/// Lexically resolves `.` and `..`; `None` when it climbs above the root.
fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// How the generated `bin/containerpub_entry.dart` imports the library.
fn import_uri(package: &str, library: &str) -> Option<String> {
    let plain = library
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if !plain {
        return None;
    }
    Some(if let Some(rest) = library.strip_prefix("lib/") {
        // Through the package, never `../lib/…`: the same library imported by two URIs would be
        // two libraries to Dart.
        format!("package:{package}/{rest}")
    } else if let Some(rest) = library.strip_prefix("bin/") {
        rest.to_owned()
    } else {
        format!("../{library}")
    })
}

fn entry_point(package: &str, function: &CloudFunction) -> Result<String, RuntimeError> {
    let import = import_uri(package, &function.library).ok_or_else(|| {
        RuntimeError::UnusableCloudFunction {
            class: function.class.name.clone(),
            file: function.file.clone(),
            reason: "its path has characters a Dart import would need escaped".to_owned(),
        }
    })?;
    let with_logger = function.class.handle_takes_logger;
    let handle_args = if with_logger {
        "      request: request,\n      logger: _Logger(logs),\n      env: env,"
    } else {
        "      request: request,\n      env: env,"
    };
    Ok(TEMPLATE
        .replace("{{PACKAGE}}", package)
        .replace("{{CLASS}}", &function.class.name)
        .replace("{{FILE}}", &function.file)
        .replace("{{IMPORT}}", &import)
        .replace(
            "{{LOGGER_IMPORT}}",
            if with_logger { LOGGER_IMPORT } else { "" },
        )
        .replace("{{HANDLE_ARGS}}", handle_args)
        .replace(
            "{{LOGGER_CLASS}}",
            if with_logger { LOGGER_CLASS } else { "" },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_package_name() {
        assert_eq!(
            pubspec_name("name: hello_fn\nversion: 1.0.0\n").unwrap(),
            "hello_fn"
        );
        assert_eq!(
            pubspec_name("# c\nname : 'quoted' # why\n").unwrap(),
            "quoted"
        );
        assert_eq!(pubspec_name("\u{feff}name: a1 # comment").unwrap(), "a1");
        assert!(pubspec_name("description: x\n  name: nested\n").is_err());
        assert!(pubspec_name("name: Not-Valid\n").is_err());
        assert!(pubspec_name("names: x\n").is_err());
    }

    #[test]
    fn resolves_part_of_and_imports() {
        assert_eq!(
            part_owner("lib/src/a.dart", "../b.dart").as_deref(),
            Some("lib/b.dart")
        );
        assert_eq!(
            part_owner("lib/a.dart", "package:p/x/y.dart").as_deref(),
            Some("lib/x/y.dart")
        );
        assert_eq!(part_owner("a.dart", "../../etc.dart"), None);
        assert_eq!(
            import_uri("p", "lib/src/a.dart").as_deref(),
            Some("package:p/src/a.dart")
        );
        assert_eq!(
            import_uri("p", "bin/main.dart").as_deref(),
            Some("main.dart")
        );
        assert_eq!(
            import_uri("p", "src/h.dart").as_deref(),
            Some("../src/h.dart")
        );
        assert_eq!(import_uri("p", "lib/a b.dart"), None);
    }
}
