# Shared helpers for the scripts in deploy/. Source it; do not run it.
# Everything local lives under $CP_LOCAL (git-ignored), so a second run finds it again.

CP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CP_LOCAL=${CP_LOCAL:-$CP_ROOT/.local}
CP_PG_PORT=${CP_PG_PORT:-55432}
CP_PG_DIR=$CP_LOCAL/pg
CP_DB_NAME=${CP_DB_NAME:-containerpub}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:$CP_PG_PORT/$CP_DB_NAME}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_install PKG... installs the Debian packages that are missing (one `apt-get update` per run).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}; install them or run as root"
  log "installing ${missing[*]}"
  if [ -z "${CP_APT_UPDATED:-}" ]; then apt-get update -qq; CP_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# pg_bin NAME prints the path of a PostgreSQL server binary of the newest installed major version.
pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] || die "PostgreSQL server binaries not found"
  printf '%s/%s' "$dir" "$1"
}

# ---- Services and processes: used by up.sh, down.sh, test.sh and .ci/run ----

# shellcheck disable=SC2034 # used by the scripts that source this file
CP_RUN_DIR=$CP_LOCAL/run CP_LOG_DIR=$CP_LOCAL/log

# The services the tests need, in start order; each NAME is `deploy/NAME.sh start|stop`. A NAME whose
# script does not exist yet is skipped, so a later issue adds a service here and in its own script.
# The environment may narrow it for a local run: CP_TEST_SERVICES=postgres deploy/test.sh -p db
# shellcheck disable=SC2034 # used by the scripts that source this file
read -ra CP_TEST_SERVICES <<<"${CP_TEST_SERVICES:-postgres smtp keycloak podman base-images build-runner}"

# need_build_tools installs what building the workspace needs besides the Rust toolchain.
need_build_tools() {
  apt_install build-essential pkg-config libpq-dev libssl-dev curl ca-certificates
  command -v cargo >/dev/null 2>&1 \
    || die "cargo not found: install Rust with rustup (rust-toolchain.toml names the toolchain)"
}

# start_services NAME... runs `deploy/NAME.sh start` for each NAME whose script exists.
start_services() {
  local name
  for name in "$@"; do
    if [ -x "$CP_ROOT/deploy/$name.sh" ]; then "$CP_ROOT/deploy/$name.sh" start; fi
  done
}

# service_pid NAME prints the pid recorded in $CP_RUN_DIR/NAME.pid when that process is still NAME;
# a stale pid file is removed.
service_pid() {
  local file=$CP_RUN_DIR/$1.pid pid cmd=''
  [ -f "$file" ] || return 1
  pid=$(<"$file")
  if [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ]; then
    IFS= read -r -d '' cmd <"/proc/$pid/cmdline" || true
    if [ "${cmd##*/}" = "$1" ]; then printf '%s\n' "$pid"; return 0; fi
  fi
  rm -f "$file"
  return 1
}

# stop_service NAME stops the process recorded for NAME: SIGTERM (graceful), SIGKILL after
# CP_STOP_TIMEOUT seconds (default 35, above actix-web's 30 s drain).
stop_service() {
  local pid waited=0
  pid=$(service_pid "$1") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge "$((${CP_STOP_TIMEOUT:-35} * 10))" ]; then
      log "$1 (pid $pid) did not stop in ${CP_STOP_TIMEOUT:-35}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$CP_RUN_DIR/$1.pid"
}

# port_in_use PORT succeeds when something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
