#!/bin/bash
# test_blocked.sh - pmap compress --blocked (issue 11's format, docs/format.md):
# every chunk an independent gzip member with its sizes in the header's "PM"
# subfield. Round trips at sizes 0, 1, B-1, B, B+1 and several B, levels 1,
# 6 and 9, through gzip, zcat, pigz (when installed), Python's gzip module
# and pmap; the subfields are walked member by member and checked against
# the members themselves.
. "$(dirname "$0")/lib.sh"

B=65536
cd "$T"
# check_members FILE.gz LEN: the "PM" subfields chain through the whole file,
# each member inflates alone to its recorded size, the sizes add up to LEN;
# only the first member carries a name.
check_members() {
    python3 - "$1" "$2" "$B" <<'PY' || fail "$1: members do not match their PM subfields"
import struct, sys, zlib
path, want, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = open(path, 'rb').read()
pos = total = n = 0
while pos < len(d):
    assert d[pos:pos+3] == b'\x1f\x8b\x08', 'no member header at %d' % pos
    flg = d[pos+3]
    assert flg & 4, 'member %d without FEXTRA' % n
    xlen, = struct.unpack_from('<H', d, pos+10)
    assert xlen == 12 and d[pos+12:pos+14] == b'PM', 'member %d: bad subfield' % n
    assert struct.unpack_from('<H', d, pos+14)[0] == 8
    msize, usize = struct.unpack_from('<II', d, pos+16)
    assert bool(flg & 8) == (n == 0 and path.endswith('named.gz')), 'FNAME on member %d' % n
    data = zlib.decompress(d[pos:pos+msize], 31)
    assert len(data) == usize and usize <= b, 'member %d: %d bytes, says %d' % (n, len(data), usize)
    assert n == 0 or usize > 0
    pos += msize; total += usize; n += 1
assert pos == len(d) and total == want, 'sizes add up to %d of %d' % (total, want)
PY
}

for size in 0 1 $((B - 1)) $B $((B + 1)) $((3 * B + 5)); do
    gen_text in.$size "$size" "$size"
    for L in 1 6 9; do
        pmap compress --blocked -b 64K -$L -n -c in.$size > out.gz || fail "compress --blocked -$L of $size bytes"
        check_members out.gz "$size"
        gzip -dc out.gz | cmp -s - in.$size || fail "gzip -d: $size bytes at -$L"
        zcat out.gz | cmp -s - in.$size || fail "zcat: $size bytes at -$L"
        python3 -c "import gzip,sys; sys.stdout.buffer.write(gzip.open('out.gz').read())" | cmp -s - in.$size ||
            fail "python gzip: $size bytes at -$L"
        if command -v pigz >/dev/null; then
            pigz -dc out.gz | cmp -s - in.$size || fail "pigz -d: $size bytes at -$L"
        fi
        pmap decompress -c out.gz | cmp -s - in.$size || fail "pmap decompress: $size bytes at -$L"
    done
done
ok "sizes 0, 1, B-1, B, B+1, 3B+5 at -1/-6/-9: gzip, zcat, python$(command -v pigz >/dev/null && echo ', pigz') and pmap read them; PM subfields exact"

# In place with the name: only the first member names the file; gzip -N restores it.
gen_text named $((2 * B + 7)) 9 && cp named orig
pmap compress --blocked -b 64K named || fail "compress --blocked in place"
[ -f named.gz ] && [ ! -e named ] || fail "in place: output or input wrong"
check_members named.gz $((2 * B + 7))
mkdir r && cp named.gz r/other.gz && (cd r && gzip -dN other.gz) && cmp -s r/named orig || fail "gzip -N did not restore the name"
ok "in place: the first member carries the name (gzip -N restores it)"

# -l gives the true total of a multi-member file (gzip -l shows the last
# member's ISIZE only); -t checks every member.
run pmap decompress -l named.gz; expect_rc 0 "-l of a blocked file"
awk 'NR == 2 { exit !($2 == '$((2 * B + 7))') }' "$T/.out" || fail "-l: not the true total: $(cat "$T/.out")"
[ "$(gzip -l named.gz | awk 'NR == 2 { print $2 }')" = 7 ] || fail "gzip -l no longer shows the last member's size (the test's premise)"
run pmap decompress -t named.gz; expect_rc 0 "-t of a blocked file"
ok "-l gives the true total (gzip -l: the last member's), -t passes"

# Decompression in parallel: whatever the chunk size (members whole in a
# chunk, or larger than it), and sizes never trusted.
gen_text big $((20 * B + 123)) 21
pmap compress --blocked -b 64K -k big || fail "compress --blocked big"
for cs in 32K 100K 1M; do
    pmap decompress -b $cs -c big.gz | cmp -s - big || fail "decompress -b $cs of a blocked file"
done
gzip -c big > plain.gz
for cs in 32K 100K; do
    pmap decompress -b $cs -c plain.gz | cmp -s - big || fail "decompress -b $cs of gzip's own output"
done
# patch FILE OFFSET-EXPR VALUE: writes a 32-bit little-endian VALUE at the
# offset of member M's field (python expression over the member offsets).
patch_member() {   # patch_member IN OUT MEMBER FIELD_OFFSET VALUE(python)
    python3 - "$@" <<'PY'
import struct, sys
src, dst, m, field, val = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
d = bytearray(open(src, 'rb').read())
pos = 0
for _ in range(m):
    pos += struct.unpack_from('<I', d, pos + 16)[0]
msize, usize = struct.unpack_from('<II', d, pos + 16)
v = eval(val)
if field < 0:                      # negative: from the member's end (the trailer)
    d[pos + msize + field] ^= 0xff
else:
    struct.pack_into('<I', d, pos + field, v & 0xffffffff)
open(dst, 'wb').write(d)
PY
}
# Lying subfields are gzip's extra data, not the truth: the file still
# decodes as gzip decodes it.
for lie in "msize + 1000" "msize - 5" "40" "usize + 1" "usize - 1" "0xffffffff"; do
    field=16; case $lie in usize*|0xf*) field=20 ;; esac
    patch_member big.gz lie.gz 3 $field "$lie"
    gzip -dc lie.gz | cmp -s - big || fail "gzip rejects a lying subfield ($lie): the test's premise"
    run pmap decompress -c lie.gz; expect_rc 0 "a lying subfield ($lie)"
    cmp -s "$T/.out" big || fail "a lying subfield ($lie) changed the output"
done
ok "parallel decompression at chunks 32K-1M, gzip's output too; lying size fields change nothing"

# A bad CRC in a middle member, a truncated member: an error naming the
# file, nothing under the final name, the input kept.
patch_member big.gz badcrc.gz 7 -8 0
cp badcrc.gz bad.gz && rm -f bad
run pmap decompress bad.gz; expect_rc 1 "a bad CRC in member 7"
expect_err "bad.gz: crc error" "bad CRC"
[ ! -e bad ] && [ -f bad.gz ] || fail "bad CRC: output left or input gone"
head -c $(( $(stat -c %s big.gz) / 2 )) big.gz > trunc.gz
run pmap decompress trunc.gz; expect_rc 1 "a truncated blocked file"
expect_err "trunc.gz: unexpected end of file" "truncated"
[ ! -e trunc ] && [ -f trunc.gz ] || fail "truncated: output left or input gone"
ok "a bad CRC in a middle member, a truncated file: clear errors, nothing left behind"
