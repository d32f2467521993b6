/* bench_codec.c - the deflate engines side by side, one thread, on one file
 * cut into independent chunks (the blocked format's members): what each
 * engine and level costs and how small it gets, how fast each inflater
 * decodes whole chunks, and how fast each CRC-32 runs. The level table in
 * BENCHMARKS.md ("Engines per level") comes from this program.
 *
 *   bench_codec FILE [CHUNK_KIB [REPS [ENGINE:LO-HI]]]
 *
 * Defaults: 1024 KiB chunks, 3 repetitions, every engine at every level
 * (isal 0-3, libdeflate 1-12, zlib 1-9); ENGINE:LO-HI measures only those
 * levels of one engine (libdeflate:5-7).
 *
 * The whole file is read into memory first; times are the best of REPS
 * runs, wall clock, on the calling thread only. Sizes are raw deflate plus
 * the blocked format's 32 bytes of header and trailer per chunk.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>

#define MEMBER_OVERHEAD 32      /* 24-byte header with the "PM" subfield + trailer */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct chunked {
    unsigned char *buf;         /* compressed chunks, each at a fixed slot */
    size_t *len;                /* compressed size of each */
    size_t slot;                /* slot size */
    size_t n;                   /* chunks */
} chunked;

enum { ENG_ZLIB, ENG_LIBDEFLATE, ENG_ISAL };
static const char *eng_name[] = {"zlib", "libdeflate", "isal"};

/* One chunk, raw deflate; returns its size or 0 on failure. */
static size_t deflate_one(int eng, int level, void *st, const unsigned char *in, size_t len,
                          unsigned char *out, size_t cap)
{
    switch (eng) {
    case ENG_ZLIB: {
        z_stream *z = st;
        deflateReset(z);
        z->next_in = (unsigned char *)in;
        z->avail_in = (uInt)len;
        z->next_out = out;
        z->avail_out = (uInt)cap;
        return deflate(z, Z_FINISH) == Z_STREAM_END ? cap - z->avail_out : 0;
    }
    case ENG_LIBDEFLATE:
        return libdeflate_deflate_compress(st, in, len, out, cap);
    default: {
        struct isal_zstream *s = st;
        unsigned char *lb = s->level_buf;
        uint32_t lbs = s->level_buf_size;
        isal_deflate_stateless_init(s);
        s->level = (uint32_t)level;
        s->level_buf = lb;
        s->level_buf_size = lbs;
        s->next_in = (unsigned char *)in;
        s->avail_in = (uint32_t)len;
        s->next_out = out;
        s->avail_out = (uint32_t)cap;
        s->end_of_stream = 1;
        s->flush = NO_FLUSH;
        return isal_deflate_stateless(s) == COMP_OK ? cap - s->avail_out : 0;
    }
    }
}

static void *engine_new(int eng, int level)
{
    switch (eng) {
    case ENG_ZLIB: {
        z_stream *z = calloc(1, sizeof *z);
        if (z && deflateInit2(z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return NULL;
        return z;
    }
    case ENG_LIBDEFLATE:
        return libdeflate_alloc_compressor(level);
    default: {
        static const uint32_t lbs[] = {0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT,
                                       ISAL_DEF_LVL3_DEFAULT};
        struct isal_zstream *s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        s->level_buf_size = lbs[level];
        s->level_buf = lbs[level] ? malloc(lbs[level]) : NULL;
        return s;
    }
    }
}

static void engine_free(int eng, void *st)
{
    if (eng == ENG_ZLIB) {
        deflateEnd(st);
        free(st);
    } else if (eng == ENG_LIBDEFLATE) {
        libdeflate_free_compressor(st);
    } else {
        free(((struct isal_zstream *)st)->level_buf);
        free(st);
    }
}

static double run_compress(int eng, int level, const unsigned char *data, size_t size,
                           size_t chunk, int reps, chunked *out)
{
    void *st = engine_new(eng, level);
    if (!st) {
        fprintf(stderr, "bench_codec: %s level %d: cannot create\n", eng_name[eng], level);
        exit(1);
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < out->n; i++) {
            size_t off = i * chunk, len = size - off < chunk ? size - off : chunk;
            out->len[i] = deflate_one(eng, level, st, data + off, len, out->buf + i * out->slot,
                                      out->slot);
            if (!out->len[i]) {
                fprintf(stderr, "bench_codec: %s level %d failed\n", eng_name[eng], level);
                exit(1);
            }
        }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    engine_free(eng, st);
    return best;
}

/* Inflates every chunk of c back (expecting size bytes in all) with eng. */
static double run_inflate(int eng, const chunked *c, size_t chunk, size_t size,
                          unsigned char *dst, int reps)
{
    struct libdeflate_decompressor *ld = libdeflate_alloc_decompressor();
    struct inflate_state *is = malloc(sizeof *is);
    z_stream z = {0};
    inflateInit2(&z, -15);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (size_t i = 0; i < c->n; i++) {
            size_t off = i * chunk, want = size - off < chunk ? size - off : chunk, got = 0;
            const unsigned char *src = c->buf + i * c->slot;
            int ok;
            if (eng == ENG_LIBDEFLATE) {
                ok = libdeflate_deflate_decompress(ld, src, c->len[i], dst + off, want, &got) ==
                     LIBDEFLATE_SUCCESS;
            } else if (eng == ENG_ISAL) {
                isal_inflate_init(is);
                is->next_in = (unsigned char *)src;
                is->avail_in = (uint32_t)c->len[i];
                is->next_out = dst + off;
                is->avail_out = (uint32_t)want;
                is->crc_flag = ISAL_DEFLATE;
                ok = isal_inflate_stateless(is) == ISAL_DECOMP_OK;
                got = want - is->avail_out;
            } else {
                inflateReset(&z);
                z.next_in = (unsigned char *)src;
                z.avail_in = (uInt)c->len[i];
                z.next_out = dst + off;
                z.avail_out = (uInt)want;
                ok = inflate(&z, Z_FINISH) == Z_STREAM_END;
                got = want - z.avail_out;
            }
            if (!ok || got != want) {
                fprintf(stderr, "bench_codec: %s inflate failed on chunk %zu\n", eng_name[eng], i);
                exit(1);
            }
        }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    libdeflate_free_decompressor(ld);
    free(is);
    inflateEnd(&z);
    return best;
}

static double run_crc(int eng, const unsigned char *data, size_t size, int reps, uint32_t *crc)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (eng == ENG_LIBDEFLATE)
            *crc = libdeflate_crc32(0, data, size);
        else if (eng == ENG_ISAL)
            *crc = crc32_gzip_refl(0, data, size);
        else {
            uLong c = crc32(0, Z_NULL, 0);
            for (size_t off = 0; off < size; off += 1u << 30)
                c = crc32(c, data + off, (uInt)(size - off < (1u << 30) ? size - off : 1u << 30));
            *crc = (uint32_t)c;
        }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_codec FILE [CHUNK_KIB [REPS [ENGINE:LO-HI]]]\n");
        return 2;
    }
    size_t chunk = (argc > 2 ? strtoul(argv[2], NULL, 10) : 1024) * 1024;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    if (chunk == 0 || reps < 1) {
        fprintf(stderr, "bench_codec: bad chunk size or repetitions\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "bench_codec: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    rewind(f);
    unsigned char *data = malloc(size ? size : 1), *back = malloc(size ? size : 1);
    if (!data || !back || fread(data, 1, size, f) != size) {
        fprintf(stderr, "bench_codec: %s: cannot read\n", argv[1]);
        return 1;
    }
    fclose(f);
    chunked c = {.n = (size + chunk - 1) / chunk};
    c.slot = libdeflate_deflate_compress_bound(NULL, chunk) + 1024;
    c.buf = malloc(c.n * c.slot);
    c.len = calloc(c.n, sizeof *c.len);
    if (!c.buf || !c.len)
        return 1;

    printf("# %s: %zu bytes, %zu chunks of %zu KiB, best of %d, one thread\n", argv[1], size,
           c.n, chunk / 1024, reps);
    printf("%-11s %5s %12s %9s %9s\n", "engine", "level", "bytes", "seconds", "MB/s");
    struct { int eng, lo, hi; } runs[] = {
        {ENG_ISAL, 0, 3}, {ENG_LIBDEFLATE, 1, 12}, {ENG_ZLIB, 1, 9},
    };
    size_t nruns = sizeof runs / sizeof *runs;
    if (argc > 4) {
        char name[16];
        int lo, hi, e;
        if (sscanf(argv[4], "%15[a-z]:%d-%d", name, &lo, &hi) != 3) {
            fprintf(stderr, "bench_codec: engine levels as ENGINE:LO-HI\n");
            return 2;
        }
        for (e = 0; e < 3 && strcmp(name, eng_name[e]); e++)
            ;
        static const int lowest[] = {1, 1, 0}, highest[] = {9, 12, 3};   /* by ENG_ */
        if (e == 3 || lo < lowest[e] || hi > highest[e] || lo > hi) {
            fprintf(stderr, "bench_codec: no such engine or level: %s\n", argv[4]);
            return 2;
        }
        runs[0].eng = e;
        runs[0].lo = lo;
        runs[0].hi = hi;
        nruns = 1;
    }
    for (size_t r = 0; r < nruns; r++)
        for (int level = runs[r].lo; level <= runs[r].hi; level++) {
            double t = run_compress(runs[r].eng, level, data, size, chunk, reps, &c);
            size_t total = c.n * MEMBER_OVERHEAD;
            for (size_t i = 0; i < c.n; i++)
                total += c.len[i];
            printf("%-11s %5d %12zu %9.3f %9.1f\n", eng_name[runs[r].eng], level, total, t,
                   size / t / 1e6);
            fflush(stdout);
        }

    run_compress(ENG_LIBDEFLATE, 6, data, size, chunk, 1, &c);
    printf("# inflate of the libdeflate -6 chunks (MB/s of output)\n");
    for (int eng = 0; eng < 3; eng++) {
        double t = run_inflate(eng, &c, chunk, size, back, reps);
        if (memcmp(back, data, size)) {
            fprintf(stderr, "bench_codec: %s inflate gave other bytes\n", eng_name[eng]);
            return 1;
        }
        printf("%-11s %9.3f s %9.1f MB/s\n", eng_name[eng], t, size / t / 1e6);
    }
    printf("# CRC-32 of the whole file\n");
    uint32_t want = 0;
    for (int eng = 0; eng < 3; eng++) {
        uint32_t crc = 0;
        double t = run_crc(eng, data, size, reps, &crc);
        if (eng == 0)
            want = crc;
        else if (crc != want) {
            fprintf(stderr, "bench_codec: %s CRC differs\n", eng_name[eng]);
            return 1;
        }
        printf("%-11s %9.4f s %9.1f MB/s\n", eng_name[eng], t, size / t / 1e6);
    }
    free(data);
    free(back);
    free(c.buf);
    free(c.len);
    return 0;
}
