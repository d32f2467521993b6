#!/usr/bin/env bash
# What pmap reports besides its data: the --json statistics line (fields
# and values; on stderr or into --json=FILE, never on stdout), the progress bar
# (--progress, --no-progress, automatic on a terminal for long jobs only),
# and exit statuses with -q.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir d
gen_text d/a 400000 1; gen_text d/b 250000 2; : >d/c
total=$(cat d/a d/b d/c | wc -c)

# json FILE PYEXPR: the last line of FILE is JSON for which PYEXPR (on j) holds.
json() {
    python3 - "$@" <<'EOF2' || fail "--json: $2 does not hold for: $(tail -1 "$1")"
import json, sys
j = json.loads(open(sys.argv[1]).read().splitlines()[-1])
keys = {'command', 'exit', 'signal', 'files_ok', 'files_failed', 'files_skipped',
        'files_warned', 'bytes_in', 'bytes_out', 'wall_seconds', 'cpu_seconds',
        'mb_per_s', 'chunks', 'peak_live_chunks'}
assert keys <= set(j), keys - set(j)
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF2
}

run pmap compress --json d; expect_rc 0 "--json"
gzbytes=$(cat d/*.gz | wc -c)
json "$T/.err" "j['command']=='compress' and j['exit']==0 and j['signal']==0 and j['files_ok']==3 and j['files_failed']==0 and j['files_skipped']==0 and j['bytes_in']==$total and j['bytes_out']==$gzbytes and j['wall_seconds']>0 and j['mb_per_s']>0"
[ "$(wc -l <"$T/.err")" = 1 ] || fail "--json: more than one line"
[ ! -s "$T/.out" ] || fail "--json: something on stdout"
ok "--json: one line on stderr, counts and bytes right"

gzip -dc d/a.gz >d/a && rm d/a.gz
run pmap compress --json -q d/a d/b.gz d/c.gz; expect_rc 2 "--json with skips"
json "$T/.err" "j['exit']==2 and j['files_skipped']==2 and j['files_ok']==1"
run pmap decompress --json d/a.gz d/missing.gz; expect_rc 1 "--json with an error"
json "$T/.err" "j['exit']==1 and j['files_failed']==1 and j['command']=='decompress'"
ok "--json: exit status and skip/failure counts"

run pmap compress -c --json d/a; expect_rc 0 "-c --json"
gzip -t "$T/.out" 2>/dev/null || fail "-c --json: stdout is not pure gzip"
json "$T/.err" "j['files_ok']==1 and j['bytes_in']==400000"
ok "--json goes to stderr when stdout carries the data"

# Results on stdout stay pure: checksum, wc and -l lines, nothing else.
for cmd in "checksum d" "wc d" "decompress -l d/b.gz"; do
    # shellcheck disable=SC2086
    run pmap $cmd --json; expect_rc 0 "$cmd --json"
    ! grep -q '{' "$T/.out" || fail "$cmd --json: JSON mixed into stdout: $(tail -1 "$T/.out")"
    json "$T/.err" "j['command']=='${cmd%% *}' and j['exit']==0"
    # shellcheck disable=SC2086
    pmap $cmd >plain.out 2>/dev/null
    cmp -s plain.out "$T/.out" || fail "$cmd --json: stdout differs from the run without --json"
done
run pmap checksum --json=stats.json d/a; expect_rc 0 "--json=FILE"
expect_no_err "--json=FILE"
[ "$(wc -l <"$T/.out")" = 1 ] || fail "--json=FILE: stdout is not the one sum"
json stats.json "j['command']=='checksum' and j['files_ok']==1 and j['bytes_in']==400000"
run pmap wc --json=nodir/stats.json d/a; expect_rc 1 "--json=FILE unwritable"
expect_err "nodir/stats.json" "--json=FILE unwritable names the file"
expect_out "d/a" "--json=FILE unwritable: the counts still come"
run pmap wc --json= d/a; expect_rc 1 "--json= without a name"
ok "--json never mixes into results on stdout (checksum, wc, -l); --json=FILE writes the file"

run pmap checksum --progress d/a d/b.gz; expect_rc 0 "--progress"
grep -q 'ETA' "$T/.err" && grep -q '/s' "$T/.err" && grep -q 'files' "$T/.err" || fail "--progress: no bar: $(cat "$T/.err")"
[ "$(wc -l <"$T/.out")" = 2 ] || fail "--progress mixed into stdout"
run pmap checksum --progress --no-progress d/a; expect_rc 0 "--no-progress"; expect_no_err "--no-progress"
run pmap checksum d/a; expect_no_err "no bar by default when stderr is not a terminal"
ok "--progress draws on stderr; --no-progress and non-terminals get none"

command -v script >/dev/null || skip "no script(1) for a terminal"
gen_words long 6000000 3
script -qec "'$PM_BIN' compress -k --one-member -9 -p1 long" tty.log >/dev/null 2>&1 || fail "tty run failed"
grep -q 'ETA' tty.log || fail "no automatic bar on a terminal for a long job"
grep -q $'\033\\[K' tty.log || fail "bar not redrawn in place"
rm long.gz
script -qec "'$PM_BIN' compress -k -q --one-member -9 -p1 long" tty.log >/dev/null 2>&1 || fail "tty -q run failed"
! grep -q 'ETA' tty.log || fail "-q still shows the bar"
script -qec "'$PM_BIN' checksum d/a" tty.log >/dev/null 2>&1
! grep -q 'ETA' tty.log || fail "a short job shows the bar"
ok "on a terminal: a bar for long jobs, none for short ones or with -q"
