/* compress.c - parallel compression on a pm_pipeline, in any codec
 * (pmap/codec.h; pmp_opts.codec, gzip by default). This file knows no
 * format: headers, blocks, trailers, checks and suffixes are the codec's.
 *
 * By default (pmp_opts.one_member 0) the codec's blocked layout, one stage:
 *   member (parallel)    each chunk (the codec's default size: gzip 1 MiB)
 *                        becomes a whole member of its own, whose header
 *                        states its sizes (gzip: the "PM" subfield,
 *                        docs/format.md), so that members can be found
 *                        without decoding and decoded in parallel.
 *
 * With pmp_opts.one_member (pmap compress --one-member), the chained layout
 * (gzip: pigz's scheme):
 *   deflate (parallel)   each chunk is encoded as a block of the file's one
 *                        member, with the codec's dict_size bytes of input
 *                        before it as history (the pipeline's overlap gives
 *                        those bytes), and its check value is computed;
 *                        chunk 0 also gets the header.
 *   crc (serial)         the file's check and length are combined in order;
 *                        the last chunk gets the trailer.
 * The result is one ordinary member per file. Either way any reader of the
 * format (gzip) reads the output. The stages only read the input, so
 * regular files are mapped (PM_PL_MAP_INPUT: no copy on the I/O thread; on
 * the 1 GiB log at -6, 6.24 s against 6.28 median, peak RSS 10 MB against
 * 15); a file cut short meanwhile fails and is kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/codec.h>
#include <pmap/error.h>
#include "common.h"

typedef struct compress_ctx {
    const pm_codec *codec;
    int level;
    int no_name;
    int blocked;             /* the blocked layout (member_stage) */
    const pmp_opts *o;       /* for member_source */
} compress_ctx;

typedef struct compress_state {
    uint64_t check;          /* the file's check so far (crc_stage) */
    uint64_t length;
} compress_state;

/* What the file's first header stores: name and mtime, unless -n or stdin. */
static pm_codec_meta file_meta(const compress_ctx *cx, const pm_chunk *c)
{
    const pm_file *f = c->file;
    pm_codec_meta m = {0};
    if (!cx->no_name && strcmp(f->path, "-") != 0) {
        m.name = f->path;
        m.mtime = (uint32_t)f->st.st_mtim.tv_sec;
    }
    return m;
}

static int encode_failed(pm_chunk *c, const compress_ctx *cx, ssize_t rc)
{
    if (rc == -ENAMETOOLONG)
        return pm_chunk_fail(c, -ENAMETOOLONG, "file name too long for the %s header",
                             cx->codec->name);
    return pm_chunk_fail(c, (int)rc, "compression failed");
}

/* Each worker keeps one encoder (its per-worker state) for the run. */
static int encoder_init(void **state_ret, unsigned worker, void *arg)
{
    (void)worker;
    pmp_run *run = arg;
    const compress_ctx *cx = run->ctx;
    return cx->codec->encoder_new(cx->level, cx->blocked ? PM_CODEC_BLOCKED : 0, state_ret);
}

static void encoder_fini(void *state, unsigned worker, void *arg)
{
    (void)worker;
    pmp_run *run = arg;
    const compress_ctx *cx = run->ctx;
    cx->codec->encoder_free(state);
}

/* Chained: one block, with the overlap as history; the header on chunk 0. */
static int deflate_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    compress_ctx *cx = arg;
    const pm_codec *k = cx->codec;
    pm_codec_meta meta = file_meta(cx, c);
    c->value = k->check(0, c->data, c->len);
    ssize_t n = k->encode_block(c->worker_state, c->seq == 0 ? &meta : NULL,
                                c->data - c->prefix_len, c->prefix_len, c->data, c->len,
                                c->last, c->out, c->out_cap);
    if (n < 0)
        return encode_failed(c, cx, n);
    c->out_len = (size_t)n;
    return 0;
}

/* Blocked: the chunk becomes a whole member on its own; only the file's
 * first one stores the name and mtime. pmp_opts.member_source may supply
 * it instead (pmap-mpi: encoded on another rank). */
static int member_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    compress_ctx *cx = arg;
    if (cx->o->member_source) {
        size_t len = 0;
        int rc = cx->o->member_source(c, c->out, c->out_cap, &len, cx->o->member_arg);
        if (rc == -ESTALE)
            return pm_chunk_fail(c, rc, "changed while it was being read elsewhere");
        if (rc < 0)
            return pm_chunk_fail(c, rc, "compression failed elsewhere: %s", pm_strerror(rc));
        if (rc > 0) {
            c->out_len = len;
            c->out_elsewhere = rc == PMP_MEMBER_ELSEWHERE;   /* written there */
            return 0;
        }
    }
    pm_codec_meta meta = file_meta(cx, c);
    ssize_t n = cx->codec->encode_member(c->worker_state, c->seq == 0 ? &meta : NULL,
                                         c->data, c->len, c->out, c->out_cap);
    if (n < 0)
        return encode_failed(c, cx, n);
    c->out_len = (size_t)n;
    return 0;
}

static int crc_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    const pm_codec *k = ((compress_ctx *)arg)->codec;
    compress_state *st = c->file->state;
    st->check = k->check_combine(st->check, c->value, c->len);
    st->length += c->len;
    if (c->last) {
        k->write_trailer(st->check, st->length, c->out + c->out_len);
        c->out_len += k->trailer_size;
    }
    return 0;
}

/* As gzip: a name that already ends in one of the codec's suffixes, in any
 * case (x.GZ, x.tgz, x-z; skip_suffix catches the -S one or ".gz" first),
 * is left unchanged. */
static int accept(const char *path, char *msg, size_t cap, void *arg)
{
    pmp_run *run = arg;
    const compress_ctx *cx = run->ctx;
    size_t m = pm_codec_suffix_len(cx->codec, path, run->o->suffix);
    if (m == 0)
        return 0;
    snprintf(msg, cap, "already has %s suffix -- unchanged", path + strlen(path) - m);
    return PM_PL_SKIP;
}

static int out_path(const pm_file *f, char *buf, size_t cap, void *arg)
{
    pmp_run *run = arg;
    const compress_ctx *cx = run->ctx;
    return pm_codec_compressed_name(cx->codec, f->path, run->o->suffix, buf, cap);
}

/* The level and chunk size within the codec's limits: 0 or -EINVAL. */
static int check_opts(compress_ctx *cx, pm_pipeline_opts *pl)
{
    const pm_codec *k = cx->codec;
    if (cx->level < k->level_min ||
        cx->level > (cx->blocked ? k->level_max : k->level_max_chained))
        return -EINVAL;
    if (!pl->chunk_size)
        pl->chunk_size = k->chunk_size(cx->level, cx->blocked ? PM_CODEC_BLOCKED : 0);
    if (pl->chunk_size < (cx->blocked ? 1 : k->dict_size) ||
        (cx->blocked && pl->chunk_size > k->member_max))
        return -EINVAL;
    return 0;
}

int pmp_compress(const pmp_opts *o, const char *const *paths, size_t n,
                 pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    compress_ctx cx = {.codec = pm_codec_find(o->codec), .no_name = o->no_name,
                       .blocked = !o->one_member, .o = o};
    if (!cx.codec)
        return -EINVAL;
    cx.level = o->level ? o->level : cx.codec->level_default;
    pm_pipeline_opts *pl = &run.pl;
    if (check_opts(&cx, pl) < 0)
        return -EINVAL;
    pl->overlap = cx.blocked ? 0 : cx.codec->dict_size;
    pl->flags |= PM_PL_MAP_INPUT;    /* the stages only read the data */
    pl->out_size = cx.codec->bound(pl->chunk_size);
    pl->skip_suffix = o->suffix ? o->suffix : cx.codec->suffix;
    pl->accept = accept;
    run.state_size = sizeof(compress_state);
    pmp_file_outputs(&run, paths, n, out_path);
    pl->worker_init = encoder_init;
    pl->worker_fini = encoder_fini;
    if (cx.blocked && o->member_source && o->member_placed) {
        pl->out_placed = pmp_member_placed;
        pl->flags |= PM_PL_NAMED_TEMP;   /* for the writers to open */
    }
    if (cx.blocked && o->member_source && o->member_end)
        pl->file_end = pmp_member_end;
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
