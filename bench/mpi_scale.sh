#!/usr/bin/env bash
# mpi_scale.sh DIR [BUILD] - docs/scale.md's figures at 1-4 ranks: a mixed
# tree (pmap-datagen mixed --size 256M --large 4) and one file (256 MiB of
# a generated log), compress -k -6 and decompress -k of the file's .gz,
# by one pmap process (2 workers) and by pmap-mpi at -np 1..4 (one worker
# per rank), three rounds; prints one line per run ("rep np what command
# seconds rc"). DIR holds the data: run it once on tmpfs, once on a disk.
# Needs a build with -DPM_MPI=ON (BUILD, default ./build) and mpirun.
set -u
dir=${1:?usage: mpi_scale.sh DIR [BUILD]}
tools=$(cd "${2:-build}/tools" && pwd)
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$dir/one"
[ -d "$dir/tree" ] || "$tools/pmap-datagen" mixed --size 256M --large 4 "$dir/tree" >/dev/null
[ -f "$dir/one/big" ] || "$tools/pmap-datagen" file --kind log --size 256M "$dir/one/big" >/dev/null
clean() { find "$dir/tree" "$dir/one" -name '*.gz' -delete; sync; }
# timed CMD...: its wall seconds and status.
timed() {
    local s rc
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    rc=$?
    echo "$(echo "$(date +%s.%N) - $s" | bc) rc=$rc"
}
# pm NP CMD ARGS...: one process (NP 0, 2 workers) or pmap-mpi at NP ranks.
pm() {
    local np=$1
    shift
    if [ "$np" = 0 ]; then
        PMAP_JOBS=2 timed "$tools/pmap" "$@"
    else
        PMAP_JOBS=1 timed mpirun -x PMAP_JOBS -q --oversubscribe -np "$np" "$tools/pmap-mpi" "$@"
    fi
}
for rep in 1 2 3; do
    for np in 0 1 2 3 4; do
        for what in tree one; do
            clean
            echo "rep=$rep np=$np $what compress $(pm "$np" compress -k -6 "$dir/$what")"
        done
        clean
        "$tools/pmap" compress -q -k -6 "$dir/one/big"
        mv "$dir/one/big" "$dir/big.keep"
        echo "rep=$rep np=$np one decompress $(pm "$np" decompress -k "$dir/one")"
        rm -f "$dir/one/big"
        mv "$dir/big.keep" "$dir/one/big"
    done
done
clean
