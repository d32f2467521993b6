#!/usr/bin/env bash
# pmap-mpi compress of one file across ranks (PMAP_MPI_SPLIT_MIN), each
# rank writing its own members into rank 0's output at the offsets rank 0
# assigns (pipelines/mpi/members.c): the bytes, messages and status of one
# process at -np 2 and 3, levels 1, 6, 9, with -k, -f, -n; no temporary
# left behind. Then proof that the other ranks write the output
# themselves: a rank whose file-size limit is too small for its writes
# (RLIMIT_FSIZE, SIGXFSZ ignored: its pwrite fails with EFBIG) fails the
# file -- input kept, nothing under the final name, no temporary -- and,
# where strace runs, rank 1 is seen writing about half the output.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"

mkdir "$T/src"
gen_text "$T/src/f" 1300000 21
tree_sum() { (cd "$1" && find . -type f | sort | xargs -d '\n' md5sum); }
temps() { find "$1" -name '*.pmtmp*' | head -3; }

# split NP ARGS...: pmap-mpi compress ARGS with every file split.
split() {
    local np=$1; shift
    PMAP_MPI_SPLIT_MIN=1 run mpirun -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS -q --oversubscribe \
        -np "$np" "$PM_MPI_BIN" compress "$@"
}

for args in "-1 -b 64K" "-6 -k -b 32K" "-9 -n -b 64K" "-6 -f -k -b 100K" "-6"; do
    rm -rf "$T/one"; cp -a "$T/src" "$T/one"
    case "$args" in *-f*) echo stale >"$T/one/f.gz" ;; esac
    (cd "$T/one" && pmap compress $args f >"$T/one.out" 2>"$T/one.err"; echo $? >"$T/one.rc")
    want=$(tree_sum "$T/one")
    for np in 2 3; do
        rm -rf "$T/m"; cp -a "$T/src" "$T/m"
        case "$args" in *-f*) echo stale >"$T/m/f.gz" ;; esac
        cd "$T/m"; split $np $args f; cd "$T"
        [ "$rc" = "$(cat "$T/one.rc")" ] || fail "compress $args -np $np: status $rc"
        cmp -s "$T/.out" "$T/one.out" && cmp -s "$T/.err" "$T/one.err" ||
            fail "compress $args -np $np: messages differ from one process's"
        [ "$(tree_sum "$T/m")" = "$want" ] || fail "compress $args -np $np: files differ"
        [ -z "$(temps "$T/m")" ] || fail "compress $args -np $np: left $(temps "$T/m")"
    done
    ok "compress $args of a file split across 2 and 3 ranks: one process's bytes, no temporary left"
done

# A rank that cannot write its members (its file-size limit, 64 KiB, is
# below their offsets): if rank 0 wrote them, the limit of another rank
# would not matter.
wrap='if [ "$OMPI_COMM_WORLD_RANK" = "$LIMITED" ]; then trap "" XFSZ; ulimit -f 64; fi; exec "$@"'
for limited in 1 2; do
    rm -rf "$T/m"; cp -a "$T/src" "$T/m"; cd "$T/m"
    LIMITED=$limited PMAP_MPI_SPLIT_MIN=1 run mpirun -x LIMITED -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS \
        -q --oversubscribe -np 3 bash -c "$wrap" bash "$PM_MPI_BIN" compress -b 32K f
    cd "$T"
    [ "$rc" = 1 ] || fail "rank $limited unable to write: status $rc, expected 1"
    expect_err "File too large" "rank $limited unable to write"
    [ ! -e "$T/m/f.gz" ] || fail "rank $limited unable to write: an output appeared"
    cmp -s "$T/m/f" "$T/src/f" || fail "rank $limited unable to write: the input changed"
    [ -z "$(temps "$T/m")" ] || fail "rank $limited unable to write: left $(temps "$T/m")"
done
ok "a rank that cannot write its members fails the file: input kept, no output, no temporary"

# Rank 1's own writes into the temporary, counted by strace (-y names the
# file each descriptor is): about half of the output at -np 2.
if command -v strace >/dev/null && strace -f -o /dev/null true 2>/dev/null; then
    rm -rf "$T/m"; cp -a "$T/src" "$T/m"; cd "$T/m"
    trace='if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec strace -f -y -e trace=pwrite64 -o "$TRACE" "$@"; fi; exec "$@"'
    TRACE=$T/trace PMAP_MPI_SPLIT_MIN=1 run mpirun -x TRACE -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS \
        -q --oversubscribe -np 2 bash -c "$trace" bash "$PM_MPI_BIN" compress -k -b 64K f
    cd "$T"
    expect_rc 0 "compress under strace"
    total=$(stat -c %s "$T/m/f.gz")
    mine=$(grep 'pmtmp' "$T/trace" | sed -n 's/.*= \([0-9]*\)$/\1/p' | awk '{s += $1} END {print s + 0}')
    [ "$mine" -gt $((total * 4 / 10)) ] && [ "$mine" -lt $((total * 6 / 10)) ] ||
        fail "rank 1 wrote $mine of $total output bytes; expected about half"
    ok "rank 1 wrote $mine of the $total output bytes itself (strace)"
else
    echo "# strace cannot run here: rank 1's write count not checked"
fi

# A rank that cannot read the file (mpirun --wdir: rank 1 in a directory
# of its own, without f) or finds another file there (same name and size,
# other bytes and time): the file fails on rank 0 with the reason, the
# input is kept, no output and no temporary.
mkdir -p "$T/r0" "$T/r1none" "$T/r1other"
gen_text "$T/r1other/f" "$(stat -c %s "$T/src/f")" 99
touch -d 2001-01-01 "$T/r1other/f"
for dir1 in r1none r1other; do
    rm -f "$T/r0/f" "$T/r0/f.gz"; cp -p "$T/src/f" "$T/r0/f"
    PMAP_MPI_SPLIT_MIN=1 run mpirun -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS -q --oversubscribe \
        -np 1 --wdir "$T/r0" "$PM_MPI_BIN" compress -b 32K f : \
        -np 1 --wdir "$T/$dir1" "$PM_MPI_BIN" compress -b 32K f
    [ "$rc" = 1 ] || fail "$dir1: status $rc, expected 1"
    case $dir1 in
    r1none) expect_err "f: compression failed elsewhere: No such file or directory" "$dir1" ;;
    r1other) expect_err "f: changed while it was being read elsewhere" "$dir1" ;;
    esac
    [ ! -e "$T/r0/f.gz" ] || fail "$dir1: an output appeared"
    cmp -s "$T/r0/f" "$T/src/f" || fail "$dir1: the input changed"
    [ -z "$(temps "$T/r0")" ] || fail "$dir1: left $(temps "$T/r0")"
    [ -z "$(ls -A "$T/$dir1" | grep -v '^f$')" ] || fail "$dir1: rank 1 wrote $(ls -A "$T/$dir1")"
done
ok "a rank that cannot read the file, or reads another one: the file fails with the reason, input kept, nothing left"

# A name too long for the named temporary (".NAME.gz.pmtmp.XXXXXX" over
# NAME_MAX) is not split: compressed whole by one rank, as pmap does.
long=$(printf 'n%.0s' $(seq 240))
mkdir -p "$T/long1" "$T/longm"
cp -p "$T/src/f" "$T/long1/$long"; cp -p "$T/src/f" "$T/longm/$long"   # gzip keeps the mtime
(cd "$T/long1" && pmap compress -b 32K "$long") || fail "setup: one process, long name"
cd "$T/longm"
PMAP_MPI_SPLIT_MIN=1 run mpirun -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS -q --oversubscribe -np 2 \
    "$PM_MPI_BIN" compress -b 32K "$long"
cd "$T"
expect_rc 0 "a 240-byte name"
cmp -s "$T/long1/$long.gz" "$T/longm/$long.gz" || fail "a 240-byte name: output differs"
[ -z "$(temps "$T/longm")" ] || fail "a 240-byte name: left $(temps "$T/longm")"
ok "a name too long for a named temporary: not split, one process's bytes"
