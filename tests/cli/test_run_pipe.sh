#!/usr/bin/env bash
# pmap run --pipe and --pipepart: blocks of whole records, outputs in input
# order, binary data unchanged (all 256 byte values, NULs; a one- and a
# multi-byte --recend), a record longer than a block kept whole, counts
# that add up to wc -l's (and GNU parallel's), empty input, failing
# blocks counted, errors for a missing file and a bad command line.
. "$(dirname "$0")/lib.sh"
cd "$T"
have_parallel=0
command -v parallel >/dev/null && parallel --version 2>/dev/null | grep -q 'GNU parallel' && have_parallel=1

gen_text text 2000000 7
python3 -c '
import random, sys
r = random.Random(3)
out = bytearray()
for i in range(3000):
    out += bytes(range(256)) if i % 7 == 0 else bytes(r.getrandbits(8) for _ in range(r.randint(0, 300)))
    out += b"\0\0" if i % 5 == 0 else b""
sys.stdout.buffer.write(bytes(out))' >bin
[ "$(tr -d '\0' <bin | wc -c)" -lt "$(wc -c <bin)" ] || fail "bin has no NUL"

# --- order and bytes: cat over small blocks gives back the input
for mode in pipe pipepart; do
    if [ $mode = pipe ]; then src=(--pipe); inp=text; else src=(--pipepart -a text); inp=/dev/null; fi
    pmap run "${src[@]}" -j 4 --block 10k cat <$inp >out || fail "$mode cat: status"
    cmp -s text out || fail "$mode cat: output differs from the input"
done
ok "--pipe and --pipepart cat: the input back, in order"

for r in zq $'\377' $'\n'; do
    for mode in pipe pipepart; do
        if [ $mode = pipe ]; then src=(--pipe); inp=bin; else src=(--pipepart -a bin); inp=/dev/null; fi
        pmap run "${src[@]}" -j 3 --block 2k --recend "$r" cat <$inp >out || fail "$mode binary: status"
        cmp -s bin out || fail "$mode binary, --recend $(printf %q "$r"): output differs"
    done
done
ok "binary data (256 byte values, NULs) unchanged, one- and two-byte --recend"

# --- each block ends at a record end; records spanning blocks never split
python3 -c '
import random
r = random.Random(5)
for i in range(400):
    print("x" * (r.randint(0, 200) if i % 50 else 25000))' >long
awk '{print length}' long >want
pmap run --pipe --block 1k -j 3 'awk "{print length}"' <long >out || fail "long records: status"
cmp -s want out || fail "--pipe: a record was split (line lengths differ)"
pmap run --pipepart -a long --block 1k -j 3 'awk "{print length}"' >out || fail "long records: status"
cmp -s want out || fail "--pipepart: a record was split (line lengths differ)"
pmap run --pipe --block 1k --recend x -j 2 'tail -c 1; echo' <long >out || fail "--recend x"
[ "$(sort -u out | tr -d '\n')" = x ] || [ "$(sort -u out | tr '\n' ' ')" = " x " ] || fail "--recend x: a block ends elsewhere: $(sort -u out | head -3)"
ok "records longer than a block (25000 bytes, --block 1k) stay whole"

# --- counts add up; the same total as GNU parallel's
want=$(wc -l <text)
for mode in pipe pipepart; do
    if [ $mode = pipe ]; then src=(--pipe); inp=text; else src=(--pipepart -a text); inp=/dev/null; fi
    pmap run "${src[@]}" -j 2 --block 100k wc -l <$inp >counts || fail "$mode wc -l: status"
    [ "$(awk '{s+=$1} END {print s}' counts)" = "$want" ] || fail "$mode wc -l: total $(awk '{s+=$1} END {print s}' counts), expected $want"
    [ "$(wc -l <counts)" -ge 19 ] || fail "$mode wc -l: only $(wc -l <counts) blocks"
done
if [ $have_parallel = 1 ]; then
    got=$(parallel --will-cite --pipepart -a text -j 2 --block 100k wc -l | awk '{s+=$1} END {print s}')
    [ "$got" = "$want" ] || fail "parallel's own total differs?"
fi
ok "wc -l per block adds up to wc -l of the file ($want)"

# --- {#} numbers the blocks; empty input; failing blocks; errors
pmap run --pipe --block 100k 'echo {#}' <text >out
[ "$(tr '\n' ' ' <out)" = "$(seq "$(wc -l <out)" | tr '\n' ' ')" ] || fail "{#}: $(tr '\n' ' ' <out)"
run pmap run --pipe wc -l </dev/null
expect_rc 0 "empty input"; [ ! -s "$T/.out" ] || fail "empty input: a job ran"
run pmap run --pipe --block 100k 'cat >/dev/null; exit 3' <text
expect_rc "$(wc -l <out)" "failing blocks"; expect_err "exited with 3" "failing blocks"
run pmap run --pipepart -a missing wc -l
expect_rc 255 "missing file"; expect_err "missing" "missing file"
run pmap run --pipepart wc -l
expect_rc 255 "--pipepart without -a"; expect_err "needs -a" "--pipepart without -a"
run pmap run --pipe wc ::: a
expect_rc 255 "--pipe with :::"
ok "{#} numbers blocks; empty input runs nothing; failures counted; bad input reported"

# --- --halt now kills the running blocks' jobs; soon lets them end
t0=$(date +%s%N)
run pmap run --pipe -j 2 --block 100k --halt now,fail=1 'cat >/dev/null; [ {#} = 1 ] && exit 4; sleep 10' <text
took=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_rc 4 "--pipe --halt now,fail=1"; [ "$took" -lt 3000 ] || fail "--pipe --halt now: took ${took} ms"
run pmap run --pipe -j 2 --block 100k --halt soon,fail=1 'cat >/dev/null; [ {#} = 1 ] && exit 4; sleep 0.3; echo {#}' <text
expect_rc 4 "--pipe --halt soon,fail=1"; [ "$(cat "$T/.out")" = 2 ] || fail "--pipe --halt soon: $(cat "$T/.out")"
ok "--pipe --halt now kills running blocks, soon lets them end"

# --- SIGTERM during --pipe: the running blocks' jobs killed, 143
tag=$(( ($$ * 32768 + RANDOM) % 100000000 ))
env --default-signal=INT "$PM_BIN" run --pipe -j 2 --block 10k "sleep 66.$tag; cat >/dev/null" <text >/dev/null 2>"$T/.err" &
pid=$!
sleep 0.5
[ "$(pgrep -fc "^sleep 66.$tag")" = 2 ] || fail "--pipe SIGTERM: jobs not running"
kill -TERM $pid; wait $pid; rc=$?
expect_rc 143 "--pipe SIGTERM"
sleep 0.2
[ "$(pgrep -fc "^sleep 66.$tag")" = 0 ] || fail "--pipe SIGTERM: job processes left"
ok "SIGTERM during --pipe kills the running jobs; exit 143"
