#!/usr/bin/env bash
# Fuzz Hume's decoders with libFuzzer (issue 16): the wire, stage parameters, stage payloads, PNG, safetensors and
# job-file lines (Sources/HumeFuzzTargets). Builds Fuzz/ with -sanitize=fuzzer,address and runs each target for
# SECONDS (default 30: the CI smoke), starting from the seeds in Fuzz/corpus plus what earlier runs found
# (.build/fuzz-corpus). Prints executions and coverage per target; exits 1 if any target crashes, leaks memory
# without bound or hangs, keeping the input in .build/fuzz-crashes/TARGET/ (add it to Fuzz/corpus once fixed).
#   bash Ops/fuzz.sh            # every target, 30 s each
#   bash Ops/fuzz.sh 600 wire   # one target, 10 minutes
#   HUME_FUZZ_ARGS=-runs=10000000 bash Ops/fuzz.sh 1800   # the long run: 10 million inputs or 30 minutes each
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(wire params payloads png safetensors joblines)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
swift build --quiet --package-path Fuzz --scratch-path .build/fuzz -c release --product hume-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
bin=.build/fuzz/release/hume-fuzz
failed=0
printf '%-12s %12s %8s %8s %8s %8s\n' target executions exec/s cov ft seconds
for t in "${targets[@]}"; do
  [ -d "Fuzz/corpus/$t" ] || { echo "fuzz.sh: no target \"$t\" (no Fuzz/corpus/$t)." >&2; exit 2; }
  mkdir -p ".build/fuzz-corpus/$t" ".build/fuzz-crashes/$t"
  log=".build/fuzz-crashes/$t/last.log"
  rc=0
  HUME_FUZZ_TARGET=$t "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
    -print_final_stats=1 -artifact_prefix=".build/fuzz-crashes/$t/" ${HUME_FUZZ_ARGS:-} ".build/fuzz-corpus/$t" "Fuzz/corpus/$t" \
    >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo 0)
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo 0)
  printf '%-12s %12s %8s %8s %8s %8s\n' "$t" "${execs:-0}" "${rate:-0}" "${cov:-0}" "${ft:-0}" "$seconds"
  if [ $rc -ne 0 ]; then
    failed=1
    echo "fuzz.sh: target $t failed (exit $rc); input and log in .build/fuzz-crashes/$t/:" >&2
    grep -E 'ERROR|Fatal error|SUMMARY|==[0-9]+==' "$log" | head -20 >&2 || tail -30 "$log" >&2
  fi
done
exit $failed
