/* stages.c - the stages of a pipeline, run on the pool's workers.
 *
 * Threads: every chunk is a work item of the pool's executor (exec/exec.h):
 * the I/O thread submits a chunk when its read completes, and whichever
 * worker pops it runs the chunk's stages, as far as the next serial point
 * it may not pass yet. Tasks of the same pool (apply_async, maps) share the
 * same workers and slots, so a pipeline never adds threads to the budget.
 *
 * Ordering: every SERIAL_IN_ORDER stage is a "serial point" with a per-file
 * turn counter (the next seq allowed through). A chunk that arrives early is
 * parked in the file's list for that point, sorted by seq; whoever ends a
 * turn re-submits the parked successor (at the queue's front: it is the
 * oldest work). Retiring a chunk (handing its
 * output to the I/O thread) is a serial point too: the last stage's turn if
 * that stage is serial, else an implicit one after it. Output offsets are
 * handed out and pieces queued to the I/O thread inside that turn, so the
 * done queue holds each file's pieces in order. A chunk whose output is
 * written by someone else (pm_chunk.out_elsewhere) gets its offset the
 * same way, and opts.out_placed hears of it right there, in order; its
 * piece goes to the I/O thread to be counted, not written.
 *
 * Stage kinds: a BLOCKING or ASYNC stage is not run here; the chunk goes
 * to kinds.c (after taking its turn, if serial) and comes back through
 * pm__pl_kind_done(), which ends the turn and re-submits it for the rest.
 *
 * Lock order: file->lock, then dq_lock. em_lock and wq_lock are never held
 * together with another lock. The I/O thread frees a file only after taking
 * and releasing its lock, so a worker that queued the file's last piece under
 * the lock never touches freed memory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/co.h>
#include "pipeline_internal.h"

/* An emit buffer: the piece that carries it, then its data. */
typedef struct pl_emit {
    pl_piece piece;
    unsigned char data[];
} pl_emit;

static void on_post(void *arg, ssize_t res)
{
    (void)arg;   /* nothing to do: waking the I/O thread was the point; it */
    (void)res;   /* drains the done queue after every loop iteration */
}

/* Appends n to one of the done queue's lists. Returns 1 when the caller
 * must wake the I/O thread with wake_io() -- after releasing any file lock
 * it holds, to keep the system call out of the serial section. A file's
 * ended step may wait for company (`lazy`): see dq_push_file(). */
static int dq_append(pm_pipeline *pl, pm__fifo *q, pm__node *n, int lazy)
{
    pthread_mutex_lock(&pl->dq.lock);
    pm__fifo_push(q, n);
    int need_post = !pl->dq.posted && !lazy;
    pl->dq.posted |= need_post;
    pthread_mutex_unlock(&pl->dq.lock);
    return need_post;
}

/* Queues p for the I/O thread (under the file's lock, so each file's pieces
 * keep their order). */
static int dq_push(pm_pipeline *pl, pl_piece *p)
{
    return dq_append(pl, &pl->dq.pieces, &p->node, 0);
}

static void wake_io(pm_pipeline *pl)
{
    /* If the post cannot be allocated, the I/O thread's periodic timer
     * still finds the queue. */
    pm_loop_post(pl->loop, on_post, NULL);
}

void pm__pl_take_done(pm_pipeline *pl, pm__node **pieces, pm__node **files)
{
    pthread_mutex_lock(&pl->dq.lock);
    *pieces = pm__fifo_take_all(&pl->dq.pieces);
    *files = pm__fifo_take_all(&pl->dq.files);
    pl->dq.posted = 0;
    pthread_mutex_unlock(&pl->dq.lock);
}

/* Queues f, whose blocking step ended, for the I/O thread. The I/O thread
 * is woken only when the workers are about to run out of steps (at most
 * one queued per worker): until then the ended steps gather, and one
 * wake-up serves many files -- for a tree of small files done in one step
 * each, a wake-up per file costs the eventfd write, the I/O thread's
 * switch in and out, and the ring's enter. Pieces and emits never wait
 * (a worker may be waiting for an emit buffer they carry), and the last
 * step always wakes it (nothing is left queued). */
static int dq_push_file(pm_pipeline *pl, pl_file *f)
{
    int lazy = atomic_load(&pl->steps_queued) > pl->jobs;
    return dq_append(pl, &pl->dq.files, &f->done_node, lazy);
}

static void chunk_run(pm__work *w, unsigned worker);
static void chunk_drop(pm__work *w);

/* Hands c to the workers. If the executor refuses (the pool was terminated
 * under a running pipeline), the run is cancelled and c runs here: its
 * stages are skipped and it retires at once, so the I/O thread gets every
 * token back. */
static void submit(pm_pipeline *pl, pl_chunk *c, unsigned flags)
{
    c->work.run = chunk_run;
    c->work.drop = chunk_drop;
    if (pm__exec_submit(pl->ex, &c->work, flags | PM__SUBMIT_INTERNAL) == 0)
        return;
    atomic_store(&pl->cancelled, 1);
    chunk_drop(&c->work);
}

void pm__pl_dispatch(pm_pipeline *pl, pl_chunk *c)
{
    c->stage = 0;
    submit(pl, c, 0);
}

/* Returns 1 if c may pass serial point `point` now, else parks it in the
 * point's sequence list (core/list.h), to be resubmitted by its
 * predecessor. */
static int take_turn(pl_file *f, pl_chunk *c, unsigned point)
{
    pm__seqlist *sp = &f->points[point];
    pthread_mutex_lock(&f->lock);
    int now = sp->next == c->pub.seq;
    if (!now) {
        c->sq.seq = c->pub.seq;
        pm__seq_park(sp, &c->sq);
    }
    pthread_mutex_unlock(&f->lock);
    return now;
}

static int flush_held(pm_pipeline *pl, pl_file *f, pl_chunk *c);
static int queue_piece(pm_pipeline *pl, pl_file *f, pl_piece *p);
static void retired(pm_pipeline *pl);

/* Ends c's turn at `point`; when `retire`, queues c's output (if any) as the
 * file's next piece. Re-dispatches a parked successor. */
static void end_turn(pm_pipeline *pl, pl_file *f, pl_chunk *c, unsigned point,
                     int retire)
{
    pl_chunk *succ = NULL;
    int wake = 0;
    pthread_mutex_lock(&f->lock);
    pm__seqlist *sp = &f->points[point];
    sp->next++;
    pm__seqnode *n = pm__seq_ready(sp);
    if (n)
        succ = pm__container_of(n, pl_chunk, sq);
    if (retire) {
        pl_piece *p = &c->retire;
        p->file = f;
        p->chunk = c;
        p->buf = c->pub.out;
        p->elsewhere = c->pub.out_elsewhere;
        if (p->elsewhere && pl->o.sink == PM_SINK_FD)
            pm__pl_file_fail(f, PM_REASON_STAGE, -EINVAL,
                             "output placed elsewhere needs one output file per input");
        p->len = atomic_load(&f->status) ? 0 : c->pub.out_len;
        wake = flush_held(pl, f, c);  /* what it emitted comes first */
        wake |= queue_piece(pl, f, p); /* c and maybe f may be freed after unlock */
    }
    pthread_mutex_unlock(&f->lock);
    if (retire)
        retired(pl);                   /* a successor may now be the head */
    if (wake)
        wake_io(pl);
    if (succ)
        submit(pl, succ, PM__SUBMIT_FRONT);
}

static void fail_file(pl_file *f, pm_reason reason, int err)
{
    pm__pl_file_fail(f, reason, err, NULL);
}

/* This worker's state for the run (worker_init on its first chunk). */
static int worker_state(pm_pipeline *pl, unsigned w, void **state_ret)
{
    *state_ret = NULL;
    if (!pl->o.worker_init)
        return 0;
    if (!pl->winit[w]) {
        int rc = pl->o.worker_init(&pl->wstate[w], w, pl->o.arg);
        if (rc)
            return rc < 0 ? rc : -EIO;
        pl->winit[w] = 1;
    }
    *state_ret = pl->wstate[w];
    return 0;
}

static void run_stage(pm_pipeline *pl, const pl_stage *s, pl_chunk *c, unsigned w)
{
    if (atomic_load(&c->file->status) || atomic_load(&pl->cancelled))
        return;
    int rc = worker_state(pl, w, &c->pub.worker_state);
    if (rc == 0)
        rc = s->fn(&c->pub, s->arg, w);
    c->pub.worker_state = NULL;
    if (pm__pl_map_bus(c))          /* it read zeros where the file was cut */
        pm__pl_file_fail(c->file, PM_REASON_CHANGED, -EIO, "file changed size while being read");
    else if (rc != 0)
        fail_file(c->file, PM_REASON_STAGE, rc);
}

/* A BLOCKING or ASYNC stage that will really run goes to kinds.c; one that
 * would be skipped (file failed, run cancelled) is skipped right here. */
static int sent_away(pm_pipeline *pl, const pl_stage *s, pl_chunk *c)
{
    if (s->kind == PM_STAGE_CPU || atomic_load(&c->file->status) || atomic_load(&pl->cancelled))
        return 0;
    pm__pl_kind_send(pl, c);
    return 1;
}

static void run_chunk(pm_pipeline *pl, pl_chunk *c, unsigned w)
{
    pl_file *f = c->file;
    while (c->stage < pl->nstages) {
        unsigned i = c->stage;
        const pl_stage *s = &pl->stages[i];
        if (s->mode == PM_STAGE_PARALLEL) {
            if (sent_away(pl, s, c))
                return;                   /* back through pm__pl_kind_done */
            run_stage(pl, s, c, w);
            c->stage++;
            continue;
        }
        if (!take_turn(f, c, i))
            return;                       /* parked; resumed by its predecessor */
        if (sent_away(pl, s, c))
            return;                       /* its turn ends in pm__pl_kind_done */
        run_stage(pl, s, c, w);
        int last = i + 1 == pl->nstages;
        c->stage++;
        end_turn(pl, f, c, i, last);
        if (last)
            return;
    }
    /* The last stage was parallel (or there are none): retire in order. */
    if (!take_turn(f, c, pl->nstages))
        return;
    end_turn(pl, f, c, pl->nstages, 1);
}

/* Workers count themselves in and out of a chunk (busy): after its last
 * piece is queued a worker still posts a wake-up to the loop and may
 * re-submit a successor, so the run's teardown waits for busy to be 0. */
static void busy_leave(pm_pipeline *pl)
{
    if (atomic_fetch_sub(&pl->busy, 1) == 1)
        pm__futex_wake(&pl->busy, INT_MAX);
}

/* Stage c->stage of c, a BLOCKING or ASYNC one, has run on another thread
 * (kinds.c): end its turn if it is serial, and hand c back to the workers
 * for the rest (or it has retired). Counted as busy like a worker, for the
 * same reason. */
void pm__pl_kind_done(pm_pipeline *pl, pl_chunk *c)
{
    atomic_fetch_add(&pl->busy, 1);
    unsigned i = c->stage;
    int serial = pl->stages[i].mode == PM_STAGE_SERIAL_IN_ORDER;
    int last = i + 1 == pl->nstages;
    c->stage++;
    if (serial)
        end_turn(pl, c->file, c, i, last);     /* c may be gone when last */
    if (!(serial && last))
        submit(pl, c, PM__SUBMIT_FRONT);
    busy_leave(pl);
}

int pm__pl_has_kind(const pm_pipeline *pl, pm_stage_kind kind)
{
    for (unsigned i = 0; i < pl->nstages; i++)
        if (pl->stages[i].kind == kind)
            return 1;
    return 0;
}

static void chunk_run(pm__work *w, unsigned worker)
{
    pl_chunk *c = (pl_chunk *)((char *)w - offsetof(pl_chunk, work));
    pm_pipeline *pl = c->file->pl;
    atomic_fetch_add(&pl->busy, 1);
    run_chunk(pl, c, worker);
    busy_leave(pl);
}

/* The executor dropped c (terminated): cancel the run and retire c with
 * its stages skipped. Its successors come back through submit(), which
 * runs them here too. */
static void chunk_drop(pm__work *w)
{
    pl_chunk *c = (pl_chunk *)((char *)w - offsetof(pl_chunk, work));
    pm_pipeline *pl = c->file->pl;
    atomic_fetch_add(&pl->busy, 1);
    atomic_store(&pl->cancelled, 1);
    fail_file(c->file, PM_REASON_CANCELLED, -ECANCELED);
    run_chunk(pl, c, UINT_MAX);
    busy_leave(pl);
}

/* ---- the files' blocking steps (fileops.c) as work items ---- */

/* ---- whole files ----
 *
 * Most files of a tree are smaller than a chunk, and the usual way costs
 * them four hand-offs between the I/O thread and the workers (open, read,
 * stages, write, commit). When the pipeline has no hooks that must run on
 * the calling thread, the I/O thread lends a token to a
 * file's OPEN step; if the file turns out to fit in one chunk, the same
 * work item reads it, runs its one chunk through every stage, writes the
 * output and, when no fsync has to come first, commits it (or finishes it)
 * -- one hand-off. The file belongs to the worker for the whole step, so
 * its pieces are written here (inline_out) instead of queued; the I/O
 * thread counts the bytes and takes the token back when the step ends
 * (lifecycle.c).
 */

/* May f (any file, when NULL) be done in one step? */
int pm__pl_whole_ok(const pm_pipeline *pl, const pl_file *f)
{
    const pm_pipeline_opts *o = &pl->o;
    /* A framer is never asked about a file's last chunk, so one-chunk
     * files need none. */
    return !o->file_begin && !o->file_end && o->sink != PM_SINK_FD &&
           (!f || strcmp(f->path, "-") != 0) && !pm__pl_has_kind(pl, PM_STAGE_BLOCKING) &&
           !pm__pl_has_kind(pl, PM_STAGE_ASYNC);
}

/* Under f->lock, on the worker that owns f: writes p at once (or only
 * counts it, when someone else writes it). */
static void write_inline(pm_pipeline *pl, pl_file *f, pl_piece *p)
{
    if (p->len && pl->o.sink == PM_SINK_FILES && !atomic_load(&f->status) &&
        !atomic_load(&pl->cancelled)) {
        int rc = p->elsewhere ? 0 : pm__pl_pwrite_all(f->out_fd, p->buf, p->len, p->off);
        if (rc < 0)
            pm__pl_file_fail(f, PM_REASON_OUTPUT, rc, "write error: %s", strerror(-rc));
        else
            f->pub.bytes_out += p->len;
    }
    if (!p->chunk)
        pm__pl_emit_put(pl, p);        /* the chunk's own token goes back later */
}

/* After f's OPEN step: if f fits in the token lent to it, does all of f's
 * work up to its fsyncs here. */
static void run_whole(pm_pipeline *pl, pl_file *f, unsigned worker)
{
    pl_chunk *c = f->whole;
    uint64_t size = (uint64_t)f->pub.st.st_size;
    if (f->stream || size == 0 || size > pl->o.chunk_size)
        return;
    if (pl->o.file_state_size && !(f->pub.state = calloc(1, pl->o.file_state_size)))
        return;                   /* the I/O thread tries again, and reports it */
    unsigned char *in = c->in + pl->o.overlap;
    c->pub.seq = 0;
    c->pub.offset = 0;
    c->pub.data = in;
    c->pub.len = (size_t)size;
    c->pub.prefix_len = 0;
    c->pub.last = 1;
    c->stage = 0;
    ssize_t n = pm__pl_pread_all(f->fd, in, (size_t)size);
    if (n < 0)
        pm__pl_file_fail(f, PM_REASON_INPUT, (int)n, "read error: %s", strerror((int)-n));
    else if ((uint64_t)n != size)
        pm__pl_file_fail(f, PM_REASON_CHANGED, -EIO, "file changed size while being read");
    else
        f->pub.bytes_in = size;
    f->inline_out = 1;
    run_chunk(pl, c, worker);     /* seq 0: every serial point lets it through */
    f->inline_out = 0;
    f->whole_state = PL_WHOLE_WRITTEN;
    if (atomic_load(&f->status) || atomic_load(&pl->cancelled))
        return;
    if (pl->o.sink == PM_SINK_FILES && pm__pl_must_sync(pl, f))
        return;                   /* the fsyncs go through the loop first */
    f->op = pl->o.sink == PM_SINK_FILES ? PL_OP_COMMIT : PL_OP_FINISH;
    free(f->op_msg);
    f->op_rc = pm__pl_op_run(pl, f, &f->op_msg);
    f->whole_state = PL_WHOLE_FINISHED;
}

static void op_run(pm__work *w, unsigned worker)
{
    pl_file *f = (pl_file *)((char *)w - offsetof(pl_file, work));
    pm_pipeline *pl = f->pl;
    atomic_fetch_add(&pl->busy, 1);
    atomic_fetch_sub(&pl->steps_queued, 1);
    free(f->op_msg);
    f->op_rc = pm__pl_op_run(pl, f, &f->op_msg);
    if (f->op == PL_OP_OPEN && f->whole && f->op_rc == 0 && !atomic_load(&pl->cancelled))
        run_whole(pl, f, worker);
    if (dq_push_file(pl, f))          /* f is the I/O thread's from here */
        wake_io(pl);
    busy_leave(pl);
}

/* The executor dropped the step (terminated): it did not run. */
static void op_drop(pm__work *w)
{
    pl_file *f = (pl_file *)((char *)w - offsetof(pl_file, work));
    pm_pipeline *pl = f->pl;
    atomic_fetch_add(&pl->busy, 1);
    atomic_fetch_sub(&pl->steps_queued, 1);
    atomic_store(&pl->cancelled, 1);
    free(f->op_msg);
    f->op_msg = NULL;
    f->op_rc = -ECANCELED;
    if (dq_push_file(pl, f))
        wake_io(pl);
    busy_leave(pl);
}

/* I/O thread: runs f's blocking step `op` on a worker; its end comes back
 * through the done queue to pm__pl_step_done(). */
void pm__pl_submit_op(pm_pipeline *pl, pl_file *f, pl_file_op op)
{
    f->op = op;
    f->work.run = op_run;
    f->work.drop = op_drop;
    atomic_fetch_add(&pl->steps_queued, 1);
    if (pm__exec_submit(pl->ex, &f->work, PM__SUBMIT_INTERNAL) != 0)
        op_drop(&f->work);
}

int pm__pl_workers_start(pm_pipeline *pl)
{
    pm__exec_hold(pl->ex);          /* a closed pool keeps its workers for us */
    pl->ex_held = 1;
    if (pl->o.worker_init) {
        unsigned n = (unsigned)pl->ex->workers;
        pl->wstate = calloc(n, sizeof *pl->wstate);
        pl->winit = calloc(n, 1);
        if (!pl->wstate || !pl->winit)
            return -ENOMEM;
    }
    return pm__pl_kinds_start(pl);
}

/* After every chunk came back: no worker runs our stages any more. */
void pm__pl_workers_stop(pm_pipeline *pl)
{
    uint32_t b;
    while ((b = atomic_load(&pl->busy)) != 0)
        pm__futex_wait(&pl->busy, b, NULL);
    pm__pl_kinds_stop(pl);
    for (unsigned w = 0; pl->winit && w < (unsigned)pl->ex->workers; w++)
        if (pl->winit[w] && pl->o.worker_fini)
            pl->o.worker_fini(pl->wstate[w], w, pl->o.arg);
    free(pl->wstate);
    free(pl->winit);
    pl->wstate = NULL;
    pl->winit = NULL;
    if (pl->ex_held)
        pm__exec_unhold(pl->ex);
    pl->ex_held = 0;
}

/* ---- emit ----
 *
 * pm_chunk_emit() works from any stage. A chunk whose turn it is to retire
 * (every chunk of its file before it has retired: the "head") queues its
 * pieces to the I/O thread at once; any other chunk keeps them (c->held)
 * until it retires, when they go out before its own output. Buffers come
 * from a fixed pool; a non-head chunk may take one only while more than
 * `reserve` (one per worker) are free, so the chunks the file order waits
 * for can always get buffers and the held ones can never starve them.
 * Waiters are woken when a buffer comes back and at every retirement (a
 * chunk may become the head); `gen` closes the race between checking for
 * the head and sleeping.
 */

/* The serial point at which chunks retire. */
static unsigned retire_point(const pm_pipeline *pl)
{
    unsigned last = pl->nstages - 1;
    return pl->stages[last].mode == PM_STAGE_SERIAL_IN_ORDER ? last : pl->nstages;
}

/* Under f->lock: c may write its output now. */
static int is_head(pm_pipeline *pl, pl_file *f, const pl_chunk *c)
{
    return f->points[retire_point(pl)].next == c->pub.seq;
}

static void retired(pm_pipeline *pl)
{
    pthread_mutex_lock(&pl->em.lock);
    pl->em.gen++;
    pthread_cond_broadcast(&pl->em.cond);
    pthread_mutex_unlock(&pl->em.lock);
}

static pl_emit *emit_get(pm_pipeline *pl, pl_chunk *c)
{
    pl_file *f = c->file;
    pl_emit *e = NULL;
    while (!e && !atomic_load(&pl->cancelled)) {
        pthread_mutex_lock(&pl->em.lock);
        unsigned gen = pl->em.gen;
        pthread_mutex_unlock(&pl->em.lock);
        pthread_mutex_lock(&f->lock);
        int head = is_head(pl, f, c);
        pthread_mutex_unlock(&f->lock);
        pthread_mutex_lock(&pl->em.lock);
        if (pl->em.nfree > (head ? 0 : pl->em.reserve))
            e = (pl_emit *)pl->em.free[--pl->em.nfree];
        else if (gen == pl->em.gen && !atomic_load(&pl->cancelled))
            pthread_cond_wait(&pl->em.cond, &pl->em.lock);
        pthread_mutex_unlock(&pl->em.lock);
    }
    return e;
}

/* I/O thread: an emit buffer's write finished. */
void pm__pl_emit_put(pm_pipeline *pl, pl_piece *p)
{
    pl_emit *e = (pl_emit *)p;
    pthread_mutex_lock(&pl->em.lock);
    pl->em.free[pl->em.nfree++] = (unsigned char *)e;
    pthread_cond_broadcast(&pl->em.cond);
    pthread_mutex_unlock(&pl->em.lock);
}

/* Under f->lock: gives p its output offset and queues it. Returns 1 when
 * the I/O thread must be woken. */
static int queue_piece(pm_pipeline *pl, pl_file *f, pl_piece *p)
{
    p->off = f->out_assigned;
    f->out_assigned += p->len;
    if (p->elsewhere && p->len && pl->o.out_placed && pl->o.sink == PM_SINK_FILES)
        pl->o.out_placed(&p->chunk->pub, p->off, p->len, pl->o.arg);
    if (f->inline_out) {
        write_inline(pl, f, p);
        return 0;
    }
    return dq_push(pl, p);
}

/* Under f->lock: queues what c emitted before its turn. */
static int flush_held(pm_pipeline *pl, pl_file *f, pl_chunk *c)
{
    int wake = 0;
    pm__node *n = pm__fifo_take_all(&c->held);
    while (n) {
        pm__node *next = n->next;
        wake |= queue_piece(pl, f, pm__container_of(n, pl_piece, node));
        n = next;
    }
    return wake;
}

int pm_chunk_emit(pm_chunk *chunk, const void *data, size_t len)
{
    if (pm_co_current())
        return -EDEADLK;       /* an ASYNC stage: waiting for a buffer would
                                  block every ASYNC chunk, the head's too */
    pl_chunk *c = (pl_chunk *)chunk;
    pl_file *f = c->file;
    pm_pipeline *pl = f->pl;
    const unsigned char *src = data;
    while (len > 0) {
        pl_emit *e = emit_get(pl, c);
        if (!e)
            return -ECANCELED;
        size_t n = len < pl->em.size ? len : pl->em.size;
        memcpy(e->data, src, n);
        e->piece.file = f;
        e->piece.chunk = NULL;
        e->piece.buf = e->data;
        e->piece.len = n;
        e->piece.elsewhere = 0;
        int wake = 0;
        pthread_mutex_lock(&f->lock);
        if (is_head(pl, f, c)) {
            wake = flush_held(pl, f, c);
            wake |= queue_piece(pl, f, &e->piece);
        } else {
            pm__fifo_push(&c->held, &e->piece.node);
        }
        pthread_mutex_unlock(&f->lock);
        if (wake)
            wake_io(pl);
        src += n;
        len -= n;
    }
    return 0;
}

int pm__pl_emit_pool_new(pm_pipeline *pl, unsigned count, size_t size)
{
    pl->em.free = calloc(count, sizeof *pl->em.free);
    if (!pl->em.free)
        return -ENOMEM;
    pl->em.size = size;
    pl->em.reserve = pl->jobs;
    pl->em.gen = 0;
    for (unsigned i = 0; i < count; i++) {
        pl_emit *e = malloc(sizeof *e + size);
        if (!e)
            return -ENOMEM;
        pl->em.free[pl->em.nfree++] = (unsigned char *)e;
    }
    return 0;
}

void pm__pl_emit_pool_free(pm_pipeline *pl)
{
    for (unsigned i = 0; i < pl->em.nfree; i++)
        free(pl->em.free[i]);
    free(pl->em.free);
    pl->em.free = NULL;
    pl->em.nfree = 0;
}

/* Wakes workers blocked in pm_chunk_emit() after cancellation. */
void pm__pl_emit_wake(pm_pipeline *pl)
{
    pthread_mutex_lock(&pl->em.lock);
    pthread_cond_broadcast(&pl->em.cond);
    pthread_mutex_unlock(&pl->em.lock);
}
