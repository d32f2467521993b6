#!/usr/bin/env bash
# A full disk (ENOSPC) on a small tmpfs (needs root to mount; skipped
# otherwise): the file that does not fit fails with a message naming it and
# the cause, its input stays intact, no partial output is left, the space of
# the temporary is given back, and the other files (here on another file
# system, so that they surely have room) are still processed.
. "$(dirname "$0")/lib.sh"
need_root "mounting a tmpfs"
cd "$T"
mkdir mnt
mount -t tmpfs -o size=3m pmap-enospc mnt 2>/dev/null || skip "cannot mount a tmpfs here"
PM_CLEANUP+=("umount '$T/mnt'")

gen_random big.ref 1800000 1
gen_text small.ref 300000 2
mkdir other
cp big.ref mnt/big && cp small.ref other/small && cp small.ref other/small2
run pmap compress other/small mnt other/small2; expect_rc 1 "compress onto a full disk"
expect_err "pmap: mnt/big: " "ENOSPC names the file"; expect_err "No space left on device" "ENOSPC cause"
cmp -s mnt/big big.ref || fail "input damaged by ENOSPC"
[ ! -e mnt/big.gz ] || fail "partial output left"
gz_same other/small.gz small.ref; gz_same other/small2.gz small.ref
[ "$(ls -A mnt)" = big ] || fail "left: $(ls -A mnt)"
used=$(df -k --output=used mnt | tail -1)
[ "$used" -lt 2200 ] || fail "space not given back: ${used}K used"
ok "compress: ENOSPC fails the file alone, input intact, nothing partial, space freed"

rm -f mnt/*
head -c 4000000 /dev/zero >zeros.ref
gzip -c zeros.ref >mnt/zeros.gz && cp mnt/zeros.gz zeros.gz.ref
gzip -c small.ref >other/small.gz
run pmap decompress mnt other; expect_rc 1 "decompress onto a full disk"
expect_err "pmap: mnt/zeros.gz: " "ENOSPC decompress names the file"; expect_err "No space left on device" "cause"
cmp -s mnt/zeros.gz zeros.gz.ref || fail "decompress ENOSPC: input changed"
[ ! -e mnt/zeros ] || fail "decompress ENOSPC: partial output left"
cmp -s other/small small.ref || fail "other file not decompressed"
ok "decompress: ENOSPC fails the file alone, .gz kept, nothing partial"

rm -f mnt/*
head -c 2000000 /dev/zero >mnt/filler
run bash -c "'$PM_BIN' compress -c '$T/big.ref' >'$T/mnt/out.gz'"
expect_rc 1 "-c onto a full disk"; expect_err "No space left on device" "-c ENOSPC cause"
ok "-c: a full disk on stdout is an error (status 1)"
