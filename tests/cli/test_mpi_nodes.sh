#!/usr/bin/env bash
# pmap-mpi across two nodes, as far as one machine can show it: a hostfile
# of two hosts, the second reached through a stand-in for ssh (mpirun's
# plm_rsh_agent) that starts Open MPI's daemon here, so the job has two
# daemons and each rank sees two ranks on its node; `--mca btl tcp,self`
# takes shared memory away, so every message crosses TCP as between
# machines (one-sided windows cannot be allocated there with Open MPI's
# osc/pt2pt: pmap-mpi must not need one). Then compress (files shared and
# one split across every rank), checksum, wc, decompress and run -k give
# one process's bytes and status.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"
cd "$T"

cat >rsh <<'EOF'
#!/bin/sh
# ssh's stand-in: skip its options and the host, run the command here.
while [ $# -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done
shift
exec /bin/sh -c "$*"
EOF
chmod +x rsh
printf 'localhost slots=2\npmap-node-b slots=2\n' >hosts
# nodes ARGS...: pmap-mpi ARGS on 4 ranks over the two "nodes" (--map-by
# node: ranks 0 and 2 here, 1 and 3 on the other); a rank named in
# $LIMITED gets a file-size limit of 64 KiB (SIGXFSZ ignored: EFBIG).
wrap='if [ "$OMPI_COMM_WORLD_RANK" = "$LIMITED" ]; then trap "" XFSZ; ulimit -f 64; fi; exec "$@"'
nodes() {
    PMAP_MPI_SPLIT_MIN=1000000 LIMITED=${LIMITED:-none} timeout 300 mpirun -q \
        --mca plm_rsh_agent "$T/rsh" --mca btl tcp,self --hostfile "$T/hosts" --map-by node \
        -np 4 -x PMAP_JOBS -x PMAP_MPI_SPLIT_MIN -x LIMITED \
        bash -c "$wrap" bash "$PM_MPI_BIN" "$@"
}

# Two daemons, two ranks on each node, every rank running jobs, and no
# job holding a descriptor of MPI's (its TCP connections are made late).
run nodes run -k 'sleep 0.2; echo $OMPI_COMM_WORLD_LOCAL_SIZE $OMPI_COMM_WORLD_RANK $(ls /proc/self/fd | sort -n | tr "\n" " ") {}' ::: $(seq 16)
expect_rc 0 "two nodes"
[ "$(cut -d' ' -f1 "$T/.out" | sort -u)" = 2 ] || fail "two nodes: ranks per node $(cut -d' ' -f1 "$T/.out" | sort -u | tr '\n' ' ')"
[ "$(cut -d' ' -f2 "$T/.out" | sort -u | tr '\n' ' ')" = "0 1 2 3 " ] \
    || fail "two nodes: ranks that ran jobs: $(cut -d' ' -f2 "$T/.out" | sort | uniq -c | tr '\n' ' ')"
awk '{ if ($3 != 0 || $4 != 1 || $5 != 2 || $6 != 3 || NF != 7) bad = 1 } END { exit bad }' "$T/.out" \
    || fail "two nodes: a job inherited descriptors: $(awk 'NF != 7' "$T/.out" | head -2)"
ok "a job of two daemons, two ranks per node, jobs on every rank, no MPI descriptor in a job"

mkdir src
gen_text src/big 3000000 1                       # split across the ranks
for i in $(seq 1 40); do gen_text "src/f$i" $((i * 3000)) $((i + 1)); done
mkdir src/sub; gen_text src/sub/g 500000 99
cp -a src one
(cd one && pmap compress -k -b 256K . && pmap checksum . >../one.sums && pmap wc -l . >../one.wc) \
    || fail "setup: one process"
cp -a src m
cd m
run nodes compress -k -b 256K .
expect_rc 0 "compress over two nodes"
for f in big f1 f17 f40 sub/g; do
    cmp -s "$f.gz" "../one/$f.gz" || fail "compress over two nodes: $f.gz differs from one process's"
done
[ "$(find . -name '*.gz' | wc -l)" = 42 ] || fail "compress over two nodes: $(find . -name '*.gz' | wc -l) outputs"
[ -z "$(find . -name '*.pmtmp*')" ] || fail "compress over two nodes: a temporary left"
run nodes checksum .
cmp -s "$T/.out" ../one.sums || { diff "$T/.out" ../one.sums | head; fail "checksum over two nodes differs"; }
run nodes wc -l .
cmp -s "$T/.out" ../one.wc || fail "wc over two nodes differs"
find . -type f ! -name '*.gz' -delete
run nodes decompress -k .
expect_rc 0 "decompress over two nodes"
cmp -s big "$T/src/big" && cmp -s sub/g "$T/src/sub/g" && cmp -s f33 "$T/src/f33" \
    || fail "decompress over two nodes: not the original bytes"
cd "$T"
ok "compress (a file split over both nodes), checksum, wc -l, decompress: one process's bytes"

# The split crosses nodes: rank 1 (the other node) writes its members into
# the output itself; unable to (its limit), it fails the file.
mkdir lim; cp -p src/big lim/
cd lim
LIMITED=1 run nodes compress -b 256K big
cd "$T"
[ "$rc" = 1 ] || fail "rank 1 unable to write: status $rc, expected 1"
expect_err "File too large" "rank 1 unable to write"
[ ! -e lim/big.gz ] && cmp -s lim/big src/big || fail "rank 1 unable to write: an output, or the input changed"
[ -z "$(find lim -name '*.pmtmp*')" ] || fail "rank 1 unable to write: a temporary left"
ok "a rank on the other node writes its members itself (unable to: the file fails, input kept)"

job='echo job {}; echo err {} >&2; exit $(({} % 5 == 0))'
run pmap run -j 1 -k "$job" ::: $(seq 30)
cp "$T/.out" one.out; cp "$T/.err" one.err; orc=$rc
run nodes run -k "$job" ::: $(seq 30)
cmp -s one.out "$T/.out" && cmp -s one.err "$T/.err" && [ "$rc" = "$orc" ] \
    || fail "run -k over two nodes: not one process's output (status $rc, $orc)"
ok "run -k over two nodes: one process's stdout, stderr and status"
