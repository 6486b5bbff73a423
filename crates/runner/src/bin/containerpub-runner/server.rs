//! The socket server: accepts connections, reads request frames, runs one invocation at a time
//! and rejects a concurrent one.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use nix::sys::prctl::set_child_subreaper;
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::Pid;
use runner::protocol::{FrameError, InvokeRequest, InvokeResponse, read_frame, write_frame};

use crate::cli::Config;
use crate::engine::Engine;

struct Shared {
    /// Set while an accepted invocation has not been answered.
    busy: AtomicBool,
    engine: Mutex<Engine>,
}

/// Clears the busy flag when dropped (also if the invocation panics).
struct BusyGuard<'a>(&'a AtomicBool);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Runs the runner until it is killed or receives SIGTERM, SIGINT or SIGHUP.
///
/// # Errors
/// When the engine cannot be prepared or the socket cannot be bound.
pub fn run(config: &Config) -> Result<(), String> {
    // Orphaned descendants of functions come to the runner (it is PID 1 in a container anyway)
    // so that it can kill and reap them.
    let _ = set_child_subreaper(true);

    // Termination signals are taken by a dedicated thread; the mask is inherited by every thread
    // started below, and reset by std in spawned children.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block termination signals: {e}"))?;

    fs::create_dir_all(&config.workdir_root)
        .map_err(|e| format!("cannot create {}: {e}", config.workdir_root.display()))?;
    let interpreter_group = Arc::new(AtomicI32::new(0));
    let engine = Engine::new(config, interpreter_group.clone())?;
    let listener = bind(&config.socket, config.socket_mode)?;

    let socket = config.socket.clone();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(signal) = signals.wait() {
                eprintln!("containerpub-runner: {signal}, stopping");
            }
            let group = interpreter_group.load(Ordering::SeqCst);
            if group > 0 {
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            }
            let _ = fs::remove_file(&socket);
            std::process::exit(0);
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;

    eprintln!(
        "containerpub-runner: listening on {}",
        config.socket.display()
    );
    let shared = Arc::new(Shared {
        busy: AtomicBool::new(false),
        engine: Mutex::new(engine),
    });
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let shared = shared.clone();
                let spawned = thread::Builder::new()
                    .name("connection".into())
                    .spawn(move || serve_connection(stream, &shared));
                if let Err(e) = spawned {
                    eprintln!("containerpub-runner: cannot start a connection thread: {e}");
                }
            }
            Err(e) => {
                eprintln!("containerpub-runner: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(())
}

fn bind(path: &Path, mode: u32) -> Result<UnixListener, String> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
        }
        Ok(_) => return Err(format!("{} exists and is not a socket", path.display())),
        Err(_) => {}
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the permissions of {}: {e}", path.display()))?;
    Ok(listener)
}

fn serve_connection(mut stream: UnixStream, shared: &Shared) {
    loop {
        let request: InvokeRequest = match read_frame(&mut stream) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(FrameError::Json(e)) => {
                let response = InvokeResponse::rejected(
                    "",
                    format!("the request is not a valid invocation: {e}"),
                );
                if write_frame(&mut stream, &response).is_err() {
                    return;
                }
                continue;
            }
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                eprintln!("containerpub-runner: dropping a connection: {e}");
                return;
            }
        };
        if shared
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            let response = InvokeResponse::rejected(
                &request.invocation_id,
                "busy: another invocation is in progress on this instance",
            );
            if write_frame(&mut stream, &response).is_err() {
                return;
            }
            continue;
        }
        // The engine stays locked until the clean-up is done, so the next invocation (accepted as
        // soon as this one is answered) waits for it rather than being rejected.
        let mut engine = shared.engine.lock().unwrap_or_else(PoisonError::into_inner);
        let (response, cleanup) = {
            let _busy = BusyGuard(&shared.busy);
            engine.invoke(&request)
        };
        let sent = write_frame(&mut stream, &response);
        engine.finish(cleanup);
        drop(engine);
        if let Err(e) = sent {
            eprintln!(
                "containerpub-runner: cannot send the response of {}: {e}",
                request.invocation_id
            );
            return;
        }
    }
}
