/* pool_internal.h - private structures of the pool and futures, shared by
 * future.c, pool.c, pool_map.c, pool_imap.c and as_completed.c. */
#ifndef PM_POOL_INTERNAL_H
#define PM_POOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <pmap/pool.h>

#include "core/sync.h"
#include "exec/exec.h"

/* ---- futures (future.c) ---- */

enum {
    PM__PENDING = 0,
    PM__RUNNING = 1,
    PM__DONE = 2,
    PM__CANCELLED = 3,
};

typedef struct pm__cb {
    struct pm__cb *next;
    pm_future_cb fn;
    void *arg;
    int embedded;                /* part of its owner's struct: not freed */
} pm__cb;

/* One thread blocked on one or more futures: `fired` is its futex word. */
typedef struct pm__waiter {
    _Atomic uint32_t fired;
} pm__waiter;

/* A waiter's registration on one future (a doubly linked list node). */
typedef struct pm__wlink {
    struct pm__wlink *prev, *next;
    pm__waiter *w;
    int linked;
} pm__wlink;

/* An internal completion hook, run once after the future is done (by the
 * thread completing or cancelling it), after its callbacks. */
typedef void (*pm__hook)(pm_future *f, void *arg);

struct pm_future {
    pm__work work;               /* first: the executor's queue item */
    pm_task_fn fn;               /* NULL: completed by other means (map_async) */
    void *arg;
    _Atomic uint32_t state;      /* PM__PENDING.. ; DONE/CANCELLED are final */
    _Atomic uint32_t listeners;  /* set once a callback/waiter registered */
    _Atomic int refs;            /* the caller's, the queue's, a job's */
    int status;                  /* written before state turns final */
    void *result;
    pm__hook hook;
    void *hook_arg;
    pthread_mutex_t mu;          /* guards cbs, waiters (not the state) */
    pm__cb *cbs, **cbs_tail;
    pm__wlink *waiters;
    void *owned;                 /* freed with the future (apply_async_data's
                                    argument and result buffer) */
};

/* A new PENDING future with refs references. NULL when out of memory. */
pm_future *pm__future_new(pm_task_fn fn, void *arg, int refs);
void pm__future_unref(pm_future *f);
/* PENDING -> RUNNING; 1 if this call started it, 0 if it was cancelled. */
int pm__future_start(pm_future *f);
/* RUNNING -> DONE with status and result; wakes waiters, runs callbacks,
 * then the hook. */
void pm__future_finish(pm_future *f, int status, void *result);
/* PENDING -> CANCELLED and finish; 0 or -EBUSY/-EALREADY as pm_future_cancel. */
int pm__future_cancel(pm_future *f);
/* RUNNING -> CANCELLED and finish: a started task that will never run (a
 * process batch cut short by terminate). */
void pm__future_unstart(pm_future *f);
/* Runs a started future's task and finishes it. */
void pm__future_run(pm_future *f);
/* Like pm_future_add_done_callback with a node the caller owns (cb->fn and
 * cb->arg set; the node must stay valid until cb->fn has run): no
 * allocation, cannot fail. Runs it at once if f is already done. */
void pm__future_watch(pm_future *f, pm__cb *cb);

/* ---- the pool (pool.c) ---- */

typedef struct pm__iter_link {
    struct pm__iter_link *prev, *next;
    pthread_t owner;
} pm__iter_link;

struct pm_pool {
    pm__exec *ex;                /* the executor: workers, queue, slots */
    pthread_mutex_t mu;          /* adaptive; guards maps, iterators, join */
    pthread_cond_t state_cv;     /* join and map counts */
    int active_maps;             /* blocking maps between entry and return */
    int joining, joined;
    pm__iter_link iters;         /* live imap iterators (list head) */
    _Atomic int refs;            /* the owner's + one per imap iterator */
    int workers;                 /* the thread budget (= ex->workers) */
    size_t imap_inflight;
    unsigned fork_gen;           /* pm__fork_gen() when it was made */
};

/* How many fork()s this process descends from since the first pool (an
 * atfork handler counts them in each child). */
unsigned pm__fork_gen(void);
/* 1 in a child forked after pool was made: its threads are the parent's. */
int pm__pool_forked(const pm_pool *pool);

/* Queues fs[0..n) in order, all or none. internal != 0 also accepts a CLOSED
 * pool (an imap iterator or map job created before close). Returns 0 or
 * -EINVAL. Takes over one reference of each future. */
int pm__pool_submit(pm_pool *pool, pm_future **fs, size_t n, int internal);
/* Runs the pool's initializer on the calling thread if it has not run
 * there; 0 or its failure. */
int pm__pool_thread_init(pm_pool *pool);
void pm__pool_ref(pm_pool *pool);
void pm__pool_unref(pm_pool *pool);
/* Registers / unregisters an imap iterator that may still submit work. */
void pm__pool_iter_add(pm_pool *pool, pm__iter_link *l);
void pm__pool_iter_remove(pm_pool *pool, pm__iter_link *l);
/* Marks a blocking map as running (-EINVAL unless the pool is open) and
 * done; join waits for running maps. */
int pm__pool_map_enter(pm_pool *pool);
void pm__pool_map_leave(pm_pool *pool);

/* 1 when the pool's workers are processes (exec_procs.c). */
static inline int pm__pool_procs(const pm_pool *pool)
{
    return pool->ex->ops == &pm__exec_procs;
}

/* The chunk size for n items: the spec's, else Pool's rule. */
size_t pm__auto_chunksize(size_t n, int workers);
/* Validates a map spec for n items (input == NULL: arrays needed). */
int pm__spec_check(const pm_map_spec *spec);

#endif
