#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts the whole platform locally: installs what is missing (PostgreSQL and build tools from Debian's
# packages), starts the project-local PostgreSQL cluster (deploy/postgres.sh), the Podman service
# with the local base images and the static function runner (deploy/podman.sh, base-images.sh,
# build-runner.sh), builds cloud-api and admin-api, applies pending migrations (`cloud-api migrate`)
# and runs both services.
#
#   deploy/up.sh [--detach] [--release] [--no-build]
#
#   (default)   run both in the foreground, log lines prefixed with the service name; Ctrl-C or SIGTERM
#               stops both gracefully (a second Ctrl-C kills them)
#   --detach    run both in the background (pids in .local/run, logs in .local/log) and return once
#               both answer GET /health; deploy/down.sh stops them
#   --release   build and run the release profile
#   --no-build  run the binaries built last time (target/debug or target/release)
#
# A second run restarts services that are already running (from either mode) with the fresh build.
# Environment: CLOUD_API_SERVER__PORT (8080) and ADMIN_API_SERVER__PORT (8081) move the services;
# any CLOUD_API_* / ADMIN_API_* variable reaches them (see their config.default.toml);
# CP_UP_TIMEOUT (seconds to wait for /health, 120); CP_WITH_KEYCLOAK=1 and CP_WITH_SMTP=1 also start
# a local Keycloak / SMTP server through deploy/keycloak.sh / deploy/smtp.sh and point cloud-api at
# it (CLOUD_API_AUTH__PROVIDER=keycloak; CLOUD_API_EMAIL__SMTP__HOST/PORT/TLS).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

usage() { sed -n '3,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; }

detach=0 profile=debug build=1
for arg in "$@"; do
  case "$arg" in
    --detach | -d) detach=1 ;;
    --release) profile=release ;;
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

services=(cloud-api admin-api)
declare -A port=([cloud-api]=${CLOUD_API_SERVER__PORT:-8080} [admin-api]=${ADMIN_API_SERVER__PORT:-8081})
timeout=${CP_UP_TIMEOUT:-120}
bin_dir=${CARGO_TARGET_DIR:-$CP_ROOT/target}/$profile

# 1. What the build and the services need.
need_build_tools
start_services postgres podman base-images build-runner
# The static runner that deploy/build-runner.sh built: mounted into every function instance.
if [ -z "${CLOUD_API_INVOKE__RUNNER_BINARY:-}" ]; then
  CLOUD_API_INVOKE__RUNNER_BINARY=$("$CP_ROOT/deploy/build-runner.sh" path)
  export CLOUD_API_INVOKE__RUNNER_BINARY
fi
# The settings that point the services at a local Keycloak / SMTP server (keys of config.default.toml);
# a variable already set in the environment wins. Both services must use the same provider.
declare -A switch=(
  [keycloak]="CLOUD_API_AUTH__PROVIDER=keycloak ADMIN_API_AUTH__PROVIDER=keycloak"
  [smtp]="CLOUD_API_EMAIL__SMTP__HOST=127.0.0.1 CLOUD_API_EMAIL__SMTP__PORT=${CP_SMTP_PORT:-2525} CLOUD_API_EMAIL__SMTP__TLS=none ADMIN_API_EMAIL__SMTP__HOST=127.0.0.1 ADMIN_API_EMAIL__SMTP__PORT=${CP_SMTP_PORT:-2525} ADMIN_API_EMAIL__SMTP__TLS=none"
)
for extra in keycloak smtp; do
  flag=CP_WITH_${extra^^}
  [ "${!flag:-0}" = 1 ] || continue
  [ -x "$CP_ROOT/deploy/$extra.sh" ] || die "$flag=1, but deploy/$extra.sh is not there yet"
  start_services "$extra"
  read -ra assignments <<<"${switch[$extra]}"
  for assignment in "${assignments[@]}"; do
    name=${assignment%%=*}
    [ -n "${!name:-}" ] || export "${assignment?}"
  done
  log "cloud-api and admin-api use the local $extra: ${switch[$extra]} (unless set otherwise)"
done

# 2. Build, then migrate: a service refuses to start while a migration is pending.
cd "$CP_ROOT"
cargo_flags=(--locked --quiet -p cloud-api -p admin-api)
if [ "$profile" = release ]; then cargo_flags+=(--release); fi
if [ "$build" = 1 ]; then
  log "building cloud-api and admin-api ($profile; a first build takes a few minutes)"
  cargo build "${cargo_flags[@]}" || die "the build failed (see above)"
fi
for svc in "${services[@]}"; do
  [ -x "$bin_dir/$svc" ] || die "$bin_dir/$svc is missing; run without --no-build"
done
"$bin_dir/cloud-api" migrate || die "applying migrations failed (see above)"

# 3. Replace what runs already, then make sure the ports are ours.
for svc in "${services[@]}"; do
  if pid=$(service_pid "$svc"); then
    log "restarting $svc (was pid $pid)"
    stop_service "$svc"
  fi
  if port_in_use "${port[$svc]}"; then
    prefix=${svc^^}
    die "port ${port[$svc]} ($svc) is in use by another process; free it or set ${prefix//-/_}_SERVER__PORT"
  fi
done
mkdir -p "$CP_RUN_DIR" "$CP_LOG_DIR"

# healthy SVC succeeds when GET /health answers 200.
healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${port[$1]}/health" 2>/dev/null; }

# wait_healthy waits until every service answers /health with 200; it fails when one exits or on timeout.
wait_healthy() {
  local svc started=$SECONDS pending
  while :; do
    [ "${stopping:-0}" = 0 ] || return 1
    pending=()
    for svc in "${services[@]}"; do
      kill -0 "${pids[$svc]}" 2>/dev/null || { log "$svc exited during start-up"; return 1; }
      healthy "$svc" || pending+=("$svc")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ $((SECONDS - started)) -ge "$timeout" ]; then
      log "no 200 from GET /health of ${pending[*]} after ${timeout}s"
      return 1
    fi
    sleep 0.2
  done
}

ready_line() {
  log "ready: cloud-api http://localhost:${port[cloud-api]}  admin-api http://localhost:${port[admin-api]}"
}

declare -A pids=()

# stop_started stops the processes this run started (SIGTERM, then waits for them).
stop_started() {
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  for svc in "${services[@]}"; do rm -f "$CP_RUN_DIR/$svc.pid"; done
}

# 4a. Detached: background processes in their own sessions, pid and log files.
if [ "$detach" = 1 ]; then
  trap 'stop_started; die "interrupted"' INT TERM
  for svc in "${services[@]}"; do
    log_file=$CP_LOG_DIR/$svc.log
    if [ -f "$log_file" ]; then mv -f "$log_file" "$log_file.1"; fi
    NO_COLOR=1 setsid "$bin_dir/$svc" serve >"$log_file" 2>&1 </dev/null &
    pids[$svc]=$!
    echo "${pids[$svc]}" >"$CP_RUN_DIR/$svc.pid"
  done
  if ! wait_healthy; then
    stop_started
    for svc in "${services[@]}"; do
      printf '\n--- last lines of %s:\n' "$CP_LOG_DIR/$svc.log" >&2
      tail -n 20 "$CP_LOG_DIR/$svc.log" >&2
    done
    die "the services did not come up"
  fi
  ready_line
  log "logs in $CP_LOG_DIR (the previous run's in *.log.1); stop with deploy/down.sh"
  exit 0
fi

# 4b. Foreground: each service in its own session, so that only this script receives Ctrl-C and
# forwards SIGTERM (graceful shutdown). The log prefixers ignore SIGINT and end when their service does.
stopping=0 killed=0
# shellcheck disable=SC2317 # invoked by the trap
on_signal() {
  if [ "$stopping" = 1 ]; then
    log "killing the services"
    killed=1
    kill -KILL "${pids[@]}" 2>/dev/null || true
  else
    stopping=1
    log "stopping the services (Ctrl-C again to kill them)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
  fi
}
# cleanup removes the pid files that still name our processes (a later run may have replaced them).
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  for svc in "${services[@]}"; do
    [ "$(cat "$CP_RUN_DIR/$svc.pid" 2>/dev/null)" = "${pids[$svc]:-}" ] && rm -f "$CP_RUN_DIR/$svc.pid"
  done
  return 0
}
trap on_signal INT TERM
trap cleanup EXIT

for svc in "${services[@]}"; do
  setsid "$bin_dir/$svc" serve > >(trap '' INT; exec sed -u "s/^/$svc | /") 2>&1 </dev/null &
  pids[$svc]=$!
  echo "${pids[$svc]}" >"$CP_RUN_DIR/$svc.pid"
done

if wait_healthy; then ready_line; fi

# Wait until a signal arrives or one service ends by itself; then stop the other and wait for both.
status=0
if [ "$stopping" = 0 ]; then
  wait -n "${pids[@]}" || status=$?
  if [ "$stopping" = 0 ]; then
    log "a service exited (status $status); stopping the other"
    [ "$status" != 0 ] || status=1
    stopping=1
    kill -TERM "${pids[@]}" 2>/dev/null || true
  else
    status=0
  fi
fi
for svc in "${services[@]}"; do
  while kill -0 "${pids[$svc]}" 2>/dev/null; do wait "${pids[$svc]}" || true; done
done
[ "$killed" = 0 ] || status=130
exit "$status"
