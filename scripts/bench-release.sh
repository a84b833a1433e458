#!/usr/bin/env bash
# Benchmark for issue 4: relctl against the sequential script it replaces, on
# the same engine and registry. Fixture: the five-image example plus a base
# image that server, worker and agent build on; every build has `RUN sleep 1`
# and a 20 MB layer of random data. Prints a table (medians of RUNS); not a test.
# Also measures relctl's peak RSS releasing a 1 GiB build context, and the
# same DAG scripted without relctl, to tell relctl's overhead from the engine's.
set -euo pipefail
command -v jq >/dev/null || { echo "bench: jq is needed (apt-get install jq)" >&2; exit 1; }
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
MB=${MB:-20}
GIB_FILES=${GIB_FILES:-64}   # x 16 MiB = 1 GiB context
PARALLELISM=${PARALLELISM:-4} # relctl's build.parallelism (the default is 4)
BUILDER=${BUILDER:-auto}      # relctl's build.builder: auto (BuildKit here), buildkit or classic
SCENARIOS=${SCENARIOS:-all}   # all, or 5,6 only: the root-context monorepo and the fresh engine (layer cache)
DEPS_SECONDS=${DEPS_SECONDS:-5} # scenario 6: how long the dependency step takes

started=0
if ! scripts/services.sh status; then scripts/services.sh start; started=1; fi
# Each run leaves about 1 GB of images, build cache and blobs: clean up
# services this script started (ones already running are left as they are).
root=$PWD
cleanup() {
  if [ -n "${work:-}" ]; then rm -rf "$work"; fi
  if [ "$started" = 1 ]; then "$root/scripts/services.sh" clean; fi
}
trap cleanup EXIT
eval "$(scripts/services.sh env)"
cargo build --release --quiet --bin relctl
relctl=$PWD/target/release/relctl
reg=$RELCTL_TEST_REGISTRY
log=$RELCTL_TEST_REGISTRY_LOG
work=$(mktemp -d /tmp/relctl-bench4.XXXXXX)
G() { git -c user.name=bench -c user.email=bench@example.invalid "$@"; }
now() { date +%s%N; }
# The docker CLI here (28.x, no buildx) warns on every classic build that the
# legacy builder is deprecated; the baseline has no other builder, so hush it.
quiet_legacy() { grep -v -e '^DEPRECATED: The legacy builder' -e 'Install the buildx component' -e 'docs.docker.com/go/buildx' -e '^$' >&2 || true; }
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }   # jiffies all cores spent busy
ms() { echo $(( ($2 - $1) / 1000000 )); }
# peak_kib PID: waits for PID and prints its peak RSS (VmHWM, KiB), polled
# from /proc with shell builtins only (no process per poll beside the timed run).
peak_kib() {
  local pid=$1 peak=0 k v _
  while kill -0 "$pid" 2>/dev/null; do
    while read -r k v _; do [ "$k" = VmHWM: ] && [ "$v" -gt "$peak" ] && peak=$v; done 2>/dev/null </proc/"$pid"/status || true
    sleep 0.05
  done
  local rc=0; wait "$pid" || rc=$?
  echo "$peak"; return $rc
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# make_app DIR NS: the fixture repository with a bare remote.
make_app() {
  local d=$1 ns=$2
  git init -q --bare -b main "$d/remote.git"
  mkdir -p "$d/app" && cd "$d/app" && git init -q -b main
  for img in base frontend; do
    mkdir -p docker/$img && cp "$RELCTL_TEST_BUSYBOX" docker/$img/busybox
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN sleep 1\nCOPY %s.bin /%s.bin\n' $img $img >docker/$img/Dockerfile
  done
  for img in server worker agent; do
    mkdir -p docker/$img
    printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 1\nCOPY %s.bin /%s.bin\n' $img $img >docker/$img/Dockerfile
  done
  mkdir -p docker/nginx
  printf 'ARG FRONTEND_IMAGE\nFROM ${FRONTEND_IMAGE}\nRUN sleep 1\nCOPY nginx.bin /nginx.bin\n' >docker/nginx/Dockerfile
  cat >release.yaml <<YAML
registry: $reg
namespace: $ns
project: bench
build: { retries: 0, parallelism: $PARALLELISM, network: none, builder: $BUILDER }
images:
  base:     { context: docker/base }
  frontend: { context: docker/frontend }
  server:   { context: docker/server, depends_on: [base] }
  worker:   { context: docker/worker, depends_on: [base] }
  agent:    { context: docker/agent, depends_on: [base] }
  nginx:    { context: docker/nginx, depends_on: [frontend] }
YAML
  G remote add origin "$d/remote.git"
  cd - >/dev/null
}

# fresh_layers DIR IMAGES...: new random data, so no layer exists anywhere yet.
fresh_layers() {
  local d=$1; shift
  (cd "$d/app" && G pull -q --rebase origin main 2>/dev/null || true)
  for img in "$@"; do head -c $((MB * 1048576)) /dev/urandom >"$d/app/docker/$img/$img.bin"; done
  (cd "$d/app" && G add -A && G commit -q -m "layers $*" && G push -q origin main)
}

# The replaced scripts: in dependency order, docker build --no-cache && docker push, then VERSION.
baseline() {
  local d=$1 ns=$2 tag=$3
  (cd "$d/app"
   for img in base frontend server worker agent nginx; do
     ref="$reg/$ns/bench-$img"
     docker build -q --no-cache --network none --build-arg "BASE_IMAGE=$reg/$ns/bench-base:$tag" \
       --build-arg "FRONTEND_IMAGE=$reg/$ns/bench-frontend:$tag" -t "$ref:$tag" -t "$ref:latest" "docker/$img" >/dev/null 2> >(quiet_legacy)
     docker push -q "$ref:$tag" >/dev/null && docker push -q "$ref:latest" >/dev/null
   done
   echo "$tag" >VERSION && G add VERSION && G commit -q -m "chore(release): $tag" && G push -q origin main)
}

# bk_build DIR REF: one BuildKit build exactly as relctl sends it (POST
# /build?version=2 with the context tar as the body).
bk_build() {
  local out
  out=$(tar -C "$1" -cf - . | curl -sS --unix-socket "${DOCKER_HOST#unix://}" -X POST -H 'Content-Type: application/x-tar' \
    --data-binary @- --url-query version=2 --url-query nocache=1 --url-query networkmode=none --url-query "t=$2" \
    --url-query "buildargs={\"BASE_IMAGE\":\"$reg/$ns/bench-base:f\",\"FRONTEND_IMAGE\":\"$reg/$ns/bench-frontend:f\"}" \
    http://docker/v1.41/build)
  if grep -q errorDetail <<<"$out"; then echo "bench: BuildKit build of $1 failed: $out" >&2; exit 1; fi
}
classic_build() {
  docker build -q --no-cache --network none --build-arg "BASE_IMAGE=$reg/$ns/bench-base:f" \
    --build-arg "FRONTEND_IMAGE=$reg/$ns/bench-frontend:f" -t "$2" "$1" >/dev/null 2> >(quiet_legacy)
}
# The builder relctl uses: BuildKit through the Engine API unless BUILDER=classic.
relctl_build=bk_build; [ "$BUILDER" = classic ] && relctl_build=classic_build
# The same DAG scripted by hand, without relctl: a greedy schedule with no
# overhead of its own. Each build is the request relctl sends ($relctl_build)
# and starts the moment its parent is built; each image is pushed (docker
# push) the moment it is built. No context from git, no staging, promotion
# or VERSION commit. relctl / script
# is relctl's own overhead; script / floor is what running the steps side by
# side costs on the engine (the DAG bound printed above holds for any schedule).
scripted_chain() { # scripted_chain DIR ROOT CHILD...: build ROOT, then push it while its children build and push
  local d=$1 root=$2 pids=() p rc=0; shift 2
  "$relctl_build" "$d/app/docker/$root" "$reg/$ns/bench-$root:f"
  docker push -q "$reg/$ns/bench-$root:f" >/dev/null & pids+=($!)
  for c in "$@"; do
    ("$relctl_build" "$d/app/docker/$c" "$reg/$ns/bench-$c:f" && docker push -q "$reg/$ns/bench-$c:f" >/dev/null) & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
scripted() {
  local rc=0 a b
  (scripted_chain "$1" base server worker agent) & a=$!
  (scripted_chain "$1" frontend nginx) & b=$!
  wait $a || rc=1; wait $b || rc=1
  if [ $rc != 0 ]; then echo "bench: the scripted schedule failed" >&2; exit 1; fi
}

uploads_for() { # uploads_for OFFSET NS IMAGE...: blob upload requests to those repositories since OFFSET
  local off=$1 ns=$2; shift 2
  local n=0
  for img in "$@"; do n=$((n + $(tail -c +"$((off + 1))" "$log" | grep -c "\"\(POST\|PUT\|PATCH\) /v2/$ns/bench-$img/blobs/uploads" || true))); done
  echo $n
}

# ---- Scenario 5: three images build from the repository root (the monorepo
# layout of the scripts relctl replaces), each with its own Dockerfile that
# copies only its own directory; only frontend/ changes.
make_root_app() { # make_root_app DIR NS
  make_app "$1" "$2"
  (cd "$1/app"
   for img in server worker agent; do
     printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 1\nCOPY docker/%s/%s.bin /%s.bin\n' $img $img $img >docker/$img/Dockerfile
   done
   sed -i -E 's#^  (server|worker|agent): +\{ context: docker/([a-z]+),#  \1: { context: ., dockerfile: docker/\2/Dockerfile,#' release.yaml)
}
# The replaced script for that layout: every image from the root context.
baseline_root() {
  local d=$1 ns=$2 tag=$3
  (cd "$d/app"
   for img in base frontend server worker agent nginx; do
     ref="$reg/$ns/bench-$img"; ctx="docker/$img"
     case $img in server|worker|agent) ctx=. ;; esac
     docker build -q --no-cache --network none --build-arg "BASE_IMAGE=$reg/$ns/bench-base:$tag" \
       --build-arg "FRONTEND_IMAGE=$reg/$ns/bench-frontend:$tag" -f "docker/$img/Dockerfile" -t "$ref:$tag" -t "$ref:latest" "$ctx" >/dev/null 2> >(quiet_legacy)
     docker push -q "$ref:$tag" >/dev/null && docker push -q "$ref:latest" >/dev/null
   done
   echo "$tag" >VERSION && G add VERSION && G commit -q -m "chore(release): $tag" && G push -q origin main)
}
scenario5() {
  s5_r=(); s5_b=(); s5_up=(); s5_built=()
  for i in $(seq 1 "$RUNS"); do
    for who in relctl baseline; do
      d="$work/s5-$who-$i"; ns="b5$who$i$(date +%s)"; mkdir -p "$d"; make_root_app "$d" "$ns"
      fresh_layers "$d" base frontend server worker agent nginx
      (cd "$d/app" && git tag v1.0.0 && G push -q origin v1.0.0)
      if [ $who = relctl ]; then (cd "$d/app" && "$relctl" -q release v1.0.0 >/dev/null); else baseline_root "$d" "$ns" v1.0.0; fi
      fresh_layers "$d" frontend
      (cd "$d/app" && git tag v1.1.0 && G push -q origin v1.1.0)
      off=$(stat -c %s "$log"); sync; t0=$(now)
      if [ $who = relctl ]; then
        (cd "$d/app" && "$relctl" --json release v1.1.0 >"$work/s5.json"); s5_r+=($(ms $t0 $(now)))
        sleep 0.5; s5_up+=($(uploads_for "$off" "$ns" base server worker agent))
        s5_built+=("$(jq -r '[.report.images[] | select(.built) | .image] | sort | join("+")' "$work/s5.json")")
      else baseline_root "$d" "$ns" v1.1.0; s5_b+=($(ms $t0 $(now))); fi
    done
    echo "scenario 5 run $i/$RUNS: relctl ${s5_r[-1]} ms (built ${s5_built[-1]}), baseline ${s5_b[-1]} ms" >&2
  done
}

# ---- Scenario 6: a fresh engine (a CI runner) releases an image whose code
# changed, behind a dependency step of DEPS_SECONDS; v1.0.0 was released from
# the first engine. With the layer cache against the same release with --no-cache,
# each on an engine emptied first. The step writes a random UUID, so an
# unchanged layer proves it did not run.
make_deps_app() { # make_deps_app DIR NS
  local d=$1 ns=$2
  git init -q --bare -b main "$d/remote.git"
  mkdir -p "$d/app" && cd "$d/app" && git init -q -b main && cp "$RELCTL_TEST_BUSYBOX" busybox
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep %s; /bin/busybox cat /proc/sys/kernel/random/uuid > /deps"]\nCOPY code.txt /code.txt\n' "$DEPS_SECONDS" >Dockerfile
  printf 'registry: %s\nnamespace: %s\nproject: bench\nbuild: { retries: 0, builder: %s }\nimages:\n  app: { context: . }\n' "$reg" "$ns" "$BUILDER" >release.yaml
  echo one >code.txt
  G add -A && G commit -q -m deps && G remote add origin "$d/remote.git" && G push -q origin main && git tag v1.0.0 && G push -q origin v1.0.0
  "$relctl" -q release v1.0.0 >/dev/null
  G pull -q --ff-only origin main && echo two >code.txt && G commit -qam code && G push -q origin main && git tag v1.1.0 && G push -q origin v1.1.0
  cd - >/dev/null
}
deps_layer() { # deps_layer NS TAG: the dependency step's layer (diff id) in the registry
  local m c
  m=$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://$reg/v2/$1/bench-app/manifests/$2")
  c=$(jq -r .config.digest <<<"$m")
  curl -sfL "http://$reg/v2/$1/bench-app/blobs/$c" | jq -r '.rootfs.diff_ids[1]'
}
empty_engine2() { docker -H "$RELCTL_TEST_DOCKER2_HOST" system prune -af >/dev/null 2>&1; }
scenario6() {
  s6_c=(); s6_n=(); s6_same=0
  for i in $(seq 1 "$RUNS"); do
    for mode in cache nocache; do
      d="$work/s6-$mode-$i"; ns="b6$mode$i$(date +%s)"; mkdir -p "$d"; make_deps_app "$d" "$ns"
      empty_engine2; flag=; [ $mode = nocache ] && flag=--no-cache
      sync; t0=$(now)
      (cd "$d/app" && DOCKER_HOST=$RELCTL_TEST_DOCKER2_HOST "$relctl" -q release v1.1.0 $flag >/dev/null)
      t=$(ms $t0 $(now))
      if [ $mode = cache ]; then
        s6_c+=("$t"); [ "$(deps_layer "$ns" v1.0.0)" = "$(deps_layer "$ns" v1.1.0)" ] && s6_same=$((s6_same + 1))
      else s6_n+=("$t"); fi
    done
    echo "scenario 6 run $i/$RUNS: with cache ${s6_c[-1]} ms, --no-cache ${s6_n[-1]} ms" >&2
  done
  empty_engine2
}
print_cache_scenarios() {
  local a b
  a=$(median "${s5_r[@]}"); b=$(median "${s5_b[@]}")
  printf '%-46s %-10s %-10s %-8s %s\n' "5. only frontend/ changed, 3 root-context images" "$a" "$b" "$(ratio "$a" "$b")" "<= 0.2"
  printf '%-46s %-10s %-10s %-8s %s\n' "   images relctl rebuilt (every run)" "$(printf '%s\n' "${s5_built[@]}" | sort -u | paste -sd' ')" "" "" "frontend+nginx"
  printf '%-46s %-10s %-10s %-8s %s\n' "   relctl blob uploads to unchanged images" "$(printf '%s\n' "${s5_up[@]}" | sort -n | tail -1)" "" "" "0"
  a=$(median "${s6_c[@]}"); b=$(median "${s6_n[@]}")
  printf '%-46s %-10s %-10s %-8s %s\n' "6. fresh engine, code changed (vs --no-cache)" "$a" "$b" "$(ratio "$a" "$b")" "<= 0.3"
  printf '%-46s %-10s %-10s %-8s %s\n' "   runs whose ${DEPS_SECONDS} s dependency step was reused" "$s6_same/$RUNS" "" "" "$RUNS/$RUNS"
  printf 'all runs (ms): s5 relctl %s | s5 baseline %s | s6 cache %s | s6 --no-cache %s\n' "${s5_r[*]}" "${s5_b[*]}" "${s6_c[*]}" "${s6_n[*]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
if [ "$SCENARIOS" != all ]; then
  scenario5; scenario6
  printf '\nrelctl layer-cache benchmark, %s, %s, %s cores; %s runs; scenario 5: %s MB random layer and RUN sleep 1 per image, parallelism %s; scenario 6: a %s s dependency step; builder %s\n' "$(date -u +%F)" "$(uname -m)" "$(nproc)" "$RUNS" "$MB" "$PARALLELISM" "$DEPS_SECONDS" "$BUILDER"
  printf '%-46s %-10s %-10s %-8s %s\n' "scenario (median ms)" "relctl" "baseline" "ratio" "target"
  print_cache_scenarios
  rm -rf "$work"
  exit 0
fi

busy_r=(); busy_b=(); rss_cold=(); cold_r=(); cold_b=(); cold_s=(); chg_r=(); chg_b=(); rerun=(); up_unchanged=()
for i in $(seq 1 "$RUNS"); do
  # relctl and the script take turns going first (the first run after the
  # engine starts pays its warm-up); the baseline, the slowest, goes last.
  order="relctl scripted"; [ $((i % 2)) = 0 ] && order="scripted relctl"
  for who in $order baseline; do
    d="$work/$who-$i"; ns="b4$who$i$(date +%s)"
    mkdir -p "$d"; make_app "$d" "$ns"
    fresh_layers "$d" base frontend server worker agent nginx
    (cd "$d/app" && git tag v1.0.0 && G push -q origin v1.0.0)
    sync; b0=$(busy); t0=$(now)   # sync: the fixture's writes are not flushed inside a timed run
    if [ $who = relctl ]; then
      (cd "$d/app" && exec "$relctl" -q release v1.0.0 --no-cache >/dev/null) &
      peak_kib $! >"$work/cold-rss"
    elif [ $who = scripted ]; then scripted "$d"
    else baseline "$d" "$ns" v1.0.0; fi
    t1=$(now); b1=$(busy)
    if [ $who = scripted ]; then cold_s+=($(ms $t0 $t1)); continue; fi
    # average number of busy cores during the cold release (jiffies are 1/100 s)
    cores=$(awk -v j=$((b1 - b0)) -v ms="$(ms $t0 $t1)" 'BEGIN {printf "%.2f", j * 10 / ms}')
    fresh_layers "$d" frontend
    (cd "$d/app" && git tag v1.1.0 && G push -q origin v1.1.0)
    off=$(stat -c %s "$log")
    sync; t2=$(now)
    if [ $who = relctl ]; then (cd "$d/app" && "$relctl" -q release v1.1.0 >/dev/null); else baseline "$d" "$ns" v1.1.0; fi
    t3=$(now)
    if [ $who = relctl ]; then
      cold_r+=($(ms $t0 $t1)); chg_r+=($(ms $t2 $t3)); busy_r+=("$cores"); rss_cold+=($(cat "$work/cold-rss"))
      sleep 0.5; up_unchanged+=($(uploads_for "$off" "$ns" base server worker agent))
      t4=$(now); (cd "$d/app" && "$relctl" -q release v1.1.0 >/dev/null); rerun+=($(ms $t4 $(now)))
    else
      cold_b+=($(ms $t0 $t1)); chg_b+=($(ms $t2 $t3)); busy_b+=("$cores")
    fi
  done
  echo "run $i/$RUNS: relctl cold ${cold_r[-1]} ms, changed ${chg_r[-1]} ms, rerun ${rerun[-1]} ms; baseline cold ${cold_b[-1]} ms, changed ${chg_b[-1]} ms" >&2
done

# The physical floor: the longest dependency chain of single-image builds plus
# the push of the largest image, with the builder relctl used (BuildKit through
# the Engine API unless BUILDER=classic), each build alone on the engine.
floor_for() { # floor_for BUILD_FUNCTION: sets bt[image], bw[image] (jiffies), chain1, chain2, build_work (jiffies of all builds)
  d="$work/floor-$1"; ns="b4floor$1$(date +%s)"; mkdir -p "$d"; make_app "$d" "$ns"; fresh_layers "$d" base frontend server worker agent nginx
  build_work=0
  for img in base frontend server worker agent nginx; do
    sync; b0=$(busy); t0=$(now); "$1" "$d/app/docker/$img" "$reg/$ns/bench-$img:f"; bt[$img]=$(ms $t0 $(now))
    bw[$img]=$(( $(busy) - b0 )); build_work=$(( build_work + bw[$img] ))
  done
  chain1=$(( ${bt[base]} + $(printf '%s\n' ${bt[server]} ${bt[worker]} ${bt[agent]} | sort -n | tail -1) ))
  chain2=$(( ${bt[frontend]} + ${bt[nginx]} ))
}
declare -A bt bw
floor_for classic_build; classic_chain=$(( chain1 > chain2 ? chain1 : chain2 ))
# With BUILDER=classic those are relctl's builds already (a second run would reuse their directory).
[ "$relctl_build" = classic_build ] || floor_for "$relctl_build"
# The largest image (by size in the engine: one built on base or frontend,
# with both 20 MB layers), pushed alone to the empty namespace.
largest=$(for img in base frontend server worker agent nginx; do
  echo "$(docker image inspect -f '{{.Size}}' "$reg/$ns/bench-$img:f") $img"; done | sort -n | tail -1)
largest_mb=$(( ${largest% *} / 1000000 )); largest=${largest#* }
sync; b0=$(busy); t0=$(now); docker push -q "$reg/$ns/bench-$largest:f" >/dev/null; push_largest=$(ms $t0 $(now))
push_work=$(( $(busy) - b0 ))
floor=$(( (chain1 > chain2 ? chain1 : chain2) + push_largest ))
# The CPU the release's steps need, each alone on the engine: the builds
# above and every image pushed once (layers already pushed are skipped, as in
# a release). Spread perfectly over all cores, the work alone takes work_ms.
for img in base frontend server worker agent nginx; do
  [ "$img" = "$largest" ] && continue
  sync; b0=$(busy); docker push -q "$reg/$ns/bench-$img:f" >/dev/null; push_work=$(( push_work + $(busy) - b0 ))
done
work_ms=$(( (build_work + push_work) * 10 / $(nproc) ))
# The DAG tightens that bound: until the first of the roots (base, frontend)
# is built, nothing else can run, not even a push; at most the roots' own
# work is done by then, and the rest still needs all cores.
roots_ms=$(( ${bt[base]} < ${bt[frontend]} ? ${bt[base]} : ${bt[frontend]} ))
dag_ms=$(( roots_ms + (build_work - bw[base] - bw[frontend] + push_work) * 10 / $(nproc) ))

# Peak RSS releasing a 1 GiB context (64 x 16 MiB files; the image copies one small file).
d="$work/gib"; mkdir -p "$d"; git init -q --bare -b main "$d/remote.git"; mkdir -p "$d/app/big"; cd "$d/app"; git init -q -b main
git config core.compression 0; git config core.looseCompression 0; git config core.bigFileThreshold 1m
for f in $(seq 1 "$GIB_FILES"); do head -c 16777216 /dev/urandom >"big/part$f.bin"; done
printf 'small\n' >small.txt
printf 'FROM scratch\nCOPY small.txt /small.txt\n' >Dockerfile
printf 'registry: %s\nnamespace: b4gib%s\nproject: big\nbuild: { retries: 0 }\nimages:\n  app: { context: . }\n' "$reg" "$(date +%s)" >release.yaml
G add -A && G commit -q -m big && G remote add origin "$d/remote.git" && G push -q origin main && git tag v1.0.0 && G push -q origin v1.0.0
"$relctl" -q release v1.0.0 >/dev/null &
peak_kib $! >"$work/gib-rss"   # not in $( ): only this shell can wait for its child
peak=$(cat "$work/gib-rss")
ctx_mib=$(( GIB_FILES * 16 ))
cd - >/dev/null

scenario5; scenario6
mc=$(median "${cold_r[@]}"); mcb=$(median "${cold_b[@]}"); mg=$(median "${chg_r[@]}"); mgb=$(median "${chg_b[@]}")
printf '\nrelctl release benchmark, %s, %s, %s cores; %s runs, %s MB random layer and RUN sleep 1 per image; parallelism %s, builder %s\n' "$(date -u +%F)" "$(uname -m)" "$(nproc)" "$RUNS" "$MB" "$PARALLELISM" "$BUILDER"
printf '%-46s %-10s %-10s %-8s %s\n' "scenario (median ms)" "relctl" "baseline" "ratio" "target"
printf '%-46s %-10s %-10s %-8s %s\n' "1. cold release (no cache, empty registry)" "$mc" "$mcb" "$(ratio "$mc" "$mcb")" "<= 0.5"
printf '%-46s %-10s %-10s %-8s %s\n' "2. only frontend/ changed" "$mg" "$mgb" "$(ratio "$mg" "$mgb")" "<= 0.2"
printf '%-46s %-10s %-10s %-8s %s\n' "   relctl blob uploads to unchanged images" "$(printf '%s\n' "${up_unchanged[@]}" | sort -n | tail -1)" "" "" "0"
printf '%-46s %-10s %-10s %-8s %s\n' "3. rerun of a released tag" "$(median "${rerun[@]}")" "" "" "< 1000 ms"
printf '%-46s %-10s %-10s %-8s %s\n' "4. cold relctl vs physical floor" "$mc" "$floor" "$(ratio "$mc" "$floor")" "<= 1.25"
printf '   floor = longest chain (base+server %s ms, frontend+nginx %s ms) + push of the largest image (%s, %s MB) %s ms; builder %s\n' "$chain1" "$chain2" "$largest" "$largest_mb" "$push_largest" "$([ "$BUILDER" = classic ] && echo classic || echo BuildKit)"
printf '   (the same chains with the classic builder, which the baseline uses: %s ms)\n' "$classic_chain"
printf '   CPU work of the steps, each alone: builds %s + pushes %s core-s; on %s cores at least %s ms = %s x floor\n' \
  "$(awk -v j="$build_work" 'BEGIN {printf "%.1f", j / 100}')" "$(awk -v j="$push_work" 'BEGIN {printf "%.1f", j / 100}')" \
  "$(nproc)" "$work_ms" "$(ratio "$work_ms" "$floor")"
printf '   with the DAG: no other step before a root is built (%s ms alone), then the rest of that work: at least %s ms = %s x floor\n' \
  "$roots_ms" "$dag_ms" "$(ratio "$dag_ms" "$floor")"
mscript=$(median "${cold_s[@]}")
printf '   the same DAG scripted without relctl (each build as soon as its parent is built, each push as soon as its image is): %s ms = %s x floor; relctl / script = %s\n' \
  "$mscript" "$(ratio "$mscript" "$floor")" "$(ratio "$mc" "$mscript")"
printf '%-46s %-10s %-10s %-8s %s\n' "   busy cores during the cold release (of $(nproc))" "$(median "${busy_r[@]}")" "$(median "${busy_b[@]}")" "" ""
printf '%-46s %-10s %s\n' "peak RSS releasing a ${ctx_mib} MiB context (MiB)" "$(mib "$peak")" "< 150"
printf '%-46s %-10s\n' "peak RSS in the cold release (MiB, max of $RUNS)" "$(mib "$(printf '%s\n' "${rss_cold[@]}" | sort -n | tail -1)")"
print_cache_scenarios
printf 'all runs (ms): relctl cold %s | scripted DAG cold %s | baseline cold %s | relctl changed %s | baseline changed %s | rerun %s\n' \
  "${cold_r[*]}" "${cold_s[*]}" "${cold_b[*]}" "${chg_r[*]}" "${chg_b[*]}" "${rerun[*]}"
rm -rf "$work"
