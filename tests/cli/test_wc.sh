#!/usr/bin/env bash
# pmap wc: lines, words and bytes per file and in total, whatever the chunk
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
