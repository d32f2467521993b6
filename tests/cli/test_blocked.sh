#!/bin/bash
# test_blocked.sh - pmap's blocked format (issue 11, docs/format.md), the
# default of pmap compress: every chunk an independent gzip member with its
# sizes in the header's "PM" subfield. Round trips at sizes 0, 1, B-1, B, B+1
# and several B, at every level (1 ISA-L, 2-12 libdeflate),
# through gzip, zcat, pigz (when installed), Python's gzip module and pmap;
# the subfields are walked member by member and checked against the members
# themselves. Also --one-member (pigz's format) and the level options.
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
    for L in 1 2 3 4 5 6 7 8 9 10 11 12; do
        pmap compress -b 64K -$L -n -c in.$size > out.gz || fail "compress -$L of $size bytes"
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
ok "sizes 0, 1, B-1, B, B+1, 3B+5 at every level, -1 to -12: gzip, zcat, python$(command -v pigz >/dev/null && echo ', pigz') and pmap read them; PM subfields exact"

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

# Incompressible data through each engine (ISA-L and libdeflate fall back
# to stored blocks, or zlib does the block): still exact members.
head -c $((3 * B + 11)) /dev/urandom > rnd
for L in 1 6 12; do
    pmap compress -b 64K -$L -n -c rnd > rnd.gz || fail "compress -$L of random data"
    check_members rnd.gz $((3 * B + 11))
    gzip -dc rnd.gz | cmp -s - rnd || fail "random data at -$L"
done
ok "incompressible data at -1/-6/-12: exact members"

# The format by default; --one-member writes one member as pigz does.
gen_text one $((3 * B + 5)) 4
pmap compress -b 64K -k -n -c one > dflt.gz || fail "compress (default)"
check_members dflt.gz $((3 * B + 5))
pmap compress -b 64K --one-member -k -c one > single.gz || fail "compress --one-member"
python3 - single.gz <<'PY' || fail "--one-member: not one member without the subfield"
import sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[3] & 4 == 0, 'FEXTRA in --one-member output'
z = zlib.decompressobj(31)
z.decompress(d)
assert z.eof and z.unused_data == b'', 'more than one member'
PY
gzip -dc single.gz | cmp -s - one || fail "--one-member output does not round-trip"
if command -v pigz >/dev/null; then
    pigz -b 64 -6 -n -c one > pigz.gz
    pmap compress -b 64K --one-member -6 -n -c one | cmp -s - pigz.gz ||
        fail "--one-member -6 is not byte-identical to pigz -6"
fi
ok "blocked by default; --one-member writes one member$(command -v pigz >/dev/null && echo ', byte-identical to pigz')"

# Levels: -10 to -12 as pigz reads -11 (digits in a row), smaller than -9;
# -13 and --one-member with a level above 9 are refused, nothing written.
gen_text lv $((4 * B)) 5
for L in 9 10 11 12; do
    pmap compress -$L -c lv > lv$L.gz || fail "compress -$L"
    gzip -dc lv$L.gz | cmp -s - lv || fail "-$L does not round-trip"
done
[ "$(stat -c %s lv12.gz)" -lt "$(stat -c %s lv9.gz)" ] || fail "-12 is not smaller than -9"
[ "$(head -c 9 lv11.gz | tail -c 1 | od -An -tu1 | tr -d ' ')" = 2 ] || fail "-11: XFL is not 2 (best)"
run pmap compress -13 -c lv; expect_rc 1 "-13"
expect_err "invalid compression level" "-13"
run pmap compress -k --one-member -10 lv; expect_rc 1 "--one-member -10"
expect_err "levels 10 to 12 need the blocked format" "--one-member -10"
[ ! -e lv.gz ] || fail "--one-member -10 wrote an output"
run pmap compress -k -9 -1 lv; expect_rc 0 "-9 -1: the last level wins, as in gzip"
[ "$(head -c 9 lv.gz | tail -c 1 | od -An -tu1 | tr -d ' ')" = 4 ] || fail "-9 -1: XFL is not 4 (fastest)"
ok "-10 to -12 (digits in a row) are smaller than -9; -13 and --one-member -10 refused"

# Multi-member files from other tools: BGZF (bgzip's format: 64 KiB members
# with a "BC" subfield, and its empty end-of-file member), gzip files
# concatenated, and all of them mixed with pmap's members in one file.
gen_text mm $((5 * B + 77)) 6
python3 - mm mm.bgzf <<'PY' || fail "cannot write BGZF"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
out = bytearray()
def member(piece):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = c.compress(piece) + c.flush()
    hdr = b'\x1f\x8b\x08\x04' + b'\0\0\0\0' + b'\0\xff' + struct.pack('<H', 6) + b'BC' + struct.pack('<HH', 2, 18 + len(body) + 8 - 1)
    return hdr + body + struct.pack('<II', zlib.crc32(piece), len(piece))
for i in range(0, len(data), 65280):
    out += member(data[i:i + 65280])
out += member(b'')                       # bgzip's end-of-file marker
open(sys.argv[2], 'wb').write(out)
PY
gzip -dc mm.bgzf | cmp -s - mm || fail "gzip does not read the test's BGZF (the test's premise)"
head -c $((2 * B)) mm > mm.a && tail -c +$((2 * B + 1)) mm > mm.b
{ gzip -c mm.a; gzip -1 -c mm.b; } > mm.cat
pmap compress -b 64K -c mm.a > mm.pa && cat mm.pa mm.bgzf > mm.mix
{ cat mm.a; cat mm; } > mm.mixed-ref
for cs in 32K 100K 1M; do
    pmap decompress -b $cs -c mm.bgzf | cmp -s - mm || fail "BGZF at -b $cs"
    pmap decompress -b $cs -c mm.cat | cmp -s - mm || fail "concatenated gzip at -b $cs"
    pmap decompress -b $cs -c mm.mix | cmp -s - mm.mixed-ref || fail "pmap members then BGZF at -b $cs"
done
run pmap decompress -l mm.bgzf; expect_rc 0 "-l of BGZF"
awk 'NR == 2 { exit !($2 == '$((5 * B + 77))') }' "$T/.out" || fail "-l of BGZF: $(cat "$T/.out")"
run pmap decompress -t mm.mix; expect_rc 0 "-t of a mixed file"
ok "BGZF, concatenated gzip files, pmap's members followed by BGZF: exact at chunks 32K-1M; -l, -t"
