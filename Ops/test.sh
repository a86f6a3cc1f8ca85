#!/usr/bin/env bash
# The README's test command: installs what a fresh Debian 12 machine lacks, fetches the model, builds the
# image databases, then runs every test. Quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

bash Ops/setup.sh

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
swift build --build-tests --quiet
# The model, both image databases and their caption indexes (the numerics are optimised even in debug builds).
sh Ops/prepare-data.sh .build/debug/hume

# Offline data preparation's own checks (Debian's python has the apt modules).
/usr/bin/python3 -m pytest -q -p no:cacheprovider Ops/test_build_db.py Ops/test_deploy.py

swift test --skip-build

# The fuzz smoke: every libFuzzer target (the wire, stage parameters and payloads, PNG, safetensors, job lines)
# for 30 s from the seed corpus; a crash or an unbounded allocation fails the run (Ops/fuzz.sh).
bash Ops/fuzz.sh 30
