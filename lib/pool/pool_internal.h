/* pool_internal.h - private structures of the pool and futures, shared by
 * future.c, pool.c, pool_map.c, pool_imap.c and pool_sync.c. */
#ifndef PM_POOL_INTERNAL_H
#define PM_POOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <pmap/pool.h>

#define PM__LIKELY(x) __builtin_expect(!!(x), 1)
#define PM__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- waiting primitives (pool_sync.c) ---- */

/* An absolute CLOCK_MONOTONIC deadline, or none (forever). */
typedef struct pm__deadline {
    int forever;
    struct timespec at;
} pm__deadline;

pm__deadline pm__deadline_in(double timeout);
int pm__deadline_passed(const pm__deadline *d);

/* futex(2) on a 32-bit word: wait while *word == val (until woken, a
 * spurious wake-up, or the deadline: -ETIMEDOUT), wake up to n waiters. */
int pm__futex_wait(_Atomic uint32_t *word, uint32_t val, const pm__deadline *d);
void pm__futex_wake(_Atomic uint32_t *word, int n);

/* A condition variable on CLOCK_MONOTONIC, and a timed wait on it that
 * returns -ETIMEDOUT once d has passed (0 otherwise, spurious included). */
int pm__cond_init(pthread_cond_t *cv);
int pm__cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, const pm__deadline *d);

static inline void pm__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Execution slots: the pool's thread budget, a counting semaphore of
 * `total` slots. A worker holds one while it runs tasks; a blocking map
 * holds as many as it got for its whole OpenMP region. Maps waiting for
 * slots ("hungry") take precedence: workers then hand slots back between
 * tasks and do not take free ones. */
typedef struct pm__slots {
    _Atomic int free;          /* slots nobody holds */
    _Atomic int hungry;        /* maps waiting for a slot */
    _Atomic int sleepers;      /* threads blocked in cv (any reason) */
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
/* At least one and up to max slots; blocks while none is free. */
int pm__slots_take_map(pm__slots *s, int max);
void pm__slots_give(pm__slots *s, int k);
/* Blocks until every slot is free (no map or task running). */
void pm__slots_wait_idle(pm__slots *s);

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
    pm_future *next;             /* pool queue link (pool mutex) */
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
/* Runs a started future's task and finishes it. */
void pm__future_run(pm_future *f);

/* ---- the pool (pool.c) ---- */

enum { PM__OPEN = 0, PM__CLOSED = 1, PM__TERMINATED = 2 };

/* Values of the pool's thread-specific key: what the thread is to the pool. */
#define PM__TLS_INITED ((void *)1)   /* initializer ran here */
#define PM__TLS_WORKER ((void *)2)   /* a worker (holds a slot in tasks) */
#define PM__TLS_IN_MAP ((void *)3)   /* inside one of this pool's maps */

typedef struct pm__iter_link {
    struct pm__iter_link *prev, *next;
    pthread_t owner;
} pm__iter_link;

struct pm_pool {
    pthread_mutex_t mu;          /* adaptive; guards everything to `refs` */
    pthread_cond_t work_cv;      /* idle workers park here */
    pthread_cond_t state_cv;     /* start-up, join, map and iterator counts */
    pm_future *head, *tail;      /* the FIFO of queued futures */
    _Atomic size_t qlen;         /* its length; read without mu by spinners */
    _Atomic int state;           /* PM__OPEN/CLOSED/TERMINATED; written under mu */
    int parked;                  /* workers in work_cv */
    int spinning;                /* a worker polls qlen before parking */
    int started;                 /* workers past their initializer */
    int init_err;                /* first initializer failure */
    int active_maps;             /* blocking maps between entry and return */
    int joining, joined;
    pm__iter_link iters;         /* live imap iterators (list head) */
    int nthreads;                /* threads created */
    pthread_t *threads;
    _Atomic int refs;            /* the owner's + one per imap iterator */
    int workers;                 /* the thread budget */
    pm__slots slots;
    pthread_key_t key;           /* PM__TLS_* per thread */
    pm_init_fn init;
    void *initarg;
    size_t imap_inflight;
};

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

/* The chunk size for n items: the spec's, else Pool's rule. */
size_t pm__auto_chunksize(size_t n, int workers);
/* Validates a map spec for n items (input == NULL: arrays needed). */
int pm__spec_check(const pm_map_spec *spec);

#endif
