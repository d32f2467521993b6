#!/usr/bin/env bash
# pmap-mpi decompress of one file across ranks (PMAP_MPI_SPLIT_MIN; a
# file in pmap's blocked layout, decompressed to a file): each rank
# decodes its chunks' whole members and writes their output into rank 0's
# output at the offsets rank 0 assigns (pipelines/mpi/members.c). The
# files, stdout, stderr and status of one process at -np 2 and 3: several
# files, -k, -N, -f over an existing output, a corrupt member in the
# middle, garbage after the last member and between members, a plain gzip
# file (not split). Then proof that another rank writes part of the
# output: a rank whose file-size limit is below its offsets fails the
# file cleanly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"
command -v gzip >/dev/null || skip "no gzip"

mkdir "$T/src"
gen_text "$T/src/f" 1300000 31
gen_text "$T/src/g" 900000 32
gen_text "$T/src/s" 20000 33
(cd "$T/src" && pmap compress -k -b 64K f g s && gzip -c f >p.gz && mv g.gz renamed.gz) ||
    fail "setup"
# A byte of the member that holds offset 300000 (chunk 1, rank 1's) flipped.
cp "$T/src/f.gz" "$T/bad.gz"
printf '\x55' | dd of="$T/bad.gz" bs=1 seek=300000 conv=notrunc status=none
xor=$(od -An -tu1 -j300000 -N1 "$T/src/f.gz")
[ "$xor" != 85 ] || printf '\x54' | dd of="$T/bad.gz" bs=1 seek=300000 conv=notrunc status=none
# Garbage after the last member; and garbage between members, so long
# that the members after it start a chunk of their own (reads of 64 KiB:
# the garbage ends at a read's end), which a rank decodes while rank 0's
# decoder is done (the garbage ends the data): rank 0 streams those
# chunks itself, DROP.
head -c 3000 /dev/urandom | cat "$T/src/f.gz" - >"$T/trailing.gz"
sz=$(stat -c %s "$T/src/f.gz")
head -c $(( (65536 - sz % 65536) % 65536 + 65536 )) /dev/zero | tr '\0' x |
    cat "$T/src/f.gz" - "$T/src/f.gz" >"$T/middle.gz"
tree_sum() { (cd "$1" && find . -type f -printf '%p %s %T@\n' | sort &&
              find . -type f | sort | xargs -d '\n' md5sum); }
temps() { find "$1" -name '*.pmtmp*' | head -3; }

# prep DIR CASE: the case's files in DIR.
prep() {
    rm -rf "$1"; mkdir "$1"
    case $2 in
    several) cp -a "$T/src/f.gz" "$T/src/renamed.gz" "$T/src/s.gz" "$1/" ;;
    keep | name) cp -a "$T/src/renamed.gz" "$1/" ;;
    force) cp -a "$T/src/f.gz" "$1/"; echo stale >"$1/f" ;;
    corrupt) cp -a "$T/bad.gz" "$1/f.gz" ;;
    trailing | middle) cp -a "$T/$2.gz" "$1/f.gz" ;;
    plain) cp -a "$T/src/p.gz" "$1/" ;;
    esac
}
args_of() {
    case $1 in
    several) echo "-b 64K f.gz renamed.gz s.gz" ;; keep) echo "-k renamed.gz" ;;
    name) echo "-N renamed.gz" ;; force) echo "-f f.gz" ;; plain) echo "p.gz" ;;
    *) echo "-b 64K f.gz" ;;
    esac
}

# split NP ARGS...: pmap-mpi decompress ARGS, files of 100000 bytes or
# more split (not s.gz).
split() {
    local np=$1; shift
    PMAP_MPI_SPLIT_MIN=100000 run mpirun -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS -q --oversubscribe \
        -np "$np" "$PM_MPI_BIN" decompress "$@"
}

for case in several keep name force corrupt trailing middle plain; do
    args=$(args_of $case)
    prep "$T/one" $case
    (cd "$T/one" && pmap decompress $args >"$T/one.out" 2>"$T/one.err"; echo $? >"$T/one.rc")
    want=$(tree_sum "$T/one")
    for np in 2 3; do
        prep "$T/m" $case
        cd "$T/m"; split $np $args; cd "$T"
        [ "$rc" = "$(cat "$T/one.rc")" ] || fail "$case ($args) -np $np: status $rc"
        cmp -s "$T/.out" "$T/one.out" && cmp -s "$T/.err" "$T/one.err" ||
            fail "$case ($args) -np $np: messages differ from one process's"
        [ "$(tree_sum "$T/m")" = "$want" ] || fail "$case ($args) -np $np: files differ"
        [ -z "$(temps "$T/m")" ] || fail "$case ($args) -np $np: left $(temps "$T/m")"
    done
    ok "decompress $case ($args) across 2 and 3 ranks: one process's files, messages, status"
done
# What the cases above must have shown (one process's behaviour).
[ "$(cat "$T/one.rc")" = 0 ] && cmp -s "$T/one/p" "$T/src/f" || fail "plain gzip file"
prep "$T/one" corrupt; (cd "$T/one" && pmap decompress f.gz 2>/dev/null); r=$?
[ $r = 1 ] && [ -e "$T/one/f.gz" ] && [ ! -e "$T/one/f" ] || fail "corrupt: status $r"
prep "$T/one" name; (cd "$T/one" && pmap decompress -N renamed.gz)
[ -e "$T/one/g" ] && cmp -s "$T/one/g" "$T/src/g" || fail "-N: no output named g"

# A rank that cannot write its part (its file-size limit, 64 KiB, is below
# the offsets of its chunks' output): if rank 0 wrote it, the limit of
# another rank would not matter.
wrap='if [ "$OMPI_COMM_WORLD_RANK" = "$LIMITED" ]; then trap "" XFSZ; ulimit -f 64; fi; exec "$@"'
for limited in 1 2; do
    prep "$T/m" force; rm "$T/m/f"; cd "$T/m"
    LIMITED=$limited PMAP_MPI_SPLIT_MIN=1 run mpirun -x LIMITED -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS \
        -q --oversubscribe -np 3 bash -c "$wrap" bash "$PM_MPI_BIN" decompress -b 64K f.gz
    cd "$T"
    [ "$rc" = 1 ] || fail "rank $limited unable to write: status $rc, expected 1"
    expect_err "File too large" "rank $limited unable to write"
    [ ! -e "$T/m/f" ] || fail "rank $limited unable to write: an output appeared"
    cmp -s "$T/m/f.gz" "$T/src/f.gz" || fail "rank $limited unable to write: input changed"
    [ -z "$(temps "$T/m")" ] || fail "rank $limited unable to write: left $(temps "$T/m")"
done
ok "a rank that cannot write its part fails the file: input kept, no output, no temporary"
