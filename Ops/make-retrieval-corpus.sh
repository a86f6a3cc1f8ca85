#!/usr/bin/env bash
# Real sentence embeddings for `hume bench retrieve --corpus`: MiniLM over English text Debian ships with its archive —
# the short description of every package (60,021 distinct lines, e.g. "Real-time strategy game of ancient warfare")
# and the sentences of the long descriptions (Debian's main/i18n/Translation-en, checked against the SHA-256 in the
# InRelease apt has verified; about 116,000 distinct sentences, e.g. "Programs that use libext2fs include e2fsck,
# mke2fs, and tune2fs."). Deduplicated and shuffled in a fixed order: 175,796 texts. Short and medium topical English
# like prompts and captions. About 16 minutes to embed on one core.
#
#   Ops/make-retrieval-corpus.sh [path/to/hume]   # writes ${HUME_HOME:-~/.cache/hume}/bench/debian-texts.npy (+ .txt)
set -euo pipefail
HUME=${1:-$(dirname "$0")/../.build/release/hume}
OUT=${HUME_HOME:-$HOME/.cache/hume}/bench
mkdir -p "$OUT"
if [ -s "$OUT/debian-texts.npy" ]; then echo "make-retrieval-corpus: $OUT/debian-texts.npy is there"; exit 0; fi
[ -n "$(ls /var/lib/apt/lists/*_Packages* 2>/dev/null)" ] || apt-get update -q
command -v xz >/dev/null || { apt-get update -q && apt-get install -y -q xz-utils; }
command -v curl >/dev/null || { apt-get update -q && apt-get install -y -q curl; }
[ -x "$HUME" ] || (cd "$(dirname "$0")/.." && swift build -c release --product hume)
bash "$(dirname "$0")/fetch-model.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Short descriptions.
apt-cache dumpavail | sed -n 's/^Description: //p' > "$work/short.txt"

# Long descriptions: one paragraph per package, cut into sentences.
release=$(ls /var/lib/apt/lists/*_debian_dists_bookworm_InRelease | head -1)
sha=$(awk '/^SHA256:/{s=1;next} /^[^ ]/{s=0} s && $3=="main/i18n/Translation-en.xz"{print $1}' "$release")
[ -n "$sha" ] || { echo "make-retrieval-corpus: $release lists no main/i18n/Translation-en.xz" >&2; exit 1; }
curl -fsSL --retry 3 http://deb.debian.org/debian/dists/bookworm/main/i18n/Translation-en.xz -o "$work/Translation-en.xz"
echo "$sha  $work/Translation-en.xz" | sha256sum -c --quiet
xz -dc "$work/Translation-en.xz" \
  | awk '/^Description-en:/{d=1;next} /^[^ ]/{d=0; print ""} d&&/^ /{print}' | grep -v '^ \.$' | sed 's/^ //' \
  | awk 'BEGIN{RS=""} {gsub(/\n/," "); print}' | sed 's/\([.!?]\) \+\([A-Z]\)/\1\n\2/g' | sed 's/^ *[-*+o] \+//' \
  | awk 'length($0)>=20 && length($0)<=300' > "$work/long.txt"

# Distinct texts in a fixed pseudo-random order (the benchmark holds out the last rows as queries).
cat "$work/short.txt" "$work/long.txt" | awk 'length($0)>0 && !seen[$0]++' \
  | shuf --random-source=<(yes hume-retrieval-corpus) > "$OUT/debian-texts.txt"
OPENBLAS_NUM_THREADS=1 "$HUME" embed --file "$OUT/debian-texts.txt" --format npy --out "$OUT/.tmp-texts.npy"
mv "$OUT/.tmp-texts.npy" "$OUT/debian-texts.npy"
echo "make-retrieval-corpus: $(wc -l < "$OUT/debian-texts.txt") texts embedded into $OUT/debian-texts.npy"
