#!/usr/bin/env bash
# Proves every migration is reversible, on a scratch database: runs all migrations up; then,
# from the newest down, checks that each down.sql followed by its up.sql gives back the same
# schema (pg_dump) and reverts it; checks nothing but diesel's bookkeeping is left once all are
# down; and runs all up again. Fails on any error. CI runs it. Idempotent: the scratch database
# is dropped before and after.
#   deploy/check-migrations.sh
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v diesel >/dev/null 2>&1; then
  log "installing diesel_cli"
  cargo install diesel_cli --locked --no-default-features --features postgres
fi

bash "$CP_ROOT/deploy/postgres.sh" start

scratch=cp_check_migrations
admin=(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qtA)
url=$(printf '%s' "${DATABASE_URL%%\?*}" | sed "s#/[^/]*\$#/$scratch#")
config=$(mktemp)
work=$(mktemp -d)
drop_scratch() { "${admin[@]}" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" >/dev/null 2>&1 || true; }
trap 'drop_scratch; rm -rf "$config" "$work"' EXIT
drop_scratch
"${admin[@]}" -c "CREATE DATABASE $scratch"

# A config without print_schema.file, so running migrations never rewrites schema.rs.
printf '[migrations_directory]\ndir = "%s"\n' "$CP_ROOT/migrations" >"$config"
dsl() { diesel migration "$@" --database-url "$url" --config-file "$config"; }
snapshot() { "$(pg_bin pg_dump)" --schema-only --no-owner --no-privileges "$url" | grep -v -e '^--' -e '^$' -e '^\\restrict ' -e '^\\unrestrict ' >"$1"; }
applied() { "${admin[@]}" -d "$url" -c "SELECT count(*) FROM __diesel_schema_migrations"; }

count=$(find "$CP_ROOT/migrations" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$count" -gt 0 ] || die "no migrations in $CP_ROOT/migrations"

log "up: all $count migrations"
dsl run >/dev/null || die "a migration failed going up"
[ "$(applied)" -eq "$count" ] || die "expected $count applied migrations, found $(applied)"

while [ "$(applied)" -gt 0 ]; do
  snapshot "$work/before.sql"
  dsl redo >"$work/redo.log" 2>&1 || { cat "$work/redo.log" >&2; die "redo of the newest applied migration failed"; }
  snapshot "$work/after.sql"
  if ! diff -u "$work/before.sql" "$work/after.sql" >&2; then
    die "down.sql then up.sql of $(grep -m1 -o 'migration [^ ]*' "$work/redo.log" || echo 'the newest migration') does not restore the schema (diff above)"
  fi
  dsl revert >"$work/revert.log" 2>&1 || { cat "$work/revert.log" >&2; die "a migration failed going down"; }
  log "$(grep -m1 -o 'Rolling back migration .*' "$work/revert.log" || echo 'reverted one')"
done

leftovers=$("${admin[@]}" -d "$url" -c "
  SELECT string_agg(c.relname, ', ') FROM pg_class c
   WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT LIKE '\_\_diesel%'
     AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'i')
  UNION ALL
  SELECT string_agg(p.proname, ', ') FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace")
leftovers=$(printf '%s' "$leftovers" | tr -d '\n')
[ -z "$leftovers" ] || die "objects left after reverting every migration: $leftovers"

log "up again: all $count migrations"
dsl run >/dev/null || die "a migration failed going up the second time"
[ "$(applied)" -eq "$count" ] || die "expected $count applied migrations, found $(applied)"
log "every migration goes up, down and up again"
