/* bench_read.c - read throughput of pm_reader against `cat FILE >/dev/null`
 * and a plain read() loop, on a file in the page cache.
 *
 *   bench_read [-s MiB] [-r reps] [-f FILE] [-q]
 *
 * Without -f it writes a file of -s MiB (default 1024) in $TMPDIR or /tmp,
 * reads it once to be sure it is cached, and deletes it at the end. Each
 * figure is the best of -r runs (default 2), in GB/s (10^9 bytes); next to
 * each reader figure, a plain read() loop with a buffer of the chunk size,
 * run alternately with it, and the ratio reader/read(). The reader runs in
 * pull mode with a consumer that only releases each chunk
 * (as cat only discards), for both engines, several chunk sizes and
 * read-ahead depths (the loop's queue depth is set to the same number), and
 * for io_uring with async_reads off and on. -q: a shorter grid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pmap/aio.h>
#include <pmap/loop.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int make_file(const char *path, size_t mib)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t n = 1 << 20;
    unsigned char *buf = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    int rc = 0;
    for (size_t i = 0; i < mib && rc == 0; i++) {
        buf[i % n] ^= 1;                 /* no two MiB alike */
        if (write(fd, buf, n) != (ssize_t)n)
            rc = -EIO;
    }
    free(buf);
    close(fd);
    return rc;
}

/* Seconds for one `cat FILE >/dev/null`. */
static double time_cat(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cat '%s' >/dev/null", path);
    double t0 = now();
    if (system(cmd) != 0)
        return -1;
    return now() - t0;
}

static double time_read(const char *path, size_t bufsize)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = malloc(bufsize);
    double t0 = now();
    while (read(fd, buf, bufsize) > 0) {
    }
    double t = now() - t0;
    free(buf);
    close(fd);
    return t;
}

static double time_reader(const char *path, pm_loop_engine e, int async,
                          size_t chunk, unsigned ahead, uint64_t expect)
{
    pm_loop_opts lo = {.engine = e, .queue_depth = ahead, .async_reads = async};
    pm_loop *l;
    if (pm_loop_new(&lo, &l) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    double t0 = now();
    pm_reader *r;
    pm_reader_opts ro = {.chunk_size = chunk, .ahead = ahead, .buffers = ahead + 1};
    uint64_t got = 0;
    int st = pm_reader_new(l, fd, &ro, &r);
    if (st == 0) {
        pm_aio_chunk *c;
        while ((st = pm_reader_next(r, &c)) == 1) {
            got += c->len;
            pm_reader_release(r, c);
        }
        pm_reader_free(r);
    }
    double t = now() - t0;
    pm_loop_free(l);
    close(fd);
    if (st < 0 || got != expect) {
        fprintf(stderr, "bench_read: reader failed (%s), %llu of %llu bytes\n",
                strerror(-st), (unsigned long long)got, (unsigned long long)expect);
        return -1;
    }
    return t;
}

typedef struct conf {
    pm_loop_engine engine;
    int async;
    size_t chunk;
    unsigned ahead;
} conf;

static void row(const char *what, double best, double ref, double bytes)
{
    if (best <= 0) {
        printf("| %-38s | failed |        |       |\n", what);
        return;
    }
    double g = bytes / best / 1e9;
    if (ref > 0)
        printf("| %-38s | %6.2f | %6.2f | %5.2f |\n", what, g, bytes / ref / 1e9, ref / best);
    else
        printf("| %-38s | %6.2f |        |       |\n", what, g);
}

static void keep_best(double *best, double t)
{
    if (t > 0 && (*best < 0 || t < *best))
        *best = t;
}

static void run_grid(const char *path, uint64_t size, int reps, int quick)
{
    static const size_t chunks_full[] = {128 << 10, 1 << 20, 4 << 20};
    static const unsigned aheads_full[] = {1, 4, 16};
    static const size_t chunks_quick[] = {1 << 20};
    static const unsigned aheads_quick[] = {1, 8};
    const size_t *chunks = quick ? chunks_quick : chunks_full;
    const unsigned *aheads = quick ? aheads_quick : aheads_full;
    size_t nc = quick ? 1 : 3, na = quick ? 2 : 3;
    for (int e = 0; e < 3; e++) {     /* uring, uring+async, threads */
        pm_loop_engine eng = e < 2 ? PM_LOOP_URING : PM_LOOP_THREADS;
        for (size_t ci = 0; ci < nc; ci++) {
            for (size_t ai = 0; ai < na; ai++) {
                /* read() with the same buffer size, interleaved, as the
                 * reference: the machine's load drifts between rows. */
                double best = -1, ref = -1;
                for (int i = 0; i < reps; i++) {
                    keep_best(&best, time_reader(path, eng, e == 1, chunks[ci], aheads[ai], size));
                    keep_best(&ref, time_read(path, chunks[ci]));
                }
                char what[128];
                snprintf(what, sizeof what, "%s%s, %zu KiB, depth %u",
                         e < 2 ? "uring" : "threads", e == 1 ? " async" : "",
                         chunks[ci] >> 10, aheads[ai]);
                row(what, best, ref, (double)size);
            }
        }
    }
}

int main(int argc, char **argv)
{
    size_t mib = 1024;
    int reps = 2, quick = 0, opt;
    const char *file = NULL;
    conf one = {0};          /* -E: time only this configuration */
    while ((opt = getopt(argc, argv, "s:r:f:qE:C:D:A")) != -1) {
        switch (opt) {
        case 's': mib = strtoul(optarg, NULL, 10); break;
        case 'r': reps = atoi(optarg); break;
        case 'f': file = optarg; break;
        case 'q': quick = 1; break;
        case 'E': one.engine = strcmp(optarg, "threads") ? PM_LOOP_URING : PM_LOOP_THREADS; break;
        case 'C': one.chunk = strtoul(optarg, NULL, 10) << 10; break;
        case 'D': one.ahead = (unsigned)atoi(optarg); break;
        case 'A': one.async = 1; break;
        default:
            fprintf(stderr, "usage: %s [-s MiB] [-r reps] [-f FILE] [-q] "
                    "[-E uring|threads -C chunk-KiB -D depth [-A]]\n", argv[0]);
            return 2;
        }
    }
    char path[4096];
    const char *dir = getenv("TMPDIR");
    if (file) {
        snprintf(path, sizeof path, "%s", file);
    } else {
        snprintf(path, sizeof path, "%s/pmap_bench_read.%d", dir && *dir ? dir : "/tmp", (int)getpid());
        if (make_file(path, mib) < 0) {
            fprintf(stderr, "bench_read: cannot write %s\n", path);
            unlink(path);
            return 1;
        }
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t size = fd < 0 ? 0 : (uint64_t)lseek(fd, 0, SEEK_END);
    if (fd >= 0)
        close(fd);
    time_cat(path);                         /* warm the page cache */
    if (one.engine) {
        double best = -1, ref = -1;
        for (int i = 0; i < reps; i++) {
            keep_best(&best, time_reader(path, one.engine, one.async, one.chunk ? one.chunk : 1 << 20,
                                         one.ahead ? one.ahead : 4, size));
            keep_best(&ref, time_read(path, one.chunk ? one.chunk : 1 << 20));
        }
        row("this configuration", best, ref, (double)size);
        if (!file)
            unlink(path);
        return 0;
    }
    printf("file: %.0f MiB, best of %d runs, GB/s = 10^9 bytes/s\n\n", size / 1048576.0, reps);
    printf("| %-38s | GB/s   | read() | ratio |\n", "reader: engine, chunk, depth");
    printf("|----------------------------------------|--------|--------|-------|\n");
    double best = -1, bestr = -1;
    for (int i = 0; i < reps + 1; i++) {
        keep_best(&best, time_cat(path));
        keep_best(&bestr, time_read(path, 128 << 10));
    }
    row("cat FILE >/dev/null", best, -1, (double)size);
    row("read() loop, 128 KiB buffer", bestr, -1, (double)size);
    run_grid(path, size, reps, quick);
    best = -1;
    for (int i = 0; i < reps; i++)
        keep_best(&best, time_cat(path));
    row("cat FILE >/dev/null (again)", best, -1, (double)size);
    if (!file)
        unlink(path);
    return 0;
}
