#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Deploy benchmark (issue 4): the time from `POST /api/functions/deploy?wait=true` to an active
# version, side by side with a raw `podman build` of the same build context measured in the same
# run, with the same layers available in the cache. Figures and their meaning: docs/PERFORMANCE.md.
#
#   just bench deploy        or        bash bench/deploy.sh
#
# What it does:
#   1. Podman (deploy/podman.sh start) and the base images (deploy/base-images.sh); the platform:
#      a cloud-api started by deploy/up.sh that answers GET /health is reused, otherwise
#      `deploy/up.sh --detach --release` starts it (its build is not measured) and it is stopped
#      again at the end.
#   2. Registers a bench user and measures, each scenario CP_BENCH_RUNS times (default 5), a deploy
#      and then a raw build, alternately, so that both see the same load:
#        first     the first deploy (v1) of a freshly initialised function
#        changed   a redeploy whose main.py changed (the base and bootstrap layers are cached)
#        same      a redeploy of the same archive (the code layers are cached too)
#        pip       a redeploy, main.py changed, of a function with a requirements.txt (the pip
#                  layer is cached); needs PyPI (pip in a build step, host network); CP_BENCH_PIP=0
#                  skips it
#      raw builds: `podman --url unix://SOCK build --network none` of a context reproduced here
#      (see raw_context) with the same layers cached; and `--no-cache` builds for reference.
#   3. Prints `name  median_ms  min-max  n  cached` rows, deploy and raw side by side, with the
#      ratio of the medians; `cached` counts the build steps Podman took from the layer cache, so
#      a build that ignores the cache shows. Removes what it created: its localhost/bench/raw
#      images, the bench functions (DELETE, then their images).
#
# Environment: CP_BENCH_RUNS (5); CLOUD_API_SERVER__PORT (8080), ADMIN_API_SERVER__PORT (8081) when
# the bench starts the platform on other ports; CP_BENCH_KEEP=1 leaves a platform it started running.
set -euo pipefail
# shellcheck source=../deploy/lib/common.sh
source "$(dirname "$0")/../deploy/lib/common.sh"

RUNS=${CP_BENCH_RUNS:-5}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "CP_BENCH_RUNS must be a positive number"
PORT=${CLOUD_API_SERVER__PORT:-8080}
API=http://127.0.0.1:$PORT
SOCK=$CP_LOCAL/podman/podman.sock
BOOTSTRAP=$CP_ROOT/crates/container/src/runtime/bootstrap.py
BASE_IMAGE=localhost/containerpub/python:3
# The pip scenario's requirements.txt: one small pure-Python wheel (the one the tests install).
PIP_REQUIREMENT=six==1.16.0
RAW_REPO=localhost/bench/raw

for tool in curl jq tar podman awk; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
[ -f "$BOOTSTRAP" ] || die "$BOOTSTRAP is missing"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench-deploy.XXXXXX")
# A nonce in every main.py and label: nothing of an earlier run can hit the layer cache.
NONCE=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
started_platform=0
token=''
functions=()   # the bench functions' ids
fn_images=()   # the images the platform built for them
raw_images=()  # the raw builds' tags
retries=0

pod() { podman --url "unix://$SOCK" "$@"; }

cleanup() {
  local id images
  set +e
  trap - EXIT
  # A fresh token (the last may have expired); without one the DELETEs fail and are skipped.
  if [ ${#functions[@]} -gt 0 ]; then login 2>/dev/null; fi
  for id in "${functions[@]}"; do
    curl -sS -o /dev/null --max-time 10 -X DELETE -H "Authorization: Bearer $token" \
      "$API/api/functions/$id"
  done
  # The bench functions are pending deletion (the deletion worker removes their rows and archives
  # after the grace period); their images and the raw builds' go now, by name (their untagged
  # intermediate layers with them). A second try covers a concurrent removal by someone else.
  images=("${raw_images[@]}" "${fn_images[@]}")
  if [ ${#images[@]} -gt 0 ]; then
    pod rmi --ignore "${images[@]}" >/dev/null 2>&1 || pod rmi --ignore "${images[@]}" >/dev/null 2>&1 \
      || log "some bench images could not be removed: ${images[*]}"
  fi
  rm -rf "$WORK"
  if [ "$started_platform" = 1 ] && [ "${CP_BENCH_KEEP:-0}" != 1 ]; then
    "$CP_ROOT/deploy/down.sh" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# ---- 1. Podman, the base images, the platform (none of it measured) ----

"$CP_ROOT/deploy/podman.sh" start >/dev/null
"$CP_ROOT/deploy/base-images.sh" build 2>/dev/null || die "deploy/base-images.sh failed"

healthy() { curl -fsS -o /dev/null --max-time 2 "$API/health" 2>/dev/null; }
if pid=$(service_pid cloud-api); then
  healthy || die "cloud-api (pid $pid) runs but does not answer $API/health; stop it (deploy/down.sh) or point CLOUD_API_SERVER__PORT at it"
  profile=$(basename "$(dirname "$(readlink "/proc/$pid/exe")")")
  log "reusing the running cloud-api (pid $pid, $profile build) on :$PORT"
else
  port_in_use "$PORT" && die "port $PORT is in use by a process deploy/up.sh did not start; set CLOUD_API_SERVER__PORT and ADMIN_API_SERVER__PORT"
  log "starting the platform: deploy/up.sh --detach --release (its build is not part of the bench)"
  started_platform=1
  "$CP_ROOT/deploy/up.sh" --detach --release || die "deploy/up.sh failed"
  profile=release
fi
[ "$profile" = release ] || log "warning: a $profile build is running; its figures are not those of production"

# ---- helpers ----

# api METHOD PATH [CURL ARGS...] prints the body; fails on a status >= 400 (the body goes to stderr).
api() {
  local method=$1 path=$2 code
  shift 2
  local auth=()
  [ -z "$token" ] || auth=(-H "Authorization: Bearer $token")
  code=$(curl -sS -o "$WORK/body" -w '%{http_code}' -X "$method" "${auth[@]}" "$@" "$API$path") \
    || { log "$method $path: no answer"; return 1; }
  if [ "$code" -ge 400 ]; then
    log "$method $path answered $code: $(cat "$WORK/body")"
    return 1
  fi
  cat "$WORK/body"
}

email=deploybench.$NONCE@example.com
password=Zq7-perf-run-$NONCE
# login: access tokens live 5 minutes, so every scenario starts with a fresh one.
login() {
  token=''
  token=$(api POST /api/auth/login -H 'Content-Type: application/json' \
    -d "$(jq -n --arg e "$email" --arg p "$password" '{email: $e, password: $p}')" | jq -r .access_token)
  if [ -z "$token" ] || [ "$token" = null ]; then token=''; return 1; fi
}

# init_function NAME sets FN to the new function's id (and remembers it for the clean-up).
init_function() {
  FN=$(api POST /api/functions/init -H 'Content-Type: application/json' \
    -d "$(jq -n --arg n "$1" '{name: $n}')" | jq -r .id) || die "init $1 failed"
  functions+=("$FN")
}

# write_code DIR TAG writes a main.py whose content is unique to TAG.
write_code() {
  mkdir -p "$1"
  cat >"$1/main.py" <<PY
# ContainerPub deploy benchmark $NONCE, code revision $2
REVISION = "$NONCE-$2"


def handler(request):
    return {"revision": REVISION, "echo": request.get("body")}
PY
}

# archive DIR OUT packs DIR's files into the tar.gz OUT (untimed).
archive() { tar -czf "$2" -C "$1" .; }

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# deploy ID ARCHIVE SCENARIO: one timed `POST /api/functions/deploy?wait=true` (curl's total
# time: upload, checks, queue, build, activation). Records ms, the server's build_duration_ms
# and the build's cached steps under $WORK/SCENARIO.*.
deploy() {
  local id=$1 file=$2 scenario=$3 out code secs attempt
  for attempt in 1 2 3; do
    out=$(curl -sS -o "$WORK/deploy.json" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $token" \
      -F "function_id=$id" -F "archive=@$file;type=application/gzip" "$API/api/functions/deploy?wait=true") \
      || die "deploy: no answer"
    read -r code secs <<<"$out"
    if [ "$code" = 201 ] && [ "$(jq -r .status "$WORK/deploy.json")" = active ]; then break; fi
    if [ "$attempt" -lt 3 ] && jq -r '.deployment.error // empty' "$WORK/deploy.json" 2>/dev/null | storage_race; then
      log "a deploy failed on a concurrent image removal in Podman's storage; not counted, deploying again"
      retries=$((retries + 1))
      continue
    fi
    log "deploy answered $code: $(jq -c 'del(.deployment.build_log)' "$WORK/deploy.json" 2>/dev/null || cat "$WORK/deploy.json")"
    jq -r '.deployment.build_log // empty' "$WORK/deploy.json" >&2 2>/dev/null || true
    die "a deploy did not become active"
  done
  fn_images+=("localhost/containerpub/fn-$id:v$(jq -r .version "$WORK/deploy.json")")
  awk -v s="$secs" 'BEGIN { printf "%d\n", s * 1000 + 0.5 }' >>"$WORK/$scenario.ms"
  jq -r .deployment.build_duration_ms "$WORK/deploy.json" >>"$WORK/$scenario.build"
  jq -r .deployment.build_log "$WORK/deploy.json" | cached_steps >>"$WORK/$scenario.cached"
}

# storage_race succeeds when the text on stdin is the error Podman 4.3 gives when an image it
# looks at (for the layer cache) is removed at the same moment by someone else sharing the storage.
storage_race() { grep -Eq '(layer|image) not known'; }

# cached_steps reads a build log and prints "HITS/STEPS" ("Using cache" lines / STEP lines).
cached_steps() { awk '/^STEP [0-9]+\/[0-9]+/ { s++ } /Using cache/ { h++ } END { printf "%d/%d\n", h, s }'; }

# raw_context DIR CODE_DIR REVISION writes the build context cloud-api would send for this
# function (crates/container/src/runtime/plan.rs, python recipe; the golden files
# crates/container/tests/golden/python{,_requirements}/Containerfile): the generated Containerfile
# with the same instructions and label keys (values of this bench), containerpub/bootstrap.py (the
# platform's bootstrap, byte for byte) and function/ (the archive's files).
raw_context() {
  local dir=$1 code=$2 rev=$3 pip=''
  mkdir -p "$dir/containerpub" "$dir/function"
  # -p: unchanged files keep their times, as the platform's context keeps its fixed ones.
  cp -p "$BOOTSTRAP" "$dir/containerpub/bootstrap.py"
  cp -p "$code"/* "$dir/function/"
  chmod 0644 "$dir/containerpub/bootstrap.py" "$dir"/function/*
  if [ -f "$code/requirements.txt" ]; then
    pip='COPY function/requirements.txt /opt/containerpub/requirements.txt
RUN ["python3", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--target", "/opt/containerpub/packages", "--requirement", "/opt/containerpub/requirements.txt"]
'
  fi
  cat >"$dir/Containerfile" <<CONTAINERFILE
# Generated by ContainerPub for the \`python\` runtime. Do not edit.
# The build context holds the function under function/ and the platform's files under containerpub/.
FROM $BASE_IMAGE
COPY containerpub/bootstrap.py /opt/containerpub/bootstrap.py
${pip}COPY function/ /function/
RUN ["python3", "-m", "compileall", "-q", "/function"]
LABEL io.containerpub.runtime="python" \\
      io.containerpub.recipe="python" \\
      io.containerpub.contract="1" \\
      containerpub.deployment="bench-$NONCE-$rev" \\
      containerpub.function="bench-$NONCE" \\
      containerpub.version="$rev"
USER 65534:65534
CMD ["python3", "/opt/containerpub/bootstrap.py"]
CONTAINERFILE
  chmod 0644 "$dir/Containerfile"
}

# raw_build DIR REVISION SCENARIO [PODMAN BUILD ARGS...]: one timed raw build of DIR through the
# same Podman service (wall time of the podman client: packing the context, the build, the tag),
# with the labels cloud-api also passes as build parameters, and the network cloud-api asks for
# (host when a requirements.txt is installed, none otherwise).
raw_build() {
  local dir=$1 rev=$2 scenario=$3 t0 t1 network=none attempt
  shift 3
  [ ! -f "$dir/function/requirements.txt" ] || network=host
  raw_images+=("$RAW_REPO:$NONCE-$rev")
  for attempt in 1 2 3; do
    t0=$(now_ms)
    if pod build --network "$network" --layers --label "containerpub.function=bench-$NONCE" \
      --label "containerpub.deployment=bench-$NONCE-$rev" --label "containerpub.version=$rev" \
      "$@" -t "$RAW_REPO:$NONCE-$rev" "$dir" >"$WORK/raw.log" 2>&1; then
      break
    fi
    if [ "$attempt" -lt 3 ] && storage_race <"$WORK/raw.log"; then
      log "a raw build failed on a concurrent image removal in Podman's storage; not counted, building again"
      retries=$((retries + 1))
      continue
    fi
    cat "$WORK/raw.log" >&2
    die "raw podman build failed"
  done
  t1=$(now_ms)
  echo $((t1 - t0)) >>"$WORK/$scenario.ms"
  cached_steps <"$WORK/raw.log" >>"$WORK/$scenario.cached"
}

# ---- 2. Measurements ----

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "bench user $email; $RUNS runs a scenario; load average: $load_start"
api POST /api/auth/register -H 'Content-Type: application/json' \
  -d "$(jq -n --arg e "$email" --arg p "$password" \
    '{email: $e, password: $p, first_name: "Deploy", last_name: "Bench"}')" >/dev/null \
  || die "registering the bench user failed"
login || die "login failed"

# Warm-up, not counted: one deploy and one raw build, so that the raw context's bootstrap layer
# is cached as the platform's is, and the first connections are open.
init_function "bench-warmup-$NONCE"
write_code "$WORK/code/warm" warm
archive "$WORK/code/warm" "$WORK/warm.tar.gz"
deploy "$FN" "$WORK/warm.tar.gz" warmup
raw_context "$WORK/raw/warm" "$WORK/code/warm" warm
raw_build "$WORK/raw/warm" warm warmup-raw

# first: a fresh function's first deploy; raw_new: a context with new code (same cache state:
# FROM and the bootstrap COPY cached, everything from COPY function/ on built).
log "scenario first: v1 of a fresh function, vs raw build of new code"
login || die "login failed"
for i in $(seq 1 "$RUNS"); do
  init_function "bench-first-$NONCE-$i"
  write_code "$WORK/code/first$i" "first$i"
  archive "$WORK/code/first$i" "$WORK/first$i.tar.gz"
  deploy "$FN" "$WORK/first$i.tar.gz" first
  write_code "$WORK/code/rawfirst$i" "rawfirst$i"
  raw_context "$WORK/raw/first$i" "$WORK/code/rawfirst$i" "rawfirst$i"
  raw_build "$WORK/raw/first$i" "rawfirst$i" first-raw
done

# changed: redeploys of one function, main.py changed each time; raw: the same, new code each time.
log "scenario changed: redeploy with changed code, vs raw build of changed code"
login || die "login failed"
init_function "bench-redeploy-$NONCE"
fn=$FN
write_code "$WORK/code/v1" v1
archive "$WORK/code/v1" "$WORK/v1.tar.gz"
deploy "$fn" "$WORK/v1.tar.gz" setup
for i in $(seq 1 "$RUNS"); do
  write_code "$WORK/code/changed$i" "changed$i"
  archive "$WORK/code/changed$i" "$WORK/changed$i.tar.gz"
  deploy "$fn" "$WORK/changed$i.tar.gz" changed
  write_code "$WORK/code/rawchanged$i" "rawchanged$i"
  raw_context "$WORK/raw/changed$i" "$WORK/code/rawchanged$i" "rawchanged$i"
  raw_build "$WORK/raw/changed$i" "rawchanged$i" changed-raw
done

# same: the last archive again (a new version; the archive store dedupes it). Up to the RUN step
# every layer hits the cache; the version labels differ, so LABEL, USER and CMD are committed
# anew. raw: the last raw context again with a new version label, the same cache state.
log "scenario same: redeploy of an identical archive, vs raw rebuild of an identical context"
login || die "login failed"
last=$WORK/raw/changed$RUNS
for i in $(seq 1 "$RUNS"); do
  deploy "$fn" "$WORK/changed$RUNS.tar.gz" same
  raw_context "$last" "$WORK/code/rawchanged$RUNS" "rawsame$i"
  raw_build "$last" "rawsame$i" same-raw
done

# pip: a function with a requirements.txt (pip installs it from PyPI in a build step with the
# host's network), redeployed with main.py changed: the pip layer is cached for the raw build,
# and would be for the platform's. CP_BENCH_PIP=0 skips it (no network); it is skipped when the
# base image has no pip.
pip_scenario=0
if [ "${CP_BENCH_PIP:-1}" != 0 ]; then
  if pod run --rm --network none "$BASE_IMAGE" python3 -c 'import pip' >/dev/null 2>&1; then
    pip_scenario=1
  else
    log "skipping the requirements.txt scenario: $BASE_IMAGE has no pip (deploy/base-images.sh --force)"
  fi
fi
if [ "$pip_scenario" = 1 ]; then
  log "scenario pip: redeploy with requirements.txt and changed code, vs raw build with the pip layer cached"
  login || die "login failed"
  init_function "bench-pip-$NONCE"
  pipfn=$FN
  write_pip_code() { write_code "$1" "$2"; printf '%s\n' "$PIP_REQUIREMENT" >"$1/requirements.txt"; }
  write_pip_code "$WORK/code/pip0" pip0
  archive "$WORK/code/pip0" "$WORK/pip0.tar.gz"
  deploy "$pipfn" "$WORK/pip0.tar.gz" setup
  raw_context "$WORK/raw/pip0" "$WORK/code/pip0" pip0
  raw_build "$WORK/raw/pip0" pip0 warmup-raw
  for i in $(seq 1 "$RUNS"); do
    write_pip_code "$WORK/code/pip$i" "pip$i"
    archive "$WORK/code/pip$i" "$WORK/pip$i.tar.gz"
    deploy "$pipfn" "$WORK/pip$i.tar.gz" pip
    write_pip_code "$WORK/code/rawpip$i" "rawpip$i"
    raw_context "$WORK/raw/pip$i" "$WORK/code/rawpip$i" "rawpip$i"
    raw_build "$WORK/raw/pip$i" "rawpip$i" pip-raw
  done
fi

# nocache: raw builds with --no-cache (nothing from the cache; what a first build costs).
log "reference: raw builds with --no-cache; the podman client's own cost"
for i in $(seq 1 "$RUNS"); do
  write_code "$WORK/code/nocache$i" "nocache$i"
  raw_context "$WORK/raw/nocache$i" "$WORK/code/nocache$i" "nocache$i"
  raw_build "$WORK/raw/nocache$i" "nocache$i" nocache-raw --no-cache
done
# The client's start and its _ping requests, with a request Podman answers at once (its
# /version endpoint takes ~0.5 s here and would overstate this).
for _ in $(seq 1 "$RUNS"); do
  t0=$(now_ms)
  pod image exists "$BASE_IMAGE"
  echo $(($(now_ms) - t0)) >>"$WORK/client.ms"
done

# ---- 3. Report ----

# summary FILE FIELD prints median, min, max, n (FIELD: median|min|max|n|all) of the numbers in FILE.
summary() {
  sort -n "$1" | awk -v f="$2" '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    if (f == "median") printf "%d", m + 0.5
    else if (f == "min") printf "%d", v[1]
    else if (f == "max") printf "%d", v[NR]
    else if (f == "n") printf "%d", NR
  }'
}
# cached FILE prints the cached steps "HITS/STEPS", comma-separated when they varied.
cached() { sort -u "$1" | paste -sd, -; }
row() { # row NAME SCENARIO
  printf '%-58s %9s %11s %3s  %s\n' "$1" "$(summary "$WORK/$2.ms" median)" \
    "$(summary "$WORK/$2.ms" min)-$(summary "$WORK/$2.ms" max)" "$(summary "$WORK/$2.ms" n)" \
    "$([ -f "$WORK/$2.cached" ] && cached "$WORK/$2.cached" || echo -)"
}
# overhead SCENARIO: deploy time minus the server's build_duration_ms, per deploy, then the median.
overhead() {
  paste "$WORK/$1.ms" "$WORK/$1.build" | awk '{ print $1 - $2 }' >"$WORK/$1.over"
  summary "$WORK/$1.over" median
}
ratio() { awk -v a="$(summary "$WORK/$1.ms" median)" -v b="$(summary "$WORK/$2.ms" median)" 'BEGIN { printf "%.2f", a / b }'; }
pair() { # pair DEPLOY_NAME SCENARIO RAW_NAME
  row "$1" "$2"
  row "$3" "$2-raw"
  printf '  = ratio deploy/raw %s   (server build_duration_ms median %s; deploy time outside it, median %s ms)\n' \
    "$(ratio "$2" "$2-raw")" "$(summary "$WORK/$2.build" median)" "$(overhead "$2")"
}

echo
echo "Deploy benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $load_start at the start," \
  "$(cut -d' ' -f1-3 /proc/loadavg) at the end," \
  "cloud-api $profile build, $(pod version --format 'podman {{.Server.Version}}' 2>/dev/null)," \
  "$(cat "$CP_LOCAL/podman/runtime" 2>/dev/null || echo crun)"
echo "ms = wall time (deploy: curl's time_total of POST /api/functions/deploy?wait=true; raw: the podman client)"
echo "cached = build steps answered from the layer cache / build steps"
printf '%-58s %9s %11s %3s  %s\n' name median_ms min-max n cached
pair "deploy: first deploy of a fresh function (v1)" first "raw podman build: new code, same cache state"
pair "deploy: redeploy, main.py changed" changed "raw podman build: code changed, same cache state"
pair "deploy: redeploy, identical archive" same "raw podman build: identical context"
if [ "$pip_scenario" = 1 ]; then
  pair "deploy: redeploy with requirements.txt, main.py changed" pip "raw podman build: same, pip layer cached"
fi
row "raw podman build --no-cache (nothing cached)" nocache-raw
row "podman client alone (podman --url ... image exists)" client
[ "$retries" = 0 ] || echo "note: $retries build(s) failed on a concurrent image removal in the shared storage and were repeated (not counted)"
# A check, not a timing: the layer cache is what makes a redeploy cheap.
if ! grep -qv '^0/' "$WORK/same.cached"; then
  echo "note: the platform's builds took no step from the layer cache (raw builds of the same context did:"
  echo "      $(cached "$WORK/same-raw.cached")); see docs/PERFORMANCE.md, Deploy."
fi
