//! Round-trip latency of trivial invocations, client to runner and back (printed; run with
//! `--nocapture` to see the figures, and with `CONTAINERPUB_RUNNER_BIN` set to the static release
//! binary for the figures worth reporting).

use std::time::{Duration, Instant};

use runner::protocol::{Client, InvokeRequest, Status};
use serde_json::json;

use crate::harness::{Runner, request, runner_bin};

const ITERATIONS: usize = 200;

fn measure(client: &mut Client, req: &InvokeRequest) -> Vec<Duration> {
    for _ in 0..10 {
        assert_eq!(client.invoke(req).unwrap().status, Status::Success);
    }
    let mut samples = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        let response = client.invoke(req).unwrap();
        samples.push(started.elapsed());
        assert_eq!(response.status, Status::Success, "{response:?}");
    }
    samples.sort();
    samples
}

fn report(name: &str, samples: &[Duration]) {
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "latency {name}: median {:?} p90 {:?} p99 {:?} (n = {}, runner {})",
        at(0.5),
        at(0.9),
        at(0.99),
        samples.len(),
        runner_bin().display()
    );
}

#[test]
fn trivial_invocation_round_trips() {
    let exec = Runner::exec("printf '{\"statusCode\":200,\"body\":\"ok\"}' > result.json");
    let samples = measure(&mut exec.client(), &request("lat-exec", &json!({}), 5000));
    report("exec (sh script)", &samples);
    assert!(exec.leftovers().is_empty());

    let python = Runner::python();
    let samples = measure(
        &mut python.client(),
        &request("lat-py", &json!({"action": "noop"}), 5000),
    );
    report("python-persistent", &samples);
}
