/* framing.c - chunk boundaries that follow the content (pm_frame_fn).
 *
 * Reads are issued and complete as without framing (fixed-size reads at
 * offsets, many in flight); framing happens on the I/O thread between a
 * read's completion and the chunk's dispatch to the workers, one chunk at
 * a time in each file's order:
 *
 *   - a completed read waits in the file's sequence list (f->frame) until
 *     every chunk before it was framed;
 *   - framing chunk k asks the framer where its last record ends; the bytes
 *     after that (its tail) belong to chunk k+1, so chunk k waits
 *     (frame_pending) until k+1's read is in, its tail is copied into the
 *     carry area that precedes k+1's data in its token, and only then is k
 *     dispatched -- a chunk's bytes are never touched once a worker may
 *     read them;
 *   - the file's last chunk, a chunk without a record end, and every chunk
 *     of a failed file go out as they are.
 * The carry area holds carry_size bytes (chunk_size unless set): a cut that
 * would leave a longer tail is not made (the chunk goes whole). A framer
 * that cuts at its last record end never leaves one when its records fit a
 * read; one that cuts earlier (to bound a chunk's output) or defers a whole
 * chunk (PM_FRAME_DEFER: a record longer than what was read so far) must
 * keep its tails within carry_size. A deferred chunk goes to the stages
 * empty, in its place in the file's order.
 * Streams are framed in io.c's held-chunk logic with the same cut.
 */
#define _GNU_SOURCE
#include <string.h>

#include "pipeline_internal.h"

size_t pm_frame_records(const unsigned char *data, size_t len, void *arg)
{
    const unsigned char *end = memrchr(data, *(const unsigned char *)arg, len);
    return end ? (size_t)(end - data) + 1 : 0;
}

/* Frames c: returns the bytes after its last record (its tail), 0 when c
 * goes whole. c->len is cut to its records. */
static size_t cut(pm_pipeline *pl, pl_chunk *c)
{
    if (c->pub.last || c->pub.len == 0 || atomic_load(&c->file->status))
        return 0;
    size_t n = pl->o.frame(c->pub.data, c->pub.len, pl->o.frame_arg);
    if (n == PM_FRAME_DEFER)
        n = 0;                         /* all of it is the tail */
    else if (n == 0 || n >= c->pub.len)
        return 0;
    if (c->pub.len - n > pl->o.carry_size)
        return 0;                      /* the tail must fit the carry room */
    size_t tail = c->pub.len - n;
    c->pub.len = n;
    return tail;
}

/* Moves from's tail (tail bytes after from->len) in front of to's data. */
static void carry(pl_chunk *from, size_t tail, pl_chunk *to)
{
    unsigned char *dst = (unsigned char *)to->pub.data - tail;
    memcpy(dst, from->pub.data + from->pub.len, tail);
    to->pub.data = dst;
    to->pub.len += tail;
    to->pub.offset -= tail;
}

void pm__pl_frame_stream(pm_pipeline *pl, pl_chunk *held, pl_chunk *next)
{
    size_t tail = cut(pl, held);
    if (tail)
        carry(held, tail, next);
}

/* Sends the pending chunk whole (no successor will come). */
static void release_pending(pm_pipeline *pl, pl_file *f)
{
    pl_chunk *p = f->frame_pending;
    if (!p)
        return;
    f->frame_pending = NULL;
    p->pub.len += p->frame_tail;       /* its tail stays its own */
    p->frame_tail = 0;
    pm__pl_send(pl, p);
}

void pm__pl_frame_flush(pm_pipeline *pl, pl_file *f)
{
    if (f->read_eof && f->frame.next == f->reads_issued)
        release_pending(pl, f);
}

void pm__pl_frame_arrive(pm_pipeline *pl, pl_chunk *c)
{
    pl_file *f = c->file;
    c->sq.seq = c->pub.seq;
    pm__seq_park(&f->frame, &c->sq);
    pm__seqnode *n;
    while ((n = pm__seq_ready(&f->frame))) {
        c = pm__container_of(n, pl_chunk, sq);
        f->frame.next++;
        pl_chunk *p = f->frame_pending;
        if (p) {
            carry(p, p->frame_tail, c);
            p->frame_tail = 0;
            f->frame_pending = NULL;
            pm__pl_send(pl, p);
        }
        size_t tail = cut(pl, c);
        if (tail) {
            c->frame_tail = tail;
            f->frame_pending = c;
        } else {
            pm__pl_send(pl, c);
        }
    }
    pm__pl_frame_flush(pl, f);
}
