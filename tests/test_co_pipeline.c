/* test_co_pipeline.c - pipeline stage kinds: CPU, BLOCKING, ASYNC mixed
 * keep order and the live-chunk bound; BLOCKING is bounded by its threads,
 * ASYNC has many chunks waiting at once; failures and cancel. ASYNC loops
 * on both engines ("[uring]" skipped where io_uring is unavailable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/co.h>
#include <pmap/loop.h>
#include <pmap/pipeline.h>
#include "testutil.h"

static pm_loop_engine engine;
static char *tmp;


typedef struct probe {
    atomic_int in_blocking, peak_blocking;
    atomic_int in_async, peak_async;
    atomic_int bad;              /* a stage found something wrong */
    unsigned blocking_threads;
    unsigned sleep_us;           /* BLOCKING: usleep; ASYNC: pm_co_sleep */
    int fail_index;              /* file index whose ASYNC stage fails, or -1 */
    int fail_blocking_index;
    pthread_mutex_t mu;
    int done, failed;
    int err[8];                  /* each file's event error, by index */
} probe;

static void enter(atomic_int *in, atomic_int *peak)
{
    int n = atomic_fetch_add(in, 1) + 1;
    int p = atomic_load(peak);
    while (n > p && !atomic_compare_exchange_weak(peak, &p, n)) {
    }
}

/* CPU, parallel: out = data with every byte + 1. */
static int cpu_plus1(pm_chunk *c, void *arg, unsigned w)
{
    (void)arg;
    (void)w;
    for (size_t i = 0; i < c->len; i++)
        c->out[i] = (unsigned char)(c->data[i] + 1);
    c->out_len = c->len;
    return 0;
}

/* BLOCKING: sleeps in a blocking call; counts how many run at once. */
static int blocking_wait(pm_chunk *c, void *arg, unsigned w)
{
    probe *p = arg;
    if (w >= p->blocking_threads || pm_co_current() || c->worker_state)
        atomic_store(&p->bad, 1);
    enter(&p->in_blocking, &p->peak_blocking);
    usleep(p->sleep_us);
    atomic_fetch_sub(&p->in_blocking, 1);
    if ((int)c->file->index == p->fail_blocking_index)
        return -ENOLINK;
    return 0;
}

/* ASYNC: awaits a timer inside its task; out[i] += 1 again. */
static int async_wait(pm_chunk *c, void *arg, unsigned w)
{
    probe *p = arg;
    if (w != 0 || !pm_co_current())
        atomic_store(&p->bad, 1);
    enter(&p->in_async, &p->peak_async);
    int rc = pm_co_sleep((uint64_t)p->sleep_us * 1000u);
    atomic_fetch_sub(&p->in_async, 1);
    if (rc < 0)
        return rc;
    if (pm_chunk_emit(c, "x", 1) != -EDEADLK)
        atomic_store(&p->bad, 1);
    for (size_t i = 0; i < c->out_len; i++)
        c->out[i]++;
    if ((int)c->file->index == p->fail_index)
        return -EPROTO;
    return 0;
}

/* Serial stages of any kind: a file's chunks one at a time, in order. The
 * per-file state holds the next expected seq. */
static int serial_check(pm_chunk *c, void *arg, unsigned w)
{
    probe *p = arg;
    (void)w;
    uint64_t *next = c->file->state;
    if (c->seq != *next)
        atomic_store(&p->bad, 1);
    (*next)++;
    return 0;
}

/* The same for a serial ASYNC stage, which holds its turn across an
 * await: no other chunk of the file may enter meanwhile. */
static int serial_check_async(pm_chunk *c, void *arg, unsigned w)
{
    uint64_t *next = (uint64_t *)c->file->state + 1;
    (void)w;
    if (c->seq != *next)
        atomic_store(&((probe *)arg)->bad, 1);
    int rc = pm_co_sleep((c->seq * 7 % 3) * 200000u);     /* jitter */
    (*next)++;
    return rc;
}

static void on_event(const pm_event *ev, void *arg)
{
    probe *p = arg;
    pthread_mutex_lock(&p->mu);
    p->done += ev->kind == PM_EVENT_DONE;
    p->failed += ev->kind == PM_EVENT_ERROR;
    if (ev->file && ev->file->index < 8)
        p->err[ev->file->index] = ev->err;
    pthread_mutex_unlock(&p->mu);
}

static void probe_init(probe *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->fail_index = -1;
    p->fail_blocking_index = -1;
}

/* Writes nfiles inputs of sizes from `sizes`; fills paths. */
static void make_inputs(char **paths, int nfiles, const size_t *sizes, unsigned char **data)
{
    for (int i = 0; i < nfiles; i++) {
        paths[i] = malloc(4096);
        snprintf(paths[i], 4096, "%s/in%d", tmp, i);
        data[i] = malloc(sizes[i] + 1);
        pm_test_fill_random(data[i], sizes[i], (uint64_t)i + 1);
        CU_ASSERT_EQUAL_FATAL(pm_test_write_file(paths[i], data[i], sizes[i]), 0);
    }
}

static void mixed_order(void)
{
    enum { NF = 4 };
    size_t sizes[NF] = {300000, 1, 0, 777777};
    char *paths[NF];
    unsigned char *data[NF];
    make_inputs(paths, NF, sizes, data);
    char out[4096];
    snprintf(out, sizeof out, "%s/out", tmp);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    probe p;
    probe_init(&p);
    p.blocking_threads = 3;
    p.sleep_us = 1000;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 16384, .out_size = 16384,
                          .max_chunks = 12, .sink = PM_SINK_FD, .out_fd = fd,
                          .io_engine = engine, .file_state_size = 2 * sizeof(uint64_t),
                          .blocking_threads = 3, .on_event = on_event, .arg = &p};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage_kind(pl, "plus1", PM_STAGE_PARALLEL, PM_STAGE_CPU,
                                               cpu_plus1, &p), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage_kind(pl, "db", PM_STAGE_PARALLEL, PM_STAGE_BLOCKING,
                                               blocking_wait, &p), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage_kind(pl, "net", PM_STAGE_PARALLEL, PM_STAGE_ASYNC,
                                               async_wait, &p), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "order", PM_STAGE_SERIAL_IN_ORDER, serial_check, &p), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage_kind(pl, "bad", PM_STAGE_PARALLEL, (pm_stage_kind)7,
                                               cpu_plus1, &p), -EINVAL);
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *const *)paths, NF, &st), 0);
    close(fd);
    size_t total = 0;
    for (int i = 0; i < NF; i++)
        total += sizes[i];
    size_t got_len = 0;
    unsigned char *got = pm_test_read_file(out, &got_len);
    CU_ASSERT_EQUAL_FATAL(got_len, total);
    size_t at = 0, bad_bytes = 0;
    for (int i = 0; i < NF; i++)
        for (size_t j = 0; j < sizes[i]; j++, at++)
            bad_bytes += got[at] != (unsigned char)(data[i][j] + 2);
    CU_ASSERT_EQUAL(bad_bytes, 0);
    CU_ASSERT_EQUAL(atomic_load(&p.bad), 0);
    CU_ASSERT(st.peak_live_chunks <= 12);
    CU_ASSERT(atomic_load(&p.peak_blocking) <= 3);
    CU_ASSERT(atomic_load(&p.peak_async) >= 2);      /* chunks waited together */
    CU_ASSERT_EQUAL(p.done, NF);
    pm_pipeline_free(pl);
    free(got);
    for (int i = 0; i < NF; i++) {
        free(paths[i]);
        free(data[i]);
    }
}
PM_TEST_BOTH(mixed_order)

/* Serial BLOCKING and serial ASYNC stages see each file's chunks in order;
 * the bound keeps at most max_chunks in them. */
static void serial_kinds(void)
{
    size_t sizes[2] = {200000, 150001};
    char *paths[2];
    unsigned char *data[2];
    make_inputs(paths, 2, sizes, data);
    probe p;
    probe_init(&p);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 8192, .max_chunks = 6,
                          .sink = PM_SINK_NONE, .io_engine = engine,
                          .file_state_size = 2 * sizeof(uint64_t), .blocking_threads = 4,
                          .on_event = on_event, .arg = &p};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    pm_pipeline_add_stage_kind(pl, "a", PM_STAGE_SERIAL_IN_ORDER, PM_STAGE_ASYNC,
                               serial_check_async, &p);
    pm_pipeline_add_stage_kind(pl, "b", PM_STAGE_SERIAL_IN_ORDER, PM_STAGE_BLOCKING,
                               serial_check, &p);
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *const *)paths, 2, &st), 0);
    CU_ASSERT_EQUAL(atomic_load(&p.bad), 0);
    CU_ASSERT(st.peak_live_chunks <= 6);
    CU_ASSERT_EQUAL(p.done, 2);
    /* Run again: the threads and loop of the kinds start anew. */
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *const *)paths, 2, &st), 0);
    CU_ASSERT_EQUAL(p.done, 4);
    pm_pipeline_free(pl);
    for (int i = 0; i < 2; i++) {
        free(paths[i]);
        free(data[i]);
    }
}
PM_TEST_BOTH(serial_kinds)

/* 64 chunks that each wait 100 ms: ASYNC with 64 tokens waits for them
 * together; BLOCKING with 4 threads takes 16 rounds. */
static double timed_run(pm_stage_kind kind, probe *p)
{
    size_t sizes[1] = {64 * 4096};
    char *paths[1];
    unsigned char *data[1];
    make_inputs(paths, 1, sizes, data);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .max_chunks = 64,
                          .sink = PM_SINK_NONE, .io_engine = engine,
                          .blocking_threads = 4, .on_event = on_event, .arg = p};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    pm_pipeline_add_stage_kind(pl, "wait", PM_STAGE_PARALLEL, kind,
                               kind == PM_STAGE_ASYNC ? async_wait : blocking_wait, p);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *const *)paths, 1, NULL), 0);
    double t = pm_test_now() - t0;
    pm_pipeline_free(pl);
    free(paths[0]);
    free(data[0]);
    return t;
}

static void concurrency_by_kind(void)
{
    probe p;
    probe_init(&p);
    p.sleep_us = 100000;
    p.blocking_threads = 4;
    double ta = timed_run(PM_STAGE_ASYNC, &p);
    double tb = timed_run(PM_STAGE_BLOCKING, &p);
    fprintf(stderr, "64 x 100 ms: ASYNC %.3f s (peak %d), BLOCKING x4 %.3f s (peak %d)\n", ta,
            atomic_load(&p.peak_async), tb, atomic_load(&p.peak_blocking));
    CU_ASSERT(atomic_load(&p.peak_async) >= 32);
    CU_ASSERT(ta < 0.8);
    CU_ASSERT_EQUAL(atomic_load(&p.peak_blocking), 4);
    CU_ASSERT(tb >= 1.55);
    CU_ASSERT_EQUAL(atomic_load(&p.bad), 0);
}
PM_TEST_BOTH(concurrency_by_kind)

static void failures(void)
{
    enum { NF = 3 };
    size_t sizes[NF] = {50000, 50000, 50000};
    char *paths[NF];
    unsigned char *data[NF];
    make_inputs(paths, NF, sizes, data);
    probe p;
    probe_init(&p);
    p.blocking_threads = 2;
    p.sleep_us = 100;
    p.fail_index = 1;
    p.fail_blocking_index = 2;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 8192, .out_size = 8192, .max_chunks = 8,
                          .sink = PM_SINK_NONE, .io_engine = engine, .blocking_threads = 2,
                          .on_event = on_event, .arg = &p};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    pm_pipeline_add_stage(pl, "plus1", PM_STAGE_PARALLEL, cpu_plus1, &p);
    pm_pipeline_add_stage_kind(pl, "net", PM_STAGE_PARALLEL, PM_STAGE_ASYNC, async_wait, &p);
    pm_pipeline_add_stage_kind(pl, "db", PM_STAGE_PARALLEL, PM_STAGE_BLOCKING, blocking_wait, &p);
    int rc = pm_pipeline_run(pl, (const char *const *)paths, NF, NULL);
    CU_ASSERT(rc == -EPROTO || rc == -ENOLINK);   /* the first to fail */
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.failed, 2);
    CU_ASSERT_EQUAL(p.err[0], 0);
    CU_ASSERT_EQUAL(p.err[1], -EPROTO);           /* in its ASYNC stage */
    CU_ASSERT_EQUAL(p.err[2], -ENOLINK);          /* in its BLOCKING stage */
    pm_pipeline_free(pl);
    for (int i = 0; i < NF; i++) {
        free(paths[i]);
        free(data[i]);
    }
}
PM_TEST_BOTH(failures)

/* ---- a mapped file cut short under a BLOCKING or ASYNC stage ---- */

static const char *cut_path;

static int cut_first(pm_chunk *c, void *arg, unsigned w)
{
    (void)arg;
    (void)w;
    if (c->seq == 0 && truncate(cut_path, 4096) != 0)
        return -errno;
    return 0;
}

static int touch_all(pm_chunk *c, void *arg, unsigned w)
{
    (void)arg;
    (void)w;
    unsigned sum = 0;
    for (size_t i = 0; i < c->len; i += 512)
        sum += c->data[i];          /* past the new end: SIGBUS, handled */
    c->value = sum;
    return 0;
}

static pm_reason cut_reason;

static void on_cut_event(const pm_event *ev, void *arg)
{
    (void)arg;
    if (ev->kind == PM_EVENT_ERROR)
        cut_reason = ev->reason;
}

static void mapped_cut(void)
{
    for (int k = 0; k < 2; k++) {
        pm_stage_kind kind = k ? PM_STAGE_ASYNC : PM_STAGE_BLOCKING;
        char path[4096];
        snprintf(path, sizeof path, "%s/cut", tmp);
        size_t len = 8u << 20;
        unsigned char *buf = malloc(len);
        pm_test_fill_random(buf, len, 3);
        CU_ASSERT_EQUAL_FATAL(pm_test_write_file(path, buf, len), 0);
        free(buf);
        cut_path = path;
        cut_reason = PM_REASON_NONE;
        pm_pipeline_opts o = {.jobs = 2, .chunk_size = 64 << 10, .max_chunks = 8,
                              .sink = PM_SINK_NONE, .io_engine = engine,
                              .flags = PM_PL_MAP_INPUT, .on_event = on_cut_event};
        pm_pipeline *pl;
        CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
        pm_pipeline_add_stage(pl, "cut", PM_STAGE_SERIAL_IN_ORDER, cut_first, NULL);
        pm_pipeline_add_stage_kind(pl, "touch", PM_STAGE_PARALLEL, kind, touch_all, NULL);
        const char *paths[] = {path};
        pm_pipeline_stats st;
        int rc = pm_pipeline_run(pl, paths, 1, &st);
        CU_ASSERT_EQUAL(rc, -EIO);
        CU_ASSERT_EQUAL(cut_reason, PM_REASON_CHANGED);
        CU_ASSERT(st.bytes_mapped > 0);
        pm_pipeline_free(pl);
    }
}
PM_TEST_BOTH(mapped_cut)

typedef struct canceller {
    pm_pipeline *pl;
    double after;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *c = arg;
    usleep((useconds_t)(c->after * 1e6));
    pm_pipeline_cancel(c->pl);
    return NULL;
}

static void cancel_midway(void)
{
    size_t sizes[1] = {400 * 4096};
    char *paths[1];
    unsigned char *data[1];
    make_inputs(paths, 1, sizes, data);
    probe p;
    probe_init(&p);
    p.sleep_us = 20000;
    p.blocking_threads = 2;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .max_chunks = 16,
                          .sink = PM_SINK_NONE, .io_engine = engine, .blocking_threads = 2,
                          .on_event = on_event, .arg = &p};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    pm_pipeline_add_stage_kind(pl, "net", PM_STAGE_PARALLEL, PM_STAGE_ASYNC, async_wait, &p);
    pm_pipeline_add_stage_kind(pl, "db", PM_STAGE_PARALLEL, PM_STAGE_BLOCKING, blocking_wait, &p);
    canceller c = {pl, 0.1};
    pthread_t th;
    pthread_create(&th, NULL, cancel_later, &c);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *const *)paths, 1, NULL), -ECANCELED);
    CU_ASSERT(pm_test_now() - t0 < 2.0);     /* uncancelled: 400 x 20 ms / 2 = 4 s */
    pthread_join(th, NULL);
    pm_pipeline_free(pl);
    free(paths[0]);
    free(data[0]);
}
PM_TEST_BOTH(cancel_midway)

int main(void)
{
    tmp = pm_test_tmpdir();
    if (!tmp)
        return 1;
    pm_test_case cases[] = {
        PM_TEST_CASE2(mixed_order, "CPU, BLOCKING, ASYNC, serial CPU: bytes and order kept"),
        PM_TEST_CASE2(serial_kinds, "serial BLOCKING and ASYNC stages in order; run twice"),
        PM_TEST_CASE2(concurrency_by_kind, "ASYNC waits together, BLOCKING by its threads"),
        PM_TEST_CASE2(failures, "a failing ASYNC and BLOCKING stage fail their files"),
        PM_TEST_CASE2(mapped_cut, "a mapped file cut short under BLOCKING and ASYNC stages"),
        PM_TEST_CASE2(cancel_midway, "cancel with chunks in ASYNC and BLOCKING stages"),
        {NULL, NULL},
    };
    int rc = pm_test_run("co_pipeline", cases);
    pm_test_rmtree(tmp);
    free(tmp);
    return rc;
}
