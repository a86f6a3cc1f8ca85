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

# The Python client package (clients/python), built from this checkout with the test venv's pinned setuptools
# (no build isolation, so no network): its wheel, installed in place of any earlier one, then its tests against live
# fleets of this build (pytest imports the installed package, not the source tree).
venv=${HUME_HOME:-$HOME/.cache/hume}/venv
wheels=$(mktemp -d)
rm -rf clients/python/build   # setuptools would pack stale files left there by an earlier build
"$venv/bin/python" -m build -q --no-isolation --wheel --outdir "$wheels" clients/python
"$venv/bin/pip" install -q --disable-pip-version-check --no-index --no-deps --force-reinstall "$wheels"/hume_client-*.whl
"$venv/bin/pip" check >/dev/null
rm -rf "$wheels"
(cd /tmp && "$venv/bin/python" -c 'import hume_client, os, sys; d = os.path.dirname(hume_client.__file__)
sys.exit(0 if "site-packages" in d and os.path.exists(os.path.join(d, "py.typed")) else "hume_client not installed from the wheel: " + d)')
HUME_BIN=$PWD/.build/debug/hume "$venv/bin/python" -m pytest -q -p no:cacheprovider clients/python/tests

# hume-gateway against its OpenAPI document: schemathesis's checks on a live broker, noop worker and gateway
# (Ops/schemathesis.sh; what is configured and why is in Ops/schemathesis.toml).
bash Ops/schemathesis.sh .build/debug "$venv" 60

swift test --skip-build

# The fuzz smoke: every libFuzzer target (the wire, stage parameters and payloads, PNG, safetensors, job lines)
# for 30 s from the seed corpus; a crash or an unbounded allocation fails the run (Ops/fuzz.sh).
bash Ops/fuzz.sh 30
