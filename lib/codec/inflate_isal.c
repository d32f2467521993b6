/* inflate_isal.c - the ISA-L raw-inflate engine (see inflate_engine.h), the
 * streaming decoder's default: ISA-L's inflate decodes 2-3 times as fast as
 * zlib's here (igzip -d 0.48 s against pigz -d 1.33 s on a 319 MB tar).
 *
 * ISA-L reads input ahead into a 64-bit bit buffer, so when the stream
 * ends up to 8 bytes after it may have been taken in already. ISA-L 2.30
 * (Debian 12's, what pmap builds with) leaves those bytes in the bit
 * buffer, where the engine takes them out (whole bytes above the final
 * byte's padding bits) and hands them to the decoder as
 * pm__inflate_result.back: the trailer's first bytes. Later ISA-L versions
 * give them back by moving next_in back instead; that is handled while it
 * stays within this call's input, and reported as an error (never a wrong
 * result) if it ever reached into an earlier call's.
 *
 * State: one struct inflate_state (85 KiB, most of it the 64 KiB history
 * buffer ISA-L needs when output comes in small pieces) per decoder.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>

#include "inflate_engine.h"

#define SLICE ((size_t)1 << 30)     /* largest avail_in/avail_out we pass */

static void isal_reset(void *state)
{
    struct inflate_state *s = state;
    isal_inflate_init(s);
    s->crc_flag = ISAL_DEFLATE;         /* raw deflate: the decoder does the gzip framing */
    s->hist_bits = 0;                   /* the full 32 KiB window */
}

static int isal_new(void **state_ret)
{
    struct inflate_state *e = malloc(sizeof *e);
    if (!e)
        return -ENOMEM;
    isal_reset(e);
    *state_ret = e;
    return 0;
}

static void isal_free(void *state)
{
    free(state);
}

static const char *isal_message(int rc)
{
    switch (rc) {
    case ISAL_INVALID_BLOCK:    return "invalid block";
    case ISAL_INVALID_SYMBOL:   return "invalid code";
    case ISAL_INVALID_LOOKBACK: return "invalid distance too far back";
    default:                    return "format violated";
    }
}

static int isal_run(void *state, const unsigned char *in, size_t in_len, unsigned char *out,
                    size_t out_cap, pm__inflate_result *r)
{
    struct inflate_state *s = state;
    size_t ai = in_len < SLICE ? in_len : SLICE, ao = out_cap < SLICE ? out_cap : SLICE;
    memset(r, 0, sizeof *r);
    s->next_in = (uint8_t *)in;
    s->avail_in = (uint32_t)ai;
    s->next_out = out;
    s->avail_out = (uint32_t)ao;
    int rc = isal_inflate(s);
    r->made = ao - s->avail_out;
    if (rc < 0) {
        r->msg = isal_message(rc);
        return -EBADMSG;
    }
    if (s->avail_in > ai) {     /* a later ISA-L rewound into an earlier call's input */
        r->msg = "inflate engine state error";
        return -EBADMSG;
    }
    r->used = ai - s->avail_in;
    r->end = s->block_state == ISAL_BLOCK_FINISH;
    if (r->end && s->read_in_length >= 8) {     /* read ahead and kept (ISA-L 2.30) */
        uint64_t bits = s->read_in >> (s->read_in_length % 8);
        r->back_len = (size_t)s->read_in_length / 8;
        for (size_t i = 0; i < r->back_len; i++)
            r->back[i] = (unsigned char)(bits >> (8 * i));
        s->read_in = 0;
        s->read_in_length = 0;
    }
    return 0;
}

const pm__inflate_engine pm__inflate_isal = {
    .name = "isal",
    .new = isal_new,
    .free = isal_free,
    .reset = isal_reset,
    .run = isal_run,
};
