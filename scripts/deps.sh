#!/usr/bin/env bash
# Sourced by the quick-start scripts: makes sure the Debian packages pmap
# builds with are present. As root it installs what is missing; otherwise it
# prints the one apt-get line that would, and fails.
PM_DEPS_BUILD="cmake make gcc pkg-config zlib1g-dev liburing-dev libdeflate-dev libisal-dev libcunit1-dev"
PM_DEPS_TEST="gzip pigz python3 util-linux parallel"
PM_DEPS_SAN="clang libomp-dev libclang-rt-14-dev"
PM_DEPS_BENCH="gnuplot-nox time libdeflate-tools isal"
# pmap-mpi (cmake -DPM_MPI=ON): Open MPI's headers, library and mpirun.
PM_DEPS_MPI="libopenmpi-dev openmpi-bin"

pm_missing() {
    local p out=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || out="$out $p"
    done
    echo "${out# }"
}

# pm_require PKG... : install missing packages (root) or explain and fail.
pm_require() {
    local missing
    missing=$(pm_missing "$@")
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "pmap: installing missing packages: $missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null \
            || { echo "pmap: apt-get install failed for: $missing" >&2; return 1; }
    else
        echo "pmap: missing packages; run as root:" >&2
        echo "  apt-get install -y $missing" >&2
        return 1
    fi
}
