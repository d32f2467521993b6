#!/usr/bin/env python3
"""bench/py_pool.py - Python's process pools measured the way bench_pool
measures pmap's process backend, so both can be run side by side:

  1. a map of trivial items with the default chunksize
     (multiprocessing.Pool.map; ProcessPoolExecutor.map with chunksize 1,
     its default);
  2. tasks submitted one by one, then every result taken
     (Pool.apply_async + get; ProcessPoolExecutor.submit + result).

Each figure is the median of REPS runs (after a warm-up run), in
microseconds per item or task.

Usage: bench/py_pool.py [--quick] [--workers N]
"""
import argparse
import concurrent.futures as cf
import multiprocessing as mp
import statistics
import time


def trivial(x):
    return x + 1


def timed(fn, reps):
    fn()                                   # warm-up: workers started, code paged in
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--workers', type=int, default=2)
    a = ap.parse_args()
    n_map = 100_000 if a.quick else 1_000_000
    n_tasks = 2_000 if a.quick else 20_000
    reps = 3 if a.quick else 5
    ctx = mp.get_context('forkserver')     # Python's default on Linux from 3.14
    rows = []
    with ctx.Pool(a.workers) as pool:
        xs = list(range(n_map))
        t = timed(lambda: pool.map(trivial, xs), reps)
        rows.append(('Pool.map, default chunksize', n_map, t))

        def apply():
            rs = [pool.apply_async(trivial, (i,)) for i in range(n_tasks)]
            for r in rs:
                r.get()
        t = timed(apply, reps)
        rows.append(('Pool.apply_async + get', n_tasks, t))
    with cf.ProcessPoolExecutor(a.workers, mp_context=ctx) as ex:
        xs = list(range(n_tasks))
        t = timed(lambda: list(ex.map(trivial, xs)), reps)
        rows.append(('ProcessPoolExecutor.map, chunksize 1', n_tasks, t))

        def submit():
            fs = [ex.submit(trivial, i) for i in range(n_tasks)]
            for f in fs:
                f.result()
        t = timed(submit, reps)
        rows.append(('ProcessPoolExecutor.submit + result', n_tasks, t))
    print('# Python %s, %d workers, forkserver, median of %d runs' %
          (mp.sys.version.split()[0], a.workers, reps))
    for name, n, t in rows:
        print('%-40s %9d items  %10.3f us/item' % (name, n, t / n * 1e6))


if __name__ == '__main__':
    main()
