#!/usr/bin/env bash
# pmap's command line itself: help, version, usage errors naming the culprit,
# option spelling (combined short options, attached arguments, prefixes of
# long options, --, -).
. "$(dirname "$0")/lib.sh"
cd "$T"

run pmap; expect_rc 1 "no command"; expect_err "usage: pmap" "no command"
run pmap --help; expect_rc 0 "--help"
cp "$T/.out" help.txt
for c in compress decompress checksum wc; do
    grep -q "^  $c " help.txt || fail "--help does not list $c"
    run pmap "$c" --help; expect_rc 0 "$c --help"; expect_out "usage: pmap $c" "$c --help"
    run pmap "$c" -h; expect_rc 0 "$c -h"
done
ok "help texts"
run pmap --version; expect_rc 0 "--version"
grep -Eq '^pmap [0-9]+\.[0-9]+\.[0-9]+$' "$T/.out" || fail "--version format: $(cat "$T/.out")"
run pmap compress --version; expect_rc 0 "compress --version"
ok "version"

echo data >f
run pmap frob f; expect_rc 1 "unknown command"; expect_err "unknown command 'frob'" "unknown command"
run pmap --frob; expect_rc 1 "unknown global option"; expect_err "'--frob'" "unknown global option"
run pmap compress -x f; expect_rc 1 "-x"; expect_err "unknown option '-x'" "-x"
run pmap compress -kx f; expect_rc 1 "-kx"; expect_err "unknown option '-x'" "-kx"
run pmap compress --bogus f; expect_rc 1 "--bogus"; expect_err "unknown option '--bogus'" "--bogus"
run pmap compress --no f; expect_rc 1 "--no"; expect_err "ambiguous option '--no'" "--no"
run pmap compress --keep=yes f; expect_rc 1 "--keep=yes"; expect_err "'--keep=yes' does not take an argument" "--keep=yes"
run pmap compress f -b; expect_rc 1 "-b without argument"; expect_err "option '-b' requires an argument" "-b"
run pmap compress --suffix; expect_rc 1 "--suffix without argument"; expect_err "'--suffix' requires an argument" "--suffix"
for bad in 1K 0 abc 12Q 2G -5; do
    run pmap compress -b "$bad" f; expect_rc 1 "-b $bad"; expect_err "invalid block size '$bad'" "-b $bad"
done
for bad in 0 -1 abc 2x 99999; do
    run pmap compress -p "$bad" f; expect_rc 1 "-p $bad"; expect_err "invalid number of jobs '$bad'" "-p $bad"
done
run pmap compress -S '' f; expect_rc 1 "empty suffix"; expect_err "invalid suffix" "empty suffix"
run pmap compress -S a/b f; expect_rc 1 "suffix with /"; expect_err "invalid suffix" "suffix with /"
run pmap checksum -k f; expect_rc 1 "checksum -k"; expect_err "unknown option '-k'" "checksum -k"
run pmap wc -9 f; expect_rc 1 "wc -9"; expect_err "unknown option '-9'" "wc -9"
run pmap checksum -c f; expect_rc 1 "checksum -c"
[ -f f ] && [ ! -e f.gz ] || fail "a usage error touched files"
ok "usage errors exit 1 and name the option"

# Option spelling. -kv9: keep, verbose, level 9 (XFL byte 2 in the header).
cp f g
run pmap compress -kv9 f; expect_rc 0 "-kv9"
[ -f f ] || fail "-kv9 did not keep f"
expect_err "f: " "-kv9 verbose"; expect_err "created f.gz" "-kv9 verbose"
[ "$(od -An -tx1 -j8 -N1 f.gz | tr -d ' ')" = 02 ] || fail "-9 did not set XFL=2"
rm f.gz
run pmap compress -k -1 f; expect_rc 0 "-1"
[ "$(od -An -tx1 -j8 -N1 f.gz | tr -d ' ')" = 04 ] || fail "-1 did not set XFL=4"
rm f.gz
run pmap compress --fast --keep f; expect_rc 0 "--fast"
[ "$(od -An -tx1 -j8 -N1 f.gz | tr -d ' ')" = 04 ] || fail "--fast did not set XFL=4"
rm f.gz
run pmap compress --ke --bes f; expect_rc 0 "prefixes --ke --bes"
[ -f f ] && [ "$(od -An -tx1 -j8 -N1 f.gz | tr -d ' ')" = 02 ] || fail "--ke --bes"
rm f.gz
for spelling in "-b 256K -p2" "-b256K -j 2" "--blocksize=1M --jobs=1" "--blocksize 64 --processes 2" "-b 1048576B"; do
    # shellcheck disable=SC2086
    run pmap compress -k $spelling f; expect_rc 0 "$spelling"; gz_same f.gz f; rm f.gz
done
ok "combined short options, attached and separate arguments, long prefixes"

# Options after operands, and -- ending options: a file named -v.
echo dash >./-v
run pmap compress f -k; expect_rc 0 "option after operand"; [ -f f ] && [ -f f.gz ] || fail "f -k"
rm f.gz
run pmap compress -k -- -v; expect_rc 0 "-- -v"
[ -f ./-v.gz ] || fail "-- did not end the options"
gz_same ./-v.gz ./-v
run pmap compress -r -q -k g; expect_rc 0 "-r -q accepted"
ok "options after operands; -- ends options"

# Malformed configuration is an error naming the variable, before any work.
for v in 3x "" " 3" +3 "3 " 0; do
    PMAP_JOBS="$v" run pmap compress -k f; expect_rc 1 "PMAP_JOBS='$v'"
    expect_err "PMAP_JOBS='$v' is not valid" "PMAP_JOBS='$v' message"
    [ ! -e f.gz ] || fail "PMAP_JOBS='$v' still compressed"
done
PMAP_IO=fast run pmap checksum f; expect_rc 1 "PMAP_IO=fast"; expect_err "PMAP_IO='fast'" "PMAP_IO message"
PMAP_DEFLATE_ENGINE=zstd run pmap checksum f; expect_rc 1 "PMAP_DEFLATE_ENGINE=zstd"
run pmap compress -j 1025 -k f; expect_rc 1 "-j 1025"
ok "malformed PMAP_JOBS, PMAP_IO, PMAP_DEFLATE_ENGINE and -j are errors"
