#!/usr/bin/env bash
# Starts (or stops) the project-local PostgreSQL cluster: data under .local/pg, its own port
# (CP_PG_PORT, default 55432), loopback only, so it never clashes with a system cluster.
# Idempotent: a running cluster is left as it is.
#   deploy/postgres.sh start|stop|status|url
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

cmd=${1:-start}
data=$CP_PG_DIR/data
run_as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

running() { [ -f "$data/postmaster.pid" ] && run_as_pg "$(pg_bin pg_ctl)" -D "$data" status >/dev/null 2>&1; }

case "$cmd" in
  start)
    apt_install postgresql postgresql-contrib libpq-dev
    mkdir -p "$CP_PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$CP_PG_DIR"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
      log "initialising cluster in $data"
      run_as_pg "$(pg_bin initdb)" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if running; then
      log "PostgreSQL already running on port $CP_PG_PORT"
    else
      log "starting PostgreSQL on 127.0.0.1:$CP_PG_PORT"
      run_as_pg "$(pg_bin pg_ctl)" -D "$data" -l "$CP_PG_DIR/server.log" -w -t 60 \
        -o "-p $CP_PG_PORT -k $CP_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c full_page_writes=off" \
        start >/dev/null || { tail -n 20 "$CP_PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
    fi
    psql_cmd=(psql -h 127.0.0.1 -p "$CP_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
    if [ "$("${psql_cmd[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$CP_DB_NAME'")" != 1 ]; then
      "${psql_cmd[@]}" -c "CREATE DATABASE \"$CP_DB_NAME\""
    fi
    ;;
  stop)
    if running; then run_as_pg "$(pg_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null; log "stopped"; else log "not running"; fi
    ;;
  status) if running; then echo running; else echo stopped; exit 1; fi ;;
  url) echo "$DATABASE_URL" ;;
  *) die "usage: $0 start|stop|status|url" ;;
esac
