/* dg_sink.c - buffered output cut at an exact size, and the kind dispatch.
 *
 * Generators append whole records to the sink's buffer (each record is at
 * most DG_RECORD_MAX bytes, which is always free past the flush threshold).
 * After each record dg_sink_commit writes the buffer out once it passes
 * the threshold, and stops the stream at exactly `limit` bytes by writing
 * only the wanted prefix of the last record. One thread, one buffer: memory
 * does not grow with the size of the output. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dg.h"

#define DG_SINK_CAP (1u << 20)

dg_sink *dg_sink_new(void)
{
    dg_sink *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = DG_SINK_CAP;
    s->buf = malloc(DG_SINK_CAP + DG_RECORD_MAX);
    if (!s->buf) {
        free(s);
        return NULL;
    }
    return s;
}

void dg_sink_free(dg_sink *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s);
}

void dg_put(dg_sink *s, const char *p, size_t n)
{
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

void dg_puts(dg_sink *s, const char *p)
{
    dg_put(s, p, strlen(p));
}

void dg_put_u(dg_sink *s, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        dg_putc(s, tmp[--n]);
}

void dg_put_u0(dg_sink *s, uint64_t v, int width)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 20);
    while (n < width && n < 20)
        tmp[n++] = '0';
    while (n)
        dg_putc(s, tmp[--n]);
}

void dg_put_hex(dg_sink *s, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--)
        dg_putc(s, hex[(v >> (4 * (i & 15))) & 15]);
}

void dg_put_fixed(dg_sink *s, uint64_t v, int decimals)
{
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    dg_put_u(s, v / scale);
    dg_putc(s, '.');
    dg_put_u0(s, v % scale, decimals);
}

static int write_all(dg_sink *s, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int dg_sink_commit(dg_sink *s)
{
    if (s->err)
        return 0;
    if (s->written + s->len >= s->limit) {
        size_t want = (size_t)(s->limit - s->written);
        s->err = write_all(s, s->buf, want);
        s->written += want;
        s->len = 0;
        return 0;
    }
    if (s->len >= s->cap) {
        s->err = write_all(s, s->buf, s->len);
        s->written += s->len;
        s->len = 0;
    }
    return s->err == 0;
}

/* ---- kinds ---- */

static const char *const kind_names[DG_NKINDS] = { "text", "log", "csv", "jsonl", "binary" };
static const char *const kind_exts[DG_NKINDS] = { "txt", "log", "csv", "jsonl", "bin" };

const char *dg_kind_name(dg_kind k) { return kind_names[k]; }
const char *dg_kind_ext(dg_kind k) { return kind_exts[k]; }

int dg_kind_parse(const char *s, dg_kind *k_ret)
{
    static const struct { const char *name; dg_kind kind; } alias[] = {
        {"text", DG_TEXT}, {"txt", DG_TEXT}, {"log", DG_LOG}, {"logs", DG_LOG},
        {"csv", DG_CSV}, {"jsonl", DG_JSONL}, {"json", DG_JSONL},
        {"binary", DG_BINARY}, {"bin", DG_BINARY},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(s, alias[i].name)) {
            *k_ret = alias[i].kind;
            return 0;
        }
    return -EINVAL;
}

void dg_gen_init(dg_gen *g, dg_kind kind, const dg_tables *t, uint64_t seed, uint64_t stream)
{
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->t = t;
    g->seed = seed;
    dg_rng_seed(&g->rng, seed, stream);
    /* Start somewhere in 2023-2025 (ms since the epoch). */
    g->clock_ms = 1672531200000ull + dg_below(&g->rng, 3ull * 365 * 86400000);
}

void dg_gen_record(dg_gen *g, dg_sink *s)
{
    switch (g->kind) {
    case DG_TEXT: dg_text_record(g, s); break;
    case DG_LOG: dg_log_record(g, s); break;
    case DG_CSV: dg_csv_record(g, s); break;
    case DG_JSONL: dg_jsonl_record(g, s); break;
    default: dg_binary_record(g, s); break;
    }
}

int dg_write_stream(dg_sink *s, int fd, const char *path, dg_kind kind,
                    const dg_tables *t, uint64_t seed, uint64_t stream, uint64_t size)
{
    dg_gen g;
    dg_gen_init(&g, kind, t, seed, stream);
    s->fd = fd;
    s->path = path;
    s->len = 0;
    s->written = 0;
    s->limit = size;
    s->err = 0;
    if (size == 0)
        return 0;
    do
        dg_gen_record(&g, s);
    while (dg_sink_commit(s));
    return s->err;
}

int dg_write_file(dg_sink *s, const char *path, int force, dg_kind kind,
                  const dg_tables *t, uint64_t seed, uint64_t stream, uint64_t size)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        int err = -errno;
        if (err == -EEXIST)
            fprintf(stderr, "pmap-datagen: %s: already exists (use --force to overwrite)\n", path);
        else
            fprintf(stderr, "pmap-datagen: %s: cannot create: %s\n", path, strerror(-err));
        return err;
    }
    int err = dg_write_stream(s, fd, path, kind, t, seed, stream, size);
    if (close(fd) < 0 && !err)
        err = -errno;
    if (err)
        fprintf(stderr, "pmap-datagen: %s: write failed: %s\n", path, strerror(-err));
    return err;
}
