#!/usr/bin/env bash
# test_map_races.sh - files cut short, grown and rewritten while `pmap
# checksum` maps them (PM_PL_MAP_INPUT): pmap never dies of SIGBUS; each run
# either sums a state the file really had or fails naming the file as
# changed. Also: a sent SIGBUS still kills pmap (its handler passes on what
# is not a fault in its own windows), and pipes and /proc files are read.
. "$(dirname "$0")/lib.sh"

ROUNDS=${PM_MAPRACE_ROUNDS:-20}
cd "$T"
gen_random src 6000000 41
half=3000000
head -c "$half" src >half
cat half src >halfsrc
cat src src >srcsrc

changer() {
    while [ ! -e stop ]; do
        cp src f
        truncate -s "$half" f
        cat src >>f
        cp src f
        cat src >>f
    done 2>/dev/null
}

# A sum is right if it is that of some prefix of a content f had.
plausible() {
    python3 - "$1" <<'PY'
import sys, zlib
crc, size, _ = sys.argv[1].split(None, 2)
crc, size = int(crc, 16), int(size)
for name in ("src", "halfsrc", "srcsrc"):
    data = open(name, "rb").read()
    if size <= len(data) and zlib.crc32(data[:size]) == crc:
        sys.exit(0)
sys.exit(1)
PY
}

cp src f
changer & CH=$!
PM_CLEANUP+=("touch '$T/stop'; wait $CH")
good=0 changed=0
for r in $(seq 1 "$ROUNDS"); do
    run pmap checksum -j2 -b 64K f
    case $rc in
    0)  plausible "$(cat "$T/.out")" || fail "round $r: a sum of no state f had: $(cat "$T/.out")"
        good=$((good + 1)) ;;
    1)  grep -q "f: .*changed" "$T/.err" || fail "round $r: error does not say f changed: $(cat "$T/.err")"
        changed=$((changed + 1)) ;;
    *)  fail "round $r: exit status $rc (128+7 is SIGBUS)" ;;
    esac
done
touch stop; wait $CH
ok "$ROUNDS runs while f was cut, grown and rewritten: $good sums of real states, $changed 'changed' errors, no crash"

# A SIGBUS sent to pmap (not a fault in its windows) still kills it.
cp src f
sleep 3 | "$PM_BIN" checksum f - >/dev/null 2>&1 &
PM=$!                         # pmap: the last of the pipeline
sleep 1                       # f is summed (mapped); stdin is waited on
kill -BUS "$PM"
wait "$PM" 2>/dev/null; brc=$?
want=135                      # under a sanitizer its handler reports and exits
case "${PM_SANITIZE:-}" in *address*) want=1;; *thread*) want=66;; esac
[ "$brc" = "$want" ] || fail "a sent SIGBUS: exit status $brc, expected $want"
ok "a sent SIGBUS kills pmap as before"

cat src | pmap checksum >"$T/.out" 2>"$T/.err"; rc=${PIPESTATUS[1]}
expect_rc 0 "a pipe on stdin"
[ "$(cat "$T/.out")" = "$(crc32 src)  6000000  -" ] || fail "pipe line: $(cat "$T/.out")"
cp /proc/version version.txt 2>/dev/null || skip "no /proc/version"
run pmap checksum /proc/version; expect_rc 0 "/proc/version"
[ "$(cut -c1-8 "$T/.out")" = "$(crc32 version.txt)" ] || fail "/proc/version: $(cat "$T/.out")"
ok "a pipe and a /proc file are read"
