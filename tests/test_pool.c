/* test_pool.c - pm_pool: map (blocking and async), imap, apply_async,
 * lifecycle, the thread budget, and a 10^6-task stress test (run under
 * ThreadSanitizer in CI). Futures on their own are in test_future.c.
 * Every wait has a timeout, so a broken pool fails instead of hanging. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>          /* mallinfo2: imap's memory */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pmap/error.h>
#include <pmap/config.h>
#include <pmap/pool.h>
#include "pool/pool_internal.h"     /* pm__auto_chunksize */
#include "testutil.h"

#define WAIT_S 30.0          /* generous bound for any wait in these tests */

static pm_pool *new_pool(int workers)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = workers;
    pm_pool *p = NULL;
    int rc = pm_pool_new(&o, &p);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return p;
}

/* ---- a gate: tasks block on it until the test opens it ---- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int waiting;             /* tasks blocked on it */
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = g->waiting = 0;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits until n tasks sit at the gate (bounded); returns 1 if they did. */
static int gate_wait_for(gate *g, int n)
{
    double end = pm_test_now() + WAIT_S;
    pthread_mutex_lock(&g->mu);
    while (g->waiting < n && pm_test_now() < end) {
        pthread_mutex_unlock(&g->mu);
        usleep(1000);
        pthread_mutex_lock(&g->mu);
    }
    int ok = g->waiting >= n;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static int gate_task(void *arg, void **result_ret)
{
    gate *g = arg;
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    pthread_mutex_unlock(&g->mu);
    *result_ret = g;
    return 0;
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

/* ---- map functions ---- */

static int square(const void *in, void *out, void *arg)
{
    (void)arg;
    int64_t v = *(const int64_t *)in;
    *(int64_t *)out = v * v;
    return 0;
}

/* Fails items 7 (with 70) and 500 (with -EIO); squares the rest. */
static int square_fail(const void *in, void *out, void *arg)
{
    (void)arg;
    int64_t v = *(const int64_t *)in;
    if (v == 7)
        return 70;
    if (v == 500)
        return -EIO;
    *(int64_t *)out = v * v;
    return 0;
}

static int64_t *iota(size_t n)
{
    int64_t *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (int64_t)i;
    return a;
}

static pm_map_spec square_spec(const int64_t *in, int64_t *out, size_t n, size_t cs)
{
    return (pm_map_spec){.fn = square, .in = in, .in_size = sizeof *in,
                         .out = out, .out_size = sizeof *out, .n = n, .chunksize = cs};
}

/* ---- creation and options ---- */

static void test_new_defaults_and_invalid(void)
{
    pm_pool *p = NULL;
    char *saved = getenv("PMAP_JOBS") ? strdup(getenv("PMAP_JOBS")) : NULL;
    unsetenv("PMAP_JOBS");
    CU_ASSERT_EQUAL(pm_pool_new(NULL, &p), 0);
    CU_ASSERT(pm_pool_workers(p) >= 1);
    pm_pool_free(p);

    setenv("PMAP_JOBS", "3", 1);
    CU_ASSERT_EQUAL(pm_pool_new(NULL, &p), 0);
    CU_ASSERT_EQUAL(pm_pool_workers(p), 3);
    pm_pool_free(p);
    setenv("PMAP_JOBS", "3x", 1);
    CU_ASSERT_EQUAL(pm_pool_new(NULL, &p), -EINVAL);
    setenv("PMAP_JOBS", "0", 1);
    CU_ASSERT_EQUAL(pm_pool_new(NULL, &p), -EINVAL);
    pm_pool_opts o = {0};            /* workers = 0: the default, as PM_POOL_AUTO */
    unsetenv("PMAP_JOBS");
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&o, &p), 0);
    CU_ASSERT_EQUAL(pm_pool_workers(p), pm_cpu_count());
    pm_pool_free(p);
    if (saved)
        setenv("PMAP_JOBS", saved, 1);
    else
        unsetenv("PMAP_JOBS");
    free(saved);

    o.workers = PM_POOL_MAX_WORKERS + 1;
    CU_ASSERT_EQUAL(pm_pool_new(&o, &p), -EINVAL);
    o.workers = -5;
    CU_ASSERT_EQUAL(pm_pool_new(&o, &p), -EINVAL);
    o.workers = 2;
    CU_ASSERT_EQUAL(pm_pool_new(&o, NULL), -EINVAL);
    pm_pool_free(NULL);
}

/* ---- initializer ---- */

typedef struct init_log {
    pthread_mutex_t mu;
    pthread_t tids[256];
    int n;
    int fail_with;
} init_log;

static int log_init(void *arg)
{
    init_log *l = arg;
    pthread_mutex_lock(&l->mu);
    if (l->n < 256)
        l->tids[l->n] = pthread_self();
    l->n++;
    pthread_mutex_unlock(&l->mu);
    return l->fail_with;
}

/* Index of the thread in the log, or -1. */
static int log_find(init_log *l, pthread_t t)
{
    pthread_mutex_lock(&l->mu);
    int found = -1;
    for (int i = 0; i < l->n && i < 256; i++)
        if (pthread_equal(l->tids[i], t))
            found = i;
    pthread_mutex_unlock(&l->mu);
    return found;
}

typedef struct init_check {
    init_log *log;
    _Atomic int uninitialized;      /* items/tasks run on unlogged threads */
} init_check;

static int check_thread_task(void *arg, void **result_ret)
{
    (void)result_ret;
    init_check *c = arg;
    if (log_find(c->log, pthread_self()) < 0)
        atomic_fetch_add(&c->uninitialized, 1);
    return 0;
}

static int check_thread_item(const void *in, void *out, void *arg)
{
    (void)in;
    (void)out;
    void *unused;
    return check_thread_task(arg, &unused);
}

static void test_initializer_once_per_worker(void)
{
    init_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = 3;
    o.initializer = log_init;
    o.initarg = &log;
    pm_pool *p;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&o, &p), 0);
    CU_ASSERT_EQUAL(log.n, 3);                  /* pm_pool_new waited for them */
    init_check c = {.log = &log};
    pm_future *fs[200];
    for (int i = 0; i < 200; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, check_thread_task, &c, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_wait_all(fs, 200, WAIT_S), 0);
    for (int i = 0; i < 200; i++)
        pm_future_free(fs[i]);
    CU_ASSERT_EQUAL(log.n, 3);                  /* tasks add no initializer runs */
    CU_ASSERT_EQUAL(atomic_load(&c.uninitialized), 0);

    /* Map threads (OpenMP, the caller included) get it once each too,
     * before their first item. Which OpenMP threads a map gets is not
     * promised: a later map may get a larger team (slots still held by a
     * finishing worker free up) or other threads, which then run it for
     * their first time. What is promised: the caller is one of them, a team
     * never exceeds the 3 workers, and no thread runs it twice. */
    pm_map_spec s = {.fn = check_thread_item, .arg = &c, .n = 10000, .chunksize = 1};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    int after_first = log.n;
    CU_ASSERT(log_find(&log, pthread_self()) >= 3);       /* after the workers */
    CU_ASSERT(after_first >= 3 + 1 && after_first <= 3 + 3);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    CU_ASSERT(log.n >= after_first && log.n <= after_first + 2);  /* caller done */
    CU_ASSERT_EQUAL(atomic_load(&c.uninitialized), 0);
    for (int i = 0; i < log.n; i++)             /* no thread logged twice */
        for (int j = i + 1; j < log.n; j++)
            CU_ASSERT(!pthread_equal(log.tids[i], log.tids[j]));
    pm_pool_free(p);
}

static void test_initializer_failure(void)
{
    init_log log = {.mu = PTHREAD_MUTEX_INITIALIZER, .fail_with = -ENOTSUP};
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = 2;
    o.initializer = log_init;
    o.initarg = &log;
    pm_pool *p = NULL;
    CU_ASSERT_EQUAL(pm_pool_new(&o, &p), -ENOTSUP);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(log.n, 2);
}

/* ---- map ---- */

static void check_map(pm_pool *p, size_t n, size_t cs)
{
    int64_t *in = iota(n), *out = calloc(n ? n : 1, sizeof *out);
    pm_map_spec s = square_spec(in, out, n, cs);
    size_t fail = 12345;
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fail), 0);
    CU_ASSERT_EQUAL(fail, n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += out[i] != (int64_t)(i * i);
    CU_ASSERT_EQUAL(bad, 0);
    free(in);
    free(out);
}

static void test_map_in_order(void)
{
    pm_pool *p = new_pool(2);
    check_map(p, 1000, 1);
    check_map(p, 1000, 20);
    check_map(p, 1000, 0);        /* automatic: ceil(1000 / 8) = 125 */
    check_map(p, 1001, 0);
    check_map(p, 3, 0);
    check_map(p, 100000, 0);
    check_map(p, 7, 1000);        /* one chunk larger than the input */
    CU_ASSERT_EQUAL(pm__auto_chunksize(1000, 2), 125);
    CU_ASSERT_EQUAL(pm__auto_chunksize(1001, 2), 126);
    CU_ASSERT_EQUAL(pm__auto_chunksize(3, 2), 1);
    pm_pool_free(p);
}

static void test_map_error_lowest_index(void)
{
    pm_pool *p = new_pool(2);
    size_t n = 1000;
    size_t sizes[] = {1, 2, 20, 0};
    for (int k = 0; k < 4; k++) {
        int64_t *in = iota(n), *out = calloc(n, sizeof *out);
        pm_map_spec s = square_spec(in, out, n, sizes[k]);
        s.fn = square_fail;
        size_t fail = 0;
        CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fail), 70);
        CU_ASSERT_EQUAL(fail, 7);
        /* Every other item still ran (map waits for all, like Pool.map). */
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            if (i != 7 && i != 500)
                bad += out[i] != (int64_t)(i * i);
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(out[7], 0);
        free(in);
        free(out);
    }
    pm_pool_free(p);
}

static void test_map_invalid(void)
{
    pm_pool *p = new_pool(2);
    int64_t in[4] = {1, 2, 3, 4}, out[4];
    pm_map_spec s = square_spec(in, out, 4, 0);
    size_t fail = 99;
    CU_ASSERT_EQUAL(pm_pool_map(NULL, &s, &fail), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_map(p, NULL, &fail), -EINVAL);
    s.fn = NULL;
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fail), -EINVAL);
    s = square_spec(NULL, out, 4, 0);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fail), -EINVAL);
    s = square_spec(in, NULL, 4, 0);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fail), -EINVAL);
    s = square_spec(in, out, SIZE_MAX / 2, 0);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fail), -EINVAL);
    CU_ASSERT_EQUAL(fail, 99);                   /* untouched on -EINVAL */
    pm_future *f = NULL;
    CU_ASSERT_EQUAL(pm_pool_map_async(p, NULL, NULL, &f), -EINVAL);
    s = square_spec(in, out, 4, 0);
    CU_ASSERT_EQUAL(pm_pool_map_async(p, &s, NULL, NULL), -EINVAL);
    pm_imap *it = NULL;
    CU_ASSERT_EQUAL(pm_pool_imap(p, NULL, &it), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_imap_unordered(p, &s, NULL), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_apply_async(p, NULL, NULL, &f), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_apply_async(NULL, gate_task, NULL, &f), -EINVAL);
    CU_ASSERT_EQUAL(pm_imap_next(NULL, NULL, NULL, NULL, 0), -EINVAL);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_PTR_NULL(it);
    pm_pool_free(p);
}

static void test_empty_input_everywhere(void)
{
    pm_pool *p = new_pool(2);
    pm_map_spec s = square_spec(NULL, NULL, 0, 0);
    size_t fail = 99;
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, &fail), 0);
    CU_ASSERT_EQUAL(fail, 0);

    pm_future *f;
    fail = 99;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &fail, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), 0);
    CU_ASSERT_EQUAL(fail, 0);
    pm_future_free(f);

    for (int ordered = 0; ordered < 2; ordered++) {
        pm_imap *it;
        int rc = ordered ? pm_pool_imap(p, &s, &it) : pm_pool_imap_unordered(p, &s, &it);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        int64_t v;
        int st;
        CU_ASSERT_EQUAL(pm_imap_next(it, &v, NULL, &st, WAIT_S), 0);
        CU_ASSERT_EQUAL(pm_imap_next(it, &v, NULL, &st, WAIT_S), 0);
        pm_imap_free(it);
    }
    CU_ASSERT_EQUAL(pm_wait_all(NULL, 0, 0), 0);
    pm_pool_free(p);
}

/* ---- map_async ---- */

static void test_map_async(void)
{
    pm_pool *p = new_pool(2);
    size_t n = 5000;
    int64_t *in = iota(n), *out = calloc(n, sizeof *out);
    pm_map_spec s = square_spec(in, out, n, 0);
    pm_future *f;
    size_t fail = 99;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &fail, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), 0);
    CU_ASSERT_EQUAL(fail, n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += out[i] != (int64_t)(i * i);
    CU_ASSERT_EQUAL(bad, 0);
    pm_future_free(f);

    s.fn = square_fail;
    s.chunksize = 3;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &fail, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), 70);
    CU_ASSERT_EQUAL(fail, 7);
    CU_ASSERT_EQUAL(out[8], 64);
    pm_future_free(f);
    free(in);
    free(out);
    pm_pool_free(p);
}

static void test_map_async_cancel_before_start(void)
{
    pm_pool *p = new_pool(1);
    gate g;
    gate_init(&g);
    pm_future *blocker, *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, gate_task, &g, &blocker), 0);
    CU_ASSERT_FATAL(gate_wait_for(&g, 1));
    int64_t in[100], out[100] = {0};
    for (int i = 0; i < 100; i++)
        in[i] = i;
    pm_map_spec s = square_spec(in, out, 100, 10);
    size_t fail = 99;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &fail, &f), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(f), 0);
    CU_ASSERT(pm_future_done(f));
    CU_ASSERT_EQUAL(pm_future_status(f), -ECANCELED);
    gate_open(&g);
    CU_ASSERT_EQUAL(pm_future_wait(blocker, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    int64_t sum = 0;
    for (int i = 0; i < 100; i++)
        sum += out[i];
    CU_ASSERT_EQUAL(sum, 0);                    /* no item ran */
    CU_ASSERT_EQUAL(fail, 99);
    pm_future_free(f);
    pm_future_free(blocker);
    pm_pool_free(p);
    gate_destroy(&g);
}

/* ---- imap ---- */

/* Sleeps a pseudo-random 0..2 ms (from the item), then squares it. */
static int square_sleepy(const void *in, void *out, void *arg)
{
    (void)arg;
    int64_t v = *(const int64_t *)in;
    usleep((useconds_t)((v * 7919) % 2000));
    *(int64_t *)out = v * v;
    return 0;
}

static void test_imap_ordered_random_durations(void)
{
    pm_pool *p = new_pool(3);
    size_t n = 300;
    int64_t *in = iota(n);
    size_t sizes[] = {1, 4, 0};
    for (int k = 0; k < 3; k++) {
        pm_map_spec s = square_spec(in, NULL, n, sizes[k]);
        s.fn = square_sleepy;
        pm_imap *it;
        CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
        size_t got = 0, idx;
        int64_t v;
        int st, rc, bad = 0;
        while ((rc = pm_imap_next(it, &v, &idx, &st, WAIT_S)) == 1) {
            bad += st != 0 || idx != got || v != (int64_t)(got * got);
            got++;
        }
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(got, n);
        CU_ASSERT_EQUAL(bad, 0);
        pm_imap_free(it);
    }
    free(in);
    pm_pool_free(p);
}

/* Item 0 is slow: it must not come first in completion order. */
static int slow_first(const void *in, void *out, void *arg)
{
    (void)arg;
    int64_t v = *(const int64_t *)in;
    usleep(v == 0 ? 200000 : (useconds_t)((v * 7919) % 1000));
    *(int64_t *)out = v * v;
    return 0;
}

static void test_imap_unordered(void)
{
    pm_pool *p = new_pool(2);
    size_t n = 200;
    int64_t *in = iota(n);
    pm_map_spec s = square_spec(in, NULL, n, 1);
    s.fn = slow_first;
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap_unordered(p, &s, &it), 0);
    char *seen = calloc(n, 1);
    size_t got = 0, idx, first = SIZE_MAX;
    int64_t v;
    int st, rc, bad = 0;
    while ((rc = pm_imap_next(it, &v, &idx, &st, WAIT_S)) == 1) {
        if (first == SIZE_MAX)
            first = idx;
        bad += st != 0 || idx >= n || seen[idx] || v != (int64_t)(idx * idx);
        if (idx < n)
            seen[idx] = 1;
        got++;
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(got, n);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_NOT_EQUAL(first, 0);             /* completion order, not input order */
    free(seen);
    pm_imap_free(it);
    free(in);
    pm_pool_free(p);
}

static void test_imap_error_then_continue(void)
{
    pm_pool *p = new_pool(2);
    size_t n = 20;
    int64_t *in = iota(n);
    pm_map_spec s = square_spec(in, NULL, n, 2);
    s.fn = square_fail;                        /* item 7 fails with 70 */
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    int64_t v;
    size_t idx;
    int st;
    for (size_t i = 0; i < 7; i++) {           /* the earlier results come through */
        CU_ASSERT_EQUAL(pm_imap_next(it, &v, &idx, &st, WAIT_S), 1);
        CU_ASSERT_EQUAL(st, 0);
        CU_ASSERT_EQUAL(idx, i);
        CU_ASSERT_EQUAL(v, (int64_t)(i * i));
    }
    v = -1;
    CU_ASSERT_EQUAL(pm_imap_next(it, &v, &idx, &st, WAIT_S), 1);
    CU_ASSERT_EQUAL(st, 70);                   /* then the error, at its index */
    CU_ASSERT_EQUAL(idx, 7);
    CU_ASSERT_EQUAL(v, -1);                    /* out untouched */
    CU_ASSERT_EQUAL(pm_imap_next(it, &v, &idx, &st, WAIT_S), 1);
    CU_ASSERT_EQUAL(st, 0);                    /* and the iteration goes on */
    CU_ASSERT_EQUAL(idx, 8);
    CU_ASSERT_EQUAL(v, 64);
    pm_imap_free(it);                          /* early: the rest is dropped */
    free(in);
    pm_pool_free(p);
}

/* An input callback counting what was read; checks the in-flight bound. */
typedef struct counted_input {
    int64_t next, end;
    _Atomic int64_t read;
    int fail_at;                /* >= 0: return -EBADMSG for that item */
} counted_input;

static int counted_read(void *item, void *arg)
{
    counted_input *c = arg;
    if (c->next == c->fail_at)
        return -EBADMSG;
    if (c->next == c->end)
        return 0;
    *(int64_t *)item = c->next++;
    atomic_fetch_add(&c->read, 1);
    return 1;
}

static void test_imap_bounded_in_flight(void)
{
    pm_pool *p = new_pool(2);
    for (int ordered = 0; ordered < 2; ordered++) {
        counted_input c = {.end = 20000, .fail_at = -1};
        pm_map_spec s = {.fn = square, .in_size = sizeof(int64_t), .out_size = sizeof(int64_t),
                         .input = counted_read, .input_arg = &c, .max_inflight = 16,
                         .chunksize = 4};
        pm_imap *it;
        int rc = ordered ? pm_pool_imap(p, &s, &it) : pm_pool_imap_unordered(p, &s, &it);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT(atomic_load(&c.read) <= 16);  /* lazily: not the whole input */
        int64_t v, sum = 0, expect = 0, returned = 0, worst = 0;
        int st;
        while ((rc = pm_imap_next(it, &v, NULL, &st, WAIT_S)) == 1) {
            returned++;
            sum += v;
            int64_t ahead = atomic_load(&c.read) - returned;
            worst = ahead > worst ? ahead : worst;
        }
        for (int64_t i = 0; i < 20000; i++)
            expect += i * i;
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(returned, 20000);
        CU_ASSERT_EQUAL(sum, expect);
        CU_ASSERT(worst <= 16);
        pm_imap_free(it);
    }
    pm_pool_free(p);
}

static void test_imap_input_error(void)
{
    pm_pool *p = new_pool(2);
    counted_input c = {.end = 100, .fail_at = 10};
    pm_map_spec s = {.fn = square, .in_size = sizeof(int64_t), .out_size = sizeof(int64_t),
                     .input = counted_read, .input_arg = &c, .chunksize = 3};
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    int64_t v;
    size_t idx, got = 0;
    int st, rc;
    while ((rc = pm_imap_next(it, &v, &idx, &st, WAIT_S)) == 1 && st == 0)
        CU_ASSERT_EQUAL(idx, got++);
    CU_ASSERT_EQUAL(got, 10);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_EQUAL(st, -EBADMSG);
    CU_ASSERT_EQUAL(idx, 10);
    CU_ASSERT_EQUAL(pm_imap_next(it, &v, &idx, &st, WAIT_S), 0);   /* ended */
    pm_imap_free(it);
    pm_pool_free(p);
}

typedef struct slow_count {
    _Atomic int ran;
} slow_count;

static int slow_item(const void *in, void *out, void *arg)
{
    slow_count *c = arg;
    usleep(2000);
    atomic_fetch_add(&c->ran, 1);
    *(int64_t *)out = *(const int64_t *)in;
    return 0;
}

static void test_imap_free_early(void)
{
    pm_pool *p = new_pool(2);
    size_t n = 1000;
    int64_t *in = iota(n);
    slow_count c = {0};
    pm_map_spec s = square_spec(in, NULL, n, 1);
    s.fn = slow_item;
    s.arg = &c;
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    int64_t v;
    int st;
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(pm_imap_next(it, &v, NULL, &st, WAIT_S), 1);
    double t0 = pm_test_now();
    pm_imap_free(it);
    CU_ASSERT(pm_test_now() - t0 < 2.0);
    int ran = atomic_load(&c.ran);
    CU_ASSERT(ran < 100);                      /* the rest was never started */
    usleep(20000);
    CU_ASSERT_EQUAL(atomic_load(&c.ran), ran); /* and nothing runs after free */
    /* The pool is still fine. */
    check_map(p, 100, 0);
    free(in);
    pm_pool_free(p);
}

static void test_imap_timeout(void)
{
    pm_pool *p = new_pool(1);
    gate g;
    gate_init(&g);
    pm_future *blocker;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, gate_task, &g, &blocker), 0);
    CU_ASSERT_FATAL(gate_wait_for(&g, 1));
    int64_t in[4] = {1, 2, 3, 4};
    pm_map_spec s = square_spec(in, NULL, 4, 0);
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    int64_t v;
    int st;
    CU_ASSERT_EQUAL(pm_imap_next(it, &v, NULL, &st, 0.02), -ETIMEDOUT);
    gate_open(&g);
    CU_ASSERT_EQUAL(pm_imap_next(it, &v, NULL, &st, WAIT_S), 1);
    CU_ASSERT_EQUAL(v, 1);
    pm_imap_free(it);
    pm_future_free(blocker);
    pm_pool_free(p);
    gate_destroy(&g);
}

/* Bytes the allocator has handed out (the main arena plus mmapped blocks;
 * 0 deltas under sanitizers, whose allocators glibc does not see). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Drains an iterator over square(0..n-1): 1 if every result came right. */
static int drain_squares(pm_imap *it, size_t n, int ordered)
{
    char *seen = calloc(n ? n : 1, 1);
    size_t got = 0, idx;
    int64_t v;
    int st, rc, bad = 0;
    while ((rc = pm_imap_next(it, &v, &idx, &st, WAIT_S)) == 1) {
        bad += st != 0 || idx >= n || seen[idx] || v != (int64_t)(idx * idx);
        bad += ordered && idx != got;
        if (idx < n)
            seen[idx] = 1;
        got++;
    }
    free(seen);
    return rc == 0 && got == n && bad == 0;
}

/* Issue 10 item 15: a chunksize of 2^61 or more made the default bound
 * (4 x workers x chunksize) wrap to 0, which was divided by (SIGFPE); 2^40
 * was not capped at n and the iterator failed with -ENOMEM. */
static void test_imap_huge_chunksize(void)
{
    pm_pool *p = new_pool(2);
    enum { N = 10 };
    int64_t in[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    const size_t sizes[] = {(size_t)1 << 40, (size_t)1 << 61, (size_t)1 << 62,
                            SIZE_MAX / 2 + 1, SIZE_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int mode = 0; mode < 4; mode++) {       /* ordered?, input callback? */
            int ordered = mode & 1;
            counted_input c = {.end = N, .fail_at = -1};
            pm_map_spec s = square_spec(in, NULL, N, sizes[k]);
            if (mode & 2) {
                s.in = NULL;
                s.input = counted_read;
                s.input_arg = &c;
            }
            pm_imap *it = NULL;
            int rc = ordered ? pm_pool_imap(p, &s, &it) : pm_pool_imap_unordered(p, &s, &it);
            CU_ASSERT_EQUAL(rc, 0);
            if (rc == 0)
                CU_ASSERT(drain_squares(it, N, ordered));
            pm_imap_free(it);
        }
    }
    pm_pool_free(p);
}

/* Item 15: the iterator sized its slots from max_inflight, not n: 10 items
 * with max_inflight 10^7 took 1.1 s and 459 MB, and SIZE_MAX failed with
 * -ENOMEM. Memory must follow the items actually read. */
static void test_imap_memory_follows_n(void)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = 2;
    o.imap_inflight = SIZE_MAX;                      /* the pool's default bound too */
    pm_pool *p;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&o, &p), 0);
    enum { N = 10 };
    int64_t in[N];
    for (int i = 0; i < N; i++)
        in[i] = i;
    const size_t bounds[] = {10000000, SIZE_MAX / 2, SIZE_MAX, 0};
    const size_t chunks[] = {0, 1, 3};
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        for (size_t k = 0; k < sizeof chunks / sizeof *chunks; k++) {
            for (int mode = 0; mode < 4; mode++) {
                int ordered = mode & 1;
                counted_input c = {.end = N, .fail_at = -1};
                pm_map_spec s = square_spec(in, NULL, N, chunks[k]);
                s.max_inflight = bounds[b];
                if (mode & 2) {
                    s.in = NULL;
                    s.input = counted_read;
                    s.input_arg = &c;
                }
                size_t before = heap_in_use();
                pm_imap *it = NULL;
                int rc = ordered ? pm_pool_imap(p, &s, &it)
                                 : pm_pool_imap_unordered(p, &s, &it);
                CU_ASSERT_EQUAL(rc, 0);
                if (rc != 0)
                    continue;
                size_t grew = heap_in_use() - before;
                CU_ASSERT(grew < (1u << 20));        /* 10 items: kilobytes, not 459 MB */
                CU_ASSERT(drain_squares(it, N, ordered));
                pm_imap_free(it);
            }
        }
    }
    pm_pool_free(p);
}

/* Item 18: over an input callback the automatic chunk was one item, a
 * task per item (3.7-8.5 us each). Now chunks grow with the input read
 * (Pool's rule over what was read so far) up to 64: a long input is read
 * ahead in chunks larger than one item, still within the default bound of
 * 4 x workers x 64. */
static void test_imap_input_auto_chunks_grow(void)
{
    pm_pool *p = new_pool(2);
    for (int ordered = 0; ordered < 2; ordered++) {
        counted_input c = {.end = 20000, .fail_at = -1};
        pm_map_spec s = {.fn = square, .in_size = sizeof(int64_t), .out_size = sizeof(int64_t),
                         .input = counted_read, .input_arg = &c};
        pm_imap *it;
        int rc = ordered ? pm_pool_imap(p, &s, &it) : pm_pool_imap_unordered(p, &s, &it);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT(atomic_load(&c.read) <= 2 * 4);   /* first chunks: one item each */
        int64_t v, sum = 0, expect = 0, returned = 0, worst = 0;
        int st;
        while ((rc = pm_imap_next(it, &v, NULL, &st, WAIT_S)) == 1) {
            returned++;
            sum += v;
            int64_t ahead = atomic_load(&c.read) - returned;
            worst = ahead > worst ? ahead : worst;
        }
        for (int64_t i = 0; i < 20000; i++)
            expect += i * i;
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(returned, 20000);
        CU_ASSERT_EQUAL(sum, expect);
        CU_ASSERT(worst >= 64);                     /* was at most 8: one-item chunks */
        CU_ASSERT(worst <= 2 * 4 * 64);
        pm_imap_free(it);
    }
    pm_pool_free(p);
}

/* Item 0 waits (bounded) until another item ran on another thread. */
typedef struct spread_check {
    counted_input in;
    pthread_t first;
    _Atomic int other_ran;
} spread_check;

static int spread_read(void *item, void *arg)
{
    return counted_read(item, &((spread_check *)arg)->in);
}

static int spread_item(const void *in, void *out, void *arg)
{
    spread_check *c = arg;
    *(int64_t *)out = *(const int64_t *)in;
    if (*(const int64_t *)in != 0) {
        if (!pthread_equal(pthread_self(), c->first))
            atomic_store(&c->other_ran, 1);
        return 0;
    }
    double end = pm_test_now() + WAIT_S;
    while (!atomic_load(&c->other_ran) && pm_test_now() < end)
        usleep(1000);
    return atomic_load(&c->other_ran) ? 0 : -ETIMEDOUT;
}

/* A short input from a callback (n unknown) still spreads over the
 * workers: a fixed batch of 64 would put all 10 items in one chunk. */
static void test_imap_input_short_input_spreads(void)
{
    pm_pool *p = new_pool(2);
    spread_check c = {.in = {.end = 10, .fail_at = -1}};
    c.first = pthread_self();               /* no worker is the test thread */
    pm_map_spec s = {.fn = spread_item, .arg = &c, .in_size = sizeof(int64_t),
                     .out_size = sizeof(int64_t), .input = spread_read, .input_arg = &c};
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    int64_t v;
    size_t idx, got = 0;
    int st, rc, bad = 0;
    while ((rc = pm_imap_next(it, &v, &idx, &st, 2 * WAIT_S)) == 1)
        bad += st != 0 || idx != got++ || v != (int64_t)idx;
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(got, 10);
    CU_ASSERT_EQUAL(bad, 0);                /* item 0 saw another chunk run */
    pm_imap_free(it);
    pm_pool_free(p);
}

/* ---- apply_async ---- */

static int sleep_task(void *arg, void **result_ret)
{
    usleep((useconds_t)(uintptr_t)arg);
    *result_ret = arg;
    return 0;
}

static int fail_task(void *arg, void **result_ret)
{
    (void)arg;
    *result_ret = (void *)0x42;
    return 42;
}

static void test_apply_async_slow_and_timeout(void)
{
    pm_pool *p = new_pool(2);
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_task, (void *)(uintptr_t)300000, &f), 0);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_future_wait(f, 0.05), -ETIMEDOUT);
    double waited = pm_test_now() - t0;
    CU_ASSERT(waited >= 0.045 && waited < 2.0);
    CU_ASSERT(!pm_future_done(f));
    CU_ASSERT_EQUAL(pm_future_status(f), -EINPROGRESS);
    int st = 1;
    void *res = NULL;
    CU_ASSERT_EQUAL(pm_future_get(f, 0.0, &st, &res), -ETIMEDOUT);
    CU_ASSERT_EQUAL(st, 1);                     /* untouched */
    CU_ASSERT_EQUAL(pm_future_get(f, WAIT_S, &st, &res), 0);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_PTR_EQUAL(res, (void *)(uintptr_t)300000);
    pm_future_free(f);

    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, fail_task, NULL, &f), 0);
    CU_ASSERT_EQUAL(pm_future_get(f, WAIT_S, &st, &res), 0);
    CU_ASSERT_EQUAL(st, 42);                    /* the task's own failure */
    CU_ASSERT_PTR_EQUAL(res, (void *)0x42);
    pm_future_free(f);
    pm_pool_free(p);
}

static int count_task(void *arg, void **result_ret)
{
    (void)result_ret;
    slow_count *c = arg;
    atomic_fetch_add(&c->ran, 1);
    return 0;
}

static void test_cancel_before_and_after_start(void)
{
    pm_pool *p = new_pool(1);
    gate g;
    gate_init(&g);
    pm_future *running, *queued;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, gate_task, &g, &running), 0);
    CU_ASSERT_FATAL(gate_wait_for(&g, 1));
    slow_count c = {0};
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, count_task, &c, &queued), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(queued), 0);        /* before start */
    CU_ASSERT(pm_future_done(queued));
    CU_ASSERT_EQUAL(pm_future_status(queued), -ECANCELED);
    CU_ASSERT_PTR_NULL(pm_future_result(queued));
    CU_ASSERT_EQUAL(pm_future_cancel(queued), 0);        /* again: still cancelled */
    CU_ASSERT(pm_future_running(running));
    CU_ASSERT_EQUAL(pm_future_cancel(running), -EBUSY);  /* after start */
    gate_open(&g);
    CU_ASSERT_EQUAL(pm_future_wait(running, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(running), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(running), -EALREADY);
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);                 /* the cancelled one never ran */
    CU_ASSERT_EQUAL(atomic_load(&c.ran), 0);
    pm_future_free(queued);
    pm_future_free(running);
    pm_pool_free(p);
    gate_destroy(&g);
}

/* ---- lifecycle ---- */

static void test_terminate_10000_pending(void)
{
    pm_pool *p = new_pool(2);
    gate g;
    gate_init(&g);
    pm_future *blockers[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, gate_task, &g, &blockers[i]), 0);
    CU_ASSERT_FATAL(gate_wait_for(&g, 2));
    enum { N = 10000 };
    pm_future **fs = malloc(N * sizeof *fs);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_task, (void *)(uintptr_t)1000, &fs[i]), 0);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);
    CU_ASSERT(pm_test_now() - t0 < 2.0);   /* promptly: running them takes 5 s */
    int cancelled = 0;
    for (int i = 0; i < N; i++)
        cancelled += pm_future_done(fs[i]) && pm_future_status(fs[i]) == -ECANCELED;
    CU_ASSERT_EQUAL(cancelled, N);
    pm_future *late;
    CU_ASSERT_EQUAL(pm_pool_apply_async(p, sleep_task, NULL, &late), -EINVAL);
    gate_open(&g);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    for (int i = 0; i < 2; i++) {                        /* running ones finished */
        CU_ASSERT_EQUAL(pm_future_status(blockers[i]), 0);
        pm_future_free(blockers[i]);
    }
    for (int i = 0; i < N; i++)
        pm_future_free(fs[i]);
    free(fs);
    pm_pool_free(p);
    gate_destroy(&g);
}

static void test_close_then_join(void)
{
    pm_pool *p = new_pool(2);
    enum { N = 100 };
    pm_future *fs[N];
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_task, (void *)(uintptr_t)500, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), -EINVAL);            /* still open */
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    /* Use after close is rejected, by every entry point. */
    pm_future *f = NULL;
    int64_t in[2] = {1, 2}, out[2];
    pm_map_spec s = square_spec(in, out, 2, 0);
    pm_imap *it = NULL;
    CU_ASSERT_EQUAL(pm_pool_apply_async(p, sleep_task, NULL, &f), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_map_async(p, &s, NULL, &f), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_imap(p, &s, &it), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_imap_unordered(p, &s, &it), -EINVAL);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_PTR_NULL(it);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    int ok = 0;
    for (int i = 0; i < N; i++) {                         /* queued work finished */
        ok += pm_future_done(fs[i]) && pm_future_status(fs[i]) == 0;
        pm_future_free(fs[i]);
    }
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);                  /* joining twice is fine */
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);
    pm_pool_free(p);
    CU_ASSERT_EQUAL(pm_pool_close(NULL), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_terminate(NULL), -EINVAL);
    CU_ASSERT_EQUAL(pm_pool_join(NULL), -EINVAL);
}

typedef struct join_arg {
    pm_pool *pool;
    gate g;
} join_arg;

static int join_own_pool(void *arg, void **result_ret)
{
    join_arg *j = arg;
    gate_task(&j->g, result_ret);
    return pm_pool_join(j->pool);
}

static void test_join_from_task(void)
{
    join_arg j = {.pool = new_pool(2)};
    gate_init(&j.g);
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(j.pool, join_own_pool, &j, &f), 0);
    CU_ASSERT_FATAL(gate_wait_for(&j.g, 1));
    CU_ASSERT_EQUAL(pm_pool_close(j.pool), 0);
    gate_open(&j.g);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), -EDEADLK);      /* would wait for itself */
    CU_ASSERT_EQUAL(pm_pool_join(j.pool), 0);
    pm_future_free(f);
    pm_pool_free(j.pool);
    gate_destroy(&j.g);
}

static void test_iterator_across_close(void)
{
    pm_pool *p = new_pool(2);

    /* An iterator created before close keeps working after it. */
    size_t n = 500;
    int64_t *in = iota(n);
    pm_map_spec s = square_spec(in, NULL, n, 1);
    s.max_inflight = 8;
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), -EDEADLK);          /* we must consume it first */
    int64_t v, sum = 0, expect = 0;
    int st;
    size_t got = 0;
    while (pm_imap_next(it, &v, NULL, &st, WAIT_S) == 1) {
        sum += v;
        got++;
    }
    for (size_t i = 0; i < n; i++)
        expect += (int64_t)(i * i);
    CU_ASSERT_EQUAL(got, n);
    CU_ASSERT_EQUAL(sum, expect);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    pm_imap_free(it);
    free(in);
    pm_pool_free(p);
}

static void test_free_running_pool(void)
{
    pm_pool *p = new_pool(2);
    enum { N = 1000 };
    pm_future *fs[N];
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_task, (void *)(uintptr_t)2000, &fs[i]), 0);
    size_t n = 100;
    int64_t *in = iota(n);
    pm_map_spec s = square_spec(in, NULL, n, 1);
    s.fn = square_sleepy;
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap(p, &s, &it), 0);
    double t0 = pm_test_now();
    pm_pool_free(p);                                      /* terminate + join */
    CU_ASSERT(pm_test_now() - t0 < 1.0);
    int done = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {                         /* futures outlive the pool */
        done += pm_future_done(fs[i]);
        cancelled += pm_future_status(fs[i]) == -ECANCELED;
        pm_future_free(fs[i]);
    }
    CU_ASSERT_EQUAL(done, N);
    CU_ASSERT(cancelled > N / 2);
    /* So does the iterator: whatever ran, then -ECANCELED, then the end. */
    int64_t v;
    int st, rc;
    size_t idx, got = 0;
    while ((rc = pm_imap_next(it, &v, &idx, &st, WAIT_S)) == 1 && st == 0)
        got++;
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_EQUAL(st, -ECANCELED);
    CU_ASSERT_EQUAL(idx, got);
    CU_ASSERT_EQUAL(pm_imap_next(it, &v, &idx, &st, WAIT_S), 0);
    pm_imap_free(it);
    free(in);
}

typedef struct terminate_arg {
    pm_pool *pool;
    int rc;
    size_t fail;
    double took;
} terminate_arg;

static void *map_in_thread(void *arg)
{
    terminate_arg *t = arg;
    size_t n = 20000;
    int64_t *in = iota(n), *out = calloc(n, sizeof *out);
    pm_map_spec s = square_spec(in, out, n, 10);
    s.fn = square_sleepy;                                 /* ~1 ms per item */
    double t0 = pm_test_now();
    t->rc = pm_pool_map(t->pool, &s, &t->fail);
    t->took = pm_test_now() - t0;
    free(in);
    free(out);
    return NULL;
}

static void test_terminate_stops_blocking_map(void)
{
    pm_pool *p = new_pool(2);
    /* A map_async in flight too: its runners share the two slots. */
    size_t n = 20000, afail = 99;
    int64_t *in = iota(n), *out = calloc(n, sizeof *out);
    pm_map_spec s = square_spec(in, out, n, 10);
    s.fn = square_sleepy;
    pm_future *af;
    CU_ASSERT_EQUAL_FATAL(pm_pool_map_async(p, &s, &afail, &af), 0);
    double end = pm_test_now() + WAIT_S;      /* started: no longer cancellable */
    while (!pm_future_running(af) && pm_test_now() < end)
        usleep(1000);
    CU_ASSERT_EQUAL(pm_future_cancel(af), -EBUSY);
    terminate_arg t = {.pool = p};
    pthread_t th;
    pthread_create(&th, NULL, map_in_thread, &t);
    usleep(50000);
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);                  /* waits for the map */
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(t.rc, -ECANCELED);
    CU_ASSERT(t.fail < 20000);
    CU_ASSERT(t.took < 2.0);                              /* not the ~10 s it needs */
    CU_ASSERT_EQUAL(pm_future_wait(af, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(af), -ECANCELED);
    CU_ASSERT(afail < n);                                 /* it had started: index set */
    CU_ASSERT_EQUAL(afail % 10, 0);                       /* a chunk boundary */
    pm_future_free(af);
    free(in);
    free(out);
    pm_pool_free(p);
}

typedef struct slot_waiter {
    pm_pool *pool;
    int rc;
    size_t fail;
    _Atomic int returned;
} slot_waiter;

static void *map_waiting_for_slot(void *arg)
{
    slot_waiter *t = arg;
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    pm_map_spec s = square_spec(in, out, 100, 1);
    t->rc = pm_pool_map(t->pool, &s, &t->fail);
    atomic_store(&t->returned, 1);
    return NULL;
}

/* Item 18: a blocking map that waits for an execution slot (every slot held
 * by a running task) was not woken by terminate: it waited for the task to
 * end, however long. It must return -ECANCELED at once, the task still
 * running. */
static void test_terminate_wakes_map_waiting_for_slot(void)
{
    pm_pool *p = new_pool(1);
    gate g;
    gate_init(&g);
    pm_future *blocker;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, gate_task, &g, &blocker), 0);
    CU_ASSERT_FATAL(gate_wait_for(&g, 1));          /* the only slot is held */
    slot_waiter t = {.pool = p, .fail = 99};
    pthread_t th;
    pthread_create(&th, NULL, map_waiting_for_slot, &t);
    double end = pm_test_now() + WAIT_S;            /* the map waits for a slot */
    while (atomic_load(&p->ex->slots.hungry) == 0 && pm_test_now() < end)
        usleep(1000);
    CU_ASSERT_EQUAL(atomic_load(&p->ex->slots.hungry), 1);
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);
    end = pm_test_now() + 10.0;                     /* hang guard: the gate stays shut */
    while (!atomic_load(&t.returned) && pm_test_now() < end)
        usleep(1000);
    CU_ASSERT(atomic_load(&t.returned));            /* before the task ended */
    CU_ASSERT(pm_future_running(blocker));
    gate_open(&g);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(t.rc, -ECANCELED);
    CU_ASSERT_EQUAL(t.fail, 0);                     /* no item ran */
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    CU_ASSERT_EQUAL(pm_future_status(blocker), 0);
    pm_future_free(blocker);
    pm_pool_free(p);
    gate_destroy(&g);
}

/* ---- fork ---- */

#if defined(__SANITIZE_THREAD__)
#define PM_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PM_TEST_TSAN 1
#endif
#endif

#ifndef PM_TEST_TSAN
static void *map_on_new_thread(void *arg)
{
    pm_pool *p = arg;
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    pm_map_spec s = square_spec(in, out, 100, 1);
    int bad = pm_pool_map(p, &s, NULL) != 0;
    for (int i = 0; i < 100; i++)
        bad += out[i] != (int64_t)i * i;
    return (void *)(uintptr_t)bad;
}
#endif

/* The child's side: returns a bit mask of failed checks. */
static int child_checks(pm_pool *old)
{
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    pm_map_spec s = square_spec(in, out, 100, 1);
    pm_future *f;
    pm_imap *it;
    int fail = 0;
    fail |= (pm_pool_map(old, &s, NULL) != -ECHILD) << 0;
    fail |= (pm_pool_apply_async(old, sleep_task, NULL, &f) != -ECHILD) << 1;
    fail |= (pm_pool_map_async(old, &s, NULL, &f) != -ECHILD) << 2;
    fail |= (pm_pool_imap(old, &s, &it) != -ECHILD) << 3;
    fail |= (pm_pool_close(old) != -ECHILD || pm_pool_terminate(old) != -ECHILD ||
             pm_pool_join(old) != -ECHILD) << 4;
    pm_pool_free(old);                          /* abandoned, does not hang */
#ifndef PM_TEST_TSAN    /* TSan: no threads in the child of a threaded parent */
    pm_pool *p = NULL;
    if (pm_pool_new(&(pm_pool_opts){.workers = 2}, &p) != 0)
        return fail | 1 << 5;
    /* This thread led OpenMP regions in the parent: libgomp would hang. */
    fail |= (pm_pool_map(p, &s, NULL) != -ECHILD) << 6;
    pthread_t th;
    void *bad = (void *)1;
    if (pthread_create(&th, NULL, map_on_new_thread, p) == 0)
        pthread_join(th, &bad);
    fail |= (bad != NULL) << 7;                 /* a thread made here is fine */
    fail |= (pm_pool_apply_async(p, sleep_task, (void *)(uintptr_t)5, &f) != 0 ||
             pm_future_wait(f, WAIT_S) != 0 || pm_future_result(f) != (void *)5) << 8;
    pm_future_free(f);
    pm_pool_free(p);
#endif
    return fail;
}

/* Item 18: after fork() a map in the child hung (libgomp), and the parent's
 * pool has no threads there. Every use of a pool made before the fork
 * returns -ECHILD, and so does a map on a thread that led OpenMP regions
 * before it; a new pool in the child works from threads made there. */
static void test_fork_child_errors_instead_of_hanging(void)
{
    pm_pool *p = new_pool(2);
    check_map(p, 1000, 1);                      /* this thread leads a region */
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_task, NULL, &f), 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        alarm(20);                              /* hang guard: SIGALRM kills it */
        _exit(child_checks(p));
    }
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st));
    CU_ASSERT_EQUAL(WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0); /* the parent's pool is fine */
    pm_future_free(f);
    check_map(p, 1000, 1);
    pm_pool_free(p);
}

/* ---- the thread budget ---- */

typedef struct budget {
    _Atomic int running, peak;
    _Atomic int64_t items;
} budget;

static void budget_enter(budget *b)
{
    int r = atomic_fetch_add(&b->running, 1) + 1;
    int pk = atomic_load(&b->peak);
    while (r > pk && !atomic_compare_exchange_weak(&b->peak, &pk, r))
        ;
}

static int budget_item(const void *in, void *out, void *arg)
{
    (void)in;
    (void)out;
    budget *b = arg;
    budget_enter(b);
    for (volatile int i = 0; i < 2000; i++)
        ;
    atomic_fetch_add(&b->items, 1);
    atomic_fetch_sub(&b->running, 1);
    return 0;
}

static int budget_task(void *arg, void **result_ret)
{
    (void)result_ret;
    return budget_item(NULL, NULL, arg);
}

typedef struct budget_thread {
    pm_pool *pool;
    budget *b;
    int rc;
} budget_thread;

static void *budget_mapper(void *arg)
{
    budget_thread *t = arg;
    pm_map_spec s = {.fn = budget_item, .arg = t->b, .n = 20000, .chunksize = 16};
    for (int i = 0; i < 5 && !t->rc; i++)
        t->rc = pm_pool_map(t->pool, &s, NULL);
    return NULL;
}

static void test_thread_budget(void)
{
    pm_pool *p = new_pool(2);
    budget b = {0};
    budget_thread t[2] = {{p, &b, 0}, {p, &b, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, budget_mapper, &t[i]);
    enum { N = 2000 };
    pm_future **fs = malloc(N * sizeof *fs);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, budget_task, &b, &fs[i]), 0);
    CU_ASSERT_EQUAL(pm_wait_all(fs, N, WAIT_S), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(t[i].rc, 0);
    }
    for (int i = 0; i < N; i++)
        pm_future_free(fs[i]);
    free(fs);
    CU_ASSERT_EQUAL(atomic_load(&b.items), N + 2 * 5 * 20000);
    CU_ASSERT(atomic_load(&b.peak) >= 1 && atomic_load(&b.peak) <= 2);
    pm_pool_free(p);
}

/* A map item that checks it runs in a team no larger than the budget and
 * that a nested OpenMP region stays serial. */
static int team_item(const void *in, void *out, void *arg)
{
    (void)in;
    (void)out;
    _Atomic int *bad = arg;
    if (omp_get_num_threads() > 2)
        atomic_fetch_add(bad, 1);
    int inner = 0;
#pragma omp parallel num_threads(4)
    {
#pragma omp atomic
        inner++;
    }
    if (inner != 1)
        atomic_fetch_add(bad, 1);
    return 0;
}

/* A task that runs a map on its own pool: must not deadlock on slots. */
static int nested_map_task(void *arg, void **result_ret)
{
    (void)result_ret;
    pm_pool *p = arg;
    int64_t in[64], out[64];
    for (int i = 0; i < 64; i++)
        in[i] = i;
    pm_map_spec s = square_spec(in, out, 64, 1);
    int rc = pm_pool_map(p, &s, NULL);
    return rc ? rc : (out[63] == 63 * 63 ? 0 : -EIO);
}

static int map_in_map_item(const void *in, void *out, void *arg)
{
    (void)in;
    (void)out;
    void *unused;
    return nested_map_task(arg, &unused);
}

static void test_nesting_and_team_size(void)
{
    pm_pool *p = new_pool(2);
    _Atomic int bad = 0;
    pm_map_spec s = {.fn = team_item, .arg = &bad, .n = 64, .chunksize = 1};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    CU_ASSERT_EQUAL(atomic_load(&bad), 0);
    pm_pool_free(p);

    p = new_pool(1);                      /* the only slot is the task's */
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, nested_map_task, p, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), 0);
    pm_future_free(f);
    s = (pm_map_spec){.fn = map_in_map_item, .arg = p, .n = 8, .chunksize = 1};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);
    pm_pool_free(p);
}

/* ---- stress: 10^6 tiny tasks, meant for ThreadSanitizer ---- */

static int tiny_item(const void *in, void *out, void *arg)
{
    (void)arg;
    *(uint32_t *)out = *(const uint32_t *)in + 1;
    return 0;
}

static int tiny_task(void *arg, void **result_ret)
{
    _Atomic int64_t *sum = arg;
    atomic_fetch_add_explicit(sum, 1, memory_order_relaxed);
    *result_ret = arg;
    return 0;
}

typedef struct stress_submitter {
    pm_pool *pool;
    _Atomic int64_t *sum;
    int n;
    int errors;
} stress_submitter;

static void *stress_submit(void *arg)
{
    stress_submitter *s = arg;
    enum { BATCH = 1000 };
    pm_future *fs[BATCH];
    for (int done = 0; done < s->n; done += BATCH) {
        for (int i = 0; i < BATCH; i++)
            s->errors += pm_pool_apply_async(s->pool, tiny_task, s->sum, &fs[i]) != 0;
        size_t left = BATCH, idx;
        while (left > 0 && pm_wait_any(fs, BATCH, WAIT_S, &idx) == 0) {
            s->errors += pm_future_status(fs[idx]) != 0;
            pm_future_free(fs[idx]);
            fs[idx] = NULL;
            left--;
        }
        s->errors += left != 0;
    }
    return NULL;
}

static void test_stress_million_tiny_tasks(void)
{
    pm_pool *p = new_pool(4);
    enum { NMAP = 600000, NASYNC = 100000, NIMAP = 200000 };
    _Atomic int64_t sum = 0;
    stress_submitter sub[2] = {{p, &sum, NASYNC, 0}, {p, &sum, NASYNC, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, stress_submit, &sub[i]);

    uint32_t *in = malloc(NMAP * sizeof *in), *out = malloc(NMAP * sizeof *out);
    for (uint32_t i = 0; i < NMAP; i++)
        in[i] = i;
    pm_map_spec s = {.fn = tiny_item, .in = in, .in_size = 4, .out = out, .out_size = 4,
                     .n = NMAP, .chunksize = 1};
    CU_ASSERT_EQUAL(pm_pool_map(p, &s, NULL), 0);       /* 6 x 10^5 one-item chunks */
    size_t bad = 0;
    for (uint32_t i = 0; i < NMAP; i++)
        bad += out[i] != i + 1;
    CU_ASSERT_EQUAL(bad, 0);

    s.n = NIMAP;
    s.chunksize = 8;
    pm_imap *it;
    CU_ASSERT_EQUAL_FATAL(pm_pool_imap_unordered(p, &s, &it), 0);
    uint32_t v;
    int st;
    size_t idx, got = 0;
    uint64_t total = 0;
    while (pm_imap_next(it, &v, &idx, &st, WAIT_S) == 1) {
        bad += st != 0 || v != idx + 1;
        total += v;
        got++;
    }
    pm_imap_free(it);
    CU_ASSERT_EQUAL(got, NIMAP);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(total, (uint64_t)NIMAP * (NIMAP + 1) / 2);

    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(sub[i].errors, 0);
    }
    CU_ASSERT_EQUAL(atomic_load(&sum), 2 * NASYNC);
    free(in);
    free(out);
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    pm_pool_free(p);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"new: defaults, PMAP_JOBS, invalid", test_new_defaults_and_invalid},
        {"initializer once per worker thread", test_initializer_once_per_worker},
        {"initializer failure fails pm_pool_new", test_initializer_failure},
        {"map in order, chunksize 1/20/auto", test_map_in_order},
        {"map reports the lowest failing index", test_map_error_lowest_index},
        {"map and friends reject invalid use", test_map_invalid},
        {"empty input for every entry point", test_empty_input_everywhere},
        {"map_async result and error", test_map_async},
        {"map_async cancel before start", test_map_async_cancel_before_start},
        {"imap ordered, random durations", test_imap_ordered_random_durations},
        {"imap_unordered completion order", test_imap_unordered},
        {"imap yields earlier results, then the error", test_imap_error_then_continue},
        {"imap keeps a bounded number in flight", test_imap_bounded_in_flight},
        {"imap input callback error", test_imap_input_error},
        {"imap free early cancels the rest", test_imap_free_early},
        {"imap next timeout", test_imap_timeout},
        {"imap with chunksize 2^40 .. SIZE_MAX", test_imap_huge_chunksize},
        {"imap memory follows n, not max_inflight", test_imap_memory_follows_n},
        {"imap input callback: automatic chunks grow", test_imap_input_auto_chunks_grow},
        {"imap input callback: a short input spreads", test_imap_input_short_input_spreads},
        {"apply_async slow task, timeout, failure", test_apply_async_slow_and_timeout},
        {"cancel before and after start", test_cancel_before_and_after_start},
        {"terminate with 10000 pending", test_terminate_10000_pending},
        {"close then join; use after close", test_close_then_join},
        {"join from a task is -EDEADLK", test_join_from_task},
        {"imap iterator keeps working after close", test_iterator_across_close},
        {"free a running pool", test_free_running_pool},
        {"terminate stops a blocking map", test_terminate_stops_blocking_map},
        {"terminate wakes a map waiting for a slot", test_terminate_wakes_map_waiting_for_slot},
        {"fork: the child gets -ECHILD, not a hang", test_fork_child_errors_instead_of_hanging},
        {"thread budget: tasks + maps <= workers", test_thread_budget},
        {"nested maps; OpenMP team size", test_nesting_and_team_size},
        {"stress: 10^6 tiny tasks", test_stress_million_tiny_tasks},
        {NULL, NULL},
    };
    return pm_test_run("pool", cases);
}
