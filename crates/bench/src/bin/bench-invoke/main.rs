//! `bench-invoke`: invocation latency and throughput of cloud-api, each beside a baseline measured
//! in the same run (issue 5, item 6; docs/PERFORMANCE.md, section Invoke). `bench/invoke.sh`
//! starts what it needs and runs it.
//!
//! Two cloud-api replicas of the same build, on one database:
//! - the **warm** replica (`--warm-api`) keeps idle instances running (a long `idle_pause`), so
//!   that an instance is never paused under the direct baseline. For each concurrency: a warm-up
//!   (until no call has started a container for a second), a measured window of calls through
//!   `POST /api/functions/:id/invoke`, then — cloud-api idle — the same request sent straight to
//!   the runner sockets of the same instances (one connection per instance: a runner serves one
//!   invocation at a time). At concurrency 1 also the unpause baseline: the libpod REST `unpause`
//!   of that instance and the same request on its socket. After the last window, the executions
//!   `total` is compared with the calls answered (the writer is asynchronous: waited for, bounded).
//! - the **cold** replica (`--cold-api`) has a tiny `idle_pause` and `idle_remove`: for each of
//!   `--runs` fresh functions, the first call of its fresh deployment, the raw `podman run`s of the
//!   same image, the call once its instance is paused, and the call once only the pre-created
//!   instance is left (see `cold.rs`).
//!
//! Progress goes to stderr, the table to stdout. Nothing is asserted about time.

mod api;
mod cold;
mod instances;
mod load;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench::{Samples, Summary, Table};
use clap::Parser;
use container::{Podman, PodmanConfig};

use api::Api;
use load::Window;

/// The trivial function every call runs (the `python` runtime, served by one persistent
/// interpreter per instance).
const MAIN_PY: &str = r#"# ContainerPub invoke benchmark: the trivial function.


def handler(request):
    body = request.get("body") or {}
    return {"ok": True, "n": body.get("n")}
"#;

/// Invocation latency and throughput through cloud-api, beside baselines measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "bench-invoke", version)]
struct Args {
    /// The warm replica (a long idle_pause), e.g. http://127.0.0.1:18080.
    #[arg(long)]
    warm_api: String,
    /// The warm replica's invoke.socket_root (where the runner sockets of its instances are).
    #[arg(long)]
    warm_socket_root: PathBuf,
    /// The cold replica (idle_pause and idle_remove of a few seconds).
    #[arg(long)]
    cold_api: String,
    /// The Podman service's socket (for instance states and the raw `podman run`s).
    #[arg(long)]
    podman_socket: PathBuf,
    /// Concurrencies of the warm measurements (comma-separated); the default tier's
    /// max_concurrency must allow the largest.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<usize>,
    /// Seconds of each measured warm window (platform and direct alike).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Seconds of warm-up before each warm window (at least; a platform warm-up also lasts until
    /// no call started a container for a second).
    #[arg(long, default_value_t = 2.0)]
    warmup_seconds: f64,
    /// Requests at most in one window.
    #[arg(long, default_value_t = 500_000)]
    max_requests: u64,
    /// Samples of each cold path and of the unpause paths (fresh functions deployed).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// How long to wait for the executions total to catch up.
    #[arg(long, default_value_t = 30)]
    persist_timeout_secs: u64,
    /// The bench database's URL: PostgreSQL's transaction and row counters around the largest
    /// concurrency's window are printed per call (needs psql).
    #[arg(long)]
    pg_url: Option<String>,
    /// The default tier's max_timeout_s (goes into the direct baseline's request as cloud-api
    /// puts it into its own).
    #[arg(long, default_value_t = 5)]
    tier_timeout_s: u64,
    /// The default tier's max_memory_mb (likewise).
    #[arg(long, default_value_t = 128)]
    tier_memory_mb: u64,
    /// Skip the warm phase.
    #[arg(long)]
    skip_warm: bool,
    /// Skip the cold and unpause phase.
    #[arg(long)]
    skip_cold: bool,
}

/// The bench user.
struct Credentials {
    email: String,
    password: String,
    nonce: String,
}

/// One warm concurrency's figures.
struct WarmRow {
    concurrency: usize,
    platform: Summary,
    signed: Summary,
    signed_failures: String,
    platform_failures: String,
    warmup_failures: String,
    direct: Summary,
    sockets: usize,
}

/// Everything the warm phase measured.
#[derive(Default)]
struct WarmReport {
    rows: Vec<WarmRow>,
    unpause_baseline: Option<Samples>,
    idle_call: Option<Samples>,
    persistence: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // One thread drives every HTTP caller: the bench takes as little as it can of the two cores
    // it shares with the platform (the direct baseline runs on its own threads).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench-invoke: no tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-invoke: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers");
    }
    let started = Instant::now();
    let load_before = loadavg();
    let podman = Podman::connect(PodmanConfig {
        socket: args.podman_socket.clone(),
        ..PodmanConfig::default()
    })
    .await
    .context("connecting to Podman")?;
    let top = args.concurrency.iter().copied().max().unwrap_or(1);
    let mut warm = Api::new(&args.warm_api, top + 4)?;
    let mut cold = Api::new(&args.cold_api, 4)?;
    warm.wait_healthy(Duration::from_secs(60)).await?;
    cold.wait_healthy(Duration::from_secs(60)).await?;

    let nonce = nonce();
    let creds = Credentials {
        email: format!("invokebench.{nonce}@example.com"),
        password: format!("Zq7-perf-run-{nonce}"),
        nonce,
    };
    warm.register(&creds.email, &creds.password).await?;
    warm.login(&creds.email, &creds.password).await?;
    cold.login(&creds.email, &creds.password).await?;
    let archive = archive().context("packing the function")?;

    let warm_report = if args.skip_warm {
        WarmReport::default()
    } else {
        warm_phase(&args, &podman, &mut warm, &creds, archive.clone()).await?
    };
    // A failed cold phase still lets the warm figures print.
    let (cold_run, cold_error) = if args.skip_cold {
        (None, None)
    } else {
        match cold_phase(&args, &podman, &mut cold, &creds, archive).await {
            Ok(run) => (Some(run), None),
            Err(err) => (None, Some(err)),
        }
    };

    print_report(
        &args,
        &warm_report,
        cold_run.as_ref(),
        &load_before,
        started.elapsed(),
    );
    match cold_error {
        Some(err) => Err(err.context("the cold phase failed")),
        None => Ok(()),
    }
}

async fn warm_phase(
    args: &Args,
    podman: &Podman,
    api: &mut Api,
    creds: &Credentials,
    archive: Vec<u8>,
) -> Result<WarmReport> {
    eprintln!("warm: deploying the function (not timed)");
    let function = api
        .init_function(&format!("bench-warm-{}", creds.nonce))
        .await?;
    api.deploy(&function, archive).await?;
    let url = api.invoke_url(&function);
    let host = args
        .warm_api
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let template = load::request(
        &host,
        args.tier_timeout_s * 1000,
        args.tier_memory_mb * 1024 * 1024,
    );
    let seconds = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup_seconds);
    let top = args.concurrency.iter().copied().max().unwrap_or(1);

    let mut report = WarmReport::default();
    let mut recorded = 0u64;
    let mut successes = 0u64;
    let mut pg_before = None;
    let mut top_calls = 0u64;
    for &concurrency in &args.concurrency {
        api.login(&creds.email, &creds.password).await?;
        eprintln!(
            "warm, concurrency {concurrency}: warm-up (at least {warmup:?}, then until no call starts a container for 1 s)"
        );
        let warmed = load::platform(
            api,
            &url,
            concurrency,
            Window {
                min: warmup,
                max: Duration::from_secs(180),
                quiet: Some(Duration::from_secs(1)),
                max_requests: u64::MAX,
            },
        )
        .await;
        recorded += warmed.recorded;
        successes += warmed.samples.len() as u64;
        eprintln!(
            "  {} calls, {} started a container{}",
            warmed.samples.len(),
            warmed.cold_starts,
            failures_suffix(&warmed.failure_text())
        );
        if concurrency == top
            && let Some(pg) = &args.pg_url
        {
            // PostgreSQL publishes a backend's counters within about a second of its last
            // transaction.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            pg_before = Some(pg_stats(pg)?);
        }

        eprintln!("warm, concurrency {concurrency}: platform window ({seconds:?})");
        let measured = load::platform(
            api,
            &url,
            concurrency,
            Window::fixed(seconds, args.max_requests),
        )
        .await;
        recorded += measured.recorded;
        successes += measured.samples.len() as u64;
        if concurrency == top {
            top_calls = measured.recorded;
        }

        // The same calls signed with an API key (v1) right after, on the same warm instances:
        // the difference is what the signature check costs (key cache, HMAC, nonce insert).
        eprintln!("warm, concurrency {concurrency}: signed window ({seconds:?})");
        let (key_id, secret) = api.generate_key(&function).await?;
        let signed_api = api.signed(signing::Signer::new(
            key_id,
            signing::ApiKeySecret::from_text(secret),
        ));
        // A short unmeasured warm-up: the key's first call decrypts it into the cache.
        let signed_warmup = load::platform(
            &signed_api,
            &url,
            concurrency,
            Window::fixed(warmup.min(Duration::from_secs(1)), args.max_requests),
        )
        .await;
        let signed = load::platform(
            &signed_api,
            &url,
            concurrency,
            Window::fixed(seconds, args.max_requests),
        )
        .await;
        recorded += signed_warmup.recorded + signed.recorded;
        if concurrency == top {
            top_calls += signed_warmup.recorded + signed.recorded;
        }
        successes += (signed_warmup.samples.len() + signed.samples.len()) as u64;

        let running = instances::running(podman, &function).await?;
        let chosen: Vec<_> = running.iter().take(concurrency).cloned().collect();
        let sockets: Vec<PathBuf> = chosen
            .iter()
            .map(|f| f.socket(&args.warm_socket_root))
            .collect();
        eprintln!(
            "warm, concurrency {concurrency}: direct window on {} runner socket(s) of the same instances ({} running)",
            sockets.len(),
            running.len()
        );
        let direct = {
            let (sockets, template, max) = (sockets.clone(), template.clone(), args.max_requests);
            tokio::task::spawn_blocking(move || {
                load::direct(
                    &sockets,
                    &template,
                    warmup.min(Duration::from_secs(1)),
                    seconds,
                    max,
                )
            })
            .await
            .context("the direct load thread")??
        };
        report.rows.push(WarmRow {
            concurrency,
            platform: measured.samples.summary(),
            signed: signed.samples.summary(),
            signed_failures: signed.failure_text(),
            platform_failures: measured.failure_text(),
            warmup_failures: warmed.failure_text(),
            direct: direct.summary(),
            sockets: sockets.len(),
        });

        if concurrency == 1
            && let (Some(instance), Some(socket)) = (chosen.first(), sockets.first())
        {
            eprintln!(
                "warm: unpause baseline ({} × REST pause, then timed REST unpause + the request on the socket)",
                args.runs
            );
            report.unpause_baseline =
                Some(unpause_baseline(podman, &instance.name, socket, &template, args.runs).await?);
            // What an idle call pays besides the unpause: the same call after 1.5 s without
            // calls (the function's cached deployment and tier have expired, the instance runs).
            eprintln!(
                "warm: {} calls each after 1.5 s idle (cached function expired)",
                args.runs
            );
            let mut idle = Samples::new();
            for _ in 0..args.runs {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let t0 = Instant::now();
                let invoked = api.invoke(&url).await?;
                let latency = t0.elapsed();
                recorded += u64::from(invoked.recorded);
                if invoked.status == 200 && invoked.ok {
                    successes += 1;
                    idle.push(latency);
                } else {
                    idle.errors += 1;
                }
            }
            report.idle_call = Some(idle);
        }
    }

    // Persistence: every answered call must become one execution row.
    api.login(&creds.email, &creds.password).await?;
    let waited = Instant::now();
    let timeout = Duration::from_secs(args.persist_timeout_secs);
    let mut total = api.executions_total(&function).await?;
    while u64::try_from(total).unwrap_or(0) < recorded && waited.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(100)).await;
        total = api.executions_total(&function).await?;
    }
    let caught_up = waited.elapsed();
    report.persistence.push(format!(
        "executions recorded: {total} of {recorded} answered calls ({successes} successful) on the warm function, \
         over all its warm-ups and windows; {}",
        if u64::try_from(total).unwrap_or(0) == recorded {
            format!("the writer had caught up {} ms after the last call", caught_up.as_millis())
        } else {
            format!("MISMATCH after waiting {} ms", caught_up.as_millis())
        }
    ));
    if let (Some(pg), Some(before)) = (&args.pg_url, pg_before) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = pg_stats(pg)?;
        let calls = top_calls.max(1) as f64;
        report.persistence.push(format!(
            "PostgreSQL (bench database), from before the concurrency-{top} windows (bearer, then signed) until the writer caught up: \
             {} transactions ({:.3} per call), {} rows inserted ({:.2} per call), {} rows read ({:.2} per call)",
            after.0 - before.0,
            (after.0 - before.0) as f64 / calls,
            after.1 - before.1,
            (after.1 - before.1) as f64 / calls,
            after.2 - before.2,
            (after.2 - before.2) as f64 / calls,
        ));
    }
    Ok(report)
}

/// `runs` × (REST pause, untimed; REST unpause and one exchange on the socket, timed) on an
/// instance cloud-api is not using; it is left running.
async fn unpause_baseline(
    podman: &Podman,
    name: &str,
    socket: &PathBuf,
    template: &runner::protocol::InvokeRequest,
    runs: usize,
) -> Result<Samples> {
    // One connection, opened before the pause and kept, as cloud-api keeps its own.
    let mut client = load::connect(socket)?;
    load::exchange(&mut client, template)?;
    let mut samples = Samples::new();
    for _ in 0..runs {
        podman.pause_container(name).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        podman.unpause_container(name).await?;
        load::exchange(&mut client, template)?;
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

async fn cold_phase(
    args: &Args,
    podman: &Podman,
    api: &mut Api,
    creds: &Credentials,
    archive: Vec<u8>,
) -> Result<cold::ColdRun> {
    if args.runs == 0 {
        bail!("--runs must be positive");
    }
    eprintln!("cold: deploying {} fresh functions (not timed)", args.runs);
    let mut functions = Vec::new();
    for round in 0..args.runs {
        api.login(&creds.email, &creds.password).await?;
        let id = api
            .init_function(&format!("bench-cold-{}-{round}", creds.nonce))
            .await?;
        api.deploy(&id, archive.clone()).await?;
        functions.push(id);
    }
    // One raw run first, not counted: the podman binary and the image's files in the page cache,
    // as the platform's first round finds its own (its base layers are the same).
    let image = instances::image(podman, &functions[0]).await?;
    cold::raw_run(&args.podman_socket, &image, false)?;

    eprintln!(
        "cold: {} rounds (first call, raw podman runs, unpause path, pre-created path)",
        args.runs
    );
    let mut run = cold::ColdRun::default();
    let settings = cold::Settings {
        podman_socket: &args.podman_socket,
        state_timeout: Duration::from_secs(60),
    };
    for (round, function) in functions.iter().enumerate() {
        // A round lasts well under the token's 5 minutes.
        api.login(&creds.email, &creds.password).await?;
        cold::round(
            api,
            podman,
            &settings,
            function,
            (round, functions.len()),
            &mut run,
        )
        .await?;
    }
    Ok(run)
}

fn print_report(
    args: &Args,
    warm: &WarmReport,
    cold: Option<&cold::ColdRun>,
    load_before: &str,
    took: Duration,
) {
    let mut table = Table::new();
    for row in &warm.rows {
        table.section(&format!(
            "Warm invoke, concurrency {} ({} s window each, trivial python function)",
            row.concurrency, args.seconds
        ));
        table.row(
            &format!(
                "platform: POST /api/functions/:id/invoke (c={})",
                row.concurrency
            ),
            &row.platform,
        );
        table.row(
            &format!(
                "baseline: same request on the runner socket ({} conn.)",
                row.sockets
            ),
            &row.direct,
        );
        table.compare(&row.platform, &row.direct);
        table.row(
            &format!(
                "platform: same call signed with an API key, v1 (c={})",
                row.concurrency
            ),
            &row.signed,
        );
        table.row(
            &format!(
                "baseline: the unsigned (bearer) call above (c={})",
                row.concurrency
            ),
            &row.platform,
        );
        table.compare(&row.signed, &row.platform);
        table.note(&format!(
            "signature check: {:+.3} ms at p50, {:+.3} ms at p99 over the unsigned warm path",
            millis(row.signed.p50) - millis(row.platform.p50),
            millis(row.signed.p99) - millis(row.platform.p99),
        ));
        if !row.signed_failures.is_empty() {
            table.note(&format!("signed window failures: {}", row.signed_failures));
        }
        if !row.platform_failures.is_empty() {
            table.note(&format!(
                "platform window failures: {}",
                row.platform_failures
            ));
        }
        if !row.warmup_failures.is_empty() {
            table.note(&format!(
                "(warm-up failures, not measured: {})",
                row.warmup_failures
            ));
        }
    }
    for line in &warm.persistence {
        table.note(line);
    }

    if let Some(cold) = cold {
        let n = cold.first.len();
        table.section(&format!(
            "Cold invoke (no running instance), {n} fresh functions; p50 = median, p99 = the largest of {n}"
        ));
        let raw = cold.raw.summary();
        table.row(
            "platform: first call of a fresh deployment (create+start)",
            &cold.first.summary(),
        );
        table.row(
            "baseline: podman run --rm --network none, same image+work",
            &raw,
        );
        table.compare(&cold.first.summary(), &raw);
        table.row(
            "platform: call with only a pre-created instance (start)",
            &cold.precreated.summary(),
        );
        table.row(
            "baseline: podman run --rm --network none, same image+work",
            &raw,
        );
        table.compare(&cold.precreated.summary(), &raw);
        table.row(
            "reference: podman run as above + the platform's restrictions",
            &cold.raw_restricted.summary(),
        );
        table.section("Unpause path (an idle instance paused by the pool)");
        table.row(
            "platform: call with only a paused instance",
            &cold.unpaused.summary(),
        );
        if let Some(baseline) = &warm.unpause_baseline {
            table.row(
                "baseline: REST unpause + the request on the runner socket",
                &baseline.summary(),
            );
            table.compare(&cold.unpaused.summary(), &baseline.summary());
        }
        if let Some(idle) = &warm.idle_call {
            table.row(
                "reference: warm call after 1.5 s idle (no unpause)",
                &idle.summary(),
            );
        }
        for line in &cold.misclassified {
            table.note(&format!("note: {line}"));
        }
    }

    println!();
    println!(
        "Invoke benchmark: {} cores; load average {} at the start, {} at the end; {:.0} s in all",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_before,
        loadavg(),
        took.as_secs_f64()
    );
    println!(
        "latency = client-side wall time of one call (HTTP: request sent to body read; direct: frame written to frame read)"
    );
    print!("{}", table.render());
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The trivial function as a tar.gz archive.
fn archive() -> Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_size(MAIN_PY.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, "main.py", MAIN_PY.as_bytes())?;
    Ok(builder.into_inner()?.finish()?)
}

/// A token unique to this run (names, e-mail).
fn nonce() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{:x}{:x}", micros & 0xffff_ffff_ffff, std::process::id())
}

/// The 1-, 5- and 15-minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// PostgreSQL's counters of the database at `url`: transactions (committed + rolled back), rows
/// inserted, rows read (fetched).
fn pg_stats(url: &str) -> Result<(i64, i64, i64)> {
    let output = Command::new("psql")
        .args([url, "-qtAX", "-F", " ", "-c"])
        .arg(
            "SELECT xact_commit + xact_rollback, tup_inserted, tup_fetched \
             FROM pg_stat_database WHERE datname = current_database()",
        )
        .output()
        .context("running psql")?;
    if !output.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<i64> = text
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [xacts, inserted, fetched] => Ok((xacts, inserted, fetched)),
        _ => bail!("unexpected psql output: {text}"),
    }
}

fn failures_suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("; failures: {text}")
    }
}
