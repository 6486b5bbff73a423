#!/usr/bin/env bash
# Runs a local Keycloak (dev mode, loopback only) with the containerpub realm imported from
# deploy/keycloak/containerpub-realm.json. Idempotent: a running server is left as it is.
#   deploy/keycloak.sh start|stop|status|url
#
# The server distribution (Maven artifact org.keycloak:keycloak-quarkus-dist, zip) is fetched once with
# `mvn dependency:copy` and unpacked into a cache outside the repo:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/containerpub/keycloak-$CP_KEYCLOAK_VERSION
# Database (H2 file), log and pid live under .local/keycloak/. When the realm file changes, the next
# start drops that database so the new realm is imported (users created by hand are lost then).
#
# Environment: CP_KEYCLOAK_PORT (8180), CP_KEYCLOAK_MGMT_PORT (health, 9180), CP_KEYCLOAK_VERSION,
# CP_KEYCLOAK_TIMEOUT (seconds to wait for readiness, 180), KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD (admin/admin).
# kc.sh also reads JAVA_OPTS_APPEND: `-XX:TieredStopAtLevel=1` starts about 25% faster, but logins (password
# hashing) then take about 40% longer, so it is not the default. Runs on Java 17 (Debian 12 has no Java 21).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

cmd=${1:-start}
KC_VERSION=${CP_KEYCLOAK_VERSION:-26.7.3}
KC_PORT=${CP_KEYCLOAK_PORT:-8180}
KC_MGMT_PORT=${CP_KEYCLOAK_MGMT_PORT:-9180}
KC_TIMEOUT=${CP_KEYCLOAK_TIMEOUT:-180}
KC_REALM=containerpub
KC_REALM_FILE=$CP_ROOT/deploy/keycloak/containerpub-realm.json
KC_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/containerpub
KC_HOME=$KC_CACHE/keycloak-$KC_VERSION
KC_LOCAL=$CP_LOCAL/keycloak
KC_PID=$KC_LOCAL/keycloak.pid
KC_LOG=$KC_LOCAL/keycloak.log
KC_URL=http://127.0.0.1:$KC_PORT
READY_URL=$KC_URL/realms/$KC_REALM/.well-known/openid-configuration

pid() { cat "$KC_PID" 2>/dev/null || true; }
# running: the pid file names a live kc.sh/java process started from this distribution.
running() {
  local p; p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q keycloak
}
ready() { curl -fsS -o /dev/null --max-time 2 "$READY_URL" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }

fetch() {
  [ -x "$KC_HOME/bin/kc.sh" ] && return 0
  command -v mvn >/dev/null || apt_install maven
  command -v unzip >/dev/null || apt_install unzip
  mkdir -p "$KC_CACHE"
  exec 9>"$KC_CACHE/.keycloak-$KC_VERSION.lock"
  flock 9
  [ -x "$KC_HOME/bin/kc.sh" ] && return 0
  local tmp t0; tmp=$(mktemp -d "$KC_CACHE/.keycloak-$KC_VERSION.XXXXXX") t0=$(date +%s.%N)
  log "fetching org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip"
  if ! (cd "$tmp" && mvn -B -Dstyle.color=never dependency:copy \
    "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip" -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1); then
    tail -n 30 "$tmp/mvn.log" >&2; rm -rf "$tmp"; die "could not fetch keycloak-quarkus-dist $KC_VERSION"
  fi
  unzip -q "$tmp/keycloak-quarkus-dist-$KC_VERSION.zip" -d "$tmp"
  mv "$tmp/keycloak-$KC_VERSION" "$KC_HOME"
  rm -rf "$tmp"
  exec 9>&-
  log "fetched and unpacked into $KC_HOME in $(elapsed "$t0")s"
}

start() {
  local t0; t0=$(date +%s.%N)
  if running; then
    if ready; then log "Keycloak already running at $KC_URL"; return 0; fi
    log "Keycloak process $(pid) is running but not ready yet; waiting"
  else
    port_busy "$KC_PORT" && die "port $KC_PORT is in use by another process (set CP_KEYCLOAK_PORT)"
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    command -v curl >/dev/null || apt_install curl
    fetch
    [ "$(java_major)" -ge 17 ] 2>/dev/null || die "Keycloak $KC_VERSION needs Java 17 or newer (java -version: $(java_major))"
    mkdir -p "$KC_LOCAL/h2" "$KC_HOME/data/import"
    # A changed realm file means a fresh database: --import-realm skips a realm that already exists.
    # The realm file reads CP_SMTP_PORT (a placeholder resolved at import), so it counts as well.
    export CP_SMTP_PORT=${CP_SMTP_PORT:-2525}
    local sum; sum=$({ cat "$KC_REALM_FILE"; echo "smtp port $CP_SMTP_PORT"; } | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$KC_LOCAL/realm.sha256" 2>/dev/null || true)" != "$sum" ]; then
      [ -n "$(ls -A "$KC_LOCAL/h2")" ] && log "realm file changed: recreating the dev database"
      rm -rf "${KC_LOCAL:?}/h2"/*
      echo "$sum" >"$KC_LOCAL/realm.sha256"
    fi
    cp "$KC_REALM_FILE" "$KC_HOME/data/import/$KC_REALM-realm.json"
    log "starting Keycloak $KC_VERSION on $KC_URL (log: $KC_LOG)"
    KC_BOOTSTRAP_ADMIN_USERNAME=${KC_BOOTSTRAP_ADMIN_USERNAME:-admin} \
    KC_BOOTSTRAP_ADMIN_PASSWORD=${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin} \
      setsid "$KC_HOME/bin/kc.sh" start-dev \
        --http-host=127.0.0.1 --http-port="$KC_PORT" \
        --http-management-host=127.0.0.1 --http-management-port="$KC_MGMT_PORT" --health-enabled=true \
        --hostname-strict=false \
        --db=dev-file --db-url="jdbc:h2:file:$KC_LOCAL/h2/keycloakdb;NON_KEYWORDS=VALUE" \
        --import-realm \
        >"$KC_LOG" 2>&1 </dev/null 8>&- 9>&- &
    echo $! >"$KC_PID"
  fi
  local t1=$SECONDS
  until ready; do
    if ! running; then tail -n 40 "$KC_LOG" >&2; die "Keycloak exited during start-up"; fi
    if [ $((SECONDS - t1)) -ge "$KC_TIMEOUT" ]; then
      tail -n 40 "$KC_LOG" >&2; die "Keycloak not ready after ${KC_TIMEOUT}s"
    fi
    sleep 0.5
  done
  log "Keycloak ready at $KC_URL (realm $KC_REALM) in $(elapsed "$t0")s"
}

stop() {
  if ! running; then rm -f "$KC_PID"; log "not running"; return 0; fi
  local p; p=$(pid)
  kill -TERM "$p"
  for _ in $(seq 1 60); do running || break; sleep 0.5; done
  if running; then log "Keycloak did not stop in 30s; killing process group $p"; kill -KILL -- "-$p" 2>/dev/null || true; fi
  rm -f "$KC_PID"
  log "stopped"
}

# One start or stop at a time per checkout (several engineers may share one).
lock() { mkdir -p "$KC_LOCAL"; exec 8>"$KC_LOCAL/.lock"; flock -w $((KC_TIMEOUT + 120)) 8 || die "another keycloak.sh holds $KC_LOCAL/.lock"; }

case "$cmd" in
  start) lock; start ;;
  stop) lock; stop ;;
  status) if running && ready; then echo running; else echo stopped; exit 1; fi ;;
  url) echo "$KC_URL/realms/$KC_REALM" ;;
  *) die "usage: $0 start|stop|status|url" ;;
esac
