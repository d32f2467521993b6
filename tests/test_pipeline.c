/* test_pipeline.c - the pipeline engine with its own test stages: order,
 * many files, errors, cancellation, skips, streams, the memory bound. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <pmap/pipeline.h>
#include "testutil.h"

/* ---- test stages and hooks ---- */

typedef struct recorder {
    pthread_mutex_t lock;
    uint64_t last_index;         /* events must come in source order */
    int order_ok;
    int done, skipped, failed, warned;
    char last_error[512];
    char last_skip[512];
    atomic_int chunks;
    int delay_us;                /* random delay in the parallel stage */
    const char *fail_name;       /* stage fails chunks of files ending in this */
    int cancel_after;            /* cancel the pipeline after this many chunks */
    pm_pipeline *pl;
    const char *grow_path;       /* the stage appends to this file (changes it) */
    const char *deny_name;       /* file_begin fails files ending in this */
    const char *late_name;       /* file_end fails files ending in this */
    const char *race_path;       /* the stage creates this file (an output) */
    const char *replace_path;    /* the stage renames a new file over this one */
} recorder;

static void rec_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->order_ok = 1;
    r->last_index = UINT64_MAX;
}

static void on_event(const pm_event *ev, void *arg)
{
    recorder *r = arg;
    if (ev->file) {
        if (r->last_index != UINT64_MAX && ev->file->index <= r->last_index)
            r->order_ok = 0;
        r->last_index = ev->file->index;
    }
    switch (ev->kind) {
    case PM_EVENT_DONE: r->done++; break;
    case PM_EVENT_WARNING: r->warned++; break;
    case PM_EVENT_SKIP:
        r->skipped++;
        snprintf(r->last_skip, sizeof r->last_skip, "%s: %s", ev->path, ev->message);
        break;
    case PM_EVENT_ERROR:
        r->failed++;
        snprintf(r->last_error, sizeof r->last_error, "%s: %s", ev->path, ev->message);
        break;
    }
}

static unsigned rand_r_seed(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (unsigned)x;
}

/* Parallel: copies data to out after a random delay. */
static int copy_stage(pm_chunk *c, void *arg, unsigned worker)
{
    recorder *r = arg;
    (void)worker;
    if (r->delay_us)
        usleep(rand_r_seed(c->seq * 7919 + c->file->index) % (unsigned)r->delay_us);
    if (r->fail_name) {
        size_t n = strlen(c->file->path), m = strlen(r->fail_name);
        if (n >= m && !strcmp(c->file->path + n - m, r->fail_name))
            return pm_chunk_fail(c, -EBADMSG, "test failure in chunk %llu",
                                 (unsigned long long)c->seq);
    }
    if (r->race_path && c->seq == 0)
        pm_test_write_file(r->race_path, "someone else's", 14);
    if (r->replace_path && c->seq == 0 && !strcmp(c->file->path, r->replace_path)) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.new", r->replace_path);
        pm_test_write_file(tmp, "replacement", 11);
        if (rename(tmp, r->replace_path) != 0)
            abort();
    }
    if (r->grow_path && c->seq == 0) {
        int fd = open(r->grow_path, O_WRONLY | O_APPEND);
        if (fd >= 0) {
            if (write(fd, "more", 4) != 4)
                abort();
            close(fd);
        }
    }
    CU_ASSERT_FATAL(c->len <= c->out_cap);
    memcpy(c->out, c->data, c->len);
    c->out_len = c->len;
    int n = atomic_fetch_add(&r->chunks, 1) + 1;
    if (r->cancel_after && n == r->cancel_after)
        pm_pipeline_cancel(r->pl);
    return 0;
}

/* Serial: checks that chunks come in order and that the prefix is the input
 * just before the chunk. */
static int order_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    uint64_t *next = c->file->state;
    if (!next)
        return 0;
    CU_ASSERT_EQUAL(c->seq, next[0]);
    CU_ASSERT_EQUAL(c->offset, next[1]);
    next[0]++;
    next[1] += c->len;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int begin_state(pm_file *f, void *arg)
{
    recorder *r = arg;
    if (r->deny_name && ends_with(f->path, r->deny_name))
        return -EACCES;
    f->state = calloc(2, sizeof(uint64_t));
    return f->state ? 0 : -ENOMEM;
}

static int end_state(pm_file *f, int status, void *arg)
{
    recorder *r = arg;
    (void)status;
    free(f->state);
    f->state = NULL;
    return r->late_name && ends_with(f->path, r->late_name) ? -EBADMSG : 0;
}

/* Also checks that out_path gets the input the pipeline opened (f->fd,
 * the same inode as f->st), as decompress -N relies on. */
static int suffix_out(const pm_file *f, char *buf, size_t cap, void *arg)
{
    (void)arg;
    struct stat st;
    if (f->fd < 0 || fstat(f->fd, &st) != 0 || st.st_ino != f->st.st_ino ||
        st.st_dev != f->st.st_dev) {
        snprintf(buf, cap, "out_path: no descriptor of the opened input");
        return -EBADF;
    }
    int n = snprintf(buf, cap, "%s.out", f->path);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* With hooks (file_begin/file_end, which run on the calling thread) every
 * file takes the usual way; without them a file that fits in a chunk is
 * done in one step on a worker (stages.c, "whole files"), and the order
 * stage's state comes from file_state_size. */
static int with_hooks = 1;

static pm_pipeline *make(pm_pipeline_opts *o, recorder *r)
{
    pm_pipeline *pl = NULL;
    o->on_event = on_event;
    o->arg = r;
    if (with_hooks) {
        o->file_begin = begin_state;
        o->file_end = end_state;
    } else {
        o->file_state_size = 2 * sizeof(uint64_t);
    }
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "copy", PM_STAGE_PARALLEL, copy_stage, r), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "order", PM_STAGE_SERIAL_IN_ORDER, order_stage, r), 0);
    r->pl = pl;
    return pl;
}

static int files_equal(const char *a, const char *b)
{
    size_t na, nb;
    void *pa = pm_test_read_file(a, &na), *pb = pm_test_read_file(b, &nb);
    int eq = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

/* ---- cases ---- */

static void test_invalid_options(void)
{
    pm_pipeline *pl = NULL;
    pm_pipeline_opts o = {.jobs = -1};
    CU_ASSERT_EQUAL(pm_pipeline_new(&o, &pl), -EINVAL);
    o = (pm_pipeline_opts){.chunk_size = 1024, .overlap = 4096};
    CU_ASSERT_EQUAL(pm_pipeline_new(&o, &pl), -EINVAL);
    o = (pm_pipeline_opts){.sink = PM_SINK_FILES};
    CU_ASSERT_EQUAL(pm_pipeline_new(&o, &pl), -EINVAL);
    CU_ASSERT_EQUAL(pm_pipeline_new(NULL, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, NULL, 0, NULL), -EINVAL);   /* no stages */
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "x", 7, copy_stage, NULL), -EINVAL);
    pm_pipeline_free(pl);
    pm_pipeline_free(NULL);
}

/* Random delays in the parallel stage; output must be in order. */
static void test_order_with_delays(void)
{
    char *dir = pm_test_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    size_t len = 3 * 1000 * 1000 + 17;
    unsigned char *data = malloc(len);
    pm_test_fill_random(data, len, 1);
    CU_ASSERT_EQUAL(pm_test_write_file(in, data, len), 0);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    recorder r;
    rec_init(&r);
    r.delay_us = 3000;
    pm_pipeline_opts o = {.jobs = 4, .chunk_size = 64 * 1024, .overlap = 100,
                          .out_size = 64 * 1024, .sink = PM_SINK_FD, .out_fd = fd};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {in};
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, &st), 0);
    close(fd);
    CU_ASSERT(files_equal(in, out));
    CU_ASSERT_EQUAL(st.bytes_in, len);
    CU_ASSERT_EQUAL(st.bytes_out, len);
    CU_ASSERT_EQUAL(st.chunks, (len + 65535) / 65536);
    CU_ASSERT(st.peak_live_chunks <= 4 * 4 + 2);
    CU_ASSERT_EQUAL(r.done, 1);
    pm_pipeline_free(pl);
    free(data);
    pm_test_rmtree(dir);
    free(dir);
}

/* The live-chunk bound holds whatever the input size. */
static void test_token_bound(void)
{
    char *dir = pm_test_tmpdir();
    char in[512];
    snprintf(in, sizeof in, "%s/in", dir);
    size_t len = 8 * 1024 * 1024;
    unsigned char *data = malloc(len);
    pm_test_fill_text(data, len, 2);
    CU_ASSERT_EQUAL(pm_test_write_file(in, data, len), 0);
    recorder r;
    rec_init(&r);
    r.delay_us = 200;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 16 * 1024, .out_size = 16 * 1024,
                          .max_chunks = 3, .sink = PM_SINK_NONE};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {in};
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, &st), 0);
    CU_ASSERT(st.peak_live_chunks <= 3);
    CU_ASSERT(st.peak_live_chunks >= 2);
    CU_ASSERT_EQUAL(st.chunks, len / (16 * 1024));
    pm_pipeline_free(pl);
    free(data);
    pm_test_rmtree(dir);
    free(dir);
}

/* A tree of many files into per-file outputs; events in source order. */
static void test_many_files(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && mkdir -p src/a/b src/c && for i in $(seq 1 300); do "
                               "head -c $((i * 37)) /dev/urandom > src/a/f$i; done && "
                               "for i in $(seq 1 50); do head -c $((i * 1001)) /dev/urandom > src/a/b/g$i; done && "
                               ": > src/c/empty && cp -a src ref", dir), 0);
    recorder r;
    rec_init(&r);
    pm_pipeline_opts o = {.jobs = 3, .chunk_size = 4096, .out_size = 4096,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT | PM_PL_PRESERVE_META,
                          .skip_suffix = ".out"};
    pm_pipeline *pl = make(&o, &r);
    char src[600];
    snprintf(src, sizeof src, "%s/src", dir);
    const char *paths[] = {src};
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, &st), 0);
    CU_ASSERT_EQUAL(r.done, 351);
    CU_ASSERT_EQUAL(r.failed, 0);
    CU_ASSERT(r.order_ok);
    CU_ASSERT_EQUAL(st.files_done, 351);
    /* Inputs removed, outputs equal to the originals with their mtimes. */
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s/src' && test $(find . -type f ! -name '*.out' | wc -l) -eq 0 && "
                               "test $(find . -type f | wc -l) -eq 351", dir), 0);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s/ref' && find . -type f | while read f; do "
                               "cmp -s \"$f\" \"../src/$f.out\" || exit 1; "
                               "test \"$(stat -c %%Y \"$f\")\" = \"$(stat -c %%Y \"../src/$f.out\")\" || exit 2; "
                               "done", dir), 0);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* One failing file among many: reported with its name, no output for it,
 * its input intact, the others done. */
static void test_error_in_one_file(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && for i in $(seq 1 40); do "
                               "head -c 50000 /dev/urandom > f$i; done && "
                               "head -c 300000 /dev/urandom > zbad", dir), 0);
    recorder r;
    rec_init(&r);
    r.fail_name = "zbad";
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 8192, .out_size = 8192,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {dir};
    int rc = pm_pipeline_run(pl, paths, 1, NULL);
    CU_ASSERT_EQUAL(rc, -EBADMSG);
    CU_ASSERT_EQUAL(r.done, 40);
    CU_ASSERT_EQUAL(r.failed, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_error, "zbad: test failure in chunk "));
    CU_ASSERT_EQUAL(pm_test_sh("test -f '%s/zbad' && test ! -e '%s/zbad.out'", dir, dir), 0);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test $(ls -A | wc -l) -eq 41", dir), 0);
    pm_pipeline_free(pl);

    /* fail fast: the run stops at the error. */
    rec_init(&r);
    r.fail_name = "f1";
    o.flags |= PM_PL_FAIL_FAST;
    pl = make(&o, &r);
    pm_test_sh("cd '%s' && rm -f *.out && for i in $(seq 1 40); do test -e f$i || "
               "head -c 50000 /dev/urandom > f$i; done", dir);
    rc = pm_pipeline_run(pl, paths, 1, NULL);
    CU_ASSERT_EQUAL(rc, -EBADMSG);
    CU_ASSERT(r.done < 40);
    CU_ASSERT_EQUAL(pm_test_sh("test -f '%s/f1'", dir), 0);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* Cancel from a stage mid-run: -ECANCELED, nothing half-written, inputs kept. */
static void test_cancel_mid_run(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && for i in $(seq 1 30); do "
                               "head -c 200000 /dev/urandom > f$i; done", dir), 0);
    recorder r;
    rec_init(&r);
    r.cancel_after = 20;
    r.delay_us = 500;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 8192, .out_size = 8192,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {dir};
    double t0 = pm_test_now();
    int rc = pm_pipeline_run(pl, paths, 1, NULL);
    CU_ASSERT_EQUAL(rc, -ECANCELED);
    CU_ASSERT(pm_test_now() - t0 < 10.0);
    /* every input still there; any output present is complete */
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && for i in $(seq 1 30); do test -f f$i || exit 1; "
                               "if test -e f$i.out; then cmp -s f$i f$i.out || exit 2; fi; done", dir), 0);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test $(ls -A | grep -c pmtmp) -eq 0", dir), 0);
    /* The pipeline can run again after a cancel. */
    rec_init(&r);
    r.pl = pl;
    rc = pm_pipeline_run(pl, paths, 1, NULL);
    CU_ASSERT(rc == 0 || rc == -EEXIST);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

static void *cancel_later(void *arg)
{
    usleep(100 * 1000);
    pm_pipeline_cancel(arg);
    return NULL;
}

/* A stream that never ends (a FIFO with a silent writer) is cancelled
 * promptly from another thread. */
static void test_cancel_blocked_stream(void)
{
    char *dir = pm_test_tmpdir();
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    int wfd = open(fifo, O_RDWR);       /* keeps the FIFO open, writes nothing */
    recorder r;
    rec_init(&r);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .out_size = 4096,
                          .sink = PM_SINK_NONE, .flags = PM_PL_SKIP_SPECIAL_OK};
    pm_pipeline *pl = make(&o, &r);
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, pl);
    const char *paths[] = {fifo};
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), -ECANCELED);
    CU_ASSERT(pm_test_now() - t0 < 5.0);
    pthread_join(t, NULL);
    close(wfd);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* A FIFO as a named source: short reads, chunks and prefixes still right. */
static void test_stream_source(void)
{
    char *dir = pm_test_tmpdir();
    char in[512], fifo[512], out[512];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    size_t len = 1000 * 1000 + 3;
    unsigned char *data = malloc(len);
    pm_test_fill_random(data, len, 9);
    pm_test_write_file(in, data, len);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    CU_ASSERT_EQUAL(pm_test_sh("(cat '%s' > '%s') &", in, fifo), 0);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    recorder r;
    rec_init(&r);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 10000, .overlap = 10000, .out_size = 10000,
                          .sink = PM_SINK_FD, .out_fd = fd, .flags = PM_PL_SKIP_SPECIAL_OK};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {fifo};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
    close(fd);
    CU_ASSERT(files_equal(in, out));
    /* Without the flag a FIFO is skipped with a reason. */
    pm_pipeline_free(pl);
    rec_init(&r);
    o.flags = 0;
    fd = open(out, O_WRONLY | O_TRUNC);
    o.out_fd = fd;
    pl = make(&o, &r);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
    CU_ASSERT_EQUAL(r.skipped, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_skip, "not a regular file"));
    close(fd);
    pm_pipeline_free(pl);
    free(data);
    pm_test_rmtree(dir);
    free(dir);
}

/* Skips: symlinks (unless followed), suffix, existing outputs; a missing
 * path is an error naming it. */
static void test_skips_and_missing(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && echo hello > a && ln -s a link && echo x > b.out && "
                               "echo y > b && echo z > c", dir), 0);
    recorder r;
    rec_init(&r);
    pm_pipeline_opts o = {.jobs = 2, .out_size = 128 * 1024, .sink = PM_SINK_FILES,
                          .out_path = suffix_out, .skip_suffix = ".out"};
    pm_pipeline *pl = make(&o, &r);
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    const char *paths[] = {dir, missing};
    int rc = pm_pipeline_run(pl, paths, 2, NULL);
    CU_ASSERT_EQUAL(rc, -ENOENT);
    CU_ASSERT_EQUAL(r.done, 2);          /* a, c */
    CU_ASSERT_EQUAL(r.skipped, 3);       /* b (b.out exists), b.out (suffix), link */
    CU_ASSERT_EQUAL(r.failed, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_error, "nope: No such file"));
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test \"$(cat b.out)\" = x && test ! -e link.out", dir), 0);
    pm_pipeline_free(pl);

    /* -f: follow links, overwrite outputs */
    rec_init(&r);
    o.flags = PM_PL_FOLLOW_SYMLINKS | PM_PL_OVERWRITE;
    pl = make(&o, &r);
    const char *paths2[] = {dir};
    pm_test_sh("cd '%s' && rm -f a.out c.out", dir);
    rc = pm_pipeline_run(pl, paths2, 1, NULL);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test \"$(cat b.out)\" = y && cmp -s link.out a", dir), 0);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* A file that changes while it is read fails; its output is not kept. */
static void test_file_changes(void)
{
    char *dir = pm_test_tmpdir();
    char in[512];
    snprintf(in, sizeof in, "%s/in", dir);
    size_t len = 500000;
    unsigned char *data = malloc(len);
    pm_test_fill_random(data, len, 5);
    pm_test_write_file(in, data, len);
    recorder r;
    rec_init(&r);
    r.grow_path = in;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 16384, .out_size = 16384,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {in};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), -EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_error, "changed"));
    CU_ASSERT_EQUAL(pm_test_sh("test -f '%s' && test ! -e '%s.out'", in, in), 0);
    pm_pipeline_free(pl);
    free(data);
    pm_test_rmtree(dir);
    free(dir);
}

/* A file replaced (rename over it) while it is being compressed: its
 * output is the file that was read, and the new file under the name is
 * kept, with a warning -- never removed unread. */
static void test_input_replaced(void)
{
    char *dir = pm_test_tmpdir();
    char in[512];
    snprintf(in, sizeof in, "%s/in", dir);
    size_t len = 300000;
    unsigned char *data = malloc(len);
    pm_test_fill_random(data, len, 6);
    pm_test_write_file(in, data, len);
    recorder r;
    rec_init(&r);
    r.replace_path = in;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 16384, .out_size = 16384,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {in};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
    CU_ASSERT_EQUAL(r.warned, 1);
    char out[600];
    snprintf(out, sizeof out, "%s.out", in);
    size_t n;
    unsigned char *got = pm_test_read_file(out, &n);
    CU_ASSERT(got && n == len && memcmp(got, data, len) == 0);   /* what was read */
    free(got);
    got = pm_test_read_file(in, &n);
    CU_ASSERT(got && n == 11 && memcmp(got, "replacement", 11) == 0);   /* kept */
    free(got);
    pm_pipeline_free(pl);
    free(data);
    pm_test_rmtree(dir);
    free(dir);
}

/* accept hook that swaps a regular file for a FIFO between the walk and
 * the open: the open must not block, and the file is skipped. */
static int swap_to_fifo(const char *path, char *msg, size_t cap, void *arg)
{
    (void)msg;
    (void)cap;
    (void)arg;
    if (ends_with(path, "/swapme")) {
        unlink(path);
        if (mkfifo(path, 0600) != 0)
            abort();
    }
    return 0;
}

static void test_fifo_swapped_in(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("mkdir '%s/src' && cd '%s/src' && echo a > a && echo s > swapme && "
                               "echo z > z", dir, dir), 0);
    recorder r;
    rec_init(&r);
    pm_pipeline_opts o = {.jobs = 2, .out_size = 4096, .chunk_size = 4096,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT, .accept = swap_to_fifo};
    pm_pipeline *pl = make(&o, &r);
    char src[600];
    snprintf(src, sizeof src, "%s/src", dir);
    const char *paths[] = {src};
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
    CU_ASSERT(pm_test_now() - t0 < 10);
    CU_ASSERT_EQUAL(r.done, 2);
    CU_ASSERT_EQUAL(r.skipped, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_skip, "not a regular file"));
    CU_ASSERT_EQUAL(pm_test_sh("test -p '%s/src/swapme' && test ! -e '%s/src/swapme.out'",
                               dir, dir), 0);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* Output on a full filesystem: -ENOSPC reported, nothing left, input kept
 * -- chunk by chunk through the loop, or (whole) written by the worker of
 * the file's one step. */
static void enospc_run(int whole)
{
    if (geteuid() != 0) {
        pm_test_skip("needs root to mount a small tmpfs");
        return;
    }
    char *dir = pm_test_tmpdir();
    char mnt[512], in[512];
    snprintf(mnt, sizeof mnt, "%s/mnt", dir);
    snprintf(in, sizeof in, "%s/mnt/in", dir);
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        pm_test_skip("cannot mount tmpfs here");
        pm_test_rmtree(dir);
        free(dir);
        return;
    }
    size_t len = 700 * 1024;
    unsigned char *data = malloc(len);
    pm_test_fill_random(data, len, 3);
    CU_ASSERT_EQUAL(pm_test_write_file(in, data, len), 0);
    recorder r;
    rec_init(&r);
    size_t chunk = whole ? 1024 * 1024 : 65536;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = chunk, .out_size = chunk,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT};
    with_hooks = !whole;
    pm_pipeline *pl = make(&o, &r);
    with_hooks = 1;
    const char *paths[] = {in};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), -ENOSPC);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_error, "No space left"));
    CU_ASSERT_EQUAL(pm_test_sh("test -f '%s' && test $(ls -A '%s' | wc -l) -eq 1", in, mnt), 0);
    pm_pipeline_free(pl);
    umount(mnt);
    free(data);
    pm_test_rmtree(dir);
    free(dir);
}

static void test_enospc(void)
{
    enospc_run(0);
    enospc_run(1);
}

/* Failures of the hooks and of the final link: the file fails with its
 * name and cause, its input stays, no output of ours appears, and a file
 * that took the output's name meanwhile is not replaced. */
static void test_hook_and_link_failures(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && for f in a deny late race z; do "
                               "head -c 100000 /dev/urandom > $f; done", dir), 0);
    char race_out[512];
    snprintf(race_out, sizeof race_out, "%s/race.out", dir);
    recorder r;
    rec_init(&r);
    r.deny_name = "/deny";
    r.late_name = "/late";
    r.race_path = NULL;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 16384, .out_size = 16384,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {dir};
    int rc = pm_pipeline_run(pl, paths, 1, NULL);
    CU_ASSERT(rc == -EACCES || rc == -EBADMSG);
    CU_ASSERT_EQUAL(r.done, 3);
    CU_ASSERT_EQUAL(r.failed, 2);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test -f deny && test -f late && test ! -e deny.out "
                               "&& test ! -e late.out && test ! -e a && test -f a.out", dir), 0);
    pm_pipeline_free(pl);

    /* The output name is taken while the file is being processed. */
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && rm -f race.out && head -c 100000 /dev/urandom > race",
                               dir), 0);
    rec_init(&r);
    r.race_path = race_out;
    pl = make(&o, &r);
    char race[512];
    snprintf(race, sizeof race, "%s/race", dir);
    const char *one[] = {race};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, one, 1, NULL), -EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_error, "race: cannot create"));
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test -f race && test \"$(cat race.out)\" = \"someone else's\"",
                               dir), 0);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* The same tree without hooks: its small files are done in one step each,
 * its larger ones the usual way, with the same results and order. */
static void test_whole_files(void)
{
    with_hooks = 0;
    test_many_files();
    with_hooks = 1;
}

/* Failures of files done in one step: a stage error, a file that grows
 * while it is read, one replaced by rename. Each is reported, keeps its
 * input and leaves no output; the others are done. */
static void test_whole_failures(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && for f in a b c zbad grow swap; do "
                               "head -c 3000 /dev/urandom > $f; done && cp swap swap.orig", dir), 0);
    char grow[512], swap[512];
    snprintf(grow, sizeof grow, "%s/grow", dir);
    snprintf(swap, sizeof swap, "%s/swap", dir);
    with_hooks = 0;
    recorder r;
    rec_init(&r);
    r.fail_name = "/zbad";
    r.grow_path = grow;           /* every file's first chunk appends to it */
    r.replace_path = swap;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 8192, .out_size = 8192,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT, .skip_suffix = ".orig"};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {dir};
    pm_pipeline_stats st;
    int rc = pm_pipeline_run(pl, paths, 1, &st);
    CU_ASSERT(rc == -EBADMSG || rc == -EIO);
    CU_ASSERT_EQUAL(r.done, 3);
    CU_ASSERT_EQUAL(r.failed, 2);
    CU_ASSERT_EQUAL(r.warned, 1);
    CU_ASSERT(r.order_ok);
    CU_ASSERT_EQUAL(st.files_done, 4);          /* a warning counts as done */
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test ! -e a && test -f a.out && test ! -e c && "
                               "test -f zbad && test ! -e zbad.out && "
                               "test -f grow && test ! -e grow.out && "
                               "test \"$(cat swap)\" = replacement && cmp -s swap.out swap.orig",
                               dir), 0);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test $(ls -A | wc -l) -eq 8", dir), 0);
    pm_pipeline_free(pl);
    with_hooks = 1;
    pm_test_rmtree(dir);
    free(dir);
}

static int on_tmpfs(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* Runs the sync test's pipeline on a fresh tree in dir; returns the stats. */
static pm_pipeline_stats sync_run(const char *dir, unsigned flags)
{
    pm_pipeline_stats st = {0};
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && rm -rf t && mkdir t && for i in 1 2 3 4; do "
                               "head -c $((i * 1000)) /dev/urandom > t/f$i; done && "
                               "head -c 20000 /dev/urandom > t/big", dir), 0);
    recorder r;
    rec_init(&r);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 8192, .out_size = 8192,
                          .sink = PM_SINK_FILES, .out_path = suffix_out, .flags = flags};
    pm_pipeline *pl = make(&o, &r);
    char t[600];
    snprintf(t, sizeof t, "%s/t", dir);
    const char *paths[] = {t};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, &st), 0);
    CU_ASSERT_EQUAL(r.done, 5);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s/t' && test $(ls | grep -c '\\.out$') -eq 5", dir), 0);
    pm_pipeline_free(pl);
    return st;
}

/* Before an input is removed its output and the output's directory are
 * synced: two fsyncs per file -- none when told not to, when nothing is
 * removed, or when input and output are on tmpfs (a crash loses the input
 * there anyway; fsync does nothing). */
static void test_syncs(void)
{
    with_hooks = 0;
    char *dir = pm_test_tmpdir();
    if (!on_tmpfs(dir)) {
        CU_ASSERT_EQUAL(sync_run(dir, PM_PL_REMOVE_INPUT).syncs, 10);
        CU_ASSERT_EQUAL(sync_run(dir, PM_PL_REMOVE_INPUT | PM_PL_NO_SYNC).syncs, 0);
    }
    CU_ASSERT_EQUAL(sync_run(dir, 0).syncs, 0);
    pm_test_rmtree(dir);
    free(dir);
    char shm[] = "/dev/shm/pmap-test-XXXXXX";
    if (on_tmpfs("/dev/shm") && mkdtemp(shm)) {
        CU_ASSERT_EQUAL(sync_run(shm, PM_PL_REMOVE_INPUT).syncs, 0);
        CU_ASSERT_EQUAL(pm_test_sh("test $(ls '%s/t' | grep -vc '\\.out$') -eq 0", shm), 0);
        pm_test_rmtree(shm);
    } else {
        pm_test_skip("no tmpfs at /dev/shm: the tmpfs half is not run");
    }
    with_hooks = 1;
}

/* Files the walk skips at once (here by suffix) are finished before they
 * are reported, and the walk may not run far ahead of the reports: a run
 * of them with nothing else in flight must not leave the I/O thread
 * asleep until its timer (here 10 s, a stall each time). */
static void test_skips_never_stall(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && for i in $(seq 10 59); do echo $i > a$i.out; "
                               "done && echo b > b && echo c > c", dir), 0);
    with_hooks = 0;
    recorder r;
    rec_init(&r);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .out_size = 4096, .max_files = 1,
                          .sink = PM_SINK_NONE, .skip_suffix = ".out",
                          .progress_interval = 10};
    pm_pipeline *pl = make(&o, &r);
    const char *paths[] = {dir};
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), 0);
    CU_ASSERT(pm_test_now() - t0 < 5);
    CU_ASSERT_EQUAL(r.skipped, 50);
    CU_ASSERT_EQUAL(r.done, 2);
    CU_ASSERT(r.order_ok);
    pm_pipeline_free(pl);
    with_hooks = 1;
    pm_test_rmtree(dir);
    free(dir);
}

/* ---- directories swapped for symbolic links mid-run (by descriptor) ----
 *
 * The accept hook runs on the I/O thread for each file just before its
 * open: when it sees `swap_at`, it renames directory `swap_dir` away (to
 * swap_dir.old) and puts a symbolic link to `swap_target` in its place --
 * deterministically between the listing and the open of the files after. */
static const char *swap_at, *swap_dir, *swap_target;

static int swap_dir_hook(const char *path, char *msg, size_t cap, void *arg)
{
    (void)msg;
    (void)cap;
    (void)arg;
    if (swap_at && ends_with(path, swap_at)) {
        char old[700];
        snprintf(old, sizeof old, "%s.old", swap_dir);
        if (rename(swap_dir, old) != 0 || symlink(swap_target, swap_dir) != 0)
            abort();
        swap_at = NULL;
    }
    return 0;
}

/* Compresses `root` in place with the swap set up; returns the run's rc. */
static int run_swapped(const char *root, recorder *r)
{
    rec_init(r);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .out_size = 4096,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT, .accept = swap_dir_hook};
    pm_pipeline *pl = make(&o, r);
    const char *paths[] = {root};
    int rc = pm_pipeline_run(pl, paths, 1, NULL);
    pm_pipeline_free(pl);
    return rc;
}

static void test_dir_swapped_for_link(void)
{
    char *dir = pm_test_tmpdir();
    char root[600], d[600], out[600];
    snprintf(root, sizeof root, "%s/root", dir);
    snprintf(d, sizeof d, "%s/root/d", dir);
    snprintf(out, sizeof out, "%s/outside", dir);
    recorder r;

    /* 1. A listed directory becomes a link: its remaining files are still
     *    read, written and removed in the directory that was listed. */
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && mkdir -p root/d outside && echo a > root/d/a && "
                               "echo inside > root/d/b && echo outside > outside/b", dir), 0);
    swap_at = "/d/a", swap_dir = d, swap_target = out;
    CU_ASSERT_EQUAL(run_swapped(root, &r), 0);
    CU_ASSERT_EQUAL(r.done, 2);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test \"$(cat outside/b)\" = outside && "
                               "test $(ls outside | wc -l) -eq 1 && test ! -e root/d.old/b && "
                               "test \"$(cat root/d.old/b.out)\" = inside && test -f root/d.old/a.out",
                               dir), 0);

    /* 2. A subdirectory listed but not yet walked becomes a link: not
     *    followed, nothing outside read or touched. */
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && rm -rf root outside && mkdir -p root/d/sub outside && "
                               "echo a > root/d/a && echo c > root/d/sub/c && echo outside > outside/c",
                               dir), 0);
    char sub[700];
    snprintf(sub, sizeof sub, "%s/sub", d);
    swap_at = "/d/a", swap_dir = sub, swap_target = out;
    CU_ASSERT_EQUAL(run_swapped(root, &r), 0);
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_EQUAL(r.skipped, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_skip, "symbolic link"));
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test \"$(cat outside/c)\" = outside && "
                               "test $(ls outside | wc -l) -eq 1 && test -f root/d/sub.old/c", dir), 0);

    /* 3. The directory named by the caller becomes a link after it was
     *    listed: the same, one level up. */
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && rm -rf root outside && mkdir -p root outside && "
                               "echo a > root/a && echo inside > root/b && echo outside > outside/b",
                               dir), 0);
    swap_at = "/root/a", swap_dir = root, swap_target = out;
    CU_ASSERT_EQUAL(run_swapped(root, &r), 0);
    CU_ASSERT_EQUAL(r.done, 2);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test \"$(cat outside/b)\" = outside && "
                               "test $(ls outside | wc -l) -eq 1 && test -f root.old/b.out && "
                               "test ! -e root.old/b", dir), 0);
    swap_at = NULL;
    pm_test_rmtree(dir);
    free(dir);
}

/* operand_dirs: files named with the directory a walk found them in are
 * looked up there, whatever their paths name by the time of the run
 * (pmap-mpi's ranks run files that rank 0 walked). */
static void test_operand_dirs(void)
{
    char *dir = pm_test_tmpdir();
    char d[600], p_b[700], p_l[700], p_x[700], p_sub[700];
    snprintf(d, sizeof d, "%s/root/d", dir);
    snprintf(p_b, sizeof p_b, "%s/b", d);
    snprintf(p_l, sizeof p_l, "%s/l", d);
    snprintf(p_sub, sizeof p_sub, "%s/sub", d);
    snprintf(p_x, sizeof p_x, "%s/x", dir);
    CU_ASSERT_EQUAL_FATAL(pm_test_sh("cd '%s' && mkdir -p root/d/sub outside && "
                                     "echo inside > root/d/b && echo outside > outside/b && "
                                     "echo s > root/d/sub/s && echo x > x && "
                                     "ln -s ../../outside/b root/d/l", dir), 0);
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    /* The directory becomes a link to another one after it was "walked". */
    CU_ASSERT_EQUAL_FATAL(pm_test_sh("cd '%s' && mv root/d root/d.old && "
                                     "ln -s ../outside root/d", dir), 0);
    recorder r;
    rec_init(&r);
    const int dirs[] = {fd, fd, -1, fd};
    const char *paths[] = {p_b, p_l, p_x, p_sub};
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .out_size = 4096,
                          .sink = PM_SINK_FILES, .out_path = suffix_out,
                          .flags = PM_PL_REMOVE_INPUT, .operand_dirs = dirs};
    pm_pipeline *pl = make(&o, &r);
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 4, &st), 0);
    pm_pipeline_free(pl);
    /* b: read, written and removed in the directory of the descriptor; l:
     * a link, not followed (as a walked file's); x: by its path; sub: a
     * directory, walked from the descriptor. Nothing outside touched. */
    CU_ASSERT_EQUAL(r.done, 3);
    CU_ASSERT_EQUAL(r.skipped, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_skip, "symbolic link"));
    CU_ASSERT(r.order_ok);
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && test \"$(cat outside/b)\" = outside && "
                               "test $(ls outside | wc -l) -eq 1 && "
                               "test \"$(cat root/d.old/b.out)\" = inside && test ! -e root/d.old/b && "
                               "test -L root/d.old/l && test -f root/d.old/sub/s.out && "
                               "test -f x.out && test ! -e x", dir), 0);
    /* The reported path is the one given, not the descriptor's. */
    CU_ASSERT_EQUAL(strncmp(r.last_skip, p_l, strlen(p_l)), 0);
    close(fd);
    /* A descriptor that cannot be used fails its file, not the run. */
    rec_init(&r);
    const int bad[] = {1000, -1};
    CU_ASSERT_EQUAL(pm_test_sh("cd '%s' && echo y > y", dir), 0);
    snprintf(p_x, sizeof p_x, "%s/y", dir);
    const char *paths2[] = {"elsewhere/z", p_x};
    o.operand_dirs = bad;
    pl = make(&o, &r);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths2, 2, &st), -EBADF);
    pm_pipeline_free(pl);
    CU_ASSERT_EQUAL(r.failed, 1);
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.last_error, "elsewhere/z: cannot use the directory it was found in"));
    pm_test_rmtree(dir);
    free(dir);
}

/* An empty file gives one empty last chunk. */
static int empty_check_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    int *seen = arg;
    CU_ASSERT_EQUAL(c->len, 0);
    CU_ASSERT(c->last);
    CU_ASSERT_EQUAL(c->seq, 0);
    (*seen)++;
    return 0;
}

static void test_empty_file(void)
{
    char *dir = pm_test_tmpdir();
    char in[512];
    snprintf(in, sizeof in, "%s/empty", dir);
    pm_test_write_file(in, "", 0);
    int seen = 0;
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(NULL, &pl), 0);
    pm_pipeline_add_stage(pl, "check", PM_STAGE_SERIAL_IN_ORDER, empty_check_stage, &seen);
    const char *paths[] = {in};
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, &st), 0);
    CU_ASSERT_EQUAL(seen, 1);
    CU_ASSERT_EQUAL(st.files_done, 1);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* Totals over runs: every count and time summed, the peak the larger. */
static void test_stats_add(void)
{
    pm_pipeline_stats a = {.bytes_in = 1, .bytes_out = 2, .files_done = 3, .files_failed = 4,
                           .files_skipped = 5, .files_warned = 6, .chunks = 7,
                           .wall_seconds = 0.5, .cpu_seconds = 1.5, .peak_live_chunks = 9,
                           .syncs = 10, .bytes_mapped = 11};
    pm_pipeline_stats b = a;
    b.peak_live_chunks = 4;
    pm_pipeline_stats_add(&a, &b);
    CU_ASSERT(a.bytes_in == 2 && a.bytes_out == 4 && a.files_done == 6 && a.files_failed == 8);
    CU_ASSERT(a.files_skipped == 10 && a.files_warned == 12 && a.chunks == 14);
    CU_ASSERT(a.wall_seconds == 1.0 && a.cpu_seconds == 3.0);
    CU_ASSERT(a.syncs == 20 && a.bytes_mapped == 22);
    CU_ASSERT_EQUAL(a.peak_live_chunks, 9);
    b.peak_live_chunks = 12;
    pm_pipeline_stats_add(&a, &b);
    CU_ASSERT_EQUAL(a.peak_live_chunks, 12);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"invalid options", test_invalid_options},
        {"order kept with random delays", test_order_with_delays},
        {"live chunks bounded", test_token_bound},
        {"many files, events in source order", test_many_files},
        {"an error in one file among many", test_error_in_one_file},
        {"cancel mid-run", test_cancel_mid_run},
        {"cancel a blocked stream", test_cancel_blocked_stream},
        {"FIFO source", test_stream_source},
        {"skips and missing paths", test_skips_and_missing},
        {"file changing while read", test_file_changes},
        {"input replaced while read: kept, warned", test_input_replaced},
        {"FIFO swapped in after the walk: no blocking open", test_fifo_swapped_in},
        {"ENOSPC on output", test_enospc},
        {"empty file", test_empty_file},
        {"hook and link failures", test_hook_and_link_failures},
        {"small files in one step each", test_whole_files},
        {"small files in one step: failures", test_whole_failures},
        {"fsyncs only where they protect something", test_syncs},
        {"skipped files never stall the walk", test_skips_never_stall},
        {"directories swapped for links mid-run", test_dir_swapped_for_link},
        {"files found elsewhere, opened by directory", test_operand_dirs},
        {"stats added over runs", test_stats_add},
        {NULL, NULL},
    };
    return pm_test_run("pipeline", cases);
}
