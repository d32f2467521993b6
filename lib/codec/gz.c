/* gz.c - the gzip container for compression: CRC-32 and its combination,
 * member header and trailer, and the block deflater object.
 *
 * Threads: nothing here has shared state. pm_crc32* and the header/trailer
 * writers are pure functions; a pm_gz_deflater belongs to one thread at a
 * time. The deflate engines (deflate_engine.h) are chosen when a deflater is
 * created, from the tables below:
 *   - one-member output (pigz's scheme): a general engine (zlib) for every
 *     block, and by default also a whole-stream engine (libdeflate, faster)
 *     for the blocks that are complete streams on their own: no dictionary,
 *     last, not empty; that is a file that fits in one block. Block output
 *     of every engine concatenates into one deflate stream, so the caller
 *     frames blocks into one member: header, block 0 ... block n-1 (last),
 *     trailer with the combined CRC-32 and the total length.
 *   - independent blocks (PM_GZ_INDEPENDENT, the blocked format): the
 *     whole-stream engine and level of `plans` for pmap's level; zlib only
 *     if that engine cannot do a block.
 * A whole-stream engine's state is created on its first block. If it fails
 * for lack of memory or of output room (libdeflate and ISA-L want slack),
 * the general engine does the block, so whatever room is enough for zlib
 * stays enough. An empty stream goes to zlib too: 2 bytes, as gzip writes
 * it, where libdeflate writes a 5-byte stored block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>          /* crc32_gzip_refl: carry-less multiply, the fastest here */

#include <pmap/gz.h>
#include <pmap/config.h>
#include "deflate_engine.h"
#include "le.h"

/* ---- CRC-32 ---- */

#define CRC_POLY 0xedb88320u    /* gzip's polynomial, bit-reflected */

uint32_t pm_crc32(uint32_t crc, const void *buf, size_t len)
{
    if (len == 0)
        return crc;
    return crc32_gzip_refl(crc, buf, len);
}

/* a * b modulo the CRC polynomial, both as reflected polynomials (bit 31 is
 * the x^0 coefficient). */
static uint32_t gf2_mul(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (; m; m >>= 1) {
        if (a & m)
            p ^= b;
        b = b & 1 ? (b >> 1) ^ CRC_POLY : b >> 1;
    }
    return p;
}

/* x^(8 * len) modulo the polynomial, by squaring. */
static uint32_t x_pow_8n(uint64_t len)
{
    uint32_t result = 1u << 31;         /* x^0 */
    uint32_t sq = 1u << 23;             /* x^8: appending one zero byte */
    for (; len; len >>= 1) {
        if (len & 1)
            result = gf2_mul(result, sq);
        sq = gf2_mul(sq, sq);
    }
    return result;
}

/* crc(A||B) = crc(A) * x^(8 len(B)) + crc(B), the pre/post conditioning of
 * the two CRCs cancelling out. */
uint32_t pm_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    return gf2_mul(x_pow_8n(len_b), crc_a) ^ crc_b;
}

/* ---- header and trailer ---- */

#define GZ_FEXTRA 0x04
#define GZ_FNAME 0x08
#define GZ_BLOCKED_EXTRA 14     /* XLEN, then SI1 SI2 LEN(8) and 8 bytes */
#define GZ_BLOCKED_SIZES 16     /* where the subfield's two sizes start */

static const char *base_name(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash ? slash + 1 : name;
}

size_t pm_gz_header_size(const pm_gz_header *h)
{
    size_t size = 10;
    if (h && h->blocked)
        size += GZ_BLOCKED_EXTRA;
    if (h && h->name && *base_name(h->name))
        size += strlen(base_name(h->name)) + 1;
    return size;
}

ssize_t pm_gz_write_header(const pm_gz_header *h, void *out, size_t cap)
{
    size_t size = pm_gz_header_size(h);
    if (cap < size)
        return -ENOSPC;
    unsigned char *p = out;
    int level = h ? h->level : 0;
    p[0] = 0x1f;
    p[1] = 0x8b;
    p[2] = 8;                                   /* CM: deflate */
    int blocked = h && h->blocked;
    size_t pos = 10;
    p[3] = (blocked ? GZ_FEXTRA : 0) | (size > 10 + (blocked ? GZ_BLOCKED_EXTRA : 0) ? GZ_FNAME : 0);
    pm__put_le32(p + 4, h ? h->mtime : 0);
    p[8] = level >= 9 ? 2 : level == 1 ? 4 : 0; /* XFL: best / fastest */
    p[9] = 3;                                   /* OS: Unix */
    if (blocked) {                              /* XLEN 12: one subfield */
        static const unsigned char extra[6] = {12, 0, PM_GZ_BLOCKED_SI1, PM_GZ_BLOCKED_SI2, 8, 0};
        memcpy(p + 10, extra, sizeof extra);
        memset(p + GZ_BLOCKED_SIZES, 0, 8);     /* pm_gz_set_member_sizes */
        pos += GZ_BLOCKED_EXTRA;
    }
    if (size > pos)
        memcpy(p + pos, base_name(h->name), size - pos);  /* with its NUL */
    return (ssize_t)size;
}

void pm_gz_set_member_sizes(void *header, uint32_t member_size, uint32_t data_size)
{
    unsigned char *p = header;
    pm__put_le32(p + GZ_BLOCKED_SIZES, member_size);
    pm__put_le32(p + GZ_BLOCKED_SIZES + 4, data_size);
}

void pm_gz_write_trailer(uint32_t crc, uint64_t length, void *out)
{
    pm__put_le32(out, crc);
    pm__put_le32((unsigned char *)out + 4, (uint32_t)length);
}

/* ---- engines and the deflater ---- */

/* The default first; a whole-stream engine pairs with the first general. */
static const pm__deflate_engine *const engines[] = {
    &pm__deflate_libdeflate,
    &pm__deflate_isal,
    &pm__deflate_zlib,
    NULL,
};

/* Independent blocks (the blocked format): pmap's level -> engine and the
 * engine's own level. Each is the fastest setting whose output was no
 * larger than pigz's at that level on the suite's log and on a tar of this
 * system's files (issue 11's targets), with 1 MiB blocks; on text it can be
 * larger at 5-9, where pigz's dictionaries across blocks and zlib's matcher
 * do best: up to 0.2% on English-like text, 1% on man pages. (ISA-L's level
 * 2, faster still, came out 0.3% larger than pigz -1 on the system tar.)
 * Measured with bench/bench_codec; the table and figures in BENCHMARKS.md
 * ("Engines per level"). 10-12 are libdeflate's slowest, smallest levels. */
static const struct level_plan {
    const pm__deflate_engine *engine;
    int level;
} plans[PM_GZ_LEVEL_MAX + 1] = {
    [1] = {&pm__deflate_isal, 3},        [2] = {&pm__deflate_libdeflate, 1},
    [3] = {&pm__deflate_libdeflate, 2},  [4] = {&pm__deflate_libdeflate, 3},
    [5] = {&pm__deflate_libdeflate, 5},  [6] = {&pm__deflate_libdeflate, 6},
    [7] = {&pm__deflate_libdeflate, 7},  [8] = {&pm__deflate_libdeflate, 7},
    [9] = {&pm__deflate_libdeflate, 7},  [10] = {&pm__deflate_libdeflate, 10},
    [11] = {&pm__deflate_libdeflate, 11}, [12] = {&pm__deflate_libdeflate, 12},
};

const pm__deflate_engine *pm__deflate_engine_find(const char *name)
{
    if (!name) {
        const char *env = pm_config_deflate_engine();
        const pm__deflate_engine *e = env ? pm__deflate_engine_find(env) : NULL;
        return e ? e : engines[0];
    }
    for (size_t i = 0; engines[i]; i++)
        if (strcmp(engines[i]->name, name) == 0)
            return engines[i];
    return NULL;
}

static const pm__deflate_engine *first_general(void)
{
    size_t i = 0;
    while (engines[i]->flags & PM__DEFLATE_WHOLE_ONLY)
        i++;
    return engines[i];          /* zlib, always in the table */
}

/* An engine's own level for pmap's level, within its range (comparisons
 * through PMAP_DEFLATE_ENGINE use the same number where it exists). */
static int engine_level(const pm__deflate_engine *e, int level)
{
    return level < e->level_min ? e->level_min : level > e->level_max ? e->level_max : level;
}

struct pm_gz_deflater {
    int level;                          /* pmap's level */
    const pm__deflate_engine *engine;   /* general: any block; NULL until needed */
    void *state;                        /* its per-thread state */
    const pm__deflate_engine *whole;    /* whole-stream engine, or NULL */
    int whole_level;                    /* its own level */
    void *whole_state;                  /* its state, made on first use */
};

/* The general engine, made on first use when the deflater is for
 * independent blocks (it is then only the fallback). */
static int general(pm_gz_deflater *d)
{
    if (d->state)
        return 0;
    if (!d->engine)
        d->engine = first_general();
    return d->engine->new(engine_level(d->engine, d->level), &d->state);
}

static int deflater_new(const pm__deflate_engine *engine, int level, unsigned flags,
                        pm_gz_deflater **d_ret)
{
    if (!d_ret)
        return -EINVAL;
    *d_ret = NULL;
    int independent = (flags & PM_GZ_INDEPENDENT) != 0;
    if ((flags & ~PM_GZ_INDEPENDENT) || level < 1 ||
        level > (independent ? PM_GZ_LEVEL_MAX : 9))
        return -EINVAL;
    pm_gz_deflater *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->level = level;
    if (!engine && independent && !pm_config_deflate_engine()) {
        d->whole = plans[level].engine;
        d->whole_level = plans[level].level;
    } else {
        if (!engine)
            engine = pm__deflate_engine_find(NULL);
        if (engine->flags & PM__DEFLATE_WHOLE_ONLY) {
            d->whole = engine;
            d->whole_level = engine_level(engine, level);
        } else {
            d->engine = engine;
        }
    }
    /* One-member output needs its general engine for every multi-block
     * file: made now, so that a failure shows at once. */
    int rc = independent && d->whole ? 0 : general(d);
    if (rc < 0) {
        free(d);
        return rc;
    }
    *d_ret = d;
    return 0;
}

int pm__gz_deflater_new_engine(const pm__deflate_engine *engine, int level,
                               pm_gz_deflater **d_ret)
{
    return deflater_new(engine, level, 0, d_ret);
}

int pm_gz_deflater_new(int level, pm_gz_deflater **d_ret)
{
    return deflater_new(NULL, level, 0, d_ret);
}

int pm_gz_deflater_new_ex(int level, unsigned flags, pm_gz_deflater **d_ret)
{
    return deflater_new(NULL, level, flags, d_ret);
}

const char *pm_gz_deflater_engine(const pm_gz_deflater *d)
{
    return !d ? "" : d->whole ? d->whole->name : d->engine->name;
}

void pm_gz_deflater_free(pm_gz_deflater *d)
{
    if (!d)
        return;
    if (d->state)
        d->engine->free(d->state);
    if (d->whole)
        d->whole->free(d->whole_state);
    free(d);
}

/* The largest bound of all engines, since any of them may be in use. */
size_t pm_gz_block_bound(size_t len)
{
    size_t bound = 0;
    for (size_t i = 0; engines[i]; i++) {
        size_t b = engines[i]->bound(len);
        if (b > bound)
            bound = b;
    }
    return bound;
}

/* A complete stream through the whole-stream engine, set up on first use. */
static ssize_t whole_block(pm_gz_deflater *d, const void *in, size_t len,
                           void *out, size_t out_cap)
{
    if (!d->whole_state) {
        int rc = d->whole->new(d->whole_level, &d->whole_state);
        if (rc < 0)
            return rc;
    }
    return d->whole->deflate_block(d->whole_state, NULL, 0, in, len, 1, out,
                                   out_cap);
}

ssize_t pm_gz_deflate_block(pm_gz_deflater *d, const void *dict,
                            size_t dict_len, const void *in, size_t len,
                            int last, void *out, size_t out_cap)
{
    if (!d || (len && !in) || (dict_len && !dict) || (out_cap && !out))
        return -EINVAL;
    if (dict_len > PM_GZ_DICT_SIZE) {
        dict = (const unsigned char *)dict + (dict_len - PM_GZ_DICT_SIZE);
        dict_len = PM_GZ_DICT_SIZE;
    }
    if (d->whole && dict_len == 0 && last && len > 0) {
        ssize_t n = whole_block(d, in, len, out, out_cap);
        if (n != -ENOSPC && n != -ENOMEM)
            return n;           /* else the general engine may still do it */
    }
    int rc = general(d);
    if (rc < 0)
        return rc;
    return d->engine->deflate_block(d->state, dict, dict_len, in, len, last,
                                    out, out_cap);
}
