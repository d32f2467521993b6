#!/usr/bin/env bash
# pmap wc: lines, words and bytes per file and in total (also -l -w -m -c,
# -m in the locale; the total even with a missing operand; a malformed
# PMAP_JOBS), whatever the chunk
# size. Words are counted as GNU wc counts them in the C locale: a word
# starts at a printable byte that follows white space (or the start);
# other bytes (controls, bytes >= 0x80) neither start nor end one. So every
# file, binary included, is checked against `LC_ALL=C wc` itself, and the
# test's own Python model of that rule is checked against wc too.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir d
gen_text d/text 3000000 41
gen_random d/bin 400000 42
: >d/empty
printf 'no newline at end' >d/nonl
printf ' \t lead\r\nand  trail \n\n\n  \v x\fy ' >d/spaces
# Words and lines across chunk boundaries: 32K of 'a', a space, more.
{ head -c 32767 /dev/zero | tr '\0' a; printf ' b\n'; head -c 65536 /dev/zero | tr '\0' '\n'; } >d/edges

want() {
    python3 - "$@" <<'EOF2'
import sys
SPACE = set(b' \t\n\v\f\r')
for p in sys.argv[1:]:
    d = open(p, 'rb').read()
    words, in_word = 0, False
    for ch in d:
        if ch in SPACE:
            in_word = False
        elif 0x20 < ch < 0x7f:
            words += not in_word
            in_word = True
    print(d.count(b'\n'), words, len(d), p)
EOF2
}
coreutils() { for f in "$@"; do set -- $(wc -l -w -c <"$f"); printf '%s %s %s %s\n' "$1" "$2" "$3" "$f"; done; }
got() { awk 'NF==4 && $4!="total" {print $1, $2, $3, $4}' "$T/.out"; }

files="d/bin d/edges d/empty d/nonl d/spaces d/text"
want $files >want.txt
coreutils $files | cmp -s - want.txt || fail "the test's own count differs from coreutils wc"
for spec in "" "-p1 -b 32K" "-p2 -b 64K" "-p2 -b 2M"; do
    # shellcheck disable=SC2086
    run pmap wc $spec d; expect_rc 0 "wc $spec"
    got | cmp -s - want.txt || { got | diff - want.txt >&2; fail "wc $spec differs from coreutils wc"; }
done
set -- $(awk '{l+=$1; w+=$2; c+=$3} END {print l, w, c}' want.txt)
tail -1 "$T/.out" | grep -Eq "^ *$1 +$2 +$3 total$" || fail "total line: $(tail -1 "$T/.out")"
grep -Eq '^ {0,6}[0-9]+ +[0-9]+ +[0-9]+ d/bin$' "$T/.out" || fail "line format: $(head -1 "$T/.out")"
ok "counts right (= LC_ALL=C coreutils wc) for text, binary, empty, no final newline, odd spaces, chunk edges"

run pmap wc d/nonl; expect_rc 0 "one file"
[ "$(wc -l <"$T/.out")" = 1 ] || fail "a total line for one file"
run pmap wc <d/text; expect_rc 0 "stdin"
set -- $(wc -l -w -c <d/text)
[ "$(cat "$T/.out")" = "$(printf '%7s %7s %7s' "$1" "$2" "$3")" ] || fail "stdin line: '$(cat "$T/.out")'"
ok "no total for one file; stdin line without a name"

run pmap wc d/text missing; expect_rc 1 "missing"; expect_err "missing" "missing named"
expect_out "d/text" "other file counted"
ok "a missing file fails alone"

# GNU wc prints the total whenever there is more than one operand, even
# when one of them failed.
run pmap wc d/text missing; [ "$(tail -1 "$T/.out" | awk '{print $4}')" = total ] \
    || fail "no total line with a missing operand: $(cat "$T/.out")"
set -- $(wc -l -w -c <d/text)
tail -1 "$T/.out" | grep -Eq "^ *$1 +$2 +$3 total$" || fail "total with a missing operand: $(tail -1 "$T/.out")"
run pmap wc missing1 missing2; expect_rc 1 "two missing"
grep -Eq '^ +0 +0 +0 total$' "$T/.out" || fail "two missing: total line: $(cat "$T/.out")"
ok "the total line comes even when an operand is missing"

# -l -w -m -c: the counts asked for, in wc's order whatever the options' order.
for opts in "-l" "-w" "-c" "-m" "-cl" "-wl" "-c -w -l" "-lwmc" "--lines --bytes" "--chars"; do
    # shellcheck disable=SC2086
    want_line=$(cd d && wc $opts text nonl | head -2 | awk '{$1=$1; print}')
    # shellcheck disable=SC2086
    run pmap wc $opts d/text d/nonl; expect_rc 0 "wc $opts"
    got_line=$(head -2 "$T/.out" | sed 's| d/| |' | awk '{$1=$1; print}')
    [ "$got_line" = "$want_line" ] || fail "wc $opts: '$got_line', coreutils: '$want_line'"
done
ok "-l, -w, -c, -m and their combinations print what coreutils wc prints"

# -m counts characters in the user's locale: UTF-8 of 1 to 4 bytes, NULs,
# invalid and cut-short sequences, across chunk boundaries (32K chunks).
locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$' || skip "no C.UTF-8 locale for -m"
python3 - <<'EOF2'
import random
r = random.Random(7)
pieces = ['a', ' ', '\n', 'é', '€', '日本', '😀', '\0']
out = bytearray()
while len(out) < 300000:
    k = r.random()
    if k < 0.02:
        out += r.choice([b'\xff', b'\xe2\x82', b'\xf0\x9f', b'\x80', b'\xc3'])
    else:
        out += r.choice(pieces).encode()
open('d/utf8', 'wb').write(bytes(out))
EOF2
want_m=$(LC_ALL=C.UTF-8 wc -m <d/utf8)
[ "$want_m" != "$(LC_ALL=C wc -m <d/utf8)" ] || fail "premise: the file has multibyte characters"
for spec in "" "-p1 -b 32K" "-p2 -b 32K"; do
    # shellcheck disable=SC2086
    LC_ALL=C.UTF-8 run pmap wc -m $spec d/utf8; expect_rc 0 "wc -m $spec"
    [ "$(awk '{print $1}' "$T/.out")" = "$want_m" ] || fail "wc -m $spec: $(cat "$T/.out"), coreutils: $want_m"
done
LC_ALL=C run pmap wc -m d/utf8
[ "$(awk '{print $1}' "$T/.out")" = "$(wc -c <d/utf8)" ] || fail "wc -m in the C locale counts bytes"
ok "-m counts characters in the user's locale (= coreutils wc -m in C.UTF-8), whatever the chunks"

for v in abc "" 0 "3 "; do
    PMAP_JOBS="$v" run pmap wc d/text; expect_rc 1 "PMAP_JOBS='$v'"
    expect_err "PMAP_JOBS='$v' is not valid" "PMAP_JOBS='$v' names the variable"
    [ ! -s "$T/.out" ] || fail "PMAP_JOBS='$v': counted anyway"
done
ok "a malformed PMAP_JOBS is an error naming the variable"
