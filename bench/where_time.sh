#!/usr/bin/env bash
# bench/where_time.sh - where pmap's time goes when it compresses a tree of
# small files on a real disk, next to find | xargs -P N gzip.
#
#   bench/where_time.sh [--dir DIR] [--files N] [--reps N] [options]
#
# Part 1, timing: on a fresh copy of the tree in DIR (made and synced before
# each run, not timed), alternating, REPS runs of each variant:
#   pmap             pmap compress -6 -j N -q TREE (default I/O engine)
#   pmap-threads     the same with PMAP_IO=threads (every per-file system call
#                    is then a plain system call, so part 2 can see it)
#   pmap-nosync      PMAP_IO=threads with fsync and fdatasync made no-ops by
#                    an LD_PRELOAD shim: pmap with its durability removed (do
#                    not use it for anything else: it loses files on a crash)
#   xargs            find TREE -type f -print0 | xargs -0 -P N -n 64 gzip -6
#   xargs+sync       the same, then `sync -f TREE` (one syncfs), inside the
#                    clock: what xargs pays to make its outputs durable
# and prints the median wall, user and sys seconds and CPU use (user + sys
# over wall). pmap - pmap-nosync is what the syncs cost pmap.
#
# Part 2, system calls (unless --no-trace): one run of pmap-threads and one of
# xargs under `perf trace` (strace -f -T if perf cannot trace), counting
# fsync, fdatasync, openat, linkat, unlinkat, statx, ... per call: calls,
# seconds summed over threads, seconds on the busiest thread, and "covered",
# the share of the run's wall time during which at least one such call was in
# flight (that is what bounds the run when the calls wait on the disk). Then
# one run of pmap with its default engine (io_uring) under `perf record` of
# the io_uring submit/complete tracepoints: the same figures per io_uring
# operation (FSYNC, OPENAT, ...), which system-call tracing cannot see.
# Tracing slows the runs; the traced run's wall is printed with each table.
#
# Part 3 (--cpu-profile): the kernel and user functions where pmap's CPU time
# goes (perf record -g on cpu-clock), top 25.
#
# Needs: pmap and pmap-datagen (build/tools, or --pmap), gzip, python3, cc
# (for the shim), /usr/bin/time; perf or strace for part 2. Output goes to
# stdout and to OUT (default: a new directory under $TMPDIR) with the raw
# traces. Nothing is written inside the repository.
set -uo pipefail
export LC_ALL=C
unset PMAP_JOBS PMAP_IO

REPO=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<EOF
usage: bench/where_time.sh [options]

  --dir DIR        where the tree and its copies go (default /var/tmp)
  --files N        files in the generated tree (default 20000; 1-64 KiB, seed 42)
  --tree SRC       use the tree SRC instead of generating one (not modified)
  --jobs N         jobs for pmap and xargs -P (default: nproc)
  --reps N         timed runs per variant (default 3)
  --level L        compression level (default 6)
  --pmap PATH      the pmap binary (default: \$PMAP, else build/tools/pmap)
  --out DIR        raw traces and logs (default: a new directory under \$TMPDIR)
  --no-trace       part 1 only
  --cpu-profile    also part 3 (perf record -g of one pmap run)
  --tracer T       perf or strace (default: perf when it can trace)
  --max-busy CORES before each run, wait (up to 10 minutes) until other
                   processes use at most CORES (default 0.3; 0: do not wait)
  --nice N         run each measured command in its own session at nice N, its
                   autogroup too (negative: root; on a machine that others
                   load; the same for every variant)
EOF
}
die() { echo "where_time: $*" >&2; exit 1; }

DIR=/var/tmp FILES=20000 TREE="" JOBS=$(nproc) REPS=3 LEVEL=6 PMAP_BIN=${PMAP:-} OUT="" TRACE=1
CPUPROF=0 TRACER="" MAX_BUSY=0.3 NICE=0
while [ $# -gt 0 ]; do
    case $1 in
    --dir) DIR=${2:?}; shift ;;
    --files) FILES=${2:?}; shift ;;
    --tree) TREE=${2:?}; shift ;;
    --jobs) JOBS=${2:?}; shift ;;
    --reps) REPS=${2:?}; shift ;;
    --level) LEVEL=${2:?}; shift ;;
    --pmap) PMAP_BIN=${2:?}; shift ;;
    --out) OUT=${2:?}; shift ;;
    --no-trace) TRACE=0 ;;
    --cpu-profile) CPUPROF=1 ;;
    --tracer) TRACER=${2:?}; shift ;;
    --max-busy) MAX_BUSY=${2:?}; shift ;;
    --nice) NICE=${2:?}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
    esac
    shift
done
for v in "$FILES" "$JOBS" "$REPS"; do [[ $v =~ ^[1-9][0-9]*$ ]] || die "'$v' is not a positive number"; done
[[ $LEVEL =~ ^[1-9]$ ]] || die "--level: '$LEVEL' is not 1..9"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "--nice: '$NICE' is not a number"
# Each measured command: a new session (its own autogroup) at nice NICE.
NICE_CMD=(setsid -w bash -c '{ echo "$0" >/proc/self/autogroup; } 2>/dev/null; exec nice -n "$0" "$@"' "$NICE")
NICE_SH="setsid -w bash -c '{ echo \"\$0\" >/proc/self/autogroup; } 2>/dev/null; exec nice -n \"\$0\" \"\$@\"' $NICE"
PMAP_BIN=${PMAP_BIN:-$REPO/build/tools/pmap}
[ -x "$PMAP_BIN" ] || die "pmap not found at $PMAP_BIN (build it, or give --pmap PATH)"
PMAP_BIN=$(cd "$(dirname "$PMAP_BIN")" && pwd)/$(basename "$PMAP_BIN")
DATAGEN=$(dirname "$PMAP_BIN")/pmap-datagen
for t in gzip python3 cc find xargs sync; do command -v "$t" >/dev/null || die "'$t' is missing"; done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ -d "$DIR" ] || die "no directory $DIR"
if [ "$TRACE" = 1 ] && [ -z "$TRACER" ]; then
    if perf trace -o /dev/null -e fsync true >/dev/null 2>&1; then TRACER=perf
    elif command -v strace >/dev/null; then TRACER=strace
    else echo "where_time: neither perf trace nor strace works: no part 2" >&2; TRACE=0; fi
fi
[ "$CPUPROF" = 0 ] || command -v perf >/dev/null || die "--cpu-profile needs perf"

OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/where-time.XXXXXX")} || die "mktemp failed"
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
case $OUT/ in "$REPO"/*) die "--out $OUT is inside the repository" ;; esac
BASE=$(mktemp -d "$DIR/where-time.XXXXXX") || die "cannot create a directory in $DIR"
trap 'rm -rf "$BASE"' EXIT
trap 'echo "where_time: interrupted" >&2; exit 130' INT TERM
FSTYPE=$(df --output=fstype "$BASE" | tail -n 1)

# The shim: fsync and fdatasync do nothing (pmap-nosync only).
cat >"$OUT/nosync.c" <<'EOF'
int fsync(int fd) { (void)fd; return 0; }
int fdatasync(int fd) { (void)fd; return 0; }
EOF
cc -shared -fPIC -O2 -o "$OUT/nosync.so" "$OUT/nosync.c" || die "cannot build the nosync shim"

if [ -z "$TREE" ]; then
    [ -x "$DATAGEN" ] || die "pmap-datagen not found next to pmap (or give --tree)"
    TREE=$BASE/src
    "$DATAGEN" tree --files "$FILES" --min 1K --max 64K --seed 42 "$TREE" >/dev/null || die "pmap-datagen failed"
    GEN="pmap-datagen tree --files $FILES --min 1K --max 64K --seed 42"
else
    [ -d "$TREE" ] || die "no tree $TREE"
    cp -r "$TREE" "$BASE/src" || die "cannot copy $TREE"
    TREE=$BASE/src GEN="a copy of $TREE"
fi
NF=$(find "$TREE" -type f | wc -l)
BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
T=$BASE/tree

# The variants: name and command (T is the tree copy).
declare -A CMD=(
    [pmap]="'$PMAP_BIN' compress -$LEVEL -j $JOBS -q $T"
    [pmap-threads]="PMAP_IO=threads '$PMAP_BIN' compress -$LEVEL -j $JOBS -q $T"
    [pmap-nosync]="PMAP_IO=threads LD_PRELOAD='$OUT/nosync.so' '$PMAP_BIN' compress -$LEVEL -j $JOBS -q $T"
    [xargs]="find $T -type f -print0 | xargs -0 -P $JOBS -n 64 gzip -$LEVEL"
    [xargs+sync]="find $T -type f -print0 | xargs -0 -P $JOBS -n 64 gzip -$LEVEL; sync -f $T"
)
VARIANTS=(pmap pmap-threads pmap-nosync xargs xargs+sync)

# quiet: waits until the rest of the machine uses at most MAX_BUSY cores
# (measured over 2 s from /proc/stat while nothing of ours runs).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
quiet() {
    local b0 b1 o waited=0
    awk -v m="$MAX_BUSY" 'BEGIN { exit !(m > 0) }' || return 0
    while :; do
        b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
        o=$(awk -v b="$((b1 - b0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", b / hz / 2 }')
        awk -v o="$o" -v m="$MAX_BUSY" 'BEGIN { exit !(o > m) }' || return 0
        [ "$waited" -ge 600 ] && { echo "  (still $o cores busy after 10 minutes: going on)"; return 0; }
        echo "  (other processes use $o cores: waiting)"
        sleep 20; waited=$((waited + 22))
    done
}

# fresh: a new copy of the tree, synced, on a quiet machine.
fresh() { rm -rf "$T" && cp -r "$TREE" "$T" && sync -f "$T" && quiet; }

# check: every file of the copy is now F.gz (and the count is right).
check() {
    local n
    n=$(find "$T" -type f -name '*.gz' | wc -l)
    [ "$n" = "$NF" ] && [ "$(find "$T" -type f | wc -l)" = "$NF" ] || die "$1: $n of $NF outputs"
}

echo "where_time: $NF files, $BYTES bytes ($GEN) on $FSTYPE in $BASE; -$LEVEL, $JOBS jobs; $REPS runs per variant"
echo "where_time: pmap $PMAP_BIN ($("$PMAP_BIN" --version 2>&1 | head -n 1)); raw output in $OUT"
echo "where_time: load at start: $(cut -d' ' -f1-3 /proc/loadavg); commands under nice -n $NICE"

# ---------------------------------------------------------------- part 1
echo "variant,rep,wall_s,user_s,sys_s" >"$OUT/times.csv"
for ((rep = 0; rep < REPS; rep++)); do
    for ((i = 0; i < ${#VARIANTS[@]}; i++)); do
        v=${VARIANTS[$(((i + rep) % ${#VARIANTS[@]}))]}
        fresh || die "cannot copy the tree"
        t0=$EPOCHREALTIME
        /usr/bin/time -f '%U %S' -o "$OUT/last.time" "${NICE_CMD[@]}" bash -o pipefail -c "${CMD[$v]}" 2>"$OUT/last.err" ||
            die "$v failed: $(head -c 300 "$OUT/last.err")"
        t1=$EPOCHREALTIME
        check "$v"
        read -r u s < <(tail -n 1 "$OUT/last.time")
        w=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        echo "$v,$rep,$w,$u,$s" >>"$OUT/times.csv"
        printf '  %-13s run %d: %7.3f s wall, %6.2f user, %6.2f sys\n' "$v" "$((rep + 1))" "$w" "$u" "$s"
    done
done
echo
python3 - "$OUT/times.csv" "$BYTES" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
nbytes = int(sys.argv[2])
order, by = [], {}
for r in rows:
    if r['variant'] not in by:
        order.append(r['variant'])
    by.setdefault(r['variant'], []).append(r)
med = {}
print('| variant | wall s (median) | min–max | MB/s | user s | sys s | CPU use (user+sys)/wall |')
print('|---|---|---|---|---|---|---|')
for v in ('pmap', 'pmap-threads', 'pmap-nosync', 'xargs', 'xargs+sync'):
    rs = by.get(v)
    if not rs:
        continue
    w = sorted(float(r['wall_s']) for r in rs)
    u = statistics.median(float(r['user_s']) for r in rs)
    s = statistics.median(float(r['sys_s']) for r in rs)
    m = statistics.median(w)
    med[v] = m
    print('| %s | %.3f | %.3f–%.3f | %.1f | %.2f | %.2f | %.2f cores |' % (v, m, w[0], w[-1], nbytes / m / 1e6, u, s, (u + s) / m))
print()
if 'pmap-threads' in med and 'pmap-nosync' in med:
    d = med['pmap-threads'] - med['pmap-nosync']
    print('syncs cost pmap (threads engine) %.3f s of %.3f s wall: %.0f%%' % (d, med['pmap-threads'], 100 * d / med['pmap-threads']))
if 'xargs' in med and 'xargs+sync' in med:
    print('one sync -f after xargs gzip costs %.3f s' % (med['xargs+sync'] - med['xargs']))
for a, b in (('pmap', 'xargs'), ('pmap', 'xargs+sync'), ('pmap-nosync', 'xargs')):
    if a in med and b in med:
        print('%s is %.2f× %s (wall)' % (a, med[b] / med[a], b))
EOF
[ "$TRACE" = 1 ] || exit 0

# ---------------------------------------------------------------- part 2
SYSCALLS=fsync,fdatasync,sync_file_range,syncfs,openat,open,creat,linkat,link,renameat2,rename,unlinkat,unlink,statx,newfstatat,fstat,fchmod,fchown,fchownat,utimensat,futimesat,close,mkdirat,getdents64,io_uring_enter
# traced VARIANT FILE: one run under the tracer, events to FILE; sets TW (wall).
traced() {
    local v=$1 f=$2 t0 t1 cmd
    fresh || die "cannot copy the tree"
    if [ "$TRACER" = perf ]; then
        cmd="perf trace -o '$f' -e $SYSCALLS -- $NICE_SH bash -o pipefail -c \"\$0\""
    else
        cmd="strace -f -qq -ttt -T -o '$f' -e trace=$SYSCALLS $NICE_SH bash -o pipefail -c \"\$0\""
    fi
    t0=$EPOCHREALTIME
    bash -c "$cmd" "${CMD[$v]}" >"$OUT/last.out" 2>"$OUT/last.err" || die "traced $v failed: $(head -c 300 "$OUT/last.err")"
    t1=$EPOCHREALTIME
    check "traced $v"
    TW=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

# The summary: per call, the number, the seconds summed over threads, the
# seconds of the thread that spent the most in it, and the share of the wall
# time covered by at least one call in flight (the union of the intervals).
cat >"$OUT/summary.py" <<'EOF'
import re, sys
kind, path, wall = sys.argv[1], sys.argv[2], float(sys.argv[3])
ev = []   # (name, tid/comm, start s, duration s)
if kind == 'perf':
    # " 12.345 ( 0.012 ms): pmap/1234 fsync(fd: 5) = 0"; a call that blocked while
    # others ran is split: " 12.345 (   ): pmap/1234 fsync(fd: 5) ..." then
    # " 12.345 ( 7.868 ms): pmap/1234  ... [continued]: fsync()) = 0" (same start)
    pat = re.compile(r'^\s*([\d.]+)\s+\(\s*([\d.]+)\s*ms\):\s+(\S+?)/(\d+)\s+(?:\.\.\. \[continued\]: )?(\w+)\(')
    for line in open(path, errors='replace'):
        m = pat.match(line)
        if m:
            ev.append((m.group(5), m.group(3) + '/' + m.group(4), float(m.group(1)) / 1e3, float(m.group(2)) / 1e3))
elif kind == 'strace':
    # "1234 1700000000.123456 fsync(5) = 0 <0.001234>" (and <unfinished ...>/<... resumed> pairs)
    pat = re.compile(r'^(\d+)\s+([\d.]+)\s+(?:<\.\.\. )?(\w+)(?:\(| resumed>).*<([\d.]+)>\s*$')
    start = {}
    for line in open(path, errors='replace'):
        if 'unfinished ...>' in line:
            m = re.match(r'^(\d+)\s+([\d.]+)\s+(\w+)\(', line)
            if m:
                start[(m.group(1), m.group(3))] = float(m.group(2))
            continue
        m = pat.match(line)
        if m:
            tid, t, name, d = m.group(1), float(m.group(2)), m.group(3), float(m.group(4))
            if ' resumed>' in line:
                t = start.pop((tid, name), t - d)
            ev.append((name, 'tid/' + tid, t, d))
else:   # io_uring: perf script of io_uring:io_uring_submit_req and io_uring:io_uring_complete
    sub = {}
    pat = re.compile(r'\s(\d+)\s+\[\d+\]\s+([\d.]+):\s+io_uring:(io_uring_submit_req|io_uring_complete):.*?req (0x[0-9a-f]+)(.*)$')
    for line in open(path, errors='replace'):
        m = pat.search(line)
        if not m:
            continue
        tid, t, what, req, rest = m.group(1), float(m.group(2)), m.group(3), m.group(4), m.group(5)
        if what == 'io_uring_submit_req':
            op = re.search(r'opcode (\w+)', rest)
            sub[req] = (op.group(1) if op else '?', t, tid)
        elif req in sub:
            op, t0, tid0 = sub.pop(req)
            ev.append((op, 'submitter/' + tid0, t0, t - t0))
if not ev:
    print('(no events: see %s)' % path)
    sys.exit(0)
names = {}
for e in ev:
    names.setdefault(e[0], []).append(e)
def union(iv):
    iv.sort()
    tot, cs, ce = 0.0, None, None
    for s, d in iv:
        e = s + d
        if cs is None or s > ce:
            if cs is not None:
                tot += ce - cs
            cs, ce = s, e
        else:
            ce = max(ce, e)
    return tot + (ce - cs if cs is not None else 0)
print('| call | calls | s summed over threads | longest ms | s on the busiest thread (thread) | covered: s, % of wall |')
print('|---|---|---|---|---|---|')
for name, es in sorted(names.items(), key=lambda kv: -sum(e[3] for e in kv[1])):
    tot = sum(e[3] for e in es)
    per = {}
    for e in es:
        per[e[1]] = per.get(e[1], 0) + e[3]
    busiest = max(per.items(), key=lambda kv: kv[1])
    cov = union([(e[2], e[3]) for e in es])
    print('| %s | %d | %.3f | %.1f | %.3f (%s) | %.3f, %.0f%% |' % (name, len(es), tot, 1e3 * max(e[3] for e in es),
                                                      busiest[1], busiest[0], cov, 100 * cov / wall))
EOF

echo
for v in pmap-threads xargs; do
    f=$OUT/trace-$v.txt
    traced "$v" "$f"
    echo "### $v under $TRACER: $TW s wall traced (\`${CMD[$v]}\`)"
    echo
    python3 "$OUT/summary.py" "$TRACER" "$f" "$TW"
    echo
done

if command -v perf >/dev/null && [ "$(perf list 'io_uring:*' 2>/dev/null | grep -c io_uring_submit_req)" -gt 0 ]; then
    f=$OUT/uring.data
    fresh || die "cannot copy the tree"
    t0=$EPOCHREALTIME
    perf record -q -o "$f" -e io_uring:io_uring_submit_req -e io_uring:io_uring_complete -- \
        "${NICE_CMD[@]}" bash -o pipefail -c "${CMD[pmap]}" >"$OUT/last.out" 2>"$OUT/last.err" ||
        die "traced pmap failed: $(head -c 300 "$OUT/last.err")"
    t1=$EPOCHREALTIME
    check "traced pmap"
    TW=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    perf script -i "$f" >"$OUT/uring.txt" 2>/dev/null
    echo "### pmap (default engine), io_uring operations from submission to completion: $TW s wall traced (\`${CMD[pmap]}\`)"
    echo
    python3 "$OUT/summary.py" uring "$OUT/uring.txt" "$TW"
    echo
fi

# ---------------------------------------------------------------- part 3
if [ "$CPUPROF" = 1 ]; then
    fresh || die "cannot copy the tree"
    perf record -q -g -e cpu-clock -o "$OUT/cpu.data" -- "${NICE_CMD[@]}" bash -o pipefail -c "${CMD[pmap]}" \
        >"$OUT/last.out" 2>"$OUT/last.err" || die "profiled pmap failed: $(head -c 300 "$OUT/last.err")"
    check "profiled pmap"
    echo "### pmap (default engine): where its CPU time goes (perf record -e cpu-clock, self time, top 25)"
    echo
    perf report -i "$OUT/cpu.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 25 | sed 's/^/    /'
fi
