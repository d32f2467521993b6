#!/usr/bin/env python3
"""The asyncio side of bench_co's sleep test: N tasks each sleeping 100 ms,
gathered; prints the median wall time of R runs (task creation included)
and the process's peak RSS.  Usage: co_asyncio.py [N] [R]"""
import asyncio
import resource
import statistics
import sys
import time


async def many(n):
    t0 = time.monotonic()
    tasks = [asyncio.create_task(asyncio.sleep(0.1)) for _ in range(n)]
    await asyncio.gather(*tasks)
    return time.monotonic() - t0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    walls = [asyncio.run(many(n)) for _ in range(runs)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"asyncio ({sys.version.split()[0]}): {n} tasks sleeping 100 ms: "
          f"{statistics.median(walls):.3f} s median of {runs}, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
