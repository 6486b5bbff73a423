//! Exec mode: one run of a `binary`-style `#!/bin/sh` function per invocation.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use runner::protocol::{InvokeResponse, Status, read_frame, write_frame};
use serde_json::json;

use crate::harness::{Runner, alive, group_members, pids, request, write_script};

#[test]
fn success_returns_status_headers_body_and_logs() {
    let runner = Runner::exec(
        r#"echo "to stdout"
echo "to stderr" >&2
printf '{"error":[],"debug":[],"info":[{"message":"hi"}]}' > logs.json
{ printf '{"statusCode":201,"headers":{"X-Test":"yes","Set-Cookie":["a=1","b=2"]},"body":'
  cat request.json
  printf '}'
} > result.json"#,
    );
    let req = request("ok-1", &json!({"name": "Ada"}), 5000);
    let response = runner.invoke(&req);
    assert_eq!(response.status, Status::Success, "{response:?}");
    assert_eq!(response.invocation_id, "ok-1");
    assert_eq!(response.error, None);
    assert_eq!(response.exit_code, Some(0));
    let result = response.result.clone().unwrap();
    assert_eq!(result.status_code, 201);
    assert_eq!(result.headers["X-Test"], vec!["yes"]);
    assert_eq!(result.headers["Set-Cookie"], vec!["a=1", "b=2"]);
    // The function saw request.json exactly as sent: {method, path, headers, query, body, raw}.
    assert_eq!(result.body, serde_json::to_value(&req.request).unwrap());
    assert_eq!(result.body["body"], json!({"name": "Ada"}));
    assert_eq!(result.body["raw"], json!(r#"{"name":"Ada"}"#));
    assert_eq!(result.body["query"], json!({"q": "1"}));
    assert_eq!(response.logs.stdout, "to stdout\n");
    assert_eq!(response.logs.stderr, "to stderr\n");
    assert_eq!(
        response.logs.structured.clone().unwrap().info,
        vec![json!({"message": "hi"})]
    );
    assert!(!response.logs_truncated);
    assert!(
        response.peak_memory_bytes.is_some_and(|b| b > 100_000),
        "{response:?}"
    );
    assert!(response.cpu_time_ms.is_some());
    assert!(response.duration_us > 0);
}

#[test]
fn exit_zero_without_result_json_is_no_result() {
    let runner = Runner::exec("echo 'forgot the result'\nexit 0");
    let response = runner.invoke(&request("nr", &json!({}), 5000));
    assert_eq!(response.status, Status::NoResult, "{response:?}");
    assert!(response.result.is_none());
    assert_eq!(response.exit_code, Some(0));
    assert_eq!(response.logs.stdout, "forgot the result\n");
    assert!(response.error.unwrap().contains("result.json"));
}

#[test]
fn non_zero_exit_is_an_error_with_stderr() {
    let runner = Runner::exec("printf '{}' > result.json\necho 'boom: it broke' >&2\nexit 3");
    let response = runner.invoke(&request("err", &json!({}), 5000));
    assert_eq!(response.status, Status::Error, "{response:?}");
    assert_eq!(response.exit_code, Some(3));
    assert_eq!(response.error.as_deref(), Some("exited with code 3"));
    assert_eq!(response.logs.stderr, "boom: it broke\n");
    assert!(response.result.is_none());
}

#[test]
fn a_function_killed_by_a_signal_is_an_error_naming_it() {
    let runner = Runner::exec("kill -SEGV $$");
    let response = runner.invoke(&request("sig", &json!({}), 5000));
    assert_eq!(response.status, Status::Error, "{response:?}");
    assert_eq!(response.signal, Some(11));
    assert!(response.error.unwrap().contains("SIGSEGV"));
}

#[test]
fn invalid_result_json_is_an_error() {
    let runner = Runner::exec("printf '{\"statusCode\": 42}' > result.json");
    let response = runner.invoke(&request("bad", &json!({}), 5000));
    assert_eq!(response.status, Status::Error, "{response:?}");
    assert!(response.error.unwrap().starts_with("invalid result.json"));

    let fifo = Runner::exec("mkfifo result.json");
    let response = fifo.invoke(&request("fifo", &json!({}), 5000));
    assert_eq!(response.status, Status::Error, "{response:?}");
    assert!(response.error.unwrap().contains("not a regular file"));
}

#[test]
fn output_over_the_cap_is_cut_and_flagged() {
    let runner = Runner::exec(
        "head -c 200000 /dev/zero | tr '\\0' a\nhead -c 10 /dev/zero | tr '\\0' b >&2\nprintf '{}' > result.json",
    );
    let mut req = request("cap", &json!({}), 5000);
    req.log_cap_bytes = 1000;
    let response = runner.invoke(&req);
    assert_eq!(response.status, Status::Success, "{response:?}");
    assert!(response.logs_truncated);
    assert_eq!(response.logs.stdout, "a".repeat(1000));
    assert_eq!(response.logs.stderr, "b".repeat(10));
}

#[test]
fn a_busy_loop_past_the_timeout_is_killed_with_its_whole_process_group() {
    // Asked to spin, it prints its own pid (= its process group) and a background grandchild's,
    // then loops for ever.
    let runner = Runner::exec(
        "if grep -q spin request.json; then\n  echo $$\n  sleep 100 &\n  echo $!\n  while :; do :; done\nfi\nprintf '{\"statusCode\":200}' > result.json",
    );
    let started = Instant::now();
    let response = runner.invoke(&request("slow", &json!({"action": "spin"}), 300));
    let elapsed = started.elapsed();
    assert_eq!(response.status, Status::Timeout, "{response:?}");
    assert_eq!(response.error.as_deref(), Some("timed out after 300 ms"));
    assert!(response.duration_ms >= 300, "{response:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    let printed = pids(&response.logs.stdout);
    assert_eq!(printed.len(), 2, "{:?}", response.logs.stdout);
    let (leader, grandchild) = (printed[0], printed[1]);
    assert!(!alive(leader), "the function's shell survived");
    assert!(!alive(grandchild), "the background sleep survived");
    assert!(
        group_members(leader).is_empty(),
        "processes left in group {leader}"
    );
    assert!(runner.leftovers().is_empty(), "{:?}", runner.leftovers());

    // The instance recovers: the next invocation runs normally.
    let after = runner.invoke(&request("after", &json!({}), 1000));
    assert_eq!(after.status, Status::Success, "{after:?}");
}

#[test]
fn processes_left_behind_are_killed_even_in_another_session() {
    let runner = Runner::exec(
        "setsid sleep 100 > /dev/null 2>&1 &\necho $!\n(sleep 100 &) \nprintf '{}' > result.json",
    );
    let response = runner.invoke(&request("daemon", &json!({}), 5000));
    assert_eq!(response.status, Status::Success, "{response:?}");
    let escaped = pids(&response.logs.stdout);
    assert_eq!(escaped.len(), 1);
    assert!(
        !alive(escaped[0]),
        "the setsid process survived the invocation"
    );
}

#[test]
fn invocation_directories_are_private_removed_and_invisible_to_the_next() {
    let runner = Runner::exec(
        r#"here=$(ls -A | tr '\n' ' ')
above=$(ls -A .. | tr '\n' ' ')
stat -c %a . >&2
echo secret > mine.txt
echo leak > ../leak.txt
mkdir locked && echo x > locked/file && chmod 000 locked
printf '{"statusCode":200,"body":{"cwd":"%s","here":"%s","above":"%s"}}' "$(pwd)" "$here" "$above" > result.json"#,
    );
    let first = runner.invoke(&request("first", &json!({}), 5000));
    assert_eq!(first.status, Status::Success, "{first:?}");
    assert_eq!(
        first.logs.stderr.trim(),
        "700",
        "the invocation directory is not private"
    );
    assert!(
        runner.leftovers().is_empty(),
        "left behind: {:?}",
        runner.leftovers()
    );

    let second = runner.invoke(&request("second", &json!({}), 5000));
    assert_eq!(second.status, Status::Success, "{second:?}");
    let body = second.result.unwrap().body;
    let here = body["here"].as_str().unwrap();
    assert_eq!(
        here.split_whitespace().collect::<Vec<_>>(),
        vec![".env.config", "request.json"]
    );
    let above = body["above"].as_str().unwrap();
    let first_cwd = first.result.unwrap().body["cwd"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_dir = first_cwd.rsplit('/').next().unwrap().to_owned();
    assert!(
        !above.contains("leak.txt") && !above.contains(&first_dir),
        "the second saw: {above}"
    );
    assert_ne!(body["cwd"].as_str().unwrap(), first_cwd);
    assert!(!fs::exists(&first_cwd).unwrap());
}

#[test]
fn env_config_and_environment_hold_limits_and_the_functions_variables() {
    let runner = Runner::exec(
        r#"cat .env.config
echo "---"
echo "GREETING=$GREETING"
echo "ID=$CONTAINERPUB_INVOCATION_ID"
echo "HOME=$HOME"
printf '{}' > result.json"#,
    );
    let response = runner.invoke(&request("env-1", &json!({}), 1234));
    assert_eq!(response.status, Status::Success, "{response:?}");
    let (config, environment) = response.logs.stdout.split_once("---\n").unwrap();
    let lines: Vec<&str> = config.lines().collect();
    for expected in [
        "DART_CLOUD_RESTRICTED=true",
        "FUNCTION_TIMEOUT_MS=1234",
        "FUNCTION_MAX_MEMORY_MB=128",
        "CONTAINERPUB_INVOCATION_ID=env-1",
        "CONTAINERPUB_TIMEOUT_MS=1234",
        "CONTAINERPUB_LOG_CAP_BYTES=65536",
        "CONTAINERPUB_MEMORY_LIMIT_BYTES=134217728",
        "GREETING=hello world",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from .env.config:\n{config}"
        );
    }
    assert!(lines.iter().any(|l| l.starts_with("SHARED_PATH=/")));
    assert!(environment.contains("GREETING=hello world\n"));
    assert!(environment.contains("ID=env-1\n"));
    let home = environment
        .lines()
        .find_map(|l| l.strip_prefix("HOME="))
        .unwrap();
    assert!(
        home.starts_with(runner.workroot.to_str().unwrap()),
        "{home}"
    );
}

#[test]
fn a_second_concurrent_invocation_is_rejected_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let runner = Runner::exec(&format!(
        "touch {}\nsleep 1\nprintf '{{}}' > result.json",
        started.display()
    ));
    let (tx, rx) = mpsc::channel();
    let mut slow_client = runner.client();
    let slow = thread::spawn(move || {
        let response = slow_client
            .invoke(&request("slow", &json!({}), 5000))
            .unwrap();
        tx.send(response).unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "the first invocation did not start"
        );
        thread::sleep(Duration::from_millis(2));
    }
    let mut other = runner.client();
    let rejected = other.invoke(&request("second", &json!({}), 5000)).unwrap();
    assert_eq!(rejected.status, Status::Rejected, "{rejected:?}");
    assert_eq!(rejected.invocation_id, "second");
    assert!(rejected.error.unwrap().starts_with("busy"));
    slow.join().unwrap();
    assert_eq!(rx.recv().unwrap().status, Status::Success);
    // Once the first is answered the same connection works again.
    assert_eq!(
        other
            .invoke(&request("third", &json!({}), 5000))
            .unwrap()
            .status,
        Status::Success
    );
}

#[test]
fn one_connection_carries_many_requests_and_survives_bad_ones() {
    let runner = Runner::exec("printf '{\"statusCode\":204}' > result.json");
    let mut stream = std::os::unix::net::UnixStream::connect(&runner.socket).unwrap();
    for i in 0..3 {
        write_frame(&mut stream, &request(&format!("seq-{i}"), &json!({}), 5000)).unwrap();
        let response: InvokeResponse = read_frame(&mut stream).unwrap().unwrap();
        assert_eq!(
            (response.status, response.invocation_id),
            (Status::Success, format!("seq-{i}"))
        );
    }
    // Not an invocation: rejected, and the connection stays in step.
    write_frame(&mut stream, &json!({"hello": "there"})).unwrap();
    let response: InvokeResponse = read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(response.status, Status::Rejected);
    // A reserved variable name: rejected without running anything.
    let mut reserved = request("reserved", &json!({}), 5000);
    reserved
        .env
        .insert("CONTAINERPUB_SECRET".into(), "x".into());
    write_frame(&mut stream, &reserved).unwrap();
    let response: InvokeResponse = read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(response.status, Status::Rejected);
    assert!(response.error.unwrap().contains("reserved"));
    write_frame(&mut stream, &request("last", &json!({}), 5000)).unwrap();
    let response: InvokeResponse = read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(response.status, Status::Success);
}

#[test]
fn a_command_that_cannot_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-bootstrap");
    let not_executable = write_script(dir.path(), "not-executable", "true");
    fs::set_permissions(&not_executable, fs::Permissions::from_mode(0o644)).unwrap();
    for command in [missing, not_executable] {
        let dir = tempfile::tempdir().unwrap();
        let runner = Runner::start(dir, "exec", &[command.into_os_string()], None);
        let response = runner.invoke(&request("cannot", &json!({}), 5000));
        assert_eq!(response.status, Status::Error, "{response:?}");
        assert!(response.error.unwrap().starts_with("cannot start"));
    }
}
