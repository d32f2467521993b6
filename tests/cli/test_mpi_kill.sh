#!/usr/bin/env bash
# A rank of pmap-mpi killed (SIGKILL) in the middle of compressing a tree
# (inputs removed as they are converted): the job is aborted, and every
# input is either still there, intact, or replaced by a complete .gz that
# decompresses to it; no partial output under a final name. Then the same
# while one file is compressed by all ranks together.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"

mkdir -p "$T/d"
for i in 1 2 3 4 5 6 7 8; do gen_text "$T/d/f$i" $((3000000 + i * 100000)) "$i"; done
(cd "$T/d" && md5sum f*) >"$T/sums"

mpirun -q --oversubscribe -np 3 "$PM_MPI_BIN" compress -11 "$T/d" >"$T/.out" 2>"$T/.err" &
job=$!
# A rank other than the first child (rank 0 is usually the first) once
# every rank runs: mpirun's children, found by their parent's id.
for _ in $(seq 600); do
    [ "$(pgrep -P $job | wc -l)" -ge 3 ] && break
    sleep 0.05
done
ranks=$(pgrep -P $job | sort -n)
[ "$(echo "$ranks" | wc -l)" -ge 3 ] || fail "mpirun did not start 3 ranks"
# Once the first output is committed: others are then half done.
for _ in $(seq 600); do
    ls "$T/d" | grep -q '\.gz$' && break
    sleep 0.05
done
victim=$(echo "$ranks" | tail -1)
kill -9 "$victim"
wait $job; rc=$?
[ "$rc" != 0 ] || fail "the job did not fail when rank pid $victim was killed"
ok "killing rank pid $victim aborted the job (status $rc)"

cd "$T/d"
n_in=0 n_gz=0
for i in 1 2 3 4 5 6 7 8; do
    f=f$i
    if [ -e "$f" ]; then
        n_in=$((n_in + 1))
        grep -q " $f\$" <(md5sum "$f") && grep -qF "$(md5sum "$f")" "$T/sums" || fail "$f changed"
    else
        [ -f "$f.gz" ] || fail "$f was removed without a $f.gz"
        n_gz=$((n_gz + 1))
        [ "$(gzip -dc "$f.gz" | md5sum | cut -d' ' -f1)" = "$(grep " $f\$" "$T/sums" | cut -d' ' -f1)" ] ||
            fail "$f.gz is not the whole of $f"
    fi
    [ ! -e "$f" ] || [ ! -e "$f.gz" ] || {
        [ "$(gzip -dc "$f.gz" | md5sum | cut -d' ' -f1)" = "$(md5sum <"$f" | cut -d' ' -f1)" ] ||
            fail "$f.gz beside $f is partial"
    }
done
[ -z "$(ls -A | grep -v '^f[1-8]\(\.gz\)\?$')" ] || fail "leftovers: $(ls -A)"
ok "after the kill: $n_in inputs intact, $n_gz complete outputs, nothing partial or left over"

# One file compressed across ranks (PMAP_MPI_SPLIT_MIN): a rank that
# encodes and writes members is killed; the job ends, the input stays, no
# output appears. The output's temporary has a name there (the ranks open
# it by name: pipelines/mpi/members.c), and mpirun sends SIGTERM and
# SIGKILL together, so rank 0 may have no time to remove it: what may be
# left is that temporary, locked by no one, which the next walk of the
# directory removes once it is a minute old (as where O_TMPFILE is
# missing).
mkdir "$T/one"
for i in 1 2 3 4 5 6; do cat "$T/d"/f* 2>/dev/null; done | head -c 60000000 >"$T/one/big"
[ "$(stat -c %s "$T/one/big")" -gt 20000000 ] || fail "setup: big input"
sum=$(md5sum <"$T/one/big")
PMAP_MPI_SPLIT_MIN=1 timeout 120 mpirun -x PMAP_MPI_SPLIT_MIN -q --oversubscribe -np 3 \
    "$PM_MPI_BIN" compress -11 "$T/one" >"$T/.out" 2>"$T/.err" &
job=$!
for _ in $(seq 600); do
    [ "$(pgrep -P $job | wc -l)" -ge 1 ] && break
    sleep 0.05
done
mpirun_pid=$(pgrep -P $job -x mpirun || echo $job)
for _ in $(seq 600); do
    [ "$(pgrep -P "$mpirun_pid" | wc -l)" -ge 3 ] && break
    sleep 0.05
done
sleep 1
victim=$(pgrep -P "$mpirun_pid" | sort -n | tail -1)
[ -n "$victim" ] || fail "no rank to kill"
kill -9 "$victim"
wait $job; rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "split compress: status $rc after killing a rank (124: hung)"
[ "$(md5sum <"$T/one/big")" = "$sum" ] || fail "split compress: the input changed"
left=$(ls -A "$T/one" | grep -v '^big$')
if [ -n "$left" ]; then
    echo "$left" | grep -qvx '\.big\.gz\.pmtmp\.[a-z0-9]\{6\}' && fail "split compress: left behind: $left"
    flock -n "$T/one/$left" true || fail "split compress: $left is still locked"
    touch -d '2 hours ago' "$T/one/$left"
    run pmap checksum "$T/one"
    [ "$(ls -A "$T/one")" = big ] || fail "split compress: $left not removed by the next walk"
fi
ok "a rank killed while compressing one file with the others: input intact, no output${left:+ (its stale temporary removed by the next walk)}"
[ "$n_in" -gt 0 ] || skip "every file of the tree was done before the kill (machine too fast)"
