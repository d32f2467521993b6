/* inflate_zlib.c - the zlib raw-inflate engine (see inflate_engine.h):
 * inflate with windowBits -15. zlib never reads past the end of the
 * stream, so it gives nothing back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "inflate_engine.h"

#define SLICE ((size_t)1 << 30)     /* largest avail_in/avail_out we pass */

static int zl_new(void **state_ret)
{
    z_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = inflateInit2(s, -15);
    if (rc != Z_OK) {
        free(s);
        return -ENOMEM;
    }
    *state_ret = s;
    return 0;
}

static void zl_free(void *state)
{
    if (!state)
        return;
    inflateEnd(state);
    free(state);
}

static void zl_reset(void *state)
{
    inflateReset(state);
}

static int zl_run(void *state, const unsigned char *in, size_t in_len, unsigned char *out,
                  size_t out_cap, pm__inflate_result *r)
{
    z_stream *s = state;
    size_t ai = in_len < SLICE ? in_len : SLICE, ao = out_cap < SLICE ? out_cap : SLICE;
    memset(r, 0, sizeof *r);
    s->next_in = (unsigned char *)in;
    s->avail_in = (uInt)ai;
    s->next_out = out;
    s->avail_out = (uInt)ao;
    int rc = inflate(s, Z_NO_FLUSH);
    r->used = ai - s->avail_in;
    r->made = ao - s->avail_out;
    switch (rc) {
    case Z_STREAM_END:
        r->end = 1;
        return 0;
    case Z_OK:
    case Z_BUF_ERROR:
        return 0;
    case Z_MEM_ERROR:
        r->msg = "out of memory";
        return -ENOMEM;
    default:
        r->msg = s->msg ? s->msg : "format violated";
        return -EBADMSG;
    }
}

const pm__inflate_engine pm__inflate_zlib = {
    .name = "zlib",
    .new = zl_new,
    .free = zl_free,
    .reset = zl_reset,
    .run = zl_run,
};
