#!/usr/bin/env bash
# Real sentence embeddings for `hume bench retrieve --corpus`: MiniLM over English text Debian ships with its archive —
# the short description of every package (60,021 distinct lines, e.g. "Real-time strategy game of ancient warfare")
# and the sentences of the long descriptions (Debian's main/i18n/Translation-en, checked against the SHA-256 in the
# InRelease apt has verified; about 116,000 distinct sentences, e.g. "Programs that use libext2fs include e2fsck,
# mke2fs, and tune2fs."). Deduplicated and shuffled in a fixed order: 176,010 texts. Short and medium topical English
# like prompts and captions. About 8 minutes to embed on two cores.
#
# With --million, also debian-texts-more.npy: about 836,000 further distinct sentences from the dictionaries and
# manuals Debian ships (Ops/extract-texts.py names them), so that a 10^6 base is real text throughout
# (`hume bench retrieve --corpus debian-texts.npy --corpus debian-texts-more.npy`). About 40 minutes on two cores.
#
#   Ops/make-retrieval-corpus.sh [--million] [path/to/hume]   # writes ${HUME_HOME:-~/.cache/hume}/bench/debian-texts.npy (+ .txt)
set -euo pipefail
MILLION=0
if [ "${1:-}" = --million ]; then MILLION=1; shift; fi
HUME=${1:-$(dirname "$0")/../.build/release/hume}
HUME=$(realpath -m "$HUME")
OPS=$(realpath "$(dirname "$0")")
OUT=${HUME_HOME:-$HOME/.cache/hume}/bench
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Embeds $1 (one text per line) into the .npy $2 with two processes of one BLAS thread each, joined in order.
embed_two() {
  local n half
  n=$(wc -l < "$1"); half=$(( (n + 1) / 2 ))
  split -l "$half" -d -a 1 "$1" "$work/part."
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$HUME" embed --file "$work/part.0" --format npy --out "$work/part.0.npy" &
  local first=$!
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$HUME" embed --file "$work/part.1" --format npy --out "$work/part.1.npy"
  wait "$first"
  python3 - "$2" "$work/part.0.npy" "$work/part.1.npy" <<'PY'
import ast, sys
def body(path):
    b = open(path, 'rb').read()
    n = int.from_bytes(b[8:10], 'little') if b[6] == 1 else int.from_bytes(b[8:12], 'little')
    start = (10 if b[6] == 1 else 12) + n
    header = ast.literal_eval(b[start - n:start].decode('latin-1'))
    assert header['descr'] == '<f4' and not header['fortran_order'] and header['shape'][1] == 384
    return b[start:], header['shape'][0]
parts = [body(p) for p in sys.argv[2:]]
rows = sum(n for _, n in parts)
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 384), }" % rows
header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
with open(sys.argv[1], 'wb') as f:
    f.write(b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header.encode('latin-1'))
    for data, _ in parts:
        f.write(data)
PY
  rm -f "$work"/part.*
}

if [ -s "$OUT/debian-texts.npy" ] && { [ "$MILLION" = 0 ] || [ -s "$OUT/debian-texts-more.npy" ]; }; then
  echo "make-retrieval-corpus: $OUT/debian-texts.npy$([ "$MILLION" = 0 ] || echo ' and debian-texts-more.npy') are there"; exit 0
fi
[ -n "$(ls /var/lib/apt/lists/*_Packages* 2>/dev/null)" ] || apt-get update -q
command -v xz >/dev/null || { apt-get update -q && apt-get install -y -q xz-utils; }
command -v curl >/dev/null || { apt-get update -q && apt-get install -y -q curl; }
command -v python3 >/dev/null || { apt-get update -q && apt-get install -y -q python3; }
[ -x "$HUME" ] || (cd "$OPS/.." && swift build -c release --product hume)
bash "$OPS/fetch-model.sh"

if [ ! -s "$OUT/debian-texts.npy" ]; then

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
embed_two "$OUT/debian-texts.txt" "$OUT/.tmp-texts.npy"
mv "$OUT/.tmp-texts.npy" "$OUT/debian-texts.npy"
echo "make-retrieval-corpus: $(wc -l < "$OUT/debian-texts.txt") texts embedded into $OUT/debian-texts.npy"
fi

[ "$MILLION" = 1 ] || exit 0
# Packages fetched by apt (so checked against the archive's signed index), unpacked, not installed.
mkdir -p "$work/debs" "$work/root"
(cd "$work/debs" && apt-get download -q dict-gcide dict-foldoc dict-jargon dict-devil wordnet-base linux-doc-6.1 \
  python3.11-doc perl-doc postgresql-doc-15 debian-reference-en manpages manpages-dev git-doc)
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
python3 "$OPS/extract-texts.py" "$work/root" > "$work/more.txt"
# Distinct, and none already in debian-texts.txt, in a fixed pseudo-random order.
awk 'NR==FNR{seen[$0]=1;next} length($0)>0 && !seen[$0]++' "$OUT/debian-texts.txt" "$work/more.txt" \
  | shuf --random-source=<(yes hume-retrieval-corpus-more) > "$OUT/debian-texts-more.txt"
embed_two "$OUT/debian-texts-more.txt" "$OUT/.tmp-more.npy"
mv "$OUT/.tmp-more.npy" "$OUT/debian-texts-more.npy"
echo "make-retrieval-corpus: $(wc -l < "$OUT/debian-texts-more.txt") texts embedded into $OUT/debian-texts-more.npy"
