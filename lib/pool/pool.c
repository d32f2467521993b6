/* pool.c - pm_pool, the public face of the executor (exec/exec.h):
 * apply_async, the close / terminate / join lifecycle, and the bookkeeping
 * of blocking maps and imap iterators.
 *
 * Threads. The executor's backend (exec_threads.c) owns the worker threads
 * and the queue; a pool's futures are work items on it (future.c), and so
 * are a pipeline's chunks when the pipeline runs on this pool. Blocking
 * maps do not go through the queue: they run as OpenMP parallel loops on
 * the calling thread plus OpenMP's team threads (pool_map.c), on the same
 * execution slots, so worker threads and OpenMP threads together never run
 * more than `workers` items at once, though more threads may exist (idle
 * workers, OpenMP threads between regions; OpenMP's idle threads may spin
 * briefly after a region, per OMP_WAIT_POLICY / GOMP_SPINCOUNT, but run no
 * work). A map called from a task uses the caller's slot plus free ones
 * without waiting, and a map nested in a map runs serially on its thread's
 * slot, so nesting cannot deadlock on slots.
 *
 * Processes (PM_POOL_PROCESSES: exec_procs.c). The same queue and worker
 * threads, each the proxy of a worker process: a task is wrapped in an
 * rtask (below) whose run sends the function and its argument bytes to the
 * proxy's process; map and imap chunks do the same with their items
 * (pool_map.c, pool_imap.c), and a blocking map is map_async plus a wait.
 * Tasks queued one behind the other go to a process in batches (run_batch
 * below).
 * apply_async_data uses an rtask on threads too, for the same ownership.
 *
 * Cancellation is a state change of the future (future.c): a cancelled
 * future stays in the queue and is dropped when popped. Terminate makes the
 * executor drop its whole queue: every queued future is cancelled; running
 * tasks finish.
 *
 * Closing. After close, the workers drain the queue and exit once it is
 * empty and no live imap iterator (an executor hold) may still submit
 * chunks. Join waits for the workers, then for blocking maps still running
 * (active_maps), so after join no thread works for the pool.
 *
 * Fork. A child has only the thread that forked: a pool made before the
 * fork has no workers there, and its locks may be held by threads that do
 * not exist. An atfork handler counts the forks (fork_gen); every entry
 * point of a pool made in an earlier generation returns -ECHILD at once,
 * and pm_pool_free abandons it (joining the parent's threads would hang).
 * Blocking maps check their calling thread too (pool_map.c).
 *
 * Lock order: pool->mu before the executor's locks; a future's mutex is
 * never held with the pool mutex; iterator mutexes (pool_imap.c) come
 * before pool->mu.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/config.h>
#include <pmap/pool.h>

#include "pool_internal.h"

/* ---- fork ---- */

static _Atomic unsigned fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void fork_watch(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}

unsigned pm__fork_gen(void)
{
    return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

int pm__pool_forked(const pm_pool *pool)
{
    return PM__UNLIKELY(pool->fork_gen != pm__fork_gen());
}

/* ---- worker count ---- */

static int resolve_workers(const pm_pool_opts *opts)
{
    int w = opts ? opts->workers : PM_POOL_AUTO;
    if (w == PM_POOL_AUTO || w == 0)
        return pm_default_jobs();
    if (w <= 0 || w > PM_POOL_MAX_WORKERS)
        return -EINVAL;
    return w;
}

/* ---- the queue ---- */

static int rtask_run(void *arg, void **result_ret);
static void run_batch(pm_future *head);

static void future_work_run(pm__work *w, unsigned worker)
{
    (void)worker;
    pm_future *f = (pm_future *)w;
    if (f->fn == rtask_run)
        run_batch(f);       /* batches on processes, else as below */
    else if (pm__future_start(f))
        pm__future_run(f);
    pm__future_unref(f);    /* the queue's reference */
}

static void future_work_drop(pm__work *w)
{
    pm_future *f = (pm_future *)w;
    pm__future_cancel(f);
    pm__future_unref(f);    /* the queue's reference */
}

int pm__pool_submit(pm_pool *pool, pm_future **fs, size_t n, int internal)
{
    for (size_t i = 0; i < n; i++) {
        fs[i]->work.run = future_work_run;
        fs[i]->work.drop = future_work_drop;
    }
    /* pm_future starts with its pm__work: the arrays alias. */
    return pool->ex->ops->submit(pool->ex, (pm__work **)fs, n,
                                 internal ? PM__SUBMIT_INTERNAL : 0);
}

int pm__pool_thread_init(pm_pool *pool)
{
    return pm__exec_thread_init(pool->ex);
}

/* ---- lifecycle ---- */

/* The backend's ops for opts, NULL for an invalid choice. */
static const pm__exec_ops *backend_of(const pm_pool_opts *opts)
{
    if (!opts || opts->backend == PM_POOL_THREADS)
        return &pm__exec_threads;
    if (opts->backend != PM_POOL_PROCESSES || !(opts->task_timeout >= 0) ||
        opts->task_timeout > 1e9 || (opts->initarg_size && !opts->initarg))
        return NULL;
    return &pm__exec_procs;
}

static int pool_alloc(int workers, const pm_pool_opts *opts, pm_pool **pool_ret)
{
    const pm__exec_ops *ops = backend_of(opts);
    if (!ops)
        return -EINVAL;
    pm_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    int rc = pm__exec_new(ops, workers, opts ? opts->initializer : NULL,
                          opts ? opts->initarg : NULL, &pool->ex);
    if (rc == 0 && opts)
        pool->ex->opts = *opts;
    if (rc == 0) {
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
        pthread_mutex_init(&pool->mu, &ma);
        pthread_mutexattr_destroy(&ma);
        if ((rc = pm__cond_init(&pool->state_cv)) != 0) {
            pthread_mutex_destroy(&pool->mu);
            pm__exec_free(pool->ex);
        }
    }
    if (rc) {
        free(pool);
        return rc;
    }
    pool->workers = workers;
    pool->fork_gen = pm__fork_gen();
    pool->iters.next = pool->iters.prev = &pool->iters;
    atomic_init(&pool->refs, 1);
    if (opts)
        pool->imap_inflight = opts->imap_inflight;
    *pool_ret = pool;
    return 0;
}

static void pool_destroy(pm_pool *pool)
{
    pthread_cond_destroy(&pool->state_cv);
    pthread_mutex_destroy(&pool->mu);
    pm__exec_free(pool->ex);
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

int pm_pool_new(const pm_pool_opts *opts, pm_pool **pool_ret)
{
    if (!pool_ret)
        return -EINVAL;
    pthread_once(&fork_once, fork_watch);
    int workers = resolve_workers(opts);
    if (workers < 0)
        return workers;
    pm_pool *pool;
    int rc = pool_alloc(workers, opts, &pool);
    if (rc)
        return rc;
    rc = pool->ex->ops->start(pool->ex);
    if (rc) {
        pm_pool_free(pool);
        return rc;
    }
    *pool_ret = pool;
    return 0;
}

pm__exec *pm__pool_exec(pm_pool *pool)
{
    return pool->ex;
}

int pm_pool_workers(const pm_pool *pool)
{
    return pool ? pool->workers : -EINVAL;
}

/* apply_async_data's task and, on processes, every task: what to run and
 * where its bytes are (the future owns it). */
typedef struct rtask {
    pm__exec *ex;
    pm_task_fn fn;
    void *arg;                   /* opaque (arg_size 0) or data */
    size_t arg_size, result_size;
    int procs;
    _Alignas(max_align_t) unsigned char data[];   /* arg bytes, then the result */
} rtask;

static unsigned char *rtask_result(rtask *t)
{
    return t->data + ((t->arg_size + 63) & ~(size_t)63);
}

/* 1 for a status that says the worker died or timed out (no result). */
static int worker_died(int rc)
{
    return rc == -ETIMEDOUT || PM_WORKER_SIGNAL(rc) || PM_WORKER_EXIT(rc) >= 0;
}

static int rtask_run(void *arg, void **result_ret)
{
    rtask *t = arg;
    void *res = t->result_size ? rtask_result(t) : NULL;
    if (t->procs) {
        int rc = pm__procs_task(t->ex, t->fn, t->arg, t->arg_size, res, t->result_size);
        *result_ret = worker_died(rc) ? NULL : res;
        return rc;
    }
    void *mine = res;
    int rc = t->fn(t->arg, &mine);
    if (res && mine && mine != res)
        memmove(res, mine, t->result_size);    /* as the process workers do */
    *result_ret = res;
    return rc;
}

/* ---- batches of tasks on processes ----
 *
 * A proxy that pops a task finds the tasks queued right behind it (not
 * started, in order, at most BATCH_MAX and its share of the queue: exec's
 * take) and sends them to its worker as one request (pm__procs_tasks):
 * one round trip and one hand-off for the lot, which is what a loaded
 * machine charges for. All of them start (RUNNING) when taken, so from
 * then on pm_future_cancel fails for them; each completes as soon as the
 * proxy sees the worker finished it, while later ones still run. Tasks
 * that terminate kept from running end cancelled. Alone in the queue, a
 * task goes the one-task way (rtask_run).
 *
 * Long tasks gain nothing from batching and a batch holds work back from
 * idle workers, so each proxy keeps the mean time per task of its last
 * request (task_ns, round trip included) and takes no more tasks than fit
 * BATCH_BUDGET_NS by it: tasks of 5 ms and more go one by one, and once
 * short ones come again the next single task's time lets batches grow. */

#define BATCH_MAX 64
#define BATCH_BUDGET_NS 5000000

static _Thread_local int64_t task_ns;      /* this proxy's estimate */

typedef struct batch {
    pm_future *f[BATCH_MAX];
    pm__ptask t[BATCH_MAX];
} batch;

/* A queued item a batch may take: a task on processes (under the
 * executor's queue lock: looks at immutable fields only). */
static int batchable(pm__work *w)
{
    pm_future *f = (pm_future *)w;
    return w->run == future_work_run && f->fn == rtask_run && ((rtask *)f->owned)->procs;
}

static void batch_done(void *ctx, size_t i, int status)
{
    batch *b = ctx;
    pm_future *f = b->f[i];
    rtask *t = f->owned;
    void *res = t->result_size && !worker_died(status) ? rtask_result(t) : NULL;
    pm__future_finish(f, status, res);
    if (i)
        pm__future_unref(f);    /* the queue's reference (the head's: the caller's) */
}

static void run_batch(pm_future *head)
{
    if (!pm__future_start(head))
        return;                 /* cancelled while queued */
    rtask *t = head->owned;
    pm__exec *ex = t->ex;
    if (!t->procs) {
        pm__future_run(head);
        return;
    }
    size_t cap = BATCH_MAX - 1;
    if (task_ns > 0 && BATCH_BUDGET_NS / task_ns < (int64_t)cap)
        cap = (size_t)(BATCH_BUDGET_NS / task_ns);
    pm__work *more[BATCH_MAX - 1];
    size_t m = cap ? ex->ops->take(ex, batchable, more, cap) : 0;
    int64_t t0 = pm__now_ns();
    batch b;
    size_t n = 0;
    b.f[n++] = head;
    for (size_t j = 0; j < m; j++) {
        pm_future *f = (pm_future *)more[j];
        if (pm__future_start(f))
            b.f[n++] = f;
        else
            pm__future_unref(f);    /* cancelled while queued: the queue's ref */
    }
    if (n == 1) {
        pm__future_run(head);
        task_ns = pm__now_ns() - t0;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rtask *r = b.f[i]->owned;
        b.t[i] = (pm__ptask){r->fn, r->arg, r->arg_size,
                             r->result_size ? rtask_result(r) : NULL, r->result_size};
    }
    size_t ran = pm__procs_tasks(ex, b.t, n, batch_done, &b);
    if (ran)
        task_ns = (pm__now_ns() - t0) / (int64_t)ran;
    for (size_t i = ran; i < n; i++) {     /* terminated before they ran */
        pm__future_unstart(b.f[i]);
        if (i)
            pm__future_unref(b.f[i]);
    }
}

/* A future (the caller's and the queue's references) running fn through
 * an rtask it owns; NULL when out of memory. */
static pm_future *rtask_future(pm_pool *pool, pm_task_fn fn, const void *arg,
                               size_t arg_size, size_t result_size)
{
    size_t len = sizeof(rtask) + ((arg_size + 63) & ~(size_t)63) + result_size;
    rtask *t = calloc(1, len);
    pm_future *f = t ? pm__future_new(rtask_run, t, 2) : NULL;
    if (!f) {
        free(t);
        return NULL;
    }
    *t = (rtask){.ex = pool->ex, .fn = fn, .arg = (void *)arg, .arg_size = arg_size,
                 .result_size = result_size, .procs = pm__pool_procs(pool)};
    if (arg_size)
        t->arg = memcpy(t->data, arg, arg_size);
    f->owned = t;
    return f;
}

static int submit_task(pm_pool *pool, pm_task_fn fn, const void *arg, size_t arg_size,
                       size_t result_size, int data, pm_future **future_ret)
{
    if (!pool || !fn || !future_ret || (arg_size && !arg) ||
        arg_size > SIZE_MAX / 4 || result_size > SIZE_MAX / 4)
        return -EINVAL;
    if (pm__pool_forked(pool))
        return -ECHILD;
    int procs = pm__pool_procs(pool);
    pm_future *f = !procs && !data ? pm__future_new(fn, (void *)arg, 2)
                                   : rtask_future(pool, fn, arg, arg_size, result_size);
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

int pm_pool_apply_async(pm_pool *pool, pm_task_fn fn, void *arg,
                        pm_future **future_ret)
{
    return submit_task(pool, fn, arg, 0, 0, 0, future_ret);
}

int pm_pool_apply_async_data(pm_pool *pool, pm_task_fn fn, const void *arg,
                             size_t arg_size, size_t result_size, pm_future **future_ret)
{
    return submit_task(pool, fn, arg, arg_size, result_size, 1, future_ret);
}

int pm_pool_close(pm_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (pm__pool_forked(pool))
        return -ECHILD;
    pool->ex->ops->stop(pool->ex, 0);
    return 0;
}

int pm_pool_terminate(pm_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (pm__pool_forked(pool))
        return -ECHILD;
    pool->ex->ops->stop(pool->ex, 1);
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
    pool->ex->ops->join(pool->ex);
    pthread_mutex_lock(&pool->mu);
    while (pool->active_maps > 0)
        pthread_cond_wait(&pool->state_cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
    pm__slots_wait_idle(&pool->ex->slots);
    pthread_mutex_lock(&pool->mu);
    pool->joined = 1;
    pthread_cond_broadcast(&pool->state_cv);
    pthread_mutex_unlock(&pool->mu);
}

int pm_pool_join(pm_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (pm__pool_forked(pool))
        return -ECHILD;
    void *mark = pthread_getspecific(pool->ex->key);
    if (mark == PM__TLS_WORKER || mark == PM__TLS_IN_MAP)
        return -EDEADLK;
    pthread_mutex_lock(&pool->mu);
    int rc = 0;
    int st = atomic_load(&pool->ex->state);
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
    if (!pool || pm__pool_forked(pool))
        return;                  /* in a forked child: abandoned (see above) */
    pm_pool_terminate(pool);
    pm_pool_join(pool);
    pm__pool_unref(pool);
}

/* ---- bookkeeping for maps and iterators ---- */

int pm__pool_map_enter(pm_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    int open = atomic_load_explicit(&pool->ex->state, memory_order_relaxed) == PM__OPEN;
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
    pm__exec_hold(pool->ex);
}

void pm__pool_iter_remove(pm_pool *pool, pm__iter_link *l)
{
    pthread_mutex_lock(&pool->mu);
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = l;
    pthread_mutex_unlock(&pool->mu);
    pm__exec_unhold(pool->ex);     /* closed workers may wait for the last */
}
