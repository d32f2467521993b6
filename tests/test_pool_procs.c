/* test_pool_procs.c - pm_pool on worker processes (PM_POOL_PROCESSES): the
 * backend-independent behaviour of test_pool.c in its process form (order,
 * failure index, cancel, close / terminate / join, imap bounds), and what
 * only processes have: crash isolation (SIGSEGV, abort, _exit, timeouts,
 * kill -9 from outside, each in the middle of a 10,000-item map or as an
 * apply task), max_tasks, the memory limit, no process left behind (after
 * pm_pool_free and after the parent is SIGKILLed), workers that run
 * OpenMP after the parent did (GCC bug 60035), and tasks sent in batches
 * (crashes and timeouts mid-batch, completions streaming past a long task,
 * cancel and terminate, max_tasks, apply_async_data bytes).
 *
 * Tasks run in other processes: they report through results and statuses,
 * never through the test's memory. Every wait has a bound. */
#define _GNU_SOURCE
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pmap/error.h>
#include <pmap/pipeline.h>
#include <pmap/pool.h>
#include "testutil.h"

#define WAIT_S 60.0
#define NCRASH 10000

static pm_pool *new_procs(int workers, const pm_pool_opts *base)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    if (base)
        o = *base;
    o.workers = workers;
    o.backend = PM_POOL_PROCESSES;
    pm_pool *p = NULL;
    int rc = pm_pool_new(&o, &p);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return p;
}

/* Per-task timeouts of the crash tests: a trivial task must never reach
 * them. Under the sanitizers, with other tests loading both cores (CI
 * runs two at once, mpirun's ranks among them), a worker can wait a
 * second for a core: there they are six times longer. */
#ifdef PM_TEST_SANITIZED
#define TIMEOUT_SCALE 6
#else
#define TIMEOUT_SCALE 1
#endif

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- functions that run in the workers ---- */

static int times_k(const void *in, void *out, void *arg)
{
    uint64_t k = arg ? *(const uint64_t *)arg : 1;
    *(uint64_t *)out = *(const uint64_t *)in * k + 1;
    return 0;
}

static int fail_multiples_of_7(const void *in, void *out, void *arg)
{
    (void)arg;
    uint64_t v = *(const uint64_t *)in;
    if (v % 7 == 6)
        return -(int)(100 + v);
    *(uint64_t *)out = v * 2;
    return 0;
}

/* The items that misbehave in a crash map (arg bytes). */
typedef struct crash_plan {
    uint64_t segv, abrt, exit3, slow, kill_me;
    char pidfile[200];           /* kill_me writes its pid here */
} crash_plan;

static int crashy(const void *in, void *out, void *arg)
{
    const crash_plan *c = arg;
    uint64_t v = *(const uint64_t *)in;
    if (v == c->segv)
        raise(SIGSEGV);
    if (v == c->abrt)
        abort();
    if (v == c->exit3)
        _exit(3);
    if (v == c->slow)
        sleep_s(30);
    if (v == c->kill_me) {
        FILE *f = fopen(c->pidfile, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
        sleep_s(30);
    }
    *(uint64_t *)out = v + 1;
    return 0;
}

static int task_pid(void *arg, void **result_ret)
{
    (void)arg;
    int pids[2] = {(int)getpid(), (int)getppid()};
    memcpy(*result_ret, pids, sizeof pids);
    return 0;
}

static int task_sum(void *arg, void **result_ret)
{
    const uint32_t *a = arg;
    uint64_t s = 0;
    for (int i = 0; i < 64; i++)
        s += a[i];
    memcpy(*result_ret, &s, sizeof s);
    return 7;
}

static int task_opaque(void *arg, void **result_ret)
{
    (void)result_ret;
    return (int)(intptr_t)arg;
}

static int task_sleep_ms(void *arg, void **result_ret)
{
    (void)result_ret;
    sleep_s((double)(intptr_t)arg / 1000.0);
    return 0;
}

static int task_crash(void *arg, void **result_ret)
{
    (void)result_ret;
    switch ((int)(intptr_t)arg) {
    case 1: raise(SIGSEGV); break;
    case 2: abort();
    case 3: _exit(3);
    case 4: sleep_s(30); break;
    }
    return 0;
}

static int worker_inits;               /* in each worker: initializer runs */
static uint64_t worker_initval;

static int init_count(void *arg)
{
    worker_inits++;
    worker_initval = arg ? *(const uint64_t *)arg : 0;
    return worker_initval == 666 ? -EPERM : 0;
}

static int task_inits(void *arg, void **result_ret)
{
    (void)arg;
    uint64_t r[3] = {(uint64_t)worker_inits, worker_initval, (uint64_t)getpid()};
    memcpy(*result_ret, r, sizeof r);
    return 0;
}

#ifndef PM_TEST_SANITIZED
static int task_alloc(void *arg, void **result_ret)
{
    (void)result_ret;
    size_t n = (size_t)(uintptr_t)arg;
    char *p = malloc(n);
    if (!p)
        return -ENOMEM;
    memset(p, 1, n);
    free(p);
    return 0;
}
#endif

static int task_omp(void *arg, void **result_ret)
{
    (void)arg;
    int n = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp atomic
        n++;
    }
    memcpy(*result_ret, &n, sizeof n);
    return 0;
}

/* ---- helpers ---- */

static uint64_t *iota(size_t n)
{
    uint64_t *a = malloc(n * sizeof *a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    return a;
}

static int wait_gone(int pid, double secs)
{
    double end = pm_test_now() + secs;
    while (!pm_test_pid_gone(pid)) {
        if (pm_test_now() > end)
            return 0;
        sleep_s(0.01);
    }
    return 1;
}

/* Runs fn on one task and returns its status; result in res (size rs). */
static int run_task(pm_pool *p, pm_task_fn fn, const void *arg, size_t as, void *res, size_t rs)
{
    pm_future *f = NULL;
    int rc = pm_pool_apply_async_data(p, fn, arg, as, rs, &f);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(pm_future_wait(f, WAIT_S), 0);
    int st = pm_future_status(f);
    void *r = pm_future_result(f);
    if (res && r)
        memcpy(res, r, rs);
    pm_future_free(f);
    return st;
}

/* ---- lifecycle and options ---- */

static void test_new_and_invalid(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    pm_pool *p = NULL;
    o.backend = (pm_pool_backend)7;
    CU_ASSERT_EQUAL(pm_pool_new(&o, &p), -EINVAL);
    o.backend = PM_POOL_PROCESSES;
    o.task_timeout = -1;
    CU_ASSERT_EQUAL(pm_pool_new(&o, &p), -EINVAL);
    o.task_timeout = 0;
    o.initarg_size = 8;           /* without initarg */
    CU_ASSERT_EQUAL(pm_pool_new(&o, &p), -EINVAL);
    p = new_procs(3, NULL);
    CU_ASSERT_EQUAL(pm_pool_workers(p), 3);
    pm_pool_free(p);
}

static void test_initializer_per_worker(void)
{
    uint64_t val = 42;
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.initializer = init_count;
    o.initarg = &val;
    o.initarg_size = sizeof val;
    o.max_tasks = 1;              /* every task on a fresh worker */
    pm_pool *p = new_procs(2, &o);
    uint64_t prev_pid = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t r[3] = {0};
        CU_ASSERT_EQUAL(run_task(p, task_inits, NULL, 0, r, sizeof r), 0);
        CU_ASSERT_EQUAL(r[0], 1);         /* once in this worker */
        CU_ASSERT_EQUAL(r[1], 42);        /* the bytes were copied */
        CU_ASSERT_NOT_EQUAL(r[2], prev_pid);
        prev_pid = r[2];
    }
    pm_pool_free(p);

    val = 666;                    /* init_count fails with -EPERM */
    p = NULL;
    o.workers = 2;
    o.backend = PM_POOL_PROCESSES;
    CU_ASSERT_EQUAL(pm_pool_new(&o, &p), -EPERM);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(waitpid(-1, NULL, WNOHANG), -1);   /* nothing left */
}

/* Fails while the file named by arg exists. */
static int init_unless_file(void *arg)
{
    return access(arg, F_OK) == 0 ? -EACCES : 0;
}

/* A replacement worker whose initializer fails fails the task that needed
 * it, with the initializer's status; the next one tries again. */
static void test_initializer_fails_in_replacement(void)
{
    char *dir = pm_test_tmpdir();
    char path[256];
    snprintf(path, sizeof path, "%s/no-init", dir);
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.initializer = init_unless_file;
    o.initarg = path;
    o.initarg_size = strlen(path) + 1;
    o.max_tasks = 1;
    pm_pool *p = new_procs(1, &o);
    int r[2];
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, r, sizeof r), 0);
    CU_ASSERT_EQUAL(pm_test_write_file(path, "x", 1), 0);
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, r, sizeof r), -EACCES);
    uint64_t in[4] = {1, 2, 3, 4}, out[4] = {0};
    pm_map_spec s = {.fn = times_k, .in = in, .in_size = 8, .n = 4, .out = out, .out_size = 8};
    size_t fi = 9;
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fi), -EACCES);
    CU_ASSERT_EQUAL(fi, 0);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, r, sizeof r), 0);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fi), 0);
    CU_ASSERT_EQUAL(out[3], 5);
    pm_pool_free(p);
    pm_test_rmtree(dir);
    free(dir);
}

/* ---- maps ---- */

static void test_map_in_order(void)
{
    pm_pool *p = new_procs(2, NULL);
    size_t n = 50000;
    uint64_t *in = iota(n), *out = calloc(n, sizeof *out), k = 3;
    size_t css[] = {1, 20, 0};
    for (int c = 0; c < 3; c++) {
        memset(out, 0, n * sizeof *out);
        pm_map_spec s = {.fn = times_k, .arg = &k, .arg_size = sizeof k, .in = in,
                         .in_size = 8, .n = c == 0 ? 2000 : n, .out = out, .out_size = 8,
                         .chunksize = css[c]};
        size_t fi = 1;
        CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fi), 0);
        CU_ASSERT_EQUAL(fi, s.n);
        size_t bad = 0;
        for (size_t i = 0; i < s.n; i++)
            bad += out[i] != i * 3 + 1;
        CU_ASSERT_EQUAL(bad, 0);
    }
    /* arg_size 0 on processes: arg passes as an opaque value (NULL here) */
    pm_map_spec s = {.fn = times_k, .in = in, .in_size = 8, .n = 100, .out = out, .out_size = 8};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    CU_ASSERT_EQUAL(out[99], 100);
    free(in);
    free(out);
    pm_pool_free(p);
}

static void test_map_lowest_failing_index(void)
{
    pm_pool *p = new_procs(2, NULL);
    size_t n = 1000, fi = 0;
    uint64_t *in = iota(n), *out = calloc(n, sizeof *out);
    pm_map_spec s = {.fn = fail_multiples_of_7, .in = in, .in_size = 8, .n = n,
                     .out = out, .out_size = 8, .chunksize = 3};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fi), -106);
    CU_ASSERT_EQUAL(fi, 6);
    CU_ASSERT_EQUAL(out[5], 10);
    CU_ASSERT_EQUAL(out[999], 1998);

    pm_future *f;
    fi = 0;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &fi, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -106);
    CU_ASSERT_EQUAL(fi, 6);
    pm_future_free(f);
    free(in);
    free(out);
    pm_pool_free(p);
}

/* Large items: batches are cut to the shared area and it grows. */
static int big_item(const void *in, void *out, void *arg)
{
    (void)arg;
    const unsigned char *a = in;
    unsigned char *b = out;
    for (size_t i = 0; i < 300000; i++)
        b[i] = (unsigned char)(a[i] + 1);
    return 0;
}

static void test_map_large_items(void)
{
    pm_pool *p = new_procs(2, NULL);
    size_t n = 300, sz = 300000;
    unsigned char *in = malloc(n * sz), *out = calloc(n, sz);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    pm_test_fill_random(in, n * sz, 5);
    pm_map_spec s = {.fn = big_item, .in = in, .in_size = sz, .n = n, .out = out,
                     .out_size = sz};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    size_t bad = 0;
    for (size_t i = 0; i < n * sz; i++)
        bad += out[i] != (unsigned char)(in[i] + 1);
    CU_ASSERT_EQUAL(bad, 0);
    free(in);
    free(out);
    pm_pool_free(p);
}

/* An argument larger than the whole shared area: one item per request. */
static int sum_big_arg(const void *in, void *out, void *arg)
{
    const uint32_t *a = arg;
    uint64_t i = *(const uint64_t *)in;
    *(uint64_t *)out = a[i] + a[(80u << 20) / 4 - 1 - i];
    return 0;
}

static void test_map_huge_arg(void)
{
    pm_pool *p = new_procs(2, NULL);
    size_t asz = (size_t)80 << 20, n = 6;
    uint32_t *a = malloc(asz);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (size_t i = 0; i < asz / 4; i++)
        a[i] = (uint32_t)i;
    uint64_t *in = iota(n), out[6] = {0};
    pm_map_spec s = {.fn = sum_big_arg, .arg = a, .arg_size = asz, .in = in, .in_size = 8,
                     .n = n, .out = out, .out_size = 8};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(out[i], (uint64_t)(asz / 4 - 1));
    free(a);
    free(in);
    pm_pool_free(p);
}

static void test_imap_ordered_unordered_errors(void)
{
    pm_pool *p = new_procs(2, NULL);
    size_t n = 500;
    uint64_t *in = iota(n);
    for (int ordered = 0; ordered < 2; ordered++) {
        pm_map_spec s = {.fn = fail_multiples_of_7, .in = in, .in_size = 8, .n = n,
                         .out_size = 8, .chunksize = 4};
        pm_imap *it;
        int rc = ordered ? pm_pool_imap(p, &s, &it) : pm_pool_imap_unordered(p, &s, &it);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        size_t got = 0, idx, wrong = 0, inorder = 1;
        int st;
        uint64_t v;
        char *seen = calloc(n, 1);
        while ((rc = pm_imap_next(it, &v, &idx, &st, WAIT_S)) == 1) {
            if (ordered && idx != got)
                inorder = 0;
            if (idx < n)
                seen[idx]++;
            if (idx % 7 == 6)
                wrong += st != -(int)(100 + idx);
            else
                wrong += st != 0 || v != idx * 2;
            got++;
        }
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(got, n);
        CU_ASSERT_EQUAL(wrong, 0);
        CU_ASSERT(inorder);
        size_t once = 0;
        for (size_t i = 0; i < n; i++)
            once += seen[i] == 1;
        CU_ASSERT_EQUAL(once, n);
        free(seen);
        pm_imap_free(it);
    }
    free(in);
    pm_pool_free(p);
}

/* The input callback runs in the caller: count reads against results. */
typedef struct counted_input {
    uint64_t next, n;
} counted_input;

static int counted_read(void *item, void *arg)
{
    counted_input *c = arg;
    if (c->next == c->n)
        return 0;
    *(uint64_t *)item = c->next++;
    return 1;
}

static void test_imap_bounded_in_flight(void)
{
    pm_pool *p = new_procs(2, NULL);
    counted_input c = {0, 2000};
    pm_map_spec s = {.fn = times_k, .in_size = 8, .out_size = 8, .max_inflight = 16,
                     .input = counted_read, .input_arg = &c};
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    size_t got = 0, over = 0, wrong = 0, idx;
    int st;
    uint64_t v;
    while (pm_imap_next(it, &v, &idx, &st, WAIT_S) == 1) {
        got++;
        over += c.next - got > 16;
        wrong += st != 0 || v != idx + 1;
    }
    CU_ASSERT_EQUAL(got, 2000);
    CU_ASSERT_EQUAL(over, 0);
    CU_ASSERT_EQUAL(wrong, 0);
    pm_imap_free(it);
    pm_pool_free(p);
}

static int slow_item(const void *in, void *out, void *arg)
{
    (void)arg;
    sleep_s(0.005);
    *(uint64_t *)out = *(const uint64_t *)in + 1;
    return 0;
}

typedef struct map_thread_arg {
    pm_pool *p;
    pm_map_spec s;
    size_t fi;
    int rc;
    double secs;
} map_thread_arg;

static void *map_thread(void *arg)
{
    map_thread_arg *m = arg;
    double t0 = pm_test_now();
    m->rc = pm_pool_map(m->p, &m->s, &m->fi);
    m->secs = pm_test_now() - t0;
    return NULL;
}

/* 1000 items of 5 ms on 2 workers (2.5 s); terminate after 0.2 s: the map
 * returns -ECANCELED at once, every item below the reported index ran. */
static void test_terminate_stops_a_map(void)
{
    pm_pool *p = new_procs(2, NULL);
    size_t n = 1000;
    uint64_t *in = iota(n), *out = calloc(n, sizeof *out);
    map_thread_arg m = {.p = p, .s = {.fn = slow_item, .in = in, .in_size = 8, .n = n,
                                      .out = out, .out_size = 8}};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, map_thread, &m), 0);
    sleep_s(0.2);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    CU_ASSERT(pm_test_now() - t0 < 1.0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(m.rc, -ECANCELED);
    CU_ASSERT(m.fi > 0 && m.fi < n);
    CU_ASSERT(m.secs < 2.0);
    size_t wrong = 0;
    for (size_t i = 0; i < m.fi && i < n; i++)
        wrong += out[i] != i + 1;
    CU_ASSERT_EQUAL(wrong, 0);
    free(in);
    free(out);
    pm_pool_free(p);
}

static void test_imap_free_early(void)
{
    pm_pool *p = new_procs(2, NULL);
    size_t n = 2000;
    uint64_t *in = iota(n);
    pm_map_spec s = {.fn = slow_item, .in = in, .in_size = 8, .n = n, .out_size = 8,
                     .chunksize = 4};
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    uint64_t v;
    int st;
    size_t idx;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(pm_imap_next(it, &v, &idx, &st, WAIT_S), 1);
        CU_ASSERT_EQUAL(idx, (size_t)i);
        CU_ASSERT_EQUAL(v, (uint64_t)i + 1);
    }
    double t0 = pm_test_now();
    pm_imap_free(it);             /* 10 s of work left */
    CU_ASSERT(pm_test_now() - t0 < 1.0);
    int r[2];
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, r, sizeof r), 0);
    free(in);
    pm_pool_free(p);
}

/* ---- tasks ---- */

static void test_apply_async_data_and_opaque(void)
{
    pm_pool *p = new_procs(2, NULL);
    uint32_t a[64];
    uint64_t want = 0;
    for (int i = 0; i < 64; i++)
        want += a[i] = (uint32_t)(i * 1000 + 3);
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async_data(p, task_sum, a, sizeof a, 8, &f), 0);
    memset(a, 0, sizeof a);       /* copied at submission */
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), 7);
    uint64_t *r = pm_future_result(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(*r, want);
    pm_future_free(f);

    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_opaque, (void *)(intptr_t)-1234, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -1234);
    CU_ASSERT_PTR_NULL(pm_future_result(f));
    pm_future_free(f);
    CU_ASSERT_EQUAL(pm_pool_apply_async_data(p, task_sum, NULL, 8, 8, &f), -EINVAL);
    pm_pool_free(p);
}

/* Writes its result elsewhere and points *result_ret there. */
static int task_result_elsewhere(void *arg, void **result_ret)
{
    static uint64_t r;
    r = *(const uint64_t *)arg * 3;
    *result_ret = &r;
    return 0;
}

/* The same contract on threads: the argument is a copy, the result a
 * buffer the future owns (filled from wherever the task pointed). */
static void test_apply_async_data_on_threads(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = 2;
    pm_pool *p;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&o, &p), 0);
    for (int backend = 0; backend < 2; backend++) {
        uint32_t a[64];
        for (int i = 0; i < 64; i++)
            a[i] = 2;
        uint64_t r = 0, x = 14;
        CU_ASSERT_EQUAL(run_task(p, task_sum, a, sizeof a, &r, sizeof r), 7);
        CU_ASSERT_EQUAL(r, 128);
        CU_ASSERT_EQUAL(run_task(p, task_result_elsewhere, &x, sizeof x, &r, sizeof r), 0);
        CU_ASSERT_EQUAL(r, 42);
        pm_pool_free(p);
        p = new_procs(2, NULL);
    }
    pm_pool_free(p);
}

static void test_cancel_terminate_close_join(void)
{
    pm_pool *p = new_procs(1, NULL);
    pm_future *slow, *fs[200];
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_sleep_ms, (void *)(intptr_t)300, &slow), 0);
    for (int i = 0; i < 200; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_opaque, (void *)(intptr_t)i, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(fs[199]), 0);
    for (double end = pm_test_now() + WAIT_S; !pm_future_running(slow) && pm_test_now() < end;)
        sleep_s(0.001);
    CU_ASSERT_FATAL(pm_future_running(slow));
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);
    CU_ASSERT_EQUAL(pm_pool_apply_async(p, task_opaque, NULL, &fs[199]), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    CU_ASSERT_EQUAL(pm_future_status(slow), 0);      /* running: it finished */
    int cancelled = 0;
    for (int i = 0; i < 200; i++) {
        cancelled += pm_future_status(fs[i]) == -ECANCELED;
        pm_future_free(fs[i]);
    }
    CU_ASSERT_EQUAL(cancelled, 200);  /* the only worker was busy */
    pm_future_free(slow);
    pm_pool_free(p);

    p = new_procs(2, NULL);       /* close: queued work still runs */
    for (int i = 0; i < 50; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_opaque, (void *)(intptr_t)i, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), -EINVAL);      /* still open */
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    uint64_t x = 0;
    pm_map_spec s = {.fn = times_k, .in = &x, .in_size = 8, .n = 1, .out = &x, .out_size = 8};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        ok += pm_future_status(fs[i]) == i;
        pm_future_free(fs[i]);
    }
    CU_ASSERT_EQUAL(ok, 50);
    pm_pool_free(p);
}

static void test_map_async_cancel_before_start(void)
{
    pm_pool *p = new_procs(1, NULL);
    pm_future *slow, *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_sleep_ms, (void *)(intptr_t)200, &slow), 0);
    uint64_t in[10] = {0}, out[10] = {0};
    pm_map_spec s = {.fn = times_k, .in = in, .in_size = 8, .n = 10, .out = out, .out_size = 8};
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, NULL, &f), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(slow, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -ECANCELED);
    CU_ASSERT_EQUAL(out[0], 0);
    pm_future_free(f);
    pm_future_free(slow);
    pm_pool_free(p);
}

/* ---- crashes ---- */

static void check_crash_status(size_t i, int st, const crash_plan *c, size_t *wrong)
{
    int want = 0;
    if (i == c->segv)
        want = -(PM_EWORKER_SIGNALED + SIGSEGV);
    else if (i == c->abrt)
        want = -(PM_EWORKER_SIGNALED + SIGABRT);
    else if (i == c->exit3)
        want = -(PM_EWORKER_EXITED + 3);
    else if (i == c->slow)
        want = -ETIMEDOUT;
    else if (i == c->kill_me)
        want = -(PM_EWORKER_SIGNALED + SIGKILL);
    if (st != want) {
        (*wrong)++;
        if (*wrong < 5)
            fprintf(stderr, "item %zu: status %d (%s), want %d\n", i, st, pm_strerror(st), want);
    }
}

/* One map of NCRASH items with a segfault, an abort, an _exit(3) and one
 * past the timeout: through imap (every item's status) and map_async (the
 * lowest failure, every other result), then a clean map. */
static void test_crashes_in_a_map(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.task_timeout = 0.5 * TIMEOUT_SCALE;
    pm_pool *p = new_procs(2, &o);
    crash_plan c = {.segv = 1234, .abrt = 4321, .exit3 = 7000, .slow = 9000,
                    .kill_me = UINT64_MAX};
    uint64_t *in = iota(NCRASH), *out = calloc(NCRASH, sizeof *out);
    pm_map_spec s = {.fn = crashy, .arg = &c, .arg_size = sizeof c, .in = in, .in_size = 8,
                     .n = NCRASH, .out_size = 8};
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    size_t got = 0, wrong = 0, idx;
    int st;
    uint64_t v;
    while (pm_imap_next(it, &v, &idx, &st, WAIT_S) == 1) {
        check_crash_status(idx, st, &c, &wrong);
        if (st == 0 && v != idx + 1)
            wrong++;
        got++;
    }
    pm_imap_free(it);
    CU_ASSERT_EQUAL(got, NCRASH);
    CU_ASSERT_EQUAL(wrong, 0);

    s.out = out;                  /* map_async: automatic chunks */
    size_t fi = 0;
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &fi, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -(PM_EWORKER_SIGNALED + SIGSEGV));
    CU_ASSERT_EQUAL(fi, 1234);
    pm_future_free(f);
    wrong = 0;
    for (size_t i = 0; i < NCRASH; i++)
        if (i != c.segv && i != c.abrt && i != c.exit3 && i != c.slow)
            wrong += out[i] != i + 1;
    CU_ASSERT_EQUAL(wrong, 0);

    c.abrt = c.exit3 = c.slow = UINT64_MAX;            /* blocking map */
    memset(out, 0, NCRASH * sizeof *out);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fi), -(PM_EWORKER_SIGNALED + SIGSEGV));
    CU_ASSERT_EQUAL(fi, 1234);
    CU_ASSERT_EQUAL(out[1233], 1234);
    CU_ASSERT_EQUAL(out[1235], 1236);

    c.segv = UINT64_MAX;                                /* the pool goes on */
    memset(out, 0, NCRASH * sizeof *out);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fi), 0);
    CU_ASSERT_EQUAL(fi, NCRASH);
    CU_ASSERT_EQUAL(out[NCRASH - 1], NCRASH);
    free(in);
    free(out);
    pm_pool_free(p);
}

static void test_crashing_tasks(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.task_timeout = 0.5 * TIMEOUT_SCALE;
    pm_pool *p = new_procs(2, &o);
    int want[5] = {0, -(PM_EWORKER_SIGNALED + SIGSEGV), -(PM_EWORKER_SIGNALED + SIGABRT),
                   -(PM_EWORKER_EXITED + 3), -ETIMEDOUT};
    pm_future *f[5];
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_crash, (void *)(intptr_t)i, &f[i]), 0);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(pm_future_wait(f[i], WAIT_S), 0);
        CU_ASSERT_EQUAL(pm_future_status(f[i]), want[i]);
        pm_future_free(f[i]);
    }
    int pids[2];
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, pids, sizeof pids), 0);
    CU_ASSERT(pids[0] > 0);
    CU_ASSERT_STRING_EQUAL(pm_strerror(want[1]), "worker killed by signal 11 (Segmentation fault)");
    CU_ASSERT_STRING_EQUAL(pm_strerror(want[3]), "worker exited with status 3");
    CU_ASSERT_EQUAL(PM_WORKER_SIGNAL(want[2]), SIGABRT);
    CU_ASSERT_EQUAL(PM_WORKER_EXIT(want[3]), 3);
    CU_ASSERT_EQUAL(PM_WORKER_SIGNAL(-EINVAL), 0);
    CU_ASSERT_EQUAL(PM_WORKER_EXIT(-EINVAL), -1);
    pm_pool_free(p);
}

/* A caller with every signal blocked and SIGCHLD ignored (both survive
 * exec): the server still reaps and reports its workers' deaths. */
static void test_crash_with_signals_blocked_and_sigchld_ignored(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
    sigaction(SIGCHLD, &ign, &prev);
    pm_pool *p = new_procs(1, NULL);
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_crash, (void *)(intptr_t)1, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -(PM_EWORKER_SIGNALED + SIGSEGV));
    pm_future_free(f);
    int r[2];
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, r, sizeof r), 0);
    pm_pool_free(p);
    sigaction(SIGCHLD, &prev, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CU_ASSERT(wait_gone(r[0], 10));
    CU_ASSERT(wait_gone(r[1], 10));
}

static void test_kill9_from_outside(void)
{
    char *dir = pm_test_tmpdir();
    pm_pool *p = new_procs(2, NULL);
    crash_plan c = {.segv = UINT64_MAX, .abrt = UINT64_MAX, .exit3 = UINT64_MAX,
                    .slow = UINT64_MAX, .kill_me = 5555};
    snprintf(c.pidfile, sizeof c.pidfile, "%s/pid", dir);
    uint64_t *in = iota(NCRASH), *out = calloc(NCRASH, sizeof *out);
    pm_map_spec s = {.fn = crashy, .arg = &c, .arg_size = sizeof c, .in = in, .in_size = 8,
                     .n = NCRASH, .out = out, .out_size = 8};
    pm_future *f;
    size_t fi = 0;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &fi, &f), 0);
    int pid = 0;
    for (double end = pm_test_now() + WAIT_S; !pid && pm_test_now() < end; sleep_s(0.01)) {
        FILE *fp = fopen(c.pidfile, "r");
        if (fp && fscanf(fp, "%d", &pid) != 1)
            pid = 0;
        if (fp)
            fclose(fp);
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_EQUAL(kill(pid, SIGKILL), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -(PM_EWORKER_SIGNALED + SIGKILL));
    CU_ASSERT_EQUAL(fi, 5555);
    size_t wrong = 0;
    for (size_t i = 0; i < NCRASH; i++)
        wrong += i != 5555 && out[i] != i + 1;
    CU_ASSERT_EQUAL(wrong, 0);
    pm_future_free(f);
    free(in);
    free(out);
    pm_pool_free(p);
    pm_test_rmtree(dir);
    free(dir);
}

static void test_max_tasks_replaces_workers(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.max_tasks = 2;
    pm_pool *p = new_procs(1, &o);
    int pids[6];
    for (int i = 0; i < 6; i++) {
        int r[2] = {0, 0};
        CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, r, sizeof r), 0);
        pids[i] = r[0];
    }
    for (int i = 0; i < 6; i += 2) {
        CU_ASSERT_EQUAL(pids[i], pids[i + 1]);           /* two tasks each */
        if (i)
            CU_ASSERT_NOT_EQUAL(pids[i], pids[i - 1]);   /* then a new one */
    }
    CU_ASSERT(wait_gone(pids[0], 5));

    uint64_t in[40], out[40];             /* a map: one worker per item */
    for (int i = 0; i < 40; i++)
        in[i] = (uint64_t)i;
    pm_map_spec s = {.fn = times_k, .in = in, .in_size = 8, .n = 40, .out = out,
                     .out_size = 8, .chunksize = 1};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    for (int i = 0; i < 40; i++)
        CU_ASSERT_EQUAL(out[i], (uint64_t)i + 1);
    pm_pool_free(p);
}

static int task_crash_some(void *arg, void **result_ret)
{
    (void)result_ret;
    intptr_t i = (intptr_t)arg;
    if (i % 500 == 499)
        raise(SIGSEGV);
    return (int)(i & 0xfff);
}

/* Many tasks from two threads, one in 500 crashing: every status right. */
static void *submit_many(void *arg)
{
    pm_pool *p = arg;
    enum { N = 5000 };
    pm_future **fs = calloc(N, sizeof *fs);
    intptr_t wrong = 0;
    for (intptr_t i = 0; i < N; i++)
        if (pm_pool_apply_async(p, task_crash_some, (void *)i, &fs[i]))
            wrong++;
    if (pm_wait_all(fs, N, WAIT_S))
        wrong++;
    for (intptr_t i = 0; i < N; i++) {
        int want = i % 500 == 499 ? -(PM_EWORKER_SIGNALED + SIGSEGV) : (int)(i & 0xfff);
        wrong += fs[i] && pm_future_status(fs[i]) != want;
        pm_future_free(fs[i]);
    }
    free(fs);
    return (void *)wrong;
}

static void test_stress_tasks_with_crashes(void)
{
    pm_pool *p = new_procs(2, NULL);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, submit_many, p), 0);
    for (int i = 0; i < 2; i++) {
        void *wrong;
        pthread_join(th[i], &wrong);
        CU_ASSERT_EQUAL((intptr_t)wrong, 0);
    }
    pm_pool_free(p);
}

/* ---- tasks in batches ---- */

static int sleep_item(const void *in, void *out, void *arg)
{
    (void)arg;
    sleep_s((double)*(const uint64_t *)in / 1000.0);
    *(uint64_t *)out = 1;
    return 0;
}

/* Keeps a pool's workers busy for ms milliseconds with one map item each
 * (map items are not tasks): tasks queued meanwhile wait, and when it ends
 * the proxy takes them as one batch. */
typedef struct blocker {
    uint64_t in[4], out[4];
    size_t fail;
    pm_future *f;
} blocker;

static void block_workers(pm_pool *p, blocker *b, uint64_t ms)
{
    size_t n = (size_t)pm_pool_workers(p);
    for (size_t i = 0; i < n; i++)
        b->in[i] = ms;
    pm_map_spec s = {.fn = sleep_item, .in = b->in, .in_size = 8, .n = n, .out = b->out,
                     .out_size = 8, .chunksize = 1};
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &b->fail, &b->f), 0);
}

static void unblock_wait(blocker *b)
{
    CU_ASSERT_EQUAL_FATAL(pm_future_wait(b->f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(b->f), 0);
    pm_future_free(b->f);
}

/* One worker, ten tasks queued behind a map item, so they go out as one
 * batch: a SIGSEGV, an abort, an _exit(3) and a timeout in its middle fail
 * just those tasks, the ones after each run on a replacement; a task of
 * the batch that its worker has not reached counts as started. */
static void test_batch_crashes_mid_batch(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.task_timeout = 1.0 * TIMEOUT_SCALE;
    pm_pool *p = new_procs(1, &o);
    blocker b;
    block_workers(p, &b, 100);
    int kind[10] = {0, 0, 1, 0, 2, 0, 3, 0, 4, 0};
    int want[5] = {0, -(PM_EWORKER_SIGNALED + SIGSEGV), -(PM_EWORKER_SIGNALED + SIGABRT),
                   -(PM_EWORKER_EXITED + 3), -ETIMEDOUT};
    pm_future *f[10];
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_crash, (void *)(intptr_t)kind[i], &f[i]), 0);
    CU_ASSERT_EQUAL(pm_future_running(f[9]), 0);
    unblock_wait(&b);
    CU_ASSERT_EQUAL(pm_future_wait(f[0], WAIT_S), 0);
    /* f[9] waits behind a 1 s timeout, yet it is in the batch: started. */
    CU_ASSERT_EQUAL(pm_future_running(f[9]), 1);
    CU_ASSERT_EQUAL(pm_future_cancel(f[9]), -EBUSY);
    CU_ASSERT_EQUAL(pm_wait_all(f, 10, WAIT_S), 0);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(pm_future_status(f[i]), want[kind[i]]);
        pm_future_free(f[i]);
    }
    pm_pool_free(p);
}

enum { NBATCH = 10000 };

/* Task i: SIGSEGV, abort, _exit(3) or a timeout at four scattered
 * indices, else returns i & 0xfff. */
static int batch_kind(intptr_t i)
{
    return i == 1234 ? 1 : i == 4321 ? 2 : i == 6789 ? 3 : i == 8765 ? 4 : 0;
}

static int task_batch(void *arg, void **result_ret)
{
    intptr_t i = (intptr_t)arg;
    int k = batch_kind(i);
    return k ? task_crash((void *)(intptr_t)k, result_ret) : (int)(i & 0xfff);
}

/* 10,000 tasks on 2 workers (so in batches): exactly the four bad ones
 * fail, with their status, every other one has its own result. */
static void test_batch_crashes_in_10000_tasks(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.task_timeout = 1.0 * TIMEOUT_SCALE;
    pm_pool *p = new_procs(2, &o);
    int want[5] = {0, -(PM_EWORKER_SIGNALED + SIGSEGV), -(PM_EWORKER_SIGNALED + SIGABRT),
                   -(PM_EWORKER_EXITED + 3), -ETIMEDOUT};
    pm_future **fs = calloc(NBATCH, sizeof *fs);
    CU_ASSERT_FATAL(fs != NULL);
    for (intptr_t i = 0; i < NBATCH; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_batch, (void *)i, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_wait_all(fs, NBATCH, WAIT_S), 0);
    size_t wrong = 0, failed = 0;
    for (intptr_t i = 0; i < NBATCH; i++) {
        int k = batch_kind(i);
        int st = pm_future_status(fs[i]);
        int exp = k ? want[k] : (int)(i & 0xfff);
        if (st != exp && wrong++ < 8)
            fprintf(stderr, "\n    task %ld: status %d (%s), want %d\n", (long)i, st,
                    st < 0 ? pm_strerror(st) : "ok", exp);
        failed += st < 0;
        pm_future_free(fs[i]);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(failed, 4);
    free(fs);
    pm_pool_free(p);
}

/* A worker dies mid-batch while its fork server is stopped (slow to reap,
 * as on a loaded machine): its task waits for the server's word and then
 * fails with the worker's own status, never -EPIPE ("the server is gone");
 * the other tasks of the batch succeed. The proxy follows a batch with
 * 1 ms waits: counting waits instead of time once made this -EPIPE. */
static void test_batch_server_slow_to_reap(void)
{
    pm_pool *p = new_procs(1, NULL);
    int pids[2] = {0, 0};
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, pids, sizeof pids), 0);
    CU_ASSERT_FATAL(pids[1] > 0);
    blocker b;
    block_workers(p, &b, 100);
    int kind[6] = {0, 3, 0, 0, 0, 0};
    pm_future *f[6];
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_crash, (void *)(intptr_t)kind[i], &f[i]), 0);
    CU_ASSERT_EQUAL_FATAL(kill(pids[1], SIGSTOP), 0);
    unblock_wait(&b);
    CU_ASSERT_EQUAL(pm_future_wait(f[0], WAIT_S), 0);
    sleep_s(0.3);
    CU_ASSERT_EQUAL(pm_future_done(f[1]), 0);       /* the server has not spoken */
    CU_ASSERT_EQUAL(kill(pids[1], SIGCONT), 0);
    CU_ASSERT_EQUAL(pm_wait_all(f, 6, WAIT_S), 0);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(pm_future_status(f[i]), i == 1 ? -(PM_EWORKER_EXITED + 3) : 0);
        pm_future_free(f[i]);
    }
    pm_pool_free(p);
}

/* One worker; a batch of short, short, 1 s, short: the short ones before
 * the long one complete long before it ends (completions stream). */
static void test_batch_streams_completions(void)
{
    pm_pool *p = new_procs(1, NULL);
    blocker b;
    block_workers(p, &b, 100);
    intptr_t ms[4] = {0, 0, 1000, 0};
    pm_future *f[4];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_sleep_ms, (void *)ms[i], &f[i]), 0);
    unblock_wait(&b);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_future_wait(f[1], 0.5), 0);
    CU_ASSERT(pm_test_now() - t0 < 0.5);
    CU_ASSERT_EQUAL(pm_future_status(f[0]), 0);
    CU_ASSERT_EQUAL(pm_future_status(f[1]), 0);
    CU_ASSERT_EQUAL(pm_future_done(f[2]), 0);        /* still sleeping */
    CU_ASSERT_EQUAL(pm_future_running(f[3]), 1);     /* in the batch */
    CU_ASSERT_EQUAL(pm_wait_all(f, 4, WAIT_S), 0);
    CU_ASSERT(pm_test_now() - t0 > 0.9);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(pm_future_status(f[i]), 0);
        pm_future_free(f[i]);
    }
    pm_pool_free(p);
}

/* One worker, 200 tasks of 10 ms queued behind a map item: queued ones
 * cancel; once the batch (the first 64, less the cancelled) is taken its
 * tasks no longer cancel, the later ones still do; terminate cancels the
 * batch's tasks the worker has not reached, and the queue. */
static void test_batch_cancel_and_terminate(void)
{
    pm_pool *p = new_procs(1, NULL);
    blocker b;
    block_workers(p, &b, 200);
    enum { N = 200 };
    pm_future *fs[N];
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_sleep_ms, (void *)(intptr_t)10, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(fs[10]), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(fs[150]), 0);
    CU_ASSERT_EQUAL(pm_future_running(fs[0]), 0);
    unblock_wait(&b);
    CU_ASSERT_EQUAL(pm_future_wait(fs[0], WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_running(fs[40]), 1);          /* taken: started */
    CU_ASSERT_EQUAL(pm_future_cancel(fs[40]), -EBUSY);
    CU_ASSERT_EQUAL(pm_future_running(fs[199]), 0);         /* still queued */
    CU_ASSERT_EQUAL(pm_future_cancel(fs[199]), 0);
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    CU_ASSERT_EQUAL(pm_future_status(fs[0]), 0);
    CU_ASSERT_EQUAL(pm_future_status(fs[10]), -ECANCELED);
    CU_ASSERT_EQUAL(pm_future_status(fs[40]), -ECANCELED);  /* never reached */
    CU_ASSERT_EQUAL(pm_future_status(fs[150]), -ECANCELED);
    int ran = 0, other = 0;
    for (int i = 0; i < N; i++) {
        int st = pm_future_status(fs[i]);
        ran += st == 0;
        other += st != 0 && st != -ECANCELED;
        if (i >= 64)
            CU_ASSERT_EQUAL(st, -ECANCELED);
        pm_future_free(fs[i]);
    }
    CU_ASSERT(ran >= 1 && ran < 40);
    CU_ASSERT_EQUAL(other, 0);
    pm_pool_free(p);
}

/* max_tasks = 5, one worker: the map item (one request) and 40 tasks in
 * one batch run as 4, 5, 5, 5, 5, 5, 5, 5, 1 tasks per worker process. */
static void test_batch_max_tasks(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.max_tasks = 5;
    pm_pool *p = new_procs(1, &o);
    blocker b;
    block_workers(p, &b, 100);
    enum { N = 40 };
    pm_future *fs[N];
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async_data(p, task_pid, NULL, 0, 2 * sizeof(int), &fs[i]), 0);
    unblock_wait(&b);
    CU_ASSERT_EQUAL(pm_wait_all(fs, N, WAIT_S), 0);
    int runs[N] = {0}, nruns = 0, last = -1;
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(pm_future_status(fs[i]), 0);
        const int *r = pm_future_result(fs[i]);
        CU_ASSERT_FATAL(r != NULL);
        if (r[0] != last)
            nruns++;
        runs[nruns - 1]++;
        last = r[0];
        pm_future_free(fs[i]);
    }
    int want[] = {4, 5, 5, 5, 5, 5, 5, 5, 1};
    CU_ASSERT_EQUAL(nruns, 9);
    for (int i = 0; i < 9 && i < nruns; i++)
        CU_ASSERT_EQUAL(runs[i], want[i]);
    pm_pool_free(p);
}

/* Task: arg = {i, n, n - 16 bytes}; result = {i, sum of those bytes}. */
static int task_bytes(void *arg, void **result_ret)
{
    const unsigned char *a = arg;
    uint64_t r[2], n;
    memcpy(&r[0], a, 8);
    memcpy(&n, a + 8, 8);
    r[1] = 0;
    for (uint64_t k = 16; k < n; k++)
        r[1] += a[k];
    memcpy(*result_ret, r, sizeof r);
    return (int)(r[0] % 1000);
}

/* Submits task_bytes i with n bytes of argument; its expected sum. */
static uint64_t submit_bytes(pm_pool *p, uint64_t i, size_t n, pm_future **f)
{
    unsigned char *a = malloc(n);
    CU_ASSERT_FATAL(a != NULL);
    uint64_t sum = 0;
    memcpy(a, &i, 8);
    memcpy(a + 8, &(uint64_t){n}, 8);
    for (size_t k = 16; k < n; k++)
        sum += a[k] = (unsigned char)(i * 31 + k);
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async_data(p, task_bytes, a, n, 16, f), 0);
    free(a);                              /* copied by the call */
    return sum;
}

static size_t check_bytes(pm_future *f, uint64_t i, uint64_t sum)
{
    const uint64_t *r = pm_future_result(f);
    return pm_future_status(f) != (int)(i % 1000) || !r || r[0] != i || r[1] != sum;
}

/* apply_async_data in batches: 5000 tasks with arguments of 16 to 1216
 * bytes on 2 workers, and 40 of 2 MiB on one (a batch cut to fit the
 * shared area): every result and status right. */
static void test_batch_apply_async_data(void)
{
    pm_pool *p = new_procs(2, NULL);
    enum { N = 5000, NBIG = 40 };
    pm_future **fs = calloc(N, sizeof *fs);
    uint64_t *sums = calloc(N, sizeof *sums);
    CU_ASSERT_FATAL(fs && sums);
    for (uint64_t i = 0; i < N; i++)
        sums[i] = submit_bytes(p, i, 16 + (i % 13) * 100, &fs[i]);
    CU_ASSERT_EQUAL(pm_wait_all(fs, N, WAIT_S), 0);
    size_t wrong = 0;
    for (uint64_t i = 0; i < N; i++) {
        wrong += check_bytes(fs[i], i, sums[i]);
        pm_future_free(fs[i]);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    pm_pool_free(p);

    p = new_procs(1, NULL);
    blocker b;
    block_workers(p, &b, 100);
    for (uint64_t i = 0; i < NBIG; i++)
        sums[i] = submit_bytes(p, i, (size_t)2 << 20, &fs[i]);
    unblock_wait(&b);
    CU_ASSERT_EQUAL(pm_wait_all(fs, NBIG, WAIT_S), 0);
    wrong = 0;
    for (uint64_t i = 0; i < NBIG; i++) {
        wrong += check_bytes(fs[i], i, sums[i]);
        pm_future_free(fs[i]);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    free(sums);
    free(fs);
    pm_pool_free(p);
}

static void test_memory_limit(void)
{
#ifdef PM_TEST_SANITIZED
    pm_test_skip("RLIMIT_AS and the sanitizers' shadow memory do not mix");
    return;
#else
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.mem_limit = (size_t)64 << 20;
    pm_pool *p = new_procs(1, &o);
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_alloc, (void *)(uintptr_t)(256u << 20), &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -ENOMEM);
    pm_future_free(f);
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, task_alloc, (void *)(uintptr_t)(16u << 20), &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), 0);
    pm_future_free(f);
    pm_pool_free(p);
#endif
}

/* ---- processes left behind ---- */

static void test_no_process_left_after_free(void)
{
    pm_pool *p = new_procs(3, NULL);
    int pids[3][2];
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, pids[i], sizeof pids[i]), 0);
    pm_pool_free(p);
    errno = 0;
    CU_ASSERT_EQUAL(waitpid(-1, NULL, WNOHANG), -1);
    CU_ASSERT_EQUAL(errno, ECHILD);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(pm_test_pid_gone(pids[i][0]));     /* the worker */
        CU_ASSERT(pm_test_pid_gone(pids[i][1]));     /* the fork server */
    }
}

static void test_no_process_left_after_sigkill(void)
{
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        close(fds[0]);
        pm_pool_opts o = PM_POOL_OPTS_INIT;
        o.workers = 2;
        o.backend = PM_POOL_PROCESSES;
        pm_pool *p;
        if (pm_pool_new(&o, &p))
            _exit(1);
        int pids[2];
        pm_future *f;
        if (pm_pool_apply_async_data(p, task_pid, NULL, 0, sizeof pids, &f) ||
            pm_future_wait(f, WAIT_S) || pm_future_status(f))
            _exit(2);
        memcpy(pids, pm_future_result(f), sizeof pids);
        if (write(fds[1], pids, sizeof pids) != sizeof pids)
            _exit(3);
        pause();
        _exit(0);
    }
    close(fds[1]);
    int pids[2] = {0, 0};
    CU_ASSERT_EQUAL(read(fds[0], pids, sizeof pids), (ssize_t)sizeof pids);
    close(fds[0]);
    CU_ASSERT_EQUAL(kill(child, SIGKILL), 0);
    CU_ASSERT_EQUAL(waitpid(child, NULL, 0), child);
    CU_ASSERT_FATAL(pids[0] > 0 && pids[1] > 0);
    CU_ASSERT(wait_gone(pids[0], 10));      /* the worker */
    CU_ASSERT(wait_gone(pids[1], 10));      /* the fork server */
}

static void test_fork_server_killed(void)
{
    pm_pool *p = new_procs(1, NULL);
    int pids[2] = {0, 0};
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, pids, sizeof pids), 0);
    CU_ASSERT_FATAL(pids[1] > 0);
    CU_ASSERT_EQUAL(kill(pids[1], SIGKILL), 0);    /* the server; its worker follows */
    CU_ASSERT(wait_gone(pids[0], 10));
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, pids, sizeof pids), -EPIPE);
    CU_ASSERT_EQUAL(run_task(p, task_pid, NULL, 0, pids, sizeof pids), -EPIPE);
    CU_ASSERT(pm_test_now() - t0 < 10);
    pm_pool_free(p);
    CU_ASSERT_EQUAL(waitpid(-1, NULL, WNOHANG), -1);
}

static void test_pipeline_refuses_process_pool(void)
{
    pm_pool *p = new_procs(2, NULL);
    pm_pipeline_opts o = {0};
    o.pool = p;
    pm_pipeline *pl = NULL;
    CU_ASSERT_EQUAL(pm_pipeline_new(&o, &pl), -EINVAL);
    CU_ASSERT_PTR_NULL(pl);
    pm_pool_free(p);
}

/* ---- OpenMP in the parent, then in the workers (GCC bug 60035) ---- */

static void test_openmp_after_parent_region(void)
{
    pm_pool_opts to = PM_POOL_OPTS_INIT;
    to.workers = 2;
    pm_pool *tp;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&to, &tp), 0);
    uint64_t *in = iota(1000), *out = calloc(1000, sizeof *out);
    pm_map_spec s = {.fn = times_k, .in = in, .in_size = 8, .n = 1000, .out = out,
                     .out_size = 8};
    CU_ASSERT_EQUAL(pm_pool_map(tp, &s, NULL), 0);       /* an OpenMP region here */
    pm_pool *p = new_procs(2, NULL);
    for (int i = 0; i < 4; i++) {
        int n = 0;
        CU_ASSERT_EQUAL(run_task(p, task_omp, NULL, 0, &n, sizeof n), 0);
        CU_ASSERT_EQUAL(n, 2);
    }
    memset(out, 0, 1000 * sizeof *out);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    CU_ASSERT_EQUAL(out[999], 1000);
    pm_pool_free(p);
    pm_pool_free(tp);
    free(in);
    free(out);
}

/* Workers' crashes are meant to reach the kernel: the sanitizers' own
 * SIGSEGV handlers would turn them into exit(1). The fork server is
 * executed again, so it reads these. */
static void let_signals_through(void)
{
    const char *names[] = {"ASAN_OPTIONS", "TSAN_OPTIONS"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%shandle_segv=0:handle_abort=0", v ? v : "",
                 v && *v ? ":" : "");
        setenv(names[i], buf, 1);
    }
}

int main(void)
{
    let_signals_through();
    static const pm_test_case cases[] = {
        {"new: processes, invalid options", test_new_and_invalid},
        {"initializer once per worker, initarg bytes, failure", test_initializer_per_worker},
        {"initializer failing in a replacement fails its task", test_initializer_fails_in_replacement},
        {"map in order, chunksize 1/20/auto, arg bytes", test_map_in_order},
        {"map and map_async: lowest failing index", test_map_lowest_failing_index},
        {"map with items larger than the shared area", test_map_large_items},
        {"map with an argument larger than the shared area", test_map_huge_arg},
        {"imap ordered and unordered, errors continue", test_imap_ordered_unordered_errors},
        {"imap keeps a bounded number in flight", test_imap_bounded_in_flight},
        {"terminate stops a running map", test_terminate_stops_a_map},
        {"imap free early stops the rest", test_imap_free_early},
        {"apply_async_data bytes, apply_async opaque", test_apply_async_data_and_opaque},
        {"apply_async_data on threads and processes alike", test_apply_async_data_on_threads},
        {"cancel, terminate, close, join", test_cancel_terminate_close_join},
        {"map_async cancel before start", test_map_async_cancel_before_start},
        {"crashes in a map of 10000: only those items fail", test_crashes_in_a_map},
        {"crashing tasks: status, pm_strerror, pool goes on", test_crashing_tasks},
        {"crash with signals blocked and SIGCHLD ignored", test_crash_with_signals_blocked_and_sigchld_ignored},
        {"kill -9 of a worker fails just its item", test_kill9_from_outside},
        {"max_tasks replaces workers", test_max_tasks_replaces_workers},
        {"batch: crashes and a timeout mid-batch fail just those", test_batch_crashes_mid_batch},
        {"batch: 10000 tasks, four bad ones scattered", test_batch_crashes_in_10000_tasks},
        {"batch: a worker's death while its server is slow to reap",
         test_batch_server_slow_to_reap},
        {"batch: completions stream past a long task", test_batch_streams_completions},
        {"batch: cancel and terminate", test_batch_cancel_and_terminate},
        {"batch: max_tasks counts tasks", test_batch_max_tasks},
        {"batch: apply_async_data bytes and results", test_batch_apply_async_data},
        {"memory limit", test_memory_limit},
        {"stress: 10^4 tasks from two threads, 1 in 500 crashing", test_stress_tasks_with_crashes},
        {"no process left after pm_pool_free", test_no_process_left_after_free},
        {"no process left after the parent's SIGKILL", test_no_process_left_after_sigkill},
        {"fork server killed: work fails with -EPIPE", test_fork_server_killed},
        {"a pipeline refuses a process pool", test_pipeline_refuses_process_pool},
        {"OpenMP in workers after the parent ran a region", test_openmp_after_parent_region},
        {NULL, NULL},
    };
    return pm_test_run("pool_procs", cases);
}
