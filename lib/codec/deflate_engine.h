/* deflate_engine.h - internal interface between the gzip container code
 * (gz.c) and the raw-deflate engines that compress one block.
 *
 * An engine is an ops table. gz.c picks one at run time when a deflater is
 * created (pm__deflate_engine_find) and never calls an engine's library
 * directly, so a new engine (libdeflate, ISA-L...) is one new file plus one
 * line in the table in gz.c; pmap/gz.h and the pipelines stay unchanged.
 *
 * A general engine honours the whole block contract of
 * pm_gz_deflate_block(): raw deflate of `in` with the up to PM_GZ_DICT_SIZE
 * bytes of `dict` as the preset dictionary (history for back-references, not
 * output); a non-last block ends on a byte boundary with no final-block bit
 * set, so blocks concatenate into one deflate stream; the last block ends
 * the stream.
 *
 * A whole-stream engine (flag PM__DEFLATE_WHOLE_ONLY) can only write a
 * complete stream: no dictionary, last block. libdeflate is one (no preset
 * dictionary, its output always ends with a final block). A deflater pairs
 * it with a general engine: the whole-stream engine gets the blocks it can
 * do that are not empty (a file that fits in one block), the general engine
 * everything else, so multi-block output does not depend on the pairing.
 */
#ifndef PM_DEFLATE_ENGINE_H
#define PM_DEFLATE_ENGINE_H

#include <stddef.h>
#include <sys/types.h>

#include <pmap/gz.h>

typedef struct pm__deflate_engine {
    const char *name;                         /* "zlib", ... */
    unsigned flags;                           /* PM__DEFLATE_* */
    int level_min, level_max;                 /* the engine's own levels */
    /* Creates per-thread state for one of the engine's own levels (zlib
     * 1..9, libdeflate 1..12, ISA-L 0..3); 0 or -errno. */
    int (*new)(int level, void **state_ret);
    void (*free)(void *state);                /* NULL: no-op */
    /* One block, as pm_gz_deflate_block(); dict_len <= PM_GZ_DICT_SIZE.
     * A whole-stream engine returns -EINVAL unless dict_len == 0 && last;
     * it may need more room than it ends up using (then -ENOSPC). */
    ssize_t (*deflate_block)(void *state, const void *dict, size_t dict_len,
                             const void *in, size_t len, int last,
                             void *out, size_t out_cap);
    /* Upper bound on deflate_block()'s output, last or not, any level. */
    size_t (*bound)(size_t len);
} pm__deflate_engine;

#define PM__DEFLATE_WHOLE_ONLY 1u   /* only complete streams: no dict, last */

extern const pm__deflate_engine pm__deflate_zlib;          /* general */
extern const pm__deflate_engine pm__deflate_libdeflate;    /* whole-stream */
extern const pm__deflate_engine pm__deflate_isal;          /* whole-stream */

/* The engine called `name`, or NULL if none. name NULL: the default, which
 * is the first engine in gz.c's table (libdeflate) unless the environment
 * variable PMAP_DEFLATE_ENGINE names another one (for comparisons:
 * PMAP_DEFLATE_ENGINE=zlib gives zlib for every block). */
const pm__deflate_engine *pm__deflate_engine_find(const char *name);

/* pm_gz_deflater_new() with an explicit engine (NULL: the default). A
 * general engine then does every block; a whole-stream engine is paired with
 * the first general engine of the table, which does the other blocks. */
int pm__gz_deflater_new_engine(const pm__deflate_engine *engine, int level,
                               pm_gz_deflater **d_ret);

#endif
