//! The Python bootstrap, run for real with the host's `python3` (the same file the images get).
#![expect(
    clippy::unwrap_used,
    reason = "the fixture helpers panic on failure, like the tests"
)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use container::runtime::PYTHON_BOOTSTRAP;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A function directory with `main.py`, the bootstrap beside it, and an invocation directory.
struct Fixture {
    _dir: TempDir,
    bootstrap: PathBuf,
    function: PathBuf,
    invocation: PathBuf,
}

impl Fixture {
    fn new(main_py: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = dir.path().join("opt/bootstrap.py");
        let function = dir.path().join("function");
        let invocation = dir.path().join("invocation");
        for d in [bootstrap.parent().unwrap(), &function, &invocation] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(&bootstrap, PYTHON_BOOTSTRAP).unwrap();
        fs::write(function.join("main.py"), main_py).unwrap();
        Self {
            _dir: dir,
            bootstrap,
            function,
            invocation,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new("python3");
        command
            .arg(&self.bootstrap)
            .current_dir(&self.invocation)
            .env("CONTAINERPUB_FUNCTION_DIR", &self.function)
            .env(
                "CONTAINERPUB_PACKAGES_DIR",
                self.function.join("no-packages"),
            )
            .env_remove("CONTAINERPUB_LOG_LEVEL")
            .env_remove("PYTHONPATH");
        command
    }

    /// One-shot run: (exit status, result.json, logs.json, the process's stdout and stderr).
    fn run(&self, request: &Value) -> Outcome {
        self.run_with(request, |_| {})
    }

    fn run_with(&self, request: &Value, tweak: impl FnOnce(&mut Command)) -> Outcome {
        fs::write(
            self.invocation.join("request.json"),
            serde_json::to_vec(request).unwrap(),
        )
        .unwrap();
        let mut command = self.command();
        tweak(&mut command);
        let output = command.output().expect("python3 runs");
        let read = |name: &str| -> Value {
            serde_json::from_slice(&fs::read(self.invocation.join(name)).unwrap()).unwrap()
        };
        Outcome {
            status: output.status.code().unwrap(),
            result: read("result.json"),
            logs: read("logs.json"),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
}

struct Outcome {
    status: i32,
    result: Value,
    logs: Value,
    output: String,
}

fn messages(logs: &Value, level: &str) -> Vec<String> {
    logs[level]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

fn json_request(body: &str) -> Value {
    json!({
        "method": "POST",
        "path": "/orders",
        "headers": {"Content-Type": "application/json; charset=utf-8", "x-trace": "t1"},
        "query": {"page": "2"},
        "body": body,
        "raw": body,
    })
}

#[test]
fn a_dict_with_status_code_is_the_response() {
    let fixture = Fixture::new(
        r#"
def handler(request):
    return {
        "statusCode": 201,
        "headers": {"Location": "/orders/7", "X-Count": 3},
        "body": {
            "got": request["body"],
            "raw": request["raw"],
            "method": request["method"],
            "path": request["path"],
            "page": request["query"]["page"],
            "trace": request["headers"]["x-trace"],
        },
    }
"#,
    );
    let outcome = fixture.run(&json_request(r#"{"item": "tea", "qty": 2}"#));
    assert_eq!(outcome.status, 0, "{}", outcome.output);
    assert_eq!(
        outcome.result,
        json!({
            "statusCode": 201,
            "headers": {"Location": "/orders/7", "X-Count": "3"},
            "body": {
                "got": {"item": "tea", "qty": 2},
                "raw": r#"{"item": "tea", "qty": 2}"#,
                "method": "POST",
                "path": "/orders",
                "page": "2",
                "trace": "t1",
            },
        })
    );
    assert_eq!(outcome.logs, json!({"error": [], "debug": [], "info": []}));
    assert_eq!(outcome.output, "", "nothing on the process's own output");
}

#[test]
fn any_other_value_is_a_200_with_that_body() {
    let fixture = Fixture::new("def handler(request):\n    return [request['body'], 2, None]\n");
    // Not JSON by content type: the body stays text.
    let request = json!({"headers": {"content-type": "text/plain"}, "body": "{\"a\": 1}"});
    let outcome = fixture.run(&request);
    assert_eq!(outcome.status, 0, "{}", outcome.output);
    assert_eq!(
        outcome.result,
        json!({"statusCode": 200, "headers": {}, "body": ["{\"a\": 1}", 2, null]})
    );

    // A dict without statusCode is a body too; the defaults fill a sparse request.
    let fixture = Fixture::new(
        "def handler(request):\n    return {'method': request['method'], 'path': request['path'], 'body': request['body'], 'raw': request['raw']}\n",
    );
    let outcome = fixture.run(&json!({}));
    assert_eq!(
        outcome.result,
        json!({"statusCode": 200, "headers": {},
               "body": {"method": "POST", "path": "/", "body": null, "raw": ""}})
    );
}

#[test]
fn an_exception_fails_with_its_type_and_message_only() {
    let fixture = Fixture::new(
        "def helper():\n    raise ValueError('boom: bad input')\n\ndef handler(request):\n    print('before')\n    helper()\n",
    );
    let outcome = fixture.run(&json_request("{}"));
    assert_eq!(outcome.status, 1);
    assert_eq!(
        outcome.result,
        json!({
            "statusCode": 500,
            "headers": {"content-type": "application/json"},
            "body": {"error": {"type": "ValueError", "message": "boom: bad input"}},
        })
    );
    assert_eq!(messages(&outcome.logs, "info"), ["before"]);
    assert_eq!(
        messages(&outcome.logs, "error"),
        ["ValueError: boom: bad input"]
    );
    let everything = format!("{}{}{}", outcome.result, outcome.logs, outcome.output);
    assert!(!everything.contains("Traceback"), "{everything}");
    assert!(
        !everything.contains("helper"),
        "no stack frames: {everything}"
    );
}

#[test]
fn broken_functions_and_bad_results_fail_cleanly() {
    for (main_py, kind) in [
        ("def handler(request):\n    return {1, 2}\n", "TypeError"),
        (
            "def handler(request):\n    return {'statusCode': 'ok'}\n",
            "ValueError",
        ),
        ("handler = 42\n", "TypeError"),
        ("def handler(request) oops\n", "SyntaxError"),
        ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
        (
            "import sys\ndef handler(request):\n    sys.exit(3)\n",
            "SystemExit",
        ),
    ] {
        let fixture = Fixture::new(main_py);
        let outcome = fixture.run(&json_request("{}"));
        assert_eq!(outcome.status, 1, "{main_py}");
        assert_eq!(outcome.result["statusCode"], 500, "{main_py}");
        assert_eq!(
            outcome.result["body"]["error"]["type"], kind,
            "{main_py}: {}",
            outcome.result
        );
    }
    // No request.json at all.
    let fixture = Fixture::new("def handler(request):\n    return 1\n");
    let output = fixture.command().output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let result: Value =
        serde_json::from_slice(&fs::read(fixture.invocation.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["body"]["error"]["type"], "FileNotFoundError");
}

#[test]
fn print_and_logging_become_the_logs() {
    let fixture = Fixture::new(
        r#"
import logging, sys
log = logging.getLogger("orders")

def handler(request):
    print("hello", "world")
    print("no newline at the end", end="")
    print("to stderr", file=sys.stderr)
    logging.info("info via root")
    log.warning("stock low: %d left", 3)
    log.debug("debug detail")
    log.error("payment failed")
    return "ok"
"#,
    );
    let outcome = fixture.run(&json_request("{}"));
    assert_eq!(outcome.status, 0, "{}", outcome.output);
    assert_eq!(outcome.output, "", "print never reaches the process output");
    assert_eq!(
        messages(&outcome.logs, "info"),
        [
            "hello world",
            "info via root",
            "stock low: 3 left",
            "no newline at the end"
        ]
    );
    assert_eq!(
        messages(&outcome.logs, "error"),
        ["to stderr", "payment failed"]
    );
    assert!(
        messages(&outcome.logs, "debug").is_empty(),
        "INFO by default"
    );
    let warning = &outcome.logs["info"][2];
    assert_eq!(
        warning["metadata"],
        json!({"level": "WARNING", "logger": "orders"})
    );
    let stamp = warning["timestamp"].as_str().unwrap();
    assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");

    let outcome = fixture.run_with(&json_request("{}"), |c| {
        c.env("CONTAINERPUB_LOG_LEVEL", "debug");
    });
    assert_eq!(messages(&outcome.logs, "debug"), ["debug detail"]);
}

#[test]
fn env_config_reaches_the_handler_and_async_handlers_work() {
    let fixture = Fixture::new(
        "import os\nasync def handler(request):\n    return {'greeting': os.environ['GREETING'], 'limit': os.environ['FUNCTION_TIMEOUT_MS']}\n",
    );
    fs::write(
        fixture.invocation.join(".env.config"),
        "# limits\nFUNCTION_TIMEOUT_MS=5000\nGREETING=hello = world\n",
    )
    .unwrap();
    let outcome = fixture.run(&json_request("{}"));
    assert_eq!(outcome.status, 0, "{}", outcome.output);
    assert_eq!(
        outcome.result["body"],
        json!({"greeting": "hello = world", "limit": "5000"})
    );
}

/// Persistent mode: one interpreter, several requests over stdin/stdout.
#[test]
fn serve_mode_answers_requests_one_per_line() {
    let fixture = Fixture::new(
        r#"
import os, sys
calls = 0

def handler(request):
    global calls
    calls += 1
    print("call", calls)
    os.write(1, b"raw bytes on fd 1 must not reach the protocol\n")
    sys.__stdout__.write("nor the original sys.stdout\n")
    sys.__stdout__.flush()
    if request["body"].get("fail"):
        raise RuntimeError("asked to fail")
    return {"statusCode": 200, "body": {"calls": calls, "pid": os.getpid(),
            "tenant": os.environ.get("TENANT"), "cwd": os.getcwd(), "echo": request["body"]}}
"#,
    );
    let scratch = fixture.invocation.join("scratch");
    fs::create_dir(&scratch).unwrap();
    let mut child = fixture
        .command()
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut next = || -> Value {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "a whole line: {line:?}");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next(), json!({"ready": true}));

    let mut send = |message: Value| {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    };
    send(json!({"id": 1, "request": json_request(r#"{"n": 1}"#), "env": {"TENANT": "acme"}}));
    let first = next();
    send(json!({"id": "two", "request": json_request(r#"{"fail": true}"#)}));
    let second = next();
    writeln!(stdin, "this is not json").unwrap();
    stdin.flush().unwrap();
    let garbage = next();
    let scratch_text = scratch.to_str().unwrap().to_owned();
    writeln!(
        stdin,
        "{}",
        json!({"id": 3, "request": json_request(r#"{"n": 3}"#), "dir": scratch_text})
    )
    .unwrap();
    stdin.flush().unwrap();
    let third = next();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();

    assert_eq!(first["id"], 1);
    assert_eq!(first["ok"], true);
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["result"]["statusCode"], 200);
    assert_eq!(first["result"]["body"]["calls"], 1);
    assert_eq!(first["result"]["body"]["tenant"], "acme");
    assert_eq!(first["result"]["body"]["echo"], json!({"n": 1}));
    assert_eq!(messages(&first["logs"], "info"), ["call 1"]);

    assert_eq!(second["id"], "two");
    assert_eq!(second["ok"], false);
    assert_eq!(
        second["error"],
        json!({"type": "RuntimeError", "message": "asked to fail"})
    );
    assert_eq!(second["result"]["statusCode"], 500);
    assert_eq!(
        messages(&second["logs"], "info"),
        ["call 2"],
        "logs are per request"
    );
    assert_eq!(
        messages(&second["logs"], "error"),
        ["RuntimeError: asked to fail"]
    );

    assert_eq!(garbage["id"], Value::Null);
    assert_eq!(garbage["ok"], false);
    assert_eq!(garbage["error"]["type"], "ProtocolError");

    // The same warm interpreter: module state survives, same process, env kept.
    assert_eq!(third["id"], 3);
    assert_eq!(third["result"]["body"]["calls"], 3);
    assert_eq!(
        third["result"]["body"]["pid"],
        first["result"]["body"]["pid"]
    );
    assert_eq!(third["result"]["body"]["tenant"], "acme");
    assert_eq!(
        Path::new(third["result"]["body"]["cwd"].as_str().unwrap()),
        scratch.canonicalize().unwrap()
    );
    assert_eq!(
        Path::new(first["result"]["body"]["cwd"].as_str().unwrap()),
        fixture.invocation.canonicalize().unwrap()
    );
    // What bypassed print went to stderr, not into the protocol.
    assert!(stderr.contains("raw bytes on fd 1"), "{stderr}");
}

#[test]
fn serve_mode_reports_a_broken_import_and_keeps_answering() {
    let fixture = Fixture::new("print('importing')\nraise ImportError('no such thing')\n");
    let mut child = fixture
        .command()
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{}", json!({"id": 1, "request": {}})).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        json!({"ready": false, "error": {"type": "ImportError", "message": "no such thing"}})
    );
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["error"]["type"], "ImportError");
    // The import's own output belongs to the first invocation.
    assert_eq!(messages(&lines[1]["logs"], "info"), ["importing"]);
    assert_eq!(lines.len(), 2);
}
