#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Statistics benchmark (issue 7): p50/p99 of every statistics endpoint's work at 100 thousand and
# at 10 million executions, side by side (targets: p99 ≤ 20 ms each; the 10 M figure within
# 1.5 × the 100 k one). The figures and their meaning are in docs/PERFORMANCE.md (section
# Statistics). The seeding and measuring are done by crates/bench (`bench-stats`).
#
#   just bench stats        or        bash bench/stats.sh [bench-stats OPTIONS...]
#
# What it does:
#   1. Starts PostgreSQL (deploy/postgres.sh) and builds bench-stats (release).
#   2. Creates a dedicated database of the same cluster (CP_BENCH_DB, default cp_bench_stats),
#      afresh — never the tests' databases nor the platform's — which bench-stats migrates.
#   3. Runs bench-stats against it: seeds 100 users, 1,000 functions, 100 thousand executions over
#      90 days with SQL generate_series and rebuilds the hourly rollups from them, measures; then
#      seeds up to 10 million, rebuilds, measures again; prints one table (progress on stderr).
#      Arguments of this script go to it (`--help` lists them), e.g. `--requests 200`.
#   4. Drops the database (CP_BENCH_KEEP=1 keeps it).
set -euo pipefail
# shellcheck source=../deploy/lib/common.sh
source "$(dirname "$0")/../deploy/lib/common.sh"

BENCH_DB=${CP_BENCH_DB:-cp_bench_stats}
[[ $BENCH_DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "CP_BENCH_DB must be a plain lower-case name"
BASE_URL=${DATABASE_URL%%\?*}
BENCH_URL=${BASE_URL%/*}/$BENCH_DB
for tool in cargo psql; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
cd "$CP_ROOT"

db_created=0
admin_psql() { psql "$BASE_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }
cleanup() {
  set +e
  if [ "$db_created" = 1 ] && [ "${CP_BENCH_KEEP:-0}" != 1 ]; then
    admin_psql -c "SET client_min_messages = warning" \
      -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$CP_ROOT/deploy/postgres.sh" start >/dev/null
log "building bench-stats (release)"
cargo build --locked --quiet --release -p bench --bin bench-stats || die "the build failed"

admin_psql -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" \
  -c "CREATE DATABASE $BENCH_DB" >/dev/null
db_created=1
log "database $BENCH_DB created; seeding and measuring (a few minutes)"
"${CARGO_TARGET_DIR:-$CP_ROOT/target}/release/bench-stats" --database-url "$BENCH_URL" "$@"
