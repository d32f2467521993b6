/* pmap/loop.h - an asynchronous I/O event loop over io_uring, with a
 * thread-pool fallback (pread/pwrite on worker threads).
 *
 * One loop belongs to one thread: every function here except pm_loop_post()
 * must be called from the thread that runs the loop. Operations are queued
 * with a completion callback; the callback runs on the loop's thread from
 * inside pm_loop_run()/pm_loop_run_once(), with the result: a byte count or
 * 0 on success, a negative errno on failure (-ECANCELED when cancelled).
 *
 * Reads and writes are "full": a short transfer is resubmitted for the
 * remainder and -EAGAIN/-EINTR are retried, so a write's result is its whole
 * length or an error, and a read's result is less than its length only at
 * end of file. An offset of PM_LOOP_CUR means "the file's current position"
 * (for pipes, FIFOs, terminals and sockets, where no offset applies); on a
 * regular file the position is read when the operation starts and set
 * after the bytes transferred when it ends, as read(2)/write(2) would.
 * Issue PM_LOOP_CUR operations on one descriptor one at a time (each after
 * the previous one's callback): two in flight would race for the position.
 */
#ifndef PMAP_LOOP_H
#define PMAP_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_LOOP_CUR UINT64_MAX      /* offset: use and advance the file position */

typedef struct pm_loop pm_loop;

/* Which engine carries the operations. AUTO tries io_uring first and falls
 * back to threads when io_uring is unavailable (ENOSYS, EPERM under seccomp
 * or kernel.io_uring_disabled); the PMAP_IO environment variable
 * ("uring" or "threads", see config.h) overrides AUTO; pm_loop_new() fails
 * with -EINVAL when AUTO is asked for and PMAP_IO is malformed. */
typedef enum pm_loop_engine {
    PM_LOOP_AUTO = 0,
    PM_LOOP_URING,
    PM_LOOP_THREADS,
} pm_loop_engine;

typedef struct pm_loop_opts {
    unsigned queue_depth;    /* submission queue entries; 0: 64 */
    pm_loop_engine engine;   /* see above; default AUTO */
    unsigned io_threads;     /* fallback engine's worker threads; 0: twice
                                the default worker count (PMAP_JOBS or the
                                CPUs, config.h), 4 to 64 */
    int async_reads;         /* io_uring: punt reads to io-wq (IOSQE_ASYNC),
                                faster from the page cache; 0: off */
    int verbose;             /* say once on stderr when falling back */
} pm_loop_opts;

/* Completion callback: res is bytes transferred or 0, or -errno. */
typedef void (*pm_loop_cb)(void *arg, ssize_t res);

/* Creates a loop owned by the calling thread. NULL opts: defaults.
 * Returns 0 and sets *loop_ret, or -errno (-EINVAL for a forced engine that
 * is unavailable is reported as that engine's error, e.g. -ENOSYS). */
PM_API int pm_loop_new(const pm_loop_opts *opts, pm_loop **loop_ret);

/* Cancels whatever is pending (callbacks run with -ECANCELED), waits for the
 * kernel or workers to let go of the buffers, and frees the loop. Operations
 * queued from those callbacks are refused with -ECANCELED. Another thread
 * may still be inside pm_loop_post() or pm_loop_release() when the run they
 * let finish returns: this waits for it to leave first. Calls that start
 * after this has begun are the caller's error. NULL: no-op. */
PM_API void pm_loop_free(pm_loop *loop);

/* "uring" or "threads": the engine actually in use. */
PM_API const char *pm_loop_engine_name(const pm_loop *loop);

/* Queue a full read of len bytes at off into buf. Returns an operation id
 * (> 0) usable with pm_loop_cancel(), or -errno if it could not be queued
 * (then cb is never called). buf must stay valid until the callback. */
PM_API int64_t pm_loop_read(pm_loop *loop, int fd, void *buf, size_t len,
                            uint64_t off, pm_loop_cb cb, void *arg);

/* Queue a full write of len bytes at off. Same contract as pm_loop_read. */
PM_API int64_t pm_loop_write(pm_loop *loop, int fd, const void *buf,
                             size_t len, uint64_t off, pm_loop_cb cb, void *arg);

/* Queue an fsync (datasync != 0: fdatasync). Same contract. */
PM_API int64_t pm_loop_fsync(pm_loop *loop, int fd, int datasync,
                             pm_loop_cb cb, void *arg);

/* Queue a timer that completes with 0 after ns nanoseconds. */
PM_API int64_t pm_loop_timer(pm_loop *loop, uint64_t ns, pm_loop_cb cb, void *arg);

/* Thread-safe: from any thread, ask the loop to call cb(arg, 0) on its own
 * thread at its next iteration, waking it if it is blocked. This is how other
 * threads hand work to the loop. Returns 0 or -ENOMEM. A posted callback
 * counts as pending work for pm_loop_run() until it has run. Posts still
 * queued when pm_loop_free() runs get cb(arg, -ECANCELED) instead. */
PM_API int pm_loop_post(pm_loop *loop, pm_loop_cb cb, void *arg);

/* Thread-safe: keep pm_loop_run() alive while other threads may still post
 * (hold), and release that (release). pm_loop_run() returns once nothing is
 * pending and no hold is outstanding. */
PM_API void pm_loop_hold(pm_loop *loop);
PM_API void pm_loop_release(pm_loop *loop);

/* Cancel one pending operation. Returns 0 if its callback had not run yet:
 * it will run with -ECANCELED (even if the kernel had already done part or
 * all of the transfer), no earlier than the kernel or the worker lets go of
 * the buffer; -ENOENT if id is not pending (its callback has run, or the id
 * is unknown). A read or write of a regular file already under way finishes
 * first; one waiting on a pipe, socket or terminal is interrupted. */
PM_API int pm_loop_cancel(pm_loop *loop, int64_t id);

/* Submit what is queued and dispatch completions; when wait != 0 block until
 * at least one callback has run (or pm_loop_stop() / a post). Returns the
 * number of callbacks run, or -errno. With wait != 0 but nothing pending and
 * no hold outstanding, it returns 0 at once instead of blocking forever. */
PM_API int pm_loop_run_once(pm_loop *loop, int wait);

/* Run until nothing is pending and no hold is outstanding, or until
 * pm_loop_stop(). Returns 0 or -errno. */
PM_API int pm_loop_run(pm_loop *loop);

/* Make pm_loop_run() return after the current iteration (loop thread, or
 * from a callback). */
PM_API void pm_loop_stop(pm_loop *loop);

/* Operations queued and not yet completed (posted callbacks not counted). */
PM_API unsigned pm_loop_pending(const pm_loop *loop);

/* ---- Additions (engine-independent helpers for the pipelines) ---- */

struct statx;

/* Queue an openat(dirfd, path, flags, mode); the callback's res is the new
 * descriptor or -errno. path must stay valid until the callback. Same
 * contract as pm_loop_read otherwise. */
PM_API int64_t pm_loop_openat(pm_loop *loop, int dirfd, const char *path,
                              int flags, unsigned mode, pm_loop_cb cb, void *arg);

/* Queue a close(fd); res 0 or -errno. Same contract. */
PM_API int64_t pm_loop_close(pm_loop *loop, int fd, pm_loop_cb cb, void *arg);

/* Queue a statx(dirfd, path, flags, mask, buf); res 0 or -errno. path and
 * buf must stay valid until the callback. Same contract. */
PM_API int64_t pm_loop_statx(pm_loop *loop, int dirfd, const char *path,
                             int flags, unsigned mask, struct statx *buf,
                             pm_loop_cb cb, void *arg);

/* Cancel every pending operation (as pm_loop_cancel on each). Posted
 * callbacks are not affected. Returns how many were cancelled. */
PM_API unsigned pm_loop_cancel_all(pm_loop *loop);

/* A gather group (asyncio's gather): operations added to it are waited for
 * together. Loop thread only, like the rest. */
typedef struct pm_loop_group pm_loop_group;

/* Creates an empty group on loop. Returns 0 or -ENOMEM. */
PM_API int pm_loop_group_new(pm_loop *loop, pm_loop_group **group_ret);

/* Adds the pending operation id to the group (its callback still runs as
 * usual). Returns 0, -ENOENT if id is not pending, -EBUSY if it already
 * belongs to a group. */
PM_API int pm_loop_group_add(pm_loop_group *group, int64_t id);

/* Runs the loop until every member has completed (its callback has run).
 * Returns 0 when every member succeeded, else the first negative result a
 * member reported (in completion order), or an error of the loop itself.
 * The group can be reused afterwards. */
PM_API int pm_loop_group_wait(pm_loop_group *group);

/* Members not yet completed. */
PM_API unsigned pm_loop_group_pending(const pm_loop_group *group);

/* Cancels every member not yet completed. */
PM_API void pm_loop_group_cancel(pm_loop_group *group);

/* Frees the group; pending members stay queued, no longer grouped. NULL: no-op. */
PM_API void pm_loop_group_free(pm_loop_group *group);

#ifdef __cplusplus
}
#endif
#endif
