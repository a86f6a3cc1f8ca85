#!/usr/bin/env bash
# Installs what Hume needs on a Debian 12 machine. Idempotent: when everything is already present it
# prints one line and takes well under a second; otherwise it runs `apt-get update` once and installs
# only the missing packages. Runs as root (CI) or through sudo.
set -euo pipefail

# C libraries behind the bridges, the journal's SQLite, the database sources, nginx for the
# WebDAV upload tests, and python3-venv for the test tools' venv (below). In Debian 12 the `nginx`
# package itself is built with http_dav_module; nginx-light and nginx-core are only deprecated
# transitional packages that depend on it. chromium-headless-shell renders the broker's status page in
# a test (a screenshot check).
packages=(
    libzmq3-dev libopenblas-dev liblapack-dev libpng-dev libturbojpeg0-dev libcurl4-openssl-dev libfaiss-dev
    libsqlite3-dev pkg-config sqlite3
    python3-fonttools python3-pil python3-numpy python3-pytest python3-yaml systemd iproute2 unzip fonts-noto-color-emoji unicode-cldr-core unicode-data
    tuxpaint-stamps-default ruby-gemojione librsvg2-bin
    nginx python3-venv
    chromium-headless-shell
)

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
else
    as_root=(sudo)
fi

# dpkg-query prints one line per package it knows; anything not "installed" is missing.
declare -A installed=()
while read -r name status; do
    [[ $status == installed ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for package in "${packages[@]}"; do
    [[ -n ${installed[$package]:-} ]] || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}"
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Test-only tools from PyPI, in a venv because Debian's python is externally managed: moto's standalone
# S3 server (and boto3, its dependency) for the upload stage's S3 tests; pyzmq, pytest, build and setuptools
# for the Python client package (clients/python: Ops/test.sh installs it here, runs its tests and builds its
# wheel, all offline with these pins); schemathesis for the HTTP gateway's API tests. A stamp file holds the
# pins that were installed, so a re-run with the same pins does nothing.
hume_home=${HUME_HOME:-$HOME/.cache/hume}
venv=$hume_home/venv
venv_pins=('moto[server]==5.2.5' 'pyzmq==27.3.0' 'pytest==9.2.0' 'build==1.6.1' 'setuptools==84.2.1'
           'schemathesis==4.32.5')
need_venv=false
if [[ $(cat "$venv/.hume-pins" 2>/dev/null) != "${venv_pins[*]}" || ! -x $venv/bin/moto_server ]]; then
    need_venv=true
    echo "setup: installing ${venv_pins[*]} into $venv"
    mkdir -p "$hume_home"
    venv_python=/usr/bin/python3
    [[ -x $venv_python ]] || venv_python=python3
    "$venv_python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${venv_pins[@]}"
    echo "${venv_pins[*]}" > "$venv/.hume-pins"
fi

if ((${#missing[@]} == 0)) && ! $need_venv; then
    echo "setup: all ${#packages[@]} packages and the test venv (${venv_pins[*]}) are present"
else
    echo "setup: done"
fi
