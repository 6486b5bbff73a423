//! Small operating-system helpers: children of this process, killing a process tree, cgroup
//! counters, `/proc` readings. All through `nix` or plain files, no `unsafe`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};

/// Reads a small kernel-generated file (`/proc`, cgroup) with one buffer and few system calls
/// (`fs::read_to_string` sizes its buffer from the file's length, which these files report as 0,
/// and grows it read after read). Files over 16 KiB are cut.
pub fn read_small(path: impl AsRef<Path>) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let mut buf = [0u8; 16 * 1024];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(buf[..len].to_vec()).ok()
}

/// The pids of this process's children (every thread's), from `/proc/self/task/*/children`,
/// or from a scan of `/proc/*/stat` when that file is not available.
pub fn children() -> Vec<Pid> {
    let mut out = Vec::new();
    let mut found_children_file = false;
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Some(list) = read_small(task.path().join("children")) {
                found_children_file = true;
                out.extend(
                    list.split_ascii_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .map(Pid::from_raw),
                );
            }
        }
    }
    if !found_children_file {
        out = scan_children(getpid());
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn scan_children(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            read_small(format!("/proc/{pid}/stat"))
                .and_then(|stat| stat_field(&stat, 1)?.parse::<i32>().ok())
                == Some(parent.as_raw())
        })
        .map(Pid::from_raw)
        .collect()
}

/// Field `index` after the command name of a `/proc/<pid>/stat` line (0 = state, 1 = ppid, …).
pub fn stat_field(stat: &str, index: usize) -> Option<&str> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_ascii_whitespace().nth(index)
}

/// SIGKILLs `pid` and, in case it leads one, its process group. Errors (already gone) are ignored.
pub fn kill_tree_root(pid: Pid) {
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = kill(pid, Signal::SIGKILL);
}

/// Kills and reaps every child of this process, and every process that is reparented to it while
/// this runs (this process is a child subreaper, so orphaned descendants come here), until it has
/// no children left or `budget` has passed. Returns whether it got to no children at all.
///
/// Only for a process whose children are all to be killed (the shim).
pub fn kill_and_reap_all_children(budget: Duration) -> bool {
    let deadline = Instant::now() + budget;
    loop {
        match waitpid(
            None::<Pid>,
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Err(Errno::ECHILD) => return true,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
            Ok(WaitStatus::StillAlive) => {
                let alive = children();
                for pid in &alive {
                    kill_tree_root(*pid);
                }
                if Instant::now() >= deadline {
                    return false;
                }
                if alive.is_empty() {
                    thread::sleep(Duration::from_micros(200));
                }
            }
            Ok(_) => {}
        }
    }
}

/// Kills and reaps every child of the runner (call it when none is expected: between
/// invocations, with no interpreter running): orphans reparented to it (it is a subreaper, or
/// PID 1), again and again as their own children are reparented in turn, for at most `budget`.
pub fn kill_orphans(budget: Duration) {
    let deadline = Instant::now() + budget;
    loop {
        let orphans = children();
        if orphans.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in &orphans {
            kill_tree_root(*pid);
        }
        for pid in orphans {
            while let Err(Errno::EINTR) = waitpid(pid, Some(WaitPidFlag::__WALL)) {}
        }
    }
}

/// The counter of out-of-memory kills of the cgroup this process is in (the file is kept open and
/// re-read from its start).
#[derive(Debug, Default)]
pub struct OomCounter {
    file: Option<File>,
}

impl OomCounter {
    /// Finds `memory.events` (cgroup v2) or `memory.oom_control` (v1) of this process's cgroup,
    /// keeping the first one that can be read and holds an `oom_kill` line.
    pub fn discover() -> Self {
        let file = memory_cgroup_files("memory.oom_control", "memory.events")
            .into_iter()
            .filter_map(|path| File::open(path).ok())
            .find(|file| read_oom_kills(file).is_some());
        Self { file }
    }

    /// Whether the counter could be found.
    pub fn available(&self) -> bool {
        self.file.is_some()
    }

    /// The current number of OOM kills, when readable.
    pub fn read(&self) -> Option<u64> {
        read_oom_kills(self.file.as_ref()?)
    }
}

fn read_oom_kills(file: &File) -> Option<u64> {
    let text = read_from_start(file)?;
    text.lines()
        .find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
}

/// The memory limit of this process's cgroup, when set and readable.
pub fn memory_limit_bytes() -> Option<u64> {
    memory_cgroup_files("memory.limit_in_bytes", "memory.max")
        .into_iter()
        .find_map(|path| read_small(path)?.trim().parse::<u64>().ok())
        // cgroup v1 reports "no limit" as a number close to i64::MAX; v2 says "max" (no parse).
        .filter(|limit| *limit < 1 << 60)
}

/// Candidate paths of a memory-controller file of this process's cgroup, `v1` under a cgroup v1
/// memory hierarchy and `v2` under the unified one: its own directory first (as
/// `/proc/self/cgroup` names it), then the mount's root (what a container with its own cgroup
/// namespace sees).
fn memory_cgroup_files(v1: &str, v2: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let membership = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hierarchy), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        let (root, name) = if controllers.split(',').any(|c| c == "memory") {
            (Path::new("/sys/fs/cgroup/memory"), v1)
        } else if hierarchy == "0" && controllers.is_empty() {
            (Path::new("/sys/fs/cgroup"), v2)
        } else {
            continue;
        };
        out.push(root.join(relative).join(name));
        out.push(root.join(name));
    }
    out
}

/// Readings of one long-lived process (the persistent interpreter) through `/proc` files opened
/// once: its peak RSS, resettable, and its CPU time.
#[derive(Debug)]
pub struct ProcWatch {
    stat: Option<File>,
    status: Option<File>,
    clear_refs: Option<File>,
}

impl ProcWatch {
    /// Opens the files of `pid` (those that cannot be opened give no reading).
    pub fn open(pid: Pid) -> Self {
        Self {
            stat: File::open(format!("/proc/{pid}/stat")).ok(),
            status: File::open(format!("/proc/{pid}/status")).ok(),
            clear_refs: fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{pid}/clear_refs"))
                .ok(),
        }
    }

    /// Resets the resident-set high-water mark (`clear_refs` value 5); false when it cannot.
    pub fn reset_peak_rss(&mut self) -> bool {
        self.clear_refs
            .as_mut()
            .is_some_and(|f| f.write_all(b"5").is_ok())
    }

    /// The resident-set high-water mark (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = read_from_start(self.status.as_ref()?)?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// User + system CPU time (all threads) so far, in milliseconds.
    pub fn cpu_time_ms(&self) -> Option<u64> {
        let stat = read_from_start(self.stat.as_ref()?)?;
        let utime: u64 = stat_field(&stat, 11)?.parse().ok()?;
        let stime: u64 = stat_field(&stat, 12)?.parse().ok()?;
        // /proc reports clock ticks of USER_HZ, which Linux fixes at 100 on every architecture
        // the runner is built for.
        Some((utime + stime) * 10)
    }
}

/// Reads a kernel-generated file that is kept open, from offset 0 (`pread`), into one buffer.
fn read_from_start(file: &File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 8 * 1024];
    let mut len = 0;
    while len < buf.len() {
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(buf[..len].to_vec()).ok()
}

/// Removes `path` (a file, a link or a whole tree), also when the function took the write or
/// search permission off some of its directories. A missing path is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_dirs_writable(path);
            match fs::remove_dir_all(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
        Ok(()) => Ok(()),
    }
}

fn make_dirs_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            make_dirs_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_skip_a_command_name_with_spaces_and_parens() {
        let stat = "42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 15 3 0 0";
        assert_eq!(stat_field(stat, 0), Some("S"));
        assert_eq!(stat_field(stat, 1), Some("7"));
        assert_eq!(stat_field(stat, 11), Some("15"));
        assert_eq!(stat_field(stat, 12), Some("3"));
    }

    #[test]
    fn this_process_has_a_readable_peak_rss_and_cpu_time() {
        let mut watch = ProcWatch::open(getpid());
        assert!(watch.peak_rss_bytes().is_some_and(|b| b > 0));
        assert!(watch.cpu_time_ms().is_some());
        assert!(watch.reset_peak_rss());
        // Read again from the start of the same open file.
        assert!(watch.peak_rss_bytes().is_some_and(|b| b > 0));
    }
}
