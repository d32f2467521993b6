#!/usr/bin/env bash
# pmap-mpi acts only inside the trees it was given, as one pmap does: a
# directory of the tree, or the operand itself, swapped for a symbolic
# link after rank 0 listed it must not make any rank read, write or remove
# a file outside the tree (ranks reach walked files by descriptor, one
# name at a time, below the operand they opened and checked; dist.c
# "roots"). Nothing outside is touched, the files that became unreachable
# fail with the reason, the rest is done. Also for a file compressed by
# every rank at once (PMAP_MPI_SPLIT_MIN).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"

# setup ROOT: three big files first (8.5 MB each: a batch of their own,
# about a second each at -9), then small files in ROOT/z; $T/outside and
# $T/outside/z have files of the same names, which a rank following a
# link would take.
setup() {
    rm -rf "$1" "$1.old" "$T/outside"
    mkdir -p "$1/a" "$1/z" "$T/outside/z"
    for i in 1 2 3; do gen_words "$1/a/big$i" 8500000 "$i"; done
    for i in $(seq 300); do
        echo "inside $i" >"$1/z/f$i"
        echo "outside $i" >"$T/outside/f$i"
        echo "outside $i" >"$T/outside/z/f$i"
    done
    (cd "$T/outside" && find . -type f | sort | xargs md5sum) >"$T/outside.sums"
    # Reading z's entries (rank 0's listing) updates its access time.
    touch -a -d 2000-01-01 "$1/z"
}

outside_intact() {
    (cd "$T/outside" && find . | sort | md5sum) >"$T/outside.now"
    [ "$(find "$T/outside" -type f | wc -l)" = 600 ] ||
        fail "$1: outside the tree now holds: $(find "$T/outside" -name '*.gz' | head -3)"
    (cd "$T/outside" && md5sum -c --quiet "$T/outside.sums") || fail "$1: a file outside changed"
}

# wait_listed DIR: until DIR's entries were read (its atime moves); 1 if
# that did not happen within 30 s (a filesystem without access times).
wait_listed() {
    local i old
    old=$(date -d 2000-01-01 +%s)
    for i in $(seq 3000); do
        [ "$(stat -c %X "$1")" != "$old" ] && return 0
        sleep 0.01
    done
    return 1
}

# swap_dir WHAT ENV...: compresses $T/tree under `env ENV...` at -np 3 and
# swaps tree/z for a link to $T/outside once it was listed.
swap_dir() {
    local what=$1 i
    shift
    setup "$T/tree"
    env "$@" mpirun -q --oversubscribe -np 3 -x PMAP_MPI_SPLIT_MIN "$PM_MPI_BIN" compress -9 \
        "$T/tree" >"$T/.out" 2>"$T/.err" &
    job=$!
    wait_listed "$T/tree/z" || { kill $job; wait; skip "no access times here: cannot tell when the tree was listed"; }
    mv "$T/tree/z" "$T/tree/z.old" && ln -s ../outside "$T/tree/z"
    wait $job; rc=$?
    outside_intact "$what"
    # Files a rank had begun from z's descriptor before the swap are done
    # there; a swap that late proves nothing more.
    ls "$T/tree/z.old" | grep -q '\.gz$' && skip "$what: the swap came after files of z were done"
    [ "$rc" = 1 ] || fail "$what: exit status $rc, expected 1"
    for i in 1 2 300; do
        expect_err "$T/tree/z/f$i: cannot open the directory it was found in" "$what: file $i"
    done
    expect_err "(changed during the run)" "$what: the reason"
    [ "$(grep -c 'cannot open the directory it was found in' "$T/.err")" = 300 ] ||
        fail "$what: not every file of the swapped directory failed"
    for i in $(seq 300); do
        [ "$(cat "$T/tree/z.old/f$i")" = "inside $i" ] || fail "$what: z.old/f$i changed"
    done
    for i in 1 2 3; do
        [ -f "$T/tree/a/big$i.gz" ] && [ ! -e "$T/tree/a/big$i" ] || fail "$what: big$i not compressed"
        gzip -t "$T/tree/a/big$i.gz" || fail "$what: big$i.gz"
    done
    [ -z "$(ls -A "$T/tree/z.old" | grep -v '^f[0-9]*$')" ] || fail "$what: left in z.old"
    ok "$what: nothing outside touched, the directory's 300 files failed with the reason, the rest done"
}

# 1. A subdirectory swapped for a link after the listing.
swap_dir "a directory swapped for a link" PMAP_MPI_SPLIT_MIN=0

# 2. The same where every file is compressed by every rank at once: each
# rank opens the input (and the output's temporary) below the root.
swap_dir "a directory swapped for a link, files split across ranks" PMAP_MPI_SPLIT_MIN=1

# 3. The operand itself swapped for a link after the listing: every rank
# opens it per use and checks it is the directory rank 0 walked (its
# inode). Three big operands first keep the ranks busy until the swap.
rm -rf "$T/tree" "$T/tree.old"
setup "$T/tree"
rm -rf "$T/tree/a"
for i in 1 2 3; do gen_words "$T/ob$i" 9000000 "$((i + 10))"; done
mpi 3 compress -9 "$T/ob1" "$T/ob2" "$T/ob3" "$T/tree" >"$T/.out" 2>"$T/.err" &
job=$!
wait_listed "$T/tree/z" || { kill $job; wait; fail "tree listed once but not twice?"; }
mv "$T/tree" "$T/tree.old" && ln -s outside "$T/tree"
wait $job; rc=$?
outside_intact "the operand swapped for a link"
ls "$T/tree.old/z" | grep -q '\.gz$' && skip "operand swapped: the swap came after files of z were done"
[ "$rc" = 1 ] || fail "operand swapped: exit status $rc, expected 1"
expect_err "$T/tree/z/f1: cannot open the directory it was found in: Stale file handle (changed during the run)" \
    "operand swapped"
[ "$(grep -c 'cannot open the directory it was found in' "$T/.err")" = 300 ] ||
    fail "operand swapped: not every file below it failed"
for i in 1 2 3; do [ -f "$T/ob$i.gz" ] || fail "operand swapped: ob$i not compressed"; done
ok "the operand swapped for a link mid-run: its files refused by every rank (another directory), nothing outside touched"
rm -f "$T/tree"
