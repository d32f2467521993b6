/* pool.c - pm_pool: worker threads, the task queue, apply_async, and the
 * close / terminate / join lifecycle.
 *
 * Threads. A pool owns `workers` pthreads. Each runs the initializer once,
 * then loops: pop a future from the queue, run it, finish it (which wakes
 * its waiters and runs its callbacks on the worker). Blocking maps do not go
 * through the queue: they run as OpenMP parallel loops on the calling
 * thread plus OpenMP's team threads (pool_map.c).
 *
 * One thread budget. The pool has `workers` execution slots (pool_sync.c).
 * A worker holds one while it runs tasks: it takes one before its first
 * task after being idle, keeps it while the queue has work, and gives it
 * back before it parks, or between two tasks when a map is waiting for
 * slots. A blocking map takes as many slots as are free (at least one,
 * waiting while none is), runs its OpenMP region with exactly that many
 * threads, and gives them back afterwards. So worker threads and OpenMP
 * threads together never run more than `workers` items at once, though
 * more threads may exist (idle workers, OpenMP threads between regions;
 * OpenMP's idle threads may spin briefly after a region, per
 * OMP_WAIT_POLICY / GOMP_SPINCOUNT, but run no work).
 * A map called from a task uses the caller's slot plus free ones without
 * waiting, and a map nested in a map runs serially on its thread's slot,
 * so nesting cannot deadlock on slots.
 *
 * The queue. A FIFO of futures linked through their `next` field, under
 * the pool mutex (adaptive: it is held for a few instructions). Submitters
 * append and wake a parked worker only when no worker is already spinning.
 * A worker that finds the queue empty spins for a few microseconds on the
 * atomic queue length before parking (at most one spins at a time), so a
 * stream of small submissions does not cost a futex wake-up per task; a
 * worker that pops a task while more are queued wakes one more worker if
 * none is spinning (wake-ups cascade instead of one per submission).
 *
 * Cancellation is a state change of the future (future.c): a cancelled
 * future stays in the queue and is dropped when popped. Terminate takes the
 * whole queue at once and cancels everything in it; running tasks finish.
 *
 * Closing. After close, the workers drain the queue and exit once it is
 * empty and no live imap iterator may still submit chunks. Join waits for
 * the workers, then for blocking maps still running (active_maps), so
 * after join no thread works for the pool.
 *
 * Lock order: pool->mu before slots.mu; a future's mutex is never held with
 * the pool mutex; iterator mutexes (pool_imap.c) come before pool->mu.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/config.h>
#include <pmap/pool.h>

#include "pool_internal.h"

#define SPIN_NS 20000      /* how long an idle worker polls before parking */

/* ---- worker count ---- */

static int resolve_workers(const pm_pool_opts *opts)
{
    int w = opts ? opts->workers : PM_POOL_AUTO;
    if (w == PM_POOL_AUTO)
        return pm_default_jobs();
    if (w <= 0 || w > PM_POOL_MAX_WORKERS)
        return -EINVAL;
    return w;
}

/* ---- the queue ---- */

int pm__pool_submit(pm_pool *pool, pm_future **fs, size_t n, int internal)
{
    if (n == 0)
        return 0;
    pthread_mutex_lock(&pool->mu);
    int st = atomic_load_explicit(&pool->state, memory_order_relaxed);
    if (st == PM__TERMINATED || (st == PM__CLOSED && !internal)) {
        pthread_mutex_unlock(&pool->mu);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        fs[i]->next = NULL;
        if (pool->tail)
            pool->tail->next = fs[i];
        else
            pool->head = fs[i];
        pool->tail = fs[i];
    }
    atomic_fetch_add_explicit(&pool->qlen, n, memory_order_release);
    int wake = pool->parked > 0 && !pool->spinning;
    pthread_mutex_unlock(&pool->mu);
    if (wake)
        pthread_cond_signal(&pool->work_cv);
    return 0;
}

/* Pops the head; under mu, queue not empty. */
static pm_future *pop_locked(pm_pool *pool)
{
    pm_future *f = pool->head;
    pool->head = f->next;
    if (!pool->head)
        pool->tail = NULL;
    atomic_fetch_sub_explicit(&pool->qlen, 1, memory_order_relaxed);
    if (pool->head && pool->parked > 0 && !pool->spinning)
        pthread_cond_signal(&pool->work_cv);
    return f;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Polls for work or a state change for up to SPIN_NS (without mu). */
static void spin_for_work(pm_pool *pool, int state0)
{
    int64_t end = now_ns() + SPIN_NS;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&pool->qlen, memory_order_relaxed) ||
            atomic_load_explicit(&pool->state, memory_order_relaxed) != state0)
            return;
        pm__cpu_relax();
        if ((i & 63) == 0 && now_ns() > end)
            return;
    }
}

static int worker_should_exit(pm_pool *pool)
{
    int st = atomic_load_explicit(&pool->state, memory_order_relaxed);
    if (st == PM__TERMINATED)
        return 1;
    return st == PM__CLOSED && !pool->head && pool->iters.next == &pool->iters;
}

/* The next future to run, or NULL when the worker should exit. Gives the
 * worker's slot back (*have_slot) before it waits. */
static pm_future *next_task(pm_pool *pool, int *have_slot)
{
    int spun = 0;
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        if (worker_should_exit(pool))
            break;
        if (pool->head) {
            pm_future *f = pop_locked(pool);
            pthread_mutex_unlock(&pool->mu);
            return f;
        }
        if (*have_slot) {
            pm__slots_give(&pool->slots, 1);
            *have_slot = 0;
        }
        if (!spun && !pool->spinning) {
            int st = atomic_load_explicit(&pool->state, memory_order_relaxed);
            pool->spinning = spun = 1;
            pthread_mutex_unlock(&pool->mu);
            spin_for_work(pool, st);
            pthread_mutex_lock(&pool->mu);
            pool->spinning = 0;
            continue;
        }
        pool->parked++;
        pthread_cond_wait(&pool->work_cv, &pool->mu);
        pool->parked--;
        spun = 0;
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

static void run_task(pm_pool *pool, pm_future *f)
{
    if (atomic_load_explicit(&pool->state, memory_order_relaxed) == PM__TERMINATED)
        pm__future_cancel(f);
    else if (pm__future_start(f))
        pm__future_run(f);
    pm__future_unref(f);    /* the queue's reference */
}

static void worker_loop(pm_pool *pool)
{
    int have_slot = 0;
    pm_future *f;
    while ((f = next_task(pool, &have_slot))) {
        if (!have_slot) {
            pm__slots_take_worker(&pool->slots);
            have_slot = 1;
        }
        run_task(pool, f);
        if (atomic_load_explicit(&pool->slots.hungry, memory_order_relaxed)) {
            pm__slots_give(&pool->slots, 1);
            have_slot = 0;
        }
    }
    if (have_slot)
        pm__slots_give(&pool->slots, 1);
}

static void *worker_main(void *arg)
{
    pm_pool *pool = arg;
    int rc = pool->init ? pool->init(pool->initarg) : 0;
    pthread_setspecific(pool->key, PM__TLS_WORKER);
    pthread_mutex_lock(&pool->mu);
    pool->started++;
    if (rc && !pool->init_err)
        pool->init_err = rc;
    pthread_cond_broadcast(&pool->state_cv);
    pthread_mutex_unlock(&pool->mu);
    if (rc == 0)
        worker_loop(pool);
    return NULL;
}

int pm__pool_thread_init(pm_pool *pool)
{
    if (pthread_getspecific(pool->key))
        return 0;
    int rc = pool->init ? pool->init(pool->initarg) : 0;
    if (rc == 0)
        pthread_setspecific(pool->key, PM__TLS_INITED);
    return rc;
}

/* ---- lifecycle ---- */

static int pool_alloc(int workers, const pm_pool_opts *opts, pm_pool **pool_ret)
{
    pm_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    pool->threads = calloc((size_t)workers, sizeof *pool->threads);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    int rc = pool->threads ? 0 : -ENOMEM;
    int have_key = 0, have_slots = 0;
    if (!rc && !(rc = -pthread_key_create(&pool->key, NULL)))
        have_key = 1;
    if (!rc && !(rc = pm__slots_init(&pool->slots, workers)))
        have_slots = 1;
    if (!rc) {
        pthread_mutex_init(&pool->mu, &ma);
        if ((rc = pm__cond_init(&pool->work_cv)) == 0 &&
            (rc = pm__cond_init(&pool->state_cv)) != 0)
            pthread_cond_destroy(&pool->work_cv);
        if (rc)
            pthread_mutex_destroy(&pool->mu);
    }
    pthread_mutexattr_destroy(&ma);
    if (rc) {
        if (have_slots)
            pm__slots_destroy(&pool->slots);
        if (have_key)
            pthread_key_delete(pool->key);
        free(pool->threads);
        free(pool);
        return rc;
    }
    pool->workers = workers;
    pool->iters.next = pool->iters.prev = &pool->iters;
    atomic_init(&pool->refs, 1);
    if (opts) {
        pool->init = opts->initializer;
        pool->initarg = opts->initarg;
        pool->imap_inflight = opts->imap_inflight;
    }
    *pool_ret = pool;
    return 0;
}

static void pool_destroy(pm_pool *pool)
{
    pthread_cond_destroy(&pool->state_cv);
    pthread_cond_destroy(&pool->work_cv);
    pthread_mutex_destroy(&pool->mu);
    pm__slots_destroy(&pool->slots);
    pthread_key_delete(pool->key);
    free(pool->threads);
    free(pool);
}

void pm__pool_ref(pm_pool *pool)
{
    atomic_fetch_add(&pool->refs, 1);
}

void pm__pool_unref(pm_pool *pool)
{
    if (atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) == 1)
        pool_destroy(pool);
}

/* Starts the workers and waits for their initializers: 0 or an error. */
static int start_workers(pm_pool *pool)
{
    int rc = 0;
    for (int i = 0; i < pool->workers; i++) {
        rc = -pthread_create(&pool->threads[i], NULL, worker_main, pool);
        if (rc)
            break;
        pool->nthreads++;
        char name[16];
        snprintf(name, sizeof name, "pmap-w%u", (unsigned)i & 0xffffu);
        pthread_setname_np(pool->threads[i], name);
    }
    pthread_mutex_lock(&pool->mu);
    while (pool->started < pool->nthreads)
        pthread_cond_wait(&pool->state_cv, &pool->mu);
    if (!rc)
        rc = pool->init_err;
    pthread_mutex_unlock(&pool->mu);
    return rc;
}

int pm_pool_new(const pm_pool_opts *opts, pm_pool **pool_ret)
{
    if (!pool_ret)
        return -EINVAL;
    int workers = resolve_workers(opts);
    if (workers < 0)
        return workers;
    pm_pool *pool;
    int rc = pool_alloc(workers, opts, &pool);
    if (rc)
        return rc;
    rc = start_workers(pool);
    if (rc) {
        pm_pool_free(pool);
        return rc;
    }
    *pool_ret = pool;
    return 0;
}

int pm_pool_workers(const pm_pool *pool)
{
    return pool ? pool->workers : -EINVAL;
}

int pm_pool_apply_async(pm_pool *pool, pm_task_fn fn, void *arg,
                        pm_future **future_ret)
{
    if (!pool || !fn || !future_ret)
        return -EINVAL;
    pm_future *f = pm__future_new(fn, arg, 2);    /* the caller's, the queue's */
    if (!f)
        return -ENOMEM;
    int rc = pm__pool_submit(pool, &f, 1, 0);
    if (rc) {
        pm__future_unref(f);
        pm__future_unref(f);
        return rc;
    }
    *future_ret = f;
    return 0;
}

int pm_pool_close(pm_pool *pool)
{
    if (!pool)
        return -EINVAL;
    pthread_mutex_lock(&pool->mu);
    if (atomic_load(&pool->state) == PM__OPEN)
        atomic_store(&pool->state, PM__CLOSED);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->mu);
    return 0;
}

int pm_pool_terminate(pm_pool *pool)
{
    if (!pool)
        return -EINVAL;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->state, PM__TERMINATED);
    pm_future *f = pool->head;
    pool->head = pool->tail = NULL;
    atomic_store(&pool->qlen, 0);
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->mu);
    while (f) {
        pm_future *next = f->next;
        pm__future_cancel(f);
        pm__future_unref(f);      /* the queue's reference */
        f = next;
    }
    return 0;
}

/* -EDEADLK if the calling thread owns a live iterator; under mu. */
static int owns_live_iterator(pm_pool *pool)
{
    pthread_t self = pthread_self();
    for (pm__iter_link *l = pool->iters.next; l != &pool->iters; l = l->next)
        if (pthread_equal(l->owner, self))
            return 1;
    return 0;
}

/* Joins the threads and waits for running maps; the caller set joining. */
static void join_all(pm_pool *pool)
{
    for (int i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_lock(&pool->mu);
    while (pool->active_maps > 0)
        pthread_cond_wait(&pool->state_cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
    pm__slots_wait_idle(&pool->slots);
    pthread_mutex_lock(&pool->mu);
    pool->joined = 1;
    pthread_cond_broadcast(&pool->state_cv);
    pthread_mutex_unlock(&pool->mu);
}

int pm_pool_join(pm_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (pthread_getspecific(pool->key) == PM__TLS_WORKER ||
        pthread_getspecific(pool->key) == PM__TLS_IN_MAP)
        return -EDEADLK;
    pthread_mutex_lock(&pool->mu);
    int rc = 0;
    int st = atomic_load(&pool->state);
    if (st == PM__OPEN)
        rc = -EINVAL;
    else if (st == PM__CLOSED && !pool->joined && !pool->joining &&
             owns_live_iterator(pool))
        rc = -EDEADLK;    /* the workers would wait for this thread */
    else if (pool->joining) {
        while (!pool->joined)
            pthread_cond_wait(&pool->state_cv, &pool->mu);
        rc = 1;     /* someone else joined */
    }
    if (rc == 0)
        pool->joining = 1;
    pthread_mutex_unlock(&pool->mu);
    if (rc)
        return rc < 0 ? rc : 0;
    join_all(pool);
    return 0;
}

void pm_pool_free(pm_pool *pool)
{
    if (!pool)
        return;
    pm_pool_terminate(pool);
    pm_pool_join(pool);
    pm__pool_unref(pool);
}

/* ---- bookkeeping for maps and iterators ---- */

int pm__pool_map_enter(pm_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    int open = atomic_load_explicit(&pool->state, memory_order_relaxed) == PM__OPEN;
    if (open)
        pool->active_maps++;
    pthread_mutex_unlock(&pool->mu);
    return open ? 0 : -EINVAL;
}

void pm__pool_map_leave(pm_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    if (--pool->active_maps == 0 && pool->joining)
        pthread_cond_broadcast(&pool->state_cv);
    pthread_mutex_unlock(&pool->mu);
}

void pm__pool_iter_add(pm_pool *pool, pm__iter_link *l)
{
    l->owner = pthread_self();
    pthread_mutex_lock(&pool->mu);
    l->next = pool->iters.next;
    l->prev = &pool->iters;
    l->next->prev = l;
    pool->iters.next = l;
    pthread_mutex_unlock(&pool->mu);
}

void pm__pool_iter_remove(pm_pool *pool, pm__iter_link *l)
{
    pthread_mutex_lock(&pool->mu);
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = l;
    /* Closed workers may be waiting for the last iterator to go. */
    pthread_cond_broadcast(&pool->work_cv);
    pthread_mutex_unlock(&pool->mu);
}
