#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Invoke benchmark (issue 5, item 6; issue 6: the signed row): warm invoke through cloud-api beside the same request sent
# straight to the runner's socket (p50/p99, requests/s, at concurrency 1 and 32), and cold and
# unpause-path invokes beside a raw `podman run --rm --network none` of the same image (median of
# 10), all measured in one run. Each warm concurrency also gets a signed row: the same calls signed
# with an API key (v1) right after the bearer window, and the difference at p50/p99 — what the
# signature check costs over the unsigned warm path. Prints one table; the figures and their meaning are in
# docs/PERFORMANCE.md (section Invoke). The measuring is done by crates/bench (`bench-invoke`).
#
#   just bench invoke        or        bash bench/invoke.sh [bench-invoke OPTIONS...]
#
# What it does:
#   1. Starts what the platform needs, as deploy/up.sh does: PostgreSQL, Podman, the base images,
#      the static runner (deploy/postgres.sh, podman.sh, base-images.sh, build-runner.sh); builds
#      cloud-api with `cargo build --release -p cloud-api -p admin-api` (deploy/up.sh --release's
#      build, so the two share their artifacts).
#   2. Runs its own two cloud-api replicas of that build, on 127.0.0.1 only, against a bench
#      database of the same cluster (CP_BENCH_DB, default cp_bench_invoke, created afresh and
#      migrated) with their own data and socket directories under .local/bench-invoke. A platform
#      started by deploy/up.sh (port 8080) is neither used nor touched: the bench needs settings of
#      its own (below), and other work on the shared platform must neither disturb the figures
#      nor be disturbed (its deploy benchmark, for one). In the bench database only, the default
#      tier's max_concurrency is raised to the largest concurrency measured (the default 10
#      would answer 429 at 32), max_functions to 100 (one function per cold round) and
#      invocations_per_minute out of reach (the windows call thousands of times a minute; the
#      per-minute counter is still incremented on every call, so its cost is in the figures).
#        warm replica (CP_BENCH_WARM_PORT, 18080): idle_pause 3600 s, so that no instance is
#          paused under the direct baseline, which talks to the instances' sockets while this
#          replica is idle;
#        cold replica (CP_BENCH_COLD_PORT, 18081): idle_pause 1 s and idle_remove 5 s, so that
#          the unpause path and the pre-created path are reached in seconds.
#   3. `cargo run --release -p bench --bin bench-invoke` against them (progress on stderr, the
#      table on stdout). Arguments of this script go to it (`--help` lists them), e.g.
#      `bash bench/invoke.sh --seconds 10 --runs 5`.
#   4. Stops the replicas (their logs stay in .local/log/bench-invoke-*.log), removes what is
#      left of the bench functions' containers and their images, and drops the bench database.
#
# Environment: CP_BENCH_WARM_PORT, CP_BENCH_COLD_PORT, CP_BENCH_DB, CP_BENCH_CONCURRENCY (1,32);
# CP_BENCH_CLOUD_API=PATH runs that cloud-api binary instead of building one (to compare a candidate
# build, e.g. one from a git worktree with its own CARGO_TARGET_DIR); CP_BENCH_KEEP=1 keeps the
# bench database and the replicas' data; any CLOUD_API_* variable reaches both replicas (the
# bench's own settings above win).
set -euo pipefail
# shellcheck source=../deploy/lib/common.sh
source "$(dirname "$0")/../deploy/lib/common.sh"

WARM_PORT=${CP_BENCH_WARM_PORT:-18080}
COLD_PORT=${CP_BENCH_COLD_PORT:-18081}
BENCH_DB=${CP_BENCH_DB:-cp_bench_invoke}
CONCURRENCY=${CP_BENCH_CONCURRENCY:-1,32}
[[ $BENCH_DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "CP_BENCH_DB must be a plain lower-case name"
[[ $CONCURRENCY =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "CP_BENCH_CONCURRENCY must look like 1,32"
TOP=$(tr ',' '\n' <<<"$CONCURRENCY" | sort -n | tail -n 1)
WORK=$CP_LOCAL/bench-invoke
SOCK=$CP_LOCAL/podman/podman.sock
BIN=${CP_BENCH_CLOUD_API:-${CARGO_TARGET_DIR:-$CP_ROOT/target}/release/cloud-api}
BASE_URL=${DATABASE_URL%%\?*}
BENCH_URL=${BASE_URL%/*}/$BENCH_DB
export CONTAINERS_CONF=$CP_ROOT/deploy/podman/containers.conf

for tool in cargo curl psql podman; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
cd "$CP_ROOT"

pids=()
db_created=0

pod() { podman --url "unix://$SOCK" "$@"; }
admin_psql() { psql "$BASE_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }
bench_psql() { psql "$BENCH_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }

# stop_replicas: SIGTERM (graceful: executions flushed, instances removed), SIGKILL after 40 s.
stop_replicas() {
  local pid waited
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 400 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "replica pid $pid did not stop in 40 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  pids=()
}

cleanup() {
  local ids id containers images
  set +e
  stop_replicas
  if [ "$db_created" = 1 ]; then
    # The bench functions' containers that outlived their replica, and their images.
    ids=$(bench_psql -c "SELECT id FROM functions" 2>/dev/null)
    for id in $ids; do
      containers=$(pod ps -aq --filter "label=containerpub.function=$id" 2>/dev/null)
      if [ -n "$containers" ]; then
        log "removing $(wc -w <<<"$containers") leftover container(s) of bench function $id"
        # shellcheck disable=SC2086 # one id a word
        pod rm -f $containers >/dev/null 2>&1
      fi
      images=$(pod images -q --filter "label=containerpub.function=$id" 2>/dev/null | sort -u)
      # shellcheck disable=SC2086 # one id a word
      [ -z "$images" ] || pod rmi -f $images >/dev/null 2>&1
    done
    if [ "${CP_BENCH_KEEP:-0}" != 1 ]; then
      admin_psql -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    fi
  fi
  if [ "${CP_BENCH_KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. What the platform needs (not measured) ----

"$CP_ROOT/deploy/postgres.sh" start >/dev/null
"$CP_ROOT/deploy/podman.sh" start >/dev/null
"$CP_ROOT/deploy/base-images.sh" build 2>/dev/null || die "deploy/base-images.sh failed"
runner=$("$CP_ROOT/deploy/build-runner.sh" start 2>/dev/null) || die "deploy/build-runner.sh failed"
if [ -z "${CP_BENCH_CLOUD_API:-}" ]; then
  log "building cloud-api (release; as deploy/up.sh --release builds it)"
  cargo build --locked --quiet --release -p cloud-api -p admin-api || die "the build failed"
else
  [ -x "$BIN" ] || die "CP_BENCH_CLOUD_API=$BIN is not an executable"
  log "using the cloud-api binary $BIN (CP_BENCH_CLOUD_API)"
fi
log "building bench-invoke (release)"
cargo build --locked --quiet --release -p bench --bin bench-invoke || die "the build failed"

# ---- 2. The bench database and the two replicas ----

for port in "$WARM_PORT" "$COLD_PORT"; do
  port_in_use "$port" && die "port $port is in use; set CP_BENCH_WARM_PORT / CP_BENCH_COLD_PORT"
done
admin_psql -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" \
  -c "CREATE DATABASE $BENCH_DB" >/dev/null
db_created=1
DATABASE_URL=$BENCH_URL "$BIN" migrate >/dev/null 2>&1 || die "migrating $BENCH_DB failed"
tier=$(bench_psql -F ' ' -c "SELECT name, max_concurrency, max_functions, max_timeout_s, max_memory_mb
  FROM tiers WHERE is_default")
read -r tier_name old_concurrency old_functions tier_timeout tier_memory <<<"$tier"
[ -n "${tier_memory:-}" ] || die "the bench database has no default tier"
bench_psql -c "UPDATE tiers SET max_concurrency = GREATEST(max_concurrency, $TOP),
  max_functions = GREATEST(max_functions, 100),
  invocations_per_minute = GREATEST(invocations_per_minute, 1000000000) WHERE is_default" >/dev/null
new=$(bench_psql -F ' ' -c "SELECT max_concurrency, max_functions FROM tiers WHERE is_default")

rm -rf "$WORK"
mkdir -p "$WORK" "$CP_LOG_DIR"
# start_replica NAME PORT IDLE_PAUSE IDLE_REMOVE starts one replica and waits for GET /health.
start_replica() {
  local name=$1 port=$2 log_file=$CP_LOG_DIR/bench-invoke-$1.log waited=0
  CLOUD_API_SERVER__PORT=$port \
    CLOUD_API_SERVER__HOST=127.0.0.1 \
    CLOUD_API_DATABASE__URL=$BENCH_URL \
    DATABASE_URL=$BENCH_URL \
    CLOUD_API_PATHS__DATA_DIR=$WORK/data \
    CLOUD_API_EMAIL__FILE_DIR=$WORK/mail \
    CLOUD_API_PODMAN__SOCKET=$SOCK \
    CLOUD_API_INVOKE__RUNNER_BINARY=$runner \
    CLOUD_API_INVOKE__SOCKET_ROOT=$WORK/$name \
    CLOUD_API_INVOKE__IDLE_PAUSE_SECS=$3 \
    CLOUD_API_INVOKE__IDLE_REMOVE_SECS=$4 \
    NO_COLOR=1 setsid "$BIN" serve >"$log_file" 2>&1 </dev/null &
  pids+=($!)
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null; do
    kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 20 "$log_file" >&2; die "the $name replica exited"; }
    [ "$waited" -lt 600 ] || { tail -n 20 "$log_file" >&2; die "the $name replica did not come up"; }
    sleep 0.1
    waited=$((waited + 1))
  done
}
# One after the other: the first generates the shared secrets in the data directory.
start_replica warm "$WARM_PORT" 3600 7200
start_replica cold "$COLD_PORT" 1 5

# ---- 3. The measurements ----

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
BIN_DESC="release build ($(git -C "$CP_ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
[ -z "${CP_BENCH_CLOUD_API:-}" ] || BIN_DESC=$BIN
cargo run --locked --quiet --release -p bench --bin bench-invoke -- \
  --warm-api "http://127.0.0.1:$WARM_PORT" --warm-socket-root "$WORK/warm" \
  --cold-api "http://127.0.0.1:$COLD_PORT" --podman-socket "$SOCK" \
  --concurrency "$CONCURRENCY" --pg-url "$BENCH_URL" \
  --tier-timeout-s "$tier_timeout" --tier-memory-mb "$tier_memory" "$@"

cat <<EOF
setup: cloud-api $BIN_DESC, 2 replicas on one bench database ($BENCH_DB) of the project's
  PostgreSQL $(psql "$BASE_URL" -qtAX -c 'SHOW server_version' 2>/dev/null) (started by deploy/postgres.sh: fsync=off, full_page_writes=off),
  $(pod version --format 'podman {{.Server.Version}}' 2>/dev/null), runtime $(cat "$CP_LOCAL/podman/runtime" 2>/dev/null || echo '?');
  warm replica idle_pause 3600 s; cold replica idle_pause 1 s, idle_remove 5 s;
  default tier "$tier_name" in the bench database: max_concurrency $old_concurrency -> ${new%% *}, max_functions $old_functions -> ${new##* }
  (max_timeout_s $tier_timeout, max_memory_mb $tier_memory unchanged).
EOF
