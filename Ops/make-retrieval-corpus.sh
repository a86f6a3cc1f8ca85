#!/usr/bin/env bash
# Real sentence embeddings for `hume bench retrieve --corpus`: MiniLM over the short descriptions of every package
# in this machine's apt lists (Debian 12 main: 60,021 distinct lines, e.g. "Real-time strategy game of ancient
# warfare"). Short, topical English phrases like prompts and captions; about 3 minutes to embed on one core.
#
#   Ops/make-retrieval-corpus.sh [path/to/hume]   # writes ${HUME_HOME:-~/.cache/hume}/bench/debian-descriptions.npy
set -euo pipefail
HUME=${1:-$(dirname "$0")/../.build/release/hume}
OUT=${HUME_HOME:-$HOME/.cache/hume}/bench
mkdir -p "$OUT"
if [ -s "$OUT/debian-descriptions.npy" ]; then echo "make-retrieval-corpus: $OUT/debian-descriptions.npy is there"; exit 0; fi
[ -n "$(ls /var/lib/apt/lists/*_Packages* 2>/dev/null)" ] || apt-get update -q
apt-cache dumpavail | sed -n 's/^Description: //p' | awk '!seen[$0]++' > "$OUT/debian-descriptions.txt"
OPENBLAS_NUM_THREADS=1 "$HUME" embed --file "$OUT/debian-descriptions.txt" --format npy --out "$OUT/.tmp-descriptions.npy"
mv "$OUT/.tmp-descriptions.npy" "$OUT/debian-descriptions.npy"
echo "make-retrieval-corpus: $(wc -l < "$OUT/debian-descriptions.txt") descriptions embedded into $OUT/debian-descriptions.npy"
