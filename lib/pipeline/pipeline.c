/* pipeline.c - the pipeline engine's I/O thread: source, reads, writes,
 * commits and events.
 *
 * Threads and queues:
 *   - The calling thread of pm_pipeline_run() is the I/O thread. It owns a
 *     pm_loop (io_uring, or the thread fallback) and every file's descriptors.
 *     It walks the source lazily, opens files, issues chunk reads, hands read
 *     chunks to the workers (pm__pl_dispatch), writes the pieces the workers
 *     give back, commits outputs and delivers events in source order.
 *   - `jobs` OpenMP worker threads run the stages (pipeline_worker.c). They
 *     give pieces back through the done queue and wake the I/O thread with
 *     pm_loop_post(); a periodic timer also wakes it (progress, and a
 *     fallback if a post could not be allocated).
 *
 * Memory: max_chunks tokens, each an input buffer (overlap + chunk_size) and
 * an output buffer (out_size), allocated once per run. A token is taken for
 * each read and returned when the chunk retired and its output was written,
 * so a slow writer stops the reader (backpressure). pm_chunk_emit() draws
 * from a second, fixed pool. Files open at once are capped by max_files.
 *
 * Reading: a regular file's chunk reads are all issued at once as tokens
 * allow (pread at offsets, each with up to `overlap` preceding bytes read
 * again from the page cache as its prefix). A stream (stdin, a FIFO) is read
 * one chunk at a time and a chunk is held until the next read tells whether
 * it was the last; the held chunk's tail is copied as the next one's prefix.
 * After the last chunk, a regular file's size and mtime are checked again:
 * a file that changed while being read fails.
 *
 * Writing: PM_SINK_FILES writes pieces at their offsets into a temporary
 * output (many in flight), then commits it (pipeline_sink.c): fsync when the
 * input is to be removed, link into place, fsync the directory, remove the
 * input. PM_SINK_FD processes one file at a time and writes its pieces in
 * order at the descriptor's position.
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

double pm__pl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

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

int pm_pipeline_new(const pm_pipeline_opts *opts, pm_pipeline **pl_ret)
{
    pm_pipeline_opts o = {0};
    if (opts)
        o = *opts;
    if (!pl_ret || o.jobs < 0 || o.overlap > (o.chunk_size ? o.chunk_size : PL_DEFAULT_CHUNK))
        return -EINVAL;
    if (o.sink == PM_SINK_FILES && !o.out_path)
        return -EINVAL;
    if (o.sink == PM_SINK_FD && o.out_fd < 0)
        return -EINVAL;
    if (o.sink > PM_SINK_FILES)
        return -EINVAL;
    int jobs = o.pool ? pm_pool_workers(o.pool)
                      : pm_resolve_jobs(o.jobs);   /* 0: PMAP_JOBS or the CPUs */
    if (jobs < 0)
        return jobs;
    if (o.pool && o.jobs && o.jobs != jobs)
        return -EINVAL;                          /* the pool decides */
    pm_pipeline *pl = calloc(1, sizeof *pl);
    if (!pl)
        return -ENOMEM;
    int rc = pool_attach(pl, o.pool, jobs);
    if (rc) {
        free(pl);
        return rc;
    }
    if (!o.chunk_size)
        o.chunk_size = PL_DEFAULT_CHUNK;
    pl->jobs = (unsigned)jobs;
    if (!o.max_chunks)
        o.max_chunks = 4 * pl->jobs + 2;
    if (o.max_chunks < 2)
        o.max_chunks = 2;
    if (!o.max_files)
        o.max_files = o.max_chunks + 8;
    if (o.progress_interval <= 0)
        o.progress_interval = 0.25;
    pl->o = o;
    pthread_mutex_init(&pl->dq_lock, NULL);
    pthread_mutex_init(&pl->em_lock, NULL);
    pthread_cond_init(&pl->em_cond, NULL);
    pthread_mutex_init(&pl->ctl_lock, NULL);
    *pl_ret = pl;
    return 0;
}

void pm_pipeline_free(pm_pipeline *pl)
{
    if (!pl)
        return;
    pthread_mutex_destroy(&pl->dq_lock);
    pthread_mutex_destroy(&pl->em_lock);
    pthread_cond_destroy(&pl->em_cond);
    pthread_mutex_destroy(&pl->ctl_lock);
    if (pl->own_pool)
        pm_pool_free(pl->pool);
    free(pl);
}

int pm_pipeline_add_stage(pm_pipeline *pl, const char *name, pm_stage_mode mode,
                          pm_stage_fn fn, void *arg)
{
    if (!pl || !fn || (mode != PM_STAGE_PARALLEL && mode != PM_STAGE_SERIAL_IN_ORDER))
        return -EINVAL;
    if (atomic_load(&pl->running))
        return -EBUSY;
    if (pl->nstages == PL_MAX_STAGES)
        return -EINVAL;
    pl_stage *s = &pl->stages[pl->nstages++];
    snprintf(s->name, sizeof s->name, "%s", name ? name : "stage");
    s->mode = mode;
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
    pthread_mutex_unlock(&pl->ctl_lock);
}

/* Sets f's first failure (err < 0) and its message; later ones are dropped. */
static int file_fail_v(pl_file *f, int err, const char *fmt, va_list ap)
{
    int zero = 0;
    if (err >= 0)
        err = -EIO;
    if (atomic_compare_exchange_strong(&f->status, &zero, err) && fmt) {
        char *m = NULL;
        if (vasprintf(&m, fmt, ap) >= 0)
            f->message = m;
    }
    return err;
}

static int file_fail(pl_file *f, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int file_fail(pl_file *f, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    file_fail_v(f, err, fmt, ap);
    va_end(ap);
    return err;
}

int pm_chunk_fail(pm_chunk *chunk, int err, const char *fmt, ...)
{
    pl_chunk *c = (pl_chunk *)chunk;
    va_list ap;
    va_start(ap, fmt);
    err = file_fail_v(c->file, err, fmt, ap);
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

/* ---- tokens ---- */

static int tokens_new(pm_pipeline *pl)
{
    const pm_pipeline_opts *o = &pl->o;
    size_t in_size = (o->overlap + o->chunk_size + 63) & ~(size_t)63;
    size_t out_size = (o->out_size + 63) & ~(size_t)63;
    pl->chunks = calloc(o->max_chunks, sizeof *pl->chunks);
    pl->arena = malloc((in_size + out_size) * o->max_chunks);
    if (!pl->chunks || !pl->arena)
        return -ENOMEM;
    for (unsigned i = 0; i < o->max_chunks; i++) {
        pl_chunk *c = &pl->chunks[i];
        c->in = pl->arena + (in_size + out_size) * i;
        c->pub.out = o->out_size ? c->in + in_size : NULL;
        c->pub.out_cap = o->out_size;
        c->next = pl->free_chunks;
        pl->free_chunks = c;
    }
    return 0;
}

static void tokens_free(pm_pipeline *pl)
{
    free(pl->chunks);
    free(pl->arena);
    pl->chunks = NULL;
    pl->arena = NULL;
    pl->free_chunks = NULL;
}

static pl_chunk *token_get(pm_pipeline *pl, pl_file *f)
{
    pl_chunk *c = pl->free_chunks;
    if (!c)
        return NULL;
    pl->free_chunks = c->next;
    if (++pl->live_chunks > pl->stats.peak_live_chunks)
        pl->stats.peak_live_chunks = pl->live_chunks;
    c->file = f;
    c->pub.file = &f->pub;
    c->pub.out_len = 0;
    c->pub.value = 0;
    c->pub.prefix_len = 0;
    c->pub.last = 0;
    c->next = NULL;
    return c;
}

static void token_put(pm_pipeline *pl, pl_chunk *c)
{
    c->next = pl->free_chunks;
    pl->free_chunks = c;
    pl->live_chunks--;
}

/* ---- files ---- */

static pl_file *file_new(pm_pipeline *pl, char *path)
{
    pl_file *f = calloc(1, sizeof *f);
    if (!f) {
        free(path);
        return NULL;
    }
    f->pl = pl;
    f->path = path;
    f->pub.path = path;
    f->pub.index = pl->files_seen++;
    f->fd = f->out_fd = f->dir_fd = -1;
    f->stream_op = -1;
    pthread_mutex_init(&f->lock, NULL);
    if (pl->files_tail)
        pl->files_tail->next = f;
    else
        pl->files_head = f;
    pl->files_tail = f;
    return f;
}

static void file_free(pl_file *f)
{
    /* A worker may still be inside f->lock after queueing f's last piece:
     * taking the lock once waits for it to leave. */
    pthread_mutex_lock(&f->lock);
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_destroy(&f->lock);
    free(f->path);
    free(f->out_path);
    free(f->tmp_path);
    free(f->message);
    free(f->warning);
    free(f);
}

/* Marks f finished with an event; its descriptors are released. */
static void file_finish(pm_pipeline *pl, pl_file *f, int kind, int err, char *msg)
{
    if (kind == PM_EVENT_DONE && f->warning) {
        kind = PM_EVENT_WARNING;
        msg = f->warning;
        f->warning = NULL;
    }
    if (msg) {
        free(f->message);
        f->message = msg;
    }
    f->event_kind = kind;
    f->event_err = err;
    if (f->phase == PL_ACTIVE || f->phase == PL_COMMITTING)
        pl->files_open--;
    f->phase = PL_FINISHED;
    if (kind == PM_EVENT_ERROR)
        pm__pl_discard_output(f);
    else if (f->out_fd >= 0) {
        close(f->out_fd);
        f->out_fd = -1;
    }
    if (f->dir_fd >= 0)
        close(f->dir_fd);
    f->dir_fd = -1;
    pm__pl_close_input(pl, f);
    if (pl->reading == f)
        pl->reading = NULL;
    if (kind == PM_EVENT_ERROR && !pl->first_error)
        pl->first_error = err ? err : -EIO;
    if (kind == PM_EVENT_ERROR && (pl->o.flags & PM_PL_FAIL_FAST))
        atomic_store(&pl->cancelled, 1);
}

static void file_fail_finish(pm_pipeline *pl, pl_file *f)
{
    int err = atomic_load(&f->status);
    if (!err)
        err = -ECANCELED;
    file_finish(pl, f, PM_EVENT_ERROR, err, NULL);
}

static void deliver_events(pm_pipeline *pl)
{
    pl_file *f;
    while ((f = pl->files_head) && f->phase == PL_FINISHED) {
        pl->files_head = f->next;
        if (!pl->files_head)
            pl->files_tail = NULL;
        pm_pipeline_stats *st = &pl->stats;
        switch (f->event_kind) {
        case PM_EVENT_DONE:    st->files_done++; break;
        case PM_EVENT_SKIP:    st->files_skipped++; break;
        case PM_EVENT_ERROR:   st->files_failed++; break;
        case PM_EVENT_WARNING: st->files_done++; st->files_warned++; break;
        }
        if (pl->o.on_event) {
            pm_event ev = {
                .kind = f->event_kind,
                .path = f->path,
                .out_path = f->event_kind == PM_EVENT_DONE || f->event_kind == PM_EVENT_WARNING
                                ? f->out_path : NULL,
                .err = f->event_err,
                .message = f->message ? f->message
                           : f->event_err ? pm_strerror(f->event_err) : "",
                .file = f->opened ? &f->pub : NULL,
                .incidental = f->event_kind == PM_EVENT_SKIP && f->incidental,
            };
            pl->o.on_event(&ev, pl->o.arg);
        }
        file_free(f);
    }
}

/* ---- reading ---- */

static void check_complete(pm_pipeline *pl, pl_file *f);

static void end_reading(pm_pipeline *pl, pl_file *f)
{
    f->read_eof = 1;
    f->chunks_total = f->reads_issued;
    if (pl->reading == f)
        pl->reading = NULL;
}

static void dispatch(pm_pipeline *pl, pl_chunk *c)
{
    pl->stats.chunks++;
    pm__pl_dispatch(pl, c);
}

static void on_file_read(void *arg, ssize_t res)
{
    pl_chunk *c = arg;
    pl_file *f = c->file;
    pm_pipeline *pl = f->pl;
    size_t want = c->pub.prefix_len + c->pub.len;
    f->reads_inflight--;
    if (res < 0) {
        file_fail(f, (int)res, "read error: %s", pm_strerror((int)res));
        end_reading(pl, f);
    } else if ((size_t)res != want) {
        file_fail(f, -EIO, "file changed size while being read");
        end_reading(pl, f);
    } else {
        pl->stats.bytes_in += c->pub.len;
        f->pub.bytes_in += c->pub.len;
    }
    dispatch(pl, c);
}

/* Issues the next chunk read of regular file f. Returns 0 when f has no
 * more to read. */
static int read_regular(pm_pipeline *pl, pl_file *f, pl_chunk *c)
{
    const pm_pipeline_opts *o = &pl->o;
    uint64_t size = (uint64_t)f->pub.st.st_size, off = f->next_off;
    size_t len = size - off < o->chunk_size ? (size_t)(size - off) : o->chunk_size;
    size_t pfx = off < o->overlap ? (size_t)off : o->overlap;
    c->pub.seq = f->reads_issued++;
    c->pub.offset = off;
    c->pub.data = c->in + o->overlap;
    c->pub.len = len;
    c->pub.prefix_len = pfx;
    c->pub.last = off + len == size;
    f->next_off += len;
    if (c->pub.last)
        end_reading(pl, f);
    if (len == 0) {                 /* an empty file: one empty last chunk */
        dispatch(pl, c);
        return 0;
    }
    int64_t id = pm_loop_read(pl->loop, f->fd, c->in + o->overlap - pfx, pfx + len,
                              off - pfx, on_file_read, c);
    if (id < 0) {
        file_fail(f, (int)id, "cannot queue read: %s", pm_strerror((int)id));
        end_reading(pl, f);
        dispatch(pl, c);
        return 0;
    }
    f->reads_inflight++;
    return !c->pub.last;
}

static void on_stream_read(void *arg, ssize_t res)
{
    pl_chunk *c = arg;
    pl_file *f = c->file;
    pm_pipeline *pl = f->pl;
    pl_chunk *held = f->held;
    f->reads_inflight--;
    f->stream_op = -1;
    f->held = NULL;
    if (res > 0 && !atomic_load(&pl->cancelled)) {
        c->pub.len = (size_t)res;
        pl->stats.bytes_in += (uint64_t)res;
        f->pub.bytes_in += (uint64_t)res;
        f->next_off += (uint64_t)res;
        if (held) {
            size_t pfx = held->pub.len < pl->o.overlap ? held->pub.len : pl->o.overlap;
            memcpy(c->in + pl->o.overlap - pfx, held->pub.data + held->pub.len - pfx, pfx);
            c->pub.prefix_len = pfx;
            dispatch(pl, held);
        }
        if ((size_t)res < pl->o.chunk_size) {   /* full reads are short only at EOF */
            c->pub.last = 1;
            end_reading(pl, f);
            dispatch(pl, c);
        } else {
            f->held = c;
        }
        return;
    }
    if (res < 0 && res != -ECANCELED)
        file_fail(f, (int)res, "read error: %s", pm_strerror((int)res));
    if (held) {                        /* EOF (or failure) after a full chunk */
        held->pub.last = 1;
        f->reads_issued--;             /* c's seq is not used */
        token_put(pl, c);
        end_reading(pl, f);
        dispatch(pl, held);
    } else {                           /* empty stream, or failure at once */
        c->pub.len = 0;
        c->pub.last = 1;
        end_reading(pl, f);
        dispatch(pl, c);
    }
}

static int read_stream(pm_pipeline *pl, pl_file *f, pl_chunk *c)
{
    c->pub.seq = f->reads_issued++;
    c->pub.offset = f->next_off;
    c->pub.data = c->in + pl->o.overlap;
    c->pub.len = 0;
    int64_t id = pm_loop_read(pl->loop, f->fd, c->in + pl->o.overlap, pl->o.chunk_size,
                              PM_LOOP_CUR, on_stream_read, c);
    if (id < 0) {
        f->reads_inflight++;
        on_stream_read(c, id);
        return 0;
    }
    f->stream_op = id;
    f->reads_inflight++;
    return 1;
}

/* Issues reads for the file being read while tokens last. */
static void issue_reads(pm_pipeline *pl)
{
    pl_file *f;
    while ((f = pl->reading) && !atomic_load(&pl->cancelled)) {
        if (atomic_load(&f->status)) {
            pl_chunk *held = f->held;
            if (held) {                    /* failed: the held chunk ends it */
                f->held = NULL;
                held->pub.last = 1;
                dispatch(pl, held);
            }
            if (f->stream && f->reads_inflight)
                break;
            end_reading(pl, f);
            check_complete(pl, f);
            continue;
        }
        if (f->stream && f->reads_inflight)
            return;
        pl_chunk *c = token_get(pl, f);
        if (!c)
            return;
        if (f->stream)
            read_stream(pl, f, c);
        else
            read_regular(pl, f, c);
    }
}

/* ---- opening ---- */

/* Opens f for reading (and its output); on failure f is finished. */
static void file_open(pm_pipeline *pl, pl_file *f)
{
    char *msg = NULL;
    if (pl->o.accept && strcmp(f->path, "-") != 0) {
        char why[256] = "";
        if (pl->o.accept(f->path, why, sizeof why, pl->o.arg) == PM_PL_SKIP) {
            f->incidental = f->walked;
            file_finish(pl, f, PM_EVENT_SKIP, -EINVAL, strdup(why[0] ? why : "skipped"));
            return;
        }
    }
    int rc = pm__pl_open_input(pl, f, &msg);
    if (rc == 0 && f->stream && pl->o.sink == PM_SINK_FILES && !strcmp(f->path, "-")) {
        rc = -EINVAL;
        msg = strdup("standard input needs an output stream (use -c)");
    }
    if (rc < 0) {
        pm__pl_close_input(pl, f);
        file_finish(pl, f, PM_EVENT_ERROR, rc, msg);
        return;
    }
    f->opened = 1;
    f->phase = PL_ACTIVE;
    if (!f->stream)
        pl->bytes_total += (uint64_t)f->pub.st.st_size;
    pl->files_open++;
    if (pl->o.sink == PM_SINK_FILES) {
        rc = pm__pl_open_output(pl, f, &msg);
        if (rc != 0) {
            f->incidental = rc == PM_PL_SKIP && f->walked && !f->out_path;
            file_finish(pl, f, rc == PM_PL_SKIP ? PM_EVENT_SKIP : PM_EVENT_ERROR,
                        rc == PM_PL_SKIP ? -EEXIST : rc, msg);
            return;
        }
    }
    if (pl->o.file_begin && (rc = pl->o.file_begin(&f->pub, pl->o.arg)) != 0) {
        file_finish(pl, f, PM_EVENT_ERROR, rc < 0 ? rc : -EIO, NULL);
        return;
    }
    pl->reading = f;
}

static int may_open_file(pm_pipeline *pl)
{
    if (pl->reading || atomic_load(&pl->cancelled) || !pl->free_chunks)
        return 0;
    if (pl->files_open >= pl->o.max_files)
        return 0;
    if (pl->o.sink == PM_SINK_FD && pl->files_open > 0)
        return 0;                 /* one file at a time, in order */
    return 1;
}

/* Takes paths from the source until one is being read or none may open. */
static void open_files(pm_pipeline *pl)
{
    while (may_open_file(pl)) {
        int kind, err, walked, incidental;
        char *msg;
        char *path = pm__pl_source_next(pl, &kind, &err, &msg, &walked, &incidental);
        if (!path)
            return;
        pl_file *f = file_new(pl, path);
        if (!f) {
            free(msg);
            pl->first_error = -ENOMEM;
            atomic_store(&pl->cancelled, 1);
            return;
        }
        f->walked = walked;
        f->incidental = incidental;
        if (kind != PM_EVENT_DONE)
            file_finish(pl, f, kind, err, msg);
        else
            file_open(pl, f);
        if (pl->files_seen - pl->stats.files_done - pl->stats.files_skipped -
            pl->stats.files_failed > 4u * pl->o.max_files)
            return;               /* let events drain before walking further */
    }
}

/* ---- writing ---- */

static void piece_release(pm_pipeline *pl, pl_piece *p)
{
    if (p->chunk)
        token_put(pl, p->chunk);
    else
        pm__pl_emit_put(pl, p);
}

static void fd_pump(pm_pipeline *pl, pl_file *f);

static void on_write(void *arg, ssize_t res)
{
    pl_piece *p = arg;
    pl_file *f = p->file;
    pm_pipeline *pl = f->pl;
    f->writes_inflight--;
    if (res >= 0 && (size_t)res != p->len)
        res = -EIO;                      /* full writes: anything else is a fault */
    if (res < 0) {
        file_fail(f, (int)res, "write error: %s", pm_strerror((int)res));
        if (pl->o.sink == PM_SINK_FD) {   /* the shared output is broken */
            if (!pl->first_error)
                pl->first_error = (int)res;
            atomic_store(&pl->cancelled, 1);
        }
    } else {
        pl->stats.bytes_out += p->len;
        f->pub.bytes_out += p->len;
    }
    piece_release(pl, p);
    if (pl->o.sink == PM_SINK_FD)
        fd_pump(pl, f);
    check_complete(pl, f);
}

static void write_piece(pm_pipeline *pl, pl_piece *p, int fd, uint64_t off)
{
    pl_file *f = p->file;
    int64_t id = pm_loop_write(pl->loop, fd, p->buf, p->len, off, on_write, p);
    f->writes_inflight++;
    if (id < 0)
        on_write(p, id);
}

/* FD sink: one write at a time, in order, at the descriptor's position. */
static void fd_pump(pm_pipeline *pl, pl_file *f)
{
    pl_piece *p = f->fd_head;
    if (!p || f->writes_inflight)
        return;
    f->fd_head = p->next;
    if (!f->fd_head)
        f->fd_tail = NULL;
    if (atomic_load(&f->status) || atomic_load(&pl->cancelled)) {
        piece_release(pl, p);
        fd_pump(pl, f);
        return;
    }
    write_piece(pl, p, pl->o.out_fd, PM_LOOP_CUR);
}

static void handle_piece(pm_pipeline *pl, pl_piece *p)
{
    pl_file *f = p->file;
    if (p->chunk) {
        f->chunks_retired++;
        pl->bytes_done += p->chunk->pub.len;
    }
    int keep = p->len > 0 && pl->o.sink != PM_SINK_NONE &&
               !atomic_load(&f->status) && !atomic_load(&pl->cancelled);
    if (!keep) {
        piece_release(pl, p);
    } else if (pl->o.sink == PM_SINK_FILES) {
        write_piece(pl, p, f->out_fd, p->off);
    } else {
        p->next = NULL;
        if (f->fd_tail)
            f->fd_tail->next = p;
        else
            f->fd_head = p;
        f->fd_tail = p;
        fd_pump(pl, f);
    }
    check_complete(pl, f);
}

static void drain_done(pm_pipeline *pl)
{
    pl_piece *p = pm__pl_take_done(pl);
    while (p) {
        pl_piece *next = p->next;
        handle_piece(pl, p);
        p = next;
    }
}

/* ---- completing a file ---- */

static int must_sync(const pm_pipeline *pl)
{
    return (pl->o.flags & PM_PL_REMOVE_INPUT) && !(pl->o.flags & PM_PL_NO_SYNC);
}

static void remove_input(pm_pipeline *pl, pl_file *f)
{
    if ((pl->o.flags & PM_PL_REMOVE_INPUT) && strcmp(f->path, "-") != 0 &&
        unlink(f->path) < 0) {
        file_finish(pl, f, PM_EVENT_WARNING, -errno,
                    pm__pl_strdupf("output written, but the input could not be removed: %s",
                                   strerror(errno)));
        return;
    }
    file_finish(pl, f, PM_EVENT_DONE, 0, NULL);
}

static void on_dir_synced(void *arg, ssize_t res)
{
    pl_file *f = arg;
    pm_pipeline *pl = f->pl;
    f->writes_inflight--;
    if (res < 0 && res != -EINVAL)     /* some filesystems cannot sync directories */
        file_finish(pl, f, PM_EVENT_WARNING, (int)res,
                    pm__pl_strdupf("output written, input kept: cannot sync directory: %s",
                                   pm_strerror((int)res)));
    else
        remove_input(pl, f);
}

static void commit_link(pm_pipeline *pl, pl_file *f)
{
    char *msg;
    int rc = pm__pl_link_output(pl, f, &msg);
    if (rc < 0) {
        file_finish(pl, f, PM_EVENT_ERROR, rc, msg);
        return;
    }
    if (!(pl->o.flags & PM_PL_REMOVE_INPUT)) {
        file_finish(pl, f, PM_EVENT_DONE, 0, NULL);
        return;
    }
    if (!must_sync(pl)) {
        remove_input(pl, f);
        return;
    }
    f->writes_inflight++;
    int64_t id = pm_loop_fsync(pl->loop, f->dir_fd, 0, on_dir_synced, f);
    if (id < 0)
        on_dir_synced(f, id);
}

static void on_out_synced(void *arg, ssize_t res)
{
    pl_file *f = arg;
    pm_pipeline *pl = f->pl;
    f->writes_inflight--;
    if (res < 0)
        file_finish(pl, f, PM_EVENT_ERROR, (int)res,
                    pm__pl_strdupf("cannot sync output: %s", pm_strerror((int)res)));
    else if (atomic_load(&pl->cancelled))
        file_finish(pl, f, PM_EVENT_ERROR, -ECANCELED, NULL);
    else
        commit_link(pl, f);
}

/* The input must look as it did when opened: same size and mtime. */
static int input_unchanged(pl_file *f)
{
    struct stat st;
    if (f->stream)
        return 1;
    if (fstat(f->fd, &st) < 0)
        return 0;
    return st.st_size == f->pub.st.st_size &&
           st.st_mtim.tv_sec == f->pub.st.st_mtim.tv_sec &&
           st.st_mtim.tv_nsec == f->pub.st.st_mtim.tv_nsec;
}

static void check_complete(pm_pipeline *pl, pl_file *f)
{
    if (f->phase != PL_ACTIVE || !f->read_eof || f->reads_inflight ||
        f->chunks_retired != f->chunks_total || f->writes_inflight || f->fd_head)
        return;
    if (!atomic_load(&f->status) && !input_unchanged(f))
        file_fail(f, -EIO, "file changed while being read");
    if (atomic_load(&pl->cancelled) && !atomic_load(&f->status))
        file_fail(f, -ECANCELED, "cancelled");
    int status = atomic_load(&f->status);
    if (pl->o.file_end) {         /* exactly once per file that began */
        int rc = pl->o.file_end(&f->pub, status, pl->o.arg);
        if (!status && rc)
            file_fail(f, rc, NULL);
    }
    if (atomic_load(&f->status)) {
        file_fail_finish(pl, f);
        return;
    }
    if (pl->o.sink != PM_SINK_FILES) {
        file_finish(pl, f, PM_EVENT_DONE, 0, NULL);
        return;
    }
    f->phase = PL_COMMITTING;
    if (!must_sync(pl)) {
        commit_link(pl, f);
        return;
    }
    f->writes_inflight++;
    int64_t id = pm_loop_fsync(pl->loop, f->out_fd, 0, on_out_synced, f);
    if (id < 0)
        on_out_synced(f, id);
}

/* ---- the run ---- */

static void report_progress(pm_pipeline *pl)
{
    if (!pl->o.on_progress)
        return;
    pm_progress p = {
        .bytes_read = pl->stats.bytes_in,
        .bytes_written = pl->stats.bytes_out,
        .files_done = pl->stats.files_done,
        .files_failed = pl->stats.files_failed,
        .files_skipped = pl->stats.files_skipped,
        .elapsed = pm__pl_now() - pl->t_start,
    };
    p.bytes_total = pl->bytes_total;
    p.bytes_done = pl->bytes_done;
    pl->o.on_progress(&p, pl->o.arg);
    pl->last_progress = pm__pl_now();
}

static void on_tick(void *arg, ssize_t res)
{
    pm_pipeline *pl = arg;
    pl->tick_armed = 0;
    (void)res;
}

static void arm_tick(pm_pipeline *pl)
{
    if (pl->tick_armed)
        return;
    uint64_t ns = (uint64_t)(pl->o.progress_interval * 1e9);
    int64_t id = pm_loop_timer(pl->loop, ns, on_tick, pl);
    if (id >= 0) {
        pl->tick_armed = 1;
        pl->tick_id = id;
    }
}

/* Everything that is neither a read nor a file is done: nothing is left. */
static int run_finished(const pm_pipeline *pl)
{
    return !pl->files_head && pl->live_chunks == 0 &&
           (atomic_load(&pl->cancelled) || pl->src_done);
}

/* Cancellation: stop reading; chunks in flight drain through the workers
 * (who skip the stages) and files finish as cancelled. */
static void cancel_reads(pm_pipeline *pl)
{
    for (pl_file *f = pl->files_head; f; f = f->next) {
        if (f->phase != PL_ACTIVE)
            continue;
        if (f->stream_op >= 0)
            pm_loop_cancel(pl->loop, f->stream_op);
        if (!f->read_eof && !(f->stream && f->reads_inflight)) {
            pl_chunk *held = f->held;
            if (held) {
                f->held = NULL;
                held->pub.last = 1;
                dispatch(pl, held);
            }
            end_reading(pl, f);
        }
        check_complete(pl, f);
    }
}

static void step(pm_pipeline *pl)
{
    drain_done(pl);
    if (atomic_load(&pl->cancelled)) {
        cancel_reads(pl);
    } else {
        issue_reads(pl);
        open_files(pl);
        issue_reads(pl);
        if (!pl->reading && !pl->src.dir && pl->src.next == pl->src.n)
            pl->src_done = 1;
    }
    deliver_events(pl);
    if (pm__pl_now() - pl->last_progress >= pl->o.progress_interval)
        report_progress(pl);
}

static int run_setup(pm_pipeline *pl)
{
    int rc = tokens_new(pl);
    size_t em = pl->o.out_size > pl->o.chunk_size ? pl->o.out_size : pl->o.chunk_size;
    if (!rc)
        rc = pm__pl_emit_pool_new(pl, pl->jobs + 2, em);
    pm_loop_opts lo = {
        .queue_depth = 2 * pl->o.max_chunks + 16,
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
    pm__pl_emit_pool_free(pl);
    tokens_free(pl);
    pm__pl_source_clear(&pl->src);
}

static void run_reset(pm_pipeline *pl, const char *const *paths, size_t n)
{
    static const char *const stdin_path[] = {"-"};
    memset(&pl->stats, 0, sizeof pl->stats);
    pl->first_error = 0;
    pl->src.paths = n ? paths : stdin_path;
    pl->src.n = n ? n : 1;
    pl->src.next = 0;
    pl->src_done = 0;
    pl->files_seen = 0;
    pl->files_open = 0;
    pl->live_chunks = 0;
    pl->bytes_total = 0;
    pl->bytes_done = 0;
    pl->tick_armed = 0;
    pl->as_root = geteuid() == 0;
    pl->t_start = pm__pl_now();
    pl->cpu_start = cpu_now();
    pl->last_progress = pl->t_start;
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
    while (rc == 0) {
        step(pl);
        if (run_finished(pl))
            break;
        arm_tick(pl);
        int r = pm_loop_run_once(pl->loop, 1);
        if (r < 0 && r != -EINTR && r != -ETIMEDOUT) {
            rc = r;
            atomic_store(&pl->cancelled, 1);
            /* keep draining: chunks must come back before teardown */
            while (!run_finished(pl) && pm_loop_run_once(pl->loop, 1) >= 0)
                step(pl);
        }
    }
    report_progress(pl);
    run_teardown(pl);
    pl->stats.wall_seconds = pm__pl_now() - pl->t_start;
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
