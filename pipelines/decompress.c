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
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/gz.h>
#include "common.h"

#define INFLATE_BUF (256 * 1024)

typedef struct decompress_ctx {
    int emit;                    /* write the output (not -t, not -l) */
    int list;                    /* -l: keep the decoded data's CRC */
    int keep;                    /* the decoder's info is read after the
                                    last chunk (-l, -N): keep the decoder */
} decompress_ctx;

typedef struct decompress_state {
    pm_gz_inflater *z;
    int done;
    uint32_t crc;                /* -l: CRC-32 of the decoded data */
} decompress_state;

/* Each worker has one output buffer (its per-worker state). */
static int buf_init(void **state_ret, unsigned worker, void *arg)
{
    (void)worker;
    (void)arg;
    *state_ret = malloc(INFLATE_BUF);
    return *state_ret ? 0 : -ENOMEM;
}

static void buf_fini(void *state, unsigned worker, void *arg)
{
    (void)worker;
    (void)arg;
    free(state);
}

static int inflate_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    decompress_ctx *cx = arg;
    decompress_state *st = c->file->state;
    const unsigned char *in = c->data;
    size_t len = c->len;
    unsigned char *buf = c->worker_state;
    if (!st->z) {                         /* the file's first chunk */
        int rc = pm_gz_inflater_new(&st->z);
        if (rc < 0)
            return rc;
    }
    while (!st->done) {
        size_t used = 0, produced = 0;
        int rc = pm_gz_inflate(st->z, in, len, &used, buf, INFLATE_BUF, &produced, c->last);
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
    if (c->last && !st->done)
        return pm_chunk_fail(c, -ENODATA, "unexpected end of file");
    if (c->last) {
        pm_gz_info info;
        pm_gz_inflater_info(st->z, &info);
        if (info.trailing_garbage || info.trailing_zeros)
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

/* The FNAME stored in a gzip header, read from the file's first bytes.
 * Returns 0 and the base name in out, or -EINVAL when there is none. */
static int stored_name(const char *path, char *out, size_t cap)
{
    unsigned char h[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    if (n < 10 || h[0] != 0x1f || h[1] != 0x8b || !(h[3] & 0x08))
        return -EINVAL;
    size_t pos = 10;
    if (h[3] & 0x04) {           /* FEXTRA: skip it */
        if (n < 12)
            return -EINVAL;
        pos += 2 + (size_t)(h[10] | h[11] << 8);
    }
    const unsigned char *name = h + pos, *end = memchr(name, 0, pos < (size_t)n ? (size_t)n - pos : 0);
    if (!end || end == name)
        return -EINVAL;
    const unsigned char *slash = memchr(name, '/', (size_t)(end - name));
    if (slash || !strcmp((const char *)name, ".") || !strcmp((const char *)name, ".."))
        return -EINVAL;          /* never let a header name leave the directory */
    snprintf(out, cap, "%s", (const char *)name);
    return 0;
}

/* Only names with a known suffix are decompressed, tested or listed. */
static int accept(const char *path, char *msg, size_t cap, void *arg)
{
    pmp_run *run = arg;
    char out[4096];
    if (pmp_decompressed_name(path, run->o->suffix, out, sizeof out) == -EINVAL) {
        snprintf(msg, cap, "unknown suffix -- ignored");
        return PM_PL_SKIP;
    }
    return 0;
}

static int out_path(const pm_file *f, char *buf, size_t cap, void *arg)
{
    pmp_run *run = arg;
    char name[4096];
    if (run->o->restore_name && stored_name(f->path, name, sizeof name) == 0) {
        const char *slash = strrchr(f->path, '/');
        int dir = slash ? (int)(slash - f->path) + 1 : 0;
        int w = snprintf(buf, cap, "%.*s%s", dir, f->path, name);
        return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
    }
    int rc = pmp_decompressed_name(f->path, run->o->suffix, buf, cap);
    if (rc == -EINVAL) {
        snprintf(buf, cap, "unknown suffix -- ignored");
        return PM_PL_SKIP;
    }
    return rc;
}

int pmp_decompress(const pmp_opts *o, const char *const *paths, size_t n,
                   pm_pipeline_stats *stats)
{
    pmp_run run;
    pmp_run_init(&run, o);
    pm_pipeline_opts *pl = &run.pl;
    decompress_ctx cx = {.emit = !o->test_only && !o->list, .list = o->list,
                         .keep = o->list || o->restore_name};
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
    pl->worker_init = buf_init;
    pl->worker_fini = buf_fini;
    run.ctx = &cx;
    static const pmp_stage stages[] = {
        {"inflate", PM_STAGE_SERIAL_IN_ORDER, inflate_stage},
    };
    return pmp_run_stages(&run, stages, 1, paths, n, stats);
}
