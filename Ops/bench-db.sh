#!/usr/bin/env bash
# `hume db` throughput on 9,887 real PNGs: the built-in databases' source pictures (emoji-styles 9,091 and tuxpaint
# 796, RGBA at 72–2,000 px a side) with their captions, as a user's folder and captions file would give them.
#
#   Ops/bench-db.sh [path/to/hume] [COPIES]    # prints the create, add and rebuild reports as JSON lines
#   FORMAT=jpeg Ops/bench-db.sh …               # the same pictures as JPEG files (on white, quality 90), as photos come
#
# Measures: create of all of them; add of 1,000 more to that database (tuxpaint stamps mirrored or flipped, so new
# pictures), against creating the whole database again. COPIES (default 1) > 1 adds COPIES-1 variants of every
# picture (scaled to 128 px, rotated by 7° steps and tinted, captioned "<caption>, variant N"): COPIES=10 makes
# the 98,870-picture database of the issue's "add to 100,000" case (about 10 minutes in all).
set -euo pipefail
HUME=${1:-$(dirname "$0")/../.build/release/hume}
COPIES=${2:-1}
HOME_DB=${HUME_HOME:-$HOME/.cache/hume}/db
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; "$HUME" db remove bench-db-create >/dev/null 2>&1 || true; "$HUME" db remove bench-db-rebuild >/dev/null 2>&1 || true' EXIT
/usr/bin/python3 - "$HOME_DB" "$WORK" "$COPIES" "${FORMAT:-png}" <<'PY'
import json, os, sys
from multiprocessing import Pool
from PIL import Image, ImageOps
db, work, copies, fmt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ext = ".jpg" if fmt == "jpeg" else ".png"

def save(im, dst):
    if fmt == "jpeg":
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        Image.alpha_composite(white, im).convert("RGB").save(dst, quality=90)
    else:
        im.save(dst)

def convert(job):
    src, dst = job
    save(Image.open(src), dst)

def variant(job):
    src, dst, c = job
    im = Image.open(src).convert("RGBA")
    im.thumbnail((128, 128))
    im = im.rotate(7 * c, expand=True, resample=Image.BICUBIC)
    r, g, b, a = im.split()
    tint = [(40 * c) % 96, (70 * c) % 96, (110 * c) % 96]
    im = Image.merge("RGBA", [ch.point(lambda v, t=t: min(255, v + t)) for ch, t in zip((r, g, b), tint)] + [a])
    save(im, dst)
jobs, converts = [], []
os.makedirs(f"{work}/base"); os.makedirs(f"{work}/more")
caps, more = open(f"{work}/base.jsonl", "w"), open(f"{work}/more.jsonl", "w")
for name in ("emoji-styles", "tuxpaint"):
    for line in open(f"{db}/{name}/manifest.jsonl"):
        it = json.loads(line)
        src = f"{db}/{name}/originals/{it['id']}.png"
        rel = f"{name}/{it['id']}{ext}"
        os.makedirs(os.path.dirname(f"{work}/base/{rel}"), exist_ok=True)
        if fmt == "jpeg":
            converts.append((src, f"{work}/base/{rel}"))
        else:
            os.symlink(src, f"{work}/base/{rel}")
        caps.write(json.dumps({"file": rel, "caption": it["caption"], "keywords": it.get("keywords", [])}) + "\n")
        for c in range(1, copies):
            vrel = f"{name}-v{c}/{it['id']}{ext}"
            os.makedirs(os.path.dirname(f"{work}/base/{vrel}"), exist_ok=True)
            jobs.append((src, f"{work}/base/{vrel}", c))
            caps.write(json.dumps({"file": vrel, "caption": f"{it['caption']}, variant {c}"}) + "\n")
with Pool(2) as pool:
    pool.map(variant, jobs, chunksize=64)
    pool.map(convert, converts, chunksize=64)
n = 0
for line in open(f"{db}/tuxpaint/manifest.jsonl"):
    if n == 1000: break
    it = json.loads(line)
    for flip in (ImageOps.mirror, ImageOps.flip):
        if n == 1000: break
        rel = f"{flip.__name__}-{it['id']}{ext}"
        save(flip(Image.open(f"{db}/tuxpaint/originals/{it['id']}.png")), f"{work}/more/{rel}")
        more.write(json.dumps({"file": rel, "caption": it["caption"] + (" mirrored" if flip is ImageOps.mirror else " upside down")}) + "\n")
        n += 1
PY
"$HUME" db remove bench-db-create >/dev/null 2>&1 || true
"$HUME" db create bench-db-create --images "$WORK/base" --captions "$WORK/base.jsonl" --json 2>/dev/null > "$WORK/create.json"
"$HUME" db add bench-db-create --images "$WORK/more" --captions "$WORK/more.jsonl" --json 2>/dev/null > "$WORK/add.json"
# The rebuild an add saves: everything created again from scratch.
mkdir -p "$WORK/all" && cp -as "$WORK/base/." "$WORK/all/" && cp -as "$WORK/more/." "$WORK/all/"
cat "$WORK/base.jsonl" "$WORK/more.jsonl" > "$WORK/all.jsonl"
"$HUME" db remove bench-db-rebuild >/dev/null 2>&1 || true
"$HUME" db create bench-db-rebuild --images "$WORK/all" --captions "$WORK/all.jsonl" --json 2>/dev/null > "$WORK/rebuild.json"
/usr/bin/python3 - "$WORK" <<'PY'
import json, sys
for name in ("create", "add", "rebuild"):
    r = json.load(open(f"{sys.argv[1]}/{name}.json"))
    print(json.dumps({"run": name, "added": r["added"], "refused": r["refused"], "count": r["count"],
                      "seconds": round(r["seconds"], 2), "read_s": round(r["read_seconds"], 2), "embed_s": round(r["embed_seconds"], 2),
                      "index_s": round(r["index_seconds"], 2), "pictures_per_s": round(r["pictures_per_second"], 1),
                      "index_type": r["index_type"]}))
PY
