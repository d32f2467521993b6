/* pmap/pool.h - a worker pool in the shape of Python's multiprocessing.Pool,
 * on threads and OpenMP (no GIL, no pickling), or on worker processes
 * (pm_pool_opts.backend = PM_POOL_PROCESSES, see "Processes" below).
 *
 * Work comes in two shapes:
 *   - map-like: fn(in[i], out[i], arg) over n fixed-size items, described by
 *     a pm_map_spec: pm_pool_map (blocking, an OpenMP parallel loop),
 *     pm_pool_map_async (a future for the whole map), pm_pool_imap and
 *     pm_pool_imap_unordered (lazy iterators with a bound on results held);
 *   - single tasks: pm_pool_apply_async(pool, fn, arg) -> pm_future.
 *
 * Failure: a map function or task fails by returning non-zero (a negative
 * errno or any int of the caller's choosing). Every item of a map runs even
 * when some fail (as Python's map waits for all chunks); pm_pool_map
 * returns the failure of the lowest failing index and reports the index.
 * pmap's own errors are negative errno values (pm_strerror()).
 *
 * Thread budget: a pool of W workers never runs more than W tasks or map
 * items at once, counting its worker threads and the OpenMP threads of its
 * maps together (see pool.c). Several threads may use one pool at once.
 *
 * Lifecycle: pm_pool_close() (no new work; queued work finishes) or
 * pm_pool_terminate() (queued work is cancelled), then pm_pool_join(), then
 * pm_pool_free(). pm_pool_free() on a pool still open terminates and joins
 * it first.
 *
 * fork(): a pool is made of threads, and a forked child has only the thread
 * that called fork(). In the child, every function here given a pool made
 * before the fork (or one of its imap iterators) returns -ECHILD at once,
 * and pm_pool_free / pm_imap_free abandon it (freeing would wait for the
 * parent's threads); futures of such a pool that were still pending never
 * complete there. A new pool made in the child works, except that
 * pm_pool_map returns -ECHILD on a thread that ran a pm_pool_map before the
 * fork: GNU libgomp keeps that thread's OpenMP team across regions, and in
 * the child the next region would wait forever for the team's vanished
 * threads (call it from a thread made in the child, or use map_async or
 * imap, which run on the pool's own workers). OpenMP regions of your own on
 * such a thread hang the same way; pmap cannot see those. The answer for
 * programs that fork is the process backend (below).
 *
 * Processes (PM_POOL_PROCESSES). The same API runs each map item and task
 * in one of `workers` worker processes, so a crash cannot corrupt the
 * caller or the other workers.
 *   - Workers are forked from a fork server that pm_pool_new starts by
 *     executing /proc/self/exe again with a marker in its environment; a
 *     constructor in libpmap takes that process over before main, so it has
 *     one thread, no OpenMP team and no held lock, whatever the caller did
 *     (GNU libgomp is not fork-safe after a parallel region, GCC bug
 *     60035): workers may run OpenMP regions of their own. The program's
 *     other constructors do run in the server (keep them free of side
 *     effects such as writing files). A program started through an
 *     explicit loader (ld.so ./prog) cannot be re-executed that way, and
 *     one that loads libpmap with dlopen runs its main again up to that
 *     dlopen (if it never gets there, pm_pool_new fails with -ENOEXEC
 *     after 20 s): link libpmap into programs that use process pools.
 *   - Functions cross as (loaded module, offset) pairs, so any function of
 *     the program or of a shared library works, static ones included.
 *     Pointers do not cross: a map's arg is copied when
 *     pm_map_spec.arg_size > 0, else passed as an opaque value (the same
 *     bits: a pointer into the caller's memory is meaningless there); the
 *     same holds for initarg (initarg_size). pm_pool_apply_async passes arg
 *     as an opaque value and its future's result is always NULL: use
 *     pm_pool_apply_async_data to send bytes and get bytes back. Items and
 *     results travel through memory shared with each worker (in_size /
 *     out_size bytes each).
 *   - Crashes. A worker that dies (a signal such as SIGSEGV, or SIGKILL from
 *     the OOM killer; abort(); exit()) fails only the item or task it was
 *     running, with -(PM_EWORKER_SIGNALED + signal) or -(PM_EWORKER_EXITED +
 *     exit status) (PM_WORKER_SIGNAL / PM_WORKER_EXIT decode them; for
 *     pm_strerror, "worker killed by signal 11 (Segmentation fault)"); the
 *     worker is replaced and the pool goes on, the rest of a map's chunk
 *     running on the replacement. Python's Pool hangs forever in this case
 *     (CPython gh-66587); ProcessPoolExecutor fails every pending future and
 *     refuses new work (BrokenProcessPool); pmap fails the one item.
 *   - Tasks go in batches. A proxy that takes a task (apply_async or
 *     apply_async_data) also takes the tasks queued right behind it, up to
 *     64 and no more than its share of the queue (1/workers) nor than
 *     about 5 ms of work by the times of its last tasks (tasks that long
 *     go one by one), and sends them to its worker as one request, run in
 *     order: one round trip for the lot, which is what counts on a busy
 *     machine. Each future completes as soon as the proxy sees its task
 *     done (within a millisecond while later tasks of the batch run), so a
 *     long task does not hold back the results before it. A task taken
 *     into a batch counts as started: pm_future_running() is 1 and
 *     pm_future_cancel() fails with -EBUSY, though its worker may not have
 *     reached it yet. pm_pool_terminate() cancels the tasks of a batch the
 *     worker has not started, as it cancels queued ones (their status is
 *     -ECANCELED); the task being run finishes. task_timeout counts from
 *     each task's own start, max_tasks counts tasks (a batch stops at the
 *     limit), and a crash fails just the task being run, the rest of its
 *     batch going to the replacement.
 *   - task_timeout, max_tasks and mem_limit (pm_pool_opts) bound each
 *     worker; the initializer runs once in every worker, replacements
 *     included (if it fails in a replacement, the item or task that needed
 *     the worker fails with its status).
 *   - pm_pool_map runs as pm_pool_map_async plus a wait (no OpenMP in the
 *     caller); terminate stops a running map between two items; an imap
 *     iterator freed early stops after the batch being run.
 *   - The parent keeps one thread per worker (its proxy) and the fork
 *     server. Workers are children of the server, not of the caller, so a
 *     waitpid(-1) of the program never reaps them. pm_pool_free leaves no
 *     process behind; if the caller dies (even by SIGKILL), the server and
 *     the workers exit too. A child forked from the caller shares the
 *     pool's connection to its server (and gets -ECHILD, as above): the
 *     server and workers then stay until the child exits as well. Each
 *     worker's item area keeps the largest size a request needed until
 *     the pool is freed.
 *   - Not on processes: pipelines (a pipeline given such a pool fails with
 *     -EINVAL), and calling this pool's functions from inside its tasks.
 *     Done-callbacks run in the caller's process, on a proxy thread: a
 *     blocking pm_pool_map there waits like a task waiting on a future.
 *     Under AddressSanitizer or ThreadSanitizer a worker's SIGSEGV is
 *     reported as an exit unless handle_segv=0 is in their options, and
 *     mem_limit does not mix with their shadow memory.
 */
#ifndef PMAP_POOL_H
#define PMAP_POOL_H

#include <stddef.h>

#include <pmap/export.h>
#include <pmap/future.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pm_pool pm_pool;
typedef struct pm_imap pm_imap;

/* One item of a map: reads *in (in_size bytes), writes *out (out_size
 * bytes), returns 0 or non-zero for failure. Called concurrently from
 * several threads; arg is shared. */
typedef int (*pm_map_fn)(const void *in, void *out, void *arg);

/* A task for pm_pool_apply_async: returns 0 or non-zero (its status) and may
 * store a result pointer in *result_ret (pre-set to NULL). */
typedef int (*pm_task_fn)(void *arg, void **result_ret);

/* imap input on demand: writes one item (in_size bytes) to *item and returns
 * 1, returns 0 at the end of the input, or a negative errno to stop it with
 * an error. Only ever called from the thread that creates or advances the
 * iterator, never concurrently. */
typedef int (*pm_input_fn)(void *item, void *arg);

/* Per-thread initializer: non-zero fails (see pm_pool_opts.initializer). */
typedef int (*pm_init_fn)(void *arg);

/* pm_pool_opts.backend */
typedef enum pm_pool_backend {
    PM_POOL_THREADS = 0,       /* threads and OpenMP (the default) */
    PM_POOL_PROCESSES = 1,     /* worker processes (see "Processes" above) */
} pm_pool_backend;

/* Status of an item or task whose worker process died: the negation of
 * PM_EWORKER_SIGNALED + the signal number, or of PM_EWORKER_EXITED + the
 * exit status (0-255; an exit during a task is a failure even with 0).
 * Above every errno value, so never confused with one. */
#define PM_EWORKER_SIGNALED 0x10000
#define PM_EWORKER_EXITED   0x10100
/* The signal that killed the worker (> 0), or 0 for another status. */
#define PM_WORKER_SIGNAL(st) \
    ((st) <= -PM_EWORKER_SIGNALED && (st) > -PM_EWORKER_EXITED ? -(st) - PM_EWORKER_SIGNALED : 0)
/* The worker's exit status (0-255), or -1 for another status. */
#define PM_WORKER_EXIT(st) \
    ((st) <= -PM_EWORKER_EXITED && (st) > -PM_EWORKER_EXITED - 256 ? -(st) - PM_EWORKER_EXITED : -1)

#define PM_POOL_AUTO (-1)          /* pm_pool_opts.workers: the default count */
#define PM_POOL_MAX_WORKERS 1024   /* = PM_MAX_JOBS of config.h */

typedef struct pm_pool_opts {
    /* Worker threads. 0 or PM_POOL_AUTO (so a zero-initialized struct
     * works too): $PMAP_JOBS if set, else the CPUs this process may run on
     * (config.h), as everywhere a count is taken in pmap. */
    int workers;
    /* Runs once on every thread that runs this pool's work, before its first
     * item or task, with initarg: each worker thread as it starts (pm_pool_new
     * waits for these, and fails with the first non-zero return), and each
     * OpenMP thread of pm_pool_map, the calling thread included, the first
     * time it joins a map of this pool (a failure there fails the items that
     * thread was given, and it is retried at the next map). NULL: none. */
    pm_init_fn initializer;
    void *initarg;
    /* Default bound on imap results in flight (see pm_map_spec.max_inflight);
     * 0: 4 x workers x chunksize. */
    size_t imap_inflight;
    /* Fields below: 0 keeps the thread pool as it always was. */
    pm_pool_backend backend;
    /* Processes only (ignored on threads): */
    size_t initarg_size;       /* > 0: initarg is that many bytes, copied to
                                  each worker; 0: passed as an opaque value */
    double task_timeout;       /* seconds one task or map item may run (from
                                  its start); then the worker is killed and
                                  replaced, the item fails with -ETIMEDOUT.
                                  0: none */
    unsigned max_tasks;        /* a worker is replaced after this many
                                  requests: each apply task (a batch of
                                  tasks counts them all, and stops at the
                                  limit), or one batch of a map (a chunk,
                                  or less when items are large); 0: never */
    size_t mem_limit;          /* bytes of address space a worker may add to
                                  what it has when it starts, besides its
                                  share of the item area (up to 64 MiB)
                                  (RLIMIT_AS): allocations beyond it fail
                                  inside the task; 0: none */
} pm_pool_opts;

#define PM_POOL_OPTS_INIT { .workers = PM_POOL_AUTO }

/* A map over fixed-size items, shared by the map entry points. Item i is
 * in + i * in_size, its result out + i * out_size; a size may be 0 (then fn
 * gets the base pointer for every item). */
typedef struct pm_map_spec {
    pm_map_fn fn;           /* required */
    void *arg;              /* third argument of fn */
    const void *in;         /* n items; may be NULL when n == 0 or in_size == 0 */
    size_t in_size;
    size_t n;
    void *out;              /* map, map_async: n results; imap: unused */
    size_t out_size;
    /* Items per chunk, the unit handed to one thread. 0: automatic, as Pool
     * does: ceil(n / (4 x workers)). For imap it is also capped at 64, and
     * at max_inflight / (4 x workers) when a bound is given, so results
     * come early and memory stays bounded. With an input callback n is not
     * known, so imap applies the same rule to the items read so far: the
     * first 4 x workers chunks hold one item each (a short input still
     * spreads over every worker), later ones ceil(read / (4 x workers)),
     * reaching the cap of 64 after 256 x workers items (one item per chunk
     * costs several microseconds per item; 64, about 0.1). Any value is
     * accepted; imap lowers it to n (for an in[] array) and to
     * max_inflight. */
    size_t chunksize;
    /* imap only: at most this many items are read and not yet returned by
     * pm_imap_next(); chunksize is lowered to it if larger. 0: the pool's
     * imap_inflight, or 4 x workers x chunksize (saturating at SIZE_MAX;
     * with an automatic chunksize, its cap: 4 x workers x 64 at most).
     * A bound, not a reservation: an iterator's memory follows the items
     * it has actually read (at most n for an in[] array), so a large bound
     * costs nothing on a short input. */
    size_t max_inflight;
    /* imap only: when set, items come from input(item, input_arg) instead of
     * in[] (n is then ignored). */
    pm_input_fn input;
    void *input_arg;
    /* Processes: > 0 copies arg_size bytes at arg to the workers (fn gets
     * a pointer to the copy; writes to it are not seen by the caller); 0
     * passes arg as an opaque value. Ignored on threads (fn gets arg). */
    size_t arg_size;
} pm_map_spec;

/* Creates a pool. NULL opts: defaults. Starts the workers, runs their
 * initializers and waits for them. Returns 0 and sets *pool_ret, or -EINVAL
 * (workers negative or above PM_POOL_MAX_WORKERS, PMAP_JOBS set but
 * malformed when the default is asked for, NULL pool_ret, an unknown backend,
 * a negative task_timeout, initarg_size without initarg), -ENOMEM, -EAGAIN
 * (no threads), or the first initializer failure (the pool is then already
 * torn down). Processes: also the fork server's failures (posix_spawn's
 * error; -ENOEXEC when the program, re-executed, does not reach libpmap's
 * constructor: see "Processes") and, for a worker that
 * dies in its initializer, its PM_EWORKER_* status. */
PM_API int pm_pool_new(const pm_pool_opts *opts, pm_pool **pool_ret);

/* Terminates and joins the pool if that was not done, then frees it. NULL:
 * no-op. Blocks until running tasks return. Must not be called from the
 * pool's own tasks. Outstanding futures stay valid; imap iterators stay
 * valid too (they report -ECANCELED) and must still be freed. */
PM_API void pm_pool_free(pm_pool *pool);

/* The number of workers (the thread budget); -EINVAL for NULL. Thread-safe. */
PM_API int pm_pool_workers(const pm_pool *pool);

/* out[i] = fn(in[i]) for every i < n, blocking, results in input order, as
 * an OpenMP parallel loop (dynamic schedule, spec->chunksize items per
 * chunk) on as many of the pool's execution slots as are free (at least
 * one; waits while none is). Every item runs even if some fail. Returns 0,
 * or the non-zero return of the lowest failing item; *fail_index_ret (may be
 * NULL) gets that item's index, or n when none failed. Items skipped because
 * the pool was terminated meanwhile fail with -ECANCELED; a map still
 * waiting for a slot when the pool is terminated returns -ECANCELED at once
 * (index 0), without waiting for the running tasks. Returns -EINVAL
 * for a NULL pool/spec/fn, missing arrays, an input callback (imap only),
 * n x item size overflowing, or a pool that is closed or
 * terminated (then *fail_index_ret is left alone), and -ECHILD in a forked
 * child (see fork() above). Thread-safe; may be
 * called from a task of the same pool (it then uses the caller's slot and
 * any free ones, and never waits for slots). pmap does not change OpenMP's
 * nesting limit (a process-wide setting in libgomp): with the default of one
 * active level, a parallel region inside fn runs on a single thread. */
PM_API int pm_pool_map(pm_pool *pool, const pm_map_spec *spec,
                       size_t *fail_index_ret);

/* Like pm_pool_map, but returns at once with a future for the whole map,
 * whose status is what pm_pool_map would return (-ECANCELED if the pool is
 * terminated before every item ran). The chunks run on the pool's workers.
 * *spec is copied; the in and out arrays, and fail_index_ret if not NULL,
 * must stay valid until the future is done; *fail_index_ret is set (as by
 * pm_pool_map) before the future completes, unless it ends up cancelled.
 * Cancelling succeeds until the first chunk starts. Returns 0 and
 * sets *future_ret, or -EINVAL (as for pm_pool_map), -ENOMEM. Thread-safe. */
PM_API int pm_pool_map_async(pm_pool *pool, const pm_map_spec *spec,
                             size_t *fail_index_ret, pm_future **future_ret);

/* Lazy iterators over fn's results: pm_pool_imap yields them in input
 * order, pm_pool_imap_unordered as chunks complete. Input is read (from
 * in[] or the input callback) only as results are consumed, so at most
 * max_inflight items (see pm_map_spec) are read and not yet returned at any
 * time; the first ones are read and queued before this returns. The in
 * array must stay valid until the iterator is freed. Returns 0 and sets
 * *it_ret, or -EINVAL (as for pm_pool_map; in may be NULL when input is
 * set), -ENOMEM. Thread-safe with respect to the pool; an iterator itself
 * belongs to one thread at a time (the one that creates it, for the
 * purpose of pm_pool_join's -EDEADLK check). */
PM_API int pm_pool_imap(pm_pool *pool, const pm_map_spec *spec, pm_imap **it_ret);
PM_API int pm_pool_imap_unordered(pm_pool *pool, const pm_map_spec *spec,
                                  pm_imap **it_ret);

/* Next item. Returns 1 with the item's input index in *index_ret (may be
 * NULL) and its status in *status_ret: 0 when fn succeeded (its result is
 * copied to out, out_size bytes), else fn's non-zero return (out untouched;
 * iteration then goes on with the following items, as Python's imap does
 * after raising). Two statuses end the iteration (later calls return 0):
 * -ECANCELED, for the first item that did not run because the pool was
 * terminated, and the input callback's negative error, for the item it
 * failed to produce. Returns 0 when every item has been returned,
 * -ETIMEDOUT if timeout seconds passed with nothing ready (call again), and
 * -EINVAL for a NULL it or status_ret. Blocks; one thread at a time. */
PM_API int pm_imap_next(pm_imap *it, void *out, size_t *index_ret,
                        int *status_ret, double timeout);

/* Frees an iterator, possibly before the end: chunks not started are
 * cancelled, running ones stop after their current item, and their results
 * are dropped. Blocks until no thread works on the iterator. NULL: no-op. */
PM_API void pm_imap_free(pm_imap *it);

/* Runs fn(arg, &result) on a worker. Returns 0 and sets *future_ret, or
 * -EINVAL (NULL pool/fn/future_ret, pool closed or terminated), -ENOMEM.
 * Thread-safe, never blocks. */
PM_API int pm_pool_apply_async(pm_pool *pool, pm_task_fn fn, void *arg,
                               pm_future **future_ret);

/* Like pm_pool_apply_async, with bytes in and out, on either backend: fn
 * gets a private copy of the arg_size bytes at arg (arg is NULL for 0) and
 * *result_ret pointing to result_size zeroed bytes (NULL for 0) to write its
 * result into (on processes, if fn points *result_ret elsewhere, result_size
 * bytes are copied from there). Once the future is done with the task's own
 * status, pm_future_result() returns that buffer; it belongs to the future
 * and is freed by pm_future_free(). When the task did not return (cancelled,
 * worker died or timed out) the result is NULL. Returns 0 and sets
 * *future_ret, or -EINVAL (as pm_pool_apply_async, or arg NULL with
 * arg_size > 0), -ENOMEM. Thread-safe, never blocks. */
PM_API int pm_pool_apply_async_data(pm_pool *pool, pm_task_fn fn, const void *arg,
                                    size_t arg_size, size_t result_size,
                                    pm_future **future_ret);

/* No new work: later submissions (apply_async, map*, imap*) fail with
 * -EINVAL; work already queued, and imap iterators already created, run to
 * completion. Returns 0 (also when already closed or terminated), -EINVAL
 * for NULL. Thread-safe, never blocks. */
PM_API int pm_pool_close(pm_pool *pool);

/* Like close, and cancels every queued task, map chunk and imap chunk: their
 * futures become done with -ECANCELED (their done-callbacks run on this
 * thread), blocking maps stop at their next chunk. Tasks already running
 * finish. Returns 0, -EINVAL for NULL. Thread-safe; does not wait. */
PM_API int pm_pool_terminate(pm_pool *pool);

/* Waits for the workers to exit and for running maps to return, after
 * pm_pool_close() or pm_pool_terminate(). After close, this waits for queued
 * work and for live imap iterators to be consumed or freed. Returns 0 (also
 * when already joined), -EINVAL if the pool is still open (or NULL),
 * -EDEADLK when called from one of the pool's tasks, or while the calling
 * thread owns an imap iterator of this pool that still has input to read. */
PM_API int pm_pool_join(pm_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
