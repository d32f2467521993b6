/* test_gz.c - the gzip codec: CRC-32 and combine, header and trailer, block
 * deflate (pigz's scheme) against our decoder and against gzip, pigz and
 * Python, and the decoder against good, crafted, truncated, corrupt and
 * padded input, fed in pieces of every size. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <pmap/gz.h>
#include "codec/deflate_engine.h"
#include "testutil.h"

#define KiB 1024
#define MiB (1024 * 1024)

/* ---- helpers ---- */

typedef struct gzbuf {
    unsigned char *p;
    size_t len, cap;
} gzbuf;

static void *reserve(gzbuf *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        CU_ASSERT_FATAL(b->p != NULL);
        b->cap = cap;
    }
    return b->p + b->len;
}

static void put(gzbuf *b, const void *p, size_t n)
{
    if (n)
        memcpy(reserve(b, n), p, n);
    b->len += n;
}

/* One gzip member compressed block by block, as the pipeline does it:
 * each block with the preceding 32 KiB as dictionary, CRCs combined, by a
 * deflater on `engine` (NULL: the default choice). */
static gzbuf gz_compress_on(const pm__deflate_engine *engine, const void *data,
                            size_t len, int level, size_t block,
                            const char *name, uint32_t mtime)
{
    gzbuf g = {0};
    pm_gz_header h = {.name = name, .mtime = mtime, .level = level};
    ssize_t hn = pm_gz_write_header(&h, reserve(&g, 512), 512);
    CU_ASSERT_FATAL(hn == (ssize_t)pm_gz_header_size(&h));
    g.len += (size_t)hn;
    pm_gz_deflater *d;
    CU_ASSERT_FATAL(pm__gz_deflater_new_engine(engine, level, &d) == 0);
    const unsigned char *in = data;
    uint32_t crc = 0;
    size_t off = 0;
    do {
        size_t n = len - off < block ? len - off : block;
        size_t dict = off < PM_GZ_DICT_SIZE ? off : PM_GZ_DICT_SIZE;
        size_t cap = pm_gz_block_bound(n);
        ssize_t r = pm_gz_deflate_block(d, in + off - dict, dict, in + off, n,
                                        off + n == len, reserve(&g, cap), cap);
        CU_ASSERT_FATAL(r >= 0);
        g.len += (size_t)r;
        crc = pm_crc32_combine(crc, pm_crc32(0, in + off, n), n);
        off += n;
    } while (off < len);
    pm_gz_write_trailer(crc, len, reserve(&g, 8));
    g.len += 8;
    pm_gz_deflater_free(d);
    return g;
}

static gzbuf gz_compress(const void *data, size_t len, int level, size_t block,
                         const char *name, uint32_t mtime)
{
    return gz_compress_on(NULL, data, len, level, block, name, mtime);
}

typedef struct dec {
    int rc;                     /* DONE or -errno */
    gzbuf out;
    pm_gz_info info;
    char msg[256];
} dec;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Decodes gz[0..len) fed in random pieces of 1..max_feed bytes (0: all at
 * once) into output windows of out_win bytes, checking the call contract. */
static dec gz_decode(const void *gz, size_t len, size_t max_feed,
                     size_t out_win, uint64_t seed)
{
    dec r = {0};
    pm_gz_inflater *z;
    CU_ASSERT_FATAL(pm_gz_inflater_new(&z) == 0);
    const unsigned char *p = gz;
    size_t pos = 0, end = 0;
    uint64_t s = seed | 1;
    for (;;) {
        if (pos == end)
            end = max_feed ? pos + 1 + rnd(&s) % max_feed : len;
        if (end > len)
            end = len;
        size_t used, made;
        int rc = pm_gz_inflate(z, p + pos, end - pos, &used,
                               reserve(&r.out, out_win), out_win, &made,
                               end == len);
        CU_ASSERT(used <= end - pos && made <= out_win);
        pos += used;
        r.out.len += made;
        if (rc == PM_GZ_NEED_INPUT)
            CU_ASSERT_FATAL(pos == end && end < len);
        if (rc == PM_GZ_OUTPUT_FULL)
            CU_ASSERT_FATAL(made == out_win);
        if (rc < 0 || rc == PM_GZ_DONE) {
            r.rc = rc;
            break;
        }
    }
    if (r.rc == PM_GZ_DONE)
        CU_ASSERT(pos == len);
    pm_gz_inflater_info(z, &r.info);
    snprintf(r.msg, sizeof r.msg, "%s", pm_gz_inflater_message(z));
    if (r.rc < 0)
        CU_ASSERT(r.msg[0] != '\0');
    pm_gz_inflater_free(z);
    return r;
}

/* Decodes and expects exactly `want` back, checked and complete. */
static void expect_decodes(const gzbuf *g, const void *want, size_t want_len,
                           size_t max_feed, size_t out_win, uint64_t seed)
{
    dec r = gz_decode(g->p, g->len, max_feed, out_win, seed);
    CU_ASSERT(r.rc == PM_GZ_DONE);
    if (r.rc != PM_GZ_DONE)
        fprintf(stderr, "decode failed: %d %s\n", r.rc, r.msg);
    CU_ASSERT(r.out.len == want_len);
    CU_ASSERT(r.out.len == want_len &&
              (want_len == 0 || memcmp(r.out.p, want, want_len) == 0));
    CU_ASSERT(r.info.in_bytes == g->len);
    CU_ASSERT(r.info.out_bytes == want_len);
    free(r.out.p);
}

static void *make_data(int kind, size_t len, uint64_t seed)
{
    unsigned char *p = malloc(len + 1);
    if (kind == 0)
        pm_test_fill_random(p, len, seed);
    else if (kind == 1)
        pm_test_fill_text(p, len, seed);
    else
        memset(p, 'z', len);
    return p;
}

static int have_tools(void)
{
    return pm_test_sh("{ command -v gzip && command -v pigz && "
                      "command -v python3; } >/dev/null 2>&1") == 0;
}

/* ---- CRC-32 ---- */

static void test_crc32(void)
{
    CU_ASSERT(pm_crc32(0, "123456789", 9) == 0xcbf43926u);
    CU_ASSERT(pm_crc32(0x1234, NULL, 0) == 0x1234);
    size_t n = 100000;
    unsigned char *buf = make_data(0, n, 1);
    uint32_t whole = pm_crc32(0, buf, n);
    size_t cuts[] = {0, 1, 7, 4096, 65536, n - 1, n};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t c = cuts[i];
        uint32_t a = pm_crc32(0, buf, c), b = pm_crc32(0, buf + c, n - c);
        CU_ASSERT(pm_crc32_combine(a, b, n - c) == whole);
        CU_ASSERT(pm_crc32(a, buf + c, n - c) == whole);
    }
    /* Huge lengths agree with zlib's own combination. */
    uint64_t lens[] = {1, 1000, (uint64_t)1 << 32, ((uint64_t)1 << 40) + 3};
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT(pm_crc32_combine(0xdeadbeef, 0x01234567, lens[i]) ==
                  (uint32_t)crc32_combine(0xdeadbeef, 0x01234567,
                                          (z_off_t)lens[i]));
    free(buf);
}

/* ---- header and trailer ---- */

static void test_header(void)
{
    unsigned char b[64];
    pm_gz_header h = {.name = "/some/dir/file.txt", .mtime = 0x01020304, .level = 9};
    CU_ASSERT(pm_gz_header_size(&h) == 10 + 9);
    CU_ASSERT(pm_gz_write_header(&h, b, sizeof b) == 19);
    static const unsigned char want[] = {0x1f, 0x8b, 8, 0x08, 4, 3, 2, 1, 2, 3};
    CU_ASSERT(memcmp(b, want, 10) == 0);
    CU_ASSERT(memcmp(b + 10, "file.txt", 9) == 0);          /* with NUL */
    CU_ASSERT(pm_gz_write_header(&h, b, 18) == -ENOSPC);
    pm_gz_header anon = {.level = 1};
    CU_ASSERT(pm_gz_write_header(&anon, b, sizeof b) == 10);
    CU_ASSERT(b[3] == 0 && b[4] == 0 && b[7] == 0 && b[8] == 4 && b[9] == 3);
    pm_gz_header six = {.name = "dir/", .mtime = 5, .level = 6};                      /* empty base */
    CU_ASSERT(pm_gz_write_header(&six, b, sizeof b) == 10);
    CU_ASSERT(b[3] == 0 && b[4] == 5 && b[8] == 0);
    pm_gz_write_trailer(0xa1b2c3d4, ((uint64_t)1 << 32) + 7, b);
    static const unsigned char tr[] = {0xd4, 0xc3, 0xb2, 0xa1, 7, 0, 0, 0};
    CU_ASSERT(memcmp(b, tr, 8) == 0);

    /* A blocked member's header: FEXTRA with the "PM" subfield, then FNAME. */
    pm_gz_header blk = {.name = "a/b.txt", .mtime = 7, .level = 6, .blocked = 1};
    CU_ASSERT(pm_gz_header_size(&blk) == 10 + 14 + 6);
    CU_ASSERT(pm_gz_write_header(&blk, b, sizeof b) == 30);
    static const unsigned char bh[] = {0x1f, 0x8b, 8, 0x04 | 0x08, 7, 0, 0, 0, 0, 3,
                                       12, 0, 'P', 'M', 8, 0};
    CU_ASSERT(memcmp(b, bh, sizeof bh) == 0);
    CU_ASSERT(memcmp(b + 24, "b.txt", 6) == 0);
    pm_gz_set_member_sizes(b, 0x01020304, 0x0a0b0c0d);
    static const unsigned char sz[] = {4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a};
    CU_ASSERT(memcmp(b + 16, sz, 8) == 0);
    pm_gz_header blk_anon = {.level = 1, .blocked = 1};
    CU_ASSERT(pm_gz_write_header(&blk_anon, b, sizeof b) == 24);
    CU_ASSERT(b[3] == 0x04);
    CU_ASSERT(pm_gz_write_header(&blk_anon, b, 23) == -ENOSPC);
}

/* ---- the deflater ---- */

static void test_deflater_args(void)
{
    pm_gz_deflater *d = (void *)1;
    CU_ASSERT(pm_gz_deflater_new(0, &d) == -EINVAL && d == NULL);
    CU_ASSERT(pm_gz_deflater_new(10, &d) == -EINVAL);
    CU_ASSERT(pm_gz_deflater_new(6, NULL) == -EINVAL);
    pm_gz_deflater_free(NULL);
    CU_ASSERT(pm__deflate_engine_find("zlib") == &pm__deflate_zlib);
    CU_ASSERT(pm__deflate_engine_find("nope") == NULL);
    CU_ASSERT(pm__deflate_engine_find(NULL) != NULL);
    CU_ASSERT_FATAL(pm_gz_deflater_new(6, &d) == 0);
    unsigned char in[4096], out[64];
    pm_test_fill_random(in, sizeof in, 3);
    CU_ASSERT(pm_gz_deflate_block(d, NULL, 0, in, sizeof in, 1, out,
                                  sizeof out) == -ENOSPC);
    CU_ASSERT(pm_gz_deflate_block(d, NULL, 0, in, sizeof in, 0, out,
                                  sizeof out) == -ENOSPC);
    CU_ASSERT(pm_gz_deflate_block(d, NULL, 0, NULL, 5, 1, out,
                                  sizeof out) == -EINVAL);
    /* Still usable after a failure; an empty non-last block is empty. */
    CU_ASSERT(pm_gz_deflate_block(d, in, 10, in, 0, 0, out, sizeof out) == 0);
    CU_ASSERT(pm_gz_deflate_block(d, NULL, 0, in, 0, 1, out, sizeof out) == 2);
    pm_gz_deflater_free(d);
}

/* Output never exceeds pm_gz_block_bound(), for incompressible data too. */
static void test_block_bound(void)
{
    static const size_t sizes[] = {0, 1, 100, 32767, 65536, 131072, 131073,
                                   1000003};
    unsigned char *dict = make_data(0, PM_GZ_DICT_SIZE, 9);
    for (int kind = 0; kind < 2; kind++) {
        unsigned char *in = make_data(kind, 1000003, 10 + kind);
        size_t cap = pm_gz_block_bound(1000003);
        unsigned char *out = malloc(cap);
        for (int level = 1; level <= 9; level++) {
            pm_gz_deflater *d;
            CU_ASSERT_FATAL(pm_gz_deflater_new(level, &d) == 0);
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
                for (int last = 0; last < 2; last++) {
                    size_t n = sizes[i], b = pm_gz_block_bound(n);
                    if (n > 200000 && level % 4 != 1)   /* 1, 5, 9 */
                        continue;
                    ssize_t r = pm_gz_deflate_block(d, dict, PM_GZ_DICT_SIZE,
                                                    in, n, last, out, b);
                    CU_ASSERT(r >= 0 && (size_t)r <= b);
                    if (kind == 0 && n > 0)     /* stored: close to n */
                        CU_ASSERT(r >= (ssize_t)n);
                }
            pm_gz_deflater_free(d);
        }
        free(in);
        free(out);
    }
    CU_ASSERT(pm_gz_block_bound(131072) < 131072 + 131072 / 100);
    free(dict);
}

/* ---- round trips ---- */

static void roundtrip_case(int kind, size_t len, int level, size_t block)
{
    unsigned char *data = make_data(kind, len, len * 31 + level);
    gzbuf g = gz_compress(data, len, level, block, "data.bin", 1700000000);
    expect_decodes(&g, data, len, 0, 1 * MiB, 1);
    expect_decodes(&g, data, len, 4096, 1000, len + 2);
    if (len <= 200 * KiB)
        expect_decodes(&g, data, len, 3, 7, len + 3);
    if (len <= 2 * KiB)
        expect_decodes(&g, data, len, 1, 1, len + 4);
    free(g.p);
    free(data);
}

static void test_roundtrip_self(void)
{
    static const size_t blocks[] = {32 * KiB, 128 * KiB, 1 * MiB};
    static const int levels[] = {1, 6, 9};
    for (size_t bi = 0; bi < 3; bi++) {
        size_t b = blocks[bi];
        size_t sizes[] = {0, 1, 1000, b - 1, b, b + 1, 2 * b + 12345};
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (int li = 0; li < 3; li++)
                for (int kind = 0; kind < 3; kind++)
                    roundtrip_case(kind, sizes[si], levels[li], b);
    }
    for (int li = 0; li < 3; li++)          /* several MiB */
        for (int kind = 0; kind < 2; kind++)
            roundtrip_case(kind, 3 * MiB + 17, levels[li], 128 * KiB);
}

/* Our output through gzip -t, gzip -d, pigz -d and Python's gzip. */
static void test_roundtrip_tools(void)
{
    if (!have_tools()) {
        pm_test_skip("gzip, pigz or python3 missing");
        return;
    }
    char *dir = pm_test_tmpdir();
    static const int levels[] = {1, 6, 9};
    const size_t b = 128 * KiB;
    size_t sizes[] = {0, 1, b - 1, b, b + 1, 3 * MiB + 5};
    for (size_t si = 0; si < 6; si++)
        for (int li = 0; li < 3; li++) {
            int kind = (int)(si + li) % 3;  /* random, text, repetitive */
            unsigned char *data = make_data(kind, sizes[si], si + 100 * li);
            gzbuf g = gz_compress(data, sizes[si], levels[li], b, "x", 1);
            char f[512];
            snprintf(f, sizeof f, "%s/x", dir);
            CU_ASSERT_FATAL(pm_test_write_file(f, data, sizes[si]) == 0);
            snprintf(f, sizeof f, "%s/x.gz", dir);
            CU_ASSERT_FATAL(pm_test_write_file(f, g.p, g.len) == 0);
            int st = pm_test_sh(
                "cd '%s' && gzip -t x.gz && gzip -dc x.gz | cmp -s - x && "
                "pigz -dc x.gz | cmp -s - x && python3 -c 'import gzip,sys; "
                "sys.stdout.buffer.write(gzip.decompress(open(\"x.gz\",\"rb\")"
                ".read()))' | cmp -s - x", dir);
            CU_ASSERT(st == 0);
            if (st != 0)
                fprintf(stderr, "tools failed: size %zu level %d\n",
                        sizes[si], levels[li]);
            free(g.p);
            free(data);
        }
    pm_test_rmtree(dir);
    free(dir);
}

/* Files written by gzip and pigz, and their concatenation. */
static void test_decode_tool_output(void)
{
    if (!have_tools()) {
        pm_test_skip("gzip, pigz or python3 missing");
        return;
    }
    char *dir = pm_test_tmpdir();
    size_t n = 700 * KiB + 3;
    unsigned char *data = make_data(1, n, 77);
    char f[512];
    snprintf(f, sizeof f, "%s/sample.txt", dir);
    CU_ASSERT_FATAL(pm_test_write_file(f, data, n) == 0);
    CU_ASSERT_FATAL(pm_test_sh(
        "cd '%s' && touch -d @1234567890 sample.txt && "
        "gzip -N -c sample.txt > g6.gz && gzip -1 -c < sample.txt > g1.gz && "
        "pigz -9 -p 2 -c sample.txt > p9.gz && pigz -6 -c < sample.txt > p6.gz"
        " && cat g6.gz g1.gz p9.gz p6.gz > all.gz", dir) == 0);
    static const char *files[] = {"g6.gz", "g1.gz", "p9.gz", "p6.gz"};
    for (int i = 0; i < 4; i++) {
        size_t len;
        snprintf(f, sizeof f, "%s/%s", dir, files[i]);
        gzbuf g = {0};
        g.p = pm_test_read_file(f, &len);
        CU_ASSERT_FATAL(g.p != NULL);
        g.len = len;
        expect_decodes(&g, data, n, 0, 64 * KiB, 1);
        expect_decodes(&g, data, n, 999, 333, i);
        dec r = gz_decode(g.p, g.len, 0, n, 0);
        int named = i == 0 || i == 2;
        CU_ASSERT_STRING_EQUAL(r.info.name, named ? "sample.txt" : "");
        if (named)      /* (from stdin, gzip and pigz differ on MTIME) */
            CU_ASSERT(r.info.mtime == 1234567890u);
        CU_ASSERT(r.info.members == 1 && !r.info.trailing_garbage);
        free(r.out.p);
        free(g.p);
    }
    size_t len;
    snprintf(f, sizeof f, "%s/all.gz", dir);
    gzbuf all = {pm_test_read_file(f, &len), 0, 0};
    CU_ASSERT_FATAL(all.p != NULL);
    all.len = len;
    dec r = gz_decode(all.p, all.len, 5000, 4096, 5);
    CU_ASSERT(r.rc == PM_GZ_DONE && r.info.members == 4);
    CU_ASSERT(r.out.len == 4 * n);
    for (int i = 0; i < 4 && r.out.len == 4 * n; i++)
        CU_ASSERT(memcmp(r.out.p + i * n, data, n) == 0);
    free(r.out.p);
    free(all.p);
    free(data);
    pm_test_rmtree(dir);
    free(dir);
}

/* ---- engines: libdeflate for whole single-block files, zlib for the rest ---- */

/* Raw deflate of in[0..len) as one complete stream by the default deflater,
 * by a zlib-only one and by the libdeflate engine called directly. */
typedef struct three {
    gzbuf dflt, zlib, ldf;
} three;

static gzbuf one_block(pm_gz_deflater *d, const void *in, size_t len)
{
    gzbuf g = {0};
    size_t cap = pm_gz_block_bound(len);
    ssize_t r = pm_gz_deflate_block(d, NULL, 0, in, len, 1, reserve(&g, cap),
                                    cap);
    CU_ASSERT_FATAL(r >= 0 && (size_t)r <= cap);
    g.len = (size_t)r;
    return g;
}

static three three_ways(const void *in, size_t len, int level)
{
    three t = {{0}, {0}, {0}};
    pm_gz_deflater *d, *z;
    CU_ASSERT_FATAL(pm_gz_deflater_new(level, &d) == 0);
    CU_ASSERT_FATAL(pm__gz_deflater_new_engine(&pm__deflate_zlib, level,
                                               &z) == 0);
    t.dflt = one_block(d, in, len);
    t.zlib = one_block(z, in, len);
    const pm__deflate_engine *e = &pm__deflate_libdeflate;
    void *st;
    CU_ASSERT_FATAL(e->new(level, &st) == 0);
    size_t cap = e->bound(len);
    CU_ASSERT(cap <= pm_gz_block_bound(len));
    ssize_t r = e->deflate_block(st, NULL, 0, in, len, 1,
                                 reserve(&t.ldf, cap), cap);
    CU_ASSERT_FATAL(r > 0 && (size_t)r <= cap);
    t.ldf.len = (size_t)r;
    e->free(st);
    pm_gz_deflater_free(d);
    pm_gz_deflater_free(z);
    return t;
}

static int same(const gzbuf *a, const gzbuf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void free3(three *t)
{
    free(t->dflt.p);
    free(t->zlib.p);
    free(t->ldf.p);
}

static void test_engine_table(void)
{
    const pm__deflate_engine *l = &pm__deflate_libdeflate;
    CU_ASSERT(pm__deflate_engine_find("libdeflate") == l);
    CU_ASSERT(l->flags & PM__DEFLATE_WHOLE_ONLY);
    CU_ASSERT(!(pm__deflate_zlib.flags & PM__DEFLATE_WHOLE_ONLY));
    /* The whole-stream engine refuses what is not a complete stream. */
    void *st;
    CU_ASSERT_FATAL(l->new(6, &st) == 0);
    unsigned char in[300], out[1024];
    pm_test_fill_text(in, sizeof in, 1);
    CU_ASSERT(l->deflate_block(st, in, 10, in + 10, 100, 1, out, sizeof out)
              == -EINVAL);
    CU_ASSERT(l->deflate_block(st, NULL, 0, in, 100, 0, out, sizeof out)
              == -EINVAL);
    CU_ASSERT(l->deflate_block(st, NULL, 0, in, sizeof in, 1, out, 4) ==
              -ENOSPC);
    CU_ASSERT(l->deflate_block(st, NULL, 0, in, sizeof in, 1, out,
                               sizeof out) > 0);
    l->free(st);
    l->free(NULL);
}

/* A single-block file is libdeflate's output exactly (an empty one zlib's
 * 2 bytes), and decodes through our decoder, gzip and Python. */
static void test_libdeflate_single_block(void)
{
    int tools = have_tools();
    if (!tools)
        fprintf(stderr, "  (gzip, pigz or python3 missing: own decoder only)");
    char *dir = pm_test_tmpdir();
    static const int levels[] = {1, 6, 9};
    static const size_t sizes[] = {0, 1, 1000, 5000, 64 * KiB};
    int differs = 0;
    for (size_t si = 0; si < 5; si++)
        for (int li = 0; li < 3; li++)
            for (int kind = 0; kind < 3; kind++) {
                size_t n = sizes[si];
                unsigned char *data = make_data(kind, n, si * 7 + li + kind);
                three t = three_ways(data, n, levels[li]);
                CU_ASSERT(same(&t.dflt, n ? &t.ldf : &t.zlib));
                differs += !same(&t.dflt, &t.zlib);
                free3(&t);
                /* as a file, block size 128 KiB: one block */
                gzbuf g = gz_compress(data, n, levels[li], 128 * KiB, "f", 1);
                expect_decodes(&g, data, n, 0, 1 * MiB, 1);
                expect_decodes(&g, data, n, 777, 1000, n + 9);
                char f[512];
                snprintf(f, sizeof f, "%s/f", dir);
                CU_ASSERT_FATAL(pm_test_write_file(f, data, n) == 0);
                snprintf(f, sizeof f, "%s/f.gz", dir);
                CU_ASSERT_FATAL(pm_test_write_file(f, g.p, g.len) == 0);
                if (tools && kind != 2) {
                    int st = pm_test_sh(
                        "cd '%s' && gzip -dc f.gz | cmp -s - f && "
                        "python3 -c 'import gzip,sys; sys.stdout.buffer.write("
                        "gzip.decompress(open(\"f.gz\",\"rb\").read()))' | "
                        "cmp -s - f", dir);
                    CU_ASSERT(st == 0);
                    if (st != 0)
                        fprintf(stderr, "tools failed: size %zu level %d\n",
                                n, levels[li]);
                }
                free(g.p);
                free(data);
            }
    CU_ASSERT(differs > 20);    /* libdeflate's output is not zlib's */
    pm_test_rmtree(dir);
    free(dir);
}

/* Files of more than one block are byte-identical to the zlib engine's
 * (every block has a dictionary or is not last); so is a block with a
 * dictionary even if it is the last. */
static void test_multi_block_is_zlib(void)
{
    static const int levels[] = {1, 6, 9};
    const size_t b = 32 * KiB;
    static const size_t sizes[] = {32 * KiB + 1, 100 * KiB, 1 * MiB + 7};
    for (int li = 0; li < 3; li++)
        for (size_t si = 0; si < 3; si++)
            for (int kind = 0; kind < 2; kind++) {
                size_t n = sizes[si];
                unsigned char *data = make_data(1 - kind, n, n + li);
                gzbuf a = gz_compress_on(NULL, data, n, levels[li], b, "m", 2);
                gzbuf z = gz_compress_on(&pm__deflate_zlib, data, n,
                                         levels[li], b, "m", 2);
                CU_ASSERT(same(&a, &z));
                expect_decodes(&a, data, n, 0, 1 * MiB, 3);
                free(a.p);
                free(z.p);
                free(data);
            }
    /* One last block with a dictionary: zlib. */
    unsigned char *data = make_data(1, 40 * KiB, 5);
    pm_gz_deflater *d, *z;
    CU_ASSERT_FATAL(pm_gz_deflater_new(6, &d) == 0);
    CU_ASSERT_FATAL(pm__gz_deflater_new_engine(&pm__deflate_zlib, 6, &z) == 0);
    size_t cap = pm_gz_block_bound(8 * KiB);
    unsigned char *o1 = malloc(cap), *o2 = malloc(cap);
    for (int last = 0; last < 2; last++) {
        ssize_t r1 = pm_gz_deflate_block(d, data, 32 * KiB, data + 32 * KiB,
                                         8 * KiB, last, o1, cap);
        ssize_t r2 = pm_gz_deflate_block(z, data, 32 * KiB, data + 32 * KiB,
                                         8 * KiB, last, o2, cap);
        CU_ASSERT(r1 > 0 && r1 == r2 && memcmp(o1, o2, (size_t)r1) == 0);
        /* and a first block that is not the last */
        r1 = pm_gz_deflate_block(d, NULL, 0, data, 8 * KiB, 0, o1, cap);
        r2 = pm_gz_deflate_block(z, NULL, 0, data, 8 * KiB, 0, o2, cap);
        CU_ASSERT(r1 > 0 && r1 == r2 && memcmp(o1, o2, (size_t)r1) == 0);
    }
    free(o1);
    free(o2);
    pm_gz_deflater_free(d);
    pm_gz_deflater_free(z);
    free(data);
}

/* pm_gz_block_bound() holds for the libdeflate path on incompressible data,
 * and a complete stream fits in the room the zlib engine needs for it (its
 * size + 1: zlib wants a spare byte; where libdeflate, which wants more
 * slack, gives up, zlib does the block). */
static void test_libdeflate_bound(void)
{
    static const size_t sizes[] = {1, 100, 4999, 5000, 16 * KiB, 64 * KiB,
                                   128 * KiB, 1 * MiB + 3};
    unsigned char *in = make_data(0, 1 * MiB + 3, 21);
    unsigned char *out = malloc(pm_gz_block_bound(1 * MiB + 3));
    for (int level = 1; level <= 9; level += 4) {
        pm_gz_deflater *d, *z;
        CU_ASSERT_FATAL(pm_gz_deflater_new(level, &d) == 0);
        CU_ASSERT_FATAL(pm__gz_deflater_new_engine(&pm__deflate_zlib, level,
                                                   &z) == 0);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i], b = pm_gz_block_bound(n);
            CU_ASSERT(pm__deflate_libdeflate.bound(n) <= b);
            CU_ASSERT(pm__deflate_zlib.bound(n) <= b);
            ssize_t r = pm_gz_deflate_block(d, NULL, 0, in, n, 1, out, b);
            CU_ASSERT(r >= (ssize_t)n && (size_t)r <= b);
            ssize_t m = pm_gz_deflate_block(z, NULL, 0, in, n, 1, out, b);
            CU_ASSERT_FATAL(m > 0);
            CU_ASSERT(pm_gz_deflate_block(z, NULL, 0, in, n, 1, out,
                                          (size_t)m) == -ENOSPC);
            CU_ASSERT(pm_gz_deflate_block(z, NULL, 0, in, n, 1, out,
                                          (size_t)m + 1) == m);
            r = pm_gz_deflate_block(d, NULL, 0, in, n, 1, out, (size_t)m + 1);
            CU_ASSERT(r > 0 && r <= m + 1);
        }
        pm_gz_deflater_free(d);
        pm_gz_deflater_free(z);
    }
    free(in);
    free(out);
}

/* PMAP_DEFLATE_ENGINE=zlib forces zlib for every block; other names pick
 * that engine; unknown or empty ones leave the default. */
static void test_engine_env(void)
{
    size_t n = 20 * KiB;
    unsigned char *data = make_data(1, n, 33);
    three t = three_ways(data, n, 6);
    CU_ASSERT_FATAL(!same(&t.zlib, &t.ldf));
    static const struct {
        const char *value;
        const pm__deflate_engine *want;
    } cases[] = {
        {"zlib", &pm__deflate_zlib},
        {"libdeflate", &pm__deflate_libdeflate},
        {"nope", &pm__deflate_libdeflate},
        {"", &pm__deflate_libdeflate},
        {NULL, &pm__deflate_libdeflate},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].value)
            setenv("PMAP_DEFLATE_ENGINE", cases[i].value, 1);
        else
            unsetenv("PMAP_DEFLATE_ENGINE");
        CU_ASSERT(pm__deflate_engine_find(NULL) == cases[i].want);
        pm_gz_deflater *d;
        CU_ASSERT_FATAL(pm_gz_deflater_new(6, &d) == 0);
        gzbuf g = one_block(d, data, n);
        int zlib = cases[i].want == &pm__deflate_zlib;
        CU_ASSERT(same(&g, zlib ? &t.zlib : &t.ldf));
        free(g.p);
        pm_gz_deflater_free(d);
    }
    unsetenv("PMAP_DEFLATE_ENGINE");
    free3(&t);
    free(data);
}

/* ---- crafted headers ---- */

/* A member with any flags and fields around raw deflate of `text`. */
static gzbuf craft(unsigned flags, unsigned method, const char *extra,
                   size_t xlen, const char *name, const char *comment,
                   int hcrc_delta, const char *text)
{
    gzbuf g = {0};
    unsigned char fixed[10] = {0x1f, 0x8b, (unsigned char)method,
                               (unsigned char)flags, 0x78, 0x56, 0x34, 0x12,
                               0, 3};
    put(&g, fixed, 10);
    if (flags & 0x04) {
        unsigned char xl[2] = {(unsigned char)xlen, (unsigned char)(xlen >> 8)};
        put(&g, xl, 2);
        put(&g, extra, xlen);
    }
    if (flags & 0x08)
        put(&g, name, strlen(name) + 1);
    if (flags & 0x10)
        put(&g, comment, strlen(comment) + 1);
    if (flags & 0x02) {
        unsigned h = (pm_crc32(0, g.p, g.len) + (unsigned)hcrc_delta) & 0xffff;
        unsigned char hb[2] = {(unsigned char)h, (unsigned char)(h >> 8)};
        put(&g, hb, 2);
    }
    pm_gz_deflater *d;
    CU_ASSERT_FATAL(pm_gz_deflater_new(6, &d) == 0);
    size_t n = strlen(text), cap = pm_gz_block_bound(n);
    ssize_t r = pm_gz_deflate_block(d, NULL, 0, text, n, 1,
                                    reserve(&g, cap), cap);
    CU_ASSERT_FATAL(r > 0);
    g.len += (size_t)r;
    pm_gz_write_trailer(pm_crc32(0, text, n), n, reserve(&g, 8));
    g.len += 8;
    pm_gz_deflater_free(d);
    return g;
}

static const char TEXT[] = "It was the best of times, it was the worst of "
                           "times, it was the best of times.\n";

static void test_header_flags(void)
{
    static const char xf[] = "AP\x04\0abcdZZ\0\0";
    struct { unsigned flags; size_t xlen; } ok[] = {
        {0x00, 0}, {0x01, 0}, {0x02, 0}, {0x04, 12}, {0x04, 0}, {0x08, 0},
        {0x10, 0}, {0x1f, 12}, {0x1e, 8},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        gzbuf g = craft(ok[i].flags, 8, xf, ok[i].xlen, "name.txt",
                        "a comment", 0, TEXT);
        for (size_t feed = 0; feed < 4; feed++) {
            dec r = gz_decode(g.p, g.len, feed, 5, feed);
            CU_ASSERT(r.rc == PM_GZ_DONE);
            CU_ASSERT(r.out.len == strlen(TEXT) &&
                      memcmp(r.out.p, TEXT, r.out.len) == 0);
            CU_ASSERT(r.info.mtime == 0x12345678);
            CU_ASSERT_STRING_EQUAL(r.info.name, ok[i].flags & 0x08 ?
                                   "name.txt" : "");
            CU_ASSERT(r.msg[0] == '\0');
            free(r.out.p);
        }
        if (have_tools()) {     /* the crafting itself is right */
            char *dir = pm_test_tmpdir(), f[512];
            snprintf(f, sizeof f, "%s/c.gz", dir);
            CU_ASSERT(pm_test_write_file(f, g.p, g.len) == 0);
            CU_ASSERT(pm_test_sh("gzip -t '%s'", f) == 0);
            pm_test_rmtree(dir);
            free(dir);
        }
        free(g.p);
    }
}

static void expect_error(const gzbuf *g, int err, const char *text)
{
    for (size_t feed = 0; feed < 3; feed++) {
        dec r = gz_decode(g->p, g->len, feed * 2, 3, feed);
        CU_ASSERT(r.rc == err);
        CU_ASSERT(strstr(r.msg, text) != NULL);
        if (r.rc != err || !strstr(r.msg, text))
            fprintf(stderr, "want %d '%s', got %d '%s'\n", err, text, r.rc,
                    r.msg);
        free(r.out.p);
    }
}

static void test_header_errors(void)
{
    gzbuf g = craft(0x02, 8, "", 0, "", "", 1, TEXT);
    expect_error(&g, -EBADMSG, "header crc16 error");
    free(g.p);
    g = craft(0x1e, 8, "AP\0\0", 4, "n", "c", 0x100, TEXT);
    expect_error(&g, -EBADMSG, "header crc16 error");
    free(g.p);
    for (unsigned bit = 0x20; bit <= 0x80; bit <<= 1) {
        g = craft(bit | 0x08, 8, "", 0, "n", "", 0, TEXT);
        expect_error(&g, -EBADMSG, "not supported");
        free(g.p);
    }
    g = craft(0, 7, "", 0, "", "", 0, TEXT);
    expect_error(&g, -EBADMSG, "unknown method 7");
    free(g.p);
    /* FEXTRA longer than the file: truncation. */
    g = craft(0x04, 8, "AP\0\0", 4, "", "", 0, TEXT);
    g.p[10] = 0xff;
    g.p[11] = 0xff;
    expect_error(&g, -ENODATA, "unexpected end of file");
    free(g.p);
}

static void test_long_name(void)
{
    char name[400];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    gzbuf g = craft(0x08, 8, "", 0, name, "", 0, TEXT);
    dec r = gz_decode(g.p, g.len, 7, 64, 1);
    CU_ASSERT(r.rc == PM_GZ_DONE);
    CU_ASSERT(strlen(r.info.name) == sizeof r.info.name - 1);
    CU_ASSERT(strspn(r.info.name, "n") == sizeof r.info.name - 1);
    free(r.out.p);
    free(g.p);
}

/* ---- members, truncation, corruption, trailing data ---- */

static void test_multi_member(void)
{
    size_t na = 50 * KiB, nb = 200 * KiB;
    unsigned char *a = make_data(1, na, 1), *b = make_data(0, nb, 2);
    gzbuf ga = gz_compress(a, na, 6, 32 * KiB, "a", 1);
    gzbuf ge = gz_compress(a, 0, 6, 32 * KiB, NULL, 0);
    gzbuf gb = gz_compress(b, nb, 1, 64 * KiB, "b", 2);
    gzbuf all = {0}, want = {0};
    put(&all, ga.p, ga.len);
    put(&all, ge.p, ge.len);
    put(&all, gb.p, gb.len);
    put(&all, ga.p, ga.len);
    put(&want, a, na);
    put(&want, b, nb);
    put(&want, a, na);
    expect_decodes(&all, want.p, want.len, 0, 1 * MiB, 1);
    expect_decodes(&all, want.p, want.len, 1000, 100, 2);
    dec r = gz_decode(all.p, all.len, 0, 1 * MiB, 0);
    CU_ASSERT(r.info.members == 4);
    CU_ASSERT_STRING_EQUAL(r.info.name, "a");
    CU_ASSERT(r.info.mtime == 1);
    free(r.out.p);
    free(a), free(b), free(ga.p), free(ge.p), free(gb.p), free(all.p);
    free(want.p);
}

/* Every prefix of a two-member file is truncated, except the one that ends
 * exactly after the first member. */
static void test_truncation(void)
{
    size_t n = 3000;
    unsigned char *data = make_data(1, n, 4);
    gzbuf m1 = craft(0x1e, 8, "AP\x02\0xy", 6, "file", "comment", 0, TEXT);
    gzbuf m2 = gz_compress(data, n, 6, 1000, "second", 5);
    gzbuf all = {0};
    put(&all, m1.p, m1.len);
    put(&all, m2.p, m2.len);
    for (size_t cut = 0; cut < all.len; cut++) {
        dec r = gz_decode(all.p, cut, cut % 5, 1 + cut % 9, cut);
        if (cut == m1.len) {
            CU_ASSERT(r.rc == PM_GZ_DONE && r.info.members == 1);
        } else {
            CU_ASSERT(r.rc == -ENODATA);
            CU_ASSERT(strstr(r.msg, "unexpected end of file") != NULL);
        }
        free(r.out.p);
    }
    if (have_tools()) {         /* gzip agrees on a few of them */
        char *dir = pm_test_tmpdir(), f[512];
        size_t cuts[] = {0, 1, 5, 12, m1.len - 3, m1.len + 1, all.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            snprintf(f, sizeof f, "%s/t%zu.gz", dir, i);
            CU_ASSERT(pm_test_write_file(f, all.p, cuts[i]) == 0);
            CU_ASSERT(pm_test_sh("gzip -t '%s' 2>/dev/null", f) == 1);
        }
        pm_test_rmtree(dir);
        free(dir);
    }
    free(data), free(m1.p), free(m2.p), free(all.p);
}

static void test_corruption(void)
{
    size_t n = 5000;
    unsigned char *data = make_data(1, n, 8);
    gzbuf g = gz_compress(data, n, 6, 2048, NULL, 0);
    /* Trailer: CRC and length. */
    g.p[g.len - 8] ^= 0x01;
    expect_error(&g, -EBADMSG, "crc error (stored");
    g.p[g.len - 8] ^= 0x01;
    g.p[g.len - 3] ^= 0x40;
    expect_error(&g, -EBADMSG, "length error (stored");
    g.p[g.len - 3] ^= 0x40;
    expect_decodes(&g, data, n, 0, 4096, 0);
    /* A flipped bit in deflate data or trailer is caught, unless it lies
     * in padding that inflate skips (stored-block alignment, the bits after
     * the final block): then the output must still be exact. */
    int skipped = 0;
    for (size_t i = 10; i < g.len; i++) {
        unsigned char bit = (unsigned char)(1u << (i % 8));
        g.p[i] ^= bit;
        dec r = gz_decode(g.p, g.len, i % 3 ? 0 : 100, 4096, i);
        CU_ASSERT(r.rc == -EBADMSG || r.rc == -ENODATA ||
                  (r.rc == PM_GZ_DONE && r.out.len == n &&
                   memcmp(r.out.p, data, n) == 0));
        skipped += r.rc == PM_GZ_DONE;
        g.p[i] ^= bit;
        free(r.out.p);
    }
    CU_ASSERT(skipped <= 4);
    /* Data that inflate rejects outright. */
    g.p[10] = 0xff;                     /* BTYPE 11: reserved */
    expect_error(&g, -EBADMSG, "invalid compressed data");
    free(g.p);
    free(data);
}

static void test_not_gzip(void)
{
    struct { const char *data; size_t len; int err; const char *msg; } c[] = {
        {"", 0, -ENODATA, "unexpected end of file"},
        {"\x1f", 1, -ENODATA, "unexpected end of file"},
        {"\x1f\x8b", 2, -ENODATA, "unexpected end of file"},
        {"\x1f\x8b\x08\x00\x00", 5, -ENODATA, "unexpected end of file"},
        {"x", 1, -EBADMSG, "not in gzip format"},
        {"hello world\n", 12, -EBADMSG, "not in gzip format"},
        {"\x1f\x00", 2, -EBADMSG, "not in gzip format"},
        {"\0\0\0\0", 4, -EBADMSG, "not in gzip format"},
        {"\x78\x9c\x03\x00", 4, -EBADMSG, "not in gzip format"},   /* zlib */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        gzbuf g = {(unsigned char *)c[i].data, c[i].len, 0};
        expect_error(&g, c[i].err, c[i].msg);
    }
    unsigned char junk[1000];
    pm_test_fill_random(junk, sizeof junk, 5);
    junk[0] = 'J';
    gzbuf g = {junk, sizeof junk, 0};
    expect_error(&g, -EBADMSG, "not in gzip format");
}

/* What follows the last member, with gzip -t's verdict for each. */
static void test_trailing(void)
{
    struct {
        const char *tail; size_t len; int rc; int zeros, garbage, gzip_st;
    } c[] = {
        {"", 0, PM_GZ_DONE, 0, 0, 0},
        {"\0", 1, PM_GZ_DONE, 1, 0, 0},
        {"\0\0\0\0\0\0\0", 7, PM_GZ_DONE, 1, 0, 0},
        {"\0x", 2, PM_GZ_DONE, 0, 1, 2},
        {"\0\0\0\0\0\0\x01", 7, PM_GZ_DONE, 0, 1, 2},
        {"garbage", 7, PM_GZ_DONE, 0, 1, 2},
        {"\x1f\x00", 2, PM_GZ_DONE, 0, 1, 2},
        {"PK\x03\x04", 4, PM_GZ_DONE, 0, 1, 2},
        {"x", 1, -ENODATA, 0, 0, 1},
        {"\x1f", 1, -ENODATA, 0, 0, 1},
        {"\x1f\x8b", 2, -ENODATA, 0, 0, 1},
        {"\x1f\x8b\x09\x00", 4, -EBADMSG, 0, 0, 1},
        {"\x1f\x8b\x08\x00\0\0\0\0\0\x03\xff", 11, -EBADMSG, 0, 0, 1},
    };
    gzbuf base = gz_compress(TEXT, strlen(TEXT), 6, 1024, "t", 9);
    int tools = have_tools();
    char *dir = pm_test_tmpdir(), f[512];
    snprintf(f, sizeof f, "%s/t.gz", dir);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        gzbuf g = {0};
        put(&g, base.p, base.len);
        put(&g, c[i].tail, c[i].len);
        for (size_t feed = 0; feed < 3; feed++) {
            dec r = gz_decode(g.p, g.len, feed, 16, feed);
            CU_ASSERT(r.rc == c[i].rc);
            if (r.rc != c[i].rc)
                fprintf(stderr, "tail %zu feed %zu: %d %s\n", i, feed, r.rc,
                        r.msg);
            CU_ASSERT(r.info.trailing_zeros == c[i].zeros);
            CU_ASSERT(r.info.trailing_garbage == c[i].garbage);
            if (r.rc == PM_GZ_DONE) {
                CU_ASSERT(r.info.members == 1 && r.info.in_bytes == g.len);
                CU_ASSERT(r.out.len == strlen(TEXT));
                CU_ASSERT_STRING_EQUAL(r.msg, c[i].zeros ?
                    "decompression OK, trailing zero bytes ignored" :
                    c[i].garbage ?
                    "decompression OK, trailing garbage ignored" : "");
            }
            free(r.out.p);
        }
        if (tools) {
            CU_ASSERT(pm_test_write_file(f, g.p, g.len) == 0);
            CU_ASSERT(pm_test_sh("gzip -t '%s' 2>/dev/null", f) ==
                      c[i].gzip_st);
        }
        free(g.p);
    }
    pm_test_rmtree(dir);
    free(dir);
    free(base.p);
}

/* ---- the call contract ---- */

static void test_contract(void)
{
    gzbuf g = gz_compress(TEXT, strlen(TEXT), 6, 1024, NULL, 0);
    pm_gz_inflater *z;
    CU_ASSERT_FATAL(pm_gz_inflater_new(&z) == 0);
    size_t used, made;
    unsigned char out[256];
    CU_ASSERT(pm_gz_inflate(NULL, g.p, g.len, &used, out, 1, &made, 1) ==
              -EINVAL);
    CU_ASSERT(pm_gz_inflate(z, NULL, 5, &used, out, 1, &made, 1) == -EINVAL);
    /* No output room: the header is parsed, then OUTPUT_FULL. */
    CU_ASSERT(pm_gz_inflate(z, g.p, g.len, &used, out, 0, &made, 1) ==
              PM_GZ_OUTPUT_FULL);
    CU_ASSERT(used == 10 && made == 0);
    size_t pos = used;
    CU_ASSERT(pm_gz_inflate(z, g.p + pos, g.len - pos, &used, out, sizeof out,
                            &made, 1) == PM_GZ_DONE);
    CU_ASSERT(pos + used == g.len && made == strlen(TEXT));
    CU_ASSERT(pm_gz_inflate(z, NULL, 0, &used, out, 1, &made, 1) ==
              PM_GZ_DONE);
    CU_ASSERT(pm_gz_inflate(z, g.p, 1, &used, out, 1, &made, 1) == -EINVAL);
    CU_ASSERT_STRING_EQUAL(pm_gz_inflater_message(z), "");
    /* Errors stick until reset; reset starts a new file. */
    pm_gz_inflater_reset(z);
    CU_ASSERT(pm_gz_inflate(z, "nope", 4, &used, out, 1, &made, 0) ==
              -EBADMSG);
    CU_ASSERT(pm_gz_inflate(z, g.p, g.len, &used, out, sizeof out, &made, 1)
              == -EBADMSG && used == 0);
    pm_gz_inflater_reset(z);
    CU_ASSERT_STRING_EQUAL(pm_gz_inflater_message(z), "");
    CU_ASSERT(pm_gz_inflate(z, g.p, g.len, &used, out, sizeof out, &made, 0)
              == PM_GZ_NEED_INPUT);
    CU_ASSERT(used == g.len && made == strlen(TEXT));
    CU_ASSERT(pm_gz_inflate(z, NULL, 0, &used, out, sizeof out, &made, 1)
              == PM_GZ_DONE);
    pm_gz_info info;
    pm_gz_inflater_info(z, &info);
    CU_ASSERT(info.members == 1 && info.in_bytes == g.len);
    CU_ASSERT(info.out_bytes == strlen(TEXT));
    pm_gz_inflater_free(z);
    pm_gz_inflater_free(NULL);
    free(g.p);
}

/* ---- ratio and speed against pigz and gzip ---- */

/* A few MiB of real text (man pages), or NULL. */
static void *load_text(const char *dir, size_t want, size_t *len)
{
    char f[512];
    snprintf(f, sizeof f, "%s/text", dir);
    pm_test_sh("{ cat /usr/share/common-licenses/* ; "
               "find /usr/share/man/man1 -name '*.gz' | sort | head -3000 | "
               "xargs zcat; } 2>/dev/null | head -c %zu > '%s'", want, f);
    void *p = pm_test_read_file(f, len);
    if (p && *len < want) {
        free(p);
        return NULL;
    }
    return p;
}

static void test_ratio_vs_pigz(void)
{
    if (!have_tools()) {
        pm_test_skip("gzip, pigz or python3 missing");
        return;
    }
    char *dir = pm_test_tmpdir();
    size_t n;
    void *text = load_text(dir, 6 * MiB, &n);
    if (!text) {
        pm_test_skip("not enough text in /usr/share/man");
        pm_test_rmtree(dir);
        free(dir);
        return;
    }
    double t0 = pm_test_now();
    gzbuf g = gz_compress(text, n, 6, 128 * KiB, NULL, 0);  /* as pigz -n */
    double t_ours = pm_test_now() - t0;
    expect_decodes(&g, text, n, 0, 1 * MiB, 0);
    char f[512];
    snprintf(f, sizeof f, "%s/text.pigz", dir);
    CU_ASSERT_FATAL(pm_test_sh("cd '%s' && pigz -p 2 -6 -n -c text > "
                               "text.pigz", dir) == 0);
    size_t pigz_len;
    void *pigz = pm_test_read_file(f, &pigz_len);
    CU_ASSERT_FATAL(pigz != NULL);
    int same = pigz_len == g.len && memcmp(pigz, g.p, g.len) == 0;
    free(pigz);
    t0 = pm_test_now();
    CU_ASSERT(pm_test_sh("gzip -6 -c '%s/text' > /dev/null", dir) == 0);
    double t_gzip = pm_test_now() - t0;
    dec r = {0};
    t0 = pm_test_now();
    for (int i = 0; i < 3; i++) {
        free(r.out.p);
        r = gz_decode(g.p, g.len, 0, 256 * KiB, 0);
    }
    double t_inflate = (pm_test_now() - t0) / 3;
    CU_ASSERT(r.rc == PM_GZ_DONE && r.out.len == n);
    free(r.out.p);
    t0 = pm_test_now();
    CU_ASSERT(pm_test_sh("gzip -dc '%s' > /dev/null", f) == 0);
    double t_gunzip = pm_test_now() - t0;
    double ratio = (double)g.len / (double)pigz_len;
    fprintf(stderr, "\n  text %zu bytes: ours %zu, pigz -p 2 -6 %zu "
            "(%+.4f%%%s); level 6 one thread: ours %.1f MB/s, gzip -6 %.1f "
            "MB/s\n", n, g.len, pigz_len, (ratio - 1) * 100,
            same ? ", byte-identical" : "",
            n / t_ours / 1e6, n / t_gzip / 1e6);
    fprintf(stderr, "  decode: ours %.1f MB/s, gzip -d %.1f MB/s (output)\n",
            n / t_inflate / 1e6, n / t_gunzip / 1e6);
    CU_ASSERT(ratio <= 1.001 && ratio >= 0.999);
    free(g.p);
    free(text);
    pm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"crc32 and combine", test_crc32},
        {"header and trailer", test_header},
        {"deflater arguments", test_deflater_args},
        {"block bound", test_block_bound},
        {"round trips through our decoder", test_roundtrip_self},
        {"round trips through gzip, pigz, python", test_roundtrip_tools},
        {"decode gzip and pigz output", test_decode_tool_output},
        {"engine table", test_engine_table},
        {"libdeflate single-block files", test_libdeflate_single_block},
        {"multi-block output is zlib's", test_multi_block_is_zlib},
        {"libdeflate bound and exact room", test_libdeflate_bound},
        {"PMAP_DEFLATE_ENGINE", test_engine_env},
        {"header flags", test_header_flags},
        {"header errors", test_header_errors},
        {"long name", test_long_name},
        {"multi-member", test_multi_member},
        {"truncation", test_truncation},
        {"corruption", test_corruption},
        {"not gzip", test_not_gzip},
        {"trailing data", test_trailing},
        {"call contract", test_contract},
        {"ratio vs pigz", test_ratio_vs_pigz},
        {NULL, NULL},
    };
    return pm_test_run("gz", cases);
}
