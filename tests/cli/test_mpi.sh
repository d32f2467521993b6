#!/usr/bin/env bash
# pmap-mpi under mpirun -np 1, 2, 3 against pmap in one process, on a tree
# of files of different sizes (a subdirectory, a symbolic link, a file
# already compressed, 600 small files and 40 of 300 kB: several batches,
# by count and by bytes): checksum, wc, compress and decompress print the same
# stdout and stderr, exit with the same status and write the same bytes;
# a corrupt input fails on whatever rank ran it and is reported, and kept,
# as one process reports and keeps it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"

mk_tree() {
    mkdir -p "$1/sub/deeper"
    gen_text "$1/big" 3000000 1
    gen_text "$1/mid" 700000 2
    gen_text "$1/sub/small" 5000 3
    gen_text "$1/sub/deeper/tiny" 10 4
    : >"$1/sub/empty"
    gen_text "$1/sub/z" 200000 5
    ln -s big "$1/link"
    gen_text "$T/pre" 1000 6 && gzip -c "$T/pre" >"$1/sub/pre.gz"
    # More small files than one batch holds (256: pipelines/mpi/dist.c).
    mkdir "$1/many"
    for i in $(seq 600); do printf 'line %d\nword %d\n' "$i" "$i" >"$1/many/m$i"; done
    # More bytes than one batch holds (8 MiB), in files of different sizes.
    mkdir "$1/mid"
    for i in $(seq 40); do tail -c +$((i * 997)) "$1/big" | head -c $((300000 - i)) >"$1/mid/p$i"; done
}
mk_tree "$T/ref"

# same NAME DIR_A DIR_B: stdout, stderr, status of the runs saved under A and B match.
same() {
    cmp -s "$2.out" "$3.out" || { diff "$2.out" "$3.out" | head; fail "$1: stdout differs"; }
    cmp -s "$2.err" "$3.err" || { diff "$2.err" "$3.err" | head; fail "$1: stderr differs"; }
    [ "$(cat "$2.rc")" = "$(cat "$3.rc")" ] || fail "$1: status $(cat "$3.rc"), one process $(cat "$2.rc")"
}
# keep SAVE: saves the last run's stdout, stderr and status as SAVE.*
keep() { cp "$T/.out" "$1.out"; cp "$T/.err" "$1.err"; echo "$rc" >"$1.rc"; }
# tree_sum DIR: every file's relative path and bytes (the outputs written).
tree_sum() { (cd "$1" && find . -type f | sort | xargs -d '\n' md5sum); }

cd "$T/ref"
run pmap checksum . ; keep "$T/one_ck"
run pmap wc sub . ; keep "$T/one_wc"
cp -a "$T/ref" "$T/one_c"; cd "$T/one_c"
run pmap compress -v -k -9 . ; keep "$T/one_comp"
cd "$T"
for np in 1 2 3; do
    cd "$T/ref"
    run mpi $np checksum . ; keep "$T/m_ck"; same "checksum -np $np" "$T/one_ck" "$T/m_ck"
    run mpi $np wc sub . ; keep "$T/m_wc"; same "wc -np $np" "$T/one_wc" "$T/m_wc"
    rm -rf "$T/m_c"; cp -a "$T/ref" "$T/m_c"; cd "$T/m_c"
    run mpi $np compress -v -k -9 . ; keep "$T/m_comp"
    same "compress -np $np" "$T/one_comp" "$T/m_comp"
    [ "$(tree_sum "$T/m_c")" = "$(tree_sum "$T/one_c")" ] || fail "compress -np $np: outputs differ"
    ok "np $np: checksum, wc, compress -v: output, status and bytes as one process"
done

# Decompress a tree with a corrupt member in it: the same error, status 1,
# the corrupt file kept, the others replaced by their contents.
mk_gz() {
    rm -rf "$1"; cp -a "$T/ref" "$1"; rm -f "$1/link" "$1/sub/pre.gz"
    pmap compress -q "$1" || fail "setup: compress"
    printf 'not gzip at all' | dd of="$1/mid.gz" bs=1 seek=40 conv=notrunc status=none
}
mk_gz "$T/one_d"; cd "$T/one_d"
run pmap decompress . ; keep "$T/one_dec"
[ "$rc" = 1 ] || fail "setup: the corrupt file did not fail ($rc)"
for np in 2 3; do
    mk_gz "$T/m_d"; cd "$T/m_d"
    run mpi $np decompress . ; keep "$T/m_dec"
    same "decompress with an error -np $np" "$T/one_dec" "$T/m_dec"
    [ "$(tree_sum "$T/m_d")" = "$(tree_sum "$T/one_d")" ] || fail "decompress -np $np: files differ"
    [ -f "$T/m_d/mid.gz" ] && [ ! -e "$T/m_d/mid" ] || fail "decompress -np $np: corrupt input not kept"
    ok "np $np: decompress with a corrupt file: same error, status 1, input kept"
done

# -t: a walked file needs a suffix (skipped silently without one), an
# operand is tested whatever its name (gzip -t's rules), on every rank.
mkdir -p "$T/tt/d"
echo plain >"$T/tt/d/a"
echo x | gzip >"$T/tt/d/b.gz"
echo plain >"$T/tt/op"
cd "$T/tt"
run pmap decompress -t d op; keep "$T/one_t"
[ "$rc" = 1 ] || fail "setup: -t of a plain operand did not fail ($rc)"
for np in 2 3; do
    run mpi $np decompress -t d op; keep "$T/m_t"
    same "decompress -t -np $np" "$T/one_t" "$T/m_t"
done
ok "decompress -t: walked files without a suffix passed over, an operand tested, as one process"

# stdin stays on rank 0, as one stream.
run mpi 2 checksum - <"$T/ref/big"
expect_rc 0 "checksum of stdin"
[ "$(cut -d' ' -f1 "$T/.out")" = "$(cut -d' ' -f1 "$T/one_ck.out" | head -1)" ] ||
    fail "checksum of stdin: $(cat "$T/.out")"
ok "stdin is read by rank 0 alone"

# checksum of files above PMAP_MPI_SPLIT_MIN: every rank reads a share,
# the CRCs joined with pm_crc32_combine; sizes not a multiple of the ranks
# or of the 4 MiB pieces, and an empty file and a 1-byte file beside them.
mkdir "$T/split"
gen_text "$T/split/a" 9000001 7
tail -c +5 "$T/split/a" >"$T/split/b"
: >"$T/split/empty"
printf x >"$T/split/one"
run pmap checksum "$T/split"; keep "$T/one_split"
export PMAP_MPI_SPLIT_MIN=1
for np in 2 3; do
    run mpirun -x PMAP_MPI_SPLIT_MIN -q --oversubscribe -np $np "$PM_MPI_BIN" checksum "$T/split"
    keep "$T/m_split"; same "split checksum -np $np" "$T/one_split" "$T/m_split"
    ok "np $np: checksum of files split across ranks as one process's"
done
unset PMAP_MPI_SPLIT_MIN

# A file named twice is two files, reported twice in place.
cd "$T/ref"
run pmap checksum big sub/z big mid big; keep "$T/one_dup"
run mpi 3 checksum big sub/z big mid big; keep "$T/m_dup"
same "checksum of a file named three times" "$T/one_dup" "$T/m_dup"
ok "a path named three times: three lines, in place"

# compress of files above PMAP_MPI_SPLIT_MIN: members made by every rank,
# each written by its rank into rank 0's output (test_mpi_placed.sh has
# more); the same bytes, messages and status as one
# process, inputs removed (or kept with -k) as one process does.
mkdir "$T/csplit"
gen_text "$T/csplit/a" 5000001 8
tail -c +3 "$T/csplit/a" | head -c 2300000 >"$T/csplit/b"
printf 'small\n' >"$T/csplit/c"
for args in "-v" "-k -n -3" "-v -b 64K -12"; do
    rm -rf "$T/cs1"; cp -a "$T/csplit" "$T/cs1"; cd "$T/cs1"
    run pmap compress $args .; keep "$T/one_cs"; one_sum=$(tree_sum "$T/cs1")
    for np in 2 3; do
        rm -rf "$T/csm"; cp -a "$T/csplit" "$T/csm"; cd "$T/csm"
        export PMAP_MPI_SPLIT_MIN=1
        run mpirun -x PMAP_MPI_SPLIT_MIN -x PMAP_JOBS -q --oversubscribe -np $np "$PM_MPI_BIN" compress $args .
        unset PMAP_MPI_SPLIT_MIN
        keep "$T/m_cs"; same "split compress $args -np $np" "$T/one_cs" "$T/m_cs"
        [ "$(tree_sum "$T/csm")" = "$one_sum" ] || fail "split compress $args -np $np: files differ"
    done
    ok "compress $args of files split across 2 and 3 ranks: bytes, messages, status as one process"
done
cd "$T"
