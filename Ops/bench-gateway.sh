#!/usr/bin/env bash
# hume-gateway's numbers (README "Reaching Hume from other systems"):
#  1. the round trip of one no-op job at a time, through the ZeroMQ client protocol and through HTTP (POST /v1/jobs
#     with Prefer: wait), medians over --count jobs: what the gateway adds at p50 (`hume-gateway bench`);
#  2. no-op jobs/s from wrk with keep-alive (Ops/gateway-post.lua: every request new jobs) for DURATION seconds,
#     counting only 2xx answers, checked against the batch's total in the broker's journal: one job per request at
#     CONNECTIONS and at MORE connections (each connection waits for its own jobs' journal commit, so throughput grows
#     with connections until the CPU is full), then PER jobs per request (a "jobs" list) at CONNECTIONS, last, since
#     the half million jobs it adds to the journal slow what follows. Each wrk line also gives the CPU time (user +
#     system) per request of every process on the two cores: the gateway, the broker and the no-op worker (from
#     /proc) and wrk itself (bash's `time`), so a slow hour can be told from a slower build, and the sum shows how
#     close the load is to what two cores can give (2,000,000 µs/s divided by it).
# Each is run RUNS times on a fresh broker, noop worker and gateway (release builds); the medians are printed.
# Usage: bash Ops/bench-gateway.sh [RUNS=3] [DURATION=10] [CONNECTIONS=64] [PER=10] [MORE=128]
# GATEWAY_ARGS (environment) adds hume-gateway flags to compare settings, e.g. GATEWAY_ARGS="--event-loops 1";
# GATEWAY_BIN runs another hume-gateway binary (a copy of an earlier build) in place of this checkout's, to compare builds.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3} duration=${2:-10} connections=${3:-64} per=${4:-10} more=${5:-128}
command -v wrk >/dev/null || { echo "bench-gateway: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
swift build -c release --product hume --quiet
swift build -c release --product hume-gateway --quiet
bin=.build/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

added=() p50z=() p50h=() rates=() batched=() wider=() cpus=()
hz=$(getconf CLK_TCK)
# The user + system clock ticks of the gateway, the broker and the worker; seconds of CPU per wrk request in µs.
ticks() { for p in "$gwpid" "$brokerpid" "$workerpid"; do awk '{printf "%d ", $14 + $15}' "/proc/$p/stat"; done; }
per_request() { python3 -c "print(round($1 * 1e6 / max($requests, 1), 1))"; }
for run in $(seq 1 "$runs"); do
    d=$work/run$run; mkdir -p "$d"
    "$bin/hume" broker --journal "$d/journal.sqlite" --ready-file "$d/broker.ready" --stages noop \
        --bind-workers tcp://127.0.0.1:0 --bind-clients tcp://127.0.0.1:0 --bind-control tcp://127.0.0.1:0 > "$d/broker.log" 2>&1 &
    brokerpid=$!; pids+=($brokerpid); disown
    for _ in $(seq 100); do [[ -s $d/broker.ready ]] && break; sleep 0.1; done
    clients=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clients"])' "$d/broker.ready")
    workers=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workers"])' "$d/broker.ready")
    "$bin/hume" worker noop --broker "$workers" --batch 64 > "$d/noop.log" 2>&1 &
    workerpid=$!; pids+=($workerpid); disown
    # shellcheck disable=SC2086 # GATEWAY_ARGS is a list of flags
    "${GATEWAY_BIN:-$bin/hume-gateway}" --broker "$clients" --bind 127.0.0.1:0 --ready-file "$d/gw.ready" ${GATEWAY_ARGS:-} > "$d/gw.log" 2>&1 &
    gwpid=$!; pids+=($gwpid); disown
    for _ in $(seq 100); do [[ -s $d/gw.ready ]] && break; sleep 0.1; done
    gw=$(cat "$d/gw.ready")
    line=$("${GATEWAY_BIN:-$bin/hume-gateway}" bench --broker "$clients" --gateway "$gw" --json)
    echo "run $run latency: $line"
    added+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["added_p50_ms"])' "$line")")
    p50z+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["zmq_p50_ms"])' "$line")")
    p50h+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["http_p50_ms"])' "$line")")
    for load in "1 $connections" "1 $more" "$per $connections"; do
        read -r n c <<<"$load"
        b=wrk$run-$n-$c
        read -r g0 b0 w0 <<<"$(ticks)"
        out=$( { TIMEFORMAT='%U %S'; time wrk -t2 -c"$c" -d"${duration}s" -s Ops/gateway-post.lua "http://$gw" -- "$b" "$n" > "$d/wrk.out" 2> "$d/wrk.err"; } 2>&1 )
        wrkcpu=$(awk '{print $1 + $2}' <<<"$out"); out=$(cat "$d/wrk.out")
        read -r g1 b1 w1 <<<"$(ticks)"
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
        total=$(curl -s "http://$gw/v1/batches/$b" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total", 0))')
        rate=$(python3 -c "print(round(($requests - $non2xx) * $n / $duration))")
        cpu=$(per_request "($g1 - $g0) / $hz")
        others="broker $(per_request "($b1 - $b0) / $hz"), worker $(per_request "($w1 - $w0) / $hz"), wrk $(per_request "$wrkcpu")"
        echo "run $run wrk, $c connections, $n job(s) per request: $requests requests, $non2xx refused (429), journal holds $total jobs of batch $b; $rate jobs/s; CPU µs per request: gateway $cpu, $others"
        if [[ $n != 1 ]]; then batched+=("$rate"); elif [[ $c == "$connections" ]]; then rates+=("$rate"); cpus+=("$cpu"); else wider+=("$rate"); fi
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    pids=()
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median of $runs: ZeroMQ p50 $(median "${p50z[@]}") ms, HTTP p50 $(median "${p50h[@]}") ms, added $(median "${added[@]}") ms at p50; from wrk ($connections connections, ${duration} s): $(median "${rates[@]}") no-op jobs/s one per request, $(median "${batched[@]}") with $per per request; one per request at $more connections: $(median "${wider[@]}") jobs/s; the gateway's CPU per single-job request at $connections connections: $(median "${cpus[@]}") µs"
