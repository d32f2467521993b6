#!/usr/bin/env bash
# The installed pmap: `cmake --install` puts the binary and the man page in
# place, the installed binary works, and the man page documents every
# command and every option the help texts list. (Every other test can also
# be run against an installed binary: PM_BIN=/usr/local/bin/pmap bash
# tests/cli/test_compress.sh.)
. "$(dirname "$0")/lib.sh"
cd "$T"
build=$(dirname "$PM_BIN")
while [ "$build" != / ] && [ ! -f "$build/CMakeCache.txt" ]; do build=$(dirname "$build"); done
[ -f "$build/CMakeCache.txt" ] || skip "PM_BIN is not inside a CMake build tree"
command -v cmake >/dev/null || skip "no cmake"

cmake --install "$build" --prefix "$T/inst" >install.log 2>&1 || { cat install.log >&2; fail "cmake --install"; }
bin="$T/inst/bin/pmap"; man1="$T/inst/share/man/man1/pmap.1"
[ -x "$bin" ] || fail "no installed binary"
[ -f "$man1" ] || fail "no installed man page"
[ "$("$bin" --version)" = "$("$PM_BIN" --version)" ] || fail "installed version differs"
gen_text f 100000 1 && cp f f.ref
"$bin" compress f && gz_same f.gz f.ref && "$bin" decompress f.gz && cmp -s f f.ref || fail "installed binary round trip"
ok "cmake --install: binary and man page; the installed binary round-trips"

command -v man >/dev/null || skip "no man(1) to render the page"
MANWIDTH=200 man --warnings -l "$man1" >man.txt 2>man.err || fail "man -l failed"
[ ! -s man.err ] || fail "man page warnings: $(cat man.err)"
for c in compress decompress checksum wc; do
    grep -q "pmap $c" man.txt || fail "man page lacks 'pmap $c'"
    for opt in $("$PM_BIN" "$c" --help | grep -oE '(^|[ ,])--?[a-zA-Z0-9-]+' | tr -d ' ,' | sort -u); do
        [ "$opt" = "--" ] && continue
        grep -qe "$opt" man.txt || fail "man page does not document $c option $opt"
    done
done
for s in "EXIT STATUS" "SAFETY" "CRC32HEX" "PMAP_JOBS" "--json"; do grep -q -- "$s" man.txt || fail "man page lacks $s"; done
ok "the man page renders without warnings and documents every command and option"
