#!/usr/bin/env bash
# Starts (or stops) a local SMTP server (Debian's python3-aiosmtpd) on 127.0.0.1:$CP_SMTP_PORT (2525)
# that stores every message it receives in the maildir .local/mail/ (new/ holds one file per message).
# No authentication, no TLS: loopback only, for development and tests. Idempotent.
#   deploy/smtp.sh start|stop|status|dir
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

cmd=${1:-start}
SMTP_PORT=${CP_SMTP_PORT:-2525}
SMTP_DIR=$CP_LOCAL/smtp
MAIL_DIR=$CP_LOCAL/mail
SMTP_PID=$SMTP_DIR/smtp.pid
SMTP_LOG=$SMTP_DIR/smtp.log
# Debian's interpreter, not whichever python3 comes first in PATH: the package installs for it.
PY=/usr/bin/python3

pid() { cat "$SMTP_PID" 2>/dev/null || true; }
running() {
  local p; p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q aiosmtpd
}
accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; }

lock() { mkdir -p "$SMTP_DIR"; exec 8>"$SMTP_DIR/.lock"; flock -w 60 8 || die "another smtp.sh holds $SMTP_DIR/.lock"; }

case "$cmd" in
  start)
    lock
    if running && accepts; then log "SMTP server already running on 127.0.0.1:$SMTP_PORT"; exit 0; fi
    if ! running; then
      accepts && die "port $SMTP_PORT is in use by another process (set CP_SMTP_PORT)"
      apt_install python3-aiosmtpd
      mkdir -p "$SMTP_DIR" "$MAIL_DIR"/{tmp,new,cur}
      log "starting SMTP server on 127.0.0.1:$SMTP_PORT (maildir: $MAIL_DIR)"
      setsid "$PY" -u -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$MAIL_DIR" \
        >"$SMTP_LOG" 2>&1 </dev/null 8>&- &
      echo $! >"$SMTP_PID"
    fi
    for _ in $(seq 1 100); do
      accepts && exit 0
      # Alive is enough here: right after the fork, /proc/PID/cmdline may still read `setsid`.
      kill -0 "$(pid)" 2>/dev/null || { cat "$SMTP_LOG" >&2; die "SMTP server exited during start-up"; }
      sleep 0.1
    done
    cat "$SMTP_LOG" >&2
    die "SMTP server does not accept connections on 127.0.0.1:$SMTP_PORT after 10s"
    ;;
  stop)
    lock
    if running; then
      kill -TERM "$(pid)"
      for _ in $(seq 1 50); do running || break; sleep 0.1; done
      running && kill -KILL "$(pid)"
      log "stopped"
    else
      log "not running"
    fi
    rm -f "$SMTP_PID"
    ;;
  status) if running && accepts; then echo running; else echo stopped; exit 1; fi ;;
  dir) echo "$MAIL_DIR" ;;
  *) die "usage: $0 start|stop|status|dir" ;;
esac
