/* test_loop.c - the event loop and the chunked reader/writer, every case
 * run against both engines ("[uring]" cases are skipped where io_uring is
 * unavailable; "[threads]" always run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pmap/aio.h>
#include <pmap/loop.h>
#include "loop/loop_engine.h"
#include "testutil.h"

static pm_loop_engine engine;       /* engine of the running case */
static char *tmp;                   /* scratch directory for the program */


static pm_loop *new_loop(unsigned depth)
{
    pm_loop_opts o = {.engine = engine, .queue_depth = depth, .io_threads = 3};
    pm_loop *l = NULL;
    CU_ASSERT_EQUAL_FATAL(pm_loop_new(&o, &l), 0);
    CU_ASSERT_STRING_EQUAL(pm_loop_engine_name(l), engine == PM_LOOP_URING ? "uring" : "threads");
    return l;
}

static char *path_of(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", tmp, name);
    return buf;
}

/* A file of n pseudo-random bytes; returns its content (malloc'd). */
static unsigned char *make_file(const char *name, size_t n, uint64_t seed)
{
    unsigned char *data = malloc(n ? n : 1);
    pm_test_fill_random(data, n, seed);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(path_of(name), data, n), 0);
    return data;
}

static int open_file(const char *name)
{
    int fd = open(path_of(name), O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    return fd;
}

/* Callback that stores its result in *(ssize_t *)arg. */
static void store_res(void *arg, ssize_t res)
{
    *(ssize_t *)arg = res;
}

/* Runs the loop until *res is no longer `unset`. */
#define UNSET ((ssize_t)0x7eadbeef)
static ssize_t run_until(pm_loop *l, ssize_t *res)
{
    while (*res == UNSET)
        CU_ASSERT_FATAL(pm_loop_run_once(l, 1) >= 0);
    return *res;
}

/* ================= loop: reads, writes, errors ================= */

typedef struct piece {
    unsigned char *dst;
    size_t want;
    ssize_t res;
    int *left;
} piece;

static void piece_done(void *arg, ssize_t res)
{
    piece *p = arg;
    p->res = res;
    (*p->left)--;
}

static void loop_read_chunks(void)
{
    const size_t n = 3 * 1048576 + 4321, chunk = 65537;
    unsigned char *data = make_file("chunks", n, 1);
    unsigned char *back = calloc(1, n + chunk);
    int fd = open_file("chunks");
    pm_loop *l = new_loop(8);
    size_t count = (n + chunk) / chunk + 1;   /* one more than needed: reads 0 */
    piece *ps = calloc(count, sizeof *ps);
    int left = (int)count;
    for (size_t i = 0; i < count; i++) {
        ps[i] = (piece){back + i * chunk, chunk, UNSET, &left};
        CU_ASSERT(pm_loop_read(l, fd, ps[i].dst, chunk, i * chunk, piece_done, &ps[i]) > 0);
    }
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT_EQUAL(left, 0);
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        size_t expect = i * chunk >= n ? 0 : (n - i * chunk < chunk ? n - i * chunk : chunk);
        CU_ASSERT_EQUAL(ps[i].res, (ssize_t)expect);
        total += ps[i].res > 0 ? (size_t)ps[i].res : 0;
    }
    CU_ASSERT_EQUAL(total, n);
    CU_ASSERT(memcmp(back, data, n) == 0);
    CU_ASSERT(pm__loop_peak_inflight(l) <= 8);
    pm_loop_free(l);
    close(fd);
    free(ps);
    free(back);
    free(data);
}
PM_TEST_BOTH(loop_read_chunks)

static void loop_empty_file(void)
{
    free(make_file("empty", 0, 0));
    int fd = open_file("empty");
    pm_loop *l = new_loop(0);
    char buf[100];
    ssize_t res = UNSET;
    CU_ASSERT(pm_loop_read(l, fd, buf, sizeof buf, 0, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), 0);
    res = UNSET;
    CU_ASSERT(pm_loop_read(l, fd, buf, sizeof buf, PM_LOOP_CUR, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), 0);
    pm_loop_free(l);
    close(fd);
}
PM_TEST_BOTH(loop_empty_file)

/* PM_LOOP_CUR on a regular file uses and advances the position. */
static void loop_file_position(void)
{
    int fd = open(path_of("pos"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pm_loop *l = new_loop(4);
    ssize_t res = UNSET;
    CU_ASSERT(pm_loop_write(l, fd, "abc", 3, PM_LOOP_CUR, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), 3);
    res = UNSET;
    CU_ASSERT(pm_loop_write(l, fd, "defg", 4, PM_LOOP_CUR, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), 4);
    CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_CUR), 7);
    lseek(fd, 2, SEEK_SET);
    char buf[16] = {0};
    res = UNSET;
    CU_ASSERT(pm_loop_read(l, fd, buf, sizeof buf, PM_LOOP_CUR, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), 5);
    CU_ASSERT_STRING_EQUAL(buf, "cdefg");
    CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_CUR), 7);
    /* O_APPEND: at the end whatever the position, which then is the end. */
    int afd = open(path_of("pos"), O_RDWR | O_APPEND | O_CLOEXEC);
    res = UNSET;
    CU_ASSERT(pm_loop_write(l, afd, "hi", 2, PM_LOOP_CUR, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), 2);
    CU_ASSERT_EQUAL(lseek(afd, 0, SEEK_CUR), 9);
    CU_ASSERT_EQUAL(pread(fd, buf, sizeof buf, 0), 9);
    CU_ASSERT(memcmp(buf, "abcdefghi", 9) == 0);
    pm_loop_free(l);
    close(afd);
    close(fd);
}
PM_TEST_BOTH(loop_file_position)

static void loop_errors(void)
{
    pm_loop *l = new_loop(4);
    char buf[64];
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ssize_t r1 = UNSET, r2 = UNSET, r3 = UNSET, r4 = UNSET;
    int bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
    close(bad);                                   /* now a closed descriptor */
    CU_ASSERT(pm_loop_read(l, dfd, buf, sizeof buf, 0, store_res, &r1) > 0);
    CU_ASSERT(pm_loop_read(l, bad, buf, sizeof buf, 0, store_res, &r2) > 0);
    CU_ASSERT(pm_loop_write(l, bad, buf, sizeof buf, 0, store_res, &r3) > 0);
    CU_ASSERT(pm_loop_fsync(l, bad, 0, store_res, &r4) > 0);
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT_EQUAL(r1, -EISDIR);
    CU_ASSERT_EQUAL(r2, -EBADF);
    CU_ASSERT_EQUAL(r3, -EBADF);
    CU_ASSERT_EQUAL(r4, -EBADF);
    CU_ASSERT_EQUAL(pm_loop_read(l, 0, NULL, 10, 0, store_res, &r1), -EINVAL);
    pm_loop_free(l);
    close(dfd);
}
PM_TEST_BOTH(loop_errors)

/* ---- a slow writer feeding a pipe ---- */

typedef struct feeder {
    int fd;
    const unsigned char *data;
    size_t len;
    unsigned delay_us;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    size_t off = 0, step = 1;
    while (off < f->len) {
        size_t n = step < f->len - off ? step : f->len - off;
        ssize_t w = write(f->fd, f->data + off, n);
        if (w <= 0)
            break;
        off += (size_t)w;
        step = step * 7 % 9973 + 1;            /* uneven pieces */
        usleep(f->delay_us);
    }
    close(f->fd);
    return NULL;
}

static void loop_pipe_short_reads(void)
{
    const size_t n = 200000;
    unsigned char *data = malloc(n), *back = malloc(n + 10);
    pm_test_fill_random(data, n, 7);
    for (int nonblock = 0; nonblock < 2; nonblock++) {
        int p[2];
        CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
        if (nonblock)   /* -EAGAIN from the read must be retried, not spun on */
            fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
        feeder f = {p[1], data, n, 100};
        pthread_t t;
        pthread_create(&t, NULL, feed, &f);
        pm_loop *l = new_loop(4);
        ssize_t r1 = UNSET, r2 = UNSET;
        CU_ASSERT(pm_loop_read(l, p[0], back, 150000, PM_LOOP_CUR, store_res, &r1) > 0);
        CU_ASSERT_EQUAL(run_until(l, &r1), 150000);           /* full despite short reads */
        CU_ASSERT(pm_loop_read(l, p[0], back + 150000, 60000, PM_LOOP_CUR, store_res, &r2) > 0);
        CU_ASSERT_EQUAL(run_until(l, &r2), (ssize_t)(n - 150000)); /* short only at EOF */
        CU_ASSERT(memcmp(back, data, n) == 0);
        pthread_join(t, NULL);
        pm_loop_free(l);
        close(p[0]);
    }
    free(data);
    free(back);
}
PM_TEST_BOTH(loop_pipe_short_reads)

static void loop_enospc(void)
{
    if (geteuid() != 0) {
        pm_test_skip("needs root to mount a small tmpfs");
        return;
    }
    char *dir = path_of("full");
    mkdir(dir, 0755);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        pm_test_skip("cannot mount a tmpfs here");
        rmdir(dir);
        return;
    }
    char file[4200];
    snprintf(file, sizeof file, "%s/f", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    size_t n = 2 * 1048576;
    unsigned char *buf = calloc(1, n);
    pm_loop *l = new_loop(4);
    ssize_t res = UNSET;
    CU_ASSERT(pm_loop_write(l, fd, buf, n, 0, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), -ENOSPC);
    /* At the file position too (io_uring's offset -1 retry would claim success). */
    ftruncate(fd, 0);
    lseek(fd, 0, SEEK_SET);
    res = UNSET;
    CU_ASSERT(pm_loop_write(l, fd, buf, n, PM_LOOP_CUR, store_res, &res) > 0);
    CU_ASSERT_EQUAL(run_until(l, &res), -ENOSPC);
    struct stat st;
    fstat(fd, &st);
    CU_ASSERT(st.st_size > 0 && st.st_size < (off_t)n);
    CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_CUR), st.st_size);   /* after what was written */
    /* The writer reports it too, through the write and through finish. */
    ftruncate(fd, 0);
    pm_writer *w;
    CU_ASSERT_FATAL(pm_writer_new(l, fd, &(pm_writer_opts){.sync = 1}, &w) == 0);
    ssize_t a = UNSET, b = UNSET;
    CU_ASSERT_EQUAL(pm_writer_append(w, 1, buf, n / 2, store_res, &b), 0);
    CU_ASSERT_EQUAL(pm_writer_append(w, 0, buf, n / 2, store_res, &a), 0);
    CU_ASSERT_EQUAL(pm_writer_finish(w), -ENOSPC);
    CU_ASSERT(a == -ENOSPC || b == -ENOSPC);
    pm_writer_free(w);
    pm_loop_free(l);
    close(fd);
    free(buf);
    CU_ASSERT_EQUAL(umount(dir), 0);
    rmdir(dir);
}
PM_TEST_BOTH(loop_enospc)

/* ================= timers, cancellation, run semantics ================= */

typedef struct tick {
    int idx;
    int *order, *n;
    double t0, fired;
} tick;

static void on_tick(void *arg, ssize_t res)
{
    tick *t = arg;
    CU_ASSERT_EQUAL(res, 0);
    t->fired = pm_test_now() - t->t0;
    t->order[(*t->n)++] = t->idx;
}

static void loop_timers_in_order(void)
{
    const uint64_t ms[] = {30, 10, 20, 0, 10};
    const int expect[] = {3, 1, 4, 2, 0};
    int order[5], n = 0;
    tick ticks[5];
    pm_loop *l = new_loop(0);
    double t0 = pm_test_now();
    for (int i = 0; i < 5; i++) {
        ticks[i] = (tick){i, order, &n, t0, 0};
        CU_ASSERT(pm_loop_timer(l, ms[i] * 1000000, on_tick, &ticks[i]) > 0);
    }
    CU_ASSERT_EQUAL(pm_loop_pending(l), 5);
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(order[i], expect[i]);
        CU_ASSERT(ticks[i].fired >= ms[i] / 1000.0 - 0.0005);
    }
    CU_ASSERT(pm_test_now() - t0 < 1.0);
    CU_ASSERT_EQUAL(pm_loop_pending(l), 0);
    pm_loop_free(l);
}
PM_TEST_BOTH(loop_timers_in_order)

static void count_cancel(void *arg, ssize_t res)
{
    if (res == -ECANCELED)
        (*(int *)arg)++;
}

static void loop_cancel(void)
{
    int p[2];
    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
    free(make_file("small", 8192, 3));
    int fd = open_file("small");
    pm_loop *l = new_loop(2);
    char pbuf[16], fbuf[20][512];
    int cancelled = 0;
    /* In flight: a read on a pipe nobody writes, a far timer; backlog: file reads. */
    int64_t rid = pm_loop_read(l, p[0], pbuf, sizeof pbuf, PM_LOOP_CUR, count_cancel, &cancelled);
    int64_t tid = pm_loop_timer(l, 10000000000ull, count_cancel, &cancelled);
    int64_t rid2 = pm_loop_read(l, p[0], pbuf, sizeof pbuf, PM_LOOP_CUR, count_cancel, &cancelled);
    for (int i = 0; i < 20; i++)
        CU_ASSERT(pm_loop_read(l, fd, fbuf[i], 512, 0, count_cancel, &cancelled) > 0);
    CU_ASSERT(rid > 0 && tid > 0 && rid2 > 0);
    CU_ASSERT_EQUAL(pm_loop_run_once(l, 0) >= 0, 1);    /* let the pipe reads start */
    usleep(20000);
    CU_ASSERT_EQUAL(pm_loop_cancel(l, rid), 0);
    CU_ASSERT_EQUAL(pm_loop_cancel(l, tid), 0);
    CU_ASSERT_EQUAL(pm_loop_cancel(l, rid), 0);          /* twice: still one callback */
    CU_ASSERT_EQUAL(pm_loop_cancel_all(l), 21);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT(pm_test_now() - t0 < 2.0);
    CU_ASSERT_EQUAL(cancelled, 23);
    CU_ASSERT_EQUAL(pm_loop_cancel(l, rid), -ENOENT);    /* done: stale id */
    CU_ASSERT_EQUAL(pm_loop_cancel(l, 12345678), -ENOENT);
    CU_ASSERT_EQUAL(pm_loop_cancel(l, -1), -ENOENT);
    /* Freeing a loop with a blocked pipe read cancels it and does not hang. */
    cancelled = 0;
    CU_ASSERT(pm_loop_read(l, p[0], pbuf, sizeof pbuf, PM_LOOP_CUR, count_cancel, &cancelled) > 0);
    pm_loop_run_once(l, 0);
    pm_loop_free(l);
    CU_ASSERT_EQUAL(cancelled, 1);
    close(p[0]);
    close(p[1]);
    close(fd);
}
PM_TEST_BOTH(loop_cancel)

typedef struct many {
    const unsigned char *data;
    size_t size;
    int done, bad;
} many;

typedef struct many_op {
    many *m;
    uint64_t off;
    unsigned char buf[4096];
} many_op;

static void many_done(void *arg, ssize_t res)
{
    many_op *o = arg;
    if (res != 4096 || memcmp(o->buf, o->m->data + o->off, 4096) != 0)
        o->m->bad++;
    o->m->done++;
}

/* Thousands of reads and timers with queue depth 8; and with the in-flight
 * cap lifted so the completion queue (4 x 8 entries) overflows. */
static void many_ops(unsigned cap)
{
    const size_t size = 1 << 20;
    const int nops = 5000;
    unsigned char *data = make_file("many", size, 5);
    int fd = open_file("many");
    pm_loop *l = new_loop(8);
    if (cap)
        pm__loop_set_max_inflight(l, cap);
    many m = {data, size, 0, 0};
    many_op *ops = malloc(nops * sizeof *ops);
    int timers = 0;
    for (int i = 0; i < nops; i++) {
        ops[i].m = &m;
        ops[i].off = (uint64_t)(i * 7919 % 256) * 4096;
        CU_ASSERT(pm_loop_read(l, fd, ops[i].buf, 4096, ops[i].off, many_done, &ops[i]) > 0);
        if (i % 5 == 0)
            CU_ASSERT(pm_loop_timer(l, 0, count_cancel, &timers) > 0);
    }
    CU_ASSERT_EQUAL(pm_loop_pending(l), (unsigned)(nops + nops / 5));
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT_EQUAL(m.done, nops);
    CU_ASSERT_EQUAL(m.bad, 0);
    CU_ASSERT_EQUAL(timers, 0);           /* fired with 0, not cancelled */
    CU_ASSERT_EQUAL(pm_loop_pending(l), 0);
    if (!cap)
        CU_ASSERT(pm__loop_peak_inflight(l) <= 8);
    pm_loop_free(l);
    close(fd);
    free(ops);
    free(data);
}

static void loop_many_depth8(void)
{
    many_ops(0);
}
PM_TEST_BOTH(loop_many_depth8)

static void loop_full_cq(void)
{
    many_ops(100000);
}
PM_TEST_BOTH(loop_full_cq)

/* ---- posts from several threads ---- */

typedef struct poster {
    pm_loop *loop;
    atomic_int *sum;
    int n;
} poster;

static void on_post(void *arg, ssize_t res)
{
    CU_ASSERT_EQUAL(res, 0);
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void *post_many(void *arg)
{
    poster *p = arg;
    for (int i = 0; i < p->n; i++) {
        CU_ASSERT_EQUAL(pm_loop_post(p->loop, on_post, p->sum), 0);
        if (i % 1000 == 0)
            usleep(500);          /* let the loop fall asleep now and then */
    }
    pm_loop_release(p->loop);
    return NULL;
}

static void loop_posts_threads(void)
{
    enum { NT = 4, PER = 20000 };
    pm_loop *l = new_loop(8);
    atomic_int sum;
    atomic_init(&sum, 0);
    poster ps[NT];
    pthread_t t[NT];
    for (int i = 0; i < NT; i++) {
        ps[i] = (poster){l, &sum, PER};
        pm_loop_hold(l);
        pthread_create(&t[i], NULL, post_many, &ps[i]);
    }
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);      /* returns only after all releases */
    CU_ASSERT_EQUAL(atomic_load(&sum), NT * PER);
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    pm_loop_free(l);
}
PM_TEST_BOTH(loop_posts_threads)

static void *post_late(void *arg)
{
    poster *p = arg;
    usleep(50000);
    pm_loop_post(p->loop, on_post, p->sum);
    return NULL;
}

static void *release_late(void *arg)
{
    usleep(50000);
    pm_loop_release(arg);
    return NULL;
}

/* run_once(wait) blocks for a post; a release ends run(); stop works. */
static void loop_run_semantics(void)
{
    pm_loop *l = new_loop(4);
    CU_ASSERT_EQUAL(pm_loop_run_once(l, 0), 0);
    CU_ASSERT_EQUAL(pm_loop_run_once(l, 1), 0);    /* nothing pending: no block */
    atomic_int sum;
    atomic_init(&sum, 0);
    poster p = {l, &sum, 1};
    pthread_t t;
    pm_loop_hold(l);
    pthread_create(&t, NULL, post_late, &p);
    double t0 = pm_test_now();
    int ran = 0;
    while (atomic_load(&sum) == 0)
        ran += pm_loop_run_once(l, 1);
    CU_ASSERT_EQUAL(ran, 1);
    CU_ASSERT(pm_test_now() - t0 >= 0.04);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, release_late, l);
    t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT(pm_test_now() - t0 >= 0.04);
    pthread_join(t, NULL);
    /* A timer makes run_once(1) wait about that long and run one callback. */
    ssize_t res = UNSET;
    pm_loop_timer(l, 20000000, store_res, &res);
    t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_loop_run_once(l, 1), 1);
    CU_ASSERT(pm_test_now() - t0 >= 0.019);
    pm_loop_free(l);
}
PM_TEST_BOTH(loop_run_semantics)

/* The owner frees the loop as soon as its run returns, without joining the
 * thread whose post and release let it return: pm_loop_free must wait for
 * that thread to leave pm_loop_post/pm_loop_release (under ASan a missing
 * wait shows as a use after free of the loop). */
static void *post_then_release(void *arg)
{
    poster *p = arg;
    pm_loop_post(p->loop, on_post, p->sum);
    pm_loop_release(p->loop);
    return NULL;
}

static void loop_free_after_release(void)
{
    enum { ROUNDS = 300 };
    atomic_int sum;
    atomic_init(&sum, 0);
    for (int i = 0; i < ROUNDS; i++) {
        pm_loop *l = new_loop(4);
        poster p = {l, &sum, 1};
        pthread_t t;
        pm_loop_hold(l);
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, post_then_release, &p), 0);
        CU_ASSERT_EQUAL(pm_loop_run(l), 0);
        pm_loop_free(l);            /* the poster may still be inside a call */
        pthread_join(t, NULL);
    }
    CU_ASSERT_EQUAL(atomic_load(&sum), ROUNDS);
}
PM_TEST_BOTH(loop_free_after_release)

/* ---- callbacks that queue, post and stop ---- */

typedef struct chain {
    pm_loop *loop;
    int fd, steps, posts;
    char buf[100];
} chain;

static void chain_post(void *arg, ssize_t res)
{
    (void)res;
    ((chain *)arg)->posts++;
}

static void chain_step(void *arg, ssize_t res)
{
    chain *c = arg;
    CU_ASSERT_EQUAL(res, 100);
    if (++c->steps == 5) {
        pm_loop_stop(c->loop);
        return;
    }
    CU_ASSERT(pm_loop_read(c->loop, c->fd, c->buf, 100, (uint64_t)c->steps * 100, chain_step, c) > 0);
    CU_ASSERT_EQUAL(pm_loop_post(c->loop, chain_post, c), 0);
}

static void loop_callbacks_queue(void)
{
    free(make_file("chain", 1000, 9));
    chain c = {new_loop(2), open_file("chain"), 0, 0, {0}};
    ssize_t far = UNSET;
    int64_t tid = pm_loop_timer(c.loop, 5000000000ull, store_res, &far);
    CU_ASSERT(pm_loop_read(c.loop, c.fd, c.buf, 100, 0, chain_step, &c) > 0);
    CU_ASSERT_EQUAL(pm_loop_run(c.loop), 0);      /* stopped, timer still pending */
    CU_ASSERT_EQUAL(c.steps, 5);
    CU_ASSERT_EQUAL(c.posts, 4);
    CU_ASSERT_EQUAL(pm_loop_pending(c.loop), 1);
    CU_ASSERT_EQUAL(pm_loop_cancel(c.loop, tid), 0);
    CU_ASSERT_EQUAL(pm_loop_run(c.loop), 0);
    CU_ASSERT_EQUAL(far, -ECANCELED);
    pm_loop_free(c.loop);
    close(c.fd);
}
PM_TEST_BOTH(loop_callbacks_queue)

static void loop_group(void)
{
    unsigned char *data = make_file("group", 4096, 11);
    int fd = open_file("group");
    pm_loop *l = new_loop(4);
    pm_loop_group *g;
    CU_ASSERT_FATAL(pm_loop_group_new(l, &g) == 0);
    char bufs[4][1024];
    ssize_t res[5];
    for (int i = 0; i < 4; i++) {
        res[i] = UNSET;
        int64_t id = pm_loop_read(l, fd, bufs[i], 1024, (uint64_t)i * 1024, store_res, &res[i]);
        CU_ASSERT_EQUAL(pm_loop_group_add(g, id), 0);
        CU_ASSERT_EQUAL(pm_loop_group_add(g, id), -EBUSY);
    }
    CU_ASSERT_EQUAL(pm_loop_group_pending(g), 4);
    CU_ASSERT_EQUAL(pm_loop_group_wait(g), 0);
    for (int i = 0; i < 4; i++)
        CU_ASSERT(res[i] == 1024 && memcmp(bufs[i], data + i * 1024, 1024) == 0);
    /* One failing member: its error is the group's. */
    res[4] = UNSET;
    CU_ASSERT_EQUAL(pm_loop_group_add(g, pm_loop_read(l, fd, bufs[0], 10, 0, NULL, NULL)), 0);
    CU_ASSERT_EQUAL(pm_loop_group_add(g, pm_loop_read(l, -1, bufs[1], 10, 0, store_res, &res[4])), 0);
    CU_ASSERT_EQUAL(pm_loop_group_wait(g), -EBADF);
    /* Cancelling a group. */
    CU_ASSERT_EQUAL(pm_loop_group_add(g, pm_loop_timer(l, 10000000000ull, NULL, NULL)), 0);
    CU_ASSERT_EQUAL(pm_loop_group_add(g, 999), -ENOENT);
    pm_loop_group_cancel(g);
    CU_ASSERT_EQUAL(pm_loop_group_wait(g), -ECANCELED);
    pm_loop_group_free(g);
    pm_loop_free(l);
    close(fd);
    free(data);
}
PM_TEST_BOTH(loop_group)

static void loop_open_statx_close(void)
{
    free(make_file("meta", 12345, 13));
    pm_loop *l = new_loop(4);
    struct statx stx;
    ssize_t r1 = UNSET, r2 = UNSET, r3 = UNSET;
    char *meta = strdup(path_of("meta")), *nope = strdup(path_of("nope"));
    CU_ASSERT(pm_loop_statx(l, AT_FDCWD, meta, 0, STATX_SIZE, &stx, store_res, &r1) > 0);
    CU_ASSERT(pm_loop_openat(l, AT_FDCWD, meta, O_RDONLY | O_CLOEXEC, 0, store_res, &r2) > 0);
    CU_ASSERT(pm_loop_openat(l, AT_FDCWD, nope, O_RDONLY, 0, store_res, &r3) > 0);
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT_EQUAL(r1, 0);
    CU_ASSERT_EQUAL(stx.stx_size, 12345);
    CU_ASSERT_FATAL(r2 >= 0);
    CU_ASSERT_EQUAL(r3, -ENOENT);
    r1 = UNSET;
    CU_ASSERT(pm_loop_close(l, (int)r2, store_res, &r1) > 0);
    CU_ASSERT_EQUAL(run_until(l, &r1), 0);
    CU_ASSERT(fcntl((int)r2, F_GETFD) < 0 && errno == EBADF);
    pm_loop_free(l);
    free(meta);
    free(nope);
}
PM_TEST_BOTH(loop_open_statx_close)

/* ================= reader ================= */

/* Reads fd to the end through a pull-mode reader; returns the bytes. */
static unsigned char *pull_all(pm_loop *l, int fd, const pm_reader_opts *o, size_t *len, int *status)
{
    pm_reader *r;
    *status = pm_reader_new(l, fd, o, &r);
    if (*status < 0)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *out = malloc(cap);
    pm_aio_chunk *c;
    uint64_t seq = 0;
    while ((*status = pm_reader_next(r, &c)) == 1) {
        CU_ASSERT_EQUAL(c->seq, seq++);
        CU_ASSERT_EQUAL(c->offset, (o ? o->offset : 0) + n);
        if (n + c->len > cap)
            out = realloc(out, cap = 2 * (n + c->len));
        memcpy(out + n, c->data, c->len);
        n += c->len;
        int last_was_short = c->len < (o && o->chunk_size ? o->chunk_size : 1u << 20);
        pm_reader_release(r, c);
        if (last_was_short)   /* a short chunk is the last one */
            CU_ASSERT_EQUAL(pm_reader_next(r, &c), 0);
        if (last_was_short)
            break;
    }
    if (*status == 1)
        *status = 0;
    CU_ASSERT_EQUAL(pm_reader_bytes(r), n);
    pm_reader_free(r);
    *len = n;
    return out;
}

static void reader_exact(void)
{
    const size_t n = 5 * 1048576 + 12345;
    unsigned char *data = make_file("rd", n, 21);
    int fd = open_file("rd");
    pm_loop *l = new_loop(16);
    pm_reader_opts o = {.chunk_size = 65537, .ahead = 3, .buffers = 5};
    size_t len;
    int st;
    unsigned char *back = pull_all(l, fd, &o, &len, &st);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL_FATAL(len, n);
    CU_ASSERT(memcmp(back, data, n) == 0);
    free(back);
    /* A range: offset and length. */
    o = (pm_reader_opts){.chunk_size = 1000, .offset = 777, .length = 100001};
    back = pull_all(l, fd, &o, &len, &st);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL_FATAL(len, 100001);
    CU_ASSERT(memcmp(back, data + 777, len) == 0);
    free(back);
    pm_loop_free(l);
    close(fd);
    free(data);
}
PM_TEST_BOTH(reader_exact)

typedef struct pushed {
    pm_reader *r;
    unsigned char *out;
    size_t n;
    int ends, status, chunks_after_end;
    uint64_t seq;
} pushed;

static void on_chunk(void *arg, pm_aio_chunk *c, int status)
{
    pushed *p = arg;
    if (!c) {
        p->ends++;
        p->status = status;
        return;
    }
    if (p->ends)
        p->chunks_after_end++;
    CU_ASSERT_EQUAL(c->seq, p->seq++);
    memcpy(p->out + p->n, c->data, c->len);
    p->n += c->len;
    pm_reader_release(p->r, c);
}

static void reader_push_and_empty(void)
{
    const size_t n = 2 * 1048576 + 3;
    unsigned char *data = make_file("push", n, 23);
    free(make_file("empty2", 0, 0));
    pm_loop *l = new_loop(8);
    for (int empty = 0; empty < 2; empty++) {
        int fd = open_file(empty ? "empty2" : "push");
        pushed p = {.out = malloc(n)};
        pm_reader_opts o = {.chunk_size = 100003, .ahead = 4, .on_chunk = on_chunk, .arg = &p};
        CU_ASSERT_FATAL(pm_reader_new(l, fd, &o, &p.r) == 0);
        CU_ASSERT_EQUAL(pm_reader_next(p.r, &(pm_aio_chunk *){0}), -EINVAL);
        CU_ASSERT_EQUAL(pm_loop_run(l), 0);
        CU_ASSERT_EQUAL(p.ends, 1);
        CU_ASSERT_EQUAL(p.status, 0);
        CU_ASSERT_EQUAL(p.chunks_after_end, 0);
        CU_ASSERT_EQUAL(p.n, empty ? 0 : n);
        CU_ASSERT(empty || memcmp(p.out, data, n) == 0);
        pm_reader_free(p.r);
        free(p.out);
        close(fd);
    }
    /* Pull mode on an empty file: end at once, and again. */
    int fd = open_file("empty2");
    pm_reader *r;
    pm_aio_chunk *c;
    CU_ASSERT_FATAL(pm_reader_new(l, fd, NULL, &r) == 0);
    CU_ASSERT_EQUAL(pm_reader_next(r, &c), 0);
    CU_ASSERT_EQUAL(pm_reader_next(r, &c), 0);
    pm_reader_free(r);
    close(fd);
    CU_ASSERT_EQUAL(pm_loop_pending(l), 0);
    pm_loop_free(l);
    free(data);
}
PM_TEST_BOTH(reader_push_and_empty)

static void reader_pipe(void)
{
    const size_t n = 300000, chunk = 10000;
    unsigned char *data = malloc(n);
    pm_test_fill_random(data, n, 29);
    int p[2];
    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
    feeder f = {p[1], data, n, 50};
    pthread_t t;
    pthread_create(&t, NULL, feed, &f);
    pm_loop *l = new_loop(4);
    pm_reader *r;
    CU_ASSERT_FATAL(pm_reader_new(l, p[0], &(pm_reader_opts){.chunk_size = chunk, .ahead = 8}, &r) == 0);
    pm_aio_chunk *c;
    size_t got = 0;
    int st, bad = 0;
    while ((st = pm_reader_next(r, &c)) == 1) {
        if (c->len != chunk && got + c->len != n)
            bad++;                               /* only the last may be short */
        if (c->offset != got || memcmp(c->data, data + got, c->len) != 0)
            bad++;
        got += c->len;
        pm_reader_release(r, c);
    }
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(got, n);
    CU_ASSERT_EQUAL(bad, 0);
    pthread_join(t, NULL);
    pm_reader_free(r);
    pm_loop_free(l);
    close(p[0]);
    free(data);
}
PM_TEST_BOTH(reader_pipe)

static void reader_errors(void)
{
    pm_loop *l = new_loop(4);
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    size_t len;
    int st;
    free(pull_all(l, dfd, NULL, &len, &st));
    CU_ASSERT_EQUAL(st, -EISDIR);
    /* The freed reader's reads may still be running on the descriptor (the
     * threads engine's pread): they end before it is closed. */
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT_EQUAL(pm_loop_pending(l), 0);
    close(dfd);
    int bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
    close(bad);
    pm_reader *r;
    CU_ASSERT_EQUAL(pm_reader_new(l, bad, NULL, &r), -EBADF);
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);      /* the freed reader's cancelled reads */
    CU_ASSERT_EQUAL(pm_loop_pending(l), 0);
    pm_loop_free(l);
}
PM_TEST_BOTH(reader_errors)

static void reader_shrinking(void)
{
    const size_t n = 8 * 1048576, cut = 1048576 + 777, chunk = 65536;
    unsigned char *data = make_file("shrink", n, 31);
    int fd = open_file("shrink");
    pm_loop *l = new_loop(8);
    pm_reader *r;
    CU_ASSERT_FATAL(pm_reader_new(l, fd, &(pm_reader_opts){.chunk_size = chunk, .ahead = 2, .buffers = 3}, &r) == 0);
    pm_aio_chunk *c;
    size_t got = 0;
    int st, bad = 0;
    double t0 = pm_test_now();
    while ((st = pm_reader_next(r, &c)) == 1) {
        if (c->offset != got || memcmp(c->data, data + got, c->len) != 0)
            bad++;
        got += c->len;
        pm_reader_release(r, c);
        if (got == chunk)
            CU_ASSERT_EQUAL(truncate(path_of("shrink"), (off_t)cut), 0);
    }
    CU_ASSERT_EQUAL(st, 0);                  /* a clean end of file */
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(got >= cut && got <= cut + 3 * chunk);
    CU_ASSERT(pm_test_now() - t0 < 5.0);
    pm_reader_free(r);
    pm_loop_free(l);
    close(fd);
    free(data);
}
PM_TEST_BOTH(reader_shrinking)

/* Chunks released from other threads (the pipeline's pattern). */
typedef struct relay {
    pm_reader *r;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pm_aio_chunk *q[64];
    int qn, done;
    size_t n;
    unsigned char *out;
} relay;

static void relay_chunk(void *arg, pm_aio_chunk *c, int status)
{
    relay *x = arg;
    CU_ASSERT_EQUAL(status, 0);
    pthread_mutex_lock(&x->mu);
    if (c)
        x->q[x->qn++] = c;
    else
        x->done = 1;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static void *relay_worker(void *arg)
{
    relay *x = arg;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (x->qn == 0 && !x->done)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->qn == 0)
            break;
        pm_aio_chunk *c = x->q[0];
        memmove(x->q, x->q + 1, --x->qn * sizeof x->q[0]);
        memcpy(x->out + c->offset, c->data, c->len);
        x->n += c->len;
        pthread_mutex_unlock(&x->mu);
        pm_reader_release(x->r, c);
        pthread_mutex_lock(&x->mu);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

static void reader_release_elsewhere(void)
{
    const size_t n = 4 * 1048576 + 99;
    unsigned char *data = make_file("relay", n, 37);
    int fd = open_file("relay");
    pm_loop *l = new_loop(8);
    relay x = {.out = malloc(n)};
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.cv, NULL);
    pm_reader_opts o = {.chunk_size = 65536, .ahead = 4, .buffers = 6, .on_chunk = relay_chunk, .arg = &x};
    CU_ASSERT_FATAL(pm_reader_new(l, fd, &o, &x.r) == 0);
    pthread_t t;
    pthread_create(&t, NULL, relay_worker, &x);
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);   /* held until every chunk is back */
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(x.n, n);
    CU_ASSERT(memcmp(x.out, data, n) == 0);
    pm_reader_free(x.r);
    pm_loop_free(l);
    pthread_mutex_destroy(&x.mu);
    pthread_cond_destroy(&x.cv);
    close(fd);
    free(x.out);
    free(data);
}
PM_TEST_BOTH(reader_release_elsewhere)

static void reader_free_midway(void)
{
    free(make_file("mid", 4 * 1048576, 41));
    int fd = open_file("mid");
    pm_loop *l = new_loop(8);
    pm_reader *r;
    CU_ASSERT_FATAL(pm_reader_new(l, fd, &(pm_reader_opts){.chunk_size = 65536, .ahead = 8}, &r) == 0);
    pm_aio_chunk *c;
    CU_ASSERT_EQUAL(pm_reader_next(r, &c), 1);
    pm_reader_free(r);                    /* reads in flight, a chunk held */
    CU_ASSERT_EQUAL(pm_loop_run(l), 0);
    CU_ASSERT_EQUAL(pm_loop_pending(l), 0);
    pm_loop_free(l);
    close(fd);
}
PM_TEST_BOTH(reader_free_midway)

/* ================= writer ================= */

static void writer_append_order(void)
{
    const size_t n = 1 << 20, k = 7;
    unsigned char *data = malloc(n);
    pm_test_fill_random(data, n, 43);
    pm_loop *l = new_loop(4);
    for (int pipe_out = 0; pipe_out < 2; pipe_out++) {
        int fd, p[2] = {-1, -1};
        if (pipe_out) {
            CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
            fd = p[1];
            fcntl(fd, F_SETPIPE_SZ, 4096);   /* small: writes are short */
            fcntl(p[0], F_SETFL, O_NONBLOCK);  /* the test drains it between loop turns */
        } else {
            fd = open(path_of("out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            write(fd, "HDR", 3);            /* appending starts at the position */
        }
        pm_writer *w;
        CU_ASSERT_FATAL(pm_writer_new(l, fd, &(pm_writer_opts){.sync = 2}, &w) == 0);
        const int order[7] = {3, 1, 0, 6, 2, 5, 4};
        size_t piece = n / k;
        ssize_t res[7];
        for (int i = 0; i < 7; i++) {
            int s = order[i];
            size_t len = s == 6 ? n - 6 * piece : piece;
            res[s] = UNSET;
            CU_ASSERT_EQUAL(pm_writer_append(w, (uint64_t)s, data + s * piece, len, store_res, &res[s]), 0);
        }
        CU_ASSERT_EQUAL(pm_writer_append(w, 2, data, 1, NULL, NULL), -EEXIST);
        unsigned char *back = NULL;
        if (pipe_out) {       /* drain the pipe concurrently */
            back = malloc(n);
            size_t got = 0;
            while (got < n) {
                pm_loop_run_once(l, 0);
                ssize_t m = read(p[0], back + got, n - got);
                if (m > 0)
                    got += (size_t)m;
            }
        }
        CU_ASSERT_EQUAL(pm_writer_finish(w), 0);
        CU_ASSERT_EQUAL(pm_writer_bytes(w), n);
        for (int s = 0; s < 7; s++)
            CU_ASSERT_EQUAL(res[s], (ssize_t)(s == 6 ? n - 6 * piece : piece));
        pm_writer_free(w);
        if (pipe_out) {
            CU_ASSERT(memcmp(back, data, n) == 0);
            close(p[0]);
            close(p[1]);
        } else {
            CU_ASSERT_EQUAL(lseek(fd, 0, SEEK_CUR), (off_t)(n + 3));
            close(fd);
            size_t len;
            back = pm_test_read_file(path_of("out"), &len);
            CU_ASSERT_EQUAL_FATAL(len, n + 3);
            CU_ASSERT(memcmp(back, "HDR", 3) == 0 && memcmp(back + 3, data, n) == 0);
        }
        free(back);
    }
    pm_loop_free(l);
    free(data);
}
PM_TEST_BOTH(writer_append_order)

static void writer_at_and_gap(void)
{
    pm_loop *l = new_loop(4);
    int fd = open(path_of("wat"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pm_writer *w;
    CU_ASSERT_FATAL(pm_writer_new(l, fd, &(pm_writer_opts){.sync = 1}, &w) == 0);
    ssize_t a = UNSET, b = UNSET, gap = UNSET;
    CU_ASSERT_EQUAL(pm_writer_write_at(w, 5, "world", 5, store_res, &a), 0);
    CU_ASSERT_EQUAL(pm_writer_write_at(w, 0, "hello", 5, store_res, &b), 0);
    CU_ASSERT_EQUAL(pm_writer_append(w, 1, "x", 1, store_res, &gap), 0);  /* no seq 0 */
    CU_ASSERT_EQUAL(pm_writer_finish(w), -EINVAL);
    CU_ASSERT_EQUAL(a, 5);
    CU_ASSERT_EQUAL(b, 5);
    CU_ASSERT_EQUAL(gap, -ECANCELED);
    CU_ASSERT_EQUAL(pm_writer_write_at(w, 0, "x", 1, NULL, NULL), -EINVAL);
    pm_writer_free(w);
    char buf[16] = {0};
    CU_ASSERT_EQUAL(pread(fd, buf, sizeof buf, 0), 10);
    CU_ASSERT_STRING_EQUAL(buf, "helloworld");
    int p[2];
    CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
    CU_ASSERT_FATAL(pm_writer_new(l, p[1], NULL, &w) == 0);
    CU_ASSERT_EQUAL(pm_writer_write_at(w, 0, "x", 1, NULL, NULL), -ESPIPE);
    pm_writer_free(w);
    CU_ASSERT_EQUAL(pm_writer_new(l, -1, NULL, &w), -EBADF);
    pm_loop_free(l);
    close(fd);
    close(p[0]);
    close(p[1]);
}
PM_TEST_BOTH(writer_at_and_gap)

/* ================= engine selection ================= */

static void engine_choice(void)
{
    pm_loop *l;
    setenv("PMAP_IO", "threads", 1);
    CU_ASSERT_FATAL(pm_loop_new(NULL, &l) == 0);
    CU_ASSERT_STRING_EQUAL(pm_loop_engine_name(l), "threads");
    pm_loop_free(l);
    setenv("PMAP_IO", "uring", 1);
    int rc = pm_loop_new(NULL, &l);
    if (pm_test_uring_available()) {
        CU_ASSERT_FATAL(rc == 0);
        CU_ASSERT_STRING_EQUAL(pm_loop_engine_name(l), "uring");
        pm_loop_free(l);
    } else {
        CU_ASSERT(rc == -ENOSYS || rc == -EPERM);
    }
    setenv("PMAP_IO", "fast", 1);           /* malformed: an error, not ignored */
    CU_ASSERT(pm_loop_new(NULL, &l) == -EINVAL);
    CU_ASSERT_FATAL(pm_loop_new(&(pm_loop_opts){.engine = PM_LOOP_THREADS}, &l) == 0);
    pm_loop_free(l);                        /* an explicit engine does not read it */
    unsetenv("PMAP_IO");
    if (pm_test_uring_available()) {   /* the deepest ring (its CQ is clamped) */
        CU_ASSERT_FATAL(pm_loop_new(&(pm_loop_opts){.engine = PM_LOOP_URING, .queue_depth = 32768}, &l) == 0);
        pm_loop_free(l);
    }
    CU_ASSERT_FATAL(pm_loop_new(&(pm_loop_opts){.engine = PM_LOOP_THREADS}, &l) == 0);
    CU_ASSERT_STRING_EQUAL(pm_loop_engine_name(l), "threads");
    pm_loop_free(l);
    CU_ASSERT_EQUAL(pm_loop_new(&(pm_loop_opts){.engine = (pm_loop_engine)9}, &l), -EINVAL);
    CU_ASSERT_EQUAL(pm_loop_new(&(pm_loop_opts){.queue_depth = 1u << 20}, &l), -EINVAL);
    pm_loop_free(NULL);
}

/* In a child whose seccomp filter makes io_uring_setup fail with err (as
 * Docker's default profile does), AUTO falls back to threads, says so once
 * when verbose, and works; a forced uring reports the error. */
static int child_without_uring(int err, int errfd)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return 77;
    dup2(errfd, 2);
    pm_loop *l;
    if (pm_loop_new(&(pm_loop_opts){.engine = PM_LOOP_URING}, &l) != -err)
        return 1;
    if (pm_loop_new(&(pm_loop_opts){.verbose = 1}, &l) != 0 || strcmp(pm_loop_engine_name(l), "threads"))
        return 2;
    ssize_t res = UNSET;
    char buf[8];
    pm_loop_read(l, 0, buf, sizeof buf, 0, store_res, &res);   /* stdin: /dev/null */
    pm_loop_run(l);
    pm_loop_free(l);
    return res == 0 ? 0 : 3;
}

static void engine_fallback(void)
{
    const int errs[] = {EPERM, ENOSYS};
    for (int i = 0; i < 2; i++) {
        int p[2];
        CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open("/dev/null", O_RDONLY);
            dup2(fd, 0);
            _exit(child_without_uring(errs[i], p[1]));
        }
        close(p[1]);
        char msg[1024] = {0};
        size_t n = 0;
        ssize_t m;
        while (n < sizeof msg - 1 && (m = read(p[0], msg + n, sizeof msg - 1 - n)) > 0)
            n += (size_t)m;
        close(p[0]);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            pm_test_skip("cannot install a seccomp filter here");
            return;
        }
        CU_ASSERT_EQUAL(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
        const char *hit = strstr(msg, "io_uring unavailable");
        CU_ASSERT_PTR_NOT_NULL(hit);
        CU_ASSERT(hit && !strstr(hit + 1, "io_uring unavailable"));   /* once */
    }
}

int main(void)
{
    tmp = pm_test_tmpdir();
    if (!tmp)
        return 1;
    static const pm_test_case cases[] = {
        PM_TEST_CASE2(loop_read_chunks, "reads in chunks that do not divide the file"),
        PM_TEST_CASE2(loop_empty_file, "empty file reads 0"),
        PM_TEST_CASE2(loop_file_position, "PM_LOOP_CUR on files uses and advances the position"),
        PM_TEST_CASE2(loop_errors, "directory, closed descriptor"),
        PM_TEST_CASE2(loop_pipe_short_reads, "pipe: short reads resubmitted, EAGAIN polled"),
        PM_TEST_CASE2(loop_enospc, "write to a full filesystem: -ENOSPC"),
        PM_TEST_CASE2(loop_timers_in_order, "timers fire in order"),
        PM_TEST_CASE2(loop_cancel, "cancel pending operations"),
        PM_TEST_CASE2(loop_many_depth8, "5000 operations, queue depth 8"),
        PM_TEST_CASE2(loop_full_cq, "full completion queue loses nothing"),
        PM_TEST_CASE2(loop_posts_threads, "posts from 4 threads"),
        PM_TEST_CASE2(loop_run_semantics, "run_once waits for posts, release ends run"),
        PM_TEST_CASE2(loop_free_after_release, "freed as soon as a post and release end the run"),
        PM_TEST_CASE2(loop_callbacks_queue, "callbacks queue, post and stop"),
        PM_TEST_CASE2(loop_group, "gather groups"),
        PM_TEST_CASE2(loop_open_statx_close, "openat, statx, close"),
        PM_TEST_CASE2(reader_exact, "reader: byte-exact, odd chunk size, ranges"),
        PM_TEST_CASE2(reader_push_and_empty, "reader: push mode, empty file"),
        PM_TEST_CASE2(reader_pipe, "reader: slow pipe gives full chunks"),
        PM_TEST_CASE2(reader_errors, "reader: directory, closed descriptor"),
        PM_TEST_CASE2(reader_shrinking, "reader: file shrinking while read"),
        PM_TEST_CASE2(reader_release_elsewhere, "reader: chunks released by another thread"),
        PM_TEST_CASE2(reader_free_midway, "reader: freed with reads in flight"),
        PM_TEST_CASE2(writer_append_order, "writer: appends in order, file and pipe"),
        PM_TEST_CASE2(writer_at_and_gap, "writer: offsets, gaps, pipes"),
        {"engine choice (PMAP_IO, forced, invalid)", engine_choice},
        {"fallback to threads when io_uring is blocked (seccomp)", engine_fallback},
        {NULL, NULL},
    };
    int rc = pm_test_run("loop", cases);
    pm_test_rmtree(tmp);
    free(tmp);
    return rc;
}
