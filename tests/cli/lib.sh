# lib.sh - shared helpers of the pmap CLI end-to-end tests (sourced).
#
# Each tests/cli/test_*.sh is one ctest test, run with PM_BIN (the built
# pmap) and PM_SRC (the source tree) in its environment. A test prints what
# it checks, exits 0 when everything held, 1 at the first failure (with the
# reason), 77 when it cannot run here (ctest reports it as skipped).
set -u
PM_BIN=${PM_BIN:?PM_BIN must name the pmap binary under test}
[ -x "$PM_BIN" ] || { echo "FAIL: $PM_BIN is not executable" >&2; exit 1; }
export LC_ALL=C
unset PMAP_JOBS

T=$(mktemp -d "${TMPDIR:-/tmp}/pmap-cli.XXXXXX")
PM_CLEANUP=()
pm_cleanup() {
    local c
    for c in "${PM_CLEANUP[@]+"${PM_CLEANUP[@]}"}"; do eval "$c" || true; done
    chattr -R -i "$T" 2>/dev/null || true
    chmod -R u+rwx "$T" 2>/dev/null || true
    rm -rf "$T"
}
trap pm_cleanup EXIT

fail() { echo "FAIL: $*" >&2; [ -s "$T/.err" ] && { echo "--- last stderr:" >&2; head -c 2000 "$T/.err" >&2; }; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
ok() { echo "ok - $*"; }

# run CMD...: runs it; stdout in $T/.out, stderr in $T/.err, status in $rc.
run() { "$@" >"$T/.out" 2>"$T/.err"; rc=$?; }
pmap() { "$PM_BIN" "$@"; }

# expect_rc N WHAT: the last run's status was N.
expect_rc() { [ "$rc" = "$1" ] || fail "$2: exit status $rc, expected $1"; }
# expect_err TEXT WHAT: the last run's stderr contains TEXT (fixed string).
expect_err() { grep -qF -- "$1" "$T/.err" || fail "$2: stderr lacks '$1'"; }
expect_no_err() { [ ! -s "$T/.err" ] || fail "$1: unexpected stderr"; }
expect_out() { grep -qF -- "$1" "$T/.out" || fail "$2: stdout lacks '$1'"; }

# gen_text FILE BYTES SEED: deterministic, compressible text (words, lines).
gen_text() {
    python3 - "$1" "$2" "$3" <<'EOF'
import random, sys
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
vocab = [''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(r.randint(1, 9)))
         for _ in range(2000)]
out, size = [], 0
while size < n:
    line = ' '.join(r.choices(vocab, k=r.randint(3, 14))) + '\n'
    out.append(line)
    size += len(line)
open(path, 'w').write(''.join(out)[:n])
EOF
}

# gen_words FILE BYTES SEED: text from a 15-word vocabulary: many long
# matches, so slow to compress at -9 (about 2 MB/s with gzip -9).
gen_words() {
    python3 - "$1" "$2" "$3" <<'EOF'
import random, sys
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
v = 'the quick brown fox jumps over lazy dog and runs away from here to there'.split()
out, size = [], 0
while size < n:
    line = ' '.join(r.choices(v, k=r.randint(3, 12))) + '\n'
    out.append(line)
    size += len(line)
open(path, 'w').write(''.join(out)[:n])
EOF
}

# gen_random FILE BYTES SEED: deterministic incompressible bytes.
gen_random() {
    openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$3")" -iv 0 </dev/zero 2>/dev/null \
        | head -c "$2" >"$1"
}

# crc32 FILE: zlib's CRC-32 as 8 lowercase hex digits.
crc32() { python3 -c 'import sys,zlib; print("%08x" % zlib.crc32(open(sys.argv[1],"rb").read()))' "$1"; }

# gz_same GZ ORIG: GZ passes gzip -t and decompresses to exactly ORIG.
gz_same() {
    gzip -t "$1" 2>/dev/null || fail "gzip -t rejects $1"
    gzip -dc "$1" | cmp -s - "$2" || fail "gzip -dc $1 differs from $2"
}

# snapshot DIR: sorted list of relative paths, sizes and CRCs of DIR's files.
snapshot() {
    python3 - "$1" <<'EOF'
import os, sys, zlib
root = sys.argv[1].encode()
for d, dirs, files in sorted(os.walk(root)):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        data = open(p, 'rb').read()
        print(repr(os.path.relpath(p, root)), len(data), '%08x' % zlib.crc32(data))
EOF
}

need_root() { [ "$(id -u)" = 0 ] || skip "$1 needs root"; }
