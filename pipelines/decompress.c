/* decompress.c - gzip decompression (also -t test and -l list).
 *
 * Stage:
 *   inflate (serial)     one streaming decoder per file, fed the file's
 *                        chunks in order; its output is emitted piece by
 *                        piece (pm_chunk_emit), so memory stays bounded
 *                        whatever the compression ratio.
 * Inflate is serial within a file, but reading ahead, checking and writing
 * overlap with it on the pipeline's I/O thread, and files decompress in
 * parallel. Every member, header flag, CRC-32 and length is checked by the
 * decoder; a file that fails leaves no output behind.
 *
 * As gzip 1.12 does: files are recognised by gzip's suffixes (names.c), but
 * with -c, -t and -l a file named as an operand is read whatever its name
 * (files found by walking a directory still need a suffix, as with gzip
 * -r -t); with pass_plain (-f with -c or -t, zcat -f) a file that does not
 * start with the gzip magic is copied as it is; zeros after the last member
 * are ignored silently (a warning only with warn_trailing_zeros, gzip -v);
 * -N takes the base name of the stored name, cut to NAME_MAX with a
 * warning, and refuses "", "." and "..".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libdeflate.h>

#include <pmap/config.h>
#include <pmap/gz.h>
#include "common.h"

#define INFLATE_BUF (256 * 1024)

typedef struct decompress_ctx {
    int emit;                    /* write the output (not -t, not -l) */
    int list;                    /* -l: keep the decoded data's CRC */
    int keep;                    /* the decoder's info is read after the
                                    last chunk (-l, -N): keep the decoder */
    int plain_ok;                /* -f with -c/-t: non-gzip data copied */
    int warn_zeros;              /* trailing zeros get a warning (-v) */
    int name_out;                /* -N names the output files */
    const char **operands;       /* -c, -t, -l: the operands, sorted, which
                                    are read whatever their suffix */
    size_t noperands;
    size_t carry_size;           /* the framer's bound on what it leaves */
} decompress_ctx;

typedef struct decompress_state {
    pm_gz_inflater *z;
    int done;
    uint32_t crc;                /* -l: CRC-32 of the decoded data */
    int sniffed;                 /* plain_ok: gzip or plain is decided */
    int plain;                   /* not gzip: copied as it is */
    int held;                    /* a lone first byte 0x1f, not yet decided */
} decompress_state;

static const unsigned char gz_magic[2] = {0x1f, 0x8b};

/* Each worker has one output buffer for the streaming decoder and one
 * libdeflate decompressor for whole members (its per-worker state). */
typedef struct worker_bufs {
    unsigned char buf[INFLATE_BUF];
    struct libdeflate_decompressor *dec;
} worker_bufs;

static int buf_init(void **state_ret, unsigned worker, void *arg)
{
    (void)worker;
    (void)arg;
    worker_bufs *w = malloc(sizeof *w);
    if (w && !(w->dec = libdeflate_alloc_decompressor())) {
        free(w);
        w = NULL;
    }
    *state_ret = w;
    return w ? 0 : -ENOMEM;
}

static void buf_fini(void *state, unsigned worker, void *arg)
{
    (void)worker;
    (void)arg;
    worker_bufs *w = state;
    if (w)
        libdeflate_free_decompressor(w->dec);
    free(w);
}

/* ---- the blocked format, in parallel (docs/format.md) ----
 *
 * The framer cuts chunks at member boundaries using the "PM" subfields;
 * the parallel stage inflates the chunk's whole members into its output
 * buffer with libdeflate (each member's CRC and size checked); the serial
 * stage uses that output only if the file's streaming decoder stands at a
 * member boundary there (the members are really members, not bytes inside
 * one), and streams whatever the parallel stage did not take. Sizes are
 * never trusted: a member whose inflate does not end exactly where its
 * subfield says, or produce exactly its size, is left to the streaming
 * decoder, which decodes the file as any gzip. */
#define MEMBERS_READ (256 * 1024)        /* bytes per read */
#define MEMBERS_CARRY (1280 * 1024)      /* carry room: a whole 1 MiB member, stored */
#define MEMBERS_OUT (3 * 1024 * 1024)    /* decoded bytes per chunk, at most */
#define MEMBER_MIN (24 + 2 + PM_GZ_TRAILER_SIZE)

typedef struct members_done {
    uint64_t members;            /* whole members decoded into c->out */
    size_t in_used;              /* their bytes at the chunk's start */
} members_done;

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Does p[0..avail) start with a blocked member's header? Its sizes then. */
static int member_at(const unsigned char *p, size_t avail, uint32_t *msize, uint32_t *usize)
{
    if (avail < 24 || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || (p[3] & ~0x0cu) ||
        !(p[3] & 0x04) || p[10] != 12 || p[11] != 0 || p[12] != PM_GZ_BLOCKED_SI1 ||
        p[13] != PM_GZ_BLOCKED_SI2 || p[14] != 8 || p[15] != 0)
        return 0;
    *msize = get_le32(p + 16);
    *usize = get_le32(p + 20);
    return *msize >= MEMBER_MIN && *usize <= PM_GZ_BLOCKED_MAX;
}

/* The framer: when the chunk starts with a member, it ends after the last
 * whole member whose output still fits in the chunk's output buffer (by
 * the subfields' word) -- or later, as far as needed to leave at most the
 * carry room for the next chunk; when the first member is not all here
 * yet, the chunk is deferred whole into the next one (reads are smaller
 * than members, so that a chunk's members are bounded by their output, not
 * by a read). When that is impossible (a member longer than the carry
 * room), or the chunk does not start with a member, it is passed whole. */
static size_t frame_members(const unsigned char *data, size_t len, void *arg)
{
    const size_t carry = *(const size_t *)arg;
    size_t pos = 0, out = 0, budget = 0;
    uint32_t ms, us;
    if (member_at(data, len, &ms, &us) && ms > len)
        return len <= carry ? PM_FRAME_DEFER : 0;
    while (member_at(data + pos, len - pos, &ms, &us) && ms <= len - pos) {
        if (pos == 0 || us <= MEMBERS_OUT - out) {
            if (budget == pos)
                budget = pos + ms;        /* still within the output budget */
            out += us;
        }
        pos += ms;
        if (budget < pos && len - budget <= carry)
            break;                        /* the budget's cut leaves a small tail */
    }
    if (len - budget <= carry)
        return budget;
    return len - pos <= carry ? pos : 0;
}

static int members_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    worker_bufs *w = c->worker_state;
    members_done *md = c->state;
    size_t pos = 0, out = 0;
    uint32_t ms, us;
    md->members = 0;
    while (member_at(c->data + pos, c->len - pos, &ms, &us) && ms <= c->len - pos &&
           us <= c->out_cap - out) {
        size_t ain = 0, aout = 0;
        if (libdeflate_gzip_decompress_ex(w->dec, c->data + pos, ms, c->out + out, us,
                                          &ain, &aout) != LIBDEFLATE_SUCCESS ||
            ain != ms || aout != us)
            break;                        /* the streaming decoder will say why */
        pos += ms;
        out += us;
        md->members++;
    }
    md->in_used = pos;
    c->out_len = out;
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
        int rc = pm_gz_inflate(st->z, in, len, &used, buf, INFLATE_BUF, &produced, eof);
        if (rc < 0)
            return pm_chunk_fail(c, rc, "%s", pm_gz_inflater_message(st->z));
        if (produced && cx->emit) {
            int erc = pm_chunk_emit(c, buf, produced);
            if (erc < 0)
                return erc;
        }
        if (produced && cx->list)
            st->crc = pm_crc32(st->crc, buf, produced);
        in += used;
        len -= used;
        if (rc == PM_GZ_DONE)
            st->done = 1;
        else if (rc == PM_GZ_NEED_INPUT && len == 0)
            break;
    }
    return 0;
}

/* plain_ok: gzip data or not, from the first two bytes, as gzip -f decides.
 * Returns 0 when a first chunk of the one byte 0x1f leaves it open (held). */
static int sniff(decompress_state *st, const pm_chunk *c)
{
    size_t have = (size_t)st->held + c->len;
    if (have >= 2)
        st->plain = (st->held ? 0x1f : c->data[0]) != gz_magic[0] ||
                    (st->held ? c->data[0] : c->data[1]) != gz_magic[1];
    else if (have == 1 && c->data[0] == gz_magic[0] && !c->last) {
        st->held = 1;
        return 0;
    } else
        st->plain = 1;           /* empty, or one byte: not gzip */
    st->sniffed = 1;
    return 1;
}

/* Copies a file that is not gzip as it is (zcat -f). */
static int pass_plain(pm_chunk *c, const decompress_ctx *cx, decompress_state *st)
{
    int rc = 0;
    if (st->held && cx->emit)
        rc = pm_chunk_emit(c, gz_magic, 1);
    st->held = 0;
    if (rc == 0 && c->len && cx->emit)
        rc = pm_chunk_emit(c, c->data, c->len);
    return rc;
}

/* The name stored in a gzip header h[0..n) (the file's first bytes), as
 * gzip -N uses it: the part after its last '/', cut to NAME_MAX bytes.
 * Returns 0, or 1 when it was cut, with the name in out (NAME_MAX + 1
 * bytes); -ENOENT when the header has no name (or is cut short), -EINVAL
 * for a name that cannot be a file's ("", ".", ".."), -ENAMETOOLONG when it
 * does not end in the first NAME_BYTES. */
#define NAME_BYTES 4096
static int parse_name(const unsigned char *h, size_t n, char *out)
{
    if (n < 10 || h[0] != gz_magic[0] || h[1] != gz_magic[1] || !(h[3] & 0x08))
        return -ENOENT;
    size_t pos = 10;
    if (h[3] & 0x04) {           /* FEXTRA: skip it */
        if (n < 12)
            return -ENOENT;
        pos += 2 + (size_t)(h[10] | h[11] << 8);
    }
    if (pos >= n)
        return -ENOENT;
    const unsigned char *name = h + pos, *end = memchr(name, 0, n - pos);
    if (!end)
        return n >= NAME_BYTES ? -ENAMETOOLONG : -ENOENT;
    const unsigned char *base = name;
    for (const unsigned char *p = name; p < end; p++)
        if (*p == '/')
            base = p + 1;
    size_t len = (size_t)(end - base);
    if (len == 0 || (len == 1 && base[0] == '.') || (len == 2 && !memcmp(base, "..", 2)))
        return -EINVAL;
    int cut = len > NAME_MAX;
    if (cut)
        len = NAME_MAX;
    memcpy(out, base, len);
    out[len] = 0;
    return cut;
}

static int inflate_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    decompress_ctx *cx = arg;
    decompress_state *st = c->file->state;
    if (cx->plain_ok && !st->sniffed && !sniff(st, c))
        return 0;                         /* a lone 0x1f: wait for more */
    if (st->plain)
        return pass_plain(c, cx, st);
    if (!st->z) {                         /* the file's first chunk */
        int rc = pm_gz_inflater_new(&st->z);
        if (rc < 0)
            return rc;
    }
    int rc = st->held ? feed(c, cx, st, gz_magic, 1, 0) : 0;
    st->held = 0;
    size_t skip = 0;
    const members_done *md = c->state;
    if (md && md->members &&
        pm_gz_inflater_skip_members(st->z, md->members, md->in_used, c->out_len) == 0) {
        skip = md->in_used;               /* whole members, decoded in parallel */
        if (skip < c->len && cx->emit) {  /* output in order: these first */
            rc = pm_chunk_emit(c, c->out, c->out_len);
            c->out_len = 0;
        }
    } else {
        c->out_len = 0;                   /* not at a member boundary: stream it all */
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
        parse_name(c->data, c->len < NAME_BYTES ? c->len : NAME_BYTES, name) == 1)
        pm_file_warn(c->file, "stored name truncated to %d bytes", NAME_MAX);
    if (c->last) {
        pm_gz_info info;
        pm_gz_inflater_info(st->z, &info);
        if (info.trailing_garbage || (info.trailing_zeros && cx->warn_zeros))
            pm_file_warn(c->file, "%s", pm_gz_inflater_message(st->z));
        if (!cx->keep) {
            /* Its ~40 KiB would otherwise live until the file's event,
             * through the fsyncs: many files are in flight there. */
            pm_gz_inflater_free(st->z);
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
        pm_gz_info info;
        pm_gz_inflater_info(st->z, &info);
        if (info.mtime)
            f->out_mtime = info.mtime;
    }
    return 0;
}

static void release(void *state)
{
    decompress_state *st = state;
    pm_gz_inflater_free(st->z);
}

static void fill_result(pmp_run *run, const pm_file *f, pmp_result *r)
{
    (void)run;
    const decompress_state *st = f->state;
    static __thread char name[256];
    pm_gz_info info = {0};
    if (st->z)                   /* NULL when the file failed before its first chunk */
        pm_gz_inflater_info(st->z, &info);
    r->compressed = (uint64_t)f->st.st_size;
    r->uncompressed = info.out_bytes;
    r->mtime = info.mtime;
    r->crc_stored = st->crc;
    snprintf(name, sizeof name, "%s", info.name);
    r->name = name;
}

/* The stored name of the file at path (see parse_name). */
static int stored_name(const char *path, char *out)
{
    unsigned char h[NAME_BYTES];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, h, sizeof h);
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err ? err : parse_name(h, (size_t)n, out);
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

/* Names with one of gzip's suffixes are decompressed, tested or listed;
 * with -c, -t or -l also any file named as an operand (gzip -dc x.zz). */
static int accept(const char *path, char *msg, size_t cap, void *arg)
{
    pmp_run *run = arg;
    if (pmp_has_gz_suffix(path, run->o->suffix) || is_operand(run->ctx, path))
        return 0;
    snprintf(msg, cap, "unknown suffix -- ignored");
    return PM_PL_SKIP;
}

static int out_path(const pm_file *f, char *buf, size_t cap, void *arg)
{
    pmp_run *run = arg;
    char name[NAME_MAX + 1];
    int rc = run->o->restore_name ? stored_name(f->path, name) : -ENOENT;
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
        snprintf(buf, cap, "corrupted input -- stored name longer than %d bytes", NAME_BYTES);
        return -EBADMSG;
    }
    if (rc != -ENOENT)
        return rc;
    rc = pmp_decompressed_name(f->path, run->o->suffix, buf, cap);
    if (rc == -EINVAL) {
        snprintf(buf, cap, "unknown suffix -- ignored");
        return PM_PL_SKIP;
    }
    return rc;
}

/* -c, -t, -l: the operands, sorted, for accept(). Returns 0 or -ENOMEM. */
static int note_operands(decompress_ctx *cx, const char *const *paths, size_t n)
{
    if (n == 0)
        return 0;
    cx->operands = malloc(n * sizeof *cx->operands);
    if (!cx->operands)
        return -ENOMEM;
    memcpy(cx->operands, paths, n * sizeof *paths);
    qsort(cx->operands, n, sizeof *cx->operands, by_name);
    cx->noperands = n;
    return 0;
}

int pmp_decompress(const pmp_opts *o, const char *const *paths, size_t n,
                   pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    pm_pipeline_opts *pl = &run.pl;
    decompress_ctx cx = {.emit = !o->test_only && !o->list, .list = o->list,
                         .keep = o->list || o->restore_name,
                         .warn_zeros = o->warn_trailing_zeros};
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
    if ((pl->sink == PM_SINK_FD || !cx.emit) && note_operands(&cx, paths, n) < 0)
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
        pl->carry_size = cx.carry_size =
            pl->chunk_size > MEMBERS_CARRY ? pl->chunk_size : MEMBERS_CARRY;
        pl->frame_arg = &cx.carry_size;
        pl->out_size = MEMBERS_OUT;
        pl->chunk_state_size = sizeof(members_done);
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
