#!/usr/bin/env bash
# Quick start, first command: install missing Debian packages (as root),
# build pmap, and run the main job on the bundled sample data: compress a
# copy of data/sample/ in parallel, verify every output with gzip and with
# pmap's own decoder, and print the run's statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
pm_require $PM_DEPS_BUILD gzip
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
pmap=./build/tools/pmap
out=build/demo
rm -rf "$out" && mkdir -p "$out" && cp -a data/sample "$out/"
echo "== pmap compress -v $out/sample"
$pmap compress -v --json "$out/sample"
echo "== pmap decompress -t (every .gz checked by pmap's decoder)"
$pmap decompress -t "$out/sample"
echo "== gzip -t (and by gzip)"
find "$out/sample" -name '*.gz' -print0 | xargs -0 gzip -t
echo "demo: $(find "$out/sample" -name '*.gz' | wc -l) files compressed and verified in $out/sample"
