#!/usr/bin/env bash
# The README's main job on the embedded default (one machine, SQLite journal, local files):
# builds hume, starts a fleet (`hume up`), submits a synthetic batch through two noop stages with a
# progress bar, shows the results manifest and the fleet's status, then stops the fleet cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

bash Ops/setup.sh
swift build -c release --product hume --quiet
HUME=.build/release/hume
JOBS=${JOBS:-20000}

mkdir -p var out
seq 1 "$JOBS" | sed 's/^/synthetic prompt /' > var/synthetic.txt

"$HUME" up noop=2 noop2=2 --dir var/demo &
UP=$!
trap 'kill -TERM $UP 2>/dev/null; wait $UP 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do "$HUME" status --json >/dev/null 2>&1 && break; sleep 0.2; done

echo "== hume submit: $JOBS jobs through noop -> noop2"
"$HUME" submit var/synthetic.txt --batch demo --route noop,noop2 --out out/demo
echo "== out/demo/manifest.jsonl (first 3 of $(wc -l < out/demo/manifest.jsonl) lines)"
head -3 out/demo/manifest.jsonl
echo "== hume status"
"$HUME" status
