#!/bin/bash
# test_races.sh - a directory swapped for a symbolic link while pmap works
# in it, again and again (issue 10, item 1): pmap never reads, creates or
# removes anything outside the tree it was given, and loses nothing inside.
#
# A helper loop renames the tree's subdirectory d away and puts a link to
# `outside` (which holds files of the same names) in its place, then swaps
# back, as fast as it can, while pmap compresses and decompresses the tree.
. "$(dirname "$0")/lib.sh"

ROUNDS=${PM_RACE_ROUNDS:-6}
mkdir -p "$T/outside" "$T/root/d/sub"
for i in $(seq 1 60); do
    echo "inside $i" > "$T/root/d/f$i"
    echo "outside $i" > "$T/outside/f$i"
done
for i in $(seq 1 20); do echo "inside sub $i" > "$T/root/d/sub/s$i"; done
mkdir -p "$T/outside/sub" && for i in $(seq 1 20); do echo "outside sub $i" > "$T/outside/sub/s$i"; done
(cd "$T/outside" && find . -type f | sort | xargs md5sum) > "$T/outside.md5"
(cd "$T/root" && find . -type f | sort | xargs cat | md5sum) > "$T/inside.md5"

# -T everywhere: never move into, or link inside, a directory that is there.
swapper() {
    while [ ! -e "$T/stop" ]; do
        mv -T "$T/root/d" "$T/root/d.away" 2>/dev/null || continue
        ln -sT "$T/outside" "$T/root/d"
        rm -f "$T/root/d"
        mv -T "$T/root/d.away" "$T/root/d"
    done 2>/dev/null
}

# Checks the tree is whole again (the swapper stops only after a full swap).
settle() {
    [ -L "$T/root/d" ] && rm -f "$T/root/d"
    [ -d "$T/root/d.away" ] && [ ! -e "$T/root/d" ] && mv -T "$T/root/d.away" "$T/root/d"
    [ -d "$T/root/d" ] && [ ! -L "$T/root/d" ] || fail "the test's swapper left the tree broken"
}

outside_intact() {
    (cd "$T/outside" && find . -type f | sort | xargs md5sum) | cmp -s - "$T/outside.md5" ||
        fail "$1: files outside the tree were changed, created or removed: $(cd "$T/outside" && find . | sort | tr '\n' ' ')"
}

for r in $(seq 1 "$ROUNDS"); do
    rm -f "$T/stop"
    swapper & SW=$!
    run pmap compress -q "$T/root"
    c=$rc
    run pmap decompress -q "$T/root"
    touch "$T/stop"; wait $SW      # it stops between two swaps
    settle
    outside_intact "round $r (compress exit $c, decompress exit $rc)"
    # Whatever was skipped or kept mid-swap, everything is still there once
    # decompressed: finish the job without the swapper and compare.
    run pmap decompress -q "$T/root"
    (cd "$T/root" && find . -type f | sort | xargs cat | md5sum) | cmp -s - "$T/inside.md5" ||
        fail "round $r: the tree's contents changed: $(cd "$T/root" && find . -type f | sort | tr '\n' ' ')"
done
ok "$ROUNDS rounds of compress and decompress with d swapped for a link: nothing outside touched, nothing inside lost"
