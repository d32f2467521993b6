/* loop_engine.h - internal: the operation record shared by loop.c and the
 * engines, and the engine interface (an ops table picked at run time).
 *
 * loop.c owns every operation record: it allocates it, keeps timers,
 * the backlog of operations waiting for a free engine slot, and the list of
 * completed operations whose callbacks are still to run. An engine only
 * carries an operation while its state is PM__OP_ENGINE: it performs ONE
 * attempt of the system call and reports the raw result through
 * pm__loop_complete(). Retrying short transfers, -EAGAIN and -EINTR is
 * loop.c's business, so both engines behave the same.
 *
 * Threads: every engine entry point except wake() is called on the loop's
 * thread; pm__loop_complete() and pm__loop_woken() are called by the engine
 * on the loop's thread too (from inside wait(), submit() or cancel()).
 */
#ifndef PM_LOOP_ENGINE_H
#define PM_LOOP_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <pmap/loop.h>

enum pm__op_kind {
    PM__OP_READ,
    PM__OP_WRITE,
    PM__OP_FSYNC,
    PM__OP_TIMER,
    PM__OP_OPENAT,
    PM__OP_CLOSE,
    PM__OP_STATX,
    PM__OP_POLL,          /* lib/co: one-shot readiness (mode: poll events) */
};

enum pm__op_state {
    PM__OP_FREE,          /* on the free list */
    PM__OP_BACKLOG,       /* waiting for an engine slot (loop.c's list) */
    PM__OP_ENGINE,        /* carried by the engine */
    PM__OP_TIMER_ARMED,   /* in loop.c's timer heap */
    PM__OP_READY,         /* result known; callback not yet run */
};

typedef struct pm__op {
    struct pm__op *next, *prev; /* link: owned by whichever queue holds the op
                                   (the engine's while state is ENGINE) */
    uint8_t kind, state;
    uint8_t cancelled;          /* cancel requested: result is -ECANCELED */
    uint8_t poll_first;         /* last attempt gave -EAGAIN: wait for readiness */
    uint8_t pinned;             /* PM_LOOP_CUR made explicit: 1, 2 (O_APPEND) */
    atomic_int cancel_req;      /* threads engine: a worker may be blocked on it */
    uint32_t index, gen;        /* slot number and reuse count: the id */
    int fd;                     /* file, or dirfd for openat/statx */
    int flags;                  /* datasync; open flags; statx flags */
    unsigned mode;              /* open mode; statx mask */
    void *buf;                  /* data; struct statx * for statx */
    size_t len, done;           /* requested and transferred so far */
    uint64_t off;               /* start offset, or PM_LOOP_CUR */
    const char *path;           /* openat, statx */
    uint64_t deadline, seq;     /* timers: expiry (ns, monotonic), FIFO tie-break */
    size_t heap_idx;            /* timers: position in the heap */
    ssize_t res;                /* final result once READY */
    pm_loop_cb cb;
    void *arg;
    struct pm_loop_group *group;/* gather group, or NULL */
    struct pm__op *gnext, *gprev;
    void *eng;                  /* engine-private (threads: running worker) */
    uint64_t eng_ud;            /* engine-private (uring: in-flight user_data) */
} pm__op;

typedef struct pm__engine {
    const char *name;
    /* Sets up the engine for loop; 0 or -errno (e.g. -ENOSYS, -EPERM). */
    int (*init)(pm_loop *loop, const pm_loop_opts *opts, void **state_ret);
    /* Tears down; nothing is in flight any more. */
    void (*fini)(void *state);
    /* Starts one attempt of op (at op->buf + op->done for transfers). May
     * report completions of other operations. 0, or -errno: op not taken. */
    int (*submit)(void *state, pm__op *op);
    /* Best effort: make op finish early. It still completes through
     * pm__loop_complete(), with whatever result it got. */
    void (*cancel)(void *state, pm__op *op);
    /* Passes queued work to the kernel or workers and reports completions;
     * timeout_ns 0: do not block, < 0: block until a completion or a wake,
     * > 0: block at most that long. 0 or -errno (fatal). */
    int (*wait)(void *state, int64_t timeout_ns);
    /* Thread-safe: make a blocked or the next wait() return. */
    void (*wake)(void *state);
} pm__engine;

extern const pm__engine pm__engine_uring;
extern const pm__engine pm__engine_threads;

/* Engine -> loop, on the loop's thread: one attempt of op ended with res
 * (bytes, or -errno). */
void pm__loop_complete(pm_loop *loop, pm__op *op, ssize_t res);
/* Engine -> loop: a wake() was seen. */
void pm__loop_woken(pm_loop *loop);

/* Tests: the most operations handed to the engine at once (default: the
 * queue depth), and the highest count seen so far. */
void pm__loop_set_max_inflight(pm_loop *loop, unsigned n);
unsigned pm__loop_peak_inflight(const pm_loop *loop);

/* For lib/co (socket awaits): queue a one-shot wait until fd is ready for
 * events (POLLIN, POLLOUT). res is >= 0 once ready (uring: the revents;
 * threads: 0), or -errno, -ECANCELED when cancelled. It occupies an engine
 * slot while pending (uring: a poll request; threads: a worker blocked in
 * poll() on fd and its cancel eventfd). Same contract as pm_loop_read. */
int64_t pm__loop_poll(pm_loop *loop, int fd, unsigned events, pm_loop_cb cb, void *arg);

/* Nonzero when called on the thread that last ran (or created) the loop. */
int pm__loop_on_thread(const pm_loop *loop);

#endif
