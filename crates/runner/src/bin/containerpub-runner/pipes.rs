//! Reading a child's pipes with `poll`: capped capture buffers and line buffers.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Size of one read from a pipe.
pub const CHUNK: usize = 64 * 1024;

/// Captured output: the first `cap` bytes are kept, the rest is read and dropped.
#[derive(Debug)]
pub struct Capped {
    buf: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capped {
    /// An empty capture keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            cap,
            truncated: false,
        }
    }

    /// Appends `bytes`, dropping what goes over the cap.
    pub fn push(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Whether anything was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The kept bytes as text (invalid UTF-8, such as a character cut by the cap, replaced).
    pub fn into_string(self) -> String {
        match String::from_utf8(self.buf) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// Bytes read until a newline, up to a maximum length.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
}

impl LineBuffer {
    /// Appends `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the first complete line out of the buffer (without its newline).
    pub fn take_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        Some(line)
    }

    /// Bytes buffered without a newline yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything buffered.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// The outcome of one read from a pipe that `poll` reported ready.
pub enum Read1 {
    /// Bytes were read into the scratch buffer.
    Data(usize),
    /// The writers are all gone.
    Eof,
    /// Nothing to read after all (spurious wake-up or `EINTR`).
    Nothing,
}

/// Reads once from `reader` into `scratch`. Safe to call on a blocking descriptor that `poll`
/// reported readable: a pipe read returns what is there without waiting for more.
pub fn read_once(reader: &mut impl Read, scratch: &mut [u8]) -> io::Result<Read1> {
    match reader.read(scratch) {
        Ok(0) => Ok(Read1::Eof),
        Ok(n) => Ok(Read1::Data(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) =>
        {
            Ok(Read1::Nothing)
        }
        Err(e) => Err(e),
    }
}

/// Sets `O_NONBLOCK` on a descriptor (for the pipe the persistent mode writes requests into).
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map(drop)
        .map_err(io::Error::from)
}

/// Waits until one of `fds` is ready or `deadline` passes (never longer than `max_wait`).
/// `EINTR` counts as a wake-up. Returns `false` when the deadline had already passed.
pub fn wait_ready(
    fds: &mut [PollFd<'_>],
    deadline: Instant,
    max_wait: Duration,
) -> io::Result<bool> {
    let now = Instant::now();
    if now >= deadline {
        return Ok(false);
    }
    // Round up, so that a wait of less than a millisecond does not turn into a busy loop.
    let wait = (deadline - now).min(max_wait);
    let millis = wait.as_micros().div_ceil(1000);
    let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
    match poll(fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// A poll entry for reading from `fd`.
pub fn readable(fd: BorrowedFd<'_>) -> PollFd<'_> {
    PollFd::new(fd, PollFlags::POLLIN)
}

/// A poll entry for writing to `fd`.
pub fn writable(fd: BorrowedFd<'_>) -> PollFd<'_> {
    PollFd::new(fd, PollFlags::POLLOUT)
}

/// Whether `poll` reported anything (data, hang-up or error) for this entry.
pub fn is_ready(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_keeps_the_first_bytes_and_flags_the_rest() {
        let mut capped = Capped::new(5);
        capped.push(b"abc");
        assert!(!capped.truncated());
        capped.push(b"defgh");
        capped.push(b"ij");
        assert!(capped.truncated());
        assert_eq!(capped.into_string(), "abcde");

        let mut cut = Capped::new(2);
        cut.push("é!".as_bytes());
        assert_eq!(cut.into_string(), "é");
        let mut cut_inside = Capped::new(1);
        cut_inside.push("é".as_bytes());
        assert_eq!(cut_inside.into_string(), "\u{FFFD}");
    }

    #[test]
    fn lines_come_out_whole() {
        let mut lines = LineBuffer::default();
        lines.push(b"one\ntw");
        assert_eq!(lines.take_line().as_deref(), Some(&b"one"[..]));
        assert_eq!(lines.take_line(), None);
        lines.push(b"o\n");
        assert_eq!(lines.take_line().as_deref(), Some(&b"two"[..]));
        assert_eq!(lines.pending(), 0);
    }
}
