//! The resource limits of one function instance, chosen by the service (tier) and passed in.

use std::time::Duration;

use crate::error::{Error, Result};

/// The limits one function container runs under (SPEC §4 "Isolation and limits").
///
/// The container engine enforces memory (with swap disabled), CPU, pids and scratch space through
/// Podman; `timeout` is the per-invocation time budget that the caller enforces (the container
/// engine only carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in bytes; memory + swap is set to the same value, so there is no swap.
    pub memory_bytes: u64,
    /// CPU quota in thousandths of a core (500 = half a core).
    pub cpu_millicores: u32,
    /// Maximum number of processes and threads in the container.
    pub pids: u32,
    /// Size of the writable scratch tmpfs on `/tmp` (and of `/dev/shm`), in bytes.
    pub tmpfs_bytes: u64,
    /// Time budget of one invocation.
    pub timeout: Duration,
}

impl Limits {
    /// The smallest memory limit Podman accepts (6 MiB).
    pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;
    /// The CFS period the CPU quota is expressed in, in microseconds.
    pub const CPU_PERIOD_US: u64 = 100_000;

    /// The CFS quota, in microseconds per [`Self::CPU_PERIOD_US`], for `cpu_millicores`.
    pub fn cpu_quota_us(&self) -> u64 {
        u64::from(self.cpu_millicores) * Self::CPU_PERIOD_US / 1000
    }

    /// Checks that every limit is set and within what Podman accepts.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidSpec {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.memory_bytes < Self::MIN_MEMORY_BYTES {
            return invalid("limits.memory_bytes", "must be at least 6 MiB");
        }
        if i64::try_from(self.memory_bytes).is_err() {
            return invalid("limits.memory_bytes", "is too large");
        }
        if self.cpu_millicores == 0 {
            return invalid("limits.cpu_millicores", "must be positive");
        }
        if self.pids == 0 {
            return invalid("limits.pids", "must be positive");
        }
        if self.tmpfs_bytes == 0 || i64::try_from(self.tmpfs_bytes).is_err() {
            return invalid("limits.tmpfs_bytes", "must be positive and below 2^63");
        }
        if self.timeout.is_zero() {
            return invalid("limits.timeout", "must be positive");
        }
        Ok(())
    }
}

impl Default for Limits {
    /// SPEC §4 defaults: 128 MiB, 0.5 CPU, 64 pids, 5 s; 16 MiB of scratch.
    fn default() -> Self {
        Self {
            memory_bytes: 128 * 1024 * 1024,
            cpu_millicores: 500,
            pids: 64,
            tmpfs_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let limits = Limits::default();
        assert!(limits.validate().is_ok());
        assert_eq!(limits.cpu_quota_us(), 50_000);
        assert_eq!(limits.memory_bytes, 134_217_728);
    }

    #[test]
    fn out_of_range_limits_name_their_field() {
        let cases = [
            (
                Limits {
                    memory_bytes: 1024,
                    ..Limits::default()
                },
                "limits.memory_bytes",
            ),
            (
                Limits {
                    cpu_millicores: 0,
                    ..Limits::default()
                },
                "limits.cpu_millicores",
            ),
            (
                Limits {
                    pids: 0,
                    ..Limits::default()
                },
                "limits.pids",
            ),
            (
                Limits {
                    tmpfs_bytes: 0,
                    ..Limits::default()
                },
                "limits.tmpfs_bytes",
            ),
            (
                Limits {
                    timeout: Duration::ZERO,
                    ..Limits::default()
                },
                "limits.timeout",
            ),
        ];
        for (limits, expected) in cases {
            match limits.validate() {
                Err(Error::InvalidSpec { field, .. }) => assert_eq!(field, expected),
                other => panic!("{expected}: expected InvalidSpec, got {other:?}"),
            }
        }
    }
}
