#!/usr/bin/env python3
"""ab.py N CMD...: runs the shell commands in turn, N rounds, each with its
standard output to /dev/null, and prints for each the minimum and median
wall time and the largest peak RSS (GNU time's %M). For comparisons on a
noisy machine: the commands alternate, so a slow spell hits them all."""
import statistics
import subprocess
import sys
import time

if len(sys.argv) < 3 or not sys.argv[1].isdigit():
    sys.exit("usage: ab.py N CMD...")
n, cmds = int(sys.argv[1]), sys.argv[2:]
secs = {c: [] for c in cmds}
rss = {c: 0 for c in cmds}
for _ in range(n):
    for c in cmds:
        t = time.perf_counter()
        p = subprocess.run(['/usr/bin/time', '-f', '%M', 'sh', '-c', c + ' >/dev/null'],
                           stderr=subprocess.PIPE, text=True)
        secs[c].append(time.perf_counter() - t)
        if p.returncode != 0:
            sys.exit("ab.py: failed (%d): %s\n%s" % (p.returncode, c, p.stderr[-2000:]))
        last = p.stderr.strip().split('\n')[-1]
        rss[c] = max(rss[c], int(last) if last.isdigit() else 0)
for c in cmds:
    v = sorted(secs[c])
    print("%-70s min %.3f med %.3f  rss %d MB" % (c[:70], v[0], statistics.median(v), rss[c] // 1024))
