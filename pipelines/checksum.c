/* checksum.c - CRC-32 of each file, chunks checksummed in parallel.
 *
 * Stages:
 *   crc (parallel)       CRC-32 of each chunk on its own.
 *   combine (serial)     joined in the file's order with crc32_combine,
 *                        which needs only the CRCs and the chunk lengths.
 * The value equals zlib.crc32() of the whole file.
 */
#include <string.h>

#include <pmap/gz.h>
#include "common.h"

typedef struct checksum_state {
    uint32_t crc;
    uint64_t bytes;
} checksum_state;

static int crc_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    c->value = pm_crc32(0, c->data, c->len);
    return 0;
}

static int combine_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    checksum_state *st = c->file->state;
    st->crc = pm_crc32_combine(st->crc, (uint32_t)c->value, c->len);
    st->bytes += c->len;
    return 0;
}

static void fill_result(pmp_run *run, const pm_file *f, pmp_result *r)
{
    (void)run;
    const checksum_state *st = f->state;
    r->crc32 = st->crc;
    r->bytes = st->bytes;
}

int pmp_checksum(const pmp_opts *o, const char *const *paths, size_t n,
                 pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    if (!run.pl.chunk_size)
        run.pl.chunk_size = 1024 * 1024;
    run.pl.flags &= ~PM_PL_REMOVE_INPUT;
    run.pl.flags |= PM_PL_MAP_INPUT;   /* the stages only read the data */
    run.state_size = sizeof(checksum_state);
    run.fill_result = fill_result;
    static const pmp_stage stages[] = {
        {"crc", PM_STAGE_PARALLEL, crc_stage},
        {"combine", PM_STAGE_SERIAL_IN_ORDER, combine_stage},
    };
    return pmp_run_stages(&run, stages, 2, paths, n, stats);
}
