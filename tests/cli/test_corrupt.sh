#!/usr/bin/env bash
# Corrupt input to decompress: an error naming the file, exit 1, no partial
# output left, the .gz kept unchanged, and the other files still done.
. "$(dirname "$0")/lib.sh"
cd "$T"
gen_text text 1000000 71
gzip -c text >good.gz
size=$(stat -c %s good.gz)

mkdir d
cp good.gz d/ok.gz
# A flipped byte in the middle of the deflate data.
cp good.gz d/flip.gz
printf '\xff' | dd of=d/flip.gz bs=1 seek=$((size / 2)) conv=notrunc status=none
# Truncated in the middle, and just before the trailer's last byte.
head -c $((size / 2)) good.gz >d/half.gz
head -c $((size - 1)) good.gz >d/short.gz
# A wrong CRC in the trailer; a wrong length.
cp good.gz d/crc.gz
printf '\x00\x00\x00\x00' | dd of=d/crc.gz bs=1 seek=$((size - 8)) conv=notrunc status=none
cp good.gz d/len.gz
printf '\x01\x00\x00\x00' | dd of=d/len.gz bs=1 seek=$((size - 4)) conv=notrunc status=none
# Not gzip at all; empty.
cp text d/text.gz
: >d/empty.gz
for f in d/*.gz; do cp "$f" "$f.ref"; done
cp good.gz d/zz.gz

run pmap decompress d; expect_rc 1 "corrupt inputs"
for f in flip half short crc len text empty; do
    expect_err "pmap: d/$f.gz: " "corrupt $f named"
    [ ! -e "d/$f" ] || fail "partial output d/$f left"
    cmp -s "d/$f.gz" "d/$f.gz.ref" || fail "d/$f.gz changed"
done
cmp -s d/ok text && cmp -s d/zz text || fail "good files among corrupt ones not decompressed"
[ ! -e d/ok.gz ] || fail "good input not removed"
n=$(grep -c '^pmap: d/' "$T/.err"); [ "$n" -ge 7 ] || fail "only $n error lines"
ok "flipped byte, truncations, bad CRC, bad length, not gzip, empty: each named, no output, .gz kept"

cp good.gz d/zz.gz
run pmap decompress -t d/flip.gz d/zz.gz; expect_rc 1 "-t corrupt"
expect_err "pmap: d/flip.gz: " "-t names the corrupt file"
[ -e d/zz.gz ] || fail "-t removed a file"
run pmap decompress -t d/crc.gz; expect_rc 1 "-t bad crc"
run pmap decompress -c d/half.gz; expect_rc 1 "-c truncated"; expect_err "d/half.gz" "-c names the file"
run pmap decompress <d/len.gz; expect_rc 1 "stdin bad length"
ok "-t, -c and stdin report corruption with exit 1"

# gzip's rules for data after the last member: zeros are padding (silent,
# exit 0; a warning with -v), anything else is an error or a warning, never output.
cp good.gz pad.gz; head -c 1000 /dev/zero >>pad.gz
run pmap decompress -c pad.gz; expect_rc 0 "zero padding (gzip: 0)"; expect_no_err "zero padding"
cmp -s "$T/.out" text || fail "zero padding changed the output"
cp good.gz junk.gz; printf 'garbage that is not gzip' >>junk.gz
run pmap decompress -c junk.gz; [ "$rc" != 0 ] || fail "trailing garbage passed silently"
expect_err "junk.gz" "trailing garbage names the file"
ok "trailing zeros accepted (status $rc for garbage: named, not silent)"
