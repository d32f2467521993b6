#!/usr/bin/env bash
# pmap compress on files and trees: outputs valid for gzip, byte-exact round
# trips, -k, -v lines, levels, -S, -c, chunk sizes and jobs.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir ref
gen_text ref/text 3000000 1
gen_random ref/rand 700000 2
: >ref/empty
printf x >ref/one
gen_text ref/exact 262144 3         # exactly one default chunk (256 KiB)
gen_text ref/plus1 262145 4

cp -a ref w
run pmap compress w/text; expect_rc 0 "compress text"; expect_no_err "compress text"
[ ! -e w/text ] || fail "input not removed"
gz_same w/text.gz ref/text
ok "a file becomes F.gz, valid for gzip -t/-dc; input removed"

run pmap compress -v w; expect_rc 0 "tree with a .gz in it (found by walking: passed over, as gzip -r)"
for f in rand empty one exact plus1; do
    gz_same "w/$f.gz" "ref/$f"; [ ! -e "w/$f" ] || fail "w/$f not removed"
    expect_err "w/$f: " "-v line of $f"
    expect_err "-- replaced with w/$f.gz" "-v line of $f"
done
grep -Eq '^w/exact: +[0-9-]+\.[0-9]% -- replaced with w/exact.gz$' "$T/.err" || fail "-v line format: $(head -3 "$T/.err")"
expect_err "pmap: w/text.gz: " "already .gz skip message"
ok "a tree: every file compressed, -v lines 'name:  R% -- replaced with name.gz'"

rm -rf w && cp -a ref w
run pmap compress -k -v w/text w/one; expect_rc 0 "-k"
[ -f w/text ] && [ -f w/one ] || fail "-k removed inputs"
expect_err "-- created w/text.gz" "-k -v line"
cmp -s w/text ref/text || fail "-k changed the input"
ok "-k keeps inputs; -v says created"

rm -rf w && cp -a ref w
for l in 1 6 9; do
    run pmap compress -k "-$l" -S ".l$l" w/text; expect_rc 0 "level $l"
    gz_same "w/text.l$l" ref/text
done
s1=$(stat -c %s w/text.l1); s6=$(stat -c %s w/text.l6); s9=$(stat -c %s w/text.l9)
[ "$s1" -gt "$s6" ] && [ "$s6" -ge "$s9" ] || fail "sizes by level: -1 $s1, -6 $s6, -9 $s9"
# A level-6 output within 1% of gzip -6's size.
g6=$(gzip -6 -c ref/text | wc -c)
[ $((s6 * 100)) -le $((g6 * 101)) ] || fail "level 6: $s6 bytes, gzip -6: $g6"
ok "levels 1/6/9 valid, sizes ordered ($s1 > $s6 >= $s9; gzip -6 $g6)"

run pmap compress -S .pz w/one; expect_rc 0 "-S .pz"
[ -f w/one.pz ] && [ ! -e w/one ] || fail "-S .pz"
gz_same w/one.pz ref/one
run pmap compress --suffix=.pz w/one.pz; expect_rc 2 "already .pz"
expect_err "w/one.pz" "skip names the file"
ok "-S suffix, and skipping files already ending in it"

rm -rf w && cp -a ref w
run pmap compress -c w/text w/empty w/one; expect_rc 0 "-c"
[ -f w/text ] && [ -f w/one ] || fail "-c removed inputs"
[ ! -e w/text.gz ] || fail "-c created a file"
gzip -t "$T/.out" 2>/dev/null || fail "-c output fails gzip -t"
cat ref/text ref/empty ref/one | cmp -s - <(gzip -dc <"$T/.out") || fail "-c: concatenation differs"
ok "-c writes a valid multi-member stream to stdout, inputs kept"

for spec in "-p1 -b 32K" "-j2 -b 64K" "-p2 -b 1M" "-p2 -b 4M"; do
    rm -rf w && cp -a ref w
    # shellcheck disable=SC2086
    run pmap compress $spec w; expect_rc 0 "$spec"
    for f in text rand empty one exact plus1; do gz_same "w/$f.gz" "ref/$f"; done
done
rm -rf w && cp -a ref w
PMAP_JOBS=1 run pmap compress w/text; expect_rc 0 "PMAP_JOBS=1"
gz_same w/text.gz ref/text
ok "jobs 1-2 and chunk sizes 32K-4M: same round trips"
