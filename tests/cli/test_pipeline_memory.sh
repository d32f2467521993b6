#!/usr/bin/env bash
# The pipeline's memory bound: peak RSS of `pmap compress -j 2` is set by
# the configuration (jobs x chunk size), not by the input size: compressing
# 1 GiB stays within 20% of compressing 128 MiB, and under 64 MiB.
. "$(dirname "$0")/lib.sh"
case "${PM_SANITIZE:-}" in *address*|*thread*) skip "RSS is not meaningful under sanitizers";; esac

# Sparse files read as zeros at page-cache speed and deflate fast at -1, so
# the check costs little time while every byte still goes through the
# pipeline (read, deflate, CRC, write).
truncate -s 128M "$T/small"
truncate -s 1G "$T/large"

peak_rss_kb() {   # peak RSS of one `pmap compress -1 -j 2 -c FILE`
    python3 - "$PM_BIN" "$1" <<'PY'
import resource, subprocess, sys
with open("/dev/null", "wb") as null:
    subprocess.run([sys.argv[1], "compress", "-1", "-j", "2", "-c", sys.argv[2]],
                   stdout=null, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}
small=$(peak_rss_kb "$T/small") || fail "compress of 128 MiB failed"
large=$(peak_rss_kb "$T/large") || fail "compress of 1 GiB failed"
echo "peak RSS: 128 MiB input ${small} KB, 1 GiB input ${large} KB"
[ "$large" -le $((small * 12 / 10)) ] || fail "RSS grew with input: ${small} KB -> ${large} KB"
[ "$large" -le $((64 * 1024)) ] || fail "RSS ${large} KB over 64 MiB"
ok "memory bounded by the configuration (${large} KB for 1 GiB)"
