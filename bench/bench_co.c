/* bench_co.c - lib/co's costs: the bare context switch, a scheduler round
 * trip (pm_co_yield), swapcontext for comparison, and 100,000 tasks each
 * sleeping 100 ms (wall time, peak RSS). Prints medians of several runs;
 * on a shared 2-core machine single runs are noisy.
 *
 *   bench_co [switch|yield|sleep|all] [-n TASKS] [-r RUNS] [-s STACK_KIB]
 *            [--engine uring|threads]
 * Compare with: python3 bench/co_asyncio.py (the same sleep test).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <ucontext.h>

#include <pmap/co.h>
#include <pmap/loop.h>
#include "co/co_internal.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- bare switch: main <-> one context, ping-pong ---- */

static pm__co_ctx main_ctx, co_ctx;
static volatile long hops;

static void pingpong(void *arg)
{
    (void)arg;
    for (;;) {
        hops++;
        pm__co_ctx_switch(&co_ctx, &main_ctx);
    }
}

static double bench_switch(long iters)
{
    pm__co_stack *st;
    int err;
    if (!(st = pm__co_stack_new(64 << 10, 1, &err)))
        return -1;
    pm__co_ctx_make(&co_ctx, st->lo, st->size, pingpong, NULL);
    double t0 = now();
    for (long i = 0; i < iters; i++)
        pm__co_ctx_switch(&main_ctx, &co_ctx);
    double t = now() - t0;
    pm__co_stack_free(st);
    return t / (2.0 * (double)iters) * 1e9;     /* ns per switch */
}

/* ---- swapcontext, for comparison ---- */

static ucontext_t uc_main, uc_co;

static void uc_pingpong(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static double bench_ucontext(long iters)
{
    static char stack[64 << 10];
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = sizeof stack;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_pingpong, 0);
    double t0 = now();
    for (long i = 0; i < iters; i++)
        swapcontext(&uc_main, &uc_co);
    return (now() - t0) / (2.0 * (double)iters) * 1e9;
}

/* ---- scheduler round trip: two tasks yielding to each other ---- */

static int64_t yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++)
        pm_co_yield();
    return 0;
}

static double bench_yield(pm_loop_engine eng, long iters)
{
    pm_loop_opts lo = {.engine = eng};
    pm_loop *l;
    pm_co_sched *s;
    if (pm_loop_new(&lo, &l) < 0 || pm_co_sched_new(l, NULL, &s) < 0)
        return -1;
    pm_co_task *t[2];
    double t0 = now();
    pm_co_spawn(s, yielder, &iters, &t[0]);
    pm_co_spawn(s, yielder, &iters, &t[1]);
    pm_co_gather(t, 2, NULL);
    double dt = now() - t0;
    pm_co_join(t[0], NULL);
    pm_co_join(t[1], NULL);
    pm_co_sched_free(s);
    pm_loop_free(l);
    return dt / (2.0 * (double)iters) * 1e9;    /* ns per yield (resume + suspend) */
}

/* ---- many sleepers ---- */

static int64_t sleeper(void *arg)
{
    (void)arg;
    return pm_co_sleep(100 * 1000000);
}

static double bench_sleep(pm_loop_engine eng, long n, size_t stack)
{
    pm_loop_opts lo = {.engine = eng};
    pm_co_opts co = {.size = sizeof co, .stack_size = stack};
    pm_loop *l;
    pm_co_sched *s;
    if (pm_loop_new(&lo, &l) < 0 || pm_co_sched_new(l, &co, &s) < 0)
        return -1;
    pm_co_task **t = calloc((size_t)n, sizeof *t);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        int rc = pm_co_spawn(s, sleeper, NULL, &t[i]);
        if (rc < 0) {
            fprintf(stderr, "spawn %ld: %s\n", i, strerror(-rc));
            return -1;
        }
    }
    int rc = pm_co_gather(t, (size_t)n, NULL);
    double dt = now() - t0;
    for (long i = 0; i < n; i++)
        pm_co_task_free(t[i]);
    free(t);
    pm_co_sched_free(s);
    pm_loop_free(l);
    return rc == 0 ? dt : -1;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv)
{
    const char *what = "all";
    long ntasks = 100000;
    int runs = 5;
    size_t stack_kib = 0;
    pm_loop_engine eng = PM_LOOP_AUTO;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            ntasks = atol(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            stack_kib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--engine") && i + 1 < argc)
            eng = !strcmp(argv[++i], "threads") ? PM_LOOP_THREADS : PM_LOOP_URING;
        else
            what = argv[i];
    }
    if (runs < 1 || runs > 101)
        runs = 5;
    double v[101];
    int all = !strcmp(what, "all");
    if (all || !strcmp(what, "switch")) {
        for (int r = 0; r < runs; r++)
            v[r] = bench_switch(10000000);
        printf("switch (%s): %.2f ns median of %d\n", pm__co_switch_kind(), median(v, runs), runs);
        for (int r = 0; r < runs; r++)
            v[r] = bench_ucontext(1000000);
        printf("swapcontext (glibc): %.2f ns median of %d\n", median(v, runs), runs);
    }
    if (all || !strcmp(what, "yield")) {
        for (int r = 0; r < runs; r++)
            v[r] = bench_yield(eng, 1000000);
        printf("yield round trip: %.2f ns median of %d\n", median(v, runs), runs);
    }
    if (all || !strcmp(what, "sleep")) {
        int sr = runs < 3 ? runs : 3;
        for (int r = 0; r < sr; r++)
            v[r] = bench_sleep(eng, ntasks, stack_kib << 10);
        printf("%ld tasks sleeping 100 ms (stack %zu KiB, guard %s): %.3f s median of %d, "
               "peak RSS %.0f MiB\n", ntasks, stack_kib ? stack_kib : 64, pm__co_guard_kind(),
               median(v, sr), sr, peak_rss_mib());
    }
    return 0;
}
