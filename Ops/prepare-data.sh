#!/bin/sh
# Prepares everything Hume's retrieval needs on a fresh machine: the MiniLM model, the image
# databases, and their caption embeddings + FAISS indexes. Each step does nothing when current.
#
#   Ops/prepare-data.sh [path/to/hume]
#
# The hume binary is $1, else .build/release/hume, else .build/debug/hume (build it first:
# `swift build -c release` — the debug build embeds about 10x slower).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
HUME=${1:-}
if [ -z "$HUME" ]; then
    for c in "$ROOT/.build/release/hume" "$ROOT/.build/debug/hume"; do
        if [ -x "$c" ]; then HUME=$c; break; fi
    done
fi
if [ -z "$HUME" ] || [ ! -x "$HUME" ]; then
    echo "prepare-data: no hume binary found; run 'swift build -c release' or pass its path as the first argument." >&2
    exit 1
fi

"$HERE/fetch-model.sh"
"$HERE/build-db.sh"
for db in emoji tuxpaint emoji-styles; do
    nice -n 10 "$HUME" index build --database "$db"
done
