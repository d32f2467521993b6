/* lifecycle.c - a file's way through the pipeline, as one state machine.
 *
 * Every transition happens here, on the I/O thread. The blocking system
 * calls are work items on the pool's workers (fileops.c), the fsyncs are
 * loop operations, reading and staging are io.c's and stages.c's; each of
 * them ends by calling back into this file.
 *
 *   PENDING     found by the source (source.c); refused by accept: SKIP
 *      |  submit OPEN (lent a token when the file may be a whole file)
 *   OPENING     open input, create the output       (worker)
 *      |        a file that fits in the token is read, staged and written
 *      |        by the same step, and committed too unless an fsync must
 *      |        come first (stages.c, whole files): on to SYNC_OUT, or
 *      |        straight to FINISHED
 *      |  file_begin hook, queued for reading
 *   ACTIVE      chunks read, staged, written        (io.c, stages.c)
 *      |  all retired and written: file_end hook
 *      +-- no output file -----> CLOSING: FINISH     (worker) --> FINISHED
 *      |  PM_SINK_FILES
 *   [SYNC_OUT]  fsync the output, only when the input is to be removed (loop)
 *      |
 *   COMMITTING  check, metadata, link [, remove]    (worker)
 *      |  input to be removed after a durable link
 *   [SYNC_DIR]  fsync the output's directory        (loop)
 *      |
 *   REMOVING    remove the input if unchanged       (worker)
 *      |
 *   FINISHED    event ready; delivered in source order, then freed
 *
 * Any failure goes straight to FINISHED with an ERROR: the output is
 * discarded and the input kept. Cancellation lets steps in flight end and
 * fails the file at its next transition (a commit already under way
 * completes: a file is always either untouched or fully converted).
 *
 * Files in flight (OPENING to the last step) are bounded by max_files, so
 * descriptors are bounded too; many of them commit at once, so their
 * fsyncs reach the filesystem together and share its journal commits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/error.h>
#include "pipeline_internal.h"

/* ---- the file table ---- */

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
    f->pub.index = pl->files.seen++;
    f->fd = f->out_fd = f->dir_fd = -1;
    f->pub.fd = -1;
    f->stream_op = -1;
    pthread_mutex_init(&f->lock, NULL);
    pl_files *t = &pl->files;
    if (t->tail)
        t->tail->next = f;
    else
        t->head = f;
    t->tail = f;
    return f;
}

static void file_free(pl_file *f)
{
    /* A worker may still be inside f->lock after queueing f's last piece:
     * taking the lock once waits for it to leave. */
    pthread_mutex_lock(&f->lock);
    pthread_mutex_unlock(&f->lock);
    pthread_mutex_destroy(&f->lock);
    pm__pl_map_drop(f);
    pm__pl_dirh_unref(f->dir);
    free(f->path);
    free(f->out_path);
    free(f->tmp_name);
    free(f->message);
    free(f->warning);
    free(f->op_msg);
    free(f);
}

void pm__pl_files_clear(pm_pipeline *pl)
{
    pl_files *t = &pl->files;
    while (t->head) {
        pl_file *f = t->head;
        t->head = f->next;
        pm__pl_release(f, 1);
        if (pl->o.file_state_size && f->pub.state) {
            if (pl->o.file_state_free)
                pl->o.file_state_free(f->pub.state, pl->o.arg);
            free(f->pub.state);
        }
        file_free(f);
    }
    memset(t, 0, sizeof *t);
}

static int in_flight(pl_file_phase ph)
{
    return ph != PL_PENDING && ph != PL_FINISHED;
}

/* Marks f finished with an event; whatever it holds is released (the
 * output discarded unless it was committed). */
void pm__pl_file_finish(pm_pipeline *pl, pl_file *f, int kind, pm_reason reason, int err,
                        char *msg)
{
    if (kind == PM_EVENT_DONE && f->warning) {
        kind = PM_EVENT_WARNING;
        reason = PM_REASON_FILE_WARNING;
        free(msg);
        msg = f->warning;
        f->warning = NULL;
    }
    f->reason = reason;
    if (msg) {
        free(f->message);
        f->message = msg;
    }
    f->event_kind = kind;
    f->event_err = err;
    if (in_flight(f->phase))
        pl->files.in_flight--;
    f->phase = PL_FINISHED;
    pm__pl_release(f, kind == PM_EVENT_ERROR);
    if (kind == PM_EVENT_ERROR && !pl->first_error)
        pl->first_error = err ? err : -EIO;
    if (kind == PM_EVENT_ERROR && (pl->o.flags & PM_PL_FAIL_FAST))
        atomic_store(&pl->cancelled, 1);
}

static void finish_failed(pm_pipeline *pl, pl_file *f)
{
    int err = atomic_load(&f->status);
    pm_reason why = err ? f->fail_reason : PM_REASON_CANCELLED;
    pm__pl_file_finish(pl, f, PM_EVENT_ERROR, why, err ? err : -ECANCELED, NULL);
}

/* Ends a step with an error: the step's message, or the file's own. */
static void fail_step(pm_pipeline *pl, pl_file *f, int rc)
{
    char *msg = f->op_msg;
    f->op_msg = NULL;
    pm__pl_file_finish(pl, f, PM_EVENT_ERROR, rc == -ECANCELED ? PM_REASON_CANCELLED : f->op_reason,
                       rc, msg);
}

void pm__pl_deliver_events(pm_pipeline *pl)
{
    pl_files *t = &pl->files;
    pl_file *f;
    while ((f = t->head) && f->phase == PL_FINISHED) {
        t->head = f->next;
        if (!t->head)
            t->tail = NULL;
        pm_pipeline_stats *st = &pl->stats;
        switch (f->event_kind) {
        case PM_EVENT_DONE:    st->files_done++; break;
        case PM_EVENT_SKIP:    st->files_skipped++; break;
        case PM_EVENT_ERROR:   st->files_failed++; break;
        case PM_EVENT_WARNING: st->files_done++; st->files_warned++; break;
        }
        t->reported++;
        if (pl->o.on_event) {
            pm_event ev = {
                .kind = f->event_kind,
                .reason = f->reason,
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
        if (pl->o.file_state_size && f->pub.state) {
            if (pl->o.file_state_free)
                pl->o.file_state_free(f->pub.state, pl->o.arg);
            free(f->pub.state);
        }
        file_free(f);
    }
}

/* ---- PENDING -> OPENING -> ACTIVE ---- */

static void submit(pm_pipeline *pl, pl_file *f, pl_file_phase phase, pl_file_op op)
{
    f->phase = phase;
    pm__pl_submit_op(pl, f, op);
}

/* Submits f's OPEN step. */
static void file_open(pm_pipeline *pl, pl_file *f)
{
    pl->files.in_flight++;
    if (pm__pl_whole_ok(pl, f))
        f->whole = pm__pl_token_get(pl, f);   /* NULL when none is free */
    submit(pl, f, PL_OPENING, PL_OP_OPEN);
}

/* Takes f out of PENDING: filtered, or its OPEN step submitted. */
static void file_start(pm_pipeline *pl, pl_file *f)
{
    if (pl->o.accept && strcmp(f->path, "-") != 0) {
        char why[256] = "";
        if (pl->o.accept(f->path, why, sizeof why, pl->o.arg) == PM_PL_SKIP) {
            f->incidental = f->walked;
            pm__pl_file_finish(pl, f, PM_EVENT_SKIP, PM_REASON_REFUSED, -EINVAL,
                               strdup(why[0] ? why : "skipped"));
            return;
        }
    }
    file_open(pl, f);
}

/* Takes back the token lent to f's OPEN step and counts what the step did
 * with it (stages.c, whole files). */
static void whole_return(pm_pipeline *pl, pl_file *f)
{
    pl_chunk *c = f->whole;
    if (!c)
        return;
    f->whole = NULL;
    if (f->whole_state != PL_WHOLE_NONE) {
        pl->stats.chunks++;
        pl->stats.bytes_in += f->pub.bytes_in;
        pl->stats.bytes_out += f->pub.bytes_out;
        pl->bytes_done += c->pub.len;
        f->reads_issued = f->chunks_total = f->chunks_retired = 1;
        f->next_off = c->pub.len;
        f->read_eof = 1;
    }
    pm__pl_token_put(pl, c);
}

/* Appends f to a queue linked through ready_next (a file is in one at a
 * time: waiting to be read, or to be opened again). */
static void queue_push(pl_file **head, pl_file **tail, pl_file *f)
{
    f->ready_next = NULL;
    if (*tail)
        (*tail)->ready_next = f;
    else
        *head = f;
    *tail = f;
}

static pl_file *queue_pop(pl_file **head, pl_file **tail)
{
    pl_file *f = *head;
    if (f && !(*head = f->ready_next))
        *tail = NULL;
    return f;
}

static void ready_push(pl_files *t, pl_file *f)
{
    queue_push(&t->ready_head, &t->ready_tail, f);
}

static void finish_ok(pm_pipeline *pl, pl_file *f);

/* f's OPEN ran out of descriptors while other files hold some: f goes back
 * to PENDING, to be opened again when one of them is done, and no more
 * files than are in flight now will be opened at once. Returns 0 when
 * there is nothing to wait for (the file then fails). */
static int retry_later(pm_pipeline *pl, pl_file *f)
{
    pl_files *t = &pl->files;
    if (t->in_flight <= 1) {
        /* Alone now, but others may have held descriptors when the step
         * ran: one more try alone, then it fails. */
        if (f->retried_alone)
            return 0;
        f->retried_alone = 1;
    }
    pm__pl_release(f, 1);
    free(f->out_path);
    f->out_path = NULL;
    f->pub.out_path = NULL;
    f->out_base = NULL;
    free(f->op_msg);
    f->op_msg = NULL;
    f->op_reason = PM_REASON_NONE;
    f->stream = f->no_sync = 0;
    f->whole_state = PL_WHOLE_NONE;
    free(f->pub.state);           /* a one-step OPEN may have made it */
    f->pub.state = NULL;
    f->phase = PL_PENDING;
    t->in_flight--;
    t->fd_cap = t->in_flight ? t->in_flight : 1;
    queue_push(&t->retry_head, &t->retry_tail, f);
    return 1;
}

static void open_done(pm_pipeline *pl, pl_file *f)
{
    whole_return(pl, f);
    int rc = f->op_rc;
    if (f->whole_state == PL_WHOLE_FINISHED) {   /* committed: report it */
        f->opened = 1;
        pl->bytes_total += (uint64_t)f->pub.st.st_size;
        if (rc < 0)
            fail_step(pl, f, rc);
        else
            finish_ok(pl, f);
        return;
    }
    if (rc == 0 && atomic_load(&pl->cancelled))
        rc = -ECANCELED;
    if ((rc == -EMFILE || rc == -ENFILE) && retry_later(pl, f))
        return;
    if (rc == PM_PL_SKIP) {
        char *msg = f->op_msg;
        f->op_msg = NULL;
        f->incidental = f->walked && !f->out_path && f->op_reason != PM_REASON_HARD_LINKS &&
                        f->op_reason != PM_REASON_SET_ID;
        pm__pl_file_finish(pl, f, PM_EVENT_SKIP, f->op_reason,
                           f->op_reason == PM_REASON_OUTPUT_EXISTS ? -EEXIST
                           : f->op_reason == PM_REASON_SYMLINK ? -ELOOP : -EINVAL, msg);
        return;
    }
    if (rc < 0) {
        fail_step(pl, f, rc);
        return;
    }
    f->opened = 1;
    f->phase = PL_ACTIVE;
    if (pl->o.file_state_size && !f->pub.state &&
        !(f->pub.state = calloc(1, pl->o.file_state_size))) {
        pm__pl_file_finish(pl, f, PM_EVENT_ERROR, PM_REASON_STAGE, -ENOMEM, NULL);
        return;
    }
    if (!f->stream)
        pl->bytes_total += (uint64_t)f->pub.st.st_size;
    if (pl->o.file_begin && (rc = pl->o.file_begin(&f->pub, pl->o.arg)) != 0) {
        pm__pl_file_finish(pl, f, PM_EVENT_ERROR, PM_REASON_STAGE, rc < 0 ? rc : -EIO, NULL);
        return;
    }
    if (f->whole_state == PL_WHOLE_WRITTEN)
        pm__pl_check_complete(pl, f);       /* read, staged, written: commit */
    else
        ready_push(&pl->files, f);
}

/* May one more file go in flight? */
static int may_start_file(pm_pipeline *pl)
{
    const pl_files *t = &pl->files;
    if (atomic_load(&pl->cancelled))
        return 0;
    if (t->in_flight >= pl->o.max_files || (t->fd_cap && t->in_flight >= t->fd_cap))
        return 0;
    if (pl->o.sink == PM_SINK_FD && t->in_flight > 0)
        return 0;                 /* one file at a time, in order */
    if (pm__pl_whole_ok(pl, NULL) && !pl->tok.free)
        return 0;                 /* a file opened without a token to lend
                                     would take the long way */
    return 1;
}

/* May the source give another file? */
static int may_open_file(pm_pipeline *pl)
{
    const pl_files *t = &pl->files;
    if (pl->src.done || t->retry_head || !may_start_file(pl))
        return 0;
    /* Do not walk far ahead of the events (they wait for each other). */
    return t->seen - t->reported <= 4u * pl->o.max_files;
}

/* Cancelled: files waiting to be opened again end as cancelled. */
void pm__pl_drop_retries(pm_pipeline *pl)
{
    pl_files *t = &pl->files;
    pl_file *f;
    while ((f = queue_pop(&t->retry_head, &t->retry_tail)))
        pm__pl_file_finish(pl, f, PM_EVENT_ERROR, PM_REASON_CANCELLED, -ECANCELED, NULL);
}

/* Takes paths from the source while more files may be in flight: first
 * those waiting for descriptors, in order. */
void pm__pl_open_files(pm_pipeline *pl)
{
    pl_files *t = &pl->files;
    while (t->retry_head && may_start_file(pl))
        file_open(pl, queue_pop(&t->retry_head, &t->retry_tail));   /* accepted already */
    for (;;) {
        if (!may_open_file(pl)) {
            /* Finished files not yet reported may be all that holds the
             * walk back: report them and go on (else, with nothing left in
             * flight, the I/O thread would sleep until its timer). */
            if (!pl->files.head || pl->files.head->phase != PL_FINISHED)
                return;
            pm__pl_deliver_events(pl);
            if (!may_open_file(pl))
                return;
        }
        pl_found found;
        char *path = pm__pl_source_next(pl, &found);
        if (!path && found.err == -ENOMEM) {
            pl->first_error = -ENOMEM;        /* nothing is dropped silently */
            atomic_store(&pl->cancelled, 1);
            return;
        }
        if (!path) {
            pl->src.done = 1;
            return;
        }
        pl_file *f = file_new(pl, path);
        if (!f) {
            free(found.msg);
            pm__pl_dirh_unref(found.dir);
            pl->first_error = -ENOMEM;
            atomic_store(&pl->cancelled, 1);
            return;
        }
        f->walked = found.walked;
        f->incidental = found.incidental;
        if (found.dir) {                  /* walked: opened relative to it */
            f->dir = found.dir;
            const char *slash = strrchr(f->path, '/');
            f->base = slash ? slash + 1 : f->path;
        }
        if (found.kind != PM_EVENT_DONE)
            pm__pl_file_finish(pl, f, found.kind, found.reason, found.err, found.msg);
        else
            file_start(pl, f);
    }
}

/* ---- ACTIVE -> commit ---- */

static void on_out_synced(void *arg, ssize_t res)
{
    pl_file *f = arg;
    pm_pipeline *pl = f->pl;
    f->writes_inflight--;
    if (res < 0)
        pm__pl_file_finish(pl, f, PM_EVENT_ERROR, PM_REASON_OUTPUT, (int)res,
                           pm__pl_strdupf("cannot sync output: %s", pm_strerror((int)res)));
    else if (atomic_load(&pl->cancelled))
        pm__pl_file_finish(pl, f, PM_EVENT_ERROR, PM_REASON_CANCELLED, -ECANCELED, NULL);
    else
        submit(pl, f, PL_COMMITTING, PL_OP_COMMIT);
}

static void sync_then(pm_pipeline *pl, pl_file *f, int fd, pl_file_phase phase,
                      pm_loop_cb cb)
{
    f->phase = phase;
    f->writes_inflight++;
    pl->stats.syncs++;
    int64_t id = pm_loop_fsync(pl->loop, fd, 0, cb, f);
    if (id < 0)
        cb(f, id);
}

/* Every chunk of f retired and its output was written (io.c). */
void pm__pl_file_complete(pm_pipeline *pl, pl_file *f)
{
    if (atomic_load(&pl->cancelled) && !atomic_load(&f->status))
        pm__pl_file_fail(f, PM_REASON_CANCELLED, -ECANCELED, "cancelled");
    int status = atomic_load(&f->status);
    if (pl->o.file_end) {         /* exactly once per file that began */
        int rc = pl->o.file_end(&f->pub, status, pl->o.arg);
        if (!status && rc)
            pm__pl_file_fail(f, PM_REASON_STAGE, rc, NULL);
    }
    if (atomic_load(&f->status)) {
        finish_failed(pl, f);
        return;
    }
    if (pl->o.sink != PM_SINK_FILES)
        submit(pl, f, PL_CLOSING, PL_OP_FINISH);
    else if (pm__pl_must_sync(pl, f))
        sync_then(pl, f, f->out_fd, PL_SYNC_OUT, on_out_synced);
    else
        submit(pl, f, PL_COMMITTING, PL_OP_COMMIT);
}

static void on_dir_synced(void *arg, ssize_t res)
{
    pl_file *f = arg;
    pm_pipeline *pl = f->pl;
    f->writes_inflight--;
    if (res < 0 && res != -EINVAL)     /* some filesystems cannot sync directories */
        pm__pl_file_finish(pl, f, PM_EVENT_WARNING, PM_REASON_INPUT_KEPT, (int)res,
                           pm__pl_strdupf("output written, input kept: cannot sync directory: %s",
                                          pm_strerror((int)res)));
    else
        submit(pl, f, PL_REMOVING, PL_OP_REMOVE);
}

/* A step that ended the file's work: DONE, or WARNING with its message. */
static void finish_ok(pm_pipeline *pl, pl_file *f)
{
    char *msg = f->op_msg;
    f->op_msg = NULL;
    int warn = f->op_rc == PL_WARN;
    pm__pl_file_finish(pl, f, warn ? PM_EVENT_WARNING : PM_EVENT_DONE,
                       warn ? f->op_reason : PM_REASON_NONE, 0, msg);
}

/* A blocking step of f ended on a worker (its result in f->op_rc). */
void pm__pl_step_done(pm_pipeline *pl, pl_file *f)
{
    switch (f->phase) {
    case PL_OPENING:
        open_done(pl, f);
        return;
    case PL_CLOSING:
    case PL_REMOVING:
        if (f->op_rc < 0)
            fail_step(pl, f, f->op_rc);
        else
            finish_ok(pl, f);
        return;
    case PL_COMMITTING:
        if (f->op_rc < 0)
            fail_step(pl, f, f->op_rc);
        else if (pm__pl_must_sync(pl, f))
            sync_then(pl, f, f->dir_fd, PL_SYNC_DIR, on_dir_synced);
        else
            finish_ok(pl, f);
        return;
    default:
        pm__pl_file_finish(pl, f, PM_EVENT_ERROR, PM_REASON_STAGE, -EIO,
                           strdup("internal error: unexpected step"));
    }
}
