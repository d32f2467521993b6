#!/usr/bin/env bash
# pmap-mpi's rank 0 holds one window of files at a time (PMAP_MPI_WINDOW),
# not the whole tree: a tree of 20,000 files run in windows of 500 gives
# one process's output, and rank 0's peak memory stays near its size at
# a small tree instead of growing with the files (as it does when the
# window holds the whole tree).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"

mkdir -p "$T/tree"
for d in 0 1 2 3 4 5 6 7 8 9; do
    mkdir "$T/tree/d$d"
    (cd "$T/tree/d$d" && seq 2000 | sed 's/^/f/' | xargs touch)
done
echo some bytes >"$T/tree/d3/f17"
echo other bytes >"$T/tree/d9/f2000"
pmap checksum "$T/tree" >"$T/one.out" 2>"$T/one.err"; one_rc=$?
[ "$one_rc" = 0 ] || fail "one process: status $one_rc"

# rss WINDOW: runs checksum at -np 2; rank 0's peak RSS (KB) in $rss.
rss() {
    PMAP_MPI_WINDOW=$1 mpirun -q --oversubscribe -np 2 python3 -c '
import os, resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
if os.environ.get("OMPI_COMM_WORLD_RANK") == "0":
    open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)' "$T/rss" "$PM_MPI_BIN" checksum "$T/tree" >"$T/.out" 2>"$T/.err"
    rc=$?
    rss=$(cat "$T/rss")
}

rss 500
expect_rc 0 "windows of 500"
cmp -s "$T/.out" "$T/one.out" || fail "windows of 500: output differs from one process's"
small=$rss
ok "20,000 files in windows of 500: output as one process (rank 0 peak $small KB)"

# Events of the listing (links skipped, a missing operand, a suffix) cut
# across windows of 7: stdout, stderr and status as one process.
mkdir -p "$T/mix/s"
for i in $(seq 40); do
    echo "$i" >"$T/mix/s/f$i"
    [ $((i % 3)) = 0 ] && ln -s "f$i" "$T/mix/s/l$i"
done
mkfifo "$T/mix/s/fifo"
cd "$T/mix"
run pmap checksum s missing s/f3 s/l3; cp "$T/.out" "$T/mix1.out"; cp "$T/.err" "$T/mix1.err"; mrc=$rc
[ "$mrc" = 1 ] || fail "setup: a missing operand did not fail ($mrc)"
export PMAP_MPI_WINDOW=7
run mpi 2 checksum s missing s/f3 s/l3
unset PMAP_MPI_WINDOW
cmp -s "$T/.out" "$T/mix1.out" || { diff "$T/mix1.out" "$T/.out" | head; fail "windows of 7: stdout"; }
cmp -s "$T/.err" "$T/mix1.err" || { diff "$T/mix1.err" "$T/.err" | head; fail "windows of 7: stderr"; }
expect_rc "$mrc" "windows of 7"
ok "skips, a missing operand and links across windows of 7: output and status as one process"
cd "$T"

case "${PM_SANITIZE:-}" in ?*) exit 0 ;; esac      # sanitizers: memory is theirs
# Rank 0's peak: about its size at a tree of ten files in windows of 500,
# much more with the whole tree in one window.
mkdir "$T/tiny"
for i in $(seq 10); do : >"$T/tiny/f$i"; done
rss_tiny() { local t=$T/tree; mv "$t" "$t.x"; mv "$T/tiny" "$t"; rss 500; mv "$t" "$T/tiny"; mv "$t.x" "$t"; }
rss_tiny
base=$rss
rss 1000000
expect_rc 0 "one window"
cmp -s "$T/.out" "$T/one.out" || fail "one window: output differs from one process's"
big=$rss
[ $((small - base)) -lt 10000 ] ||
    fail "windows of 500: rank 0 peaked at $small KB, $base KB for ten files"
[ $((big - small)) -gt 20000 ] ||
    fail "one window ($big KB) should need much more than windows of 500 ($small KB)"
ok "rank 0 peak: $base KB for ten files, $small KB for 20,000 in windows of 500, $big KB in one"
