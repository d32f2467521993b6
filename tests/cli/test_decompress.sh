#!/usr/bin/env bash
# pmap decompress: round trips with pmap's and gzip's outputs, multi-member
# files, -k, -c, -t, -l (against gzip -l), .tgz/.z names, -S, -N, and
# compress -d as a synonym.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir ref
gen_text ref/text 2000000 11
gen_random ref/rand 300000 12
: >ref/empty

cp -a ref w
run pmap compress w; expect_rc 0 "compress"
run pmap decompress w; expect_rc 0 "decompress"; expect_no_err "decompress"
for f in text rand empty; do
    cmp -s "w/$f" "ref/$f" || fail "round trip of $f"
    [ ! -e "w/$f.gz" ] || fail "w/$f.gz not removed"
done
ok "pmap compress | pmap decompress: byte-exact, inputs removed"

rm -rf w && mkdir w
for l in 1 9; do gzip "-$l" -c ref/text >"w/g$l.gz"; done
pigz -p 2 -c ref/rand >w/pigz.gz
cat w/g1.gz w/pigz.gz >w/multi.gz
run pmap decompress -v w; expect_rc 0 "gzip/pigz outputs"
cmp -s w/g1 ref/text && cmp -s w/g9 ref/text && cmp -s w/pigz ref/rand || fail "gzip/pigz round trip"
cat ref/text ref/rand | cmp -s - w/multi || fail "multi-member file"
expect_err "w/g1.gz: " "-v line"; expect_err "-- replaced with w/g1" "-v line"
ok "files from gzip -1/-9, pigz, and a multi-member file"

rm -rf w && mkdir w
gzip -c ref/text >w/a.gz
run pmap decompress -k w/a.gz; expect_rc 0 "-k"
[ -f w/a.gz ] && cmp -s w/a ref/text || fail "-k"
rm w/a
run pmap decompress -c w/a.gz; expect_rc 0 "-c"
cmp -s "$T/.out" ref/text || fail "-c output"
[ -f w/a.gz ] && [ ! -e w/a ] || fail "-c touched files"
ok "-k keeps the .gz; -c writes to stdout"

run pmap decompress -t w/a.gz; expect_rc 0 "-t"; expect_no_err "-t"
[ ! -e w/a ] || fail "-t wrote a file"
run pmap decompress -tv w/a.gz; expect_rc 0 "-tv"; expect_err "w/a.gz:  OK" "-tv"
run pmap compress -t w/a.gz; expect_rc 0 "compress -t"
ok "-t tests without writing; -tv says OK"

gzip -c ref/rand >w/b.gz
gzip -c ref/empty >w/c.gz
run pmap decompress -l w/a.gz w/b.gz w/c.gz; expect_rc 0 "-l"
gzip -l w/a.gz w/b.gz w/c.gz >gl.txt
# Same sizes and names as gzip -l (the ratio may differ: see pmap(1)).
awk '{print $1, $2, $4}' "$T/.out" >pl.cols; awk '{print $1, $2, $4}' gl.txt >gl.cols
cmp -s pl.cols gl.cols || { diff pl.cols gl.cols >&2; fail "-l differs from gzip -l"; }
run pmap decompress -lv w/a.gz; expect_rc 0 "-lv"
crc=$(crc32 ref/text)
expect_out "defla $crc" "-lv shows the CRC"
ok "-l matches gzip -l (sizes, names, totals); -lv shows the CRC"

rm -rf w && mkdir w
tar -C ref -cf - text | gzip -c >w/t.tgz
gzip -c ref/text >w/z.z
run pmap decompress w/t.tgz w/z.z; expect_rc 0 ".tgz .z"
[ -f w/t.tar ] && tar -tf w/t.tar | grep -qx text || fail ".tgz -> .tar"
cmp -s w/z ref/text || fail ".z"
gzip -S .pz -c ref/text >w/s.pz
run pmap decompress -S .pz w/s.pz; expect_rc 0 "-S .pz"
cmp -s w/s ref/text || fail "-S .pz"
ok ".tgz becomes .tar, .z is stripped, -S .pz"

cp ref/text w/plain
run pmap decompress w/plain; expect_rc 2 "unknown suffix"; expect_err "w/plain" "unknown suffix names the file"
cmp -s w/plain ref/text || fail "unknown suffix changed the file"
ok "a file without a known suffix is skipped (exit 2)"

cp ref/text w/orig.txt
gzip -N w/orig.txt && mv w/orig.txt.gz w/renamed.gz
run pmap decompress -N w/renamed.gz; expect_rc 0 "-N"
[ -f w/orig.txt ] && [ ! -e w/renamed ] || fail "-N did not use the stored name: $(ls w)"
cmp -s w/orig.txt ref/text || fail "-N content"
cp ref/text w/orig2.txt
gzip -N w/orig2.txt && mv w/orig2.txt.gz w/renamed2.gz
run pmap decompress w/renamed2.gz; expect_rc 0 "default -n"
[ -f w/renamed2 ] || fail "default naming: $(ls w)"
ok "-N names the output after the stored name; default strips the suffix"

gzip -c ref/rand >w/d.gz
run pmap compress -d w/d.gz; expect_rc 0 "compress -d"
cmp -s w/d ref/rand || fail "compress -d"
ok "pmap compress -d decompresses"
