//! Runtime catalog, detection and build plans. The generated files are compared byte for byte
//! with `tests/golden/<case>/`; `UPDATE_GOLDEN=1 cargo test -p container --test runtime`
//! rewrites them (review the diff).
#![expect(
    clippy::unwrap_used,
    reason = "the fixture helpers panic on failure, like the tests"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use container::runtime::{
    BuildContext, BuildPlan, Detection, PYTHON_BOOTSTRAP, Recipe, RuntimeCatalog, RuntimeError,
};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A build context whose `function/` holds these files.
fn context(files: &[(&str, &str)]) -> (TempDir, BuildContext) {
    let dir = tempfile::tempdir().unwrap();
    let context = BuildContext::new(dir.path());
    for (path, contents) in files {
        let path = context.function_dir().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
    }
    fs::create_dir_all(context.function_dir()).unwrap();
    (dir, context)
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "io.containerpub.function".to_owned(),
            "0193b7e2-5c1d-7000-8000-000000000001".to_owned(),
        ),
        ("io.containerpub.version".to_owned(), "3".to_owned()),
    ])
}

fn plan(files: &[(&str, &str)]) -> Result<(TempDir, BuildContext, BuildPlan), RuntimeError> {
    let (dir, context) = context(files);
    let catalog = RuntimeCatalog::default();
    let plan = catalog.detect(&context)?.plan(&context, &labels())?;
    Ok((dir, context, plan))
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with `tests/golden/<case>/<name>` byte for byte, or rewrites the file
/// when `UPDATE_GOLDEN` is set.
fn golden(case: &str, name: &str, actual: &str) {
    let path = golden_dir().join(case).join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}: run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual.as_bytes(),
        "{} differs from the generated file (UPDATE_GOLDEN=1 rewrites it)\n--- golden\n{}\n--- generated\n{actual}",
        path.display(),
        String::from_utf8_lossy(&expected),
    );
}

/// Everything about a plan that is not a file's content.
fn summary(plan: &BuildPlan) -> String {
    let mut out = String::new();
    writeln!(out, "runtime: {}", plan.runtime()).unwrap();
    writeln!(out, "recipe: {:?}", plan.recipe()).unwrap();
    writeln!(out, "needs_network: {}", plan.needs_network()).unwrap();
    writeln!(out, "command: {:?}", plan.command()).unwrap();
    writeln!(out, "serve_command: {:?}", plan.serve_command()).unwrap();
    writeln!(out, "files:").unwrap();
    for file in plan.files() {
        writeln!(out, "  {} {:o}", file.path, file.mode).unwrap();
    }
    writeln!(out, "executables: {:?}", plan.executables()).unwrap();
    out
}

fn file<'a>(plan: &'a BuildPlan, path: &str) -> &'a str {
    &plan
        .files()
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no generated {path}"))
        .contents
}

const MAIN_PY: &str = "def handler(request):\n    return {'statusCode': 200, 'body': 'hi'}\n";

const PUBSPEC: &str = "\
name: hello_fn
description: A ContainerPub function.
version: 1.0.0

environment:
  sdk: ^3.10.0

dependencies:
  dart_cloud_function: ^0.2.0
";

const HELLO_DART: &str = r#"import 'package:dart_cloud_function/dart_cloud_function.dart';
import 'package:dart_cloud_logger/dart_cloud_logger.dart';

/// Says hello.
@cloudFunction
class HelloFunction extends CloudDartFunction {
  @override
  Future<CloudResponse> handle({
    required CloudRequest request,
    required CloudDartFunctionLogger logger,
    Map<String, String>? env,
  }) async {
    logger.info('hello from ${request.path}');
    return CloudResponse.json({'message': 'Hello, ${request.query['name'] ?? 'world'}!'});
  }
}
"#;

// ---------------------------------------------------------------------------------------------
// Golden files

#[test]
fn golden_python() {
    let (_dir, context, plan) = plan(&[("main.py", MAIN_PY)]).unwrap();
    golden("python", "Containerfile", plan.containerfile());
    golden("python", "plan.txt", &summary(&plan));
    assert_eq!(file(&plan, "containerpub/bootstrap.py"), PYTHON_BOOTSTRAP);
    assert!(!plan.needs_network());

    plan.write(&context).unwrap();
    assert_eq!(
        fs::read_to_string(context.containerfile()).unwrap(),
        plan.containerfile()
    );
    assert_eq!(
        fs::read_to_string(context.dir().join("containerpub/bootstrap.py")).unwrap(),
        PYTHON_BOOTSTRAP
    );
}

#[test]
fn golden_python_with_requirements() {
    let (_dir, _context, plan) = plan(&[
        ("main.py", MAIN_PY),
        ("requirements.txt", "requests==2.32.3\n"),
    ])
    .unwrap();
    golden("python_requirements", "Containerfile", plan.containerfile());
    golden("python_requirements", "plan.txt", &summary(&plan));
    assert!(plan.needs_network());
}

#[test]
fn golden_binary() {
    let (_dir, context, plan) =
        plan(&[("bootstrap", "#!/bin/sh\necho '{}' > result.json\n")]).unwrap();
    golden("binary", "Containerfile", plan.containerfile());
    golden("binary", "plan.txt", &summary(&plan));
    let bootstrap = context.function_dir().join("bootstrap");
    assert_eq!(
        fs::metadata(&bootstrap).unwrap().permissions().mode() & 0o777,
        0o644
    );
    plan.write(&context).unwrap();
    assert_eq!(
        fs::metadata(&bootstrap).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[test]
fn golden_dart() {
    let (_dir, _context, plan) = plan(&[
        ("pubspec.yaml", PUBSPEC),
        ("pubspec.lock", "# lock\n"),
        ("lib/hello_fn.dart", HELLO_DART),
        // A fake in the tests is not the function.
        (
            "test/fake_test.dart",
            "@cloudFunction class Fake extends CloudDartFunction {}",
        ),
        // Neither is an annotated class that does not extend CloudDartFunction.
        (
            "lib/src/note.dart",
            "// @cloudFunction class Note extends CloudDartFunction {}\n",
        ),
    ])
    .unwrap();
    golden("dart", "Containerfile", plan.containerfile());
    golden("dart", "entry.dart", file(&plan, "containerpub/entry.dart"));
    golden("dart", "plan.txt", &summary(&plan));
    assert!(plan.needs_network());
}

#[test]
fn golden_dart_class_in_bin_main_without_logger() {
    // The original's layout: the class in bin/main.dart, and the older `handle` without a
    // logger; the file's own `main` is not ours to call.
    let (_dir, _context, plan) = plan(&[
        ("pubspec.yaml", "name: legacy_fn\n"),
        (
            "bin/main.dart",
            r#"import 'package:dart_cloud_function/dart_cloud_function.dart';

@CloudFunction()
class Legacy extends CloudDartFunction {
  @override
  Future<CloudResponse> handle({required CloudRequest request, Map<String, String>? env}) async {
    return CloudResponse.text('legacy');
  }
}

void main() {}
"#,
        ),
    ])
    .unwrap();
    golden(
        "dart_legacy",
        "entry.dart",
        file(&plan, "containerpub/entry.dart"),
    );
}

// ---------------------------------------------------------------------------------------------
// Detection

#[test]
fn root_files_choose_the_runtime() {
    let catalog = RuntimeCatalog::default();
    for (marker, runtime) in [
        ("main.py", "python"),
        ("bootstrap", "binary"),
        ("pubspec.yaml", "dart"),
    ] {
        let (_dir, ctx) = context(&[(marker, "x")]);
        let selected = catalog.detect(&ctx).unwrap();
        assert_eq!(selected.name(), runtime);
        assert_eq!(selected.detection(), Detection::Marker(marker));
    }
}

#[test]
fn the_manifest_decides() {
    let catalog = RuntimeCatalog::default();
    let (_dir, ctx) = context(&[
        ("containerpub.toml", "# which one\nruntime = \"binary\"\n"),
        ("main.py", MAIN_PY),
        ("bootstrap", "x"),
    ]);
    let selected = catalog.detect(&ctx).unwrap();
    assert_eq!(selected.name(), "binary");
    assert_eq!(selected.detection(), Detection::Manifest);

    // Without `runtime`, the files decide.
    let (_dir, ctx) = context(&[("containerpub.toml", ""), ("main.py", MAIN_PY)]);
    assert_eq!(catalog.detect(&ctx).unwrap().name(), "python");
}

#[test]
fn ambiguous_unknown_and_missing_runtimes_are_refused() {
    let catalog = RuntimeCatalog::default();
    let (_dir, ctx) = context(&[("main.py", MAIN_PY), ("pubspec.yaml", PUBSPEC)]);
    let error = catalog.detect(&ctx).unwrap_err();
    assert!(
        matches!(&error, RuntimeError::Ambiguous { markers } if *markers == ["main.py", "pubspec.yaml"]),
        "{error}"
    );
    assert!(error.is_rejection());

    let (_dir, ctx) = context(&[("README.md", "hi")]);
    assert!(matches!(
        catalog.detect(&ctx),
        Err(RuntimeError::NotDetected)
    ));

    let (_dir, ctx) = context(&[("containerpub.toml", "runtime = \"cobol\"")]);
    let error = catalog.detect(&ctx).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown runtime `cobol` (this platform has: binary, dart, python)"
    );

    for manifest in ["runtime = ", "runtme = \"python\"", "runtime = 3"] {
        let (_dir, ctx) = context(&[("containerpub.toml", manifest), ("main.py", MAIN_PY)]);
        let error = catalog.detect(&ctx).unwrap_err();
        assert!(
            matches!(error, RuntimeError::Manifest { .. }),
            "{manifest}: {error}"
        );
    }
}

#[test]
fn a_runtime_missing_its_file_is_refused() {
    let catalog = RuntimeCatalog::default();
    let (_dir, ctx) = context(&[
        ("containerpub.toml", "runtime = \"binary\""),
        ("main.py", MAIN_PY),
    ]);
    let error = catalog
        .detect(&ctx)
        .unwrap()
        .plan(&ctx, &labels())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the `binary` runtime needs `bootstrap` at the archive's root"
    );

    // The platform changes `bootstrap`'s mode: it must be the file itself, not a link.
    let (_dir, ctx) = context(&[("real", "#!/bin/sh\n")]);
    std::os::unix::fs::symlink("real", ctx.function_dir().join("bootstrap")).unwrap();
    let error = catalog
        .detect(&ctx)
        .unwrap()
        .plan(&ctx, &labels())
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::NotRegularFile { .. }),
        "{error}"
    );

    let (_dir, ctx) = context(&[("main.py", MAIN_PY), ("requirements.txt/x", "")]);
    let error = catalog
        .detect(&ctx)
        .unwrap()
        .plan(&ctx, &labels())
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::NotRegularFile { .. }),
        "{error}"
    );
}

#[test]
fn labels_are_checked() {
    let (_dir, ctx) = context(&[("main.py", MAIN_PY)]);
    let catalog = RuntimeCatalog::default();
    let runtime = catalog.detect(&ctx).unwrap();
    for (key, value) in [
        ("io.containerpub.runtime", "x"),
        ("Upper", "x"),
        ("ok", "line\nbreak"),
    ] {
        let labels = BTreeMap::from([(key.to_owned(), value.to_owned())]);
        let error = runtime.plan(&ctx, &labels).unwrap_err();
        assert!(
            matches!(error, RuntimeError::InvalidLabel { .. }),
            "{key}: {error}"
        );
        assert!(!error.is_rejection());
    }
    // Quotes and `$` cannot escape the label.
    let labels = BTreeMap::from([("note".to_owned(), "say \"hi\" to $HOME \\o/".to_owned())]);
    let plan = runtime.plan(&ctx, &labels).unwrap();
    assert!(
        plan.containerfile()
            .contains(r#"note="say \"hi\" to \$HOME \\o/""#),
        "{}",
        plan.containerfile()
    );
}

// ---------------------------------------------------------------------------------------------
// The catalog from configuration

#[test]
fn the_catalog_is_configuration_checked_on_the_way_in() {
    let config = r#"
[python]
recipe = "python"
run_image = "registry.example.com/containerpub/python:3.11"

[python312]
recipe = "python"
run_image = "registry.example.com/containerpub/python:3.12"
command = ["python3.12", "/opt/containerpub/bootstrap.py"]

[dart]
recipe = "dart"
build_image = "docker.io/library/dart:3.10"
run_image = "registry.example.com/containerpub/binary:1"
"#;
    let catalog: RuntimeCatalog = toml::from_str(config).unwrap();
    assert_eq!(
        catalog.names().collect::<Vec<_>>(),
        ["dart", "python", "python312"]
    );
    let spec = catalog.get("python312").unwrap();
    assert_eq!(spec.recipe, Recipe::Python);
    assert_eq!(
        spec.serve_command().unwrap(),
        ["python3.12", "/opt/containerpub/bootstrap.py", "--serve"]
    );
    assert_eq!(catalog.get("dart").unwrap().serve_command(), None);

    // A manifest may name any runtime of the catalog.
    let (_dir, ctx) = context(&[
        ("containerpub.toml", "runtime = \"python312\""),
        ("main.py", MAIN_PY),
    ]);
    let plan = catalog
        .detect(&ctx)
        .unwrap()
        .plan(&ctx, &BTreeMap::new())
        .unwrap();
    assert!(
        plan.containerfile()
            .contains("FROM registry.example.com/containerpub/python:3.12\n")
    );
    assert!(
        plan.containerfile()
            .ends_with("CMD [\"python3.12\", \"/opt/containerpub/bootstrap.py\"]\n")
    );

    for (bad, why) in [
        (
            "[py]\nrecipe = \"python\"\nrun_image = \"python:3\"",
            "needs a registry part",
        ),
        (
            "[d]\nrecipe = \"dart\"\nrun_image = \"localhost/b:1\"",
            "needs a build_image",
        ),
        (
            "[p]\nrecipe = \"python\"\nbuild_image = \"localhost/a:1\"\nrun_image = \"localhost/b:1\"",
            "remove build_image",
        ),
        (
            "[p]\nrecipe = \"python\"\nrun_image = \"localhost/b:1\"\ncommand = []",
            "command is empty",
        ),
        (
            "[P]\nrecipe = \"python\"\nrun_image = \"localhost/b:1\"",
            "a runtime name",
        ),
        (
            "[p]\nrecipe = \"cobol\"\nrun_image = \"localhost/b:1\"",
            "unknown variant",
        ),
        (
            "[p]\nrecipe = \"python\"\nrun_image = \"localhost/b:1\"\nimage = \"x\"",
            "unknown field",
        ),
    ] {
        let error = toml::from_str::<RuntimeCatalog>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains(why), "{bad}: {error}");
    }

    // The defaults are a valid catalog, and survive a round trip through configuration.
    let defaults = RuntimeCatalog::default();
    let text = toml::to_string(&defaults).unwrap();
    assert_eq!(toml::from_str::<RuntimeCatalog>(&text).unwrap(), defaults);
    assert_eq!(
        defaults.get("dart").unwrap().build_image.as_deref(),
        Some("docker.io/library/dart:stable")
    );
}

// ---------------------------------------------------------------------------------------------
// Dart: finding the function

fn dart_error(files: &[(&str, &str)]) -> RuntimeError {
    let mut all = vec![("pubspec.yaml", PUBSPEC)];
    all.extend_from_slice(files);
    plan(&all).map(|_| ()).unwrap_err()
}

#[test]
fn dart_needs_exactly_one_usable_class() {
    let error = dart_error(&[("lib/a.dart", "class A extends CloudDartFunction {}")]);
    assert!(
        matches!(error, RuntimeError::NoCloudFunction { .. }),
        "{error}"
    );

    let error = dart_error(&[("lib/a.dart", "@cloudFunction\nclass A extends Object {}")]);
    assert!(
        error
            .to_string()
            .ends_with("(annotated, but not extending CloudDartFunction: A in lib/a.dart)"),
        "{error}"
    );

    let error = dart_error(&[
        (
            "lib/a.dart",
            "@cloudFunction\nclass A extends CloudDartFunction {}",
        ),
        (
            "bin/b.dart",
            "@cloudFunction\nclass B extends CloudDartFunction {}",
        ),
    ]);
    assert_eq!(
        error.to_string(),
        "only one class may be annotated @cloudFunction, found B in bin/b.dart, A in lib/a.dart"
    );

    let error = dart_error(&[(
        "lib/a.dart",
        "@cloudFunction\nclass _A extends CloudDartFunction {}",
    )]);
    assert!(error.to_string().contains("it is private"), "{error}");
    let error = dart_error(&[(
        "lib/a.dart",
        "@cloudFunction\nabstract class A extends CloudDartFunction {}",
    )]);
    assert!(error.to_string().contains("it is abstract"), "{error}");
    assert!(error.is_rejection());
}

#[test]
fn dart_imports_the_library_of_a_part() {
    let (_dir, _ctx, plan) = plan(&[
        ("pubspec.yaml", PUBSPEC),
        ("lib/hello_fn.dart", "library;\npart 'src/impl.dart';\n"),
        (
            "lib/src/impl.dart",
            "part of '../hello_fn.dart';\n@cloudFunction\nclass Impl extends CloudDartFunction {}\n",
        ),
    ])
    .unwrap();
    let entry = file(&plan, "containerpub/entry.dart");
    assert!(
        entry.contains("import 'package:hello_fn/hello_fn.dart' as user;"),
        "{entry}"
    );
    assert!(
        entry.contains(
            "await user.Impl().handle(\n      request: request,\n      env: env,\n    );"
        )
    );

    let error = dart_error(&[(
        "lib/a.dart",
        "part of hello;\n@cloudFunction\nclass A extends CloudDartFunction {}",
    )]);
    assert!(
        error.to_string().contains("part of '<file>.dart'"),
        "{error}"
    );
}

#[test]
fn dart_refuses_a_bad_pubspec_or_the_reserved_entry() {
    let (_dir, ctx) = context(&[
        ("pubspec.yaml", "description: no name\n"),
        (
            "lib/a.dart",
            "@cloudFunction\nclass A extends CloudDartFunction {}",
        ),
    ]);
    let error = RuntimeCatalog::default()
        .detect(&ctx)
        .unwrap()
        .plan(&ctx, &labels())
        .unwrap_err();
    assert!(matches!(error, RuntimeError::Pubspec { .. }), "{error}");

    let error = dart_error(&[
        (
            "lib/a.dart",
            "@cloudFunction\nclass A extends CloudDartFunction {}",
        ),
        ("bin/containerpub_entry.dart", "void main() {}"),
    ]);
    assert!(
        matches!(error, RuntimeError::ReservedFile { .. }),
        "{error}"
    );
}
