/* test_framing.c - chunk boundaries that follow the content: with
 * pm_frame_records every chunk but a file's last ends with the record byte,
 * the chunks still add up to the file in order, records longer than a
 * chunk pass whole (split), for regular files and streams. */
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
        {"regular file: whole lines per chunk, all bytes in order", test_regular_file},
        {"stream: whole lines per chunk, all bytes in order", test_stream},
        {NULL, NULL},
    };
    return pm_test_run("framing", cases);
}
