/* test_future.c - pm_future: waits and timeouts, done-callbacks, cancel,
 * wait_any / wait_all (as concurrent.futures.wait and as_completed),
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
        {NULL, NULL},
    };
    return pm_test_run("future", cases);
}
