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
