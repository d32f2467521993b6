#!/usr/bin/env bash
# stdin and stdout: no operand or "-" reads stdin and writes stdout; "-"
# mixed with files; compressed data is not written to (or read from) a
# terminal without -f.
. "$(dirname "$0")/lib.sh"
cd "$T"
gen_text text 1500000 21
gen_random rand 200000 22

run pmap compress <text; expect_rc 0 "compress stdin"; expect_no_err "compress stdin"
mv "$T/.out" s.gz; gz_same s.gz text
run pmap compress - <rand; expect_rc 0 "compress -"
mv "$T/.out" r.gz; gz_same r.gz rand
run pmap decompress <s.gz; expect_rc 0 "decompress stdin"
cmp -s "$T/.out" text || fail "decompress stdin output"
run pmap decompress - <r.gz; expect_rc 0 "decompress -"
cmp -s "$T/.out" rand || fail "decompress - output"
cat text | pmap compress -9 | pmap decompress | cmp -s - text || fail "pipe round trip"
ok "stdin to stdout both ways, from files and pipes"

run pmap decompress -t <s.gz; expect_rc 0 "-t stdin"
[ ! -s "$T/.out" ] || fail "-t wrote to stdout"
run pmap decompress -l <s.gz; expect_rc 0 "-l stdin"
expect_out " $(stat -c %s text) " "-l stdin shows the size"
ok "-t and -l on stdin"

cp text a; cp rand b
run pmap compress a - b <text; expect_rc 0 "mixed a - b"
gz_same a.gz text; gz_same b.gz rand
[ ! -e a ] && [ ! -e b ] || fail "mixed: inputs not removed"
mv "$T/.out" m.gz; gz_same m.gz text
ok "'-' mixed with files: files to F.gz, stdin to stdout"

command -v script >/dev/null || skip "no script(1) for a terminal"
# script gives the command a terminal on stdin and stdout; -e passes its status.
script -qec "'$PM_BIN' compress < text" /dev/null >tty.out 2>&1; rc=$?
[ "$rc" = 1 ] || fail "compress to a terminal: status $rc"
grep -q "compressed data not written to a terminal" tty.out || fail "terminal message: $(cat tty.out)"
script -qec "'$PM_BIN' compress -f < rand >/dev/null" /dev/null >tty.out 2>&1; rc=$?
[ "$rc" = 0 ] || fail "compress -f with a terminal: status $rc"
script -qec "'$PM_BIN' decompress > out" /dev/null >tty.out 2>&1 </dev/null; rc=$?
[ "$rc" = 1 ] || fail "decompress from a terminal: status $rc"
grep -q "compressed data not read from a terminal" tty.out || fail "terminal message: $(cat tty.out)"
script -qec "'$PM_BIN' decompress -c s.gz | cmp -s - text" /dev/null >tty.out 2>&1; rc=$?
[ "$rc" = 0 ] || fail "decompress -c s.gz with a terminal stdin: status $rc"
ok "no compressed data to or from a terminal without -f"
