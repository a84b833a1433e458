#!/usr/bin/env bash
# Benchmark for issue 3: steady-state `relctl reconcile --once` over a repository
# with N (default 2000) released semver tags and five images, and `relctl serve`
# idle for 60 s. Tags are created in the registry by manifest PUTs, not builds.
# Counts relctl's registry requests per reconcile by kind (tags/list, HEAD
# manifest, GET manifest, GET blob) from the registry's access log: the first
# run after the release reads what it has never seen into the labels cache
# (its own XDG_CACHE_HOME here); the runs after it are the steady state.
# Prints a table of figures; not a pass/fail test. N=20000 for the large case.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
RUNS=${RUNS:-5}
IDLE=${IDLE:-60}

started=0
if ! scripts/services.sh status; then scripts/services.sh start; started=1; fi
cleanup() { [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true; if [ "$started" = 1 ]; then scripts/services.sh stop; fi; }
trap cleanup EXIT
eval "$(scripts/services.sh env)"
cargo build --release --quiet --bin relctl
relctl=$PWD/target/release/relctl

work=$(mktemp -d /tmp/relctl-bench.XXXXXX)
export XDG_CACHE_HOME=$work/cache   # a cold labels cache of its own
ns="bench$(date +%s)"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
example_repo "$work" "$ns"
head=$(git rev-parse HEAD)
last="v1.0.$((N - 1))"
for i in $(seq 0 $((N - 1))); do echo "create refs/tags/v1.0.$i $head"; done | git update-ref --stdin
git push -q origin --tags

echo "releasing $last for real (5 builds), then copying its manifests to the other $((N - 1)) tags" >&2
"$relctl" -q release "$last" >/dev/null
python3 - "$RELCTL_TEST_REGISTRY" "$ns" "$N" "$last" <<'PY'
import http.client, sys
registry, ns, n, last = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = registry.split(":")
accept = "application/vnd.docker.distribution.manifest.v2+json"
conn = http.client.HTTPConnection(host, int(port))
for image in ["server", "frontend", "agent", "worker", "nginx"]:
    repo = f"{ns}/example-{image}"
    conn.request("GET", f"/v2/{repo}/manifests/{last}", headers={"Accept": accept})
    r = conn.getresponse(); body = r.read(); ctype = r.getheader("Content-Type")
    assert r.status == 200, r.status
    for i in range(n - 1):
        conn.request("PUT", f"/v2/{repo}/manifests/v1.0.{i}", body=body, headers={"Content-Type": ctype})
        r = conn.getresponse(); r.read()
        assert r.status == 201, (r.status, i)
PY

log=$RELCTL_TEST_REGISTRY_LOG
times=()
requests=()
declare -A kinds   # kinds[run,kind]: relctl's requests of that kind in that run
count() { grep -c -E "$1" <<<"$2" || true; }
for run in $(seq 0 "$RUNS"); do   # run 0: the first after the release (cold labels cache)
  sleep 0.3; before=$(wc -l <"$log")
  t0=$(date +%s%N)
  "$relctl" -q reconcile --once >/dev/null
  t1=$(date +%s%N)
  sleep 0.3   # the registry logs a request after answering it
  mine=$(tail -n +"$((before + 1))" "$log" | grep '"relctl/' || true)
  kinds[$run,list]=$(count '"GET /v2/[^ ]*/tags/list' "$mine")
  kinds[$run,head]=$(count '"HEAD /v2/[^ ]*/manifests/' "$mine")
  kinds[$run,manifest]=$(count '"GET /v2/[^ ]*/manifests/' "$mine")
  kinds[$run,blob]=$(count '"GET /v2/[^ ]*/blobs/' "$mine")
  [ "$run" = 0 ] && { first_ms=$(( (t1 - t0) / 1000000 )); continue; }
  times+=($(( (t1 - t0) / 1000000 )))
  requests+=($(grep -c . <<<"$mine" || true))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
maxof() { local k=$1 m=0 r; for r in $(seq 1 "$RUNS"); do [ "${kinds[$r,$k]}" -gt "$m" ] && m=${kinds[$r,$k]}; done; echo $m; }
page=1000
budget=$(( 5 * ( (N + page - 1) / page ) + 20 ))

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$relctl" -q serve --no-webhook --listen "127.0.0.1:$port" >/dev/null 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
sleep 2   # the start-up reconcile
ticks() { awk '{print $14 + $15}' "/proc/$serve_pid/stat"; }
c0=$(ticks); t0=$(date +%s%N)
sleep "$IDLE"
c1=$(ticks); t1=$(date +%s%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$serve_pid/status")
hz=$(getconf CLK_TCK)
cpu=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", 100 * c / hz / (ns / 1e9)}')

printf '\nrelctl reconcile/serve benchmark, %s, %s, %s cores\n' "$(date -u +%F)" "$(uname -m)" "$(nproc)"
printf '%-52s %-14s %s\n' "measure" "value" "target"
printf '%-52s %-14s %s\n' "steady-state reconcile --once, median of $RUNS (ms)" "$(median "${times[@]}")" "< 2000"
printf '%-52s %-14s %s\n' "  all runs (ms)" "${times[*]}" ""
printf '%-52s %-14s %s\n' "registry requests per reconcile, max of $RUNS" "$(printf '%s\n' "${requests[@]}" | sort -n | tail -1)" "<= $budget (5 x ceil($N/$page) + 20)"
printf '%-52s %-14s %s\n' "  by kind, max of the steady runs: tags/list" "$(maxof list)" ""
printf '%-52s %-14s %s\n' "  HEAD manifest" "$(maxof head)" ""
printf '%-52s %-14s %s\n' "  GET manifest" "$(maxof manifest)" "0"
printf '%-52s %-14s %s\n' "  GET blob" "$(maxof blob)" "0"
printf '%-52s %-14s %s\n' "first reconcile after the release (cold cache, ms)" "$first_ms" ""
printf '%-52s %-14s %s\n' "  tags/list, HEAD, GET manifest, GET blob" "${kinds[0,list]}, ${kinds[0,head]}, ${kinds[0,manifest]}, ${kinds[0,blob]}" ""
printf '%-52s %-14s %s\n' "serve idle ${IDLE}s: RSS (MiB)" "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')" "< 30"
printf '%-52s %-14s %s\n' "serve idle ${IDLE}s: CPU (%)" "$cpu" "< 1"
echo "tags: $N semver tags, 5 images; workdir $work"
