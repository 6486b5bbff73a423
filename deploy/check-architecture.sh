#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Checks the architecture invariants of docs/ARCHITECTURE.md against the dependency graph (cargo tree):
# - db, container, signing, email and auth never depend on actix-web (only HTTP-side code knows it);
# - admin-api never depends on container or cloud-api (so `cargo build -p admin-api` compiles no
#   cloud-api code), and cloud-api never depends on admin-api;
# - no crate under crates/ depends on a service;
# - the only `ResponseError` impl of the workspace is web's `ApiError` (one table maps errors to HTTP).
# Each check lists the whole graph of a package and looks for the forbidden one, so a package that is
# missing from the graph passes and a cargo error fails (unlike `! cargo tree -i`, which cannot tell
# "not in the graph" from any other error).
#
#   deploy/check-architecture.sh      quiet on success; prints each broken invariant with its path
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$CP_ROOT"

failures=0

# forbid PKG EDGES DEP... fails when a DEP is in PKG's dependency graph over the EDGES kinds
# (`normal`: what the package is built from; `normal,build,dev`: also its build scripts and tests).
forbid() {
  local pkg=$1 edges=$2 graph dep
  shift 2
  graph=$(cargo tree --locked --quiet -p "$pkg" -e "$edges" --prefix none --format '{p}') \
    || die "cargo tree -p $pkg failed (see above)"
  for dep in "$@"; do
    if awk -v d="$dep" '$1 == d { found = 1 } END { exit !found }' <<<"$graph"; then
      printf 'Architecture invariant broken: %s depends on %s (edges: %s):\n' "$pkg" "$dep" "$edges" >&2
      cargo tree --locked --quiet -p "$pkg" -e "$edges" -i "$dep" >&2 || true
      failures=$((failures + 1))
    fi
  done
}

for crate in db container signing email auth; do
  forbid "$crate" normal actix-web
done
forbid admin-api normal,build,dev container cloud-api
forbid cloud-api normal,build,dev admin-api
for dir in crates/*/; do
  forbid "$(basename "$dir")" normal cloud-api admin-api
done

# One mapping to HTTP: any other `impl … ResponseError for …` is a second error table.
others=$(grep -rnE --include='*.rs' 'impl\b.*\bResponseError[[:space:]]+for\b' crates services \
  | grep -v '^crates/web/src/error\.rs:' || true)
if [ -n "$others" ]; then
  printf 'Architecture invariant broken: a ResponseError impl besides web::ApiError:\n%s\n' "$others" >&2
  failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] || die "$failures architecture invariant(s) broken; see docs/ARCHITECTURE.md"
