#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds ContainerPub's local base images without any image registry, into the storage of the
# Podman service that deploy/podman.sh runs (same user, same CONTAINERS_CONF):
#   localhost/containerpub/python:3   Debian bookworm's python3 and pip (mmdebstrap --variant=extract from the
#                                     mirror apt is configured with) + `podman import`
#   localhost/containerpub/binary:1   FROM scratch + Debian's static busybox, its applets linked in
#                                     /bin so `#!/bin/sh` scripts and the usual tools run
# An image that exists is skipped unless --force; the python root file system tarball is cached in
# $CP_LOCAL/images/ (--force rebuilds it too). Prints the time of every step.
#   deploy/base-images.sh [build|start] [--force]   build what is missing (`start` = build, so that
#                                                   CP_TEST_SERVICES in lib/common.sh can list it)
#   deploy/base-images.sh status                    which images exist (exit 1 when one is missing)
#   deploy/base-images.sh stop                      nothing to stop (for deploy/down.sh --all)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

force=false cmd=build
for arg in "$@"; do
  case "$arg" in
    build | start) cmd=build ;;
    status | stop) cmd=$arg ;;
    --force) force=true ;;
    *) die "usage: $0 [build|start|status|stop] [--force]" ;;
  esac
done

export CONTAINERS_CONF=$CP_ROOT/deploy/podman/containers.conf
CACHE=$CP_LOCAL/images
PYTHON_IMAGE=localhost/containerpub/python:3
BINARY_IMAGE=localhost/containerpub/binary:1
# The runtime the service chose (crun, or runc when the hybrid-cgroup workaround was not possible);
# `podman build` runs a RUN step, so it needs the same choice.
RUNTIME=$(cat "$CP_LOCAL/podman/runtime" 2>/dev/null || echo "${CP_PODMAN_RUNTIME:-runc}")

case "$cmd" in
  stop) exit 0 ;;
  status)
    absent=0
    for image in "$PYTHON_IMAGE" "$BINARY_IMAGE"; do
      if command -v podman >/dev/null && podman image exists "$image"; then echo "$image: present"; else echo "$image: missing"; absent=1; fi
    done
    exit "$absent"
    ;;
esac

apt_install podman crun runc uidmap fuse-overlayfs busybox-static mmdebstrap ca-certificates
mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock -w 600 8 || die "another base-images.sh holds $CACHE/.lock"

now_ms() { date +%s%3N; }
timed() { # timed LABEL COMMAND... runs COMMAND and logs how long it took
  local label=$1 t0 rc=0
  shift
  t0=$(now_ms)
  "$@" || rc=$?
  log "$label: $(($(now_ms) - t0)) ms$([ "$rc" -eq 0 ] || echo " (FAILED, exit $rc)")"
  return "$rc"
}
exists() { podman image exists "$1"; }
image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
# drop_replaced OLD_ID NAME removes the image NAME pointed to before a --force rebuild, unless still in use.
drop_replaced() {
  if [ -n "$1" ] && [ "$1" != "$(image_id "$2")" ]; then podman rmi "$1" >/dev/null 2>&1 || true; fi
}

# The apt sources of this machine, pasted into mmdebstrap as they are: the configured mirror, no host named here.
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ] && grep -Eq '^[[:space:]]*(deb |URIs:)' "$f"; then printf '%s\n' "$f"; return 0; fi
  done
  return 1
}

# Minimal account files so that uid 65534 has a name (`id`, Python's getpass) in images with no base-passwd.
passwd_files() { # passwd_files DIR
  mkdir -p "$1/etc"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
}

build_python() {
  local tar=$CACHE/python3-pip-bookworm.tar sources old
  old=$(image_id "$PYTHON_IMAGE")
  if exists "$PYTHON_IMAGE" && ! $force; then log "$PYTHON_IMAGE exists (--force rebuilds it)"; return 0; fi
  if [ ! -s "$tar" ] || $force; then
    sources=$(apt_sources) || die "no Debian apt sources found in /etc/apt (needed by mmdebstrap)"
    rm -f "$tar.tmp"
    # extract: unpack python3 and its dependencies only (no maintainer scripts, no Essential set, so
    # customize hooks do not run: extract hooks add /tmp, the account files, and the host's CA
    # bundle, which update-ca-certificates would have made, so that pip reaches PyPI over TLS);
    # documentation, man pages and translations are left out.
    # shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap's shell
    timed "mmdebstrap --variant=extract --include=python3,python3-pip bookworm" \
      mmdebstrap --quiet --variant=extract --include=python3,python3-pip,ca-certificates --format=tar \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --extract-hook='mkdir -p "$1/tmp" && chmod 1777 "$1/tmp"' \
      --extract-hook='mkdir -p "$1/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"' \
      --extract-hook="$(declare -f passwd_files); passwd_files \"\$1\"" \
      bookworm "$tar.tmp" "$sources"
    mv "$tar.tmp" "$tar"
  else
    log "using the cached root file system $tar ($(du -h "$tar" | cut -f1))"
  fi
  timed "podman import $PYTHON_IMAGE" podman import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' --change 'LABEL containerpub.base=python3' \
    --change 'CMD ["/usr/bin/python3"]' "$tar" "$PYTHON_IMAGE" >/dev/null
  timed "smoke test: python3 as uid 65534" \
    podman --runtime "$RUNTIME" run --rm --network none --user 65534:65534 --read-only "$PYTHON_IMAGE" \
    python3 -c 'import getpass, json, ssl, pip; assert getpass.getuser() == "nobody"'
  drop_replaced "$old" "$PYTHON_IMAGE"
}

build_binary() {
  local ctx old
  old=$(image_id "$BINARY_IMAGE")
  if exists "$BINARY_IMAGE" && ! $force; then log "$BINARY_IMAGE exists (--force rebuilds it)"; return 0; fi
  [ -x /bin/busybox ] || die "/bin/busybox missing (package busybox-static)"
  ctx=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: ctx is local
  trap "rm -rf '$ctx'" RETURN
  cp /bin/busybox "$ctx/busybox"
  passwd_files "$ctx"
  cat >"$ctx/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY etc/ /etc/
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/mkdir", "-m", "1777", "/tmp"]
ENV PATH=/bin
LABEL containerpub.base=binary
CMD ["/bin/sh"]
CONTAINERFILE
  timed "podman build $BINARY_IMAGE" \
    podman --runtime "$RUNTIME" build --quiet --network none --no-cache -t "$BINARY_IMAGE" "$ctx" >/dev/null
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  timed "smoke test: #!/bin/sh as uid 65534" \
    podman --runtime "$RUNTIME" run --rm --network none --user 65534:65534 --read-only "$BINARY_IMAGE" \
    /bin/sh -c 'test "$(id -u)" = 65534'
  drop_replaced "$old" "$BINARY_IMAGE"
}

t0=$(now_ms)
build_python
build_binary
log "base images ready in $(($(now_ms) - t0)) ms: $PYTHON_IMAGE, $BINARY_IMAGE"
