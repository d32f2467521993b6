/* io.c - the I/O thread's transfers: chunk reads and output writes through
 * the pm_loop (io_uring, or the thread engine).
 *
 * Reading: files are read one after another in the order they finished
 * opening (files.ready). A regular file's chunk reads are all issued at
 * once as tokens allow (pread at offsets, each with up to `overlap`
 * preceding bytes read again from the page cache as its prefix). A stream
 * (stdin, a FIFO) is read one chunk at a time and a chunk is held until the
 * next read tells whether it was the last; the held chunk's tail is copied
 * as the next one's prefix. A read chunk goes to the workers at once
 * (stages.c). With PM_PL_MAP_INPUT a regular file's chunks are not read
 * but pointed into a mapping of the file (mapping.c) and sent on at once.
 *
 * Writing: PM_SINK_FILES writes pieces at their offsets into the file's
 * temporary output, many in flight (a piece someone else writes,
 * pm_chunk.out_elsewhere, is only counted); PM_SINK_FD writes one piece
 * at a time, in order, at the descriptor's position. A token comes back when its
 * chunk retired and its output was written, so a slow writer stops the
 * reader (backpressure). When a file's last piece is written, lifecycle.c
 * takes over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include <pmap/error.h>
#include "pipeline_internal.h"

/* ---- reading ---- */

void pm__pl_end_reading(pm_pipeline *pl, pl_file *f)
{
    f->read_eof = 1;
    f->chunks_total = f->reads_issued;
    pm__pl_map_drop(f);             /* its chunks keep their window */
    if (pl->files.reading == f)
        pl->files.reading = NULL;
}

void pm__pl_send(pm_pipeline *pl, pl_chunk *c)
{
    pl->stats.chunks++;
    pm__pl_dispatch(pl, c);
}

/* A chunk whose read is done: to the framer, or straight to the workers. */
static void dispatch(pm_pipeline *pl, pl_chunk *c)
{
    if (pl->o.frame && !c->file->stream)
        pm__pl_frame_arrive(pl, c);
    else
        pm__pl_send(pl, c);
}

/* Where a chunk's read lands: after the overlap (prefix) room, and after
 * the carry room when framing. */
static unsigned char *read_area(const pm_pipeline *pl, pl_chunk *c)
{
    return c->in + pl->o.overlap + (pl->o.frame ? pl->o.carry_size : 0);
}

static void on_file_read(void *arg, ssize_t res)
{
    pl_chunk *c = arg;
    pl_file *f = c->file;
    pm_pipeline *pl = f->pl;
    size_t want = c->pub.prefix_len + c->pub.len;
    f->reads_inflight--;
    if (res < 0) {
        pm__pl_file_fail(f, PM_REASON_INPUT, (int)res, "read error: %s", pm_strerror((int)res));
        pm__pl_end_reading(pl, f);
    } else if ((size_t)res != want) {
        pm__pl_file_fail(f, PM_REASON_CHANGED, -EIO, "file changed size while being read");
        pm__pl_end_reading(pl, f);
    } else {
        pl->stats.bytes_in += c->pub.len;
        f->pub.bytes_in += c->pub.len;
    }
    dispatch(pl, c);
}

/* PM_PL_MAP_INPUT: points c into a mapped window of f (mapping.c) instead
 * of reading it. Not with a framer, which copies each chunk's tail into the
 * next one's buffer. Returns 1 when c is mapped. */
static int map_chunk(pm_pipeline *pl, pl_file *f, pl_chunk *c)
{
    if (!(pl->o.flags & PM_PL_MAP_INPUT) || pl->o.frame || f->map_failed || c->pub.len == 0)
        return 0;
    const unsigned char *p = pm__pl_map_chunk(pl, f, c);
    if (!p)
        return 0;
    c->pub.data = p;
    pl->stats.bytes_in += c->pub.len;
    pl->stats.bytes_mapped += c->pub.len;
    f->pub.bytes_in += c->pub.len;
    return 1;
}

/* Issues the next chunk read of regular file f into c (or maps it). */
static void read_regular(pm_pipeline *pl, pl_file *f, pl_chunk *c)
{
    const pm_pipeline_opts *o = &pl->o;
    uint64_t size = (uint64_t)f->pub.st.st_size, off = f->next_off;
    size_t len = size - off < o->chunk_size ? (size_t)(size - off) : o->chunk_size;
    size_t pfx = off < o->overlap ? (size_t)off : o->overlap;
    c->pub.seq = f->reads_issued++;
    c->pub.offset = off;
    c->pub.data = read_area(pl, c);
    c->pub.len = len;
    c->pub.prefix_len = pfx;
    c->pub.last = off + len == size;
    f->next_off += len;
    int mapped = map_chunk(pl, f, c);
    if (c->pub.last)
        pm__pl_end_reading(pl, f);
    if (len == 0 || mapped) {       /* an empty file: one empty last chunk */
        dispatch(pl, c);
        return;
    }
    int64_t id = pm_loop_read(pl->loop, f->fd, read_area(pl, c) - pfx, pfx + len,
                              off - pfx, on_file_read, c);
    if (id < 0) {
        pm__pl_file_fail(f, PM_REASON_INPUT, (int)id, "cannot queue read: %s", pm_strerror((int)id));
        pm__pl_end_reading(pl, f);
        dispatch(pl, c);
        return;
    }
    f->reads_inflight++;
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
            if (pl->o.frame)
                pm__pl_frame_stream(pl, held, c);   /* held was not the last */
            dispatch(pl, held);
        }
        if ((size_t)res < pl->o.chunk_size) {   /* full reads are short only at EOF */
            c->pub.last = 1;
            pm__pl_end_reading(pl, f);
            dispatch(pl, c);
        } else {
            f->held = c;
        }
        return;
    }
    if (res < 0 && res != -ECANCELED)
        pm__pl_file_fail(f, PM_REASON_INPUT, (int)res, "read error: %s", pm_strerror((int)res));
    if (held) {                        /* EOF (or failure) after a full chunk */
        held->pub.last = 1;
        f->reads_issued--;             /* c's seq is not used */
        pm__pl_token_put(pl, c);
        pm__pl_end_reading(pl, f);
        dispatch(pl, held);
    } else {                           /* empty stream, or failure at once */
        c->pub.len = 0;
        c->pub.last = 1;
        pm__pl_end_reading(pl, f);
        dispatch(pl, c);
    }
}

static void read_stream(pm_pipeline *pl, pl_file *f, pl_chunk *c)
{
    c->pub.seq = f->reads_issued++;
    c->pub.offset = f->next_off;
    c->pub.data = read_area(pl, c);
    c->pub.len = 0;
    f->reads_inflight++;
    int64_t id = pm_loop_read(pl->loop, f->fd, read_area(pl, c), pl->o.chunk_size,
                              PM_LOOP_CUR, on_stream_read, c);
    if (id < 0)
        on_stream_read(c, id);
    else
        f->stream_op = id;
}

/* The file to read now: the current one, else the next that finished
 * opening. */
static pl_file *reading_file(pm_pipeline *pl)
{
    pl_files *t = &pl->files;
    if (!t->reading && t->ready_head) {
        t->reading = t->ready_head;
        t->ready_head = t->reading->ready_next;
        if (!t->ready_head)
            t->ready_tail = NULL;
    }
    return t->reading;
}

/* A failed file stops reading: the held chunk (if any) ends it. Returns 1
 * when f is done with reading. */
static int stop_failed(pm_pipeline *pl, pl_file *f)
{
    pl_chunk *held = f->held;
    if (held) {
        f->held = NULL;
        held->pub.last = 1;
        dispatch(pl, held);
    }
    if (f->stream && f->reads_inflight)
        return 0;
    pm__pl_end_reading(pl, f);
    pm__pl_frame_flush(pl, f);
    pm__pl_check_complete(pl, f);
    return 1;
}

/* Issues reads for the files being read while tokens last. */
void pm__pl_issue_reads(pm_pipeline *pl)
{
    pl_file *f;
    while ((f = reading_file(pl)) && !atomic_load(&pl->cancelled)) {
        if (atomic_load(&f->status)) {
            if (!stop_failed(pl, f))
                return;
            continue;
        }
        if (f->stream && f->reads_inflight)
            return;
        pl_chunk *c = pm__pl_token_get(pl, f);
        if (!c)
            return;
        if (f->stream)
            read_stream(pl, f, c);
        else
            read_regular(pl, f, c);
    }
}

/* Cancellation: stop reading; chunks in flight drain through the workers
 * (who skip the stages) and files finish as cancelled. */
void pm__pl_cancel_reads(pm_pipeline *pl)
{
    for (pl_file *f = pl->files.head; f; f = f->next) {
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
            pm__pl_end_reading(pl, f);
        }
        pm__pl_frame_flush(pl, f);
        pm__pl_check_complete(pl, f);
    }
    pl->files.ready_head = pl->files.ready_tail = NULL;
}

/* ---- writing ---- */

static void piece_release(pm_pipeline *pl, pl_piece *p)
{
    if (p->chunk)
        pm__pl_token_put(pl, p->chunk);
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
        pm__pl_file_fail(f, PM_REASON_OUTPUT, (int)res, "write error: %s", pm_strerror((int)res));
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
    pm__pl_check_complete(pl, f);
}

static void write_piece(pm_pipeline *pl, pl_piece *p, int fd, uint64_t off)
{
    pl_file *f = p->file;
    f->writes_inflight++;
    int64_t id = pm_loop_write(pl->loop, fd, p->buf, p->len, off, on_write, p);
    if (id < 0)
        on_write(p, id);
}

/* FD sink: one write at a time, in order, at the descriptor's position. */
static void fd_pump(pm_pipeline *pl, pl_file *f)
{
    if (pm__fifo_empty(&f->fd_pieces) || f->writes_inflight)
        return;
    pl_piece *p = pm__container_of(pm__fifo_pop(&f->fd_pieces), pl_piece, node);
    if (atomic_load(&f->status) || atomic_load(&pl->cancelled)) {
        piece_release(pl, p);
        fd_pump(pl, f);
        return;
    }
    write_piece(pl, p, pl->o.out_fd, PM_LOOP_CUR);
}

void pm__pl_handle_piece(pm_pipeline *pl, pl_piece *p)
{
    pl_file *f = p->file;
    if (p->chunk) {
        f->chunks_retired++;
        pl->bytes_done += p->chunk->pub.len;
    }
    int keep = p->len > 0 && pl->o.sink != PM_SINK_NONE &&
               !atomic_load(&f->status) && !atomic_load(&pl->cancelled);
    if (keep && p->elsewhere) {       /* written by someone else: counted */
        pl->stats.bytes_out += p->len;
        f->pub.bytes_out += p->len;
        piece_release(pl, p);
    } else if (!keep) {
        piece_release(pl, p);
    } else if (pl->o.sink == PM_SINK_FILES) {
        write_piece(pl, p, f->out_fd, p->off);
    } else {
        pm__fifo_push(&f->fd_pieces, &p->node);
        fd_pump(pl, f);
    }
    pm__pl_check_complete(pl, f);
}

/* Hands f to lifecycle.c once everything read is staged and written. */
void pm__pl_check_complete(pm_pipeline *pl, pl_file *f)
{
    if (f->phase != PL_ACTIVE || !f->read_eof || f->reads_inflight ||
        f->chunks_retired != f->chunks_total || f->writes_inflight ||
        !pm__fifo_empty(&f->fd_pieces))
        return;
    pm__pl_file_complete(pl, f);
}
