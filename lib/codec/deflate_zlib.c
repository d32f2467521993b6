/* deflate_zlib.c - the zlib deflate engine (see deflate_engine.h).
 *
 * One z_stream per deflater (so per thread), raw deflate (windowBits -15,
 * memLevel 8), reset with deflateReset() for every block and primed with the
 * preceding input through deflateSetDictionary(). A non-last block is ended
 * with Z_BLOCK, which completes the deflate block without aligning, and is
 * then brought to a byte boundary as cheaply as possible:
 *   - 0 bits pending: nothing to add;
 *   - an even number of bits pending: empty fixed-code blocks (10 bits each:
 *     3 header bits and the 7-bit end-of-block code) until aligned, at most
 *     three, i.e. at most 30 bits;
 *   - an odd number: a 10-bit block cannot fix the parity, so Z_SYNC_FLUSH
 *     (an empty stored block: 3 bits, padding, 4 bytes of lengths).
 * On text this costs about 2.5 bytes per block against 4.5 for a plain
 * Z_SYNC_FLUSH. The last block is ended with Z_FINISH.
 *
 * Buffers larger than a uInt are fed in slices; nothing here is shared
 * between deflaters.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include <zlib.h>

#include "deflate_engine.h"

#define ZSLICE ((size_t)1 << 30)    /* largest avail_in/avail_out we pass */

typedef struct zengine {
    z_stream strm;
} zengine;

static int zl_new(int level, void **state_ret)
{
    zengine *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    int rc = deflateInit2(&e->strm, level, Z_DEFLATED, -15, 8,
                          Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) {
        free(e);
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    *state_ret = e;
    return 0;
}

static void zl_free(void *state)
{
    zengine *e = state;
    if (!e)
        return;
    deflateEnd(&e->strm);
    free(e);
}

/* The output cursor of one block. */
typedef struct zout {
    unsigned char *p;
    size_t left;
} zout;

/* Runs deflate(flush) over in[0..len) until the input is consumed and the
 * flush is complete. 0, or -ENOSPC when the output filled up first. */
static int zl_run(z_stream *s, int flush, const unsigned char *in, size_t len,
                  zout *o)
{
    for (;;) {
        size_t ai = len < ZSLICE ? len : ZSLICE;
        size_t ao = o->left < ZSLICE ? o->left : ZSLICE;
        int f = ai == len ? flush : Z_NO_FLUSH;
        s->next_in = (unsigned char *)in;
        s->avail_in = (uInt)ai;
        s->next_out = o->p;
        s->avail_out = (uInt)ao;
        int rc = deflate(s, f);
        size_t used = ai - s->avail_in, made = ao - s->avail_out;
        in += used;
        len -= used;
        o->p += made;
        o->left -= made;
        if (rc == Z_STREAM_ERROR)
            return -EINVAL;
        if (rc == Z_STREAM_END)
            return 0;
        /* A flush that returns with output room left is complete. */
        if (len == 0 && f == flush && s->avail_out != 0 && flush != Z_FINISH)
            return 0;
        if (o->left == 0)
            return -ENOSPC;
        if (rc == Z_BUF_ERROR && used == 0 && made == 0)
            return -EINVAL;     /* no progress with room on both sides */
    }
}

/* Brings a Z_BLOCK-ended stream to a byte boundary (see the top comment). */
static int zl_align(z_stream *s, zout *o)
{
    int bits;
    if (deflatePending(s, NULL, &bits) != Z_OK)
        return -EINVAL;
    if (bits & 1)
        return zl_run(s, Z_SYNC_FLUSH, NULL, 0, o);
    if (bits == 0)
        return 0;
    while (bits & 7) {
        if (deflatePrime(s, 10, 2) != Z_OK)    /* BFINAL 0, BTYPE 01, EOB */
            return -EINVAL;
        if (deflatePending(s, NULL, &bits) != Z_OK)
            return -EINVAL;
    }
    return zl_run(s, Z_BLOCK, NULL, 0, o);     /* writes out the primed bytes */
}

static ssize_t zl_deflate_block(void *state, const void *dict, size_t dict_len,
                                const void *in, size_t len, int last,
                                void *out, size_t out_cap)
{
    zengine *e = state;
    z_stream *s = &e->strm;
    zout o = {out, out_cap};
    if (len == 0 && !last)
        return 0;               /* nothing to add to the stream */
    if (deflateReset(s) != Z_OK)
        return -EINVAL;
    if (dict_len > 0 &&
        deflateSetDictionary(s, dict, (uInt)dict_len) != Z_OK)
        return -EINVAL;
    int rc = zl_run(s, last ? Z_FINISH : Z_BLOCK, in, len, &o);
    if (rc == 0 && !last)
        rc = zl_align(s, &o);
    if (rc == 0 && !last) {
        unsigned pending;
        int bits;
        if (deflatePending(s, &pending, &bits) != Z_OK || bits != 0)
            return -EINVAL;
        if (pending != 0)
            return -ENOSPC;
    }
    return rc < 0 ? rc : (ssize_t)(out_cap - o.left);
}

/* zlib's documented bound for windowBits 15 / memLevel 8 in one Z_FINISH
 * call is len + len/4096 + len/16384 + len/2^25 + 7. Ending with Z_BLOCK
 * instead emits the same deflate blocks; the alignment then adds at most
 * 5 bytes (an empty stored block). 16 more bytes of slack on top. */
static size_t zl_bound(size_t len)
{
    return len + (len >> 12) + (len >> 14) + (len >> 25) + 7 + 5 + 16;
}

const pm__deflate_engine pm__deflate_zlib = {
    .name = "zlib",
    .level_min = 1,
    .level_max = 9,
    .new = zl_new,
    .free = zl_free,
    .deflate_block = zl_deflate_block,
    .bound = zl_bound,
};
