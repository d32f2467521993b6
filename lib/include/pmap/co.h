/* pmap/co.h - cooperative tasks (stackful coroutines) on a pm_loop.
 *
 * A task is a function running on its own stack, written as straight-line
 * code; each pm_co_* I/O call below queues the operation on the loop,
 * suspends the task, and returns the operation's result when its
 * completion arrives. Thousands of tasks wait on slow I/O in one thread.
 *
 * Threads. A scheduler (pm_co_sched) belongs to its loop's thread; every
 * function here must be called on that thread. Inside a task, the I/O
 * calls suspend the task; outside any task, pm_co_await/join/wait/gather
 * run the loop themselves until what they wait for is done (never call them
 * from a loop callback, and never run the loop from inside a task).
 *
 * The cooperative contract. A task runs until it awaits something (an I/O
 * call, pm_co_sleep, pm_co_yield, pm_co_await...). A task that computes for
 * a long time without awaiting holds the loop's thread: no other task runs
 * and no timer fires until it awaits or returns. Timers are never lost,
 * only late. Long computations belong on the pool or in a CPU stage; a loop
 * inside a task should call pm_co_yield() now and then, which lets the loop
 * reap completions and run the other runnable tasks first.
 *
 * Ordering. Runnable tasks run in FIFO order: a spawned task after the
 * tasks already runnable, a task whose operation completed in the order
 * the loop dispatched the completions (timers: by deadline, then by the
 * order they were queued), a yielding task after every task runnable
 * at that moment.
 *
 * Cancellation. pm_co_cancel() makes the task's pending await return
 * -ECANCELED (the loop operation is cancelled and waited for, so buffers
 * are free again when the call returns). A task cancelled while runnable
 * gets -ECANCELED from its next await instead; one cancelled before it
 * first ran never runs and finishes with -ECANCELED. Cancellation is a
 * request: the task decides what to do with the -ECANCELED. It is
 * consumed by that return: a task whose children use its memory cancels
 * them when its await returns -ECANCELED and then awaits them again.
 *
 * Stacks are mmap'd with an inaccessible guard page below them (a stack
 * overflow is a SIGSEGV, not silent corruption), stack_size bytes each, and
 * touched pages only cost memory. A finished task's stack returns to a
 * small cache at once, before the task is joined.
 */
#ifndef PMAP_CO_H
#define PMAP_CO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#include <pmap/export.h>
#include <pmap/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pm_co_sched pm_co_sched;
typedef struct pm_co_task pm_co_task;

/* A task's body; its return value is the task's result (by convention a
 * negative errno on failure). */
typedef int64_t (*pm_co_fn)(void *arg);

typedef struct pm_co_opts {
    size_t size;            /* sizeof(pm_co_opts): fields may be added */
    size_t stack_size;      /* usable bytes per stack, rounded up to pages;
                               0: 64 KiB; at least 16 KiB */
    unsigned stack_cache;   /* finished stacks kept for reuse; 0: 64 */
    int no_guard;           /* 1: no guard page (not recommended) */
} pm_co_opts;

/* Creates a scheduler on loop (which must outlive it). NULL opts: defaults.
 * Returns 0 and sets *sched_ret, or -EINVAL (bad opts), -ENOMEM. */
PM_API int pm_co_sched_new(pm_loop *loop, const pm_co_opts *opts, pm_co_sched **sched_ret);

/* Cancels every unfinished task, runs the loop until they have all
 * finished (every I/O await of a task being shut down returns -ECANCELED
 * at once; waits for other tasks still wait, as those end too), frees
 * every task handle not yet joined, the stacks, and the scheduler. NULL,
 * or a call from inside a task: no-op. */
PM_API void pm_co_sched_free(pm_co_sched *sched);

/* pm_co_cancel() on every unfinished task of the scheduler; returns how
 * many were asked. */
PM_API unsigned pm_co_sched_cancel_all(pm_co_sched *sched);

/* The loop the scheduler runs on. */
PM_API pm_loop *pm_co_sched_loop(const pm_co_sched *sched);

/* Starts fn(arg) as a task; it first runs when the loop next runs (or the
 * calling task awaits). sched NULL inside a task: the task's scheduler
 * (how an ASYNC pipeline stage starts tasks of its own). task_ret non-NULL: a handle to await, cancel and
 * join (the caller releases it with pm_co_join or pm_co_task_free; else
 * pm_co_sched_free does); NULL: detached, freed when it finishes. Returns
 * 0, -EINVAL (no scheduler, no fn), -ENOMEM (no stack: mmap failed or
 * vm.max_map_count reached), -ECANCELED while the scheduler is being freed. */
PM_API int pm_co_spawn(pm_co_sched *sched, pm_co_fn fn, void *arg, pm_co_task **task_ret);

/* Waits until task has finished and stores its result in *result_ret
 * (may be NULL). Returns 0; -ECANCELED if the waiting task was cancelled
 * (task keeps running); -EDEADLK for a task awaiting itself. */
PM_API int pm_co_await(pm_co_task *task, int64_t *result_ret);

/* pm_co_await, then frees the handle (also on -ECANCELED: the task is then
 * detached and freed when it finishes). NULL task: -EINVAL. */
PM_API int pm_co_join(pm_co_task *task, int64_t *result_ret);

/* Waits until at least `need` of the n tasks (all of one scheduler) have
 * finished (need n: all; 1: the first), or timeout_ns elapsed (< 0: no
 * limit). Returns how many had finished (>= need), -ETIMEDOUT (the tasks
 * keep running), -ECANCELED (the waiting task was cancelled), -EINVAL
 * (need > n, a NULL task). */
PM_API int pm_co_wait(pm_co_task *const *tasks, size_t n, size_t need, int64_t timeout_ns);

/* asyncio's gather: waits for all n tasks and stores their results in
 * results[i] (may be NULL). Returns 0 when every result is >= 0, else the
 * first negative result in index order, or -ECANCELED as pm_co_wait. */
PM_API int pm_co_gather(pm_co_task *const *tasks, size_t n, int64_t *results);

/* Requests cancellation (see above). Returns 0, or -EALREADY if the task
 * has finished. */
PM_API int pm_co_cancel(pm_co_task *task);

/* Nonzero once the task has finished. */
PM_API int pm_co_done(const pm_co_task *task);

/* Frees a handle: a finished task at once, a running one when it finishes
 * (detaches it). NULL: no-op. */
PM_API void pm_co_task_free(pm_co_task *task);

/* The task running on this thread, or NULL outside tasks. */
PM_API pm_co_task *pm_co_current(void);

/* ---- Awaits: inside a task only (-EPERM elsewhere). Each returns what the
 * pm_loop operation of the same name reports: >= 0, or -errno; -ECANCELED
 * when cancelled. ---- */

PM_API ssize_t pm_co_read(int fd, void *buf, size_t len, uint64_t off);
PM_API ssize_t pm_co_write(int fd, const void *buf, size_t len, uint64_t off);
PM_API int pm_co_fsync(int fd, int datasync);
/* Returns the new descriptor or -errno. */
PM_API int pm_co_openat(int dirfd, const char *path, int flags, unsigned mode);
PM_API int pm_co_close(int fd);
struct statx;
PM_API int pm_co_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *buf);
/* Suspends for ns nanoseconds (a loop timer); 0 or -ECANCELED. */
PM_API int pm_co_sleep(uint64_t ns);
/* Lets the loop reap completions and the other runnable tasks run; 0 or
 * -ECANCELED. */
PM_API int pm_co_yield(void);

/* Sockets: the call is tried at once without blocking (MSG_DONTWAIT, or
 * O_NONBLOCK set for the call and restored) and, when it would block, the
 * task waits for readiness on the loop and tries again. A readiness wait
 * takes one of the loop's queue_depth slots and, on the threads engine,
 * one of its io_threads for as long as it waits; waits beyond those queue
 * in the loop (in order, none fails) and start as others end. Size them
 * for the sockets that wait at once. */
/* Connects fd to addr; 0 or -errno (the socket's error, e.g. -ECONNREFUSED). */
PM_API int pm_co_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
/* accept4(fd, addr, addrlen, flags); the new descriptor or -errno. */
PM_API int pm_co_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
/* recv(2): returns the bytes received (fewer than len when that is what
 * arrived; 0 at end of stream) or -errno. */
PM_API ssize_t pm_co_recv(int fd, void *buf, size_t len, int flags);
/* Sends all len bytes (MSG_NOSIGNAL): returns len, or -errno. */
PM_API ssize_t pm_co_send(int fd, const void *buf, size_t len, int flags);

#ifdef __cplusplus
}
#endif
#endif
