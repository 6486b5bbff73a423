//! Python persistent mode: one interpreter (the platform's bootstrap, `--serve`) serves every
//! invocation.

use std::time::{Duration, Instant};

use runner::protocol::Status;
use serde_json::json;

use crate::harness::{Runner, alive, request};

fn pid_of(runner: &Runner, id: &str) -> i64 {
    let response = runner.invoke(&request(id, &json!({"action": "pid"}), 5000));
    assert_eq!(response.status, Status::Success, "{response:?}");
    let result = response.result.clone().unwrap();
    assert_eq!(result.status_code, 200);
    assert_eq!(
        result.headers["X-Pid"],
        vec![result.body["pid"].to_string()]
    );
    result.body["pid"].as_i64().unwrap()
}

#[test]
fn one_interpreter_serves_many_requests() {
    let runner = Runner::python();
    let first = pid_of(&runner, "p1");
    assert_eq!(pid_of(&runner, "p2"), first);
    assert_eq!(pid_of(&runner, "p3"), first);
    assert!(runner.leftovers().is_empty(), "{:?}", runner.leftovers());
}

#[test]
fn a_crash_is_an_error_and_the_next_request_gets_a_fresh_interpreter() {
    let runner = Runner::python();
    let before = pid_of(&runner, "before");
    let crashed = runner.invoke(&request("crash", &json!({"action": "crash"}), 5000));
    assert_eq!(crashed.status, Status::Error, "{crashed:?}");
    assert_eq!(crashed.exit_code, Some(7));
    assert_eq!(
        crashed.error.as_deref(),
        Some("the interpreter died during the invocation (exit code 7)")
    );
    let after = pid_of(&runner, "after");
    assert_ne!(after, before);
    assert!(!alive(i32::try_from(before).unwrap()));
    assert_eq!(pid_of(&runner, "again"), after);
}

#[test]
fn a_timeout_kills_and_restarts_the_interpreter() {
    let runner = Runner::python();
    let before = pid_of(&runner, "before");
    let started = Instant::now();
    let response = runner.invoke(&request("loop", &json!({"action": "loop"}), 300));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(response.status, Status::Timeout, "{response:?}");
    assert!(response.duration_ms >= 300);
    assert!(
        !alive(i32::try_from(before).unwrap()),
        "the looping interpreter survived"
    );
    let after = pid_of(&runner, "after");
    assert_ne!(after, before);
}

#[test]
fn an_exception_is_an_error_with_its_type_and_message() {
    let runner = Runner::python();
    let response = runner.invoke(&request("raise", &json!({"action": "raise"}), 5000));
    assert_eq!(response.status, Status::Error, "{response:?}");
    assert_eq!(response.error.as_deref(), Some("ValueError: bad input"));
    assert!(response.result.is_none());
    // The interpreter is still the same one afterwards: an exception is not a crash.
    let pid = pid_of(&runner, "p1");
    assert_eq!(pid_of(&runner, "p2"), pid);
}

#[test]
fn print_and_logging_become_the_logs() {
    let runner = Runner::python();
    let response = runner.invoke(&request("print", &json!({"action": "print"}), 5000));
    assert_eq!(response.status, Status::Success, "{response:?}");
    let result = response.result.clone().unwrap();
    assert_eq!((result.status_code, result.body), (200, json!("plain")));
    // The bootstrap turns print, sys.stderr and logging into logs.json-style entries.
    let structured = response.logs.structured.clone().unwrap();
    let messages = |entries: &[serde_json::Value]| -> Vec<String> {
        entries
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(messages(&structured.info), vec!["printed line"]);
    assert_eq!(
        messages(&structured.error),
        vec!["to stderr", "an error entry"]
    );
    // Nothing reached the real stdout and stderr.
    assert_eq!(
        (response.logs.stdout.as_str(), response.logs.stderr.as_str()),
        ("", "")
    );
    assert!(
        response.peak_memory_bytes.is_some_and(|b| b > 1_000_000),
        "{response:?}"
    );
    assert!(response.cpu_time_ms.is_some());
}

#[test]
fn the_handler_runs_in_the_invocation_directory_with_its_environment() {
    let runner = Runner::python();
    let response = runner.invoke(&request("env-7", &json!({"action": "env"}), 5000));
    assert_eq!(response.status, Status::Success, "{response:?}");
    let body = response.result.unwrap().body;
    assert_eq!(body["greeting"], json!("hello world"));
    assert_eq!(body["invocation"], json!("env-7"));
    assert_eq!(body["files"], json!([".env.config", "request.json"]));
    assert!(
        body["cwd"]
            .as_str()
            .unwrap()
            .starts_with(runner.workroot.to_str().unwrap())
    );
    assert!(runner.leftovers().is_empty(), "{:?}", runner.leftovers());
    // The variables were restored after the call.
    let again = runner.invoke(&request("env-8", &json!({"action": "env"}), 5000));
    assert_eq!(again.result.unwrap().body["invocation"], json!("env-8"));
}

#[test]
fn a_function_that_cannot_load_fails_every_invocation_with_the_load_error() {
    let function = tempfile::tempdir().unwrap();
    std::fs::write(
        function.path().join("main.py"),
        "raise ImportError('no such thing')\n",
    )
    .unwrap();
    let runner = Runner::python_in(function.path());
    for id in ["first", "second"] {
        let response = runner.invoke(&request(id, &json!({}), 5000));
        assert_eq!(response.status, Status::Error, "{response:?}");
        assert_eq!(
            response.error.as_deref(),
            Some("ImportError: no such thing")
        );
    }
}

#[test]
fn processes_left_by_a_dead_interpreter_are_killed() {
    let runner = Runner::python();
    let spawned = runner.invoke(&request("spawn", &json!({"action": "spawn"}), 5000));
    assert_eq!(spawned.status, Status::Success, "{spawned:?}");
    let pid = i32::try_from(spawned.result.unwrap().body["pid"].as_i64().unwrap()).unwrap();
    assert!(alive(pid));
    let crashed = runner.invoke(&request("crash", &json!({"action": "crash"}), 5000));
    assert_eq!(crashed.status, Status::Error, "{crashed:?}");
    // Waits for the clean-up of the crashed invocation.
    assert!(runner.leftovers().is_empty());
    assert!(!alive(pid), "the interpreter's session child survived it");
}
