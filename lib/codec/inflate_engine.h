/* inflate_engine.h - internal interface between the streaming gzip decoder
 * (gz_inflate.c) and the raw-inflate engines that decode a member's deflate
 * data.
 *
 * As with deflate_engine.h, an engine is an ops table and the decoder never
 * calls an engine's library directly. The decoder parses headers, trailers
 * and what lies between members itself; an engine sees only the deflate
 * stream of one member, fed in pieces of any size.
 *
 * Engines: ISA-L (the default: 2-3 times zlib's speed here) and zlib. The
 * environment variable PMAP_INFLATE_ENGINE=zlib selects zlib (comparisons,
 * and a second opinion on a file).
 */
#ifndef PM_INFLATE_ENGINE_H
#define PM_INFLATE_ENGINE_H

#include <stddef.h>

typedef struct pm__inflate_result {
    size_t used;                /* input bytes consumed by this call */
    size_t made;                /* output bytes written */
    int end;                    /* the deflate stream ended in this call */
    /* end only: bytes after the stream that the engine had read ahead and
     * counted as consumed (they begin the trailer). At most 8. */
    unsigned char back[8];
    size_t back_len;
    const char *msg;            /* on error: what is wrong (static text) */
} pm__inflate_result;

typedef struct pm__inflate_engine {
    const char *name;                        /* "isal", "zlib" */
    int (*new)(void **state_ret);            /* 0 or -ENOMEM */
    void (*free)(void *state);               /* NULL: no-op */
    void (*reset)(void *state);              /* start a new raw deflate stream */
    /* Decodes from in[0..in_len) into out[0..out_cap). Returns 0 (progress,
     * or none possible without more input or more room), -EBADMSG for
     * invalid data, -ENOMEM; r says what was done. Never consumes input
     * after the stream's end except as reported in r->back. */
    int (*run)(void *state, const unsigned char *in, size_t in_len, unsigned char *out,
               size_t out_cap, pm__inflate_result *r);
} pm__inflate_engine;

extern const pm__inflate_engine pm__inflate_isal;
extern const pm__inflate_engine pm__inflate_zlib;

/* The engine called `name`; NULL name: PMAP_INFLATE_ENGINE's, else ISA-L.
 * NULL if there is no such engine. */
const pm__inflate_engine *pm__inflate_engine_find(const char *name);

#endif
