#!/usr/bin/env bash
# Schemathesis against hume-gateway's OpenAPI document (docs/openapi.json), on a live broker serving noop with a
# noop worker: every check but use_after_free, on every operation, in all four phases (examples, coverage,
# fuzzing, stateful); the per-operation settings and their reasons are in Ops/schemathesis.toml.
#
# use_after_free is off because DELETE /v1/jobs/{id} cancels a job and the job stays readable (status "cancelled"):
# the check assumes a DELETE makes the resource 404.
# Usage: bash Ops/schemathesis.sh BIN_DIR VENV [MAX_EXAMPLES=60]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 venv=$2 examples=${3:-60}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$bin/hume" broker --journal "$work/journal.sqlite" --ready-file "$work/broker.ready" --stages noop \
    --bind-workers tcp://127.0.0.1:0 --bind-clients tcp://127.0.0.1:0 --bind-control tcp://127.0.0.1:0 > "$work/broker.log" 2>&1 &
pids+=($!); disown
for _ in $(seq 300); do [[ -s $work/broker.ready ]] && break; sleep 0.1; done
endpoint() { "$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/broker.ready" "$1"; }
"$bin/hume" worker noop --broker "$(endpoint workers)" > "$work/noop.log" 2>&1 &
pids+=($!); disown
"$bin/hume-gateway" --broker "$(endpoint clients)" --bind 127.0.0.1:0 --ready-file "$work/gateway.ready" > "$work/gateway.log" 2>&1 &
pids+=($!); disown
for _ in $(seq 300); do [[ -s $work/gateway.ready ]] && break; sleep 0.1; done
[[ -s $work/gateway.ready ]] || { echo "schemathesis.sh: hume-gateway did not start:"; cat "$work/gateway.log"; exit 1; }
"$venv/bin/schemathesis" --config-file Ops/schemathesis.toml run docs/openapi.json --url "http://$(cat "$work/gateway.ready")" \
    --checks all --exclude-checks use_after_free --workers 1 --max-examples "$examples" --no-color
