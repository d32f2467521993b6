#!/usr/bin/env bash
# pmap run's memory does not grow with what jobs print: jobs printing
# PM_RUN_BYTES each (1 GiB in the slow test, 64 MiB in the quick one) -- the
# streaming one, and ones that must wait behind it (-k, and a slow first
# job) and so spill to $TMPDIR -- leave pmap's peak RSS small, and every
# byte arrives, in order.
. "$(dirname "$0")/lib.sh"
cd "$T"
bytes=${PM_RUN_BYTES:-1073741824}
[ -x /usr/bin/time ] || skip "no /usr/bin/time"
case "${PM_SANITIZE:-}" in *address*) limit=200000 ;; *) limit=40000 ;; esac   # KiB

# peak CMD...: runs it with stdout through cksum; sets rss (KiB), sum.
peak() {
    /usr/bin/time -f %M -o rss "$@" | cksum >sum || fail "$*: status"
    rss=$(tail -1 rss)
}

# One job: it streams straight through.
peak "$PM_BIN" run head -c "$bytes" ::: /dev/zero
[ "$(cksum </dev/null)" != "$(cat sum)" ] || fail "no output"
want0=$(head -c "$bytes" /dev/zero | cksum)
[ "$(cat sum)" = "$want0" ] || fail "one job: output differs"
[ "$rss" -lt "$limit" ] || fail "one job printing $bytes bytes: peak RSS ${rss} KiB"
ok "a job printing $bytes bytes streams through; peak RSS ${rss} KiB"

# -k: the second job prints everything while the first still runs.
peak "$PM_BIN" run -k -j 2 'if [ {} = 1 ]; then sleep 1; echo first; else head -c '"$bytes"' /dev/zero | tr "\0" x; fi' ::: 1 2
want=$( (echo first; head -c "$bytes" /dev/zero | tr '\0' x) | cksum)
[ "$(cat sum)" = "$want" ] || fail "-k: output differs"
[ "$rss" -lt "$limit" ] || fail "-k, waiting job printing $bytes bytes: peak RSS ${rss} KiB"
ok "a waiting job's $bytes bytes spill to \$TMPDIR; peak RSS ${rss} KiB"
