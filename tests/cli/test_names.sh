#!/usr/bin/env bash
# File names with spaces, newlines, tabs, backslashes, non-UTF-8 bytes and a
# leading dash: compressed, decompressed and checksummed correctly, and
# printed escaped (checksum lines start with a backslash then).
. "$(dirname "$0")/lib.sh"
cd "$T"
gen_text text 50000 91
mkdir d
names=("with space" $'new\nline' $'tab\there' 'back\slash' $'latin1 \xe9t\xe9' $'bad utf8 \xff\xfe' '-dash' '.hidden' $'\xe2\x82\xac euro')
for n in "${names[@]}"; do cp text "d/$n"; done
cp -a d ref

run pmap compress -v d; expect_rc 0 "compress odd names"
for n in "${names[@]}"; do
    [ ! -e "d/$n" ] || fail "not removed: $(printf %q "$n")"
    gz_same "d/$n.gz" text
done
[ "$(find d -type f -printf x | wc -c)" = "${#names[@]}" ] || fail "extra files: $(ls -A d)"
expect_err 'd/new\nline:' "-v escapes a newline"
expect_err 'd/back\\slash:' "-v escapes a backslash"
grep -qF $'d/bad utf8 \xff\xfe:' "$T/.err" || fail "-v does not keep non-UTF-8 bytes as they are"
ok "compress: every odd name becomes NAME.gz; -v escapes control characters only"

run pmap decompress d; expect_rc 0 "decompress odd names"
for n in "${names[@]}"; do cmp -s "d/$n" text || fail "round trip: $(printf %q "$n")"; done
ok "decompress: byte-exact round trips"

run pmap checksum d; expect_rc 0 "checksum odd names"
crc=$(crc32 text)
grep -qxF "$crc  50000  d/with space" "$T/.out" || fail "checksum: space"
grep -qxF "\\$crc  50000  d/new\\nline" "$T/.out" || fail "checksum: newline line $(grep new "$T/.out")"
grep -qxF "\\$crc  50000  d/back\\\\slash" "$T/.out" || fail "checksum: backslash"
grep -qxF "\\$crc  50000  d/tab\\there" "$T/.out" || fail "checksum: tab"
grep -qxF "$crc  50000  d/bad utf8 "$'\xff\xfe' "$T/.out" || fail "checksum: raw non-UTF-8 bytes"
[ "$(wc -l <"$T/.out")" = "${#names[@]}" ] || fail "checksum: one line per file"
ok "checksum: names with control characters escaped, line marked with a backslash"

chmod 000 "d/$(printf 'new\nline')"
if [ "$(id -u)" = 0 ]; then nc=(setpriv --bounding-set=-all); else nc=(); fi
run "${nc[@]}" "$PM_BIN" compress -k "d/$(printf 'new\nline')"
expect_rc 1 "unreadable odd name"; expect_err 'pmap: d/new\nline: ' "error message escapes the name"
chmod 644 "d/$(printf 'new\nline')"
ok "error messages name the file, escaped"

long=$(printf 'x%.0s' $(seq 253))
cp text "$long"
run pmap compress "$long"; expect_rc 1 "name too long for .gz"
expect_err "pmap: $long: " "long name named"; cmp -s "$long" text || fail "long name: input changed"
ok "an output name longer than NAME_MAX fails that file, input intact"
