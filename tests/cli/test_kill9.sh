#!/usr/bin/env bash
# kill -9 at random moments while pmap compresses (then decompresses) a
# directory, repeated: afterwards every file is either its original or a
# complete output that decompresses to the original (both may exist: output
# committed, input not yet removed), nothing is lost, and no other file
# (a temporary under a final or visible name) is left. A rerun with -f then
# completes the job.
. "$(dirname "$0")/lib.sh"
cd "$T"
ROUNDS=${PM_KILL_ROUNDS:-4}
mkdir -p pristine/sub/deeper
# About 6 MB that gzip -9 compresses at ~2 MB/s: a run of 1-2 s on 2 cores.
for i in $(seq 1 12); do gen_words "pristine/t$i" $((i * 60000)) "$i"; done
for i in 1 2 3; do gen_words "pristine/sub/s$i" 400000 $((20 + i)); done
gen_random pristine/sub/deeper/r 500000 30
: >pristine/sub/empty

# check DIR MODE: MODE is gz (compressing: F or F.gz) or plain (decompressing).
# Prints "done pending both".
check() {
    python3 - pristine "$1" "$2" <<'EOF2'
import gzip, os, sys
ref, work, mode = sys.argv[1:]
want = {}
for d, _, fs in os.walk(ref):
    for f in fs:
        p = os.path.join(d, f)
        want[os.path.relpath(p, ref)] = open(p, 'rb').read()
seen, bad, done, pending, both = set(), [], 0, 0, 0
for rel, data in want.items():
    plain, gz = os.path.join(work, rel), os.path.join(work, rel + '.gz')
    has_plain, has_gz = os.path.exists(plain), os.path.exists(gz)
    seen.update([rel, rel + '.gz'])
    if has_plain and open(plain, 'rb').read() != data:
        bad.append('%s: differs from the original' % rel)
    if has_gz:
        try:
            if gzip.open(gz).read() != data:
                bad.append('%s.gz: decompresses to something else' % rel)
        except Exception as e:
            bad.append('%s.gz: not a complete gzip file (%s)' % (rel, e))
    if not has_plain and not has_gz:
        bad.append('%s: lost (neither it nor its .gz exists)' % rel)
    fresh = has_gz if mode == 'gz' else has_plain
    stale = has_plain if mode == 'gz' else has_gz
    done += fresh and not stale; pending += stale and not fresh; both += fresh and stale
for d, _, fs in os.walk(work):
    for f in fs:
        rel = os.path.relpath(os.path.join(d, f), work)
        if rel not in seen:
            bad.append('stray file: %r' % rel)
if bad:
    print('\n'.join(bad), file=sys.stderr)
    sys.exit(1)
print(done, pending, both)
EOF2
}

# kill_at MAXMS CMD...: runs pmap CMD in the background and kill -9s it
# after a random delay of 10 to MAXMS milliseconds.
kill_at() {
    local max=$1 delay pid
    shift
    "$PM_BIN" "$@" >/dev/null 2>&1 &
    pid=$!
    delay=$(printf '0.%03d' $((10 + RANDOM % (max - 10))))
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "$delay"
}

partial=0
for round in $(seq 1 "$ROUNDS"); do
    rm -rf w && cp -a pristine w
    delay=$(kill_at 1200 compress -9 -p2 w)
    state=$(check w gz) || fail "compress round $round (killed after ${delay}s): state above"
    read -r done pending both <<<"$state"
    [ "$done" -gt 0 ] && [ $((pending + both)) -gt 0 ] && partial=$((partial + 1))
    echo "  compress round $round: killed after ${delay}s: $done done, $pending pending, $both both"
    # Status 2: the .gz files already there are skipped with a warning.
    run pmap compress -f w
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "compress -f after kill (round $round): status $rc"
    read -r done pending both <<<"$(check w gz)" || fail "after the rerun"
    [ "$pending" = 0 ] && [ "$both" = 0 ] || fail "rerun left $pending pending, $both both"

    delay=$(kill_at 80 decompress -p2 w)
    state=$(check w plain) || fail "decompress round $round (killed after ${delay}s): state above"
    read -r done pending both <<<"$state"
    [ "$done" -gt 0 ] && [ $((pending + both)) -gt 0 ] && partial=$((partial + 1))
    echo "  decompress round $round: killed after ${delay}s: $done done, $pending pending, $both both"
    run pmap decompress -f w
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "decompress -f after kill (round $round): status $rc"
    snapshot w | cmp -s - <(snapshot pristine) || fail "round $round: tree differs at the end"
done
ok "$ROUNDS rounds of kill -9 during compress and decompress: nothing lost, nothing stray ($partial kills caught a run half-way)"
[ "$partial" -gt 0 ] || echo "note: no kill landed mid-run on this machine (too fast?)"
