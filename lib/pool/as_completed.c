/* as_completed.c - pm_as_completed: futures handed back as they complete,
 * at O(1) per completion (concurrent.futures.as_completed in C).
 *
 * Entries. Each future in a set has an entry whose callback node is linked
 * on the future itself (pm__future_watch: embedded, no allocation, cannot
 * fail); new() queues the futures already done directly, under one lock. When the future is done, the callback runs on the completing
 * thread (a worker, or the thread that cancels or terminates) and appends
 * the entry to the set's ready FIFO under the set's mutex, signalling one
 * consumer if any waits. pm_as_completed_next pops the head. A completion
 * so costs one lock and at most one wake-up, and a delivery one lock --
 * where a pm_wait_any loop scans, and links a waiter on, every pending
 * future at each call. Entries come from blocks (one for new(), doubling
 * ones for add()) and go to a spare list once delivered, so a set used as
 * a long-running completion queue holds as many entries as futures in
 * flight at its peak.
 *
 * Ownership. The set takes over the caller's reference of each future and
 * hands it back with the entry's delivery; pm_as_completed_free releases
 * those of futures never handed back.
 *
 * Lifetime. `refs` counts the owner plus every entry whose callback has not
 * run yet. pm_as_completed_free marks the set freed, releases the futures
 * that are ready but not taken, and drops the owner's reference; a callback
 * that runs later finds the set freed and releases its own future instead
 * of queueing it. The last reference frees the memory. So free never waits
 * for pending futures, and no callback touches freed memory.
 *
 * Lock order: a future's mutex is never held while the set's is taken (the
 * future runs its callbacks after releasing its own mutex), and the set's
 * mutex is never held while calling into a future.
 */
#include <errno.h>
#include <stdlib.h>

#include <pmap/future.h>

#include "pool_internal.h"

typedef struct ac_entry {
    pm__cb cb;                   /* linked on the future; arg = the entry */
    struct ac_entry *next;       /* on the ready FIFO or the spare list */
    pm_as_completed *ac;
    pm_future *f;                /* the reference the set holds */
    size_t index;
    int early;                   /* new(): queued done, never watched */
} ac_entry;

typedef struct ac_block {
    struct ac_block *next;
    size_t n;
    ac_entry e[];
} ac_block;

struct pm_as_completed {
    pthread_mutex_t mu;          /* guards everything below but refs */
    pthread_cond_t cv;           /* an entry became ready */
    int waiting;                 /* consumers in cv */
    int freed;                   /* the owner called pm_as_completed_free */
    size_t pending;              /* futures added and not yet returned */
    size_t next_index;
    ac_entry *ready, **ready_tail;
    ac_entry *spare;             /* delivered entries, for add() */
    ac_block *blocks;
    size_t allocated;            /* entries in all blocks */
    _Atomic size_t refs;         /* the owner + callbacks yet to run */
};

static void ac_unref(pm_as_completed *ac)
{
    if (atomic_fetch_sub_explicit(&ac->refs, 1, memory_order_acq_rel) != 1)
        return;
    while (ac->blocks) {
        ac_block *b = ac->blocks;
        ac->blocks = b->next;
        free(b);
    }
    pthread_cond_destroy(&ac->cv);
    pthread_mutex_destroy(&ac->mu);
    free(ac);
}

/* The future's done-callback: queue the entry (or, set freed, drop f). */
static void entry_done(pm_future *f, void *arg)
{
    ac_entry *e = arg;
    pm_as_completed *ac = e->ac;
    pthread_mutex_lock(&ac->mu);
    int freed = ac->freed;
    if (!freed) {
        e->next = NULL;
        *ac->ready_tail = e;
        ac->ready_tail = &e->next;
        if (ac->waiting)
            pthread_cond_signal(&ac->cv);
    }
    pthread_mutex_unlock(&ac->mu);
    if (freed)
        pm__future_unref(f);     /* the completer still holds one: f lives on */
    ac_unref(ac);
}

/* A block of n entries, linked to the set; NULL when out of memory. */
static ac_block *block_new(pm_as_completed *ac, size_t n)
{
    if (n > (SIZE_MAX - sizeof(ac_block)) / sizeof(ac_entry))
        return NULL;
    ac_block *b = malloc(sizeof *b + n * sizeof(ac_entry));
    if (!b)
        return NULL;
    b->n = n;
    b->next = ac->blocks;
    ac->blocks = b;
    ac->allocated += n;
    for (size_t i = 0; i < n; i++) {
        b->e[i].ac = ac;
        b->e[i].cb.fn = entry_done;
        b->e[i].cb.arg = &b->e[i];
    }
    return b;
}

/* A spare entry, or a new block's worth; under mu. NULL: out of memory. */
static ac_entry *entry_get(pm_as_completed *ac)
{
    if (!ac->spare) {
        ac_block *b = block_new(ac, ac->allocated < 16 ? 16 : ac->allocated);
        if (!b)
            return NULL;
        for (size_t i = b->n; i-- > 0;) {
            b->e[i].next = ac->spare;
            ac->spare = &b->e[i];
        }
    }
    ac_entry *e = ac->spare;
    ac->spare = e->next;
    return e;
}

/* Queues the entries of e[0..m) whose future is already done (no callback
 * needed: one lock for all of them), then links the others to their
 * futures (their callbacks may run at once). `early` is this thread's
 * alone: the set is not yet visible to any other caller. */
static void watch_all(pm_as_completed *ac, ac_entry *e, size_t m)
{
    size_t queued = 0;
    pthread_mutex_lock(&ac->mu);
    for (size_t i = 0; i < m; i++) {
        e[i].early = pm_future_done(e[i].f);
        if (e[i].early) {
            e[i].next = NULL;
            *ac->ready_tail = &e[i];
            ac->ready_tail = &e[i].next;
            queued++;
        }
    }
    pthread_mutex_unlock(&ac->mu);
    atomic_fetch_sub(&ac->refs, queued);
    for (size_t i = 0; i < m; i++)
        if (!e[i].early)
            pm__future_watch(e[i].f, &e[i].cb);
}

int pm_as_completed_new(pm_future *const *fs, size_t n, pm_as_completed **ac_ret)
{
    if (!ac_ret || (!fs && n))
        return -EINVAL;
    pm_as_completed *ac = calloc(1, sizeof *ac);
    if (!ac)
        return -ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += fs[i] != NULL;
    ac_block *b = m ? block_new(ac, m) : NULL;
    int rc = m && !b ? -ENOMEM : pm__cond_init(&ac->cv);
    if (rc) {
        free(b);
        free(ac);
        return rc;
    }
    pthread_mutex_init(&ac->mu, NULL);
    ac->ready_tail = &ac->ready;
    ac->pending = m;
    ac->next_index = n;
    atomic_init(&ac->refs, 1 + m);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (fs[i]) {
            b->e[k].f = fs[i];
            b->e[k++].index = i;
        }
    }
    if (m)
        watch_all(ac, b->e, m);
    *ac_ret = ac;
    return 0;
}

int pm_as_completed_add(pm_as_completed *ac, pm_future *f, size_t *index_ret)
{
    if (!ac || !f)
        return -EINVAL;
    pthread_mutex_lock(&ac->mu);
    ac_entry *e = entry_get(ac);
    if (e) {
        e->f = f;
        e->index = ac->next_index++;
        ac->pending++;
        atomic_fetch_add(&ac->refs, 1);
    }
    pthread_mutex_unlock(&ac->mu);
    if (!e)
        return -ENOMEM;
    if (index_ret)
        *index_ret = e->index;   /* before watch: e may be reused after it */
    pm__future_watch(f, &e->cb);
    return 0;
}

/* Takes the head of the ready FIFO; under mu, ready not empty. */
static ac_entry *take_ready(pm_as_completed *ac)
{
    ac_entry *e = ac->ready;
    if (!(ac->ready = e->next))
        ac->ready_tail = &ac->ready;
    ac->pending--;
    return e;
}

int pm_as_completed_next(pm_as_completed *ac, double timeout, size_t *index_ret,
                         pm_future **future_ret)
{
    if (!ac)
        return -EINVAL;
    pm__deadline d = pm__deadline_in(timeout);
    int rc = 0;
    pthread_mutex_lock(&ac->mu);
    while (!ac->ready && ac->pending > 0 && rc == 0) {
        ac->waiting++;
        rc = pm__cond_wait(&ac->cv, &ac->mu, &d);
        ac->waiting--;
    }
    pm_future *f = NULL;
    size_t index = 0;
    if (ac->ready) {
        ac_entry *e = take_ready(ac);
        f = e->f;
        index = e->index;
        e->next = ac->spare;     /* the callback has run: the entry is free */
        ac->spare = e;
    }
    pthread_mutex_unlock(&ac->mu);
    if (!f)
        return rc ? -ETIMEDOUT : 0;
    if (index_ret)
        *index_ret = index;
    if (future_ret)
        *future_ret = f;
    else
        pm__future_unref(f);
    return 1;
}

void pm_as_completed_free(pm_as_completed *ac)
{
    if (!ac)
        return;
    pthread_mutex_lock(&ac->mu);
    ac->freed = 1;
    ac_entry *e = ac->ready;
    ac->ready = NULL;
    ac->ready_tail = &ac->ready;
    pthread_mutex_unlock(&ac->mu);
    for (; e; e = e->next)
        pm__future_unref(e->f);
    ac_unref(ac);
}
