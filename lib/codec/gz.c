/* gz.c - the gzip container for compression: CRC-32 and its combination,
 * member header and trailer, and the block deflater object.
 *
 * Threads: nothing here has shared state. pm_crc32* and the header/trailer
 * writers are pure functions; a pm_gz_deflater belongs to one thread at a
 * time. The deflate engines are chosen when a deflater is created, from the
 * table below (see deflate_engine.h): a general engine (zlib) for every
 * block, and by default also a whole-stream engine (libdeflate, faster) for
 * the blocks that are complete streams on their own: no dictionary, last,
 * not empty; that is a file that fits in one block. Its state is created on
 * the first such block, so a deflater that only sees large files never
 * allocates it. If it fails for lack of memory or of output room (libdeflate
 * wants slack), the general engine does the block, so whatever room is
 * enough for zlib stays enough. An empty file goes to zlib too:
 * 2 bytes, as gzip writes it, where libdeflate writes a 5-byte stored block.
 * Block output of every engine concatenates into one deflate stream, so the
 * caller frames blocks into one member: header, block 0 ... block n-1
 * (last), trailer with the combined CRC-32 and the total length.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>         /* libdeflate_crc32: carry-less multiply where the CPU has it */

#include <pmap/gz.h>
#include <pmap/config.h>
#include "deflate_engine.h"

/* ---- CRC-32 ---- */

#define CRC_POLY 0xedb88320u    /* gzip's polynomial, bit-reflected */

uint32_t pm_crc32(uint32_t crc, const void *buf, size_t len)
{
    if (len == 0)
        return crc;
    return libdeflate_crc32(crc, buf, len);
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

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
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
    put_le32(p + 4, h ? h->mtime : 0);
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
    put_le32(p + GZ_BLOCKED_SIZES, member_size);
    put_le32(p + GZ_BLOCKED_SIZES + 4, data_size);
}

void pm_gz_write_trailer(uint32_t crc, uint64_t length, void *out)
{
    put_le32(out, crc);
    put_le32((unsigned char *)out + 4, (uint32_t)length);
}

/* ---- engines and the deflater ---- */

/* The default first; a whole-stream engine pairs with the first general. */
static const pm__deflate_engine *const engines[] = {
    &pm__deflate_libdeflate,
    &pm__deflate_zlib,
    NULL,
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

struct pm_gz_deflater {
    int level;
    const pm__deflate_engine *engine;   /* general: any block */
    void *state;                        /* its per-thread state */
    const pm__deflate_engine *whole;    /* whole-stream engine, or NULL */
    void *whole_state;                  /* its state, made on first use */
};

int pm__gz_deflater_new_engine(const pm__deflate_engine *engine, int level,
                               pm_gz_deflater **d_ret)
{
    if (!d_ret)
        return -EINVAL;
    *d_ret = NULL;
    if (level < 1 || level > 9)
        return -EINVAL;
    pm_gz_deflater *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    if (!engine)
        engine = pm__deflate_engine_find(NULL);
    d->level = level;
    d->engine = engine;
    if (engine->flags & PM__DEFLATE_WHOLE_ONLY) {
        d->whole = engine;
        d->engine = first_general();
    }
    int rc = d->engine->new(level, &d->state);
    if (rc < 0) {
        free(d);
        return rc;
    }
    *d_ret = d;
    return 0;
}

int pm_gz_deflater_new(int level, pm_gz_deflater **d_ret)
{
    return pm__gz_deflater_new_engine(NULL, level, d_ret);
}

void pm_gz_deflater_free(pm_gz_deflater *d)
{
    if (!d)
        return;
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
        int rc = d->whole->new(d->level, &d->whole_state);
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
    return d->engine->deflate_block(d->state, dict, dict_len, in, len, last,
                                    out, out_cap);
}
