/* decompress.c - decompression (also -t test and -l list) in any codec
 * (pmap/codec.h; pmp_opts.codec, gzip by default). This file knows no
 * format: magic, headers, members, checks and suffixes are the codec's.
 *
 * Stage:
 *   inflate (serial)     one streaming decoder per file, fed the file's
 *                        chunks in order; its output is emitted piece by
 *                        piece (pm_chunk_emit), so memory stays bounded
 *                        whatever the compression ratio.
 * Inflate is serial within a file, but reading ahead, checking and writing
 * overlap with it on the pipeline's I/O thread, and files decompress in
 * parallel. Every member, header flag, check and length is checked by the
 * decoder; a file that fails leaves no output behind.
 *
 * As gzip 1.12 does: files are recognised by the codec's suffixes, but
 * with -c, -t and -l a file named as an operand is read whatever its name
 * (files found by walking a directory still need a suffix, as with gzip
 * -r -t); with pass_plain (-f with -c or -t, zcat -f) a file that does not
 * start with the codec's magic is copied as it is; zeros after the last
 * member are ignored silently (a warning only with warn_trailing_zeros,
 * gzip -v); -N takes the base name of the stored name, cut to NAME_MAX with
 * a warning, and refuses "", "." and "..".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/codec.h>
#include <pmap/config.h>
#include <pmap/error.h>
#include "common.h"

#define INFLATE_BUF (256 * 1024)

typedef struct decompress_ctx {
    const pm_codec *codec;
    int emit;                    /* write the output (not -t, not -l) */
    int list;                    /* -l: keep the decoded data's CRC */
    int keep;                    /* the decoder's info is read after the
                                    last chunk (-l, -N): keep the decoder */
    int plain_ok;                /* -f with -c/-t: other data copied as it is */
    int warn_zeros;              /* trailing zeros get a warning (-v) */
    int name_out;                /* -N names the output files */
    const char **operands;       /* -c, -t, -l: the operands, sorted, which
                                    are read whatever their suffix */
    size_t noperands;
    size_t carry_size;           /* the framer's bound on what it leaves */
    const pmp_opts *elsewhere;   /* unpack_source is asked (files, blocked) */
} decompress_ctx;

typedef struct decompress_state {
    const pm_codec *codec;       /* for release() */
    void *z;                     /* the codec's streaming decoder */
    int done;
    uint64_t check;              /* -l: the codec's check of the decoded data */
    int sniffed;                 /* plain_ok: the codec's data or plain is decided */
    int plain;                   /* not the codec's: copied as it is */
    size_t nheld;                /* first bytes too few to decide, held */
    unsigned char held[PM_CODEC_MAGIC_MAX];
} decompress_state;

/* Each worker has one output buffer for the streaming decoder and one
 * unpacker for whole members (its per-worker state). */
typedef struct worker_bufs {
    unsigned char buf[INFLATE_BUF];
    void *unpacker;
} worker_bufs;

static int buf_init(void **state_ret, unsigned worker, void *arg)
{
    (void)worker;
    const decompress_ctx *cx = ((pmp_run *)arg)->ctx;
    worker_bufs *w = malloc(sizeof *w);
    int rc = w ? cx->codec->unpacker_new(&w->unpacker) : -ENOMEM;
    if (rc < 0) {
        free(w);
        w = NULL;
    }
    *state_ret = w;
    return rc;
}

static void buf_fini(void *state, unsigned worker, void *arg)
{
    (void)worker;
    const decompress_ctx *cx = ((pmp_run *)arg)->ctx;
    worker_bufs *w = state;
    if (w)
        cx->codec->unpacker_free(w->unpacker);
    free(w);
}

/* ---- the blocked layout, in parallel (gzip: docs/format.md) ----
 *
 * The file is read in MEMBERS_READ pieces; the framer cuts chunks at member
 * boundaries using the sizes the members' headers state
 * (pm_codec_frame_members), carrying a member that is not complete yet
 * into the next chunk (PM_FRAME_DEFER); the parallel stage decodes the
 * chunk's whole members into its output buffer (pm_codec_unpack_members:
 * each member's checks and sizes verified); the serial stage uses that
 * output only if the file's streaming decoder stands at a member boundary
 * there (the members are really members, not bytes inside one), and
 * streams whatever the parallel stage did not take. Sizes are never
 * trusted: a member whose decoding does not end exactly where its header
 * says, or produce exactly its size, is left to the streaming decoder,
 * which decodes the file as any file of the format.
 *
 * With pmp_opts.unpack_source (pmap-mpi), a chunk's whole members may be
 * decoded by another process, which keeps their output and writes it into
 * the output's named temporary once its offset is decided (out_placed:
 * pm_chunk.out_elsewhere). The serial stage takes them only when the
 * chunk is nothing but whole members and the streaming decoder stands at
 * a member boundary; otherwise (a bad member, bytes after the members,
 * the decoder done with trailing garbage) the chunk is streamed here as
 * any chunk, and unpack_drop tells the other process to forget them. */
#define MEMBERS_READ (256 * 1024)        /* bytes per read */
#define MEMBERS_CARRY (1280 * 1024)      /* carry room: a whole 1 MiB member, stored */
#define MEMBERS_OUT (3 * 1024 * 1024)    /* decoded bytes per chunk, at most */

typedef struct members_done {
    uint64_t members;            /* whole members decoded into c->out */
    size_t in_used;              /* their bytes at the chunk's start */
} members_done;

static size_t frame_members(const unsigned char *data, size_t len, void *arg)
{
    const decompress_ctx *cx = arg;
    return pm_codec_frame_members(cx->codec, data, len, cx->carry_size, MEMBERS_OUT);
}

/* unpack_source: 1 when it answered for the chunk (decoded elsewhere, or
 * nothing whole there), 0 to decode here, or a failure. */
static int members_elsewhere(pm_chunk *c, const pmp_opts *o, members_done *md)
{
    uint64_t members = 0;
    size_t used = 0, len = 0;
    int rc = o->unpack_source(c, &members, &used, &len, o->member_arg);
    if (rc == -ESTALE)
        return pm_chunk_fail(c, rc, "changed while it was being read elsewhere");
    if (rc < 0)
        return pm_chunk_fail(c, rc, "decompression failed elsewhere: %s", pm_strerror(rc));
    if (rc != PMP_MEMBER_ELSEWHERE)
        return 0;
    md->members = members;
    md->in_used = members ? used : 0;
    c->out_len = members ? len : 0;
    c->out_elsewhere = members > 0;
    return 1;
}

static int members_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    const decompress_ctx *cx = arg;
    worker_bufs *w = c->worker_state;
    members_done *md = c->state;
    if (cx->elsewhere) {
        int rc = members_elsewhere(c, cx->elsewhere, md);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    md->members = pm_codec_unpack_members(cx->codec, w->unpacker, c->data, c->len, c->out,
                                          c->out_cap, &md->in_used, &c->out_len);
    return 0;
}

/* Feeds in[0..len) to the file's decoder, emitting (or, for -l, checksumming)
 * what it produces. eof: no input follows. Returns 0 or a failure. */
static int feed(pm_chunk *c, decompress_ctx *cx, decompress_state *st,
                const unsigned char *in, size_t len, int eof)
{
    unsigned char *buf = ((worker_bufs *)c->worker_state)->buf;
    while (!st->done) {
        size_t used = 0, produced = 0;
        int rc = cx->codec->decode(st->z, in, len, &used, buf, INFLATE_BUF, &produced, eof);
        if (rc < 0)
            return pm_chunk_fail(c, rc, "%s", cx->codec->message(st->z));
        if (produced && cx->emit) {
            int erc = pm_chunk_emit(c, buf, produced);
            if (erc < 0)
                return erc;
        }
        if (produced && cx->list)
            st->check = cx->codec->check(st->check, buf, produced);
        in += used;
        len -= used;
        if (rc == PM_CODEC_DONE)
            st->done = 1;
        else if (rc == PM_CODEC_NEED_INPUT && len == 0)
            break;
    }
    return 0;
}

/* plain_ok: the codec's data or not, from its magic, as gzip -f decides.
 * Returns 0 when a first chunk too short to decide leaves it open (its
 * bytes held). */
static int sniff(const decompress_ctx *cx, decompress_state *st, const pm_chunk *c)
{
    const pm_codec *k = cx->codec;
    unsigned char head[PM_CODEC_MAGIC_MAX];
    size_t n = st->nheld + c->len < k->magic_size ? st->nheld + c->len : k->magic_size;
    memcpy(head, st->held, st->nheld);
    memcpy(head + st->nheld, c->data, n - st->nheld);
    int rc = k->sniff(head, n);
    if (rc == -EAGAIN && c->len && !c->last) {
        memcpy(st->held + st->nheld, c->data, c->len);
        st->nheld += c->len;
        return 0;
    }
    st->plain = rc != 1;         /* empty, or too short: not the codec's */
    st->sniffed = 1;
    return 1;
}

/* Copies a file that is not the codec's as it is (zcat -f). */
static int pass_plain(pm_chunk *c, const decompress_ctx *cx, decompress_state *st)
{
    int rc = 0;
    if (st->nheld && cx->emit)
        rc = pm_chunk_emit(c, st->held, st->nheld);
    st->nheld = 0;
    if (rc == 0 && c->len && cx->emit)
        rc = pm_chunk_emit(c, c->data, c->len);
    return rc;
}

static int inflate_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    decompress_ctx *cx = arg;
    decompress_state *st = c->file->state;
    const pm_codec *k = cx->codec;
    if (cx->plain_ok && !st->sniffed && !sniff(cx, st, c))
        return 0;                         /* too short to tell: wait for more */
    if (st->plain)
        return pass_plain(c, cx, st);
    if (!st->z) {                         /* the file's first chunk */
        int rc = k->decoder_new(&st->z);
        if (rc < 0)
            return rc;
        st->codec = k;
    }
    int rc = st->nheld ? feed(c, cx, st, st->held, st->nheld, 0) : 0;
    st->nheld = 0;
    size_t skip = 0;
    const members_done *md = c->state;
    /* Output decoded elsewhere is placed whole or not at all. */
    int whole_only = c->out_elsewhere && md->in_used < c->len;
    if (md && md->members && !whole_only &&
        k->skip_members(st->z, md->members, md->in_used, c->out_len) == 0) {
        skip = md->in_used;               /* whole members, decoded in parallel */
        if (skip < c->len && cx->emit) {  /* output in order: these first */
            rc = pm_chunk_emit(c, c->out, c->out_len);
            c->out_len = 0;
        }
    } else {
        c->out_len = 0;                   /* not at a member boundary: stream it all */
        if (c->out_elsewhere) {
            c->out_elsewhere = 0;
            cx->elsewhere->unpack_drop(c, cx->elsewhere->member_arg);
        }
    }
    if (!cx->emit)
        c->out_len = 0;
    if (rc == 0 && (skip < c->len || c->last))
        rc = feed(c, cx, st, c->data + skip, c->len - skip, c->last);
    if (rc < 0)
        return rc;
    if (c->last && !st->done)
        return pm_chunk_fail(c, -ENODATA, "unexpected end of file");
    char name[NAME_MAX + 1];
    if (cx->name_out && c->seq == 0 &&
        k->stored_name(c->data, c->len < k->name_bytes ? c->len : k->name_bytes, name,
                       sizeof name) == 1)
        pm_file_warn(c->file, "stored name truncated to %d bytes", NAME_MAX);
    if (c->last) {
        pm_codec_info info;
        k->info(st->z, &info);
        if (info.trailing_garbage || (info.trailing_zeros && cx->warn_zeros))
            pm_file_warn(c->file, "%s", k->message(st->z));
        if (!cx->keep) {
            /* Its ~40 KiB would otherwise live until the file's event,
             * through the fsyncs: many files are in flight there. */
            k->decoder_free(st->z);
            st->z = NULL;
        }
    }
    return 0;
}

/* -N: the output gets the stored MTIME, as gzip -N does. */
static int end_restore_mtime(pm_file *f, int status, void *arg)
{
    (void)arg;
    const decompress_state *st = f->state;
    if (status == 0 && st && st->z) {
        pm_codec_info info;
        st->codec->info(st->z, &info);
        if (info.mtime)
            f->out_mtime = info.mtime;
    }
    return 0;
}

static void release(void *state)
{
    decompress_state *st = state;
    if (st->z)
        st->codec->decoder_free(st->z);
}

static void fill_result(pmp_run *run, const pm_file *f, pmp_result *r)
{
    (void)run;
    const decompress_state *st = f->state;
    static __thread char name[256];
    pm_codec_info info = {0};
    if (st->z)                   /* NULL when the file failed before its first chunk */
        st->codec->info(st->z, &info);
    r->compressed = (uint64_t)f->st.st_size;
    r->uncompressed = info.out_bytes;
    r->mtime = info.mtime;
    r->crc_stored = (uint32_t)st->check;
    snprintf(name, sizeof name, "%s", info.name);
    r->name = name;
}

/* The stored name of f (the codec's stored_name), read from the input the
 * pipeline opened (f->fd during out_path): out has NAME_MAX + 1 bytes. */
static int stored_name(const pm_codec *k, const pm_file *f, char *out)
{
    if (f->fd < 0)
        return -EBADF;
    unsigned char *h = malloc(k->name_bytes);
    if (!h)
        return -ENOMEM;
    ssize_t n = pread(f->fd, h, k->name_bytes, 0);
    /* Not seekable (a FIFO given with -f): no peeking, so no stored name. */
    int err = n < 0 ? (errno == ESPIPE ? -ENOENT : -errno)
                    : k->stored_name(h, (size_t)n, out, NAME_MAX + 1);
    free(h);
    return err;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_operand(const decompress_ctx *cx, const char *path)
{
    return cx->noperands &&
           bsearch(&path, cx->operands, cx->noperands, sizeof *cx->operands, by_name);
}

/* Names with one of the codec's suffixes are decompressed, tested or listed;
 * with -c, -t or -l also any file named as an operand (gzip -dc x.zz). */
static int accept(const char *path, char *msg, size_t cap, void *arg)
{
    pmp_run *run = arg;
    const decompress_ctx *cx = run->ctx;
    if (pm_codec_suffix_len(cx->codec, path, run->o->suffix) || is_operand(cx, path))
        return 0;
    snprintf(msg, cap, "unknown suffix -- ignored");
    return PM_PL_SKIP;
}

static int out_path(const pm_file *f, char *buf, size_t cap, void *arg)
{
    pmp_run *run = arg;
    const pm_codec *k = ((const decompress_ctx *)run->ctx)->codec;
    char name[NAME_MAX + 1];
    int rc = run->o->restore_name ? stored_name(k, f, name) : -ENOENT;
    if (rc >= 0) {
        const char *slash = strrchr(f->path, '/');
        int dir = slash ? (int)(slash - f->path) + 1 : 0;
        int w = snprintf(buf, cap, "%.*s%s", dir, f->path, name);
        return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
    }
    if (rc == -EINVAL) {
        snprintf(buf, cap, "the stored name is not a file name (\"\", \".\" or \"..\") -- "
                           "not decompressed (use -n)");
        return rc;
    }
    if (rc == -ENAMETOOLONG) {
        snprintf(buf, cap, "corrupted input -- stored name longer than %zu bytes",
                 k->name_bytes);
        return -EBADMSG;
    }
    if (rc != -ENOENT)
        return rc;
    rc = pm_codec_decompressed_name(k, f->path, run->o->suffix, buf, cap);
    if (rc == -EINVAL) {
        snprintf(buf, cap, "unknown suffix -- ignored");
        return PM_PL_SKIP;
    }
    return rc;
}

/* -c, -t, -l: the operands, sorted, for accept(); not the paths that come
 * with a directory (pm_pipeline_opts.operand_dirs: files a walk found).
 * Returns 0 or -ENOMEM. */
static int note_operands(decompress_ctx *cx, const char *const *paths, size_t n,
                         const int *dirs)
{
    if (n == 0)
        return 0;
    cx->operands = malloc(n * sizeof *cx->operands);
    if (!cx->operands)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!dirs || dirs[i] < 0)
            cx->operands[cx->noperands++] = paths[i];
    qsort(cx->operands, cx->noperands, sizeof *cx->operands, by_name);
    return 0;
}

int pmp_decompress(const pmp_opts *o, const char *const *paths, size_t n,
                   pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    pm_pipeline_opts *pl = &run.pl;
    decompress_ctx cx = {.codec = pm_codec_find(o->codec),
                         .emit = !o->test_only && !o->list, .list = o->list,
                         .keep = o->list || o->restore_name,
                         .warn_zeros = o->warn_trailing_zeros};
    if (!cx.codec)
        return -EINVAL;
    pl->accept = accept;
    run.state_size = sizeof(decompress_state);
    run.state_release = release;
    if (o->list)
        run.fill_result = fill_result;
    if (!cx.emit) {
        pl->sink = PM_SINK_NONE;
        pl->flags &= ~PM_PL_REMOVE_INPUT;
    } else {
        pmp_file_outputs(&run, paths, n, out_path);
        if (pl->sink == PM_SINK_FILES && o->restore_name)
            pl->file_end = end_restore_mtime;
    }
    cx.name_out = pl->sink == PM_SINK_FILES && o->restore_name;
    cx.plain_ok = o->pass_plain && !o->list && (pl->sink == PM_SINK_FD || o->test_only);
    if ((pl->sink == PM_SINK_FD || !cx.emit) && note_operands(&cx, paths, n, o->pl.operand_dirs) < 0)
        return -ENOMEM;
    pl->worker_init = buf_init;
    pl->worker_fini = buf_fini;
    run.ctx = &cx;
    /* Blocked members in parallel, unless the first member's header must
     * be read by the decoder (-l, -N) or plain data may come (-f). */
    int blocked = !cx.keep && !cx.plain_ok;
    if (blocked) {
        pl->frame = frame_members;
        if (!pl->chunk_size)
            pl->chunk_size = MEMBERS_READ;
        /* Reads smaller than a member, members carried until whole: a
         * chunk's members are then bounded by their output, not a read. */
        pl->carry_size = cx.carry_size =
            pl->chunk_size > MEMBERS_CARRY ? pl->chunk_size : MEMBERS_CARRY;
        pl->frame_arg = &cx;
        pl->out_size = MEMBERS_OUT;
        pl->chunk_state_size = sizeof(members_done);
        if (pl->sink == PM_SINK_FILES && cx.emit && o->unpack_source && o->unpack_drop &&
            o->member_placed && o->member_end) {
            cx.elsewhere = o;
            /* -N's end_restore_mtime, the other file_end, never comes
             * with this: -N decodes without the blocked layout. */
            pl->out_placed = pmp_member_placed;
            pl->file_end = pmp_member_end;
            pl->flags |= PM_PL_NAMED_TEMP;    /* for the writers to open */
        }
        int jobs = pm_resolve_jobs(pl->jobs);
        if (!pl->max_chunks && jobs > 0) /* carry, read and output: 4.5 MiB each */
            pl->max_chunks = 2 * (unsigned)jobs + 2;
    }
    static const pmp_stage stages[] = {
        {"members", PM_STAGE_PARALLEL, members_stage},
        {"inflate", PM_STAGE_SERIAL_IN_ORDER, inflate_stage},
    };
    int rc = pmp_run_stages(&run, blocked ? stages : stages + 1, blocked ? 2 : 1, paths, n,
                            stats);
    free(cx.operands);
    return rc;
}
