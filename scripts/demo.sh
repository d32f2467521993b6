#!/usr/bin/env bash
# Quick start, first command: install missing Debian packages (as root),
# build pmap, and run the main job on the bundled sample data: compress a copy
# of data/sample/ in parallel, check it with gzip, and print the stats.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
pm_require $PM_DEPS_BUILD gzip
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
out=build/demo
rm -rf "$out" && mkdir -p "$out" && cp -r data/sample "$out/"
./build/tools/pmap compress -v "$out/sample"
./build/tools/pmap checksum "$out/sample"
gzip -t "$out"/sample/*.gz && echo "demo: every output passes gzip -t; results in $out/sample"
