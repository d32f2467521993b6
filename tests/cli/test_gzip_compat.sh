#!/usr/bin/env bash
# decompress where gzip 1.12 and pmap must agree (issue 10, items 8 and 11):
# -c/-t/-l read a named file whatever its suffix; -f with -c or -t copies
# data not in gzip format (zcat -f); suffixes in any case (.GZ) and gzip's
# whole list, also with -S; zeros after the last member: exit 0 (a warning
# only with -v); -N with a stored name that is a path, ".", "..", "" or
# longer than NAME_MAX. Each case is also run through gzip itself where the
# outcome is the same, so that the test states gzip's behaviour.
. "$(dirname "$0")/lib.sh"
cd "$T"
printf 'hello\n' >hello
gzip -c hello >ref.gz
printf 'plain text, not gzip\n' >plain

# both EXPECTED_RC ARGS...: gzip ARGS and pmap decompress ARGS (both with
# -d; gzip on copies in gz.d) end with the same status and stdout.
both() {
    local want=$1 a; shift
    rm -rf gz.d; mkdir gz.d               # gzip works on copies
    for a in "$@"; do [ -f "$a" ] && cp -- "$a" gz.d/; done
    (cd gz.d && gzip -d "$@" >../gz.out 2>../gz.err); local grc=$?
    [ "$grc" = "$want" ] || fail "gzip -d $*: status $grc, expected $want (the test's premise)"
    run pmap decompress "$@"; expect_rc "$want" "pmap decompress $*"
    cmp -s gz.out "$T/.out" || fail "pmap decompress $*: stdout differs from gzip -d's"
}

cp ref.gz x.zz
both 0 -c x.zz; cmp -s "$T/.out" hello || fail "-c x.zz: wrong data"
both 0 -t x.zz
run pmap decompress -l x.zz; expect_rc 0 "-l x.zz"; expect_out "x.zz" "-l x.zz names it"
both 2 -k x.zz; expect_err "unknown suffix" "no -c: x.zz still refused"
[ ! -e x ] || fail "x.zz decompressed in place without a suffix"
mkdir w; cp ref.gz w/y.zz
run pmap decompress -t w; expect_rc 0 "-t dir"; expect_no_err "-t dir: walked files without a suffix pass silently"
ok "-c, -t, -l read a named file without a known suffix; in place it is refused (exit 2)"

both 0 -cf plain; cmp -s "$T/.out" plain || fail "-cf plain: not copied"
both 0 -tf plain
both 1 -c plain; expect_err "not in gzip format" "-c plain without -f"
gzip -dcf <plain >gz.out; run pmap decompress -cf <plain; expect_rc 0 "-cf stdin"
cmp -s "$T/.out" plain || fail "-cf stdin: not copied"
gzip -dc <plain >/dev/null 2>&1; [ $? = 1 ] || fail "premise: gzip -dc <plain"
run pmap decompress -c <plain; expect_rc 1 "-c stdin plain"
: >empty; both 0 -cf empty
printf '\037' >one; both 0 -cf one
both 0 -cf ref.gz plain ref.gz
# Not as gzip: data after a gzip member is not copied through with -cf
# (gzip -dcf copies it, exit 0); pmap drops it with a warning (exit 2): the
# decoder does not say where the last member ended.
cat ref.gz plain >mixed
run pmap decompress -cf mixed; expect_rc 2 "-cf gzip then plain"
cmp -s "$T/.out" hello || fail "-cf mixed: the member's data"
expect_err "trailing garbage ignored" "-cf mixed warns"
cp plain p2.gz
run pmap decompress -f p2.gz; expect_rc 1 "-f in place, plain (gzip: 1)"
cmp -s p2.gz plain && [ ! -e p2 ] || fail "p2.gz changed or p2 made"
run pmap decompress -lf plain; expect_rc 1 "-lf plain"
ok "-f with -c or -t passes data not in gzip format through (zcat -f), files and stdin"

cp ref.gz UP.GZ; both 0 -k UP.GZ; cmp -s UP hello || fail "UP.GZ -> UP"
cp ref.gz a.TGZ; both 0 -k a.TGZ; [ -f a.tar ] || fail "a.TGZ -> a.tar"
for s in -gz _z -z .taz; do
    rm -f "n$s" n n.tar; cp ref.gz "n$s"
    run pmap decompress "n$s"; expect_rc 0 "n$s"
    [ -f n ] || [ -f n.tar ] || fail "n$s not decompressed: $(ls)"
done
cp ref.gz s.gz; cp ref.gz s.zz
both 0 -k -S .zz s.gz; cmp -s s hello || fail "-S .zz: s.gz"
rm -f s; both 0 -k -S .zz s.zz; cmp -s s hello || fail "-S .zz: s.zz"
rm -f s; both 0 -k -S z s.gz; cmp -s s hello || fail "-S z: s.gz must lose .gz"
ok "suffixes in any case (.GZ, .TGZ), gzip's whole list, -S adds to it"

cp ref.gz pad.gz; head -c 1000 /dev/zero >>pad.gz
both 0 -c pad.gz; expect_no_err "trailing zeros: silent"
both 0 -t pad.gz
run pmap decompress -k pad.gz; expect_rc 0 "trailing zeros in place"; cmp -s pad hello || fail "pad"
run pmap decompress -tv pad.gz; expect_rc 2 "-tv trailing zeros (gzip -tv: 2)"
expect_err "trailing zero bytes ignored" "-v says so"
cp ref.gz junk.gz; printf 'junk' >>junk.gz
both 2 -c junk.gz; expect_err "trailing garbage ignored" "garbage warned"
ok "zeros after the last member: exit 0, silent; with -v a warning (2) as gzip"

# gzfile FILE NAME: a gzip file of "hello\n" storing NAME.
gzfile() {
    python3 - "$1" "$2" <<'EOF2'
import struct, sys, zlib
data = b"hello\n"
c = zlib.compressobj(6, zlib.DEFLATED, -15)
body = c.compress(data) + c.flush()
open(sys.argv[1], "wb").write(b"\x1f\x8b\x08\x08" + struct.pack("<I", 1000000000) + b"\x00\x03"
    + sys.argv[2].encode() + b"\x00" + body + struct.pack("<II", zlib.crc32(data), len(data)))
EOF2
}
mkdir n; cd n
long=$(printf 'L%.0s' $(seq 300))
gzfile path.gz "sub/dir/base"; gzfile abs.gz "/etc/zzname"
gzfile dot.gz "."; gzfile dotdot.gz ".."; gzfile empty.gz ""; gzfile long.gz "$long"
run pmap decompress -N path.gz abs.gz; expect_rc 0 "-N path"
[ -f base ] && [ -f zzname ] && [ ! -e path ] && [ ! -e abs ] || fail "-N: not the stored base names: $(ls)"
for f in dot dotdot empty; do
    run pmap decompress -N $f.gz; expect_rc 1 "-N $f"
    expect_err "$f.gz: the stored name is not a file name" "-N $f named"
    [ -f $f.gz ] && [ ! -e $f ] && [ "$(ls | wc -l)" = 6 ] || fail "-N $f: input changed or output made: $(ls)"
done
run pmap decompress -N long.gz; expect_rc 2 "-N long (gzip: warning, name truncated)"
expect_err "long.gz: stored name truncated to 255 bytes" "-N long warned"
[ -f "$(printf 'L%.0s' $(seq 255))" ] && [ ! -e long.gz ] || fail "-N long: no truncated output"
gzfile path.gz "sub/dir/base"
run pmap decompress -lN path.gz; expect_out " base" "-lN shows the base name"
cd ..
ok "-N: a stored path gives its base name; \"\", \".\", \"..\" refused (1); a long name cut to 255 (2)"

# compress leaves names with any of gzip's suffixes, in any case, unchanged
# (gzip: "already has .GZ suffix -- unchanged"). gzip then exits 0; pmap
# exits 2, as for every file named on the command line that it skipped
# (README: so that a script sees that nothing was done).
mkdir cs && for n in a.GZ b.tgz c.Z d-gz e_z f.Taz; do printf 'x\n' > cs/$n; done
rm -rf gzc && cp -r cs gzc && (gzip -k gzc/* >/dev/null 2>gz.err)
[ -z "$(ls gzc | grep -v -x -e a.GZ -e b.tgz -e c.Z -e d-gz -e e_z -e f.Taz)" ] ||
    fail "gzip -k compressed gzip-suffixed names: $(ls gzc | tr '\n' ' ') (the test's premise)"
grep -qF "a.GZ already has .GZ suffix -- unchanged" gz.err || fail "gzip's words changed (the test's premise)"
run pmap compress -k cs/a.GZ cs/b.tgz cs/c.Z cs/d-gz cs/e_z cs/f.Taz
expect_rc 2 "compress of names with gzip suffixes"
expect_err "a.GZ: already has .GZ suffix -- unchanged" "a.GZ"
expect_err "f.Taz: already has .Taz suffix -- unchanged" "f.Taz"
[ "$(ls cs | wc -l)" = 6 ] || fail "compress made outputs of suffixed names: $(ls cs)"
run pmap compress -k cs; expect_rc 0 "walked: suffixed names pass silently"
[ "$(ls cs | wc -l)" = 6 ] || fail "compress -r made outputs of suffixed names: $(ls cs)"
ok "compress leaves names with gzip's suffixes (any case) unchanged, as gzip"
