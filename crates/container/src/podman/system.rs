//! Ping, version and what this Podman can enforce (issue 4 item 7: rootless detection).

use super::Podman;
use super::http::with_timeout;
use crate::error::{Error, Resource, Result};

/// Podman's version and the libpod API version it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Podman's version, e.g. `4.3.1`.
    pub version: String,
    /// The libpod API version, e.g. `4.3.1`.
    pub api_version: String,
}

/// The cgroup version of the host as Podman sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1 (also hybrid hosts, whose controllers are on v1 hierarchies).
    V1,
    /// The unified cgroup v2 hierarchy.
    V2,
    /// Anything else Podman reports.
    Other(String),
}

/// Which resource limits containers created through this Podman actually get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSupport {
    /// Memory and swap limits (`memory` controller).
    pub memory: bool,
    /// CPU quota (`cpu` controller).
    pub cpu: bool,
    /// Process count limit (`pids` controller).
    pub pids: bool,
}

impl LimitSupport {
    /// Whether memory, CPU and pids limits are all enforced.
    pub fn all(&self) -> bool {
        self.memory && self.cpu && self.pids
    }
}

/// What the Podman service runs as and can enforce, read from `GET /libpod/info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Podman's version and API version.
    pub version: Version,
    /// Whether the service runs rootless (as an unprivileged user).
    pub rootless: bool,
    /// The host's cgroup version.
    pub cgroup_version: CgroupVersion,
    /// `cgroupfs` or `systemd`.
    pub cgroup_manager: String,
    /// The cgroup controllers available to the service's containers.
    pub cgroup_controllers: Vec<String>,
    /// The OCI runtime in use (`crun`, `runc`).
    pub oci_runtime: String,
    /// The storage driver (`overlay`, `vfs`).
    pub graph_driver: String,
    /// Which limits are enforced.
    pub limits: LimitSupport,
}

impl Capabilities {
    /// Derives the limit support from what Podman reports. Rootless Podman on cgroup v1 ignores
    /// every resource limit (it says so in a create warning); otherwise a limit is enforced when its
    /// controller is available (on cgroup v2 rootless, when it is delegated to the user).
    fn from_info(info: podman_api::models::Info) -> Result<Self> {
        let missing = |field: &str| Error::Protocol {
            operation: "read info",
            reason: format!("no {field} in the answer"),
        };
        let host = info.host.ok_or_else(|| missing("host"))?;
        let version = info.version.ok_or_else(|| missing("version"))?;
        let rootless = host
            .security
            .and_then(|s| s.rootless)
            .ok_or_else(|| missing("host.security.rootless"))?;
        let cgroup_version = match host.cgroup_version.as_deref() {
            Some("v1") => CgroupVersion::V1,
            Some("v2") => CgroupVersion::V2,
            other => CgroupVersion::Other(other.unwrap_or_default().to_owned()),
        };
        let cgroup_controllers = host.cgroup_controllers.unwrap_or_default();
        let usable = !(rootless && cgroup_version != CgroupVersion::V2);
        let has = |c: &str| usable && cgroup_controllers.iter().any(|x| x == c);
        let limits = LimitSupport {
            memory: has("memory"),
            cpu: has("cpu"),
            pids: has("pids"),
        };
        Ok(Self {
            version: Version {
                version: version.version.unwrap_or_default(),
                api_version: version.api_version.unwrap_or_default(),
            },
            rootless,
            cgroup_version,
            cgroup_manager: host.cgroup_manager.unwrap_or_default(),
            cgroup_controllers,
            oci_runtime: host.oci_runtime.and_then(|r| r.name).unwrap_or_default(),
            graph_driver: info
                .store
                .and_then(|s| s.graph_driver_name)
                .unwrap_or_default(),
            limits,
        })
    }

    /// Why limits are not (all) enforced, or `None` when they are.
    pub fn unenforced_reason(&self) -> Option<String> {
        if self.limits.all() {
            return None;
        }
        let missing: Vec<&str> = [
            ("memory", self.limits.memory),
            ("cpu", self.limits.cpu),
            ("pids", self.limits.pids),
        ]
        .into_iter()
        .filter_map(|(name, enforced)| (!enforced).then_some(name))
        .collect();
        let mode = if self.rootless { "rootless" } else { "rootful" };
        let cgroups = match &self.cgroup_version {
            CgroupVersion::V1 => "cgroup v1".to_owned(),
            CgroupVersion::V2 => "cgroup v2".to_owned(),
            CgroupVersion::Other(v) => format!("cgroup version {v:?}"),
        };
        let why = if self.rootless && self.cgroup_version != CgroupVersion::V2 {
            "rootless Podman cannot set limits on cgroup v1: run it rootful, or on a cgroup v2 host"
                .to_owned()
        } else {
            format!(
                "controllers available: {}",
                self.cgroup_controllers.join(",")
            )
        };
        Some(format!(
            "{} not enforced ({mode} Podman on {cgroups}; {why})",
            missing.join(", ")
        ))
    }

    /// Applies the `allow_unenforced_limits` setting: `Ok` when every limit is enforced or the
    /// setting allows running without them (the caller should then log
    /// [`Capabilities::unenforced_reason`] as a warning).
    ///
    /// # Errors
    /// [`Error::LimitsNotEnforced`] when a limit is not enforced and `allow_unenforced` is false.
    pub fn check_limits(&self, allow_unenforced: bool) -> Result<()> {
        match self.unenforced_reason() {
            Some(reason) if !allow_unenforced => Err(Error::LimitsNotEnforced { reason }),
            _ => Ok(()),
        }
    }
}

impl Podman {
    /// Checks that the service answers (`GET /libpod/_ping`).
    ///
    /// # Errors
    /// [`Error::Unreachable`] when nothing answers on the socket.
    pub async fn ping(&self) -> Result<()> {
        let op = "ping";
        with_timeout(op, self.request_timeout(), async {
            self.api
                .ping()
                .await
                .map(drop)
                .map_err(|e| self.api_error(op, Resource::Container, "-", e))
        })
        .await
    }

    /// Podman's version (`GET /libpod/version`) and its libpod API version (the
    /// `Libpod-Api-Version` header of `_ping`: the version document's `ApiVersion` is the
    /// Docker-compatible one, 1.41).
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`].
    pub async fn version(&self) -> Result<Version> {
        let op = "read version";
        with_timeout(op, self.request_timeout(), async {
            let map = |e| self.api_error(op, Resource::Container, "-", e);
            let ping = self.api.ping().await.map_err(map)?;
            let version = self.api.version().await.map_err(map)?;
            Ok(Version {
                version: version.version.unwrap_or_default(),
                api_version: ping.libpod_api_version,
            })
        })
        .await
    }

    /// What the service runs as and which limits it enforces (`GET /libpod/info`, ~0.3 s).
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Api`], [`Error::Protocol`], [`Error::Timeout`].
    pub async fn capabilities(&self) -> Result<Capabilities> {
        let op = "read info";
        let info = with_timeout(op, self.request_timeout(), async {
            self.api
                .info()
                .await
                .map_err(|e| self.api_error(op, Resource::Container, "-", e))
        })
        .await?;
        Capabilities::from_info(info)
    }

    /// Reads [`Podman::capabilities`] and applies this client's `allow_unenforced_limits`.
    /// The service calls it at start-up and refuses to run functions when it fails.
    ///
    /// # Errors
    /// [`Error::LimitsNotEnforced`], or the errors of [`Podman::capabilities`].
    pub async fn check_limits(&self) -> Result<Capabilities> {
        let capabilities = self.capabilities().await?;
        capabilities.check_limits(self.config.allow_unenforced_limits)?;
        Ok(capabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(rootless: bool, cgroup: &str, controllers: &[&str]) -> podman_api::models::Info {
        let json = serde_json::json!({
            "host": {
                "security": { "rootless": rootless },
                "cgroupVersion": cgroup,
                "cgroupManager": "cgroupfs",
                "cgroupControllers": controllers,
                "ociRuntime": { "name": "crun" },
            },
            "store": { "graphDriverName": "overlay" },
            "version": { "Version": "4.3.1", "APIVersion": "4.3.1" },
        });
        serde_json::from_value(json).expect("valid info")
    }

    const V1_CONTROLLERS: &[&str] = &[
        "cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "hugetlb", "pids",
    ];

    #[test]
    fn rootful_cgroup_v1_enforces_every_limit() {
        let caps = Capabilities::from_info(info(false, "v1", V1_CONTROLLERS)).expect("caps");
        assert!(caps.limits.all());
        assert_eq!(caps.unenforced_reason(), None);
        assert!(caps.check_limits(false).is_ok());
        assert_eq!(caps.oci_runtime, "crun");
    }

    #[test]
    fn rootless_cgroup_v1_enforces_nothing_and_is_refused_unless_allowed() {
        let caps = Capabilities::from_info(info(true, "v1", V1_CONTROLLERS)).expect("caps");
        assert_eq!(
            caps.limits,
            LimitSupport {
                memory: false,
                cpu: false,
                pids: false
            }
        );
        let reason = caps.unenforced_reason().expect("a reason");
        assert!(reason.contains("rootless Podman on cgroup v1"), "{reason}");
        assert!(matches!(
            caps.check_limits(false),
            Err(Error::LimitsNotEnforced { .. })
        ));
        assert!(caps.check_limits(true).is_ok());
    }

    #[test]
    fn rootless_cgroup_v2_enforces_what_is_delegated() {
        let all =
            Capabilities::from_info(info(true, "v2", &["cpu", "memory", "pids"])).expect("caps");
        assert!(all.limits.all());
        let partial = Capabilities::from_info(info(true, "v2", &["memory", "pids"])).expect("caps");
        assert_eq!(
            partial.limits,
            LimitSupport {
                memory: true,
                cpu: false,
                pids: true
            }
        );
        assert!(
            partial
                .unenforced_reason()
                .is_some_and(|r| r.starts_with("cpu not enforced"))
        );
    }
}
