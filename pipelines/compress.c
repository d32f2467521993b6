/* compress.c - parallel gzip compression on a pm_pipeline.
 *
 * By default (pmp_opts.one_member 0) pmap's blocked format, one stage:
 *   member (parallel)    each chunk (1 MiB by default) becomes a whole gzip
 *                        member of its own, with its sizes in the header's
 *                        "PM" subfield (docs/format.md): members can be
 *                        found without inflating and inflated in parallel.
 *                        The engine per level is the codec's (gz.h,
 *                        PM_GZ_INDEPENDENT): ISA-L, libdeflate; levels 1-12.
 *
 * With pmp_opts.one_member (pmap compress --one-member), pigz's scheme:
 *   deflate (parallel)   each chunk is deflated on its own, with the 32 KiB
 *                        of input before it as a preset dictionary (the
 *                        pipeline's overlap gives those bytes), and its CRC-32
 *                        is computed; chunk 0 also gets the gzip header.
 *   crc (serial)         the file's CRC-32 and length are joined in order
 *                        with crc32_combine; the last chunk gets the trailer.
 * The result is one ordinary gzip member per file (levels 1-9).
 * Either way any gzip reads the output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/gz.h>
#include "common.h"

/* The default chunk size. pigz uses 128 KiB. From level 4 up (zlib's lazy
 * matcher) 256 KiB is measurably faster (half the dictionary set-ups) and a
 * little smaller; at levels 1-3 (the fast matcher, which skips hashing
 * inside long matches) the fully hashed dictionary of each chunk helps the
 * ratio, and 256 KiB comes out about 0.2% larger than pigz: keep 128 KiB.
 * Figures in BENCHMARKS.md. */
static size_t default_chunk(int level)
{
    return level <= 3 ? 128 * 1024 : 256 * 1024;
}

typedef struct compress_ctx {
    int level;
    int no_name;
    int blocked;             /* pmap's blocked format (member_stage) */
} compress_ctx;

/* B: input bytes per member. Larger members come out a little smaller
 * (libdeflate -6 and -7 on English-like text: 0.25% at 2 MiB) but
 * decompress slower within the same memory: the parallel reader's chunk
 * must hold whole members and its output buffer their output, and at 2 MiB
 * it lost a fifth of its speed at the same memory (bench/bench_codec,
 * BENCHMARKS.md). */
#define BLOCKED_CHUNK (1024 * 1024)

typedef struct compress_state {
    uint32_t crc;
    uint64_t length;
} compress_state;

/* The member header of a file's first chunk (name and mtime unless -n), or
 * of a later member of the blocked format (neither). */
static size_t header_into(const compress_ctx *cx, const pm_chunk *c, unsigned char *out,
                          size_t cap)
{
    const pm_file *f = c->file;
    const char *base = NULL;
    pm_gz_header h = {.level = cx->level, .blocked = cx->blocked};
    if (c->seq == 0 && !cx->no_name && strcmp(f->path, "-") != 0) {
        base = strrchr(f->path, '/');
        h.name = base ? base + 1 : f->path;
        h.mtime = (uint32_t)f->st.st_mtim.tv_sec;
    }
    ssize_t n = pm_gz_write_header(&h, out, cap);
    return n < 0 ? 0 : (size_t)n;
}

/* Each worker keeps one deflater (its per-worker state) for the run. */
static int deflater_init(void **state_ret, unsigned worker, void *arg)
{
    (void)worker;
    pmp_run *run = arg;
    const compress_ctx *cx = run->ctx;
    return pm_gz_deflater_new_ex(cx->level, cx->blocked ? PM_GZ_INDEPENDENT : 0,
                                 (pm_gz_deflater **)state_ret);
}

static void deflater_fini(void *state, unsigned worker, void *arg)
{
    (void)worker;
    (void)arg;
    pm_gz_deflater_free(state);
}

static int deflate_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    compress_ctx *cx = arg;
    pm_gz_deflater *d = c->worker_state;
    size_t pos = 0;
    if (c->seq == 0) {
        pos = header_into(cx, c, c->out, c->out_cap);
        if (pos == 0)
            return pm_chunk_fail(c, -ENAMETOOLONG, "file name too long for the gzip header");
    }
    c->value = pm_crc32(0, c->data, c->len);
    ssize_t n = pm_gz_deflate_block(d, c->data - c->prefix_len, c->prefix_len, c->data,
                                    c->len, c->last, c->out + pos,
                                    c->out_cap - pos - PM_GZ_TRAILER_SIZE);
    if (n < 0)
        return pm_chunk_fail(c, (int)n, "deflate failed");
    c->out_len = pos + (size_t)n;
    return 0;
}

/* Blocked format: each chunk becomes a whole gzip member on its own --
 * header with the "PM" subfield, an independent deflate stream (no preset
 * dictionary: a whole-stream engine), trailer -- so members
 * can be found and inflated in parallel (docs/format.md). */
static int member_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    compress_ctx *cx = arg;
    pm_gz_deflater *d = c->worker_state;
    size_t pos = header_into(cx, c, c->out, c->out_cap);
    if (pos == 0)
        return pm_chunk_fail(c, -ENAMETOOLONG, "file name too long for the gzip header");
    ssize_t n = pm_gz_deflate_block(d, NULL, 0, c->data, c->len, 1, c->out + pos,
                                    c->out_cap - pos - PM_GZ_TRAILER_SIZE);
    if (n < 0)
        return pm_chunk_fail(c, (int)n, "deflate failed");
    pos += (size_t)n;
    pm_gz_write_trailer(pm_crc32(0, c->data, c->len), c->len, c->out + pos);
    pos += PM_GZ_TRAILER_SIZE;
    pm_gz_set_member_sizes(c->out, (uint32_t)pos, (uint32_t)c->len);
    c->out_len = pos;
    return 0;
}

static int crc_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    compress_state *st = c->file->state;
    st->crc = pm_crc32_combine(st->crc, (uint32_t)c->value, c->len);
    st->length += c->len;
    if (c->last) {
        pm_gz_write_trailer(st->crc, st->length, c->out + c->out_len);
        c->out_len += PM_GZ_TRAILER_SIZE;
    }
    return 0;
}

/* As gzip: a name that already ends in one of gzip's suffixes, in any case
 * (x.GZ, x.tgz, x-z; skip_suffix catches the -S one or ".gz" first), is
 * left unchanged. */
static int accept(const char *path, char *msg, size_t cap, void *arg)
{
    pmp_run *run = arg;
    int m = pmp_has_gz_suffix(path, run->o->suffix);
    if (m == 0)
        return 0;
    snprintf(msg, cap, "already has %s suffix -- unchanged", path + strlen(path) - m);
    return PM_PL_SKIP;
}

static int out_path(const pm_file *f, char *buf, size_t cap, void *arg)
{
    pmp_run *run = arg;
    return pmp_compressed_name(f->path, run->o->suffix, buf, cap);
}

int pmp_compress(const pmp_opts *o, const char *const *paths, size_t n,
                 pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    compress_ctx cx = {.level = o->level ? o->level : 6, .no_name = o->no_name,
                       .blocked = !o->one_member};
    if (cx.level < 1 || cx.level > (cx.blocked ? PM_GZ_LEVEL_MAX : 9))
        return -EINVAL;
    pm_pipeline_opts *pl = &run.pl;
    if (!pl->chunk_size)
        pl->chunk_size = cx.blocked ? BLOCKED_CHUNK : default_chunk(cx.level);
    if (pl->chunk_size < (cx.blocked ? 1 : PM_GZ_DICT_SIZE) ||
        (cx.blocked && pl->chunk_size > PM_GZ_BLOCKED_MAX))
        return -EINVAL;
    pl->overlap = cx.blocked ? 0 : PM_GZ_DICT_SIZE;
    pl->out_size = pm_gz_block_bound(pl->chunk_size) + 4096 + 64 + PM_GZ_TRAILER_SIZE;
    pl->skip_suffix = o->suffix ? o->suffix : ".gz";
    pl->accept = accept;
    run.state_size = sizeof(compress_state);
    pmp_file_outputs(&run, paths, n, out_path);
    pl->worker_init = deflater_init;
    pl->worker_fini = deflater_fini;
    run.ctx = &cx;
    static const pmp_stage stages[] = {
        {"deflate", PM_STAGE_PARALLEL, deflate_stage},
        {"crc", PM_STAGE_SERIAL_IN_ORDER, crc_stage},
    };
    static const pmp_stage blocked_stages[] = {
        {"member", PM_STAGE_PARALLEL, member_stage},
    };
    if (cx.blocked)
        return pmp_run_stages(&run, blocked_stages, 1, paths, n, stats);
    return pmp_run_stages(&run, stages, 2, paths, n, stats);
}
