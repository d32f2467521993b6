#!/usr/bin/env bash
# pmap-datagen end to end: same seed gives the same bytes (and the committed
# data/sample), another seed other bytes; sizes are exact; trees have the
# asked number of files in nested directories with a log-normal size spread;
# text and logs compress between 3:1 and 5:1 with gzip -6; bad arguments
# fail with a message naming the problem. pmap-datagen is built next to pmap
# (tools/pmap-datagen); PM_DATAGEN overrides.
set -u
export LC_ALL=C
DG=${PM_DATAGEN:-$(dirname "${PM_BIN:?PM_BIN must name the pmap binary}")/pmap-datagen}
SRC=${PM_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -x "$DG" ] || { echo "FAIL: $DG is not executable" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/pmap-datagen.XXXXXX")
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
cd "$T"

fail() { echo "FAIL: $*" >&2; [ -s .err ] && { echo "--- stderr:" >&2; head -c 2000 .err >&2; }; exit 1; }
ok() { echo "ok - $*"; }
run() { "$@" >.out 2>.err; rc=$?; }
size_of() { stat -c %s "$1"; }
KINDS="text log csv jsonl binary"

# ---- determinism and exact sizes ----
for k in $KINDS; do
    for n in 0 1 4095 1000003; do
        "$DG" file --kind "$k" --size "$n" --seed 7 "a.$k.$n" || fail "$k $n bytes: exit $?"
        [ "$(size_of "a.$k.$n")" = "$n" ] || fail "$k: asked $n bytes, got $(size_of "a.$k.$n")"
    done
    "$DG" file --kind "$k" --size 1000003 --seed 7 "b.$k" || fail "$k again"
    cmp -s "a.$k.1000003" "b.$k" || fail "$k: same seed, different bytes"
    "$DG" file --kind "$k" --size 1000003 --seed 7 - >"c.$k" || fail "$k to stdout"
    cmp -s "a.$k.1000003" "c.$k" || fail "$k: stdout differs from the file"
    head -c 4095 "b.$k" | cmp -s - "a.$k.4095" || fail "$k: a shorter size is not a prefix"
    "$DG" file --kind "$k" --size 1000003 --seed 8 "d.$k" || fail "$k seed 8"
    cmp -s "a.$k.1000003" "d.$k" && fail "$k: seeds 7 and 8 gave the same bytes"
done
ok "each kind: same seed same bytes (file and stdout), other seed other bytes, sizes 0..1000003 exact"

run "$DG" file --kind text --size 1M --seed 0x2a same-hex
"$DG" file --kind text --size 1M --seed 42 same-dec || fail "seed 42"
cmp -s same-hex same-dec || fail "--seed 0x2a and --seed 42 differ"
[ "$(size_of same-dec)" = 1048576 ] || fail "1M is not 1048576 bytes"
ok "sizes with suffixes (1M = 1048576), hex seeds"

# The committed sample is reproducible byte for byte: this pins the output
# of this version of the generator (and any machine running the test).
PMAP_DATAGEN=$DG bash "$SRC/data/gen" check >.out 2>.err || fail "data/sample differs from the generator's output"
ok "data/gen check: data/sample regenerates byte for byte"

# ---- compressibility ----
for k in text log; do
    for seed in 1 2; do
        "$DG" file --kind "$k" --size 8M --seed "$seed" "z.$k.$seed" || fail "$k 8M"
        c=$(gzip -6 -c "z.$k.$seed" | wc -c)
        ratio=$(( 8388608 * 100 / c ))
        [ "$ratio" -ge 300 ] && [ "$ratio" -le 500 ] ||
            fail "$k seed $seed: gzip -6 ratio $ratio/100, outside 3:1..5:1"
        echo "   $k seed $seed: gzip -6 ratio $((ratio / 100)).$(printf %02d $((ratio % 100))):1"
    done
done
ok "text and log compress between 3:1 and 5:1 with gzip -6"

# ---- trees ----
"$DG" tree --files 2000 --seed 5 t1 || fail "tree"
"$DG" tree --files 2000 --seed 5 t2 || fail "tree again"
diff -r t1 t2 >/dev/null || fail "tree: same seed, different trees"
"$DG" tree --files 2000 --seed 6 t3 || fail "tree seed 6"
diff -r t1 t3 >/dev/null && fail "tree: seeds 5 and 6 gave the same tree"
[ "$(find t1 -type f | wc -l)" = 2000 ] || fail "tree: $(find t1 -type f | wc -l) files, wanted 2000"
[ "$(find t1 -mindepth 3 -type f | wc -l)" -gt 1000 ] || fail "tree: too few files two levels down"
[ "$(find t1 -maxdepth 1 -type f | wc -l)" -gt 20 ] || fail "tree: no files at the top"
for ext in txt log csv jsonl bin; do
    [ "$(find t1 -name "*.$ext" | wc -l)" -gt 100 ] || fail "tree: too few .$ext files"
done
find t1 -type f -printf '%s\n' | sort -n >sizes
read -r n lo p10 p50 p90 hi at_lo at_hi < <(awk '{a[NR]=$1; if ($1==1024) l++; if ($1==65536) h++}
    END {print NR, a[1], a[int(NR*.1)], a[int(NR*.5)], a[int(NR*.9)], a[NR], l+0, h+0}' sizes)
echo "   2000 files: min $lo p10 $p10 median $p50 p90 $p90 max $hi; $at_lo at 1K, $at_hi at 64K"
[ "$lo" -ge 1024 ] && [ "$hi" -le 65536 ] || fail "tree: sizes outside 1K..64K"
[ "$p10" -lt 4096 ] && [ "$p50" -gt 5000 ] && [ "$p50" -lt 13000 ] && [ "$p90" -gt 20000 ] ||
    fail "tree: size spread not log-normal-like around 8K"
[ "$at_lo" -gt 10 ] && [ "$at_lo" -lt 150 ] && [ "$at_hi" -gt 10 ] && [ "$at_hi" -lt 150 ] ||
    fail "tree: clamping at the bounds is off ($at_lo, $at_hi)"
ok "tree: 2000 files, nested, all kinds, log-normal sizes in 1K..64K, reproducible"

"$DG" tree --size 5M --min 4K --max 16K --kinds text,csv --seed 3 t4 || fail "tree --size"
[ "$(find t4 -type f -printf '%s\n' | awk '{s+=$1} END {print s}')" = 5242880 ] || fail "tree --size: total not 5M"
[ "$(find t4 -type f ! -name '*.txt' ! -name '*.csv' | wc -l)" = 0 ] || fail "tree --kinds: other kinds present"
ok "tree --size totals exactly; --kinds restricts the kinds"

"$DG" mixed --size 20M --seed 9 m1 || fail "mixed"
total=$(find m1 -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
large=$(find m1 -maxdepth 1 -name 'large-*' -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
[ "$total" = 20971520 ] || fail "mixed: total $total, wanted 20971520"
[ "$(find m1 -maxdepth 1 -name 'large-*' -type f | wc -l)" = 4 ] || fail "mixed: not 4 large files"
[ "$large" -ge $((20971520 * 74 / 100)) ] || fail "mixed: large files hold only $large bytes"
[ "$(find m1 -type f | wc -l)" -gt 300 ] || fail "mixed: too few small files"
ok "mixed: exact total, 4 large files with 75% of the bytes, hundreds of small files"

# ---- bounded memory ----
if [ -x /usr/bin/time ]; then
    /usr/bin/time -f %M -o rss "$DG" file --kind log --size 64M --seed 1 - >/dev/null || fail "64M to stdout"
    [ "$(cat rss)" -lt 16384 ] || fail "peak RSS $(cat rss) KiB for 64M of output"
    ok "64M streamed with peak RSS $(cat rss) KiB"
fi

# ---- errors ----
# bad_args STATUS MESSAGE ARGS...: fails with STATUS, stderr names MESSAGE.
bad_args() {
    local want=$1 msg=$2
    shift 2
    run "$DG" "$@"
    [ "$rc" = "$want" ] || fail "'$*': exit $rc, wanted $want"
    grep -qF -- "$msg" .err || fail "'$*': stderr lacks '$msg'"
}
bad_args 2 "usage"
bad_args 2 "unknown command 'frob'" frob x
bad_args 2 "missing --kind" file --size 1K x
bad_args 2 "unknown kind 'prose'" file --kind prose --size 1K x
bad_args 2 "invalid size '12Q'" file --kind text --size 12Q x
bad_args 2 "invalid size '-5'" file --kind text --size -5 x
bad_args 2 "invalid size '99999999999T'" file --kind text --size 99999999999T x
bad_args 2 "missing --size" file --kind text x
bad_args 2 "invalid seed 'abc'" file --kind text --size 1K --seed abc x
bad_args 2 "missing output path" file --kind text --size 1K
bad_args 2 "exactly one output path" file --kind text --size 1K x y
bad_args 2 "does not apply" file --kind text --size 1K --files 3 x
bad_args 2 "unknown or incomplete option '--bogus'" tree --bogus x
bad_args 2 "invalid file count '0'" tree --files 0 x
bad_args 2 "--files and --size exclude each other" tree --files 5 --size 1M x
bad_args 2 "is larger than --max" tree --files 5 --min 64K --max 1K x
bad_args 2 "invalid kind list 'text,nope'" tree --files 5 --kinds text,nope x
bad_args 2 "invalid percentage '101'" mixed --size 1M --large-share 101 x
[ -e x ] && fail "a failed command created its output"
ok "usage errors exit 2 and name the bad argument; nothing is written"

echo keep >exists
bad_args 1 "already exists" file --kind text --size 1K exists
[ "$(cat exists)" = keep ] || fail "an existing file was changed without --force"
"$DG" file --kind text --size 1K --force exists || fail "--force"
[ "$(size_of exists)" = 1024 ] || fail "--force did not overwrite"
bad_args 1 "not empty" tree --files 3 t1
bad_args 1 "$T/missing/dir/out" file --kind text --size 1K "$T/missing/dir/out"
if [ "$(id -u)" != 0 ]; then
    mkdir ro && chmod 555 ro
    bad_args 1 "ro/out" file --kind text --size 1K ro/out
fi
if [ -w /dev/full ]; then
    "$DG" file --kind text --size 2M - >/dev/full 2>.err; rc=$?
    [ "$rc" = 1 ] && grep -qF "No space left" .err || fail "a full device: exit $rc"
fi
ok "I/O errors exit 1 and name the file; existing outputs are kept without --force"
run "$DG" --help
[ "$rc" = 0 ] && grep -qF "pmap-datagen file" .out || fail "--help"
ok "--help"
