#!/usr/bin/env bash
# What pmap skips, as gzip does, with a warning naming the file and exit
# status 2: names already ending in the suffix, symbolic links (unless -f),
# FIFOs, sockets and devices, existing outputs (unless -f). The other files
# are still processed and skipped ones are left exactly as they were.
. "$(dirname "$0")/lib.sh"
cd "$T"
gen_text text 200000 51

mkdir d && cp text d/a && gzip -c text >d/b.gz && cp d/b.gz b.gz.ref
run pmap compress d; expect_rc 0 "a .gz found in a tree is passed over (as gzip -r)"
expect_no_err "no warning for a .gz found by walking"
gz_same d/a.gz text
cmp -s d/b.gz b.gz.ref || fail "skipped d/b.gz changed"
[ ! -e d/b.gz.gz ] || fail "compressed a .gz"
run pmap compress d/b.gz; expect_rc 2 "a .gz named on the command line"
expect_err "pmap: d/b.gz: " "suffix skip names the file"; expect_err "suffix" "suffix skip says why"
run pmap compress -v d; expect_rc 0 "-v over the tree"; expect_err "d/b.gz" "-v mentions the passed-over .gz"
run pmap compress -q d/b.gz; expect_rc 2 "-q still exits 2"; expect_no_err "-q hides warnings"
run pmap compress -f d/b.gz; expect_rc 2 "-f still skips the suffix"
ok "files ending in the suffix: named ones skipped with a warning, exit 2 (also -q, -f); found by walking, passed over silently"

rm -rf d && mkdir d && cp text d/target && ln -s target d/link
run pmap compress -k d; expect_rc 2 "symlink in a tree"
expect_err "pmap: d/link: " "symlink skip names it"
[ -L d/link ] && [ ! -e d/link.gz ] || fail "symlink was processed"
gz_same d/target.gz text
run pmap compress -k d/link; expect_rc 2 "symlink named"
rm d/target.gz
run pmap compress -f d/link; expect_rc 0 "-f follows the link"
gz_same d/link.gz text
cmp -s d/target text || fail "following a link changed its target"
ok "symbolic links skipped unless -f, which follows them"

rm -rf d && mkdir d && cp text d/a && mkfifo d/fifo
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' d/sock
dev=""
if [ "$(id -u)" = 0 ] && mknod d/null c 1 3 2>/dev/null; then dev=d/null; fi
run timeout 30 "$PM_BIN" compress d; expect_rc 2 "fifo/socket/device in a tree"
expect_err "pmap: d/fifo: " "FIFO skip named"; expect_err "pmap: d/sock: " "socket skip named"
[ -z "$dev" ] || expect_err "pmap: d/null: " "device skip named"
[ -p d/fifo ] && [ -S d/sock ] && [ ! -e d/fifo.gz ] && [ ! -e d/sock.gz ] || fail "special files touched"
[ -z "$dev" ] || { [ -c d/null ] && [ ! -e d/null.gz ]; } || fail "device touched"
gz_same d/a.gz text
run timeout 30 "$PM_BIN" compress d/fifo; expect_rc 2 "a FIFO named on the command line"
expect_err "d/fifo" "named FIFO skip"
ok "FIFOs, sockets${dev:+ and devices} skipped with a warning; the rest compressed"

rm -rf d && mkdir d && cp text d/a && echo old >d/a.gz && cp d/a.gz old.ref
run pmap compress d/a; expect_rc 2 "existing output"
expect_err "pmap: d/a: " "existing output names the input"; expect_err "d/a.gz" "existing output names the output"
cmp -s d/a text && cmp -s d/a.gz old.ref || fail "an existing output or its input changed"
run pmap compress -f d/a; expect_rc 0 "-f overwrites"
gz_same d/a.gz text; [ ! -e d/a ] || fail "-f: input not removed"
gzip -dc d/a.gz >d/a; cp text d/a.keep
run pmap decompress d/a.gz; expect_rc 2 "decompress onto an existing file"
cmp -s d/a d/a.keep && [ -f d/a.gz ] || fail "decompress replaced an existing file"
run pmap decompress -f d/a.gz; expect_rc 0 "decompress -f"
cmp -s d/a text && [ ! -e d/a.gz ] || fail "decompress -f"
ok "existing outputs are not overwritten (exit 2) unless -f"

rm -rf d && mkdir d && cp text d/a && cp text d/c && gzip -c text >d/b.gz && echo x >d/c.gz
run pmap compress -v d; expect_rc 2 "mixed"
gz_same d/a.gz text; [ -f d/c ] || fail "c removed"
expect_err "replaced with d/a.gz" "-v line for the processed file"
ok "a run with skips processes the other files and exits 2"
