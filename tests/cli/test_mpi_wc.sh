#!/usr/bin/env bash
# pmap-mpi wc (and checksum) of files split across ranks (PMAP_MPI_SPLIT_MIN
# set to 1, so that every non-empty file is split): rank r counts bytes
# [size*r/n, size*(r+1)/n), rank 0 joins the parts in rank order. At -np 1,
# 2 and 3, and for every wc option, stdout and exit status are one
# process's byte for byte, wherever the rank boundaries fall: inside a
# word, on white space, on a newline, between CR and LF, among binary bytes
# (NUL, >= 0x80, controls: neither start nor end a word), in files of
# fewer bytes than ranks, in one word spanning every rank and several 4 MiB
# pieces. Then the failure path, with real conditions: a rank that cannot
# open the file (its working directory lacks it) or finds another size, a
# file no rank can map, a file no rank may read: rank 0 runs the file alone
# and reports as one process does.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"

# mpi_split NP ARGS...: pmap-mpi ARGS with every non-empty file split.
mpi_split() {
    local np=$1; shift
    PMAP_MPI_SPLIT_MIN=1 mpirun -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS -q --oversubscribe \
        -np "$np" "$PM_MPI_BIN" "$@"
}
# same WHAT: the last run's stdout, stderr and status are those saved as $T/one.*
same() {
    cmp -s "$T/one.out" "$T/.out" || { diff "$T/one.out" "$T/.out" | head; fail "$1: stdout differs"; }
    cmp -s "$T/one.err" "$T/.err" || { diff "$T/one.err" "$T/.err" | head; fail "$1: stderr differs"; }
    [ "$(cat "$T/one.rc")" = "$rc" ] || fail "$1: status $rc, one process $(cat "$T/one.rc")"
}
keep_one() { cp "$T/.out" "$T/one.out"; cp "$T/.err" "$T/one.err"; echo "$rc" >"$T/one.rc"; }

# Files of 12 bytes: -np 2 cuts at 6, -np 3 at 4 and 8 (split.c's shares).
W=$T/w
mkdir "$W"
printf 'abcdefghijk\n' >"$W/cut_word"          # every cut inside one word
printf 'abcd  ef  gh' >"$W/cut_space"           # cuts at white space, after it
printf 'abc\nde\nfg\nh\n' >"$W/cut_newline"     # a share starting with \n, after \n
printf 'abcde\r\nfghij' >"$W/cut_crlf"          # -np 2 cuts between CR and LF
printf 'ab\r\ncd\r\nef\r\n' >"$W/cut_cr"        # shares starting at CR, after LF
printf 'ab\200\200\200\200\200\200\200\200cd' >"$W/cut_binary"  # one word, a share of 0x80s
printf 'a\000b c\377\001d\tx\200y' >"$W/binary" # NUL, 0xff, ^A, 0x80 inside words
: >"$W/n0"
printf 'x' >"$W/n1"
printf 'a ' >"$W/n2a"
printf ' a' >"$W/n2b"
printf 'ab' >"$W/n2c"
printf 'a\nb' >"$W/n3a"
printf ' \n\n' >"$W/n3b"
printf 'abc' >"$W/n3c"
# Many short files of mixed bytes: the cuts land everywhere.
python3 - "$W" <<'EOF'
import random, sys
r = random.Random(7)
alphabet = [b'a', b'b', b' ', b'\n', b'\r', b'\t', b'\0', b'\x80', b'\xff', b'\x01', b'\x0b']
for i in range(40):
    n = r.randint(4, 40)
    open('%s/mix%02d' % (sys.argv[1], i), 'wb').write(b''.join(r.choice(alphabet) for _ in range(n)))
EOF
# One word over every rank and over the 4 MiB pieces a rank counts on its
# threads; text of the same size beside it.
head -c 9000003 /dev/zero | tr '\0' x >"$W/long_word"
gen_text "$W/text" 3000001 11

# -lw and the like differ from -l or -w only in what is printed (one run);
# -m is not split (characters may straddle ranks: docs/scale.md).
for args in "" "-l" "-w" "-c" "-lw" "-m"; do
    run pmap wc $args "$W"; keep_one
    [ "$rc" = 0 ] || fail "setup: pmap wc $args: status $rc"
    nps="1 2 3"
    case $args in -lw|-m) nps=3 ;; esac
    for np in $nps; do
        run mpi_split $np wc $args "$W"
        same "wc $args -np $np"
    done
    ok "wc ${args:-(default)} of $(ls "$W" | wc -l) files split over $nps ranks: as one process"
done

run pmap checksum "$W"; keep_one
for np in 1 2 3; do
    run mpi_split $np checksum "$W"
    same "checksum -np $np"
done
ok "checksum of the same files split over 1, 2, 3 ranks: as one process"

# The shares are really counted by the other ranks: rank 1, in a directory
# of its own (mpirun --wdir, one per application context), finds another f
# of the same size, and its half ("hi jk l\n": 3 words, not 2) is what it
# counts. (Ranks must see the same files; this shows who counted what.)
mkdir "$T/r0" "$T/r1" "$T/r1b" "$T/r1c"
printf 'abcdefg\nhijk lm\n' >"$T/r0/f"           # 16 bytes: -np 2 cuts at 8
printf 'zzzzzzzzhi jk l\n' >"$T/r1/f"
# mpmd CMD ARGS...: rank 0 in $T/r0, rank 1 in $DIR1, both running pmap-mpi CMD ARGS f.
mpmd() {
    PMAP_MPI_SPLIT_MIN=1 mpirun -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS -q --oversubscribe \
        -np 1 --wdir "$T/r0" "$PM_MPI_BIN" "$@" f : -np 1 --wdir "$DIR1" "$PM_MPI_BIN" "$@" f
}
DIR1=$T/r1 run mpmd wc
expect_rc 0 "wc, rank 1 in its own directory"
[ "$(cat "$T/.out")" = "      2       4      16 f" ] || fail "wc did not split: $(cat "$T/.out")"
ok "wc of a split file: rank 1 counts the second half itself"

# Failure: rank 1 cannot open the file (its directory lacks it), or finds
# another size (changed since it was listed): rank 0 counts it alone.
printf 'abcdefg\nhijk lm\nmore\n' >"$T/r1c/f"
for cmd in wc "wc -l" checksum; do
    (cd "$T/r0" && run pmap $cmd f && keep_one)
    for d in r1b r1c; do
        DIR1=$T/$d run mpmd $cmd
        same "$cmd with rank 1 in $d"
    done
done
ok "a rank that cannot open its share, or sees another size: rank 0 runs the file alone, as one process"

# A file no rank can map (a sysfs attribute: 4096 bytes by stat, mmap
# refused): rank 0 runs it alone and reports pmap's own error.
sysf=/sys/kernel/mm/transparent_hugepage/enabled
if [ -r "$sysf" ] && [ "$(stat -c %s "$sysf")" -gt 3 ]; then
    for cmd in wc checksum; do
        run pmap $cmd "$sysf"; keep_one
        run mpi_split 3 $cmd "$sysf"
        same "$cmd of $sysf -np 3"
    done
    ok "a file no rank can map: one process's result or error, status"
else
    echo "# no $sysf here: the unmappable file is not tried"
fi

# A file no rank may read (as root: the test runs as nobody): the error is
# one process's, status 1, the readable file beside it still counted.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    N=$T/nobody
    mkdir "$N"
    printf 'abc def\n' >"$N/ok"
    printf 'secret words\n' >"$N/locked"
    chmod 000 "$N/locked"
    chmod a+rx "$T" "$N"
    as_nobody() {
        setpriv --reuid=65534 --regid=65534 --clear-groups \
            env -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM HOME=/tmp TMPDIR=/tmp "$@"
    }
    np=2
    for cmd in wc checksum; do
        (cd "$N" && run as_nobody "$PM_BIN" $cmd ok locked && keep_one)
        [ "$(cat "$T/one.rc")" = 1 ] || fail "setup: $cmd of an unreadable file as nobody: $(cat "$T/one.rc")"
        (cd "$N" && run as_nobody env PMAP_MPI_SPLIT_MIN=1 mpirun -x PMAP_MPI_SPLIT_MIN \
            -x PMAP_JOBS -q --oversubscribe -np $np "$PM_MPI_BIN" $cmd ok locked &&
            echo "$rc" >"$T/.rc")
        rc=$(cat "$T/.rc")
        same "$cmd of an unreadable file -np $np"
        np=3
    done
    ok "a file no rank may read: one process's error and status 1"
else
    echo "# not root (or no setpriv): the unreadable file is not tried"
fi
