#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs Podman as a service for ContainerPub: installs Podman and the tools around it from Debian's
# packages, applies the cgroup workaround these machines need, and starts
# `podman system service` on our own socket ($CP_LOCAL/podman/podman.sock) with the containers.conf
# kept in deploy/podman/. The services and the tests reach Podman only through that socket.
# Idempotent: a service that answers is left as it is. pid and log in $CP_LOCAL/podman/.
#   deploy/podman.sh start|stop|status|socket
#
# conmon: deploy/podman/conmon wraps /usr/bin/conmon so that State.OOMKilled works with Podman 4.3
# (see the wrapper). A running service started with other arguments is restarted.
#
# Runtime: crun (faster) unless CP_PODMAN_RUNTIME=runc. crun refuses hybrid cgroups, so when cgroup2
# still holds a controller (/sys/fs/cgroup/unified/cgroup.controllers lists hugetlb) and we are
# root, hugetlb is mounted as a v1 hierarchy (it then stays off cgroup2 until reboot); when that is
# not possible the service runs with runc, which has no such check. See docs/OPERATIONS.md.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

cmd=${1:-start}
PODMAN_DIR=$CP_LOCAL/podman
SOCK=$PODMAN_DIR/podman.sock
PID_FILE=$PODMAN_DIR/podman.pid
LOG_FILE=$PODMAN_DIR/podman.log
RUNTIME_FILE=$PODMAN_DIR/runtime
export CONTAINERS_CONF=$CP_ROOT/deploy/podman/containers.conf
CONMON=$CP_ROOT/deploy/podman/conmon
UNIFIED=/sys/fs/cgroup/unified

pid() { cat "$PID_FILE" 2>/dev/null || true; }
running() {
  local p; p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'system service'
}
# service_args RUNTIME prints the service's command line, one argument a line.
service_args() { printf '%s\n' podman --runtime "$1" --conmon "$CONMON" system service --time=0 "unix://$SOCK"; }
# current_args prints the running service's command line the same way.
current_args() { tr '\0' '\n' <"/proc/$(pid)/cmdline" 2>/dev/null || true; }
stop_running() {
  kill -TERM "$(pid)" 2>/dev/null || true
  for _ in $(seq 1 100); do running || break; sleep 0.1; done
  if running; then kill -KILL "$(pid)" 2>/dev/null || true; fi
}
answers() {
  [ -S "$SOCK" ] && [ "$(curl -sf --max-time 2 --unix-socket "$SOCK" http://d/v4.0.0/libpod/_ping 2>/dev/null)" = OK ]
}
lock() { mkdir -p "$PODMAN_DIR"; exec 8>"$PODMAN_DIR/.lock"; flock -w 60 8 || die "another podman.sh holds $PODMAN_DIR/.lock"; }

# hybrid_cgroups succeeds when a cgroup2 hierarchy holds a controller next to the v1 ones (crun refuses that).
hybrid_cgroups() {
  [ -r "$UNIFIED/cgroup.controllers" ] && [ -n "$(tr -d '[:space:]' <"$UNIFIED/cgroup.controllers")" ]
}

# choose_runtime prints the OCI runtime the service will use, applying the hugetlb workaround for crun.
choose_runtime() {
  local want=${CP_PODMAN_RUNTIME:-crun}
  case "$want" in crun | runc) ;; *) die "CP_PODMAN_RUNTIME must be crun or runc, not '$want'" ;; esac
  if [ "$want" = crun ] && hybrid_cgroups; then
    if grep -qw hugetlb "$UNIFIED/cgroup.controllers" && [ "$(id -u)" -eq 0 ] \
      && ! mountpoint -q /sys/fs/cgroup/hugetlb \
      && mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null; then
      log "hybrid cgroups: mounted hugetlb as a cgroup v1 hierarchy so that crun runs"
    fi
    if hybrid_cgroups; then
      log "hybrid cgroups ($UNIFIED holds: $(tr '\n' ' ' <"$UNIFIED/cgroup.controllers")) and no way to move them: using runc"
      want=runc
    fi
  fi
  printf '%s\n' "$want"
}

case "$cmd" in
  start)
    lock
    apt_install podman crun runc uidmap fuse-overlayfs busybox-static mmdebstrap jq curl
    runtime=$(choose_runtime)
    if running && answers; then
      if [ "$(current_args)" = "$(service_args "$runtime")" ]; then
        log "Podman service already running ($SOCK, runtime $runtime)"
        exit 0
      fi
      log "Podman service (pid $(pid)) runs with other arguments; restarting it"
      stop_running
    elif running; then
      log "Podman service (pid $(pid)) does not answer on $SOCK; restarting it"
      stop_running
    fi
    mkdir -p "$PODMAN_DIR"
    rm -f "$SOCK"
    log "starting Podman service on $SOCK (runtime $runtime, CONTAINERS_CONF=$CONTAINERS_CONF)"
    # Started in its own directory: nothing it or conmon writes relative to it lands in the repository.
    mapfile -t args < <(service_args "$runtime")
    (cd "$PODMAN_DIR" && exec setsid "${args[@]}" >"$LOG_FILE" 2>&1 </dev/null 8>&-) &
    echo $! >"$PID_FILE"
    echo "$runtime" >"$RUNTIME_FILE"
    for _ in $(seq 1 300); do
      answers && { log "Podman service ready"; exit 0; }
      # Alive is enough here: until the exec, /proc/PID/cmdline does not name podman yet.
      kill -0 "$(pid)" 2>/dev/null || { cat "$LOG_FILE" >&2; die "Podman service exited during start-up"; }
      sleep 0.1
    done
    cat "$LOG_FILE" >&2
    die "Podman service does not answer /v4.0.0/libpod/_ping on $SOCK after 30s"
    ;;
  stop)
    lock
    if running; then
      stop_running
      log "stopped (containers keep running under conmon; remove them with podman if needed)"
    else
      log "not running"
    fi
    rm -f "$PID_FILE" "$SOCK"
    ;;
  status)
    if running && answers; then echo "running ($SOCK, runtime $(cat "$RUNTIME_FILE" 2>/dev/null || echo '?'))"; else echo stopped; exit 1; fi
    ;;
  socket) echo "$SOCK" ;;
  *) die "usage: $0 start|stop|status|socket" ;;
esac
