/* aio.c - chunked reader and writer over pm_loop (see pmap/aio.h).
 *
 * Reader design. A fixed pool of `nbuf` buffers; each is FREE, READING (a
 * full read queued on the loop), DONE (result known, waiting for its turn)
 * or OUT (with the consumer). Reads are issued in sequence order while a
 * buffer is free and fewer than `ahead` are in flight; issued but not yet
 * delivered chunks form the window [next_deliver, next_issue), at most nbuf
 * long, so win[seq % nbuf] finds them. Completions arrive in any order;
 * delivery walks the window in order. The first short read (end of input)
 * or error at seq k sets stop_seq = k + 1: nothing is issued from there on,
 * later chunks are discarded, and delivery ends at k. On a regular file no
 * read is issued past the size seen so far while other reads are in flight
 * (one probe read finds the end, or growth). Streams get ahead = 1 because
 * two reads at the current position could take their data in either order.
 *
 * Everything runs on the loop's thread except pm_reader_release() from
 * another thread, which puts the buffer on the mutex-guarded `returned`
 * list and posts one refill to the loop (coalesced by post_pending). Push
 * mode holds the loop until the end has been delivered and every chunk is
 * back. pm_reader_free() cancels reads in flight and destroys the reader
 * when no read and no refill post refers to it any more; delivery is
 * guarded against re-entry so a callback may release, or free the reader.
 *
 * Writer design. Appended chunks are parked in a list sorted by seq until
 * their predecessor has been handed in; then their offset is known. On a
 * seekable descriptor they are written at once at that offset (many in
 * flight); otherwise they join a FIFO written one at a time at the current
 * position. Close waits for in-flight writes, then syncs, then reports the
 * first error. All on the loop's thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pmap/aio.h>

#include "loop_engine.h"

/* ================= reader ================= */

enum { CH_FREE, CH_READING, CH_DONE, CH_OUT };

#define NOT_READY 2

typedef struct rchunk {
    pm_aio_chunk pub;        /* first: a pm_aio_chunk * is an rchunk * */
    struct rchunk *next;     /* free / returned list */
    pm_reader *r;
    int state;
    size_t want;             /* bytes asked for */
    ssize_t res;             /* read result while DONE */
    int64_t id;              /* loop operation while READING */
} rchunk;

struct pm_reader {
    pm_loop *loop;
    int fd;
    int seekable;
    size_t chunk_size;
    unsigned ahead, nbuf;
    uint64_t next_off, end_off;   /* next read's offset; where to stop */
    uint64_t known_size;          /* regular files: size seen so far */
    uint64_t next_issue, next_deliver, stop_seq;
    unsigned inflight, out;
    rchunk *chunks, *free;
    rchunk **win;                 /* window: win[seq % nbuf] */
    unsigned char *mem;
    int ended, status;            /* end reported; its status */
    int delivering, closing, holding;
    uint64_t bytes;
    pm_reader_cb cb;
    void *arg;
    pthread_mutex_t mu;           /* guards returned, post_pending */
    rchunk *returned;
    int post_pending;
};

static void reader_destroy(pm_reader *r)
{
    pthread_mutex_destroy(&r->mu);
    free(r->mem);
    free(r->chunks);
    free(r->win);
    free(r);
}

static void maybe_destroy(pm_reader *r)
{
    if (!r->closing || r->inflight || r->delivering)
        return;
    pthread_mutex_lock(&r->mu);
    int posted = r->post_pending;
    pthread_mutex_unlock(&r->mu);
    if (!posted)
        reader_destroy(r);
}

static void update_hold(pm_reader *r)
{
    int want = r->cb && !r->closing && (!r->ended || r->out > 0);
    if (want && !r->holding)
        pm_loop_hold(r->loop);
    else if (!want && r->holding)
        pm_loop_release(r->loop);
    r->holding = want;
}

static void put_free(pm_reader *r, rchunk *c)
{
    c->state = CH_FREE;
    c->next = r->free;
    r->free = c;
}

static int may_issue(const pm_reader *r)
{
    if (r->closing || !r->free || r->inflight >= r->ahead)
        return 0;
    if (r->next_issue >= r->stop_seq || r->next_off >= r->end_off)
        return 0;
    /* Past the size seen so far, only one probe read at a time. */
    return !(r->seekable && r->next_off >= r->known_size && r->inflight > 0);
}

static void read_done(void *arg, ssize_t res);

static void issue_one(pm_reader *r)
{
    rchunk *c = r->free;
    r->free = c->next;
    size_t want = r->chunk_size;
    if (r->end_off - r->next_off < want)
        want = (size_t)(r->end_off - r->next_off);
    c->state = CH_READING;
    c->want = want;
    c->pub.seq = r->next_issue;
    c->pub.offset = r->next_off;
    c->pub.len = 0;
    r->win[r->next_issue % r->nbuf] = c;
    r->next_issue++;
    r->next_off += want;
    uint64_t off = r->seekable ? c->pub.offset : PM_LOOP_CUR;
    int64_t id = pm_loop_read(r->loop, r->fd, c->pub.data, want, off, read_done, c);
    if (id < 0) {                /* could not queue: fails at this seq */
        c->state = CH_DONE;
        c->res = id;
        r->stop_seq = c->pub.seq + 1;
        return;
    }
    c->id = id;
    r->inflight++;
}

static void issue(pm_reader *r)
{
    while (may_issue(r))
        issue_one(r);
}

/* Returns 1 with the next chunk, NOT_READY, or the end status (0, -errno). */
static int next_ready(pm_reader *r, rchunk **c_ret)
{
    if (r->ended)
        return r->status;
    if (r->next_deliver < r->stop_seq &&
        (r->next_deliver < r->next_issue || r->next_off < r->end_off)) {
        rchunk *c = r->next_deliver < r->next_issue ? r->win[r->next_deliver % r->nbuf] : NULL;
        if (!c || c->state != CH_DONE)
            return NOT_READY;
        if (c->res > 0) {
            r->win[r->next_deliver++ % r->nbuf] = NULL;
            c->state = CH_OUT;
            r->out++;
            r->bytes += c->pub.len;
            *c_ret = c;
            return 1;
        }
        r->status = (int)c->res;     /* 0: end of input; < 0: error */
    }
    r->ended = 1;
    /* Discard what was read past the end. */
    for (uint64_t s = r->next_deliver; s < r->next_issue; s++) {
        rchunk *c = r->win[s % r->nbuf];
        if (c && c->state == CH_DONE) {
            r->win[s % r->nbuf] = NULL;
            put_free(r, c);
        }
    }
    return r->status;
}

static void deliver(pm_reader *r)
{
    if (!r->cb || r->delivering || r->ended)
        return;
    r->delivering = 1;
    while (!r->closing) {
        rchunk *c = NULL;
        int st = next_ready(r, &c);
        if (st == NOT_READY)
            break;
        r->cb(r->arg, st == 1 ? &c->pub : NULL, st == 1 ? 0 : st);
        if (st != 1)
            break;
    }
    r->delivering = 0;
    update_hold(r);
    maybe_destroy(r);
}

static void read_done(void *arg, ssize_t res)
{
    rchunk *c = arg;
    pm_reader *r = c->r;
    r->inflight--;
    c->res = res;
    if (r->closing || c->pub.seq >= r->stop_seq) {
        r->win[c->pub.seq % r->nbuf] = NULL;
        put_free(r, c);
        maybe_destroy(r);
        return;
    }
    c->state = CH_DONE;
    if (res >= 0)
        c->pub.len = (size_t)res;
    if (res < 0 || (size_t)res < c->want)
        r->stop_seq = c->pub.seq + 1;
    if (res > 0 && c->pub.offset + (uint64_t)res > r->known_size)
        r->known_size = c->pub.offset + (uint64_t)res;
    issue(r);
    deliver(r);
}

/* Buffers are back: read further. deliver() may destroy r, so it is last. */
static void resume(pm_reader *r)
{
    if (r->closing) {
        maybe_destroy(r);
        return;
    }
    issue(r);
    update_hold(r);
    deliver(r);
}

static void refill(void *arg, ssize_t res)
{
    pm_reader *r = arg;
    (void)res;
    pthread_mutex_lock(&r->mu);
    rchunk *c = r->returned;
    r->returned = NULL;
    r->post_pending = 0;
    pthread_mutex_unlock(&r->mu);
    for (rchunk *next; c; c = next) {
        next = c->next;
        r->out--;
        put_free(r, c);
    }
    resume(r);
}

static int returns_pending(pm_reader *r)
{
    pthread_mutex_lock(&r->mu);
    int pending = r->returned != NULL || r->post_pending;
    pthread_mutex_unlock(&r->mu);
    return pending;
}

void pm_reader_release(pm_reader *r, pm_aio_chunk *chunk)
{
    rchunk *c = (rchunk *)chunk;
    if (pm__loop_on_thread(r->loop)) {
        r->out--;
        put_free(r, c);
        resume(r);
        return;
    }
    pthread_mutex_lock(&r->mu);
    c->next = r->returned;
    r->returned = c;
    int post = !r->post_pending;
    r->post_pending = 1;
    pthread_mutex_unlock(&r->mu);
    if (post && pm_loop_post(r->loop, refill, r) < 0) {
        /* Out of memory: the buffer waits on `returned`; the next refill
         * or the reader's end picks it up. */
        pthread_mutex_lock(&r->mu);
        r->post_pending = 0;
        pthread_mutex_unlock(&r->mu);
    }
}

int pm_reader_next(pm_reader *r, pm_aio_chunk **chunk_ret)
{
    if (r->cb)
        return -EINVAL;
    for (;;) {
        rchunk *c = NULL;
        int st = next_ready(r, &c);
        if (st == 1) {
            *chunk_ret = &c->pub;
            return 1;
        }
        if (st != NOT_READY)
            return st;
        issue(r);
        if (r->inflight == 0 && !returns_pending(r))
            return -ENOBUFS;
        int rc = pm_loop_run_once(r->loop, 1);
        if (rc < 0)
            return rc;
    }
}

static int reader_opts(const pm_reader_opts *o, pm_reader *r, int seekable)
{
    r->chunk_size = o->chunk_size ? o->chunk_size : (size_t)1 << 20;
    r->ahead = seekable ? (o->ahead ? o->ahead : 4) : 1;
    r->nbuf = o->buffers ? o->buffers : r->ahead + 2;
    if (r->nbuf < r->ahead)
        r->nbuf = r->ahead;
    if (r->chunk_size > SIZE_MAX / 2 / r->nbuf)
        return -EINVAL;
    r->next_off = seekable ? o->offset : 0;
    r->end_off = o->length == 0 || o->length > UINT64_MAX - r->next_off
                 ? UINT64_MAX : r->next_off + o->length;
    r->stop_seq = UINT64_MAX;
    r->cb = o->on_chunk;
    r->arg = o->arg;
    return 0;
}

static int reader_alloc(pm_reader *r)
{
    size_t stride = (r->chunk_size + 4095) & ~(size_t)4095;
    r->chunks = calloc(r->nbuf, sizeof *r->chunks);
    r->win = calloc(r->nbuf, sizeof *r->win);
    if (!r->chunks || !r->win || posix_memalign((void **)&r->mem, 4096, stride * r->nbuf))
        return -ENOMEM;
    for (unsigned i = r->nbuf; i-- > 0;) {
        r->chunks[i].r = r;
        r->chunks[i].pub.data = r->mem + stride * i;
        put_free(r, &r->chunks[i]);
    }
    return 0;
}

int pm_reader_new(pm_loop *loop, int fd, const pm_reader_opts *opts, pm_reader **reader_ret)
{
    pm_reader_opts o = opts ? *opts : (pm_reader_opts){0};
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    int seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode);
    pm_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    r->loop = loop;
    r->fd = fd;
    r->seekable = seekable;
    r->known_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX;
    int rc = reader_opts(&o, r, seekable);
    if (rc == 0)
        rc = reader_alloc(r);
    if (rc < 0) {
        reader_destroy(r);
        return rc;
    }
    if (S_ISREG(st.st_mode))
        posix_fadvise(fd, (off_t)r->next_off, 0, POSIX_FADV_SEQUENTIAL);
    issue(r);
    if (r->inflight == 0 && r->stop_seq != UINT64_MAX) {
        rc = (int)r->win[0]->res;    /* the first read could not be queued */
        reader_destroy(r);
        return rc;
    }
    update_hold(r);
    *reader_ret = r;
    return 0;
}

void pm_reader_free(pm_reader *r)
{
    if (!r)
        return;
    r->closing = 1;
    update_hold(r);
    for (unsigned i = 0; i < r->nbuf; i++)
        if (r->chunks[i].state == CH_READING)
            pm_loop_cancel(r->loop, r->chunks[i].id);
    maybe_destroy(r);
}

uint64_t pm_reader_bytes(const pm_reader *r)
{
    return r->bytes;
}

/* ================= writer ================= */

typedef struct wreq {
    struct wreq *next;
    pm_writer *w;
    const void *data;
    size_t len;
    uint64_t seq, off;
    int64_t id;              /* loop operation while in flight */
    pm_loop_cb cb;
    void *arg;
} wreq;

struct pm_writer {
    pm_loop *loop;
    int fd;
    int seekable;            /* pwrite at offsets works (not a stream, not O_APPEND) */
    int sync;
    int appended;            /* pm_writer_append was used */
    uint64_t next_seq, append_off;
    wreq *parked;            /* appends waiting for a predecessor, by seq */
    wreq *fifo, *fifo_tail;  /* streams: in order, one at a time */
    wreq *inflight_list;     /* for cancellation on free */
    unsigned inflight;
    int64_t sync_id;         /* the fsync in flight, or 0 */
    int err;
    uint64_t bytes;
    int closing, close_started, closed, freeing;
    int in_cb;               /* inside a write's callback */
    pm_loop_cb close_cb;
    void *close_arg;
};

static void writer_check_close(pm_writer *w);
static void fifo_pump(pm_writer *w);

static void track(pm_writer *w, wreq *q, int add)
{
    if (add) {
        q->next = w->inflight_list;
        w->inflight_list = q;
        w->inflight++;
        return;
    }
    for (wreq **pp = &w->inflight_list; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    w->inflight--;
}

static void write_done(void *arg, ssize_t res)
{
    wreq *q = arg;
    pm_writer *w = q->w;
    track(w, q, 0);
    if (res < 0 && w->err == 0)
        w->err = (int)res;
    if (res > 0)
        w->bytes += (uint64_t)res;
    w->in_cb++;                  /* the callback may free the writer */
    if (q->cb)
        q->cb(q->arg, res);
    w->in_cb--;
    free(q);
    fifo_pump(w);
    writer_check_close(w);
}

static void submit_write(pm_writer *w, wreq *q, uint64_t off)
{
    track(w, q, 1);
    int64_t id = pm_loop_write(w->loop, w->fd, q->data, q->len, off, write_done, q);
    if (id < 0)
        write_done(q, id);
    else
        q->id = id;
}

static void fifo_pump(pm_writer *w)
{
    if (w->freeing || w->seekable || w->inflight > 0 || !w->fifo)
        return;
    wreq *q = w->fifo;
    w->fifo = q->next;
    if (!w->fifo)
        w->fifo_tail = NULL;
    submit_write(w, q, PM_LOOP_CUR);
}

static wreq *new_req(pm_writer *w, const void *data, size_t len, pm_loop_cb cb, void *arg)
{
    wreq *q = calloc(1, sizeof *q);
    if (q) {
        q->w = w;
        q->data = data;
        q->len = len;
        q->cb = cb;
        q->arg = arg;
    }
    return q;
}

int pm_writer_write_at(pm_writer *w, uint64_t off, const void *data, size_t len,
                       pm_loop_cb cb, void *arg)
{
    if (w->closing)
        return -EINVAL;
    if (!w->seekable)
        return -ESPIPE;
    wreq *q = new_req(w, data, len, cb, arg);
    if (!q)
        return -ENOMEM;
    submit_write(w, q, off);
    return 0;
}

/* Starts the parked appends whose predecessors are all in. */
static void release_parked(pm_writer *w)
{
    while (w->parked && w->parked->seq == w->next_seq) {
        wreq *q = w->parked;
        w->parked = q->next;
        w->next_seq++;
        if (w->seekable) {
            uint64_t off = w->append_off;
            w->append_off += q->len;
            submit_write(w, q, off);
        } else {
            q->next = NULL;
            if (w->fifo_tail)
                w->fifo_tail->next = q;
            else
                w->fifo = q;
            w->fifo_tail = q;
        }
    }
    fifo_pump(w);
}

int pm_writer_append(pm_writer *w, uint64_t seq, const void *data, size_t len,
                     pm_loop_cb cb, void *arg)
{
    if (w->closing)
        return -EINVAL;
    if (seq < w->next_seq)
        return -EEXIST;
    wreq **pp = &w->parked;
    while (*pp && (*pp)->seq < seq)
        pp = &(*pp)->next;
    if (*pp && (*pp)->seq == seq)
        return -EEXIST;
    wreq *q = new_req(w, data, len, cb, arg);
    if (!q)
        return -ENOMEM;
    q->seq = seq;
    q->next = *pp;
    *pp = q;
    w->appended = 1;
    release_parked(w);
    return 0;
}

static void close_done(pm_writer *w)
{
    w->closed = 1;
    if (w->appended && w->seekable)
        lseek(w->fd, (off_t)w->append_off, SEEK_SET);
    if (w->close_cb)
        w->close_cb(w->close_arg, w->err);
}

static void sync_done(void *arg, ssize_t res)
{
    pm_writer *w = arg;
    w->inflight--;
    w->sync_id = 0;
    if (res < 0 && w->err == 0)
        w->err = (int)res;
    if (w->freeing)
        free(w);
    else
        close_done(w);
}

/* After any completion: destroy a freed writer, or move close along. */
static void writer_check_close(pm_writer *w)
{
    if (w->freeing) {
        if (w->inflight == 0 && w->in_cb == 0)
            free(w);
        return;
    }
    if (!w->closing || w->close_started || w->inflight > 0 || w->fifo)
        return;
    w->close_started = 1;
    if (w->sync && w->err == 0) {
        int64_t id = pm_loop_fsync(w->loop, w->fd, w->sync == 2, sync_done, w);
        if (id >= 0) {
            w->inflight++;
            w->sync_id = id;
            return;
        }
        w->err = (int)id;
    }
    close_done(w);
}

/* Fails the appends that never got their predecessor. */
static void fail_parked(pm_writer *w)
{
    if (!w->parked)
        return;
    if (w->err == 0)
        w->err = -EINVAL;
    while (w->parked) {
        wreq *q = w->parked;
        w->parked = q->next;
        if (q->cb)
            q->cb(q->arg, -ECANCELED);
        free(q);
    }
}

int pm_writer_close(pm_writer *w, pm_loop_cb cb, void *arg)
{
    if (w->closing)
        return -EINVAL;
    w->closing = 1;
    w->close_cb = cb;
    w->close_arg = arg;
    fail_parked(w);
    writer_check_close(w);
    return 0;
}

int pm_writer_finish(pm_writer *w)
{
    int rc = pm_writer_close(w, NULL, NULL);
    if (rc < 0)
        return rc;
    while (!w->closed) {
        rc = pm_loop_run_once(w->loop, 1);
        if (rc < 0)
            return rc;
    }
    return w->err;
}

void pm_writer_free(pm_writer *w)
{
    if (!w)
        return;
    w->freeing = 1;
    w->close_cb = NULL;
    fail_parked(w);
    for (wreq *q = w->fifo, *next; q; q = next) {
        next = q->next;
        if (q->cb)
            q->cb(q->arg, -ECANCELED);
        free(q);
    }
    w->fifo = w->fifo_tail = NULL;
    for (wreq *q = w->inflight_list; q; q = q->next)
        pm_loop_cancel(w->loop, q->id);
    if (w->sync_id > 0)
        pm_loop_cancel(w->loop, w->sync_id);
    if (w->inflight == 0 && w->in_cb == 0)
        free(w);
}

int pm_writer_new(pm_loop *loop, int fd, const pm_writer_opts *opts, pm_writer **writer_ret)
{
    pm_writer_opts o = opts ? *opts : (pm_writer_opts){0};
    struct stat st;
    if (o.sync < 0 || o.sync > 2)
        return -EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st) < 0)
        return -errno;
    pm_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->fd = fd;
    /* Syncing means nothing on pipes, sockets and terminals. */
    w->sync = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode) ? 0 : o.sync;
    w->seekable = (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) && !(fl & O_APPEND);
    if (w->seekable) {
        off_t pos = o.append_at ? (off_t)o.append_at : lseek(fd, 0, SEEK_CUR);
        w->append_off = pos < 0 ? 0 : (uint64_t)pos;
    }
    *writer_ret = w;
    return 0;
}

uint64_t pm_writer_bytes(const pm_writer *w)
{
    return w->bytes;
}
