#!/usr/bin/env bash
# mpi_run.sh [BUILD] [ROUNDS] - docs/scale.md's `run` figures: what a job
# costs when rank 0 hands it to a rank, against one `pmap run` process and
# GNU parallel (when installed), alternating, ROUNDS rounds (default 3);
# prints one line per run ("round what command seconds rc").
#   tiny   2000 jobs of `true` (the cost of a job: spawn, messages, output)
#   out    200 jobs printing 256 KiB each, -k (outputs carried to rank 0,
#          then through mpirun's forwarding of rank 0's stdout)
#   cpu    16 jobs of gzip -6 of 16 MiB to /dev/null (CPU-bound: the slots)
# One process runs 2 slots (-j 2); pmap-mpi runs 1 slot per rank at -np 2
# (the same 2 cores) and 2 per rank at -np 1 (rank 0 alone: no message,
# pmap run's own runner under mpirun), with --bind-to none: Open MPI binds
# each rank to one core at -np 2 or less, and jobs inherit the binding.
# Needs a build with -DPM_MPI=ON (BUILD, default ./build) and mpirun.
set -u
tools=$(cd "${1:-build}/tools" && pwd)
rounds=${2:-3}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d "${TMPDIR:-/tmp}/pmap-mpirun.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$tools/pmap-datagen" file --kind log --size 16M "$work/log" >/dev/null
for i in $(seq 200); do ln -s log "$work/f$i"; done
timed() {
    local s rc
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    rc=$?
    echo "$(echo "$(date +%s.%N) - $s" | bc) rc=$rc"
}
have_parallel=0
command -v parallel >/dev/null && parallel --version 2>/dev/null | grep -q 'GNU parallel' && have_parallel=1
# job WHAT: the command and arguments of a workload.
declare -A cmd=(
    [tiny]="true ::: \$(seq 2000)"
    [out]="-k head -c 262144 {} ::: $work/f{1..200}"
    [cpu]="'gzip -6 -c {} >/dev/null' ::: $work/f{1..16}"
)
for r in $(seq "$rounds"); do
    for what in tiny out cpu; do
        eval "set -- ${cmd[$what]}"
        echo "round=$r $what pmap-run-j2 $(timed "$tools/pmap" run -j 2 "$@")"
        echo "round=$r $what mpi-np1-j2 $(timed mpirun -q --bind-to none -np 1 "$tools/pmap-mpi" run -j 2 "$@")"
        echo "round=$r $what mpi-np2-j1 $(timed mpirun -q --bind-to none -np 2 "$tools/pmap-mpi" run -j 1 "$@")"
        [ $have_parallel = 1 ] &&
            echo "round=$r $what parallel-j2 $(timed parallel --will-cite -j 2 "$@")"
    done
done
