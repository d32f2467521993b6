#!/usr/bin/env bash
# pmap run, arguments: replacement strings and ::: products against GNU
# parallel's output on the same inputs, arguments from stdin, -a and -0,
# -k order, grouping of concurrent output, shell or not, exit statuses and
# the messages of failing, killed and missing commands, 101, --dry-run.
. "$(dirname "$0")/lib.sh"
cd "$T"
have_parallel=0
command -v parallel >/dev/null && parallel --version 2>/dev/null | grep -q 'GNU parallel' && have_parallel=1
par() { parallel --will-cite "$@"; }

# --- replacement strings, against GNU parallel
args=(a/b.c/d a.b/c file .bashrc 'x y/z w.tar.gz' dir/ /abs/p.q ./r.s a//b.c '' 'sp ace.txt'
      'a b/' / //x 'q"uo'"'"'te.x' '$HOME.y' 'semi;colon')
# (parallel splits a ::: argument at newlines; pmap keeps it whole: not compared)
tmpl=(echo '@{}@' '@{.}@' '@{/}@' '@{//}@' '@{/.}@' '@{#}@')
run pmap run -k "${tmpl[@]}" ::: "${args[@]}"
expect_rc 0 "replacement strings"
[ "$(wc -l <"$T/.out")" = 17 ] || fail "replacement strings: $(wc -l <"$T/.out") lines, expected 17"
grep -qxF '@x y/z w.tar.gz@ @x y/z w.tar@ @z w.tar.gz@ @x y@ @z w.tar@ @5@' "$T/.out" \
    || fail "replacement strings: line 5 wrong"
if [ $have_parallel = 1 ]; then
    par -k "${tmpl[@]}" ::: "${args[@]}" >want 2>/dev/null
    cmp -s want "$T/.out" || { diff want "$T/.out" >&2; fail "replacement strings differ from parallel's"; }
    # In a shell command too: values quoted, never interpreted.
    run pmap run -k 'echo {} {/} | cat' ::: "${args[@]}"
    par -k 'echo {} {/} | cat' ::: "${args[@]}" >want 2>/dev/null
    cmp -s want "$T/.out" || { diff want "$T/.out" >&2; fail "shell mode differs from parallel's"; }
    # No replacement string: the argument is appended; products of ::: groups.
    run pmap run -k echo pre ::: a 'b c' ::: 1 2 ::: x
    par -k echo pre ::: a 'b c' ::: 1 2 ::: x >want
    cmp -s want "$T/.out" || fail "::: product differs from parallel's"
    run pmap run -k echo {2}-{1} ::: a b ::: 1 2
    par -k echo {2}-{1} ::: a b ::: 1 2 >want
    cmp -s want "$T/.out" || fail "{N} differs from parallel's"
    ok "replacement strings, quoting and ::: products as GNU parallel's"
else
    ok "replacement strings (GNU parallel not installed: not compared)"
fi

# --- {%}: slots 1..j, each used by one job at a time
run pmap run -j 3 'echo {%} start; sleep 0.05; echo {%} end' ::: $(seq 12)
expect_rc 0 "{%}"
[ "$(sort -u "$T/.out" | awk '{print $1}' | sort -u | tr -d '\n')" = 123 ] || fail "{%}: slots $(awk '{print $1}' "$T/.out" | sort -u | tr '\n' ' ')"
awk 'NR%2==1 {s=$1} NR%2==0 && $1!=s {exit 1}' "$T/.out" || fail "{%}: a job's lines were split"
ok "{%} is the slot, 1..j"

# --- arguments from stdin, -a FILE, -0; empty input
printf 'one\ntwo words\n\nlast' | pmap run -k echo '[{}]' >"$T/.out" 2>"$T/.err"
printf '[one]\n[two words]\n[]\n[last]\n' | cmp -s - "$T/.out" || fail "stdin arguments"
printf 'a\0b\nc\0' >nul
pmap run -k -0 -a nul echo '[{}]' >"$T/.out" || fail "-0 -a"
printf '[a]\n[b\nc]\n' | cmp -s - "$T/.out" || fail "-0 -a: wrong arguments"
run pmap run echo </dev/null
expect_rc 0 "empty input"; [ ! -s "$T/.out" ] || fail "empty input: output"
run pmap run -a missing-file echo
expect_rc 255 "missing -a file"; expect_err "missing-file" "missing -a file"
expect_err "No such file" "missing -a file"
run pmap run -a . echo
expect_rc 255 "-a directory"; expect_err "Is a directory" "-a directory"
ok "arguments from stdin, -a FILE, -0; empty input; bad -a file"

# --- -k: input order; without it, completion order
pmap run -k -j 4 'sleep 0.{}; echo {}' ::: 4 3 2 0 >"$T/.out"
[ "$(tr '\n' ' ' <"$T/.out")" = "4 3 2 0 " ] || fail "-k: $(tr '\n' ' ' <"$T/.out")"
pmap run -j 4 'sleep 0.{}; echo {}' ::: 4 3 2 0 >"$T/.out"
[ "$(tr '\n' ' ' <"$T/.out")" = "0 2 3 4 " ] || fail "no -k: $(tr '\n' ' ' <"$T/.out")"
ok "-k keeps input order; without it outputs come as jobs end"

# --- grouping: concurrent jobs printing lines with pauses never interleave
cat >talk.sh <<'EOF'
for i in $(seq 40); do echo "$1 out $i"; echo "$1 err $i" >&2; [ $((i % 8)) = 0 ] && sleep 0.01; done
EOF
for k in "" -k; do
    pmap run $k -j 4 bash talk.sh ::: A B C D E F >"$T/.out" 2>"$T/.err" || fail "grouping $k: status"
    for f in .out .err; do
        [ "$(wc -l <"$T/$f")" = 240 ] || fail "grouping $k: $f has $(wc -l <"$T/$f") lines"
        [ "$(awk '{print $1}' "$T/$f" | uniq | wc -l)" = 6 ] || fail "grouping $k: $f interleaved"
    done
done
[ "$(awk '{print $1}' "$T/.out" | uniq | tr -d '\n')" = ABCDEF ] || fail "grouping -k: order"
ok "each job's stdout and stderr grouped, with and without -k"

# --- big outputs, through the buffers and their temporary files, intact
pmap run -k -j 3 'head -c {}000 /dev/urandom | od -An -tx1 | tee out.{#} | cat' ::: 900 5 700 3 >"$T/.out" \
    || fail "big outputs: status"
cat out.1 out.2 out.3 out.4 | cmp -s - "$T/.out" || fail "big outputs: bytes differ"
ok "large outputs (MBs per job) intact and in order"

# --- shell or not
run pmap run -k echo ::: 'a;b' '$HOME' '*' '`id`' "it's"
printf '%s\n' 'a;b' '$HOME' '*' '`id`' "it's" | cmp -s - "$T/.out" || fail "direct mode: values interpreted"
run pmap run -k 'echo {} | tr a z' ::: 'a;b' '$HOME'
printf '%s\n' 'z;b' '$HOME' | cmp -s - "$T/.out" || fail "shell mode"
ok "values never interpreted, with or without a shell"

# --- exit statuses and messages
run pmap run -k 'echo {}; exit {}' ::: 0 3 0 4
expect_rc 2 "two failing jobs"
expect_err "job 2 'echo 3; exit 3' exited with 3" "failing job"
expect_err "job 4 'echo 4; exit 4' exited with 4" "failing job"
[ "$(grep -c exited "$T/.err")" = 2 ] || fail "failing jobs: $(grep -c exited "$T/.err") messages"
run pmap run 'kill -9 $$' ::: x
expect_rc 1 "killed job"; expect_err "job 1 'kill -9 \$\$ x' killed by signal 9" "killed job"
run pmap run no-such-command-pmap ::: x
expect_rc 1 "command not found"
expect_err "job 1 'no-such-command-pmap x' failed: command not found (exit status 127)" "command not found"
run pmap run -j 8 false ::: $(seq 100)
expect_rc 100 "100 failures"
run pmap run -j 8 false ::: $(seq 101)
expect_rc 101 "101 failures"
run pmap run -j 8 false ::: $(seq 150)
expect_rc 101 "150 failures"
if [ $have_parallel = 1 ]; then
    for n in 3 101; do
        par -j 8 false ::: $(seq $n) 2>/dev/null; want=$?
        pmap run -j 8 false ::: $(seq $n) 2>/dev/null; got=$?
        [ "$got" = "$want" ] || fail "$n failures: status $got, parallel's $want"
    done
fi
ok "exit status = failed jobs (101 above 100); failing, killed and missing commands reported"

# --- --dry-run runs nothing
run pmap run --dry-run -k touch 'f {}' ::: a 'b c'
expect_rc 0 "--dry-run"
printf '%s\n' "touch f a" "touch f 'b c'" | cmp -s - "$T/.out" || fail "--dry-run: output"
[ ! -e f ] && [ ! -e a ] && [ ! -e "b c" ] || fail "--dry-run ran something"
if [ $have_parallel = 1 ]; then
    par --dry-run -k touch 'f {}' ::: a 'b c' | cmp -s - "$T/.out" || fail "--dry-run: not parallel's"
fi
ok "--dry-run prints the commands and runs nothing"

# --- usage errors
for bad in "-j 0" "-j x" "--timeout -1" "--halt sometime" "--block 0" "--nope"; do
    run pmap run $bad echo ::: a
    expect_rc 255 "usage error $bad"
    [ ! -s "$T/.out" ] || fail "usage error $bad: ran"
done
run pmap run --pipe
expect_rc 255 "--pipe, no command"; expect_err "needs a COMMAND" "--pipe, no command"
PMAP_JOBS=zero run pmap run echo ::: a
expect_rc 255 "bad PMAP_JOBS"; expect_err PMAP_JOBS "bad PMAP_JOBS"
ok "usage errors exit 255 with a message"

# --- PMAP_JOBS is the default -j
PMAP_JOBS=1 pmap run 'echo {%}' ::: a b c d >"$T/.out" || fail "PMAP_JOBS=1"
[ "$(sort -u "$T/.out")" = 1 ] || fail "PMAP_JOBS=1: slots $(sort -u "$T/.out" | tr '\n' ' ')"
PMAP_JOBS=3 pmap run -j 2 'echo {%}; sleep 0.1' ::: a b c d >"$T/.out" || fail "-j over PMAP_JOBS"
[ "$(sort -u "$T/.out" | tr -d '\n')" = 12 ] || fail "-j 2 with PMAP_JOBS=3: slots $(sort -u "$T/.out" | tr '\n' ' ')"
ok "PMAP_JOBS gives the default -j; -j overrides it"

# --- arguments from a slow pipe: jobs finish and print while pmap waits
t0=$(date +%s%N)
{ echo a; sleep 1.5; echo b; } | pmap run 'echo {}' | while read -r l; do echo "$l $(( ($(date +%s%N) - t0) / 1000000 ))"; done >stamps
[ "$(cut -d' ' -f1 stamps | tr -d '\n')" = ab ] || fail "slow pipe: $(cat stamps)"
[ "$(awk '$1=="a" {print $2}' stamps)" -lt 1200 ] || fail "slow pipe: job a's output waited for more input ($(cat stamps))"
ok "arguments from a slow pipe: each job's output comes while pmap waits for the next"

# --- no COMMAND: each argument is a command line (as parallel runs them)
run pmap run -k ::: 'echo a; echo b' 'exit 3' 'echo "$((1+1))"'
expect_rc 1 "commands as arguments"
printf 'a\nb\n2\n' | cmp -s - "$T/.out" || fail "commands as arguments: $(cat "$T/.out")"
expect_err "job 2 'exit 3' exited with 3" "commands as arguments"
printf 'echo x | tr x y\necho z\n' | pmap run -k >"$T/.out" || fail "commands from stdin"
printf 'y\nz\n' | cmp -s - "$T/.out" || fail "commands from stdin: $(cat "$T/.out")"
ok "without COMMAND each argument is a command line for /bin/sh"
