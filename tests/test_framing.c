/* test_framing.c - chunk boundaries that follow the content: with
 * pm_frame_records every chunk but a file's last ends with the record byte,
 * the chunks still add up to the file in order, records longer than a
 * chunk pass whole (split), for regular files and streams; a framer that
 * defers (PM_FRAME_DEFER) gets records longer than a read whole, up to the
 * carry room (carry_size). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pmap/pipeline.h>
#include "testutil.h"

static const unsigned char NL = '\n';

typedef struct check {
    int bad_end;                 /* a chunk cut inside a record */
    uint64_t lines;              /* NL bytes seen */
    uint64_t max_len;
} check;

/* Serial stage: copies the chunk to the output (FD sink) and checks it. */
static int frame_stage(pm_chunk *c, void *arg, unsigned worker)
{
    check *k = arg;
    (void)worker;
    /* A chunk ends at a record end, unless it is the file's last or no
     * record ends in it at all (a record longer than a chunk). */
    if (!c->last && c->len && c->data[c->len - 1] != '\n' && memchr(c->data, '\n', c->len))
        k->bad_end++;
    for (size_t i = 0; i < c->len; i++)
        k->lines += c->data[i] == '\n';
    if (c->len > k->max_len)
        k->max_len = c->len;
    return pm_chunk_emit(c, c->data, c->len);
}

/* Lines of varied length, one of them much longer than a chunk. */
static unsigned char *make_text(size_t len, uint64_t *lines)
{
    unsigned char *d = malloc(len);
    pm_test_fill_text(d, len, 9);
    *lines = 0;
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '\n')
            d[i] = ' ';
        if (i % 97 == 0 && i > 0 && (i < 200000 || i > 260000))   /* a 60 KB record */
            d[i] = '\n';
        *lines += d[i] == '\n';
    }
    return d;
}

static void run_one(const char *path, const char *out, const unsigned char *data, size_t len,
                    uint64_t lines, int stream)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    check k = {0};
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .max_chunks = 5,
                          .sink = PM_SINK_FD, .out_fd = fd,
                          .frame = pm_frame_records, .frame_arg = (void *)&NL,
                          .flags = stream ? PM_PL_SKIP_SPECIAL_OK : 0};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "check", PM_STAGE_SERIAL_IN_ORDER, frame_stage, &k), 0);
    const char *paths[] = {path};
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, &st), 0);
    close(fd);
    pm_pipeline_free(pl);
    CU_ASSERT_EQUAL(k.bad_end, 0);
    CU_ASSERT_EQUAL(k.lines, lines);
    CU_ASSERT(k.max_len <= 2 * 4096);
    CU_ASSERT(st.chunks >= len / 4096);
    size_t n;
    unsigned char *got = pm_test_read_file(out, &n);
    CU_ASSERT(got && n == len && memcmp(got, data, len) == 0);
    free(got);
}

static void test_regular_file(void)
{
    char *dir = pm_test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    uint64_t lines;
    size_t len = 700001;
    unsigned char *d = make_text(len, &lines);
    CU_ASSERT_EQUAL(pm_test_write_file(in, d, len), 0);
    run_one(in, out, d, len, lines, 0);
    /* A file ending in the record byte, and one with no record byte. */
    d[len - 1] = '\n';
    CU_ASSERT_EQUAL(pm_test_write_file(in, d, len), 0);
    run_one(in, out, d, len, lines + 1, 0);
    memset(d, 'x', len);
    CU_ASSERT_EQUAL(pm_test_write_file(in, d, len), 0);
    run_one(in, out, d, len, 0, 0);
    free(d);
    pm_test_rmtree(dir);
    free(dir);
}

typedef struct feeder {
    const char *fifo;
    const unsigned char *data;
    size_t len;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    int fd = open(f->fifo, O_WRONLY);
    for (size_t off = 0; fd >= 0 && off < f->len;) {
        size_t n = f->len - off < 3000 ? f->len - off : 3000;   /* odd-sized writes */
        ssize_t w = write(fd, f->data + off, n);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_stream(void)
{
    char *dir = pm_test_tmpdir();
    char fifo[512], out[512];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    uint64_t lines;
    size_t len = 300007;
    unsigned char *d = make_text(len, &lines);
    feeder fe = {fifo, d, len};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, feed, &fe), 0);
    run_one(fifo, out, d, len, lines, 1);
    pthread_join(t, NULL);
    free(d);
    pm_test_rmtree(dir);
    free(dir);
}

/* Length-prefixed records (4-byte little-endian length, then the bytes),
 * up to 20,000 bytes: longer than a 4 KiB read. */
static size_t rec_len(const unsigned char *p)
{
    return 4 + ((size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24);
}

/* The framer: ends after the last whole record; defers when not even the
 * first one is complete. */
static size_t frame_recs(const unsigned char *data, size_t len, void *arg)
{
    (void)arg;
    size_t pos = 0;
    while (len - pos >= 4 && rec_len(data + pos) <= len - pos)
        pos += rec_len(data + pos);
    return pos ? pos : PM_FRAME_DEFER;
}

typedef struct rec_check {
    int misaligned;              /* non-last chunks that are not whole records */
    int empty;                   /* deferred chunks */
    uint64_t records;
} rec_check;

static int rec_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    rec_check *k = arg;
    size_t pos = 0;
    while (c->len - pos >= 4 && rec_len(c->data + pos) <= c->len - pos) {
        pos += rec_len(c->data + pos);
        k->records++;
    }
    if (!c->last && pos != c->len)
        k->misaligned++;
    if (c->len == 0 && !c->last)
        k->empty++;
    return pm_chunk_emit(c, c->data, c->len);
}

static void run_recs(const char *path, const char *out, const unsigned char *data, size_t len,
                     size_t carry, rec_check *k)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    memset(k, 0, sizeof *k);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .carry_size = carry, .max_chunks = 5,
                          .sink = PM_SINK_FD, .out_fd = fd, .frame = frame_recs};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "recs", PM_STAGE_SERIAL_IN_ORDER, rec_stage, k), 0);
    const char *paths[] = {path};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
    close(fd);
    pm_pipeline_free(pl);
    size_t n;
    unsigned char *got = pm_test_read_file(out, &n);
    CU_ASSERT(got && n == len && memcmp(got, data, len) == 0);
    free(got);
}

static void test_deferred_records(void)
{
    char *dir = pm_test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    size_t cap = 600000, len = 0;
    uint64_t records = 0;
    unsigned char *d = malloc(cap);
    unsigned x = 12345;
    while (1) {
        x = x * 1103515245u + 12345u;
        size_t r = 1 + (x >> 8) % 20000;
        if (len + 4 + r > cap)
            break;
        d[len] = (unsigned char)r;
        d[len + 1] = (unsigned char)(r >> 8);
        d[len + 2] = (unsigned char)(r >> 16);
        d[len + 3] = 0;
        memset(d + len + 4, (int)(records & 0xff), r);
        len += 4 + r;
        records++;
    }
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, d, len), 0);
    rec_check k;
    /* Carry room for the longest record: every chunk whole records. */
    run_recs(in, out, d, len, 24 * 1024, &k);
    CU_ASSERT_EQUAL(k.misaligned, 0);
    CU_ASSERT(k.empty > 0);
    CU_ASSERT_EQUAL(k.records, records);
    /* Too little room: records that do not fit pass split, nothing lost. */
    run_recs(in, out, d, len, 8 * 1024, &k);
    CU_ASSERT(k.misaligned > 0);
    CU_ASSERT(k.records < records);
    free(d);
    pm_test_rmtree(dir);
    free(dir);
}

static void test_records_framer(void)
{
    const unsigned char s[] = "ab\ncd\nef";
    CU_ASSERT_EQUAL(pm_frame_records(s, 8, (void *)&NL), 6);
    CU_ASSERT_EQUAL(pm_frame_records(s, 3, (void *)&NL), 3);
    CU_ASSERT_EQUAL(pm_frame_records(s, 2, (void *)&NL), 0);
    pm_pipeline *pl;
    pm_pipeline_opts o = {.frame = pm_frame_records, .frame_arg = (void *)&NL, .overlap = 16};
    CU_ASSERT_EQUAL(pm_pipeline_new(&o, &pl), -EINVAL);    /* not with an overlap */
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"pm_frame_records", test_records_framer},
        {"records longer than a read: deferred, whole up to carry_size", test_deferred_records},
        {"regular file: whole lines per chunk, all bytes in order", test_regular_file},
        {"stream: whole lines per chunk, all bytes in order", test_stream},
        {NULL, NULL},
    };
    return pm_test_run("framing", cases);
}
