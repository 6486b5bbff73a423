#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops what deploy/up.sh started: both services (SIGTERM, so in-flight requests finish).
#
#   deploy/down.sh [--all]
#
#   --all   also stop the other local services deploy/up.sh and deploy/test.sh start (CP_TEST_SERVICES:
#           Podman, Keycloak, SMTP where their scripts exist, and PostgreSQL)
#
# Idempotent: what does not run is left alone.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

all=0
for arg in "$@"; do
  case "$arg" in
    --all) all=1 ;;
    -h | --help) sed -n '3,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

for svc in admin-api cloud-api; do
  if pid=$(service_pid "$svc"); then
    stop_service "$svc"
    log "stopped $svc (pid $pid)"
  fi
done

if [ "$all" = 1 ]; then
  for ((i = ${#CP_TEST_SERVICES[@]} - 1; i >= 0; i--)); do
    name=${CP_TEST_SERVICES[i]}
    if [ -x "$CP_ROOT/deploy/$name.sh" ]; then "$CP_ROOT/deploy/$name.sh" stop; fi
  done
fi
