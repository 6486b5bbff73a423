//! An allocation over the memory limit is recorded as `oom`. Needs root and a writable cgroup v1
//! memory hierarchy (the project machines have one); skipped with a message otherwise. The
//! container tests of `crates/container` check the same inside Podman.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use runner::protocol::Status;
use serde_json::json;

use crate::harness::{Runner, request, write_script};

struct MemoryCgroup(PathBuf);

impl MemoryCgroup {
    fn create(limit: u64) -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("not root".into());
        }
        let root = Path::new("/sys/fs/cgroup/memory");
        if !root.join("memory.limit_in_bytes").exists() {
            return Err("no cgroup v1 memory hierarchy".into());
        }
        let dir = root.join(format!("containerpub-runner-test-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cgroup = Self(dir);
        fs::write(cgroup.0.join("memory.limit_in_bytes"), limit.to_string())
            .map_err(|e| e.to_string())?;
        let swap = cgroup.0.join("memory.memsw.limit_in_bytes");
        if swap.exists() {
            fs::write(swap, limit.to_string()).map_err(|e| e.to_string())?;
        }
        Ok(cgroup)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        for _ in 0..200 {
            if fs::remove_dir(&self.0).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

#[test]
fn an_allocation_over_the_memory_limit_is_oom() {
    let cgroup = match MemoryCgroup::create(64 * 1024 * 1024) {
        Ok(cgroup) => cgroup,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "bootstrap",
        r#"if grep -q direct request.json; then
  exec python3 -c "b = b'x' * (256 * 1024 * 1024)"
fi
if grep -q child request.json; then
  python3 -c "b = b'x' * (256 * 1024 * 1024)"
  exit $?
fi
printf '{}' > result.json"#,
    );
    {
        let command: Vec<OsString> = vec![script.into_os_string()];
        let runner = Runner::start(dir, "exec", &command, Some(&cgroup.0.join("cgroup.procs")));

        // The function's own process is killed by the kernel.
        let direct = runner.invoke(&request("oom-direct", &json!({"action": "direct"}), 10_000));
        assert_eq!(direct.status, Status::Oom, "{direct:?}");
        assert_eq!(direct.signal, Some(9));
        assert!(
            direct
                .peak_memory_bytes
                .is_some_and(|b| b > 32 * 1024 * 1024),
            "{direct:?}"
        );

        // A process of the function is killed, and the function fails because of it.
        let child = runner.invoke(&request("oom-child", &json!({"action": "child"}), 10_000));
        assert_eq!(child.status, Status::Oom, "{child:?}");
        assert_eq!(child.exit_code, Some(137));

        let fine = runner.invoke(&request("fine", &json!({}), 10_000));
        assert_eq!(fine.status, Status::Success, "{fine:?}");
    }
    drop(cgroup);
}
