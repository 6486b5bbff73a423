//! Background work of cloud-api: builds, deletions and the retention of execution records. Each worker takes its jobs from
//! PostgreSQL (so any replica can do any job, and a restart loses none) and stops when the
//! shutdown signal fires.

pub mod build;
pub mod deletion;
pub mod instances;
pub mod nonces;
pub mod retention;

/// This replica's name in job claims: the host name and the port, stable across restarts so a
/// restarted replica recognises the jobs its previous life had claimed.
pub fn instance_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{port}")
}
