/* future.c - pm_future: state, completion, callbacks, waiting.
 *
 * State. A future's `state` word goes PENDING -> RUNNING -> DONE or
 * PENDING -> CANCELLED, each step a compare-and-swap (start and cancel race
 * for PENDING; exactly one wins). status and result are written before the
 * release store that makes the state final, so whoever sees a final state
 * with an acquire load may read them without a lock.
 *
 * Listeners. Done-callbacks and waiters live in lists under the future's
 * mutex. The common case has no listener, so completion skips the mutex:
 * a registering thread sets `listeners` under the mutex and then re-reads
 * the state; the completer stores the final state and then reads
 * `listeners` (both sequentially consistent, Dekker-style). Either the
 * registrant sees the final state (and runs its callback itself, or does
 * not wait), or the completer sees the flag and takes the mutex to detach
 * and fire the lists.
 *
 * Waiting. A waiting thread owns a pm__waiter (a futex word on its stack)
 * and links one pm__wlink per future it waits on; a completer fires it
 * (store 1, futex wake) while holding that future's mutex, and the waiter
 * unlinks under each mutex before returning, so no completer can touch the
 * waiter once it is gone. pm_wait_any links to all the futures; pm_wait_all
 * waits for them one by one against a single deadline.
 *
 * References. A future is freed when its last reference goes: the caller's
 * (pm_future_free), the pool queue's (dropped by the worker that pops it, or
 * by terminate), and for pool-internal futures that of the job that tracks
 * them.
 */
#include <errno.h>
#include <stdlib.h>

#include <pmap/future.h>

#include "pool_internal.h"

pm_future *pm__future_new(pm_task_fn fn, void *arg, int refs)
{
    pm_future *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    f->work.node.next = NULL;
    f->fn = fn;
    f->arg = arg;
    atomic_init(&f->state, PM__PENDING);
    atomic_init(&f->listeners, 0);
    atomic_init(&f->refs, refs);
    f->status = 0;
    f->result = NULL;
    f->hook = NULL;
    f->hook_arg = NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->cbs = NULL;
    f->cbs_tail = &f->cbs;
    f->waiters = NULL;
    f->owned = NULL;
    return f;
}

void pm__future_unref(pm_future *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f->owned);
    free(f);
}

int pm__future_start(pm_future *f)
{
    uint32_t expect = PM__PENDING;
    return atomic_compare_exchange_strong(&f->state, &expect, PM__RUNNING);
}

static int is_final(uint32_t s)
{
    return s == PM__DONE || s == PM__CANCELLED;
}

/* Detaches the callbacks and fires the waiters; under f->mu. */
static pm__cb *detach_listeners(pm_future *f)
{
    for (pm__wlink *l = f->waiters; l; l = l->next) {
        l->linked = 0;
        atomic_store_explicit(&l->w->fired, 1, memory_order_release);
        pm__futex_wake(&l->w->fired, 1);
    }
    f->waiters = NULL;
    pm__cb *cbs = f->cbs;
    f->cbs = NULL;
    f->cbs_tail = &f->cbs;
    return cbs;
}

static void run_callbacks(pm_future *f, pm__cb *cb)
{
    while (cb) {
        pm__cb *next = cb->next;
        int own = !cb->embedded;       /* an embedded node may be gone after fn */
        cb->fn(f, cb->arg);
        if (own)
            free(cb);
        cb = next;
    }
}

/* The second half of finishing: f's state is already final. */
static void after_final(pm_future *f)
{
    pm__cb *cbs = NULL;
    pm__hook hook = f->hook;           /* read before callbacks, which may free f */
    void *hook_arg = f->hook_arg;
    if (atomic_load(&f->listeners)) {
        pthread_mutex_lock(&f->mu);
        cbs = detach_listeners(f);
        pthread_mutex_unlock(&f->mu);
    }
    run_callbacks(f, cbs);
    if (hook)
        hook(f, hook_arg);
}

void pm__future_finish(pm_future *f, int status, void *result)
{
    f->status = status;
    f->result = result;
    atomic_store(&f->state, PM__DONE);
    after_final(f);
}

int pm__future_cancel(pm_future *f)
{
    uint32_t s = PM__PENDING;
    if (atomic_compare_exchange_strong(&f->state, &s, PM__CANCELLED)) {
        /* status and result are not read for CANCELLED: nothing to store. */
        after_final(f);
        return 0;
    }
    if (s == PM__CANCELLED)
        return 0;
    return s == PM__RUNNING ? -EBUSY : -EALREADY;
}

void pm__future_unstart(pm_future *f)
{
    uint32_t s = PM__RUNNING;
    if (atomic_compare_exchange_strong(&f->state, &s, PM__CANCELLED))
        after_final(f);
}

void pm__future_run(pm_future *f)
{
    void *result = NULL;
    int rc = f->fn(f->arg, &result);
    pm__future_finish(f, rc, result);
}

/* ---- public API ---- */

int pm_future_done(const pm_future *f)
{
    return is_final(atomic_load_explicit(&((pm_future *)f)->state,
                                         memory_order_acquire));
}

int pm_future_running(const pm_future *f)
{
    return atomic_load(&((pm_future *)f)->state) == PM__RUNNING;
}

int pm_future_status(const pm_future *f)
{
    uint32_t s = atomic_load_explicit(&((pm_future *)f)->state, memory_order_acquire);
    if (s == PM__CANCELLED)
        return -ECANCELED;
    return s == PM__DONE ? f->status : -EINPROGRESS;
}

void *pm_future_result(const pm_future *f)
{
    uint32_t s = atomic_load_explicit(&((pm_future *)f)->state, memory_order_acquire);
    return s == PM__DONE ? f->result : NULL;
}

int pm_future_cancel(pm_future *f)
{
    return pm__future_cancel(f);
}

/* Appends cb to f's callbacks, or runs it at once if f is done. */
static void add_callback(pm_future *f, pm__cb *cb)
{
    cb->next = NULL;
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->listeners, 1);
    int done = is_final(atomic_load(&f->state));
    if (!done) {
        *f->cbs_tail = cb;
        f->cbs_tail = &cb->next;
    }
    pthread_mutex_unlock(&f->mu);
    if (done)
        run_callbacks(f, cb);
}

int pm_future_add_done_callback(pm_future *f, pm_future_cb fn, void *arg)
{
    pm__cb *cb = malloc(sizeof *cb);
    if (!cb)
        return -ENOMEM;
    cb->fn = fn;
    cb->arg = arg;
    cb->embedded = 0;
    add_callback(f, cb);
    return 0;
}

void pm__future_watch(pm_future *f, pm__cb *cb)
{
    cb->embedded = 1;
    add_callback(f, cb);
}

void pm_future_free(pm_future *f)
{
    if (f)
        pm__future_unref(f);
}

/* ---- waiting ---- */

/* Links l (for waiter w) to f unless f is done; returns 1 if f is done. */
static int link_waiter(pm_future *f, pm__wlink *l, pm__waiter *w)
{
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->listeners, 1);
    int done = is_final(atomic_load(&f->state));
    if (!done) {
        l->w = w;
        l->prev = NULL;
        l->next = f->waiters;
        if (f->waiters)
            f->waiters->prev = l;
        f->waiters = l;
        l->linked = 1;
    }
    pthread_mutex_unlock(&f->mu);
    return done;
}

static void unlink_waiter(pm_future *f, pm__wlink *l)
{
    pthread_mutex_lock(&f->mu);
    if (l->linked) {
        if (l->prev)
            l->prev->next = l->next;
        else
            f->waiters = l->next;
        if (l->next)
            l->next->prev = l->prev;
        l->linked = 0;
    }
    pthread_mutex_unlock(&f->mu);
}

/* Sleeps until w fires or d passes: 0 or -ETIMEDOUT. */
static int sleep_on(pm__waiter *w, const pm__deadline *d)
{
    while (!atomic_load_explicit(&w->fired, memory_order_acquire)) {
        if (pm__futex_wait(&w->fired, 0, d) == -ETIMEDOUT)
            return atomic_load(&w->fired) ? 0 : -ETIMEDOUT;
    }
    return 0;
}

static int wait_one(pm_future *f, const pm__deadline *d)
{
    if (pm_future_done(f))
        return 0;
    pm__waiter w = {0};
    pm__wlink l = {0};
    if (link_waiter(f, &l, &w))
        return 0;
    int rc = sleep_on(&w, d);
    unlink_waiter(f, &l);
    return pm_future_done(f) ? 0 : rc;
}

int pm_future_wait(pm_future *f, double timeout)
{
    pm__deadline d = pm__deadline_in(timeout);
    return wait_one(f, &d);
}

int pm_future_get(pm_future *f, double timeout, int *status_ret, void **result_ret)
{
    int rc = pm_future_wait(f, timeout);
    if (rc)
        return rc;
    if (status_ret)
        *status_ret = pm_future_status(f);
    if (result_ret)
        *result_ret = pm_future_result(f);
    return 0;
}

/* The lowest index of a done future, n if none; *any set if any non-NULL. */
static size_t first_done(pm_future *const *fs, size_t n, int *any)
{
    *any = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fs[i])
            continue;
        *any = 1;
        if (pm_future_done(fs[i]))
            return i;
    }
    return n;
}

/* Links one waiter to every future; returns how many links were made
 * (stops early when a future turns out to be done). */
static size_t link_all(pm_future *const *fs, size_t n, pm__wlink *links,
                       pm__waiter *w)
{
    for (size_t i = 0; i < n; i++) {
        links[i].linked = 0;
        if (fs[i] && link_waiter(fs[i], &links[i], w))
            return i;
    }
    return n;
}

int pm_wait_any(pm_future *const *fs, size_t n, double timeout, size_t *index_ret)
{
    if (!fs || !index_ret)
        return -EINVAL;
    int any;
    size_t i = first_done(fs, n, &any);
    if (!any)
        return -EINVAL;
    if (i < n) {
        *index_ret = i;
        return 0;
    }
    pm__wlink *links = malloc(n * sizeof *links);
    if (!links)
        return -ENOMEM;
    pm__deadline d = pm__deadline_in(timeout);
    pm__waiter w = {0};
    size_t linked = link_all(fs, n, links, &w);
    int rc = linked == n ? sleep_on(&w, &d) : 0;
    for (size_t j = 0; j < linked; j++)
        if (fs[j])
            unlink_waiter(fs[j], &links[j]);
    free(links);
    i = first_done(fs, n, &any);
    if (i < n) {
        *index_ret = i;
        return 0;
    }
    return rc ? rc : -ETIMEDOUT;
}

int pm_wait_all(pm_future *const *fs, size_t n, double timeout)
{
    if (!fs && n)
        return -EINVAL;
    pm__deadline d = pm__deadline_in(timeout);
    for (size_t i = 0; i < n; i++) {
        if (fs[i] && wait_one(fs[i], &d))
            return -ETIMEDOUT;
    }
    return 0;
}
