# ContainerPub recipes. `just` is optional: the README's commands are the scripts in deploy/ and every
# recipe here calls a script or cargo directly. Install it with `cargo install just --locked` or
# `pip install rust-just`.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

# List the recipes
default:
    @{{ just_executable() }} --justfile {{ justfile() }} --list --unsorted

# Run the platform in the foreground: PostgreSQL, build, migrate, cloud-api :8080 and admin-api :8081 (Ctrl-C stops)
up *args:
    ./deploy/up.sh "$@"

# Stop services started with `deploy/up.sh --detach` (`just down --all` also stops PostgreSQL, Keycloak, SMTP)
down *args:
    ./deploy/down.sh "$@"

# Run every test against a real PostgreSQL (arguments go to cargo test: `just test -p db`)
test *args:
    ./deploy/test.sh "$@"

# Check formatting, clippy with warnings as errors, and the architecture invariants
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    ./deploy/check-architecture.sh

# Format the workspace
fmt:
    cargo fmt --all

# Regenerate docs/openapi/admin-api.json from the code (a unit test fails while it differs)
openapi:
    CP_UPDATE_OPENAPI=1 cargo test --locked -q -p admin-api --lib openapi::tests::committed_document_matches_the_code

# Apply pending migrations to the local database (starts PostgreSQL if needed)
migrate:
    ./deploy/postgres.sh start
    DATABASE_URL="$(./deploy/postgres.sh url)" cargo run --locked --quiet -p cloud-api -- migrate

# Regenerate crates/db/src/schema.rs: migrate a scratch database, then `diesel print-schema` (diesel.toml)
schema:
    #!/usr/bin/env bash
    set -euo pipefail
    source deploy/lib/common.sh
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    command -v diesel >/dev/null || cargo install diesel_cli --locked --no-default-features --features postgres
    ./deploy/postgres.sh start
    scratch=cp_just_schema
    admin=(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qtA)
    "${admin[@]}" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" \
        -c "CREATE DATABASE $scratch"
    config=$(mktemp)
    trap '"${admin[@]}" -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)"; rm -f "$config"' EXIT
    printf '[migrations_directory]\ndir = "%s"\n' "$PWD/migrations" >"$config"
    url=${DATABASE_URL%%\?*}
    url=${url%/*}/$scratch
    diesel migration run --database-url "$url" --config-file "$config" >/dev/null
    diesel print-schema --database-url "$url" --config-file diesel.toml >crates/db/src/schema.rs.new
    mv crates/db/src/schema.rs.new crates/db/src/schema.rs
    git diff --stat -- crates/db/src/schema.rs

# Run a benchmark: `just bench NAME` runs bench/NAME.sh; without NAME, lists the benchmarks there are
bench name="":
    #!/usr/bin/env bash
    set -euo pipefail
    shopt -s nullglob
    name=${1:-}
    scripts=(bench/*.sh)
    names=("${scripts[@]#bench/}"); names=("${names[@]%.sh}")
    if [ ${#names[@]} -eq 0 ]; then
        echo "no benchmarks yet: bench/ holds none (invoke, deploy and stats come with their features)" >&2
        [ -z "$name" ]
    elif [ -z "$name" ]; then
        echo "benchmarks: ${names[*]} (run one with: just bench NAME)"
    elif [ -x "bench/$name.sh" ]; then
        exec "bench/$name.sh"
    else
        echo "no benchmark '$name'; there are: ${names[*]}" >&2
        exit 1
    fi

# Run what CI runs (.ci/run): install and start the services, fmt, architecture, schema, migrations, clippy, tests
ci:
    ./.ci/run
