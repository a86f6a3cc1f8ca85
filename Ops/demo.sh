#!/usr/bin/env bash
# The README's main job on the embedded default (one machine, SQLite journal, local files):
# installs what is missing, builds hume (release), fetches the model and builds the image databases on
# first use, then `hume demo`: a local fleet (broker + embed, retrieve, denoise, edit, upload workers as
# real processes on loopback) makes an image for every line of Ops/examples/prompts.txt and runs a few
# edits, uploads them to out/images, and writes out/manifest.jsonl, out/contact-sheet.png and
# out/index.html; then it stops the fleet. A second run reuses everything already built.
#
#   bash Ops/demo.sh [hume demo options, e.g. --out out --denoisers 2 --prompts my-prompts.txt]
set -euo pipefail
cd "$(dirname "$0")/.."

bash Ops/setup.sh
swift build -c release --product hume --quiet
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
sh Ops/prepare-data.sh .build/release/hume
exec .build/release/hume demo "$@"
