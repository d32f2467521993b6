#!/usr/bin/env bash
# SIGINT, SIGTERM and SIGHUP stop pmap promptly, leave no temporary file,
# keep finished files finished and unfinished ones as they were, and end
# with status 128+signo (130, 143, 129) -- also when pmap is blocked reading
# an idle pipe.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir ref
# Big enough that no machine finishes -9 on it before the signals below
# (about 100 MB at level 9 takes seconds even on two fast cores).
datagen="$(dirname "$PM_BIN")/pmap-datagen"
[ -x "$datagen" ] || fail "no pmap-datagen next to $PM_BIN"
for i in 1 2 3 4 5 6; do "$datagen" file --kind text --size 16M --seed "$i" "ref/f$i" || fail "datagen"; done

# stop_after SECS SIG CMD...: runs CMD in the background, sends SIG after
# SECS, waits; sets rc and took (seconds from the signal to the exit).
# A non-interactive shell starts background jobs with SIGINT ignored, and
# pmap keeps ignored signals ignored (as gzip does; tested at the end), so
# the job gets the default disposition back, as from a terminal.
stop_after() {
    local secs=$1 sig=$2 pid t0
    shift 2
    env --default-signal=INT,HUP "$@" <&0 >"$T/.out" 2>"$T/.err" &
    pid=$!
    sleep "$secs"
    t0=$(date +%s%N)
    kill "-$sig" "$pid"
    wait "$pid" 2>/dev/null; rc=$?
    took=$(( ($(date +%s%N) - t0) / 1000000 ))
}

# state DIR: each ref file is either intact or has a complete .gz (not
# both missing), and nothing else is in DIR. Prints "done pending".
state() {
    local done=0 pending=0 f
    for f in ref/*; do
        f=${f#ref/}
        if [ -e "$1/$f.gz" ]; then gz_same "$1/$f.gz" "ref/$f"; done=$((done + 1)); fi
        if [ -e "$1/$f" ]; then cmp -s "$1/$f" "ref/$f" || fail "$1/$f changed"; pending=$((pending + 1)); fi
        [ -e "$1/$f" ] || [ -e "$1/$f.gz" ] || fail "$1/$f lost"
    done
    local n; n=$(find "$1" -mindepth 1 -printf x | wc -c)
    [ "$n" = $((done + pending)) ] || fail "stray files in $1: $(ls -A "$1" | tr '\n' ' ')"
    echo "$done $pending"
}

cp -a ref w
stop_after 0.8 INT "$PM_BIN" compress -9 -p2 --json w
[ "$rc" = 130 ] || fail "SIGINT: status $rc, expected 130"
[ "$took" -lt 2000 ] || fail "SIGINT: exit took ${took} ms"
read -r done pending <<<"$(state w)"
[ "$pending" -gt 0 ] || fail "SIGINT came after the end (nothing pending): make the job longer"
grep -q '"signal":2' "$T/.err" || fail "--json after SIGINT: $(cat "$T/.err")"
ok "SIGINT during compress: status 130 after ${took} ms, $done done, $pending intact, no temporary left"
run pmap compress w; [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "rerun after SIGINT: $rc"
read -r done pending <<<"$(state w)"; [ "$pending" = 0 ] || fail "rerun left $pending"

rm -rf w && cp -a ref w
stop_after 0.6 TERM "$PM_BIN" compress -9 -p1 -k w
[ "$rc" = 143 ] || fail "SIGTERM: status $rc, expected 143"
[ "$took" -lt 2000 ] || fail "SIGTERM: exit took ${took} ms"
[ "$(find w -name '*.gz' | wc -l)" -lt 6 ] || fail "SIGTERM came after the end"
for f in w/*.gz; do [ -e "$f" ] && gz_same "$f" "ref/$(basename "$f" .gz)"; done
[ -z "$(find w -name '*.pmtmp*' -o -name '.*' -type f)" ] || fail "temporary files left"
ok "SIGTERM during compress -k: status 143 after ${took} ms, outputs complete or absent"

rm -rf w && cp -a ref w && gzip -9 w/f1 && cat w/f1.gz w/f1.gz w/f1.gz >w/big.gz
# Blocked reading an idle pipe: a writer that sends a little, then sleeps.
mkfifo pipe
(cat w/big.gz; sleep 30) >pipe &
writer=$!
PM_CLEANUP+=("kill $writer 2>/dev/null")
stop_after 0.5 TERM "$PM_BIN" decompress -c <pipe
kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null
[ "$rc" = 143 ] || fail "SIGTERM while reading a pipe: status $rc"
[ "$took" -lt 2000 ] || fail "SIGTERM while reading a pipe took ${took} ms"
(sleep 30) >pipe &
writer=$!
PM_CLEANUP+=("kill $writer 2>/dev/null")
stop_after 0.3 INT "$PM_BIN" compress -c <pipe
kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null
[ "$rc" = 130 ] || fail "SIGINT while reading an idle pipe: status $rc"
[ "$took" -lt 2000 ] || fail "SIGINT while reading an idle pipe took ${took} ms"
ok "signals stop pmap blocked on an idle stdin pipe promptly"

rm -rf w && cp -a ref w
stop_after 0.5 HUP "$PM_BIN" compress -9 -p2 w
[ "$rc" = 129 ] || fail "SIGHUP: status $rc"
state w >/dev/null
ok "SIGHUP: status 129, nothing lost"

rm -rf w && cp -a ref w && "$PM_BIN" compress -1 w && cp -a w gz.ref
stop_after 0.05 INT "$PM_BIN" decompress -p2 w
[ "$rc" = 130 ] || [ "$rc" = 0 ] || fail "SIGINT during decompress: status $rc"
for f in ref/*; do
    b=${f#ref/}
    [ -e "w/$b" ] && { cmp -s "w/$b" "$f" || fail "decompress: w/$b incomplete"; }
    [ -e "w/$b.gz" ] && { cmp -s "w/$b.gz" "gz.ref/$b.gz" || fail "decompress: w/$b.gz changed"; }
    [ -e "w/$b" ] || [ -e "w/$b.gz" ] || fail "decompress: $b lost"
done
ok "SIGINT during decompress (status $rc): outputs complete, inputs intact"

# Signals ignored by whoever started pmap stay ignored: a background job of
# a script (SIGINT ignored by the shell) and nohup (SIGHUP) run to the end.
rm -rf w && cp -a ref w
"$PM_BIN" compress -6 -p2 w >"$T/.out" 2>"$T/.err" &
pid=$!
sleep 0.3; kill -INT "$pid" || fail "finished before SIGINT: make the job longer"; wait "$pid"; rc=$?
[ "$rc" = 0 ] || fail "background job with SIGINT ignored: status $rc"
[ "$(find w -name '*.gz' | wc -l)" = 6 ] || fail "background job did not finish"
rm -rf w && cp -a ref w
nohup "$PM_BIN" compress -6 -p2 w >"$T/.out" 2>"$T/.err" &
pid=$!
sleep 0.3; kill -HUP "$pid" || fail "finished before SIGHUP: make the job longer"; wait "$pid"; rc=$?
[ "$rc" = 0 ] || fail "nohup with SIGHUP: status $rc"
[ "$(find w -name '*.gz' | wc -l)" = 6 ] || fail "nohup job did not finish"
ok "signals ignored by the parent (background job, nohup) stay ignored"
