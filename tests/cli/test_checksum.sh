#!/usr/bin/env bash
# pmap checksum: CRC-32 and size per file, against Python's zlib.crc32, in
# the documented line format "CRC32HEX  BYTES  PATH", in walk order, with
# every chunk size and job count giving the same answer.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir -p d/sub d/a
: >d/empty
printf x >d/one
gen_random d/c31 131071 31
gen_random d/c32 131072 32
gen_random d/sub/c33 131073 33
gen_text d/a/big 5000000 34
gen_random d/sub/r 3000001 35

expected() {
    python3 - "$@" <<'EOF2'
import os, sys, zlib
def walk(p):
    if os.path.isdir(p):
        for n in sorted(os.listdir(p)):
            yield from walk(os.path.join(p, n))
    else:
        yield p
for top in sys.argv[1:]:
    for p in walk(top):
        data = open(p, 'rb').read()
        print('%08x  %d  %s' % (zlib.crc32(data), len(data), p))
EOF2
}

expected d/one d >want.txt
run pmap checksum d/one d; expect_rc 0 "checksum"; expect_no_err "checksum"
cmp -s "$T/.out" want.txt || { diff "$T/.out" want.txt >&2; fail "checksum lines differ from zlib.crc32"; }
grep -Evq '^[0-9a-f]{8}  [0-9]+  [^ ]' "$T/.out" && fail "a line breaks the format"
ok "CRC-32 and sizes equal zlib.crc32's, format 'CRC32HEX  BYTES  PATH', walk order"

for spec in "-p1 -b 32K" "-p2 -b 64K" "-j2 -b 1M" "-p1 -b 8M"; do
    # shellcheck disable=SC2086
    run pmap checksum $spec d/one d; expect_rc 0 "$spec"
    cmp -s "$T/.out" want.txt || fail "checksum with $spec differs"
done
ok "same sums for jobs 1-2 and chunks 32K-8M"

run pmap checksum <d/a/big; expect_rc 0 "stdin"
[ "$(cat "$T/.out")" = "$(crc32 d/a/big)  5000000  -" ] || fail "stdin line: $(cat "$T/.out")"
run pmap checksum - <d/one; expect_rc 0 "-"
[ "$(cat "$T/.out")" = "8cdc1683  1  -" ] || fail "'-' line: $(cat "$T/.out")"
mkfifo fifo
(cat d/one >fifo &)
run timeout 20 "$PM_BIN" checksum fifo; expect_rc 0 "a FIFO named on the command line"
[ "$(cat "$T/.out")" = "8cdc1683  1  fifo" ] || fail "FIFO line: $(cat "$T/.out")"
ok "stdin and a named FIFO are read"

ln -s one d/link
run pmap checksum d; expect_rc 2 "symlink in tree"; expect_err "d/link" "symlink skip names it"
run pmap checksum -f d/link; expect_rc 0 "-f follows"
[ "$(cat "$T/.out")" = "8cdc1683  1  d/link" ] || fail "-f link line: $(cat "$T/.out")"
rm d/link
run pmap checksum d/one nonexistent d/empty; expect_rc 1 "missing file"
expect_err "nonexistent" "missing file named"
[ "$(wc -l <"$T/.out")" = 2 ] || fail "other files not summed after an error"
ok "symlinks skipped (exit 2) unless -f; a missing file fails alone (exit 1)"

total=$(cat d/empty d/one d/c31 d/c32 d/sub/c33 d/a/big d/sub/r | wc -c)
run pmap checksum --json d; expect_rc 0 "--json"
tail -1 "$T/.err" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["command"]=="checksum" and j["files_ok"]==7 and j["bytes_in"]==int(sys.argv[1]), j' "$total" \
    || fail "--json line: $(tail -1 "$T/.err")"
[ "$(wc -l <"$T/.out")" = 7 ] && ! grep -q '{' "$T/.out" || fail "--json mixed into the sums: $(tail -1 "$T/.out")"
ok "--json: the stats on stderr, the sums alone on stdout"
