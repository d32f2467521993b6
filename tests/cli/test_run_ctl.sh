#!/usr/bin/env bash
# pmap run's controls: --joblog against GNU parallel's, --resume after a
# kill -9 of pmap, --retries, --timeout, --halt now|soon with fail=N and
# fail=P%, --bar only on a terminal; SIGTERM of pmap leaves no process of
# any job behind, and kill -9 does what pmap-run(1) says (the jobs' main
# processes die, their own children do not).
. "$(dirname "$0")/lib.sh"
cd "$T"
have_parallel=0
command -v parallel >/dev/null && parallel --version 2>/dev/null | grep -q 'GNU parallel' && have_parallel=1
par() { parallel --will-cite "$@"; }

# --- --joblog: header, nine columns, formats, values as parallel's
run pmap run -j 1 --joblog jl 'echo {}; exit {}' ::: 0 3
expect_rc 1 "--joblog run"
head -1 jl | cmp -s - <(printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n') \
    || fail "--joblog header: $(head -1 jl)"
awk -F'\t' 'NR>1 && (NF!=9 || $2!=":" || $3!~/^[0-9]+\.[0-9][0-9][0-9]$/ || $4!~/^ *[0-9]+\.[0-9][0-9][0-9]$/ || length($4)!=10) {exit 1}' jl \
    || fail "--joblog: malformed line: $(cat jl)"
[ "$(cut -f1,5- jl | tail -n +2)" = "$(printf '1\t0\t2\t0\t0\techo 0; exit 0\n2\t0\t2\t3\t0\techo 3; exit 3')" ] \
    || fail "--joblog columns: $(cut -f1,5- jl)"
pmap run --timeout 0.2 --joblog jl2 sleep ::: 5 2>/dev/null
pmap run --joblog jl3 'kill -9 $$' ::: x 2>/dev/null
if [ $have_parallel = 1 ]; then
    par -j 1 --joblog pjl 'echo {}; exit {}' ::: 0 3 >/dev/null
    cmp -s <(cut -f1,2,5- jl) <(cut -f1,2,5- pjl) || fail "--joblog differs from parallel's: $(cat pjl)"
    par --timeout 0.2 --joblog pjl2 sleep ::: 5 2>/dev/null
    cmp -s <(cut -f1,2,5- jl2) <(cut -f1,2,5- pjl2) || fail "--joblog (timeout) differs: $(cat jl2) vs $(cat pjl2)"
    par --joblog pjl3 'kill -9 $$' ::: x 2>/dev/null
    cmp -s <(cut -f1,2,5- jl3) <(cut -f1,2,5- pjl3) || fail "--joblog (signal) differs: $(cat jl3) vs $(cat pjl3)"
    ok "--joblog as GNU parallel writes it (exit, timeout, signal)"
else
    ok "--joblog format (GNU parallel not installed: not compared)"
fi

# --- --resume after kill -9 of pmap: logged jobs do not run again
env --default-signal=INT "$PM_BIN" run -j 2 --joblog rl 'echo {} >>ran1; sleep 0.25' ::: $(seq 12) >/dev/null 2>&1 &
pid=$!
sleep 1
kill -9 $pid; wait $pid 2>/dev/null
logged=$(tail -n +2 rl | cut -f1 | sort -n | tr '\n' ' ')
[ -n "$logged" ] || fail "--resume: nothing logged before kill -9"
[ "$(tail -n +2 rl | wc -l)" -lt 12 ] || fail "--resume: all done before kill -9"
sleep 0.3
run pmap run -j 2 --joblog rl --resume 'echo {} >>ran2' ::: $(seq 12)
expect_rc 0 "--resume"
for s in $logged; do grep -qx "$s" ran2 && fail "--resume: job $s ran again"; done
[ "$(tail -n +2 rl | cut -f1 | sort -n | uniq | wc -l)" = 12 ] || fail "--resume: joblog lacks jobs: $(cut -f1 rl | tr '\n' ' ')"
[ "$(head -1 rl | cut -f1)" = Seq ] && [ "$(grep -c ^Seq rl)" = 1 ] || fail "--resume: header"
ok "--resume after kill -9: the $(echo $logged | wc -w) logged jobs not run again, the rest run"

# --- --retries N: a job is tried up to N times in all (parallel's meaning)
tmpl='n=$(cat c.{} 2>/dev/null || echo 0); echo $((n+1)) >c.{}; echo try$n; [ $n -ge {} ]'
run pmap run -k --retries 2 "$tmpl" ::: 0 1 2
expect_rc 1 "--retries"
[ "$(cat c.0 c.1 c.2 | tr '\n' ' ')" = "1 2 2 " ] || fail "--retries: attempts $(cat c.0 c.1 c.2 | tr '\n' ' ')"
printf 'try0\ntry1\ntry1\n' | cmp -s - "$T/.out" || fail "--retries: output of failed attempts written: $(cat "$T/.out")"
expect_err "job 3 " "--retries"; expect_err "after 2 attempts" "--retries"
if [ $have_parallel = 1 ]; then
    rm -f c.*; par -k --retries 2 "$tmpl" ::: 0 1 2 >want 2>/dev/null; want_rc=$?
    [ "$want_rc" = "$rc" ] || fail "--retries: status $rc, parallel's $want_rc"
fi
ok "--retries reruns failing jobs; only the last attempt's output"

# --- --timeout: killed, reported, counted
t0=$(date +%s%N)
run pmap run --timeout 0.3 'sleep {}' ::: 10 0
took=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_rc 1 "--timeout"
expect_err "job 1 'sleep 10' timed out: killed by signal 15" "--timeout"
[ "$took" -lt 3000 ] || fail "--timeout took ${took} ms"
run pmap run --timeout 0.2 "trap '' TERM; sleep 10" ::: 1
expect_rc 1 "--timeout, TERM ignored"; expect_err "killed by signal 9" "--timeout, TERM ignored"
ok "--timeout kills (TERM, then KILL) and reports"

# --- --halt
run pmap run -j 1 --halt now,fail=1 'echo {} >>h1; exit {}' ::: 0 3 4
expect_rc 3 "--halt now,fail=1"
[ "$(tr '\n' ' ' <h1)" = "0 3 " ] || fail "--halt now,fail=1: ran $(tr '\n' ' ' <h1)"
t0=$(date +%s%N)
run pmap run -j 2 --halt now,fail=1 'sleep {}; exit 2' ::: 0.1 10
took=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_rc 2 "--halt now kills"; [ "$took" -lt 3000 ] || fail "--halt now: running job not killed (${took} ms)"
run pmap run -j 2 --halt soon,fail=1 'sleep {}; echo {} >>h2; exit 5' ::: 0.1 0.6 0.2 0.3
expect_rc 5 "--halt soon,fail=1"
[ "$(tr '\n' ' ' <h2)" = "0.1 0.6 " ] || fail "--halt soon: ran $(tr '\n' ' ' <h2) (the running job must end, no new one start)"
run pmap run -j 1 --halt soon,fail=20% 'exit {}' ::: 0 1 0 1 0 1 0 1 0 0
expect_rc 20 "--halt soon,fail=20%"
run pmap run -j 1 --halt now,fail=3 'exit {}' ::: 1 1 0 1 1 1
expect_rc 3 "--halt now,fail=3"
run pmap run -j 1 --halt now,success=2 'echo {} >>h3; exit {}' ::: 1 0 0 0
expect_rc 0 "--halt now,success=2"; [ "$(wc -l <h3)" = 3 ] || fail "--halt success=2: ran $(wc -l <h3)"
if [ $have_parallel = 1 ]; then
    for spec in "now,fail=1 exit {} ::: 0 3 4" "soon,fail=20% exit {} ::: 0 1 0 1 0 1 0 1 0 0" \
                "now,fail=3 exit {} ::: 1 1 0 1 1 1"; do
        set -- $spec
        h=$1; shift
        par -j 1 --halt "$h" "$@" >/dev/null 2>&1; want=$?
        pmap run -j 1 --halt "$h" "$@" >/dev/null 2>&1; got=$?
        [ "$got" = "$want" ] || fail "--halt $h: status $got, parallel's $want"
    done
fi
ok "--halt now|soon with fail=N, fail=P%, success=N: stops early, statuses as parallel's"

# --- --bar: only on a terminal
run pmap run --bar true ::: 1 2 3
expect_rc 0 "--bar"; expect_no_err "--bar without a terminal"
if command -v script >/dev/null; then
    script -qec "$PM_BIN run --bar -j 2 true ::: 1 2 3 4" /dev/null >tty.out 2>&1 </dev/null
    grep -q "4/4 done, 0 failed" tty.out || fail "--bar on a terminal: $(cat -v tty.out)"
    ok "--bar draws on a terminal, not elsewhere"
fi

# --- SIGTERM: every job's process group killed, 143
tag=$(( ($$ * 32768 + RANDOM) % 100000000 ))
env --default-signal=INT "$PM_BIN" run -j 2 "sleep 77.$tag; :" ::: 1 2 >/dev/null 2>"$T/.err" &
pid=$!
sleep 0.5
[ "$(pgrep -fc "^sleep 77.$tag")" = 2 ] || fail "SIGTERM: jobs not running"
kill -TERM $pid; wait $pid; rc=$?
expect_rc 143 "SIGTERM"
sleep 0.2
[ "$(pgrep -fc "^sleep 77.$tag")" = 0 ] || fail "SIGTERM: job processes left: $(pgrep -fa "^sleep 77.$tag")"
ok "SIGTERM kills every job's whole process group; exit 143"

# --- jobs killed by a SIGTERM of pmap are not logged: --resume runs them
env --default-signal=INT "$PM_BIN" run -j 2 --joblog tl 'echo {} >>t1; [ {} = 1 ] || sleep 30' ::: 1 2 3 >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -TERM $pid; wait $pid
[ "$(tail -n +2 tl | cut -f1)" = 1 ] || fail "SIGTERM: joblog holds $(tail -n +2 tl | cut -f1 | tr '\n' ' ')"
run pmap run -j 2 --joblog tl --resume 'echo {} >>t2' ::: 1 2 3
[ "$(sort t2 | tr '\n' ' ')" = "2 3 " ] || fail "--resume after SIGTERM ran $(sort t2 | tr '\n' ' ')"
ok "jobs killed by SIGTERM of pmap are not logged; --resume runs them"

# --- kill -9: the jobs' main processes die (PDEATHSIG), their children not
env --default-signal=INT "$PM_BIN" run -j 2 sh -c {} ::: "exec sleep 78.$tag" "sleep 79.$tag; :" >/dev/null 2>&1 &
pid=$!
sleep 0.5
[ "$(pgrep -fc "^sleep 7[89].$tag")" = 2 ] || fail "kill -9: jobs not running"
kill -9 $pid; wait $pid 2>/dev/null
sleep 0.2
[ "$(pgrep -fc "^sleep 78.$tag")" = 0 ] || fail "kill -9: a job's main process survived"
left=$(pgrep -f "^sleep 79.$tag")
[ -n "$left" ] || fail "kill -9: expected the grandchild to survive (as documented)"
kill $left
ok "kill -9 of pmap: jobs' main processes die, their children live on (as documented)"
