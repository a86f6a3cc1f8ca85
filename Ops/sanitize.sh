#!/usr/bin/env bash
# The test suite under a sanitizer: every Swift module, the test bundle and the `hume` processes the integration
# tests start are built instrumented, in their own build directory.
#   bash Ops/sanitize.sh address   # AddressSanitizer, the whole suite
#   bash Ops/sanitize.sh thread    # ThreadSanitizer, the whole suite (the broker, worker, client and HTTP threads)
# Extra arguments go to `swift test` (e.g. --filter FleetTests). Run the README's test command once first: it
# installs the packages, the model and the databases the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: Ops/sanitize.sh address|thread [swift test arguments]}
shift
# Every process writes its reports here (report.<pid>), including the brokers and workers whose stderr goes to log
# files the tests delete: the run fails if any report is left.
reports=$(mktemp -d /tmp/hume-$kind-reports.XXXXXX)
case "$kind" in
  address)
    # Leak checking is off: swift-corelibs-foundation's Process and FileManager.contents(atPath:) leak on every
    # call (the test harness starts hundreds of processes), which would fail every process at exit. Memory errors
    # (overflows, use after free, double free) still stop the process that has them.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:log_path=$reports/report} ;;
  thread)
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:log_path=$reports/report} ;;
  *) echo "sanitize.sh: the sanitizer must be address or thread, not \"$kind\"." >&2; exit 2 ;;
esac
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 HUME_SANITIZER=$kind
swift build --build-tests --quiet --scratch-path ".build/$kind" -Xswiftc "-sanitize=$kind"
status=0
swift test --skip-build --scratch-path ".build/$kind" "$@" || status=$?
if compgen -G "$reports/report*" >/dev/null; then
  echo "sanitize.sh: $kind sanitizer reports (one file per process):" >&2
  for f in "$reports"/report*; do echo "== $f" >&2; head -60 "$f" >&2; done
  exit 1
fi
rmdir "$reports"
exit $status
