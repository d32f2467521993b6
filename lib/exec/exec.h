/* exec.h - the executor: the one place where libpmap runs work.
 *
 * Everything that computes runs on an executor: pm_pool's tasks and maps
 * (pool/), and the pipeline's stages and per-file system calls (pipeline/).
 * An executor has a fixed number of workers -- the thread budget -- and a
 * backend behind an ops table, chosen when it is made, as libuv's
 * uv__work_submit() hands work to its one thread pool and redis picks its
 * event backend in one place:
 *
 *   start    create the workers and run the initializer on each
 *   submit   queue work items (intrusive pm__work; no allocation)
 *   cancel   take a queued item back before it starts
 *   take     pop more queued items of one kind at once, without blocking
 *            (a process proxy's batch of tasks)
 *   stop     close (queued work still runs) or terminate (queued work is
 *            dropped: each item's drop() runs instead of run())
 *   join     wait for the workers to exit
 *
 * Backends: exec_threads.c (pthreads; blocking maps add OpenMP teams on the
 * same slot budget, pool/pool_map.c) and exec_procs.c (the same threads as
 * proxies of worker processes: user functions run in the workers through
 * pm__procs_task / pm__procs_map, called from a work item on a proxy). Work
 * that needs shared memory (pipeline stages) asks for
 * PM__EXEC_SHARED_MEMORY, which only the thread backend has.
 *
 * Thread budget: the executor owns `workers` execution slots. A worker
 * holds one while it runs items; a blocking map holds the slots its OpenMP
 * team uses. So workers and map threads together never run more than
 * `workers` items at once, whoever submitted them.
 */
#ifndef PM_EXEC_EXEC_H
#define PM_EXEC_EXEC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <pmap/pool.h>          /* pm_init_fn */
#include "core/list.h"
#include "core/sync.h"

/* Execution slots: the pool's thread budget, a counting semaphore of
 * `total` slots. A worker holds one while it runs tasks; a blocking map
 * holds as many as it got for its whole OpenMP region. Maps waiting for
 * slots ("hungry") take precedence: workers then hand slots back between
 * tasks and do not take free ones. */
typedef struct pm__slots {
    _Atomic int free;          /* slots nobody holds */
    _Atomic int hungry;        /* maps waiting for a slot */
    _Atomic int sleepers;      /* threads blocked in cv (any reason) */
    _Atomic int aborted;       /* the executor terminated: maps stop waiting */
    int total;
    pthread_mutex_t mu;        /* only for sleeping: cv's mutex */
    pthread_cond_t cv;
} pm__slots;

int pm__slots_init(pm__slots *s, int total);
void pm__slots_destroy(pm__slots *s);
/* One slot for a worker; blocks while none is free or a map is hungry. */
void pm__slots_take_worker(pm__slots *s);
/* Up to max slots that are free now, without blocking (may be 0). */
int pm__slots_try_take(pm__slots *s, int max);
/* At least one and up to max slots; blocks while none is free. Returns 0
 * (no slot) once the slots are aborted, without waiting. */
int pm__slots_take_map(pm__slots *s, int max);
/* Aborts: maps waiting in pm__slots_take_map, and later ones, get no slot
 * (return 0) instead of waiting for running work. The executor's
 * terminate does it. Workers and pm__slots_give are unaffected. */
void pm__slots_abort(pm__slots *s);
void pm__slots_give(pm__slots *s, int k);
/* Blocks until every slot is free (no map or task running). */
void pm__slots_wait_idle(pm__slots *s);

/* ---- work items ---- */

typedef struct pm__work pm__work;
/* Runs on a worker; worker is its index in [0, workers). */
typedef void (*pm__work_fn)(pm__work *w, unsigned worker);

struct pm__work {
    pm__node node;               /* the backend's queue link */
    pm__work_fn run;
    void (*drop)(pm__work *w);   /* terminated before it ran; may be NULL */
};

/* ---- the executor ---- */

enum { PM__OPEN = 0, PM__CLOSED = 1, PM__TERMINATED = 2 };

/* Values of the executor's thread-specific key: what a thread is to it. */
#define PM__TLS_INITED ((void *)1)   /* initializer ran here */
#define PM__TLS_WORKER ((void *)2)   /* a worker (holds a slot in tasks) */
#define PM__TLS_IN_MAP ((void *)3)   /* inside one of this executor's maps */

#define PM__SUBMIT_INTERNAL 0x1u     /* accepted after close (work of an iterator
                                        or map made before it) */
#define PM__SUBMIT_FRONT    0x2u     /* run before queued items (continuations) */

#define PM__EXEC_SHARED_MEMORY 0x1u  /* backend capability: items see the
                                        submitter's memory (threads) */

typedef struct pm__exec pm__exec;

typedef struct pm__exec_ops {
    const char *name;
    unsigned caps;                               /* PM__EXEC_* */
    int (*start)(pm__exec *ex);                  /* 0 or first init failure */
    int (*submit)(pm__exec *ex, pm__work **ws, size_t n, unsigned flags);
    int (*cancel)(pm__exec *ex, pm__work *w);    /* 0: unqueued; -EBUSY */
    /* Up to max items from the head of the queue while same(item) holds
     * (called under the queue's lock: it must only look at the item), and
     * no more than the caller's share of the queue: with q items queued,
     * (q + 1) / workers - 1 (the caller popped one already). Returns how
     * many it put in out[], in queue order. */
    size_t (*take)(pm__exec *ex, int (*same)(pm__work *w), pm__work **out, size_t max);
    void (*stop)(pm__exec *ex, int terminate);
    void (*join)(pm__exec *ex);
    void (*kick)(pm__exec *ex);                  /* re-check exit conditions */
    void (*destroy)(pm__exec *ex);
} pm__exec_ops;

struct pm__exec {
    const pm__exec_ops *ops;
    int workers;                 /* the thread budget */
    pm__slots slots;
    pthread_key_t key;           /* PM__TLS_* per thread */
    pm_init_fn init;
    void *initarg;
    _Atomic int state;           /* PM__OPEN / CLOSED / TERMINATED */
    _Atomic int holds;           /* producers that may still submit after
                                    close (live imap iterators): closed
                                    workers wait for them */
    void *be;                    /* the backend's state */
    void *procs;                 /* exec_procs.c's own state (its be is
                                    the thread backend's) */
    pm_pool_opts opts;           /* the pool's options (backend fields) */
};

extern const pm__exec_ops pm__exec_threads;
extern const pm__exec_ops pm__exec_procs;

/* ---- the process backend's calls (on a proxy thread only) ---- */

/* A map's items for pm__procs_map: fn(in, out, arg) in the worker, arg
 * copied when arg_size > 0. Each non-zero status goes to fail(ctx, i, st)
 * (on the calling thread, index relative to the call); stop, when set, is
 * read between requests. */
typedef struct pm__rmap {
    pm_map_fn fn;
    void *arg;
    size_t arg_size, in_size, out_size;
    void (*fail)(void *ctx, size_t i, int status);
    void *ctx;
    _Atomic int *stop;
} pm__rmap;

/* Runs items [0, count) (in[], out[] as in pm_map_spec) on the calling
 * proxy's worker process. An item whose worker died or timed out fails
 * with a PM_EWORKER_* status or -ETIMEDOUT and the others run on a
 * replacement. Returns how many items ran or failed; fewer than count
 * only when stopped (terminate or *stop). */
size_t pm__procs_map(pm__exec *ex, const pm__rmap *m, const void *in, void *out, size_t count);

/* Runs fn(arg, &result) on the calling proxy's worker: arg is arg_size
 * bytes copied (or, for 0, the opaque value); result_size bytes of result
 * come back in result. Returns the task's status, or a PM_EWORKER_* status,
 * -ETIMEDOUT, -EINVAL (fn in no loaded module), -ENOMEM. */
int pm__procs_task(pm__exec *ex, pm_task_fn fn, void *arg, size_t arg_size,
                   void *result, size_t result_size);

/* One task of a batch for pm__procs_tasks (as pm__procs_task's
 * arguments). */
typedef struct pm__ptask {
    pm_task_fn fn;
    void *arg;
    size_t arg_size;
    void *result;
    size_t result_size;
} pm__ptask;

/* Runs tasks [0, n) in order on the calling proxy's worker, as few
 * requests as fit (a request holds at most what the shared area and
 * max_tasks allow). done(ctx, i, status) reports each task on the calling
 * thread, in order, as soon as the proxy sees it finished (its result
 * bytes are copied first), also while later tasks of the request still
 * run; a task whose worker died or timed out gets a PM_EWORKER_* status or
 * -ETIMEDOUT and the tasks after it run on a replacement. Returns how many
 * tasks were reported: fewer than n only when the executor was terminated
 * (the rest never ran). */
size_t pm__procs_tasks(pm__exec *ex, const pm__ptask *ts, size_t n,
                       void (*done)(void *ctx, size_t i, int status), void *ctx);

/* pm_strerror's text for a PM_EWORKER_* status, NULL for other codes. */
const char *pm__worker_strerror(int err);

/* The executor behind a pool (pool.c): how other subsystems (the pipeline)
 * run work on a user's pool. */
pm__exec *pm__pool_exec(pm_pool *pool);

/* Makes an executor with ops (not started). 0, -ENOMEM or -EAGAIN. */
int pm__exec_new(const pm__exec_ops *ops, int workers, pm_init_fn init, void *initarg,
                 pm__exec **ex_ret);
/* Terminates, joins and frees. NULL: no-op. */
void pm__exec_free(pm__exec *ex);

static inline int pm__exec_submit(pm__exec *ex, pm__work *w, unsigned flags)
{
    return ex->ops->submit(ex, &w, 1, flags);
}

/* Runs the initializer on the calling (non-worker) thread if it has not
 * run there; 0 or its failure. */
int pm__exec_thread_init(pm__exec *ex);

/* 1 if the calling thread is one of ex's workers. */
int pm__exec_on_worker(pm__exec *ex);

/* Producers that may submit after close: closed workers do not exit while
 * holds > 0. */
void pm__exec_hold(pm__exec *ex);
void pm__exec_unhold(pm__exec *ex);

#endif
