#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs every test: installs what the build and the tests need (build tools and PostgreSQL from
# Debian's packages), starts the services the tests talk to (CP_TEST_SERVICES in lib/common.sh: the
# project-local PostgreSQL cluster, and SMTP, Keycloak and Podman where their scripts exist),
# exports DATABASE_URL and CP_LOCAL, runs `cargo test --workspace --locked` with the arguments given
# (without --workspace when they name packages), and ends with one line of totals over all test
# binaries. Each test that touches PostgreSQL clones its own database from a migrated template, so
# tests run in parallel and leave nothing behind.
#
#   deploy/test.sh [cargo test arguments...]     e.g. deploy/test.sh -p db, deploy/test.sh -- --nocapture
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

need_build_tools
start_services "${CP_TEST_SERVICES[@]}"
export DATABASE_URL CP_LOCAL
cd "$CP_ROOT"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ -t 2 ]; then export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-always}; fi
# The whole workspace, unless the arguments name packages (cargo would ignore -p next to --workspace).
scope=(--workspace)
for arg in "$@"; do
  case "$arg" in
    --) break ;;
    -p | -p?* | --package | --package=*) scope=() ;;
  esac
done
status=0
cargo test "${scope[@]}" --locked "$@" 2>&1 | tee "$out" || status=${PIPESTATUS[0]}

# One line with the totals over every test binary and the doc tests (cargo prints one line each).
awk '/^test result: / {
       seen = 1
       for (i = 1; i < NF; i++) {
         n = $i + 0
         if ($(i + 1) ~ /^passed/) p += n
         else if ($(i + 1) ~ /^failed/) f += n
         else if ($(i + 1) ~ /^ignored/) s += n
       }
     }
     END { if (seen) printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
exit "$status"
