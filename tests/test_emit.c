/* test_emit.c - pm_chunk_emit from any stage: a parallel stage that
 * expands its chunk into far more output than the emit pool holds, chunks
 * finishing out of order, a serial stage adding to it, and `out` after:
 * the output is each chunk's emitted bytes in emission order, then its
 * `out`, in chunk order, with memory bounded by the pool. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/pipeline.h>
#include "testutil.h"

#define CHUNK 4096
#define COPIES 9                 /* emitted bytes per input byte */

static unsigned delay_of(uint64_t seq)
{
    return (unsigned)((seq * 2654435761u) % 3000);
}

/* Parallel: emits every input byte COPIES times, in pieces of odd sizes,
 * after a delay that makes later chunks finish first. */
static int expand(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    usleep(delay_of(c->seq));
    unsigned char buf[1000];
    size_t fill = 0;
    for (size_t i = 0; i < c->len; i++) {
        for (int k = 0; k < COPIES; k++) {
            buf[fill++] = c->data[i];
            if (fill == sizeof buf) {
                if (pm_chunk_emit(c, buf, fill))
                    return -ECANCELED;
                fill = 0;
            }
        }
    }
    return fill ? pm_chunk_emit(c, buf, fill) : 0;
}

/* Serial: a marker per chunk, then one byte in out. */
static int mark(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    char m[32];
    int n = snprintf(m, sizeof m, "<%llu>", (unsigned long long)c->seq);
    int rc = pm_chunk_emit(c, m, (size_t)n);
    c->out[0] = '|';
    c->out_len = 1;
    return rc;
}

static void test_emit_any_stage(void)
{
    char *dir = pm_test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    size_t len = 40 * CHUNK + 123;
    unsigned char *d = malloc(len);
    pm_test_fill_random(d, len, 4);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, d, len), 0);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pm_pipeline_opts o = {.jobs = 3, .chunk_size = CHUNK, .out_size = 16,
                          .sink = PM_SINK_FD, .out_fd = fd};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "expand", PM_STAGE_PARALLEL, expand, NULL), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "mark", PM_STAGE_SERIAL_IN_ORDER, mark, NULL), 0);
    const char *paths[] = {in};
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, &st), 0);
    close(fd);
    /* The expected bytes. */
    size_t cap = len * COPIES + 41 * 16, n = 0;
    unsigned char *want = malloc(cap);
    for (uint64_t seq = 0; seq * CHUNK < len; seq++) {
        size_t lo = seq * CHUNK, hi = lo + CHUNK < len ? lo + CHUNK : len;
        for (size_t i = lo; i < hi; i++)
            for (int k = 0; k < COPIES; k++)
                want[n++] = d[i];
        n += (size_t)sprintf((char *)want + n, "<%llu>|", (unsigned long long)seq);
    }
    size_t got_len;
    unsigned char *got = pm_test_read_file(out, &got_len);
    CU_ASSERT_EQUAL(got_len, n);
    CU_ASSERT(got && got_len == n && memcmp(got, want, n) == 0);
    CU_ASSERT_EQUAL(st.bytes_out, n);
    pm_pipeline_free(pl);
    free(got);
    free(want);
    free(d);
    pm_test_rmtree(dir);
    free(dir);
}

/* Cancelling while parallel stages wait for emit buffers returns. */
static int emit_forever(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    pm_pipeline **pl = arg;
    static unsigned char big[65536];
    for (int i = 0;; i++) {
        if (pm_chunk_emit(c, big, sizeof big) == -ECANCELED)
            return -ECANCELED;
        if (i == 200 && c->seq == 0)   /* the head; chunk 1 waits for buffers */
            pm_pipeline_cancel(*pl);
    }
}

static void test_emit_cancel(void)
{
    char *dir = pm_test_tmpdir();
    char in[512];
    snprintf(in, sizeof in, "%s/in", dir);
    unsigned char *d = calloc(1, 20 * CHUNK);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, d, 20 * CHUNK), 0);
    int fd = open("/dev/null", O_WRONLY);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = CHUNK, .sink = PM_SINK_FD, .out_fd = fd};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "x", PM_STAGE_PARALLEL, emit_forever, &pl), 0);
    const char *paths[] = {in};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), -ECANCELED);
    pm_pipeline_free(pl);
    close(fd);
    free(d);
    pm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"emit from a parallel and a serial stage, in order", test_emit_any_stage},
        {"cancel while stages wait for emit buffers", test_emit_cancel},
        {NULL, NULL},
    };
    return pm_test_run("emit", cases);
}
