/* bench_pool.c - per-item overhead of the pool against bare OpenMP.
 *
 * Three measurements, each timed as the median of several runs after a
 * warm-up, with its bare-OpenMP reference measured in the same run:
 *   1. map over 10^6 trivial items, automatic chunksize, vs a bare
 *      `#pragma omp parallel for` calling the same function pointer (default
 *      static schedule, and also dynamic with the same chunk size as the
 *      map, to tell scheduling apart from pmap's own overhead);
 *   2. map over CPU-heavy items (~13 us each) vs the same bare loops;
 *   3. 10^5 apply_async tasks submitted, then all awaited, vs 10^5
 *      `#pragma omp task`s from one thread of a parallel region;
 *   4. imap over 10^5 trivial items read by an input callback, drained in
 *      order: automatic chunksize against chunksize 1 (the default before
 *      issue 10) and 64 (no reference: it is the pool against itself);
 *   5. 10^5 tiny tasks' futures taken as they complete with pm_as_completed,
 *      against pm_future_wait in order and the pm_wait_any loop future.h
 *      used to recommend (quadratic: run once, on 2 x 10^4 with --quick);
 *   6. the process backend (PM_POOL_PROCESSES, same worker count): the
 *      trivial map of (1), 10^4 apply_async tasks submitted then awaited,
 *      (ProcessPoolExecutor.map with chunksize 1: ~120 us per task here),
 *      and 2 x 10^3 one at a time (submit, wait, free: the round trip,
 *      dominated by thread wake-ups: the thread pool's is shown with it).
 * Usage: bench_pool [--quick] [--workers N]
 * Targets (issue 2, on 2 cores): (1) <= 0.05 us/item, (2) map/bare <= 1.05,
 * (3) <= 1 us/task; (issue 12) processes: trivial map <= 0.1 us/item,
 * apply_async <= 20 us/task (submitted then awaited).
 */
#define _GNU_SOURCE
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pmap/error.h>
#include <pmap/pool.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_pool: %s: %s\n", what, pm_strerror(rc));
    exit(1);
}

/* ---- the work ---- */

static int trivial(const void *in, void *out, void *arg)
{
    (void)arg;
    *(int64_t *)out = *(const int64_t *)in + 1;
    return 0;
}

static unsigned heavy_iters = 6000;

static int heavy(const void *in, void *out, void *arg)
{
    (void)arg;
    uint64_t x = (uint64_t)*(const int64_t *)in * 0x9E3779B97F4A7C15ULL + 1;
    for (unsigned i = 0; i < heavy_iters; i++) {     /* a dependent chain */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x *= 0x2545F4914F6CDD1DULL;
    }
    *(int64_t *)out = (int64_t)x;
    return 0;
}

/* Called through a volatile pointer so the bare loops cannot inline it:
 * both sides pay the same indirect call per item. */
static pm_map_fn volatile fn_ptr;

static double time_bare_loop(pm_map_fn fn, const int64_t *in, int64_t *out,
                             size_t n, int threads)
{
    fn_ptr = fn;
    double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++)
        fn_ptr(&in[i], &out[i], NULL);
    return now() - t0;
}

/* The same loop with the schedule pm_pool_map uses (dynamic, Pool's
 * automatic chunk size), to separate scheduling from pmap's own overhead. */
static double time_bare_dynamic(pm_map_fn fn, const int64_t *in, int64_t *out,
                                size_t n, int threads)
{
    fn_ptr = fn;
    size_t d = (size_t)threads * 4, cs = n / d + (n % d != 0);
    double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(dynamic, cs)
    for (size_t i = 0; i < n; i++)
        fn_ptr(&in[i], &out[i], NULL);
    return now() - t0;
}

static double time_pool_map(pm_pool *pool, pm_map_fn fn, const int64_t *in,
                            int64_t *out, size_t n)
{
    pm_map_spec s = {.fn = fn, .in = in, .in_size = sizeof *in, .out = out,
                     .out_size = sizeof *out, .n = n};
    double t0 = now();
    int rc = pm_pool_map(pool, &s, NULL);
    double t = now() - t0;
    if (rc)
        die("pm_pool_map", rc);
    return t;
}

/* Median seconds of pool map, bare static loop and bare dynamic loop,
 * interleaved run by run. */
static void measure_map(pm_pool *pool, pm_map_fn fn, size_t n, int reps,
                        double *pool_s, double *bare_s, double *dyn_s)
{
    int64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
    double *tp = malloc((size_t)reps * sizeof *tp), *tb = malloc((size_t)reps * sizeof *tb);
    double *td = malloc((size_t)reps * sizeof *td);
    if (!in || !out || !tp || !tb || !td)
        die("malloc", -12);
    for (size_t i = 0; i < n; i++)
        in[i] = (int64_t)i;
    int threads = pm_pool_workers(pool);
    time_pool_map(pool, fn, in, out, n);              /* warm-up both */
    time_bare_loop(fn, in, out, n, threads);
    time_bare_dynamic(fn, in, out, n, threads);
    for (int r = 0; r < reps; r++) {
        tp[r] = time_pool_map(pool, fn, in, out, n);
        tb[r] = time_bare_loop(fn, in, out, n, threads);
        td[r] = time_bare_dynamic(fn, in, out, n, threads);
    }
    *pool_s = median(tp, reps);
    *bare_s = median(tb, reps);
    *dyn_s = median(td, reps);
    free(in);
    free(out);
    free(tp);
    free(tb);
    free(td);
}

/* ---- apply_async ---- */

static int tiny_task(void *arg, void **result_ret)
{
    *result_ret = arg;
    return 0;
}

static double time_apply_async(pm_pool *pool, pm_future **fs, size_t n)
{
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        int rc = pm_pool_apply_async(pool, tiny_task, (void *)(uintptr_t)i, &fs[i]);
        if (rc)
            die("pm_pool_apply_async", rc);
    }
    int rc = pm_wait_all(fs, n, 60.0);
    if (rc)
        die("pm_wait_all", rc);
    for (size_t i = 0; i < n; i++) {
        if (pm_future_result(fs[i]) != (void *)(uintptr_t)i)
            die("wrong result", -5);
        pm_future_free(fs[i]);
    }
    return now() - t0;
}

static double time_omp_tasks(size_t n, int threads, uintptr_t *res)
{
    double t0 = now();
#pragma omp parallel num_threads(threads)
#pragma omp single
    {
        for (size_t i = 0; i < n; i++) {
#pragma omp task firstprivate(i)
            {
                void *r;
                tiny_task((void *)(uintptr_t)i, &r);
                res[i] = (uintptr_t)r;
            }
        }
#pragma omp taskwait
    }
    return now() - t0;
}

static void measure_async(pm_pool *pool, size_t n, int reps, double *pool_s, double *omp_s)
{
    pm_future **fs = malloc(n * sizeof *fs);
    uintptr_t *res = malloc(n * sizeof *res);
    double *tp = malloc((size_t)reps * sizeof *tp), *to = malloc((size_t)reps * sizeof *to);
    if (!fs || !res || !tp || !to)
        die("malloc", -12);
    time_apply_async(pool, fs, n);
    time_omp_tasks(n, pm_pool_workers(pool), res);
    for (int r = 0; r < reps; r++) {
        tp[r] = time_apply_async(pool, fs, n);
        to[r] = time_omp_tasks(n, pm_pool_workers(pool), res);
    }
    *pool_s = median(tp, reps);
    *omp_s = median(to, reps);
    free(fs);
    free(res);
    free(tp);
    free(to);
}

/* ---- draining futures as they complete ---- */

enum { DRAIN_AC, DRAIN_WAIT_ANY, DRAIN_IN_ORDER };

static void submit_tiny(pm_pool *pool, pm_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = pm_pool_apply_async(pool, tiny_task, (void *)(uintptr_t)i, &fs[i]);
        if (rc)
            die("pm_pool_apply_async", rc);
    }
}

/* Seconds to take n just-submitted futures as they complete (pm_as_completed,
 * or the pm_wait_any loop future.h used to recommend) or in order, checking
 * and freeing each. Submission is not timed. */
static double time_drain(pm_pool *pool, pm_future **fs, size_t n, int how)
{
    submit_tiny(pool, fs, n);
    double t0 = now();
    size_t got = 0, i;
    pm_future *f;
    int rc = 0;
    if (how == DRAIN_AC) {
        pm_as_completed *ac;
        if ((rc = pm_as_completed_new(fs, n, &ac)) != 0)
            die("pm_as_completed_new", rc);
        while ((rc = pm_as_completed_next(ac, 60.0, &i, &f)) == 1) {
            got += pm_future_result(f) == (void *)(uintptr_t)i;
            pm_future_free(f);
        }
        pm_as_completed_free(ac);
    } else if (how == DRAIN_WAIT_ANY) {
        while (got < n && (rc = pm_wait_any(fs, n, 60.0, &i)) == 0) {
            got += pm_future_result(fs[i]) == (void *)(uintptr_t)i;
            pm_future_free(fs[i]);
            fs[i] = NULL;
        }
    } else {
        for (i = 0; i < n && (rc = pm_future_wait(fs[i], 60.0)) == 0; i++) {
            got += pm_future_result(fs[i]) == (void *)(uintptr_t)i;
            pm_future_free(fs[i]);
        }
    }
    double t = now() - t0;
    if (rc < 0 || got != n)
        die("draining futures", rc < 0 ? rc : -5);
    return t;
}

/* Medians of the three ways; the quadratic wait_any loop runs once, over
 * n_any futures (it takes seconds at 10^5). */
static void measure_drain(pm_pool *pool, size_t n, size_t n_any, int reps, double t[3])
{
    pm_future **fs = malloc(n * sizeof *fs);
    double *ta = malloc((size_t)reps * sizeof *ta), *to = malloc((size_t)reps * sizeof *to);
    if (!fs || !ta || !to)
        die("malloc", -12);
    time_drain(pool, fs, n, DRAIN_AC);
    time_drain(pool, fs, n, DRAIN_IN_ORDER);
    for (int r = 0; r < reps; r++) {
        ta[r] = time_drain(pool, fs, n, DRAIN_AC);
        to[r] = time_drain(pool, fs, n, DRAIN_IN_ORDER);
    }
    t[DRAIN_AC] = median(ta, reps);
    t[DRAIN_IN_ORDER] = median(to, reps);
    t[DRAIN_WAIT_ANY] = time_drain(pool, fs, n_any, DRAIN_WAIT_ANY);
    free(fs);
    free(ta);
    free(to);
}

/* ---- imap with an input callback ---- */

typedef struct counter_input {
    int64_t next, end;
} counter_input;

static int counter_read(void *item, void *arg)
{
    counter_input *c = arg;
    if (c->next == c->end)
        return 0;
    *(int64_t *)item = c->next++;
    return 1;
}

/* Seconds to drain an imap of n trivial items read by a callback. */
static double time_imap_input(pm_pool *pool, size_t n, size_t chunksize)
{
    counter_input c = {0, (int64_t)n};
    pm_map_spec s = {.fn = trivial, .in_size = sizeof(int64_t), .out_size = sizeof(int64_t),
                     .input = counter_read, .input_arg = &c, .chunksize = chunksize};
    double t0 = now();
    pm_imap *it;
    int rc = pm_pool_imap(pool, &s, &it);
    if (rc)
        die("pm_pool_imap", rc);
    int64_t v, sum = 0;
    int st;
    while ((rc = pm_imap_next(it, &v, NULL, &st, 60.0)) == 1)
        sum += v;
    pm_imap_free(it);
    if (rc || sum != (int64_t)(n * (n + 1) / 2))
        die("imap result", rc ? rc : -5);
    return now() - t0;
}

/* Medians for chunksize 1 (the old default), automatic, and 64. */
static void measure_imap_input(pm_pool *pool, size_t n, int reps, double t[3])
{
    const size_t cs[3] = {1, 0, 64};
    double *v[3];
    for (int k = 0; k < 3; k++) {
        v[k] = malloc((size_t)reps * sizeof *v[k]);
        if (!v[k])
            die("malloc", -12);
        time_imap_input(pool, n, cs[k]);
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 3; k++)
            v[k][r] = time_imap_input(pool, n, cs[k]);
    for (int k = 0; k < 3; k++) {
        t[k] = median(v[k], reps);
        free(v[k]);
    }
}

/* ---- the process backend ---- */

static int proc_task(void *arg, void **result_ret)
{
    (void)result_ret;
    return (int)((uintptr_t)arg & 0xffff);
}

/* Seconds for n tasks: all submitted then awaited (batch), or each
 * submitted, awaited and freed before the next (one at a time). */
static double time_proc_tasks(pm_pool *pool, pm_future **fs, size_t n, int one_at_a_time)
{
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        int rc = pm_pool_apply_async(pool, proc_task, (void *)(uintptr_t)i, &fs[i]);
        if (rc)
            die("pm_pool_apply_async (processes)", rc);
        if (one_at_a_time) {
            if (pm_future_wait(fs[i], 60.0) || pm_future_status(fs[i]) != (int)(i & 0xffff))
                die("process task", -5);
            pm_future_free(fs[i]);
        }
    }
    if (!one_at_a_time) {
        int rc = pm_wait_all(fs, n, 60.0);
        if (rc)
            die("pm_wait_all (processes)", rc);
        for (size_t i = 0; i < n; i++) {
            if (pm_future_status(fs[i]) != (int)(i & 0xffff))
                die("process task", -5);
            pm_future_free(fs[i]);
        }
    }
    return now() - t0;
}

/* t[0]: trivial map of n_map items, t[1]: batch of n_tasks, t[2]: n_one
 * tasks one at a time; medians of reps. */
static void measure_procs(int workers, size_t n_map, size_t n_tasks, size_t n_one, int reps,
                          double t[3])
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = workers;
    o.backend = PM_POOL_PROCESSES;
    pm_pool *pool;
    int rc = pm_pool_new(&o, &pool);
    if (rc)
        die("pm_pool_new (processes)", rc);
    int64_t *in = malloc(n_map * sizeof *in), *out = malloc(n_map * sizeof *out);
    pm_future **fs = malloc(n_tasks * sizeof *fs);
    double *v[3];
    for (int k = 0; k < 3; k++)
        v[k] = malloc((size_t)reps * sizeof *v[k]);
    if (!in || !out || !fs || !v[0] || !v[1] || !v[2])
        die("malloc", -12);
    for (size_t i = 0; i < n_map; i++)
        in[i] = (int64_t)i;
    time_pool_map(pool, trivial, in, out, n_map);       /* warm-up */
    time_proc_tasks(pool, fs, n_tasks, 0);
    for (int r = 0; r < reps; r++) {
        v[0][r] = time_pool_map(pool, trivial, in, out, n_map);
        v[1][r] = time_proc_tasks(pool, fs, n_tasks, 0);
        v[2][r] = time_proc_tasks(pool, fs, n_one, 1);
    }
    for (size_t i = 0; i < n_map; i++)
        if (out[i] != (int64_t)i + 1)
            die("process map result", -5);
    for (int k = 0; k < 3; k++) {
        t[k] = median(v[k], reps);
        free(v[k]);
    }
    free(in);
    free(out);
    free(fs);
    pm_pool_free(pool);
}

int main(int argc, char **argv)
{
    int quick = 0, workers = PM_POOL_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_pool [--quick] [--workers N]\n");
            return 2;
        }
    }
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = workers;
    pm_pool *pool;
    int rc = pm_pool_new(&o, &pool);
    if (rc)
        die("pm_pool_new", rc);
    int reps = quick ? 3 : 11;
    size_t n_triv = 1000000, n_heavy = quick ? 1000 : 4000, n_async = 100000;
    double p1, b1, d1, p2, b2, d2, p3, b3;
    measure_map(pool, trivial, n_triv, reps, &p1, &b1, &d1);
    measure_map(pool, heavy, n_heavy, reps, &p2, &b2, &d2);
    measure_async(pool, n_async, reps, &p3, &b3);
    size_t n_imap = 100000;
    double ti[3];
    measure_imap_input(pool, n_imap, reps, ti);
    size_t n_drain = 100000, n_any = quick ? 20000 : 100000;
    double td[3];
    measure_drain(pool, n_drain, n_any, reps, td);
    size_t n_ptask = 10000, n_pone = 2000;
    double tp[3];
    measure_procs(pm_pool_workers(pool), n_triv, n_ptask, n_pone, reps, tp);
    pm_future **fs1 = malloc(n_pone * sizeof *fs1);
    double *v1 = malloc((size_t)reps * sizeof *v1);
    if (!fs1 || !v1)
        die("malloc", -12);
    for (int r = 0; r < reps; r++)
        v1[r] = time_proc_tasks(pool, fs1, n_pone, 1);
    double t1 = median(v1, reps);
    free(fs1);
    free(v1);

    printf("bench_pool: %d workers, median of %d runs each; us per item\n",
           pm_pool_workers(pool), reps);
    printf("%-42s %10s %10s %7s %10s %7s\n", "measurement", "pmap", "bare", "ratio",
           "bare-dyn", "ratio");
    printf("%-42s %10.4f %10.4f %7.3f %10.4f %7.3f\n",
           "map, 10^6 trivial items, auto chunksize", p1 * 1e6 / n_triv,
           b1 * 1e6 / n_triv, p1 / b1, d1 * 1e6 / n_triv, p1 / d1);
    printf("%-42s %10.3f %10.3f %7.3f %10.3f %7.3f\n",
           "map, heavy items (omp parallel for)", p2 * 1e6 / n_heavy,
           b2 * 1e6 / n_heavy, p2 / b2, d2 * 1e6 / n_heavy, p2 / d2);
    printf("%-42s %10.4f %10.4f %7.3f\n", "apply_async x 10^5 + wait (bare: omp task)",
           p3 * 1e6 / n_async, b3 * 1e6 / n_async, p3 / b3);
    printf("%-42s %10.4f %10s %7s\n", "imap, 10^5 items from a callback, auto",
           ti[1] * 1e6 / n_imap, "", "");
    printf("%-42s %10.4f %10s %7s\n", "  same, chunksize 1 (the old default)",
           ti[0] * 1e6 / n_imap, "", "");
    printf("%-42s %10.4f %10s %7s\n", "  same, chunksize 64", ti[2] * 1e6 / n_imap, "", "");
    printf("%-42s %10.4f %10s %7s\n", "drain 10^5 futures: pm_as_completed",
           td[DRAIN_AC] * 1e6 / n_drain, "", "");
    printf("%-42s %10.4f %10s %7s\n", "  same, pm_future_wait in order",
           td[DRAIN_IN_ORDER] * 1e6 / n_drain, "", "");
    char label[64];
    snprintf(label, sizeof label, "  pm_wait_any loop, %zu futures (1 run)", n_any);
    printf("%-42s %10.4f %10s %7s\n", label, td[DRAIN_WAIT_ANY] * 1e6 / n_any, "", "");
    printf("%-42s %10.4f %10s %7s\n", "processes: map, 10^6 trivial items, auto",
           tp[0] * 1e6 / n_triv, "", "");
    printf("%-42s %10.4f %10s %7s\n", "processes: apply_async x 10^4 + wait",
           tp[1] * 1e6 / n_ptask, "", "");
    printf("%-42s %10.4f %10s %7s\n", "processes: apply_async + wait, one at a time",
           tp[2] * 1e6 / n_pone, "", "");
    printf("%-42s %10.4f %10s %7s\n", "  same on threads", t1 * 1e6 / n_pone, "", "");
    printf("(bare: schedule(static); bare-dyn: schedule(dynamic, auto chunksize))\n");
    printf("targets: trivial map <= 0.05 us/item: %s; heavy map within 5%% of bare: %s; "
           "apply_async <= 1 us/task: %s\n",
           p1 * 1e6 / n_triv <= 0.05 ? "met" : "MISSED",
           p2 / b2 <= 1.05 ? "met" : "MISSED",
           p3 * 1e6 / n_async <= 1.0 ? "met" : "MISSED");
    printf("targets, processes: trivial map <= 0.1 us/item: %s; apply_async <= 20 us/task: %s\n",
           tp[0] * 1e6 / n_triv <= 0.1 ? "met" : "MISSED",
           tp[1] * 1e6 / n_ptask <= 20.0 ? "met" : "MISSED");
    pm_pool_free(pool);
    return 0;
}
