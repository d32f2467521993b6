/* pmap/future.h - the pending result of work handed to a pm_pool
 * (concurrent.futures.Future in C).
 *
 * A future is created by pm_pool_apply_async() or pm_pool_map_async() and
 * goes PENDING -> RUNNING -> DONE, or PENDING -> CANCELLED (by
 * pm_future_cancel() or pm_pool_terminate()). DONE and CANCELLED are both
 * "done": the future never changes again.
 *
 * Once done, a future carries a status and a result:
 *   status  0 when the task succeeded, the task's own non-zero return value
 *           when it failed, -ECANCELED when it was cancelled;
 *   result  the pointer the task stored through its result_ret argument
 *           (NULL if it stored none, and always NULL when cancelled).
 * pmap never dereferences or frees a result: whatever it points to belongs
 * to the caller from the moment the future is done, and stays the caller's
 * to free even if nobody ever reads it. The exception is a future of
 * pm_pool_apply_async_data (pool.h): its result is a buffer the future owns
 * and pm_future_free() frees. On a process pool, pm_pool_apply_async's
 * result is always NULL (the task's pointer is in another process).
 *
 * Ownership: the caller owns the future returned to it and releases it with
 * pm_future_free(). Freeing does not cancel: a pending task still runs and
 * its result is dropped (cancel first to abandon work). A future stays valid
 * after its pool is freed.
 *
 * Thread-safety: every function here may be called from any thread,
 * concurrently, on the same future, except pm_future_free(), after which no
 * other call may touch the future.
 *
 * Timeouts are in seconds: a negative value (PM_FOREVER) waits without limit,
 * 0 only polls.
 *
 * Many futures, as they complete: pm_as_completed (below) delivers each
 * done future once, at O(1) per completion, in completion order. Use it
 * rather than calling pm_wait_any in a loop, which scans and registers on
 * every pending future at each call (quadratic: 10^5 futures took 6.7 s
 * that way against 7 ms in order; see docs/bench/pool.md).
 */
#ifndef PMAP_FUTURE_H
#define PMAP_FUTURE_H

#include <stddef.h>

#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_FOREVER (-1.0)    /* timeout: wait without limit */

typedef struct pm_future pm_future;
typedef struct pm_as_completed pm_as_completed;

/* A done-callback: runs once, when the future is done (see
 * pm_future_add_done_callback for which thread runs it). */
typedef void (*pm_future_cb)(pm_future *f, void *arg);

/* Blocks until f is done or timeout seconds have passed. Returns 0 when
 * done, -ETIMEDOUT otherwise. Waiting on a future from inside a task of the
 * same pool can deadlock if that future is queued behind the caller. */
PM_API int pm_future_wait(pm_future *f, double timeout);

/* 1 when f is done (finished or cancelled), else 0. Never blocks. */
PM_API int pm_future_done(const pm_future *f);

/* 1 while f's task is running, else 0. Never blocks. */
PM_API int pm_future_running(const pm_future *f);

/* The task's status once done (0, its non-zero return, or -ECANCELED);
 * -EINPROGRESS while not done. Never blocks. */
PM_API int pm_future_status(const pm_future *f);

/* The task's result once done (NULL before, and when cancelled). The pointee
 * belongs to the caller (see above). Never blocks. */
PM_API void *pm_future_result(const pm_future *f);

/* Waits like pm_future_wait(); when done, stores the status in *status_ret
 * and the result in *result_ret (either may be NULL) and returns 0. Returns
 * -ETIMEDOUT (outputs untouched) if the timeout expired first. Python's
 * Future.result(timeout), with the task's error kept apart from the wait's. */
PM_API int pm_future_get(pm_future *f, double timeout, int *status_ret,
                         void **result_ret);

/* Cancels f if its task has not started: it becomes done with status
 * -ECANCELED, its done-callbacks run on the calling thread, waiters wake.
 * Returns 0 on success (also when f was already cancelled), -EBUSY when the
 * task is running, -EALREADY when it has finished. Never blocks. */
PM_API int pm_future_cancel(pm_future *f);

/* Registers cb(f, arg) to run once f is done. If f is already done, cb runs
 * at once on the calling thread; otherwise on the thread that completes f
 * (a pool worker, or the thread that cancels it), after waiters are woken.
 * Callbacks added before completion run in the order they were added. A
 * callback must not block for long (it holds up a worker) and may free f.
 * Returns 0, or -ENOMEM (cb will not run). */
PM_API int pm_future_add_done_callback(pm_future *f, pm_future_cb cb, void *arg);

/* Releases the caller's reference. Does not cancel and never blocks; the
 * memory goes when the pool is also done with it. NULL: no-op. */
PM_API void pm_future_free(pm_future *f);

/* concurrent.futures.wait(FIRST_COMPLETED): blocks until at least one of
 * the n futures is done, or timeout. NULL entries are skipped. Returns 0
 * and stores in *index_ret the lowest index of a done future; -ETIMEDOUT;
 * -EINVAL when fs has no non-NULL entry (or fs/index_ret is NULL). Each
 * call costs O(n) (it looks at, and may register on, every future): to
 * drain many futures as they complete, use pm_as_completed, not a loop over
 * this function (O(n^2) in all). */
PM_API int pm_wait_any(pm_future *const *fs, size_t n, double timeout,
                       size_t *index_ret);

/* concurrent.futures.wait(ALL_COMPLETED): blocks until every non-NULL
 * future of fs is done (0) or the timeout expires (-ETIMEDOUT). The timeout
 * bounds the whole call, not each future. n == 0 returns 0 at once. */
PM_API int pm_wait_all(pm_future *const *fs, size_t n, double timeout);

/* ---- as_completed: a completion queue ----
 *
 * concurrent.futures.as_completed in C: a set of futures that hands back
 * each one once it is done (finished or cancelled), in the order they
 * completed, at O(1) per completion (a done-callback queues the future;
 * nothing scans). The set takes over the caller's reference of every
 * future put in it and gives it back with pm_as_completed_next, so the
 * caller frees each future it gets back, and only those:
 *
 *     pm_as_completed *ac;
 *     if (pm_as_completed_new(fs, n, &ac) == 0) {   // fs[] now belongs to ac
 *         size_t i;
 *         pm_future *f;
 *         while (pm_as_completed_next(ac, PM_FOREVER, &i, &f) == 1) {
 *             use(i, pm_future_status(f), pm_future_result(f));
 *             pm_future_free(f);
 *         }
 *         pm_as_completed_free(ac);
 *     }
 *
 * Futures may also be added one by one (pm_as_completed_add), while others
 * are being taken out, so one set can serve as the completion queue of a
 * producer that keeps a number of tasks in flight. A future may be in one
 * set at a time, since its reference moves there.
 *
 * Thread-safety: new, add and next may be called from any threads,
 * concurrently (each future is returned to exactly one caller of next);
 * pm_as_completed_free must not run concurrently with them. */

/* Makes a set holding the non-NULL futures of fs[0..n) (fs may be NULL
 * when n == 0), which take the indexes 0..n-1 of their positions (NULL
 * entries leave their index unused). Futures already done are ready at
 * once. Returns 0 and sets *ac_ret, taking over the caller's reference of
 * each future; -EINVAL (NULL ac_ret, or fs NULL with n > 0) or -ENOMEM,
 * and then the references stay the caller's. Never blocks. */
PM_API int pm_as_completed_new(pm_future *const *fs, size_t n,
                               pm_as_completed **ac_ret);

/* Adds f to the set, taking over the caller's reference. Its index is the
 * next unused one (n for the first add after new(fs, n), then n + 1, ...),
 * stored in *index_ret (may be NULL). Returns 0; -EINVAL (NULL ac or f) or
 * -ENOMEM, and then the reference stays the caller's. Never blocks. */
PM_API int pm_as_completed_add(pm_as_completed *ac, pm_future *f, size_t *index_ret);

/* Waits up to timeout seconds (PM_FOREVER: without limit; 0: polls) for a
 * future of the set to be done, takes it out of the set and returns 1 with
 * its index in *index_ret and the future in *future_ret (either may be
 * NULL; when future_ret is NULL the future's reference is released here).
 * The caller now owns that reference and frees it with pm_future_free.
 * Futures come out in the order they completed; a cancelled future (by
 * pm_future_cancel, or by pm_pool_terminate) comes out like any other, with
 * status -ECANCELED. Returns 0 once every future added so far has been
 * returned (later adds make it wait again), -ETIMEDOUT if none was done in
 * time (call again), -EINVAL for a NULL ac. */
PM_API int pm_as_completed_next(pm_as_completed *ac, double timeout,
                                size_t *index_ret, pm_future **future_ret);

/* Frees the set and releases the references of the futures it still holds
 * (those not returned by next; it does not cancel them, and they must not
 * be used afterwards). Never blocks: futures still pending keep a little of
 * its memory until they complete. NULL: no-op. */
PM_API void pm_as_completed_free(pm_as_completed *ac);

#ifdef __cplusplus
}
#endif
#endif
