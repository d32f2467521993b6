/* deflate_isal.c - the ISA-L deflate engine (see deflate_engine.h), for
 * complete streams only: pmap's fastest level of the blocked format.
 *
 * isal_deflate_stateless() compresses a whole buffer in one call. On 1 MiB
 * chunks here its level 3 is 2.4-3.3 times as fast as zlib's -1 and smaller
 * than pigz -1 on every input measured (bench/bench_codec; the table in
 * BENCHMARKS.md); its level 2 is faster still but 0.3% larger than pigz -1
 * on a tar of system files. It has no preset dictionary in stateless mode, so it is
 * flagged PM__DEFLATE_WHOLE_ONLY. Levels 0..3 are ISA-L's own; each but 0
 * needs a level buffer, allocated with the state (one per deflater, so per
 * thread). When the output does not fit, ISA-L returns STATELESS_OVERFLOW:
 * -ENOSPC here, and gz.c hands the block to zlib.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <isa-l/igzip_lib.h>

#include "deflate_engine.h"

typedef struct isal_deflater {
    struct isal_zstream s;
    uint32_t level;
    uint32_t level_buf_size;
    unsigned char level_buf[];
} isal_deflater;

static int isal_new(int level, void **state_ret)
{
    static const uint32_t bufs[] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
                                    ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
    if (level < 0 || level > 3)
        return -EINVAL;
    isal_deflater *e = malloc(sizeof *e + bufs[level]);
    if (!e)
        return -ENOMEM;
    e->level = (uint32_t)level;
    e->level_buf_size = bufs[level];
    *state_ret = e;
    return 0;
}

static void isal_free(void *state)
{
    free(state);
}

static ssize_t isal_deflate_block(void *state, const void *dict, size_t dict_len,
                                  const void *in, size_t len, int last, void *out,
                                  size_t out_cap)
{
    (void)dict;
    isal_deflater *e = state;
    if (dict_len != 0 || !last || len > UINT32_MAX)
        return -EINVAL;         /* not a complete stream: another engine's job */
    struct isal_zstream *s = &e->s;
    isal_deflate_stateless_init(s);
    s->level = e->level;
    s->level_buf = e->level_buf_size ? e->level_buf : NULL;
    s->level_buf_size = e->level_buf_size;
    s->next_in = (uint8_t *)in;
    s->avail_in = (uint32_t)len;
    s->next_out = out;
    s->avail_out = out_cap < UINT32_MAX ? (uint32_t)out_cap : UINT32_MAX;
    s->end_of_stream = 1;
    s->flush = NO_FLUSH;
    int rc = isal_deflate_stateless(s);
    if (rc == STATELESS_OVERFLOW)
        return -ENOSPC;
    if (rc != COMP_OK)
        return -EINVAL;
    return (ssize_t)(s->next_out - (uint8_t *)out);
}

/* What the stateless deflater may need: ISA-L falls back to stored blocks
 * (5 bytes per 64 KiB) when compression does not pay, plus its header. */
static size_t isal_bound(size_t len)
{
    return len + 5 * (len / 65535 + 1) + ISAL_DEF_MAX_HDR_SIZE + 64;
}

const pm__deflate_engine pm__deflate_isal = {
    .name = "isal",
    .level_min = 0,
    .level_max = 3,
    .flags = PM__DEFLATE_WHOLE_ONLY,
    .new = isal_new,
    .free = isal_free,
    .deflate_block = isal_deflate_block,
    .bound = isal_bound,
};
