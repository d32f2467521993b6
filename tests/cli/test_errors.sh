#!/usr/bin/env bash
# Errors fail the file alone: a message names the file and the cause, exit
# status 1, the input intact, no output left, and the other files still
# processed. Missing files, unreadable files and directories, unwritable
# directories, a file that changes while it is compressed.
. "$(dirname "$0")/lib.sh"
cd "$T"
gen_text text 300000 61

# As root, permissions only bind without the capabilities that bypass them.
nocap() { if [ "$(id -u)" = 0 ]; then setpriv --bounding-set=-all "$@"; else "$@"; fi; }

mkdir d && cp text d/a && cp text d/c
run pmap compress d/a d/missing d/c; expect_rc 1 "missing file"
expect_err "pmap: d/missing: No such file or directory" "missing file message"
gz_same d/a.gz text; gz_same d/c.gz text
ok "a missing file: named with its cause, exit 1, others processed"

if [ "$(id -u)" = 0 ] && ! setpriv --bounding-set=-all true 2>/dev/null; then
    skip "root without the means to drop capabilities (setpriv)"
fi
# The binary must stay reachable without capabilities.
nocap "$PM_BIN" --version >/dev/null 2>&1 || skip "pmap not executable without capabilities"

rm -rf d && mkdir d && cp text d/a && cp text d/b && cp text d/c && chmod 000 d/b
run nocap "$PM_BIN" compress d; expect_rc 1 "unreadable file"
expect_err "pmap: d/b: " "unreadable file named"; expect_err "Permission denied" "unreadable file cause"
[ -e d/b ] && [ ! -e d/b.gz ] || fail "unreadable file: input gone or output left"
chmod 644 d/b; cmp -s d/b text || fail "unreadable file changed"
gz_same d/a.gz text; gz_same d/c.gz text
ok "an unreadable file fails alone"

rm -rf d && mkdir -p d/ro d/sub && cp text d/a && cp text d/ro/x && cp text d/sub/y && chmod 555 d/ro
run nocap "$PM_BIN" compress d; expect_rc 1 "unwritable directory"
expect_err "pmap: d/ro/x: " "unwritable directory: file named"; expect_err "Permission denied" "cause"
[ "$(ls -A d/ro)" = x ] || fail "unwritable directory: left $(ls -A d/ro)"
cmp -s d/ro/x text || fail "unwritable directory: input changed"
gz_same d/a.gz text; gz_same d/sub/y.gz text
chmod 755 d/ro
ok "an unwritable output directory fails that file alone, input intact"

rm -rf d && mkdir -p d/closed && cp text d/a && cp text d/closed/z && chmod 000 d/closed
run nocap "$PM_BIN" compress d; expect_rc 1 "unreadable directory"
expect_err "d/closed" "unreadable directory named"
gz_same d/a.gz text
chmod 755 d/closed; cmp -s d/closed/z text || fail "unreadable directory: content changed"
ok "an unreadable directory is reported; the rest is processed"

rm -rf d && mkdir -p d/ro && cp text d/a && gzip -c text >d/ro/x.gz && cp d/ro/x.gz x.ref && chmod 555 d/ro
run nocap "$PM_BIN" decompress d/ro/x.gz; expect_rc 1 "decompress into an unwritable directory"
expect_err "pmap: d/ro/x.gz: " "decompress unwritable: named"
[ "$(ls -A d/ro)" = x.gz ] && cmp -s d/ro/x.gz x.ref || fail "decompress unwritable: directory changed"
chmod 755 d/ro
ok "decompress into an unwritable directory: named, .gz kept"

# A file that grows while it is compressed: appended to until pmap ends.
rm -rf d && mkdir d
gen_text d/grow 20000000 62
"$PM_BIN" compress -p1 -9 d/grow >"$T/.out" 2>"$T/.err" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do echo "more data" >>d/grow; sleep 0.02; done
wait "$pid"; rc=$?
expect_rc 1 "a file changing while read"
expect_err "pmap: d/grow: " "changing file named"
[ -f d/grow ] && [ ! -e d/grow.gz ] || fail "changing file: input removed or output kept ($(ls d))"
ok "a file changing while it is compressed: error naming it, input kept, no output"
