/* test_future.c - pm_future: waits and timeouts, done-callbacks, cancel,
 * wait_any / wait_all (as concurrent.futures.wait), pm_as_completed,
 * ownership (fire and forget, futures outliving their pool). Every wait is
 * bounded, so a broken future fails the test instead of hanging it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <pmap/pool.h>
#include "testutil.h"

#define WAIT_S 30.0

static pm_pool *new_pool(int workers)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = workers;
    pm_pool *p = NULL;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&o, &p), 0);
    return p;
}

/* A latch tasks block on until released. */
typedef struct latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, waiting;
} latch;

#define LATCH_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

static int latch_task(void *arg, void **result_ret)
{
    latch *l = arg;
    pthread_mutex_lock(&l->mu);
    l->waiting++;
    while (!l->open)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    *result_ret = l;
    return 0;
}

static void latch_open(latch *l)
{
    pthread_mutex_lock(&l->mu);
    l->open = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static int latch_wait_for(latch *l, int n)
{
    double end = pm_test_now() + WAIT_S;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        int w = l->waiting;
        pthread_mutex_unlock(&l->mu);
        if (w >= n)
            return 1;
        if (pm_test_now() > end)
            return 0;
        usleep(1000);
    }
}

static int sleep_us_task(void *arg, void **result_ret)
{
    usleep((useconds_t)(uintptr_t)arg);
    *result_ret = arg;
    return 0;
}

/* ---- callbacks ---- */

typedef struct cb_log {
    pthread_mutex_t mu;
    int order[8];
    int n;
    pthread_t thread[8];
    int saw_done[8];       /* the future was already done inside the callback */
} cb_log;

typedef struct cb_arg {
    cb_log *log;
    int id;
} cb_arg;

static void log_cb(pm_future *f, void *arg)
{
    cb_arg *a = arg;
    pthread_mutex_lock(&a->log->mu);
    int i = a->log->n++;
    if (i < 8) {
        a->log->order[i] = a->id;
        a->log->thread[i] = pthread_self();
        a->log->saw_done[i] = pm_future_done(f);
    }
    pthread_mutex_unlock(&a->log->mu);
}

static int log_count(cb_log *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void test_callbacks_before_completion(void)
{
    pm_pool *p = new_pool(1);
    latch l = LATCH_INIT;
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, latch_task, &l, &f), 0);
    CU_ASSERT_FATAL(latch_wait_for(&l, 1));
    cb_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cb_arg a[3] = {{&log, 1}, {&log, 2}, {&log, 3}};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(pm_future_add_done_callback(f, log_cb, &a[i]), 0);
    CU_ASSERT_EQUAL(log_count(&log), 0);            /* not done: not yet */
    latch_open(&l);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    double end = pm_test_now() + WAIT_S;            /* they run right after waiters wake */
    while (log_count(&log) < 3 && pm_test_now() < end)
        usleep(1000);
    CU_ASSERT_EQUAL(log_count(&log), 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(log.order[i], i + 1);        /* in the order added */
        CU_ASSERT(!pthread_equal(log.thread[i], pthread_self()));   /* on the worker */
        CU_ASSERT(log.saw_done[i]);
    }
    pm_pool_close(p);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    CU_ASSERT_EQUAL(log_count(&log), 3);            /* once each */
    pm_future_free(f);
    pm_pool_free(p);
}

static void test_callback_on_done_future_runs_at_once(void)
{
    pm_pool *p = new_pool(2);
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, NULL, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    cb_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cb_arg a = {&log, 7};
    CU_ASSERT_EQUAL(pm_future_add_done_callback(f, log_cb, &a), 0);
    CU_ASSERT_EQUAL(log.n, 1);                       /* synchronously */
    CU_ASSERT(pthread_equal(log.thread[0], pthread_self()));
    pm_future_free(f);
    pm_pool_free(p);
}

static void free_in_cb(pm_future *f, void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    pm_future_free(f);                               /* allowed: drops the caller's ref */
}

static void test_cancel_runs_callbacks_here(void)
{
    pm_pool *p = new_pool(1);
    latch l = LATCH_INIT;
    pm_future *blocker, *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, latch_task, &l, &blocker), 0);
    CU_ASSERT_FATAL(latch_wait_for(&l, 1));
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, NULL, &f), 0);
    cb_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cb_arg a = {&log, 1};
    _Atomic int freed = 0;
    CU_ASSERT_EQUAL(pm_future_add_done_callback(f, log_cb, &a), 0);
    CU_ASSERT_EQUAL(pm_future_add_done_callback(f, free_in_cb, &freed), 0);
    CU_ASSERT_EQUAL(pm_future_cancel(f), 0);
    CU_ASSERT_EQUAL(log.n, 1);                       /* on the cancelling thread */
    CU_ASSERT(pthread_equal(log.thread[0], pthread_self()));
    CU_ASSERT_EQUAL(atomic_load(&freed), 1);         /* f is ours no more */
    latch_open(&l);
    pm_future_free(blocker);
    pm_pool_free(p);
}

/* ---- waiting ---- */

static void test_wait_timeouts_and_poll(void)
{
    pm_pool *p = new_pool(1);
    latch l = LATCH_INIT;
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, latch_task, &l, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, 0), -ETIMEDOUT);          /* a poll */
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_future_wait(f, 0.1), -ETIMEDOUT);
    double took = pm_test_now() - t0;
    CU_ASSERT(took >= 0.095 && took < 2.0);
    CU_ASSERT_EQUAL(pm_future_status(f), -EINPROGRESS);
    CU_ASSERT_PTR_NULL(pm_future_result(f));
    pm_future *one[1] = {f};
    size_t idx = 99;
    CU_ASSERT_EQUAL(pm_wait_any(one, 1, 0.02, &idx), -ETIMEDOUT);
    CU_ASSERT_EQUAL(idx, 99);
    CU_ASSERT_EQUAL(pm_wait_all(one, 1, 0.02), -ETIMEDOUT);
    latch_open(&l);
    CU_ASSERT_EQUAL(pm_future_wait(f, PM_FOREVER), 0);
    CU_ASSERT_EQUAL(pm_future_status(f), 0);
    CU_ASSERT_PTR_EQUAL(pm_future_result(f), &l);
    CU_ASSERT_EQUAL(pm_future_wait(f, 0), 0);
    pm_future_free(f);
    pm_pool_free(p);
}

typedef struct waiter_arg {
    pm_future *f;
    int rc;
} waiter_arg;

static void *wait_thread(void *arg)
{
    waiter_arg *w = arg;
    w->rc = pm_future_wait(w->f, WAIT_S);
    return NULL;
}

static void test_many_waiters_one_future(void)
{
    pm_pool *p = new_pool(1);
    latch l = LATCH_INIT;
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, latch_task, &l, &f), 0);
    enum { T = 6 };
    pthread_t th[T];
    waiter_arg w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (waiter_arg){f, 1};
        pthread_create(&th[i], NULL, wait_thread, &w[i]);
    }
    usleep(20000);
    latch_open(&l);
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(w[i].rc, 0);
    }
    pm_future_free(f);
    pm_pool_free(p);
}

/* 1,000 futures with random short durations, drained with wait_any the way
 * as_completed() drains them: each is seen exactly once. */
static void test_wait_any_1000_until_all_done(void)
{
    pm_pool *p = new_pool(3);
    enum { N = 1000 };
    pm_future *fs[N];
    for (int i = 0; i < N; i++) {
        uintptr_t us = (uintptr_t)((i * 7919) % 500);
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, (void *)us, &fs[i]), 0);
    }
    char seen[N] = {0};
    int got = 0, bad = 0;
    size_t idx;
    while (got < N && pm_wait_any(fs, N, WAIT_S, &idx) == 0) {
        bad += idx >= N || seen[idx] || !pm_future_done(fs[idx]) ||
               pm_future_status(fs[idx]) != 0 ||
               pm_future_result(fs[idx]) != (void *)(uintptr_t)((idx * 7919) % 500);
        seen[idx] = 1;
        pm_future_free(fs[idx]);
        fs[idx] = NULL;
        got++;
    }
    CU_ASSERT_EQUAL(got, N);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(pm_wait_any(fs, N, 0, &idx), -EINVAL);   /* nothing left */
    CU_ASSERT_EQUAL(pm_wait_any(fs, 0, 0, &idx), -EINVAL);
    CU_ASSERT_EQUAL(pm_wait_any(NULL, 3, 0, &idx), -EINVAL);
    CU_ASSERT_EQUAL(pm_wait_all(fs, N, 0), 0);              /* all NULL: nothing to wait */
    pm_pool_free(p);
}

static void test_wait_any_lowest_done_and_mixed_pools(void)
{
    pm_pool *p1 = new_pool(1), *p2 = new_pool(1);
    latch l = LATCH_INIT;
    pm_future *fs[3];
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p1, latch_task, &l, &fs[0]), 0);
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p2, sleep_us_task, (void *)(uintptr_t)20000, &fs[1]), 0);
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p2, sleep_us_task, NULL, &fs[2]), 0);
    size_t idx = 99;
    CU_ASSERT_EQUAL(pm_wait_any(fs, 3, WAIT_S, &idx), 0);   /* wakes on another pool's */
    CU_ASSERT(idx == 1 || idx == 2);
    CU_ASSERT_EQUAL(pm_wait_all(fs + 1, 2, WAIT_S), 0);
    CU_ASSERT_EQUAL(pm_wait_any(fs, 3, WAIT_S, &idx), 0);
    CU_ASSERT_EQUAL(idx, 1);                                 /* the lowest done index */
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_wait_all(fs, 3, 0.1), -ETIMEDOUT);   /* bounded as a whole */
    CU_ASSERT(pm_test_now() - t0 < 2.0);
    latch_open(&l);
    CU_ASSERT_EQUAL(pm_wait_all(fs, 3, WAIT_S), 0);
    for (int i = 0; i < 3; i++)
        pm_future_free(fs[i]);
    pm_pool_free(p1);
    pm_pool_free(p2);
}

/* ---- ownership ---- */

static int count_task(void *arg, void **result_ret)
{
    (void)result_ret;
    usleep(1000);
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* ---- as_completed ---- */

static int status_of(pm_future *f)
{
    return f ? pm_future_status(f) : -999;
}

/* Three tasks finish in the order 2, 0, 1: that is the order they come out. */
static void test_as_completed_order_of_completion(void)
{
    pm_pool *p = new_pool(3);
    latch l[3] = {LATCH_INIT, LATCH_INIT, LATCH_INIT};
    pm_future *fs[3];
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, latch_task, &l[i], &fs[i]), 0);
    pm_as_completed *ac;
    CU_ASSERT_EQUAL_FATAL(pm_as_completed_new(fs, 3, &ac), 0);
    size_t idx = 99;
    pm_future *f = NULL;
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0, &idx, &f), -ETIMEDOUT);   /* poll */
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0.02, &idx, &f), -ETIMEDOUT);
    CU_ASSERT_EQUAL(idx, 99);                            /* outputs untouched */
    const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        latch_open(&l[order[k]]);
        f = NULL;
        CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, &f), 1);
        CU_ASSERT_EQUAL(idx, (size_t)order[k]);
        CU_ASSERT_PTR_EQUAL(f, fs[order[k]]);
        CU_ASSERT_EQUAL(status_of(f), 0);
        CU_ASSERT_PTR_EQUAL(pm_future_result(f), &l[order[k]]);
        pm_future_free(f);                               /* ours again */
    }
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, &f), 0);       /* all out */
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0, &idx, &f), 0);
    pm_as_completed_free(ac);
    pm_pool_free(p);
}

/* Done before they are added, NULL entries, add() after new(), empty sets,
 * invalid arguments. */
static void test_as_completed_done_null_add_invalid(void)
{
    pm_pool *p = new_pool(2);
    pm_future *fs[4] = {NULL, NULL, NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, (void *)(uintptr_t)1, &fs[1]), 0);
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, (void *)(uintptr_t)3, &fs[3]), 0);
    CU_ASSERT_EQUAL(pm_wait_all(fs, 4, WAIT_S), 0);      /* both done before new() */
    pm_as_completed *ac = NULL;
    CU_ASSERT_EQUAL(pm_as_completed_new(NULL, 3, &ac), -EINVAL);
    CU_ASSERT_EQUAL(pm_as_completed_new(fs, 4, NULL), -EINVAL);
    CU_ASSERT_PTR_NULL(ac);
    CU_ASSERT_EQUAL_FATAL(pm_as_completed_new(fs, 4, &ac), 0);
    size_t idx, seen = 0;
    pm_future *f;
    for (int k = 0; k < 2; k++) {                        /* ready at once, no wait */
        CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0, &idx, &f), 1);
        CU_ASSERT(idx == 1 || idx == 3);
        CU_ASSERT_PTR_EQUAL(pm_future_result(f), (void *)(uintptr_t)idx);
        seen |= (size_t)1 << idx;
        pm_future_free(f);
    }
    CU_ASSERT_EQUAL(seen, 0xa);
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0, &idx, &f), 0);
    pm_future *g;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, (void *)(uintptr_t)7, &g), 0);
    CU_ASSERT_EQUAL(pm_as_completed_add(NULL, g, &idx), -EINVAL);
    CU_ASSERT_EQUAL(pm_as_completed_add(ac, NULL, &idx), -EINVAL);
    idx = 0;
    CU_ASSERT_EQUAL(pm_as_completed_add(ac, g, &idx), 0);
    CU_ASSERT_EQUAL(idx, 4);                             /* after new()'s 0..3 */
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, NULL), 1);   /* released here */
    CU_ASSERT_EQUAL(idx, 4);
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, &f), 0);
    CU_ASSERT_EQUAL(pm_as_completed_next(NULL, 0, &idx, &f), -EINVAL);
    pm_as_completed_free(ac);
    CU_ASSERT_EQUAL_FATAL(pm_as_completed_new(NULL, 0, &ac), 0);          /* empty */
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, &f), 0);
    pm_as_completed_free(ac);
    pm_as_completed_free(NULL);
    pm_pool_free(p);
}

/* Cancelled futures come out like the others, with -ECANCELED: one by
 * pm_future_cancel, the rest by terminate; the running one comes last. */
static void test_as_completed_cancel_and_terminate(void)
{
    pm_pool *p = new_pool(1);
    latch l = LATCH_INIT;
    enum { N = 101 };
    pm_future *fs[N];
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, latch_task, &l, &fs[0]), 0);
    CU_ASSERT_FATAL(latch_wait_for(&l, 1));              /* fs[0] runs, the rest queue */
    for (int i = 1; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, NULL, &fs[i]), 0);
    pm_future *f50 = fs[50];
    pm_as_completed *ac;
    CU_ASSERT_EQUAL_FATAL(pm_as_completed_new(fs, N, &ac), 0);
    size_t idx;
    pm_future *f;
    CU_ASSERT_EQUAL(pm_future_cancel(f50), 0);           /* the set holds it: valid */
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0, &idx, &f), 1);
    CU_ASSERT_EQUAL(idx, 50);
    CU_ASSERT_EQUAL(status_of(f), -ECANCELED);
    pm_future_free(f);
    CU_ASSERT_EQUAL(pm_pool_terminate(p), 0);            /* cancels the 99 queued */
    char seen[N] = {0};
    int got = 0, bad = 0;
    while (pm_as_completed_next(ac, 0, &idx, &f) == 1) {
        bad += idx == 0 || idx == 50 || idx >= N || seen[idx] || status_of(f) != -ECANCELED;
        if (idx < N)
            seen[idx] = 1;
        pm_future_free(f);
        got++;
    }
    CU_ASSERT_EQUAL(got, N - 2);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0, &idx, &f), -ETIMEDOUT);  /* fs[0] runs */
    latch_open(&l);
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, &f), 1);
    CU_ASSERT_EQUAL(idx, 0);
    CU_ASSERT_EQUAL(status_of(f), 0);
    pm_future_free(f);
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, &f), 0);
    pm_as_completed_free(ac);
    pm_pool_free(p);
}

typedef struct ac_consumer {
    pm_as_completed *ac;
    _Atomic int *taken;
    _Atomic char *seen;
    int total, bad;
} ac_consumer;

static void *ac_consume(void *arg)
{
    ac_consumer *c = arg;
    double end = pm_test_now() + WAIT_S;
    while (atomic_load(c->taken) < c->total && pm_test_now() < end) {
        size_t idx;
        pm_future *f;
        int rc = pm_as_completed_next(c->ac, 0.01, &idx, &f);
        if (rc != 1)
            continue;                  /* nothing yet, or not all added yet */
        c->bad += idx >= (size_t)c->total || atomic_exchange(&c->seen[idx], 1) ||
                  status_of(f) != 0 || pm_future_result(f) != (void *)(uintptr_t)(idx % 300);
        pm_future_free(f);
        atomic_fetch_add(c->taken, 1);
    }
    return NULL;
}

/* 6,000 futures on two pools, added one by one while two threads take them
 * out: every one comes out exactly once, to one of them. */
static void test_as_completed_concurrent_add_and_next(void)
{
    pm_pool *p[2] = {new_pool(2), new_pool(1)};
    enum { N = 6000 };
    pm_as_completed *ac;
    CU_ASSERT_EQUAL_FATAL(pm_as_completed_new(NULL, 0, &ac), 0);
    _Atomic int taken = 0;
    _Atomic char *seen = calloc(N, 1);
    ac_consumer c[2] = {{ac, &taken, seen, N, 0}, {ac, &taken, seen, N, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, ac_consume, &c[i]);
    int errors = 0;
    for (size_t i = 0; i < N; i++) {
        pm_future *f;
        size_t idx = SIZE_MAX;
        errors += pm_pool_apply_async(p[i % 2], sleep_us_task, (void *)(uintptr_t)(i % 300), &f) != 0;
        errors += pm_as_completed_add(ac, f, &idx) != 0 || idx != i;
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(atomic_load(&taken), N);
    CU_ASSERT_EQUAL(c[0].bad + c[1].bad, 0);
    size_t idx;
    pm_future *f;
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, 0, &idx, &f), 0);
    pm_as_completed_free(ac);
    free((void *)seen);
    pm_pool_free(p[0]);
    pm_pool_free(p[1]);
}

/* Freed with futures pending and others done but not taken: it neither
 * waits nor leaks, and the pending ones still complete (LeakSanitizer and
 * ThreadSanitizer check the rest). */
static void test_as_completed_free_early(void)
{
    pm_pool *p = new_pool(2);
    latch l = LATCH_INIT;
    _Atomic int ran = 0;
    enum { N = 400 };
    pm_future *fs[N];
    for (int i = 0; i < N; i++) {
        int rc = i < 10 ? pm_pool_apply_async(p, sleep_us_task, NULL, &fs[i])
               : i < 12 ? pm_pool_apply_async(p, latch_task, &l, &fs[i])
                        : pm_pool_apply_async(p, count_task, &ran, &fs[i]);
        CU_ASSERT_EQUAL_FATAL(rc, 0);
    }
    CU_ASSERT_EQUAL(pm_wait_all(fs, 10, WAIT_S), 0);     /* 10 done, ready in the set */
    CU_ASSERT_FATAL(latch_wait_for(&l, 2));              /* both workers held */
    pm_as_completed *ac;
    CU_ASSERT_EQUAL_FATAL(pm_as_completed_new(fs, N, &ac), 0);
    size_t idx;
    pm_future *f;
    CU_ASSERT_EQUAL(pm_as_completed_next(ac, WAIT_S, &idx, &f), 1);
    CU_ASSERT(idx < 10);
    pm_future_free(f);
    pm_as_completed_free(ac);                            /* 9 ready, 390 pending */
    latch_open(&l);
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);                 /* callbacks on a freed set */
    CU_ASSERT_EQUAL(atomic_load(&ran), N - 12);          /* freeing did not cancel */
    pm_pool_free(p);
}

static void test_fire_and_forget(void)
{
    pm_pool *p = new_pool(2);
    _Atomic int ran = 0;
    for (int i = 0; i < 50; i++) {
        pm_future *f;
        CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, count_task, &ran, &f), 0);
        pm_future_free(f);                    /* freeing does not cancel */
    }
    CU_ASSERT_EQUAL(pm_pool_close(p), 0);
    CU_ASSERT_EQUAL(pm_pool_join(p), 0);
    CU_ASSERT_EQUAL(atomic_load(&ran), 50);
    pm_pool_free(p);
    pm_future_free(NULL);
}

static void test_future_outlives_pool(void)
{
    pm_pool *p = new_pool(1);
    pm_future *f;
    CU_ASSERT_EQUAL_FATAL(pm_pool_apply_async(p, sleep_us_task, (void *)(uintptr_t)5, &f), 0);
    CU_ASSERT_EQUAL(pm_future_wait(f, WAIT_S), 0);
    pm_pool_free(p);
    CU_ASSERT(pm_future_done(f));
    CU_ASSERT_EQUAL(pm_future_status(f), 0);
    CU_ASSERT_PTR_EQUAL(pm_future_result(f), (void *)(uintptr_t)5);
    cb_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cb_arg a = {&log, 1};
    CU_ASSERT_EQUAL(pm_future_add_done_callback(f, log_cb, &a), 0);
    CU_ASSERT_EQUAL(log.n, 1);
    pm_future_free(f);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"callbacks added before completion", test_callbacks_before_completion},
        {"callback on a done future runs at once", test_callback_on_done_future_runs_at_once},
        {"cancel runs callbacks on the canceller", test_cancel_runs_callbacks_here},
        {"wait timeouts and polling", test_wait_timeouts_and_poll},
        {"many waiters on one future", test_many_waiters_one_future},
        {"wait_any over 1000 futures until all done", test_wait_any_1000_until_all_done},
        {"wait_any lowest index, two pools; wait_all", test_wait_any_lowest_done_and_mixed_pools},
        {"free before completion does not cancel", test_fire_and_forget},
        {"a future outlives its pool", test_future_outlives_pool},
        {"as_completed: order of completion, timeouts", test_as_completed_order_of_completion},
        {"as_completed: done, NULL, add, invalid", test_as_completed_done_null_add_invalid},
        {"as_completed: cancel and terminate", test_as_completed_cancel_and_terminate},
        {"as_completed: concurrent add and next", test_as_completed_concurrent_add_and_next},
        {"as_completed: free with futures pending", test_as_completed_free_early},
        {NULL, NULL},
    };
    return pm_test_run("future", cases);
}
