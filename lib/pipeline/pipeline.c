/* pipeline.c - the pipeline's public API and its run loop.
 *
 * Threads and queues (docs/design.md draws them):
 *   - The calling thread of pm_pipeline_run() is the I/O thread. It owns a
 *     pm_loop (io_uring, or the thread engine) and the file table. It walks
 *     the source lazily, moves each file through its life (lifecycle.c),
 *     issues chunk reads and output writes (io.c), and delivers events in
 *     source order. It makes no blocking system call on a file itself:
 *     opening, committing and removing files are work items (fileops.c),
 *     fsyncs and transfers are loop operations.
 *   - The pool's workers run the chunks' stages (stages.c) and the files'
 *     blocking steps. They hand results back through the done queue
 *     (pl_doneq) and wake the I/O thread with pm_loop_post(); a periodic
 *     timer also wakes it (progress, and a fallback if a post could not be
 *     allocated).
 *
 * Memory: max_chunks tokens, each an input buffer (overlap + chunk_size)
 * and an output buffer (out_size), allocated once per run; pm_chunk_emit()
 * draws from a second, fixed pool. Files in flight (with descriptors or a
 * step under way) are capped by max_files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <pmap/config.h>
#include <pmap/error.h>
#include "pipeline_internal.h"

#define PL_DEFAULT_CHUNK (128u * 1024u)
#define PL_DEFAULT_FILES 256u     /* files in flight: enough for their fsyncs
                                     to share the filesystem's commits */

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- creation ---- */

/* The pool the stages run on: the caller's, or one of our own. */
static int pool_attach(pm_pipeline *pl, pm_pool *pool, int jobs)
{
    if (!pool) {
        pm_pool_opts po = PM_POOL_OPTS_INIT;
        po.workers = jobs;
        int rc = pm_pool_new(&po, &pool);
        if (rc)
            return rc;
        pl->own_pool = 1;
    }
    pl->pool = pool;
    pl->ex = pm__pool_exec(pool);
    if (!(pl->ex->ops->caps & PM__EXEC_SHARED_MEMORY)) {
        if (pl->own_pool)
            pm_pool_free(pool);
        return -EINVAL;          /* stages share the pipeline's memory */
    }
    return 0;
}

/* Files in flight by default: PL_DEFAULT_FILES, but at most what the
 * descriptor limit allows at three descriptors a file. */
static unsigned default_max_files(unsigned max_chunks)
{
    unsigned n = PL_DEFAULT_FILES > max_chunks + 8 ? PL_DEFAULT_FILES : max_chunks + 8;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;    /* the soft limit up to the hard one, as Go's */
        setrlimit(RLIMIT_NOFILE, &rl);/* runtime does: always allowed */
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t fit = rl.rlim_cur > 64 ? (rl.rlim_cur - 32) / 4 : 2;
        if (fit < n)
            n = fit < 2 ? 2 : (unsigned)fit;
    }
    return n;
}

static int check_opts(const pm_pipeline_opts *o)
{
    if (o->jobs < 0 || o->overlap > (o->chunk_size ? o->chunk_size : PL_DEFAULT_CHUNK))
        return -EINVAL;
    if (o->frame && o->overlap)
        return -EINVAL;
    if (o->sink == PM_SINK_FILES && !o->out_path)
        return -EINVAL;
    if (o->sink == PM_SINK_FD && o->out_fd < 0)
        return -EINVAL;
    if (o->sink > PM_SINK_FILES)
        return -EINVAL;
    return 0;
}

static void fill_defaults(pm_pipeline_opts *o, unsigned jobs)
{
    if (!o->chunk_size)
        o->chunk_size = PL_DEFAULT_CHUNK;
    if (!o->carry_size)
        o->carry_size = o->chunk_size;
    if (!o->max_chunks)
        o->max_chunks = 4 * jobs + 2;
    if (o->max_chunks < 2)
        o->max_chunks = 2;
    if (!o->max_files)
        o->max_files = default_max_files(o->max_chunks);
    if (o->progress_interval <= 0)
        o->progress_interval = 0.25;
}

int pm_pipeline_new(const pm_pipeline_opts *opts, pm_pipeline **pl_ret)
{
    pm_pipeline_opts o = {0};
    if (opts)
        o = *opts;
    int rc = pl_ret ? check_opts(&o) : -EINVAL;
    if (rc)
        return rc;
    int jobs = o.pool ? pm_pool_workers(o.pool)
                      : pm_resolve_jobs(o.jobs);   /* 0: PMAP_JOBS or the CPUs */
    if (jobs < 0)
        return jobs;
    if (o.pool && o.jobs && o.jobs != jobs)
        return -EINVAL;                          /* the pool decides */
    pm_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl)
        return -ENOMEM;
    rc = pool_attach(pl, o.pool, jobs);
    if (rc) {
        free(pl);
        return rc;
    }
    pl->jobs = (unsigned)jobs;
    fill_defaults(&o, pl->jobs);
    pl->o = o;
    pthread_mutex_init(&pl->dq.lock, NULL);
    pthread_mutex_init(&pl->em.lock, NULL);
    pthread_cond_init(&pl->em.cond, NULL);
    pthread_mutex_init(&pl->fs.lock, NULL);
    pthread_mutex_init(&pl->ctl_lock, NULL);
    *pl_ret = pl;
    return 0;
}

void pm_pipeline_free(pm_pipeline *pl)
{
    if (!pl)
        return;
    pthread_mutex_destroy(&pl->dq.lock);
    pthread_mutex_destroy(&pl->em.lock);
    pthread_cond_destroy(&pl->em.cond);
    pthread_mutex_destroy(&pl->fs.lock);
    pthread_mutex_destroy(&pl->ctl_lock);
    if (pl->own_pool)
        pm_pool_free(pl->pool);
    free(pl);
}

int pm_pipeline_add_stage(pm_pipeline *pl, const char *name, pm_stage_mode mode,
                          pm_stage_fn fn, void *arg)
{
    return pm_pipeline_add_stage_kind(pl, name, mode, PM_STAGE_CPU, fn, arg);
}

int pm_pipeline_add_stage_kind(pm_pipeline *pl, const char *name, pm_stage_mode mode,
                               pm_stage_kind kind, pm_stage_fn fn, void *arg)
{
    if (!pl || !fn || (mode != PM_STAGE_PARALLEL && mode != PM_STAGE_SERIAL_IN_ORDER) ||
        (kind != PM_STAGE_CPU && kind != PM_STAGE_BLOCKING && kind != PM_STAGE_ASYNC))
        return -EINVAL;
    if (atomic_load(&pl->running))
        return -EBUSY;
    if (pl->nstages == PL_MAX_STAGES)
        return -EINVAL;
    pl_stage *s = &pl->stages[pl->nstages++];
    snprintf(s->name, sizeof s->name, "%s", name ? name : "stage");
    s->mode = mode;
    s->kind = kind;
    s->fn = fn;
    s->arg = arg;
    return 0;
}

unsigned pm_pipeline_jobs(const pm_pipeline *pl)
{
    return pl ? pl->jobs : 0;
}

static void wake_loop(void *arg, ssize_t res)
{
    (void)arg;
    (void)res;
}

void pm_pipeline_cancel(pm_pipeline *pl)
{
    if (!pl)
        return;
    atomic_store(&pl->cancelled, 1);
    pm__pl_emit_wake(pl);
    pthread_mutex_lock(&pl->ctl_lock);
    if (pl->loop)
        pm_loop_post(pl->loop, wake_loop, NULL);
    pm__pl_kinds_cancel(pl);
    pthread_mutex_unlock(&pl->ctl_lock);
}

/* ---- failures and warnings ---- */

/* Sets f's first failure (err < 0) and its message; later ones are dropped. */
static int file_fail_v(pl_file *f, pm_reason reason, int err, const char *fmt, va_list ap)
{
    int zero = 0;
    if (err >= 0)
        err = -EIO;
    if (atomic_compare_exchange_strong(&f->status, &zero, err)) {
        f->fail_reason = reason;
        char *m = NULL;
        if (fmt && vasprintf(&m, fmt, ap) >= 0)
            f->message = m;
    }
    return err;
}

int pm__pl_file_fail(pl_file *f, pm_reason reason, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err = file_fail_v(f, reason, err, fmt, ap);
    va_end(ap);
    return err;
}

int pm_chunk_fail(pm_chunk *chunk, int err, const char *fmt, ...)
{
    pl_chunk *c = (pl_chunk *)chunk;
    va_list ap;
    va_start(ap, fmt);
    err = file_fail_v(c->file, PM_REASON_STAGE, err, fmt, ap);
    va_end(ap);
    return err;
}

void pm_file_warn(pm_file *file, const char *fmt, ...)
{
    pl_file *f = (pl_file *)file;
    char *m = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    free(f->warning);
    f->warning = m;
}

char *pm__pl_strdupf(const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* ---- tokens ---- */

static int tokens_new(pm_pipeline *pl)
{
    const pm_pipeline_opts *o = &pl->o;
    pl_tokens *t = &pl->tok;
    size_t carry = o->frame ? o->carry_size : 0;      /* framing's carried tail */
    size_t in_size = (o->overlap + carry + o->chunk_size + 63) & ~(size_t)63;
    size_t out_size = (o->out_size + 63) & ~(size_t)63;
    size_t st_size = (o->chunk_state_size + 63) & ~(size_t)63;
    size_t each = in_size + out_size + st_size;
    t->chunks = calloc(o->max_chunks, sizeof *t->chunks);
    t->arena = malloc(each * o->max_chunks);
    if (!t->chunks || !t->arena)
        return -ENOMEM;
    for (unsigned i = 0; i < o->max_chunks; i++) {
        pl_chunk *c = &t->chunks[i];
        c->in = t->arena + each * i;
        c->pub.out = o->out_size ? c->in + in_size : NULL;
        c->pub.state = st_size ? c->in + in_size + out_size : NULL;
        c->pub.out_cap = o->out_size;
        c->next = t->free;
        t->free = c;
    }
    return 0;
}

static void tokens_free(pm_pipeline *pl)
{
    free(pl->tok.chunks);
    free(pl->tok.arena);
    memset(&pl->tok, 0, sizeof pl->tok);
}

pl_chunk *pm__pl_token_get(pm_pipeline *pl, pl_file *f)
{
    pl_tokens *t = &pl->tok;
    pl_chunk *c = t->free;
    if (!c)
        return NULL;
    t->free = c->next;
    if (++t->live > t->peak)
        t->peak = t->live;
    c->file = f;
    c->pub.file = &f->pub;
    c->pub.out_len = 0;
    c->pub.out_elsewhere = 0;
    c->pub.value = 0;
    c->pub.prefix_len = 0;
    c->pub.last = 0;
    c->held = (pm__fifo){NULL, NULL};
    c->frame_tail = 0;
    c->map = NULL;
    if (c->pub.state)
        memset(c->pub.state, 0, pl->o.chunk_state_size);
    c->next = NULL;
    return c;
}

void pm__pl_token_put(pm_pipeline *pl, pl_chunk *c)
{
    pm__pl_map_put(c->map);          /* the last chunk of a window unmaps it */
    c->map = NULL;
    c->next = pl->tok.free;
    pl->tok.free = c;
    pl->tok.live--;
}

/* ---- the run ---- */

static void report_progress(pm_pipeline *pl)
{
    if (!pl->o.on_progress)
        return;
    pm_progress p = {
        .bytes_read = pl->stats.bytes_in,
        .bytes_written = pl->stats.bytes_out,
        .bytes_done = pl->bytes_done,
        .bytes_total = pl->bytes_total,
        .files_done = pl->stats.files_done,
        .files_failed = pl->stats.files_failed,
        .files_skipped = pl->stats.files_skipped,
        .elapsed = pm__now() - pl->t_start,
    };
    pl->o.on_progress(&p, pl->o.arg);
    pl->last_progress = pm__now();
}

static void on_tick(void *arg, ssize_t res)
{
    pm_pipeline *pl = arg;
    pl->tick_armed = 0;
    (void)res;
}

/* The periodic wake-up (progress, and the fallback for a worker's post
 * that could not be allocated). Returns 0 when it is armed. */
static int arm_tick(pm_pipeline *pl)
{
    if (pl->tick_armed)
        return 0;
    uint64_t ns = (uint64_t)(pl->o.progress_interval * 1e9);
    int64_t id = pm_loop_timer(pl->loop, ns, on_tick, pl);
    if (id < 0)
        return (int)id;
    pl->tick_armed = 1;
    pl->tick_id = id;
    return 0;
}

/* Every file was reported and every token came back. */
static int run_finished(const pm_pipeline *pl)
{
    return !pl->files.head && pl->tok.live == 0 &&
           (atomic_load(&pl->cancelled) || pl->src.done);
}

/* Takes what the workers handed back: pieces to write, ended steps. */
static void drain_done(pm_pipeline *pl)
{
    pm__node *p, *f;
    pm__pl_take_done(pl, &p, &f);
    while (p) {
        pm__node *next = p->next;
        pm__pl_handle_piece(pl, pm__container_of(p, pl_piece, node));
        p = next;
    }
    while (f) {
        pm__node *next = f->next;
        pm__pl_step_done(pl, pm__container_of(f, pl_file, done_node));
        f = next;
    }
}

static void step(pm_pipeline *pl)
{
    drain_done(pl);
    pm__pl_deliver_events(pl);    /* they bound how far the walk may go */
    if (atomic_load(&pl->cancelled)) {
        pm__pl_cancel_reads(pl);
        pm__pl_drop_retries(pl);
    } else {
        pm__pl_issue_reads(pl);
        pm__pl_open_files(pl);
        pm__pl_issue_reads(pl);
    }
    pm__pl_deliver_events(pl);
    if (pm__now() - pl->last_progress >= pl->o.progress_interval)
        report_progress(pl);
}

static int run_setup(pm_pipeline *pl)
{
    int rc = tokens_new(pl);
    size_t em = pl->o.out_size > pl->o.chunk_size ? pl->o.out_size : pl->o.chunk_size;
    if (!rc)
        rc = pm__pl_emit_pool_new(pl, 2 * pl->jobs + 2, em);
    pm_loop_opts lo = {
        .queue_depth = 2 * pl->o.max_chunks + 2 * pl->o.max_files + 16,
        .engine = (pm_loop_engine)pl->o.io_engine,
        .verbose = pl->o.verbose,
    };
    pm_loop *loop = NULL;
    if (!rc)
        rc = pm_loop_new(&lo, &loop);
    pthread_mutex_lock(&pl->ctl_lock);
    pl->loop = loop;
    pthread_mutex_unlock(&pl->ctl_lock);
    if (!rc) {
        pm_loop_hold(loop);       /* run_once waits for workers' posts too */
        pl->loop_held = 1;
    }
    if (!rc)
        rc = pm__pl_workers_start(pl);
    return rc;
}

static void run_teardown(pm_pipeline *pl)
{
    pm__pl_workers_stop(pl);
    if (pl->loop && pl->loop_held)
        pm_loop_release(pl->loop);
    pl->loop_held = 0;
    if (pl->loop && pl->tick_armed)
        pm_loop_cancel(pl->loop, pl->tick_id);
    while (pl->loop && pm_loop_pending(pl->loop) > 0)
        pm_loop_run_once(pl->loop, 1);
    pthread_mutex_lock(&pl->ctl_lock);
    pm_loop_free(pl->loop);
    pl->loop = NULL;
    pthread_mutex_unlock(&pl->ctl_lock);
    pm__pl_files_clear(pl);
    pm__pl_emit_pool_free(pl);
    tokens_free(pl);
    pm__pl_source_clear(&pl->src);
}

static void run_reset(pm_pipeline *pl, const char *const *paths, size_t n)
{
    static const char *const stdin_path[] = {"-"};
    memset(&pl->stats, 0, sizeof pl->stats);
    memset(&pl->files, 0, sizeof pl->files);
    memset(&pl->src, 0, sizeof pl->src);
    pl->first_error = 0;
    pl->src.paths = n ? paths : stdin_path;
    pl->src.n = n ? n : 1;
    pl->src.dirs = n ? pl->o.operand_dirs : NULL;
    pl->src.at_fd = -1;
    pl->bytes_total = 0;
    pl->bytes_done = 0;
    pl->fs.n = 0;                 /* mounts may have changed since the last run */
    pl->tick_armed = 0;
    pl->as_root = geteuid() == 0;
    pl->t_start = pm__now();
    pl->cpu_start = cpu_now();
    pl->last_progress = pl->t_start;
}

/* Runs the loop until every file is reported; on a loop failure, cancels
 * and keeps draining (chunks must come back before teardown). */
static int run_loop(pm_pipeline *pl)
{
    for (;;) {
        step(pl);
        if (run_finished(pl))
            return 0;
        /* Without the timer (no memory for it) a worker's lost post could
         * leave us asleep for good: poll instead, a millisecond apart. */
        int wait = arm_tick(pl) == 0;
        int r = pm_loop_run_once(pl->loop, wait);
        if (!wait && r == 0)
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        if (r < 0 && r != -EINTR && r != -ETIMEDOUT) {
            atomic_store(&pl->cancelled, 1);
            while (!run_finished(pl) && pm_loop_run_once(pl->loop, 1) >= 0)
                step(pl);
            return r;
        }
    }
}

int pm_pipeline_run(pm_pipeline *pl, const char *const *paths, size_t n,
                    pm_pipeline_stats *stats)
{
    if (!pl || (n && !paths) || pl->nstages == 0)
        return -EINVAL;
    if (pm__exec_on_worker(pl->ex))
        return -EDEADLK;            /* its chunks would wait for this worker */
    if (atomic_load(&pl->ex->state) != PM__OPEN)
        return -EINVAL;             /* the pool was closed or terminated */
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pl->running, &expected, 1))
        return -EBUSY;
    run_reset(pl, paths, n);
    int rc = run_setup(pl);
    if (rc == 0)
        rc = run_loop(pl);
    report_progress(pl);
    pl->stats.peak_live_chunks = pl->tok.peak;
    run_teardown(pl);
    pl->stats.wall_seconds = pm__now() - pl->t_start;
    pl->stats.cpu_seconds = cpu_now() - pl->cpu_start;
    if (stats)
        *stats = pl->stats;
    int cancelled = atomic_exchange(&pl->cancelled, 0);  /* consumed by this run */
    atomic_store(&pl->running, 0);
    if (rc)
        return rc;
    if (cancelled && !pl->first_error)
        return -ECANCELED;
    return pl->first_error;
}

void pm_pipeline_stats_add(pm_pipeline_stats *a, const pm_pipeline_stats *b)
{
    a->bytes_in += b->bytes_in;
    a->bytes_out += b->bytes_out;
    a->files_done += b->files_done;
    a->files_failed += b->files_failed;
    a->files_skipped += b->files_skipped;
    a->files_warned += b->files_warned;
    a->chunks += b->chunks;
    a->wall_seconds += b->wall_seconds;
    a->cpu_seconds += b->cpu_seconds;
    a->syncs += b->syncs;
    a->bytes_mapped += b->bytes_mapped;
    if (b->peak_live_chunks > a->peak_live_chunks)
        a->peak_live_chunks = b->peak_live_chunks;
}
