#!/usr/bin/env bash
# pmap checksum -c LIST: verifies a list written by pmap checksum, as
# sha256sum -c does: "PATH: OK", "PATH: FAILED", "PATH: FAILED open or
# read" per line in the list's order, sha256sum's warnings on stderr, exit
# status 1 when anything failed, -q (no OK lines), --status (nothing
# printed), escaped names, several lists and stdin.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir -p d/sub
gen_text d/a 300000 1; gen_text d/sub/b 2000000 2; : >d/empty
printf 'x' >"d/back\\slash"; printf 'y' >"$(printf 'd/new\nline')"
run pmap checksum d; expect_rc 0 "checksum d"
cp "$T/.out" SUMS
[ "$(wc -l <SUMS)" = 5 ] || fail "premise: 5 lines"

run pmap checksum -c SUMS; expect_rc 0 "-c all good"
[ "$(grep -c ': OK$' "$T/.out")" = 5 ] || fail "-c: not 5 OK lines: $(cat "$T/.out")"
expect_out "d/sub/b: OK" "-c names the file"
expect_out '\d/back\\slash: OK' "-c escapes names as sha256sum"
expect_no_err "-c all good"
run pmap checksum -c -p1 -b 32K SUMS; expect_rc 0 "-c small chunks"
run pmap checksum --check <SUMS; expect_rc 0 "-c from stdin"
[ "$(grep -c ': OK$' "$T/.out")" = 5 ] || fail "-c stdin"
ok "-c: every line OK (also from stdin, names escaped)"

printf 'z' >>d/a                                # size and CRC change
gen_text d/sub/b 2000000 3                      # same size, other CRC
rm d/empty
mkdir d/dir; printf '00000000  0  d/dir\n' >>SUMS
printf 'not a checksum line\n' >>SUMS
run pmap checksum -c SUMS; expect_rc 1 "-c with failures"
expect_out "d/a: FAILED" "size change"; expect_out "d/sub/b: FAILED" "CRC change"
expect_out "d/empty: FAILED open or read" "missing file"; expect_out "d/dir: FAILED open or read" "directory"
[ "$(grep -c ': OK$' "$T/.out")" = 2 ] || fail "-c: the good ones: $(cat "$T/.out")"
printf '%s\n' 'd/a: FAILED' '\d/back\\slash: OK' 'd/empty: FAILED open or read' '\d/new\nline: OK' \
    'd/sub/b: FAILED' 'd/dir: FAILED open or read' >want.out
cmp -s want.out "$T/.out" || { diff want.out "$T/.out" >&2; fail "-c: not these lines in the list's order"; }
expect_err "1 line is improperly formatted" "bad line warned"
expect_err "2 listed files could not be read" "unreadable summary"
expect_err "2 computed checksums did NOT match" "mismatch summary"
expect_err "d/empty" "missing file named on stderr"
ok "-c: FAILED for changed files, FAILED open or read for missing ones and directories, in order, with sha256sum's warnings, exit 1"

run pmap checksum -c -q SUMS; expect_rc 1 "-c -q"
! grep -q ': OK$' "$T/.out" || fail "-q printed OK lines"
expect_out "d/a: FAILED" "-q keeps FAILED"
run pmap checksum -c --status SUMS; expect_rc 1 "--status"
[ ! -s "$T/.out" ] || fail "--status printed: $(cat "$T/.out")"
grep -v 'd/empty' SUMS | grep -v 'd/dir' | grep -v '^not' | grep -v ' d/a$' | grep -v ' d/sub/b$' >GOOD
run pmap checksum -c --status GOOD; expect_rc 0 "--status all good"; expect_no_err "--status all good"
[ ! -s "$T/.out" ] || fail "--status printed"
ok "-q leaves out OK lines; --status prints nothing and says it by the exit status"

printf 'junk\n' >BAD
run pmap checksum -c BAD; expect_rc 1 "no good line"; expect_err "BAD: no properly formatted checksum lines found" "no good line"
run pmap checksum -c nolist; expect_rc 1 "missing list"; expect_err "nolist" "missing list named"
run pmap checksum -c GOOD nolist; expect_rc 1 "good list and missing list"
[ "$(grep -c ': OK$' "$T/.out")" = 2 ] || fail "the good list not verified with a missing one"
ok "a list that is missing or has no well-formed line is an error (1); the other lists are still verified"
