#!/usr/bin/env bash
# Quick start, second command: install missing Debian packages (as root),
# build pmap with its tests, and run every test with ctest.
# Usage: scripts/test.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
pm_require $PM_DEPS_BUILD $PM_DEPS_TEST
build=${1:-build}
shift || true
cmake -S . -B "$build" -DPM_BUILD_TESTS=ON "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)" ${PM_CTEST_ARGS:-}
