/* exec_threads.c - the executor's thread backend: `workers` pthreads and
 * one FIFO of work items.
 *
 * Threads. Each worker runs the initializer once (start waits for all of
 * them and fails with the first failure), then loops: pop an item, run it
 * with its worker index. Items are intrusive (pm__work): submitting costs
 * no allocation, so a pipeline's chunks and a pool's futures travel the
 * same queue and share the same workers.
 *
 * Slots. A worker takes an execution slot before its first item after
 * being idle, keeps it while the queue has work, and gives it back before
 * it parks, or between two items when a blocking map is waiting for slots
 * (pool/pool_map.c). That is what keeps one thread budget across tasks,
 * pipeline stages and maps.
 *
 * The queue. A FIFO linked through pm__work.next under `mu` (adaptive: it
 * is held for a few instructions); PM__SUBMIT_FRONT puts items at the head
 * (a stage's continuation runs before new chunks). Submitters wake a parked
 * worker only when no worker is already spinning. A worker that finds the
 * queue empty spins for a few microseconds on the atomic queue length
 * before parking (at most one spins at a time), so a stream of small
 * submissions does not cost a futex wake-up per item; a worker that pops an
 * item while more are queued wakes one more if none is spinning (wake-ups
 * cascade instead of one per submission).
 *
 * Stop. Close lets the workers drain the queue and exit once it is empty
 * and no hold is left (exec.h); terminate takes the whole queue at once and
 * drops every item in it (drop(), on the terminating thread), and aborts
 * the slots so that blocking maps waiting for one return; running items
 * finish. Cancel unlinks one queued item.
 *
 * Lock order: mu before slots.mu; nothing else is taken under mu.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "exec/exec.h"

#define SPIN_NS 20000      /* how long an idle worker polls before parking */

typedef struct thr_worker {
    pm__exec *ex;
    unsigned index;
    pthread_t tid;
} thr_worker;

typedef struct thr {
    pthread_mutex_t mu;          /* adaptive; guards all below but qlen */
    pthread_cond_t work_cv;      /* idle workers park here */
    pthread_cond_t state_cv;     /* start-up */
    pm__fifo q;                  /* queued items (pm__work.node) */
    _Atomic size_t qlen;         /* the queue's length; read without mu by spinners */
    int parked;                  /* workers in work_cv */
    int spinning;                /* a worker polls qlen before parking */
    int started;                 /* workers past their initializer */
    int init_err;                /* first initializer failure */
    int nthreads;                /* threads created */
    thr_worker *threads;
} thr;

static int thr_submit(pm__exec *ex, pm__work **ws, size_t n, unsigned flags)
{
    thr *t = ex->be;
    if (n == 0)
        return 0;
    pthread_mutex_lock(&t->mu);
    int st = atomic_load_explicit(&ex->state, memory_order_relaxed);
    if (st == PM__TERMINATED || (st == PM__CLOSED && !(flags & PM__SUBMIT_INTERNAL))) {
        pthread_mutex_unlock(&t->mu);
        return -EINVAL;
    }
    if (flags & PM__SUBMIT_FRONT) {
        for (size_t i = n; i-- > 0;)
            pm__fifo_push_front(&t->q, &ws[i]->node);
    } else {
        for (size_t i = 0; i < n; i++)
            pm__fifo_push(&t->q, &ws[i]->node);
    }
    atomic_fetch_add_explicit(&t->qlen, n, memory_order_release);
    int wake = t->parked > 0 && !t->spinning;
    pthread_mutex_unlock(&t->mu);
    if (wake)
        pthread_cond_signal(&t->work_cv);
    return 0;
}

static int thr_cancel(pm__exec *ex, pm__work *w)
{
    thr *t = ex->be;
    pthread_mutex_lock(&t->mu);
    int found = pm__fifo_remove(&t->q, &w->node);
    if (found)
        atomic_fetch_sub_explicit(&t->qlen, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    return found ? 0 : -EBUSY;
}

/* Pops the head; under mu, queue not empty. */
static pm__work *pop_locked(thr *t)
{
    pm__work *w = pm__container_of(pm__fifo_pop(&t->q), pm__work, node);
    atomic_fetch_sub_explicit(&t->qlen, 1, memory_order_relaxed);
    if (!pm__fifo_empty(&t->q) && t->parked > 0 && !t->spinning)
        pthread_cond_signal(&t->work_cv);
    return w;
}

/* Pops up to max items at the head of the queue that same() accepts, in
 * order, stopping at the first it refuses (a batch keeps the FIFO order),
 * and leaving the other workers their share: with q items queued, a caller
 * that already popped one takes at most (q + 1) / workers - 1 more. Never
 * blocks; the thread backend's own workers never call it. */
static size_t thr_take(pm__exec *ex, int (*same)(pm__work *w), pm__work **out, size_t max)
{
    thr *t = ex->be;
    size_t share = (atomic_load_explicit(&t->qlen, memory_order_relaxed) + 1) /
                   (size_t)ex->workers;
    if (share <= 1 || max == 0)
        return 0;
    if (max > share - 1)
        max = share - 1;
    size_t n = 0;
    pthread_mutex_lock(&t->mu);
    while (n < max && !pm__fifo_empty(&t->q)) {
        pm__work *w = pm__container_of(t->q.head, pm__work, node);
        if (!same(w))
            break;
        pm__fifo_pop(&t->q);
        out[n++] = w;
    }
    atomic_fetch_sub_explicit(&t->qlen, n, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* Polls for work or a state change for up to SPIN_NS (without mu). */
static void spin_for_work(pm__exec *ex, thr *t, int state0)
{
    int64_t end = pm__now_ns() + SPIN_NS;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&t->qlen, memory_order_relaxed) ||
            atomic_load_explicit(&ex->state, memory_order_relaxed) != state0)
            return;
        pm__cpu_relax();
        if ((i & 63) == 0 && pm__now_ns() > end)
            return;
    }
}

static int worker_should_exit(pm__exec *ex, thr *t)
{
    int st = atomic_load_explicit(&ex->state, memory_order_relaxed);
    if (st == PM__TERMINATED)
        return 1;
    return st == PM__CLOSED && pm__fifo_empty(&t->q) && atomic_load(&ex->holds) == 0;
}

/* The next item to run, or NULL when the worker should exit. Gives the
 * worker's slot back (*have_slot) before it waits. */
static pm__work *next_item(pm__exec *ex, thr *t, int *have_slot)
{
    int spun = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (worker_should_exit(ex, t))
            break;
        if (!pm__fifo_empty(&t->q)) {
            pm__work *w = pop_locked(t);
            pthread_mutex_unlock(&t->mu);
            return w;
        }
        if (*have_slot) {
            pm__slots_give(&ex->slots, 1);
            *have_slot = 0;
        }
        if (!spun && !t->spinning) {
            int st = atomic_load_explicit(&ex->state, memory_order_relaxed);
            t->spinning = spun = 1;
            pthread_mutex_unlock(&t->mu);
            spin_for_work(ex, t, st);
            pthread_mutex_lock(&t->mu);
            t->spinning = 0;
            continue;
        }
        t->parked++;
        pthread_cond_wait(&t->work_cv, &t->mu);
        t->parked--;
        spun = 0;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void run_item(pm__exec *ex, pm__work *w, unsigned index)
{
    if (atomic_load_explicit(&ex->state, memory_order_relaxed) == PM__TERMINATED) {
        if (w->drop)
            w->drop(w);
    } else {
        w->run(w, index);
    }
}

static void worker_loop(pm__exec *ex, thr *t, unsigned index)
{
    int have_slot = 0;
    pm__work *w;
    while ((w = next_item(ex, t, &have_slot))) {
        if (!have_slot) {
            pm__slots_take_worker(&ex->slots);
            have_slot = 1;
        }
        run_item(ex, w, index);
        if (atomic_load_explicit(&ex->slots.hungry, memory_order_relaxed)) {
            pm__slots_give(&ex->slots, 1);
            have_slot = 0;
        }
    }
    if (have_slot)
        pm__slots_give(&ex->slots, 1);
}

static void *worker_main(void *arg)
{
    thr_worker *me = arg;
    pm__exec *ex = me->ex;
    thr *t = ex->be;
    int rc = ex->init ? ex->init(ex->initarg) : 0;
    pthread_setspecific(ex->key, PM__TLS_WORKER);
    pthread_mutex_lock(&t->mu);
    t->started++;
    if (rc && !t->init_err)
        t->init_err = rc;
    pthread_cond_broadcast(&t->state_cv);
    pthread_mutex_unlock(&t->mu);
    if (rc == 0)
        worker_loop(ex, t, me->index);
    return NULL;
}

static void thr_destroy(pm__exec *ex)
{
    thr *t = ex->be;
    if (!t)
        return;
    pthread_cond_destroy(&t->state_cv);
    pthread_cond_destroy(&t->work_cv);
    pthread_mutex_destroy(&t->mu);
    free(t->threads);
    free(t);
    ex->be = NULL;
}

static int thr_alloc(pm__exec *ex)
{
    thr *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->threads = calloc((size_t)ex->workers, sizeof *t->threads);
    if (!t->threads) {
        free(t);
        return -ENOMEM;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&t->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    int rc = pm__cond_init(&t->work_cv);
    if (rc == 0 && (rc = pm__cond_init(&t->state_cv)) != 0)
        pthread_cond_destroy(&t->work_cv);
    if (rc) {
        pthread_mutex_destroy(&t->mu);
        free(t->threads);
        free(t);
        return rc;
    }
    ex->be = t;
    return 0;
}

/* Creates the workers and waits for their initializers: 0 or an error.
 * On failure the backend stays allocated for stop/join/destroy. */
static int thr_start(pm__exec *ex)
{
    int rc = thr_alloc(ex);
    if (rc)
        return rc;
    thr *t = ex->be;
    for (int i = 0; i < ex->workers; i++) {
        thr_worker *w = &t->threads[i];
        w->ex = ex;
        w->index = (unsigned)i;
        rc = -pthread_create(&w->tid, NULL, worker_main, w);
        if (rc)
            break;
        t->nthreads++;
        char name[16];
        snprintf(name, sizeof name, "pmap-w%u", (unsigned)i & 0xffffu);
        pthread_setname_np(w->tid, name);
    }
    pthread_mutex_lock(&t->mu);
    while (t->started < t->nthreads)
        pthread_cond_wait(&t->state_cv, &t->mu);
    if (!rc)
        rc = t->init_err;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static void thr_stop(pm__exec *ex, int terminate)
{
    thr *t = ex->be;
    if (!t)
        return;                  /* never started */
    pthread_mutex_lock(&t->mu);
    pm__node *w = NULL;
    if (terminate) {
        atomic_store(&ex->state, PM__TERMINATED);
        w = pm__fifo_take_all(&t->q);
        atomic_store(&t->qlen, 0);
    } else if (atomic_load(&ex->state) == PM__OPEN) {
        atomic_store(&ex->state, PM__CLOSED);
    }
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->mu);
    if (terminate)
        pm__slots_abort(&ex->slots);      /* maps waiting for a slot return */
    while (w) {
        pm__node *next = w->next;
        pm__work *item = pm__container_of(w, pm__work, node);
        if (item->drop)
            item->drop(item);
        w = next;
    }
}

static void thr_join(pm__exec *ex)
{
    thr *t = ex->be;
    if (!t)
        return;                  /* never started */
    for (int i = 0; i < t->nthreads; i++)
        pthread_join(t->threads[i].tid, NULL);
    t->nthreads = 0;
}

static void thr_kick(pm__exec *ex)
{
    thr *t = ex->be;
    if (!t)
        return;                  /* never started */
    pthread_mutex_lock(&t->mu);
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->mu);
}

const pm__exec_ops pm__exec_threads = {
    .name = "threads",
    .caps = PM__EXEC_SHARED_MEMORY,
    .start = thr_start,
    .submit = thr_submit,
    .cancel = thr_cancel,
    .take = thr_take,
    .stop = thr_stop,
    .join = thr_join,
    .kick = thr_kick,
    .destroy = thr_destroy,
};
