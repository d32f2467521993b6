#!/usr/bin/env bash
# Metadata: the output gets the input's mode, atime and mtime (and owner as
# root); the gzip header stores the original name and mtime by default, not
# with -n; decompress -N restores the stored name. Checked with stat, the
# header bytes and gzip -lv / gzip -N.
. "$(dirname "$0")/lib.sh"
cd "$T"
gen_text f.txt 100000 81
cp f.txt ref.txt
chmod 640 f.txt
touch -m -d '2001-02-03 04:05:06' f.txt
touch -a -d '2002-03-04 05:06:07' f.txt
mtime=$(stat -c %Y f.txt); atime=$(stat -c %X f.txt)

# header FILE: prints "FLG MTIME NAME" of a gzip member header.
header() {
    python3 - "$1" <<'EOF2'
import struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:3] == b'\x1f\x8b\x08', 'not gzip'
flg, mtime = b[3], struct.unpack('<I', b[4:8])[0]
pos = 12 + (b[10] | b[11] << 8) if flg & 4 else 10     # FEXTRA: the blocked format's sizes
name = b[pos:b.index(b'\0', pos)].decode('latin-1') if flg & 8 else '-'
print(flg, mtime, name)
EOF2
}

run pmap compress f.txt; expect_rc 0 "compress"
[ "$(stat -c %a f.txt.gz)" = 640 ] || fail "mode: $(stat -c %a f.txt.gz)"
[ "$(stat -c %Y f.txt.gz)" = "$mtime" ] || fail "mtime not preserved"
[ "$(stat -c %X f.txt.gz)" = "$atime" ] || fail "atime not preserved"
read -r flg hmtime name <<<"$(header f.txt.gz)"
[ $((flg & 8)) = 8 ] && [ "$name" = f.txt ] && [ "$hmtime" = "$mtime" ] \
    || fail "header: FLG $flg MTIME $hmtime NAME $name (want FNAME f.txt, MTIME $mtime)"
gzip -lv f.txt.gz | grep -q 'Feb  3' || fail "gzip -lv does not show the stored date: $(gzip -lv f.txt.gz)"
ok "compress: mode, atime, mtime kept; header stores name and mtime (gzip -lv agrees)"

run pmap decompress f.txt.gz; expect_rc 0 "decompress"
cmp -s f.txt ref.txt || fail "round trip"
[ "$(stat -c %a f.txt)" = 640 ] && [ "$(stat -c %Y f.txt)" = "$mtime" ] || fail "decompress: mode/mtime not kept"
ok "decompress: mode and mtime kept"

run pmap compress -n f.txt; expect_rc 0 "-n"
read -r flg hmtime name <<<"$(header f.txt.gz)"
[ $((flg & 8)) = 0 ] && [ "$hmtime" = 0 ] || fail "-n header: FLG $flg MTIME $hmtime NAME $name"
run pmap decompress f.txt.gz; expect_rc 0 "decompress -n file"
run pmap compress -n -N f.txt; expect_rc 0 "-n -N"
read -r flg hmtime name <<<"$(header f.txt.gz)"
[ "$name" = f.txt ] && [ "$hmtime" = "$mtime" ] || fail "-N after -n: FLG $flg MTIME $hmtime"
ok "-n stores neither name nor mtime; a later -N stores them"

mv f.txt.gz other.gz
run pmap decompress -N other.gz; expect_rc 0 "-N"
[ -f f.txt ] && [ ! -e other ] && [ ! -e other.gz ] || fail "-N output: $(ls)"
cmp -s f.txt ref.txt || fail "-N content"
[ "$(stat -c %Y f.txt)" = "$mtime" ] || fail "-N mtime"
ok "decompress -N names the output after the stored name"

# gzip restores what pmap stored.
run pmap compress -k f.txt; mv f.txt.gz g.gz; rm f.txt
gzip -dN g.gz && [ -f f.txt ] && [ "$(stat -c %Y f.txt)" = "$mtime" ] || fail "gzip -dN on pmap's output"
ok "gzip -dN restores pmap's stored name and mtime"

if [ "$(id -u)" = 0 ]; then
    cp ref.txt own.txt && chown 12345:23456 own.txt
    run pmap compress own.txt; expect_rc 0 "owner"
    [ "$(stat -c %u:%g own.txt.gz)" = 12345:23456 ] || fail "owner: $(stat -c %u:%g own.txt.gz)"
    run pmap decompress own.txt.gz; expect_rc 0 "owner decompress"
    [ "$(stat -c %u:%g own.txt)" = 12345:23456 ] || fail "owner after decompress"
    ok "owner and group kept (root)"
fi
