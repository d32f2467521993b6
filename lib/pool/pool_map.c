/* pool_map.c - pm_pool_map (blocking, OpenMP) and pm_pool_map_async.
 *
 * Blocking map. The calling thread takes execution slots (exec/slots.c): as
 * many as are free, up to min(workers, chunks), at least one, waiting while
 * none is free (terminate ends that wait: the map then fails with
 * -ECANCELED at index 0, having run nothing). It then opens `#pragma omp parallel num_threads(k)`: k is
 * explicit, so OpenMP never adds threads beyond the slots held. Inside, an
 * orphaned `omp for schedule(dynamic, 1)` over chunk numbers hands out
 * chunks of `chunksize` items (equivalent to schedule(dynamic, chunksize)
 * over items; libgomp claims each with an atomic fetch-and-add, no lock) and
 * each chunk is a plain loop calling fn directly. Between chunks a thread
 * reads the pool state, so terminate stops a map at the next chunk. Each
 * thread keeps its lowest failing index in locals and merges it once, under
 * a mutex, at the end of the region.
 *
 * Nesting. A map called from inside one of this pool's maps runs on a team
 * of one (the OpenMP region is nested; pmap never raises the nesting limit)
 * using the thread's slot; a map called from a task uses the worker's slot
 * plus whatever is free without waiting; a map called from another OpenMP
 * region waits for one slot. Each thread of a region runs the pool's
 * initializer if it has not yet run there, and marks itself IN_MAP in the
 * pool's thread-specific key for the region's duration.
 *
 * Fork. libgomp keeps a thread's OpenMP team from one parallel region to
 * the next; in a forked child the team's threads are gone, and the next
 * region on the thread that forked waits for them forever (a thread made
 * in the child is fine, and LLVM's libomp handles fork). So every thread
 * records the fork generation (pool.c) of the last region it led, and a
 * map on a thread that led one before a fork returns -ECHILD instead of
 * hanging; so does any map on a pool made before the fork.
 *
 * Processes. pm_pool_map is map_async plus a wait; a runner hands each
 * chunk's items to its proxy's worker process (run_items_procs), where a
 * worker's death fails one item and terminate stops between items.
 *
 * map_async. The map becomes a job: min(workers, chunks) runner tasks go to
 * the queue at once, each claiming chunks from the job's atomic counter
 * until none is left. The first runner to start moves the user's future to
 * RUNNING (so cancel works until then); the last runner to finish, or be
 * cancelled by terminate, completes it: with the lowest failure, or with
 * -ECANCELED for chunks nobody ran.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <omp.h>

#include <pmap/pool.h>

#include "pool_internal.h"

size_t pm__auto_chunksize(size_t n, int workers)
{
    size_t d = (size_t)workers * 4;
    size_t cs = n / d + (n % d != 0);
    return cs ? cs : 1;
}

int pm__spec_check(const pm_map_spec *s)
{
    if (!s || !s->fn)
        return -EINVAL;
    if (s->in_size && s->n > SIZE_MAX / s->in_size)
        return -EINVAL;
    if (s->out_size && s->n > SIZE_MAX / s->out_size)
        return -EINVAL;
    return 0;
}

static int spec_arrays_ok(const pm_map_spec *s, int need_out)
{
    if (s->n == 0)
        return 1;
    if (!s->input && s->in_size && !s->in)
        return 0;
    return !need_out || !s->out_size || s->out;
}

/* The lowest failure of a set of items. */
typedef struct fail_rec {
    size_t index;     /* SIZE_MAX: none */
    int code;
    size_t base;      /* processes: the first index of the current call */
} fail_rec;

static inline void fail_note(fail_rec *r, size_t i, int code)
{
    if (i < r->index) {
        r->index = i;
        r->code = code;
    }
}

/* Runs items [lo, hi) of s. Addresses are computed as integers so that a
 * NULL array with a zero item size stays defined behaviour. */
static void run_items(const pm_map_spec *s, size_t lo, size_t hi, fail_rec *r)
{
    const pm_map_fn fn = s->fn;
    void *const arg = s->arg;
    const uintptr_t in = (uintptr_t)s->in, out = (uintptr_t)s->out;
    const size_t isz = s->in_size, osz = s->out_size;
    for (size_t i = lo; i < hi; i++) {
        int rc = fn((const void *)(in + i * isz), (void *)(out + i * osz), arg);
        if (PM__UNLIKELY(rc))
            fail_note(r, i, rc);
    }
}

static void fail_cb(void *ctx, size_t i, int code)
{
    fail_rec *r = ctx;
    fail_note(r, r->base + i, code);
}

/* Items [lo, hi) on a process pool: in the proxy's worker. Items not run
 * because the pool was terminated fail with -ECANCELED. */
static void run_items_procs(pm_pool *pool, const pm_map_spec *s, size_t lo, size_t hi,
                            fail_rec *r)
{
    r->base = lo;
    pm__rmap m = {.fn = s->fn, .arg = s->arg, .arg_size = s->arg_size, .in_size = s->in_size,
                  .out_size = s->out_size, .fail = fail_cb, .ctx = r};
    const unsigned char *in = s->in_size ? (const unsigned char *)s->in + lo * s->in_size : NULL;
    unsigned char *out = s->out_size ? (unsigned char *)s->out + lo * s->out_size : NULL;
    size_t ran = pm__procs_map(pool->ex, &m, in, out, hi - lo);
    if (ran < hi - lo)
        fail_note(r, lo + ran, -ECANCELED);
}

static int terminated(pm_pool *pool)
{
    return atomic_load_explicit(&pool->ex->state, memory_order_relaxed) == PM__TERMINATED;
}

/* ---- blocking map ---- */

/* 1 + the fork generation in which this thread last led a parallel region
 * (0: never). */
static _Thread_local unsigned led_region_gen;

/* -ECHILD when an OpenMP region would hang on this thread (see above). */
static int region_forked(void)
{
    return led_region_gen && led_region_gen != pm__fork_gen() + 1 ? -ECHILD : 0;
}

typedef struct map_run {
    pm_pool *pool;
    const pm_map_spec *spec;
    size_t cs, nchunks;
    pthread_mutex_t mu;       /* guards fail; taken once per thread */
    fail_rec fail;
} map_run;

/* One thread's share of the region (called inside the parallel region). */
static void map_thread(map_run *m)
{
    pm_pool *pool = m->pool;
    const size_t cs = m->cs, n = m->spec->n, nchunks = m->nchunks;
    fail_rec r = {SIZE_MAX, 0, 0};
    int irc = pm__pool_thread_init(pool);
    void *mark = pthread_getspecific(pool->ex->key);
    pthread_setspecific(pool->ex->key, PM__TLS_IN_MAP);
#pragma omp for schedule(dynamic, 1) nowait
    for (size_t c = 0; c < nchunks; c++) {
        size_t lo = c * cs, hi = n - lo < cs ? n : lo + cs;
        if (PM__UNLIKELY(irc))
            fail_note(&r, lo, irc);
        else if (PM__UNLIKELY(terminated(pool)))
            fail_note(&r, lo, -ECANCELED);
        else
            run_items(m->spec, lo, hi, &r);
    }
    pthread_setspecific(pool->ex->key, mark);
    /* A pthread mutex rather than `omp critical`: same cost here (once per
     * thread), and ThreadSanitizer models it without help from Archer. */
    pthread_mutex_lock(&m->mu);
    fail_note(&m->fail, r.index, r.code);
    pthread_mutex_unlock(&m->mu);
}

/* Takes the slots for a map of nchunks chunks; *own is set when one of them
 * is the calling thread's own (not to be given back). */
static int map_take_slots(pm_pool *pool, size_t nchunks, int *own)
{
    int want = nchunks < (size_t)pool->workers ? (int)nchunks : pool->workers;
    void *mark = pthread_getspecific(pool->ex->key);
    *own = mark == PM__TLS_IN_MAP || mark == PM__TLS_WORKER;
    if (mark == PM__TLS_IN_MAP || (*own && omp_in_parallel()))
        return 1;
    if (*own)
        return 1 + pm__slots_try_take(&pool->ex->slots, want - 1);
    return pm__slots_take_map(&pool->ex->slots, omp_in_parallel() ? 1 : want);
}

/* pm_pool_map on processes: map_async and a wait (the items run in the
 * workers; an OpenMP team in the caller would only wait for them). */
static int map_procs(pm_pool *pool, const pm_map_spec *spec, size_t *fail_index_ret)
{
    size_t idx = spec->n;
    pm_future *f;
    int rc = pm_pool_map_async(pool, spec, &idx, &f);
    if (rc)
        return rc;
    pm_future_wait(f, PM_FOREVER);
    rc = pm_future_status(f);
    pm_future_free(f);
    if (rc == -ECANCELED && idx == spec->n)
        idx = 0;                  /* cancelled before it started */
    if (fail_index_ret)
        *fail_index_ret = idx;
    return rc;
}

int pm_pool_map(pm_pool *pool, const pm_map_spec *spec, size_t *fail_index_ret)
{
    if (!pool || pm__spec_check(spec) || spec->input || !spec_arrays_ok(spec, 1))
        return -EINVAL;
    if (pm__pool_forked(pool))
        return -ECHILD;
    if (pm__pool_procs(pool))
        return map_procs(pool, spec, fail_index_ret);
    int rc = spec->n ? region_forked() : 0;
    if (rc)
        return rc;
    rc = pm__pool_map_enter(pool);
    if (rc)
        return rc;
    map_run m = {.pool = pool, .spec = spec, .mu = PTHREAD_MUTEX_INITIALIZER,
                 .fail = {SIZE_MAX, 0, 0}};
    if (spec->n > 0) {
        m.cs = spec->chunksize ? spec->chunksize
                               : pm__auto_chunksize(spec->n, pool->workers);
        m.nchunks = spec->n / m.cs + (spec->n % m.cs != 0);
        int own;
        int k = map_take_slots(pool, m.nchunks, &own);
        if (k == 0) {             /* terminated while waiting for a slot */
            fail_note(&m.fail, 0, -ECANCELED);
        } else {
#pragma omp parallel num_threads(k)
            map_thread(&m);
            led_region_gen = pm__fork_gen() + 1;
            pm__slots_give(&pool->ex->slots, k - own);
        }
    }
    pm__pool_map_leave(pool);
    pthread_mutex_destroy(&m.mu);
    if (fail_index_ret)
        *fail_index_ret = m.fail.index == SIZE_MAX ? spec->n : m.fail.index;
    return m.fail.index == SIZE_MAX ? 0 : m.fail.code;
}

/* ---- map_async ---- */

typedef struct map_job {
    pm_map_spec spec;
    size_t cs, nchunks;
    _Atomic size_t next;          /* next chunk to claim */
    _Atomic int runners;          /* runner tasks not yet finished */
    pthread_mutex_t mu;           /* guards fail */
    fail_rec fail;
    pm_future *fut;               /* the caller's future (one ref is ours) */
    size_t *fail_index_ret;
    pm_pool *pool;
    int procs;                    /* items run in worker processes */
} map_job;

static int job_runner(void *arg, void **result_ret)
{
    (void)result_ret;
    map_job *j = arg;
    pm__future_start(j->fut);     /* the first runner to get here wins */
    if (atomic_load(&j->fut->state) != PM__RUNNING)
        return 0;                 /* cancelled by the caller */
    fail_rec r = {SIZE_MAX, 0, 0};
    size_t c;
    while ((c = atomic_fetch_add(&j->next, 1)) < j->nchunks) {
        size_t lo = c * j->cs, hi = j->spec.n - lo < j->cs ? j->spec.n : lo + j->cs;
        if (terminated(j->pool)) {
            fail_note(&r, lo, -ECANCELED);
            break;
        }
        if (j->procs)
            run_items_procs(j->pool, &j->spec, lo, hi, &r);
        else
            run_items(&j->spec, lo, hi, &r);
    }
    pthread_mutex_lock(&j->mu);
    fail_note(&j->fail, r.index, r.code);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static void job_free(map_job *j)
{
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Completes the caller's future once every runner is accounted for. */
static void job_finish(map_job *j)
{
    size_t c = atomic_load(&j->next);
    if (c < j->nchunks)           /* runners cancelled before claiming these */
        fail_note(&j->fail, c * j->cs, -ECANCELED);
    pm_future *f = j->fut;
    if (pm__future_cancel(f) == -EBUSY) {     /* running: complete it */
        size_t n = j->spec.n;
        if (j->fail_index_ret)
            *j->fail_index_ret = j->fail.index == SIZE_MAX ? n : j->fail.index;
        pm__future_finish(f, j->fail.index == SIZE_MAX ? 0 : j->fail.code, NULL);
    }
    pm__future_unref(f);
    job_free(j);
}

static void runner_done(pm_future *rf, void *arg)
{
    (void)rf;
    map_job *j = arg;
    if (atomic_fetch_sub(&j->runners, 1) == 1)
        job_finish(j);
}

/* An already finished future for an empty map. */
static int empty_map_future(pm_pool *pool, size_t *fail_index_ret, pm_future **fret)
{
    if (atomic_load(&pool->ex->state) != PM__OPEN)
        return -EINVAL;
    pm_future *f = pm__future_new(NULL, NULL, 1);
    if (!f)
        return -ENOMEM;
    if (fail_index_ret)
        *fail_index_ret = 0;
    pm__future_start(f);
    pm__future_finish(f, 0, NULL);
    *fret = f;
    return 0;
}

static map_job *job_new(pm_pool *pool, const pm_map_spec *spec, size_t *fail_index_ret)
{
    map_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->fut = pm__future_new(NULL, NULL, 2);    /* the caller's and ours */
    if (!j->fut) {
        free(j);
        return NULL;
    }
    j->spec = *spec;
    j->cs = spec->chunksize ? spec->chunksize : pm__auto_chunksize(spec->n, pool->workers);
    j->nchunks = spec->n / j->cs + (spec->n % j->cs != 0);
    j->fail = (fail_rec){SIZE_MAX, 0, 0};
    j->fail_index_ret = fail_index_ret;
    j->pool = pool;
    j->procs = pm__pool_procs(pool);
    pthread_mutex_init(&j->mu, NULL);
    return j;
}

int pm_pool_map_async(pm_pool *pool, const pm_map_spec *spec,
                      size_t *fail_index_ret, pm_future **future_ret)
{
    if (!pool || !future_ret || pm__spec_check(spec) || spec->input ||
        !spec_arrays_ok(spec, 1))
        return -EINVAL;
    if (pm__pool_forked(pool))
        return -ECHILD;
    if (spec->n == 0)
        return empty_map_future(pool, fail_index_ret, future_ret);
    map_job *j = job_new(pool, spec, fail_index_ret);
    if (!j)
        return -ENOMEM;
    size_t nr = j->nchunks < (size_t)pool->workers ? j->nchunks : (size_t)pool->workers;
    pm_future *runners[PM_POOL_MAX_WORKERS];
    size_t made = 0;
    while (made < nr && (runners[made] = pm__future_new(job_runner, j, 1))) {
        runners[made]->hook = runner_done;
        runners[made]->hook_arg = j;
        made++;
    }
    atomic_init(&j->runners, (int)made);
    pm_future *fut = j->fut;      /* j may be gone as soon as runners are queued */
    int rc = made < nr ? -ENOMEM : pm__pool_submit(pool, runners, nr, 0);
    if (rc) {
        for (size_t i = 0; i < made; i++)
            pm__future_unref(runners[i]);
        pm__future_unref(j->fut);
        pm__future_unref(j->fut);
        job_free(j);
        return rc;
    }
    *future_ret = fut;
    return 0;
}
