#!/usr/bin/env bash
# A directory of 20,000 small files: every one compressed (valid for gzip),
# none lost, decompressed back byte-exact, checksummed in walk order.
. "$(dirname "$0")/lib.sh"
cd "$T"
N=${PM_MANY_FILES:-20000}
python3 - "$N" <<'EOF2'
import os, random, sys
n = int(sys.argv[1]); r = random.Random(101)
words = [b'alpha', b'beta', b'gamma', b'delta', b'log', b'entry', b'42', b'ok']
for i in range(n):
    d = 'tree/d%02d' % (i % 40)
    os.makedirs(d, exist_ok=True)
    body = b' '.join(r.choice(words) for _ in range(r.randint(0, 120))) + b'\n'
    open('%s/f%05d.txt' % (d, i), 'wb').write(body)
EOF2
snapshot tree >before.txt
[ "$(wc -l <before.txt)" = "$N" ] || fail "generator made $(wc -l <before.txt) files"

t0=$(date +%s.%N)
run pmap compress --json tree; expect_rc 0 "compress $N files"
t1=$(date +%s.%N)
[ "$(find tree -type f -name '*.txt.gz' | wc -l)" = "$N" ] || fail "not $N .gz files"
[ "$(find tree -type f ! -name '*.gz' | wc -l)" = 0 ] || fail "inputs left"
python3 -c 'import json,sys; j=json.loads(open(sys.argv[1]).read().splitlines()[-1]); assert j["files_ok"]==int(sys.argv[2]), j' \
    "$T/.err" "$N" || fail "--json files_ok"
# gzip checks a sample of outputs (all of them would take longer than pmap).
find tree -name '*.gz' | awk 'NR % 97 == 1' | xargs gzip -t || fail "gzip -t rejects outputs"
ok "$N files compressed in $(echo "$t1 - $t0" | bc) s; every input has its .gz"

run pmap decompress -t tree; expect_rc 0 "test $N files"
t2=$(date +%s.%N)
run pmap decompress tree; expect_rc 0 "decompress $N files"
t3=$(date +%s.%N)
snapshot tree >after.txt
cmp -s before.txt after.txt || fail "tree differs after the round trip"
ok "tested in $(echo "$t2 - $t1" | bc) s, decompressed in $(echo "$t3 - $t2" | bc) s: byte-exact"

run pmap checksum tree; expect_rc 0 "checksum $N files"
[ "$(wc -l <"$T/.out")" = "$N" ] || fail "checksum lines"
awk '{print $1, $2}' "$T/.out" >sums.got
awk '{print $3, $2}' before.txt >sums.want
cmp -s sums.got sums.want || fail "checksums or their order differ"
ok "checksum: $N lines in walk order, equal to zlib.crc32"
