#!/usr/bin/env bash
# pmap-mpi run: jobs run on every rank (the joblog's Host column and {%}
# say where), and rank 0 shows what one process shows: with -k, stdout,
# stderr (the failure lines included) and exit status byte for byte those
# of `pmap run -k`, outputs over the 1 MiB pieces they travel in and over
# pm_run_capture's spill to a file; without -k, every job's output in one
# piece. Then the options that rank 0 keeps: --joblog and --resume, 101
# for more than 100 failures, --halt now (running jobs on other ranks
# killed) and soon (none started after), --timeout and --retries on the
# ranks, arguments from a pipe, -a and -0, --pipe and --dry-run (rank 0
# alone). Failure paths: a job's output that cannot be kept ($TMPDIR
# unusable on a rank), a signal to mpirun (no job left behind on any rank,
# not even a shell's child), a rank killed mid-run (the run ends).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"
cd "$T"

# same WHAT: the last run's stdout, stderr and status are those in one.*
same() {
    cmp -s one.out "$T/.out" || { diff one.out "$T/.out" | head; fail "$1: stdout differs"; }
    cmp -s one.err "$T/.err" || { diff one.err "$T/.err" | head; fail "$1: stderr differs"; }
    [ "$(cat one.rc)" = "$rc" ] || fail "$1: status $rc, one process $(cat one.rc)"
}
keep_one() { cp "$T/.out" one.out; cp "$T/.err" one.err; echo "$rc" >one.rc; }

# --- -k: one process's bytes, from jobs on every rank
# Sizes around a piece (1 MiB) and the capture's memory (1 MiB) and 0;
# stderr beside stdout; statuses 0..3; a missing command.
job='n={}; head -c $((n * 1000)) /dev/zero | tr "\0" "{}"; echo " out {}"; echo "err {}" >&2; exit $((n % 4))'
sizes=(0 1 1048 1049 3000 0 7 1048 2 1 5 0)
# (one process at -j 1: every job streams, so its failure line follows its
# output; at -j 2 a job that ends early is announced before earlier ones.)
run pmap run -j 1 -k "$job" ::: "${sizes[@]}"
keep_one
for np in 2 3; do
    run mpi $np run -k "$job" ::: "${sizes[@]}"
    same "-k at -np $np"
done
[ "$rc" = 6 ] || fail "-k: status $rc, expected 6 failed jobs"
run pmap run -k nosuch-cmd-pmap ::: a b
keep_one
run mpi 3 run -k nosuch-cmd-pmap ::: a b
same "a missing command"
ok "-k: stdout, stderr and status of one process at -np 2 and 3 (outputs up to 3 MB)"

# Where jobs ran: every rank took some (each job prints its rank), {%}
# within -j; the joblog's Host is ':' for rank 0's jobs, else a host name.
run mpi 3 run -j 2 --joblog jl -k 'sleep 0.05; echo {#} {%} $OMPI_COMM_WORLD_RANK' ::: $(seq 1 30)
expect_rc 0 "spread"
[ "$(cut -d' ' -f3 "$T/.out" | sort -u | tr '\n' ' ')" = "0 1 2 " ] \
    || fail "spread: ranks that ran jobs: $(cut -d' ' -f3 "$T/.out" | sort | uniq -c | tr '\n' ' ')"
awk '$2 < 1 || $2 > 2 { exit 1 }' "$T/.out" || fail "spread: {%} outside 1..2: $(sort -u -k2 "$T/.out" | head -3)"
[ "$(sed 1d jl | wc -l)" = 30 ] || fail "spread: joblog has $(sed 1d jl | wc -l) lines"
on0=$(awk '$3 == 0 { print $1 }' "$T/.out" | sort -n | tr '\n' ' ')
log0=$(sed 1d jl | awk -F'\t' '$2 == ":" { print $1 }' | sort -n | tr '\n' ' ')
[ "$on0" = "$log0" ] || fail "spread: joblog Host ':' for jobs $log0, rank 0 ran $on0"
sed 1d jl | awk -F'\t' '$2 == "" { bad = 1 } END { exit bad }' || fail "spread: a joblog line without a host"
ok "jobs on every rank; joblog Host ':' for rank 0's, the rank's host for others"

# --- without -k: each job's output in one piece, nothing lost
run mpi 3 run 'for i in $(seq 1 3000); do echo {}-$i; done; echo {}-err >&2' ::: a b c d e f g h
expect_rc 0 "groups"
groups=$(cut -d- -f1 "$T/.out" | uniq | wc -l)
[ "$groups" = 8 ] || fail "groups: $groups runs of lines, expected 8 (interleaved output)"
[ "$(wc -l <"$T/.out")" = 24000 ] || fail "groups: $(wc -l <"$T/.out") lines"
[ "$(sort "$T/.err" | tr '\n' ' ')" = "a-err b-err c-err d-err e-err f-err g-err h-err " ] \
    || fail "groups: stderr $(tr '\n' ' ' <"$T/.err")"
ok "without -k: 8 jobs of 3000 lines, each job's lines together"

# --- more than 100 failures: 101; the failure lines all there
run mpi 3 run 'exit 1' ::: $(seq 1 120)
expect_rc 101 "120 failures"
[ "$(grep -c 'exited with 1' "$T/.err")" = 120 ] || fail "120 failures: $(grep -c 'exited with 1' "$T/.err") lines"
ok "120 failing jobs: status 101, 120 failure lines"

# --- --joblog and --resume: the second run runs only what the first did not
run mpi 3 run --joblog jr -k 'echo {}' ::: 1 2 3 4 5
expect_rc 0 "joblog"
run mpi 3 run --joblog jr --resume -k 'echo again {}' ::: 1 2 3 4 5 6 7
[ "$(tr '\n' ' ' <"$T/.out")" = "again 6 again 7 " ] || fail "--resume ran: $(tr '\n' ' ' <"$T/.out")"
[ "$(sed 1d jr | cut -f1 | sort -n | tr '\n' ' ')" = "1 2 3 4 5 6 7 " ] || fail "--resume: joblog $(cut -f1 jr | tr '\n' ' ')"
ok "--joblog and --resume across ranks"

# --- --halt
t0=$(date +%s%N)
run mpi 3 run -j 1 --halt now,fail=1 'sleep {}; exit 3' ::: 0.2 20.3 20.3 20.3 20.3 20.3
took=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_rc 3 "--halt now,fail=1"
expect_err "--halt: stopped after" "--halt now"
[ "$took" -lt 10000 ] || fail "--halt now: running jobs on other ranks not killed (${took} ms)"
pgrep -f 'sleep 20[.]3' >/dev/null && fail "--halt now: a job left running"
# (the failing job runs 1 s, so that the other ranks have started theirs)
run mpi 3 run -j 1 --halt soon,fail=1 'sleep {}; echo {} >>hs; exit 5' ::: 1 2.5 2.5 0.3 0.3 0.3
expect_rc 5 "--halt soon,fail=1"
[ "$(sort hs | tr '\n' ' ')" = "1 2.5 2.5 " ] || fail "--halt soon: ran $(sort hs | tr '\n' ' ') (the running ones end, none starts)"
ok "--halt now kills the jobs of every rank, soon lets them end and starts none"

# --- --timeout, --retries: on the rank that runs the job
run mpi 3 run -k --timeout 0.5 'sleep {}; echo slept {}' ::: 0.1 5 0.1 5
expect_rc 2 "--timeout"
[ "$(grep -c 'timed out' "$T/.err")" = 2 ] || fail "--timeout: $(cat "$T/.err")"
[ "$(tr '\n' ' ' <"$T/.out")" = "slept 0.1 slept 0.1 " ] || fail "--timeout: stdout $(cat "$T/.out")"
run mpi 3 run -k --retries 3 'echo try >>r{}; [ $(wc -l <r{}) -ge 2 ]' ::: a b c
expect_rc 0 "--retries"
[ "$(cat ra rb rc | wc -l)" = 6 ] || fail "--retries: $(cat ra rb rc | wc -l) attempts, expected 2 each"
ok "--timeout and --retries on the ranks"

# --- arguments: a pipe (read as it comes), -a, -0; --pipe and --dry-run on rank 0
run bash -c "seq 1 50 | mpirun -q --oversubscribe -np 3 '$PM_MPI_BIN' run -k echo x"
[ "$(seq 1 50 | sed 's/^/x /' | md5sum)" = "$(md5sum <"$T/.out")" ] || fail "arguments from a pipe"
printf 'a b\0c\nd\0' >nul
run mpi 3 run -k -0 -a nul echo '@{}@'
[ "$(cat "$T/.out")" = "$(printf '@a b@\n@c\nd@')" ] || fail "-0 -a: $(cat "$T/.out")"
run bash -c "seq 1 1000 | mpirun -q --oversubscribe -np 3 '$PM_MPI_BIN' run --pipe --block 1k -k wc -l"
[ "$(awk '{ s += $1 } END { print s }' "$T/.out")" = 1000 ] || fail "--pipe: $(cat "$T/.out")"
run mpi 3 run --dry-run -k echo ::: a b
[ "$(cat "$T/.out")" = "$(printf 'echo a\necho b')" ] || fail "--dry-run: $(cat "$T/.out")"
ok "arguments from a pipe, -a with -0; --pipe and --dry-run on rank 0"

# --- as one process where it differs from a batch: an argument error lets
# the jobs already started end (their outputs written); a job killed by
# --halt now keeps what it printed; jobs see no descriptor of MPI's.
{ seq 1 6; head -c 2000000 /dev/zero | tr '\0' x; echo; } >longargs
run mpi 2 run -j 1 -k -a longargs 'sleep 0.3; echo {}'
expect_rc 255 "an argument too long"
expect_err "line 7: an argument longer than" "an argument too long"
[ "$(tr '\n' ' ' <"$T/.out")" = "1 2 3 4 5 6 " ] || fail "an argument too long: ran $(tr '\n' ' ' <"$T/.out")"
run mpi 2 run -j 1 -k --halt now,fail=1 'echo start{}; sleep {}; exit 1' ::: 3 0.3
expect_rc 1 "--halt now: output of the killed job"
[ "$(tr '\n' ' ' <"$T/.out")" = "start3 start0.3 " ] || fail "--halt now: a killed job's output lost: $(tr '\n' ' ' <"$T/.out")"
run mpi 3 run -k 'ls /proc/self/fd | sort -n | tr "\n" " "; echo; : {}' ::: 1 2 3 4
[ "$(sort -u "$T/.out")" = "0 1 2 3 " ] || fail "descriptors a job inherits: $(sort -u "$T/.out")"
ok "an argument error lets started jobs end; a killed job's output kept; no MPI descriptor in jobs"

# Outputs that wait cost no descriptor each: -k behind a slow first job,
# 60 outputs of 2.2 MB wait on 2 ranks with 100 descriptors allowed.
run bash -c "ulimit -n 100; mpirun -q --oversubscribe -np 2 '$PM_MPI_BIN' run -j 6 -k \
    'if [ {} = 1 ]; then sleep 2; fi; head -c 1100000 /dev/zero; head -c 1100000 /dev/zero >&2' \
    ::: \$(seq 60)"
expect_rc 0 "60 outputs waiting, ulimit -n 100"
[ "$(wc -c <"$T/.out")" = 66000000 ] || fail "60 outputs waiting: $(wc -c <"$T/.out") bytes of stdout"
[ "$(wc -c <"$T/.err")" = 66000000 ] || fail "60 outputs waiting: $(wc -c <"$T/.err") bytes of stderr"
ok "60 outputs of 2.2 MB waiting behind a slow job within 100 descriptors"

# --- failure: a rank cannot keep a job's output (its $TMPDIR is gone)
# Outputs past 1 MiB go to a file in $TMPDIR; every rank's TMPDIR names a
# missing directory: the run fails with the cause, status 255, and stops.
run mpirun -q --oversubscribe -np 3 env TMPDIR="$T/missing" "$PM_MPI_BIN" run -k \
    'head -c 1500000 /dev/zero' ::: 1 2 3 4
expect_rc 255 "output not kept"
expect_err "cannot run it or keep its output (in $T/missing): No such file or directory" "output not kept"
grep -q "^pmap run: job [1-4] on rank [0-2] (" "$T/.err" || fail "output not kept: the job and rank unnamed"
# 500 KB outputs fit the capture's memory but wait in the hold file.
run mpirun -q --oversubscribe -np 3 env TMPDIR="$T/missing" "$PM_MPI_BIN" run -k \
    'head -c 500000 /dev/zero' ::: 1 2 3 4
expect_rc 255 "output not held"
expect_err "cannot run it or keep its output (in $T/missing): No such file or directory" "output not held"
ok "an output a rank cannot keep (captured or waiting) fails the run with the cause"

# --- signals: mpirun interrupted; every job's process group goes with it
mkdir sig
( cd sig && exec mpirun -q --oversubscribe -np 3 "$PM_MPI_BIN" run -j 2 \
    'echo $$ >>pids; sleep 300{}' ::: 1 2 3 4 5 6 ) >/dev/null 2>&1 &
mp=$!
for _ in $(seq 1 100); do [ "$(cat sig/pids 2>/dev/null | wc -l)" = 6 ] && break; sleep 0.1; done
[ "$(wc -l <sig/pids)" = 6 ] || fail "signal: $(wc -l <sig/pids) jobs started, expected 6"
kill -INT $mp
for _ in $(seq 1 100); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
kill -0 $mp 2>/dev/null && fail "signal: mpirun still running 10 s after SIGINT"
sleep 0.5
pgrep -f 'sleep 300[1-6]' >/dev/null && { pkill -f 'sleep 300[1-6]'; fail "signal: a job's child outlived the run"; }
ok "SIGINT to mpirun: ranks and every job's children gone"

# A rank killed mid-run ends the job (mpirun aborts it) with a failure.
mpi 3 run -j 1 'sleep {}' ::: 0.1 0.1 29.7 29.7 29.7 29.7 >/dev/null 2>&1 &
mp=$!
victim=
for _ in $(seq 1 100); do              # rank 2, once its job runs
    for p in $(pgrep -f "^$PM_MPI_BIN run -j 1"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=2 && victim=$p
    done
    [ -n "$victim" ] && pgrep -f 'sleep 29[.]7' >/dev/null && break
    sleep 0.1
done
[ -n "$victim" ] || fail "a rank killed: rank 2 not found"
kill -9 "$victim"
for _ in $(seq 1 150); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
kill -0 $mp 2>/dev/null && fail "a rank killed: the run did not end in 15 s"
wait $mp && fail "a rank killed: mpirun exited 0"
pkill -f 'sleep 29[.]7' || true
ok "a rank killed: the job ends"
