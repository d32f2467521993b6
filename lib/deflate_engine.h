/* deflate_engine.h - internal interface between the gzip container code
 * (gz.c) and the raw-deflate engines that compress one block.
 *
 * An engine is an ops table. gz.c picks one at run time when a deflater is
 * created (pm__deflate_engine_find) and never calls an engine's library
 * directly, so a new engine (libdeflate, ISA-L...) is one new file plus one
 * line in the table in gz.c; pmap/gz.h and the pipelines stay unchanged.
 *
 * Every engine honours the block contract of pm_gz_deflate_block(): raw
 * deflate of `in` with the up to PM_GZ_DICT_SIZE bytes of `dict` as the
 * preset dictionary (history for back-references, not output); a non-last
 * block ends on a byte boundary with no final-block bit set, so blocks
 * concatenate into one deflate stream; the last block ends the stream.
 */
#ifndef PM_DEFLATE_ENGINE_H
#define PM_DEFLATE_ENGINE_H

#include <stddef.h>
#include <sys/types.h>

#include <pmap/gz.h>

typedef struct pm__deflate_engine {
    const char *name;                         /* "zlib", ... */
    /* Creates per-thread state for level 1..9; 0 or -errno. */
    int (*new)(int level, void **state_ret);
    void (*free)(void *state);                /* NULL: no-op */
    /* One block, as pm_gz_deflate_block(); dict_len <= PM_GZ_DICT_SIZE. */
    ssize_t (*deflate_block)(void *state, const void *dict, size_t dict_len,
                             const void *in, size_t len, int last,
                             void *out, size_t out_cap);
    /* Upper bound on deflate_block()'s output, last or not, any level. */
    size_t (*bound)(size_t len);
} pm__deflate_engine;

extern const pm__deflate_engine pm__deflate_zlib;

/* The engine called `name`, or NULL if none. name NULL: the default, which
 * is the first engine built in unless the environment variable
 * PM_DEFLATE_ENGINE names another one (for benchmarks). */
const pm__deflate_engine *pm__deflate_engine_find(const char *name);

/* pm_gz_deflater_new() with an explicit engine (NULL: the default). */
int pm__gz_deflater_new_engine(const pm__deflate_engine *engine, int level,
                               pm_gz_deflater **d_ret);

#endif
