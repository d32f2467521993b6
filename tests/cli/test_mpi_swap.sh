#!/usr/bin/env bash
# pmap-mpi acts only inside the trees it was given, as one pmap does: a
# directory of the tree swapped for a symbolic link after rank 0 listed it
# must not make any rank read, write or remove a file outside the tree
# (ranks reach walked files by descriptor, one name at a time, below the
# operand they opened; dist.c "roots"). Nothing outside is touched, the
# files that became unreachable fail with the reason, the rest is done.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"

# setup ROOT: three big files first (8.5 MB each: a batch of their own,
# about a second each at -9), then small files in ROOT/z; $T/outside has
# files of the same names, which a rank following the link would take.
setup() {
    rm -rf "$1" "$1.old" "$T/outside"
    mkdir -p "$1/a" "$1/z" "$T/outside"
    for i in 1 2 3; do gen_words "$1/a/big$i" 8500000 "$i"; done
    for i in 1 2 3 4 5; do
        echo "inside $i" >"$1/z/f$i"
        echo "outside $i" >"$T/outside/f$i"
    done
    (cd "$T/outside" && md5sum f*) >"$T/outside.sums"
    # Reading z's entries (rank 0's listing) updates its access time.
    touch -a -d 2000-01-01 "$1/z" "$1"
}

outside_intact() {
    [ "$(ls -A "$T/outside" | tr '\n' ' ')" = "f1 f2 f3 f4 f5 " ] ||
        fail "$1: outside the tree now holds: $(ls -A "$T/outside")"
    (cd "$T/outside" && md5sum -c --quiet "$T/outside.sums") || fail "$1: a file outside changed"
}

# wait_listed DIR: until DIR's entries were read (its atime moves); 1 if
# that did not happen within 30 s (a filesystem without access times).
wait_listed() {
    local i
    for i in $(seq 3000); do
        [ "$(stat -c %X "$1")" -gt 1000000000 ] 2>/dev/null &&
            [ "$(stat -c %X "$1")" != "$(date -d 2000-01-01 +%s)" ] && return 0
        sleep 0.01
    done
    return 1
}

# 1. A subdirectory swapped for a link after the listing.
setup "$T/tree"
mpi 3 compress -9 "$T/tree" >"$T/.out" 2>"$T/.err" &
job=$!
wait_listed "$T/tree/z" || { kill $job; wait; skip "no access times here: cannot tell when the tree was listed"; }
mv "$T/tree/z" "$T/tree/z.old" && ln -s ../outside "$T/tree/z"
late=$(ls "$T/tree/z.old" | grep -c '\.gz$')
wait $job; rc=$?
outside_intact "a directory swapped for a link"
[ "$late" = 0 ] || skip "the swap came after the small files were done ($late): try on a quieter machine"
[ "$rc" = 1 ] || fail "swapped directory: exit status $rc, expected 1"
for i in 1 2 3 4 5; do
    expect_err "$T/tree/z/f$i: cannot open the directory it was found in" "file $i of the swapped directory"
    [ "$(cat "$T/tree/z.old/f$i")" = "inside $i" ] || fail "z.old/f$i changed"
done
expect_err "(changed during the run)" "the reason"
for i in 1 2 3; do
    [ -f "$T/tree/a/big$i.gz" ] && [ ! -e "$T/tree/a/big$i" ] || fail "big$i was not compressed"
done
[ -z "$(ls -A "$T/tree/z.old" | grep -v '^f[1-5]$')" ] || fail "left in z.old: $(ls -A "$T/tree/z.old")"
ok "a directory swapped for a link mid-run: nothing outside touched, its files failed with the reason, the rest done"

# 2. The operand itself swapped for a link after the listing: rank 0
# works in the directory it opened; a rank that opens the operand later
# finds another directory there and refuses it.
setup "$T/tree"
mpi 3 compress -9 "$T/tree" >"$T/.out" 2>"$T/.err" &
job=$!
wait_listed "$T/tree/z" || { kill $job; wait; fail "tree listed once but not twice?"; }
mv "$T/tree" "$T/tree.old" && ln -s outside "$T/tree"
wait $job; rc=$?
outside_intact "the operand swapped for a link"
case $rc in
0) ok "the operand swapped for a link mid-run: every rank had it open already; nothing outside touched" ;;
1) expect_err "(changed during the run)" "a rank that opened the operand after the swap"
   ok "the operand swapped for a link mid-run: refused by a rank that opened it late; nothing outside touched" ;;
*) fail "operand swapped: exit status $rc" ;;
esac
rm -f "$T/tree"
