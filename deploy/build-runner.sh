#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the in-container runner (crates/runner, binary `containerpub-runner`) as a static binary
# that runs on any image, `FROM scratch` included, and is bind-mounted read-only into every
# function container as its entry point.
#
# Static linking uses glibc's static libraries (`-C target-feature=+crt-static` with an explicit
# `--target x86_64-unknown-linux-gnu`; no musl target is needed). With an explicit --target,
# RUSTFLAGS applies to the runner and its dependencies only, not to build scripts or proc-macros,
# and a separate --target-dir keeps these flags from invalidating the workspace's own build
# cache in target/. Symbols are stripped (CARGO_PROFILE_RELEASE_STRIP, the workspace profile is
# left alone). Running it again rebuilds only what changed.
#
#   deploy/build-runner.sh [build|start]
#                             build, check with `file` that the binary is statically linked,
#                             record its path in $CP_LOCAL/runner/path (what the tests and local
#                             services read) and print it on stdout (size and details on stderr):
#                             runner=$(deploy/build-runner.sh). `start` is the same, so that
#                             CP_TEST_SERVICES in lib/common.sh can list `build-runner`; up to date, it
#                             takes about a second.
#   deploy/build-runner.sh path    print the recorded path (exit 1 when none or missing)
#   deploy/build-runner.sh stop    nothing to stop (for deploy/down.sh --all)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$CP_ROOT"

PATH_FILE=$CP_LOCAL/runner/path
cmd=${1:-build}
[ $# -le 1 ] || die "usage: $0 [build|start|path|stop]"
case "$cmd" in
  build | start) ;;
  stop) exit 0 ;;
  path)
    recorded=$(cat "$PATH_FILE" 2>/dev/null) || die "no runner recorded in $PATH_FILE; run $0 start"
    [ -x "$recorded" ] || die "$recorded (recorded in $PATH_FILE) is missing; run $0 start"
    printf '%s\n' "$recorded"
    exit 0
    ;;
  *) die "usage: $0 [build|start|path|stop]" ;;
esac
command -v cargo >/dev/null 2>&1 || die "cargo not found"
command -v file >/dev/null 2>&1 || apt_install file

target=x86_64-unknown-linux-gnu
target_dir=$CP_ROOT/target/runner
bin=$target_dir/$target/release/containerpub-runner

log "building containerpub-runner (static, $target) in $target_dir"
RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --locked --release -p runner --bin containerpub-runner \
  --target "$target" --target-dir "$target_dir"

[ -x "$bin" ] || die "the build did not produce $bin"
description=$(file -b "$bin")
case "$description" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) die "$bin is not statically linked: $description" ;;
esac
size=$(stat -c %s "$bin")
log "$bin: $size bytes ($(( (size + 1023) / 1024 )) KiB)"
log "file: $description"
mkdir -p "$(dirname "$PATH_FILE")"
printf '%s\n' "$bin" >"$PATH_FILE.tmp" && mv "$PATH_FILE.tmp" "$PATH_FILE"
printf '%s\n' "$bin"
