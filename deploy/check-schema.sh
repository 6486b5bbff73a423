#!/usr/bin/env bash
# Proves that crates/db/src/schema.rs is exactly what `diesel print-schema` makes of migrations/:
# migrates a scratch database, prints its schema, and diffs. CI runs it; so can you. Idempotent:
# the scratch database is dropped before and after.
#   deploy/check-schema.sh
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v diesel >/dev/null 2>&1; then
  log "installing diesel_cli"
  cargo install diesel_cli --locked --no-default-features --features postgres
fi

bash "$CP_ROOT/deploy/postgres.sh" start

scratch=cp_check_schema
admin=(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qtA)
url=$(printf '%s' "${DATABASE_URL%%\?*}" | sed "s#/[^/]*\$#/$scratch#")
drop_scratch() { "${admin[@]}" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" >/dev/null 2>&1 || true; }
trap drop_scratch EXIT
drop_scratch
"${admin[@]}" -c "CREATE DATABASE $scratch"

# A config without print_schema.file, so `migration run` does not rewrite the file under test.
config=$(mktemp)
trap 'drop_scratch; rm -f "$config" "${generated:-}"' EXIT
printf '[migrations_directory]\ndir = "%s"\n' "$CP_ROOT/migrations" >"$config"
diesel migration run --database-url "$url" --config-file "$config" >/dev/null

# print-schema with the project's diesel.toml (its [print_schema] options), to stdout.
generated=$(mktemp)
(cd "$CP_ROOT" && diesel print-schema --database-url "$url" --config-file "$CP_ROOT/diesel.toml") >"$generated"

schema=$CP_ROOT/crates/db/src/schema.rs
if ! diff -u "$schema" "$generated" >&2; then
  die "crates/db/src/schema.rs does not match the migrations (diff above: - file, + migrations).
Regenerate it (never edit it by hand): on a database migrated with this checkout,
  diesel migration run                            # writes crates/db/src/schema.rs when it applies migrations
  diesel print-schema > crates/db/src/schema.rs   # or write it explicitly"
fi
log "schema.rs matches the migrations"
