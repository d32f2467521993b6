/* test_mapping.c - PM_PL_MAP_INPUT: chunks that point into a mapping of
 * their file see the bytes a read gives, at every size around the chunk
 * and window boundaries, prefixes included; what is mapped follows the
 * live chunks and is gone after the run; a file cut short or grown while
 * mapped fails as changed, without SIGBUS killing the process; streams and
 * /proc files are read; a SIGBUS that is not pmap's still reaches whoever
 * would have had it (cases that touch the process's SIGBUS handling run
 * in a child process). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <pmap/gz.h>
#include <pmap/pipeline.h>
#include "testutil.h"

/* Under a sanitizer the handler before pmap's is the sanitizer's: it
 * reports a fault and exits (ASan 1, TSan 66) instead of dying of it. */
#ifdef PM_TEST_SANITIZED
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define CHUNK (64u * 1024u)
#define WINDOW (4u << 20)            /* mapping.c's PL_MAP_WINDOW */

typedef struct ctx {
    const unsigned char *buf;        /* the file's bytes, to compare with */
    size_t len;
    const char *path;
    off_t cut_to;                    /* >= 0: cut the file to this at chunk 0 */
    int grow;                        /* append to the file at chunk 0 */
    int count_maps;                  /* note the file's mappings at every chunk */
    int maps_max;
    int failed, done;
    char error[512];
} ctx;

typedef struct sum {
    uint32_t crc;
    uint64_t bytes;
} sum;

static int maps_of(const char *path)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[4096];
    int n = 0;
    while (fp && fgets(line, sizeof line, fp))
        n += strstr(line, path) != NULL;
    if (fp)
        fclose(fp);
    return n;
}

/* Serial, first: changes the file under the chunks still to be staged. */
static int change_stage(pm_chunk *c, void *arg, unsigned worker)
{
    ctx *x = arg;
    (void)worker;
    if (x->count_maps) {
        int n = maps_of(x->path);
        if (n > x->maps_max)
            x->maps_max = n;
    }
    if (c->seq == 0 && x->cut_to >= 0)
        CU_ASSERT_EQUAL(truncate(x->path, x->cut_to), 0);
    if (c->seq == 0 && x->grow) {
        int fd = open(x->path, O_WRONLY | O_APPEND);
        CU_ASSERT(fd >= 0 && write(fd, "more", 4) == 4);
        close(fd);
    }
    return 0;
}

/* Parallel: the chunk's bytes and prefix are the file's; its CRC. */
static int crc_stage(pm_chunk *c, void *arg, unsigned worker)
{
    ctx *x = arg;
    (void)worker;
    if (x->buf && x->cut_to < 0 && !x->grow) {
        CU_ASSERT_FATAL(c->offset + c->len <= x->len && c->prefix_len <= c->offset);
        CU_ASSERT(memcmp(c->data - c->prefix_len, x->buf + c->offset - c->prefix_len,
                         c->prefix_len + c->len) == 0);
    }
    c->value = pm_crc32(0, c->data, c->len);
    return 0;
}

static int combine_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    sum *s = c->file->state;
    s->crc = pm_crc32_combine(s->crc, (uint32_t)c->value, c->len);
    s->bytes += c->len;
    return 0;
}

static uint32_t last_crc;
static uint64_t last_bytes;

static void on_event(const pm_event *ev, void *arg)
{
    ctx *x = arg;
    if (ev->kind == PM_EVENT_DONE) {
        const sum *s = ev->file->state;
        last_crc = s->crc;
        last_bytes = s->bytes;
        x->done++;
    } else if (ev->kind == PM_EVENT_ERROR) {
        x->failed++;
        snprintf(x->error, sizeof x->error, "%s: %s", ev->path, ev->message);
    }
}

/* With a file_begin hook every file takes the chunked way (no one-step
 * small files), so even a one-byte file is mapped. */
static int begin_hook(pm_file *f, void *arg)
{
    (void)f;
    (void)arg;
    return 0;
}

static int run(ctx *x, const char *path, unsigned flags, size_t overlap, int hooks,
               pm_pipeline_stats *st)
{
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = CHUNK, .overlap = overlap,
                          .max_chunks = 6, .flags = flags, .on_event = on_event,
                          .arg = x, .file_state_size = sizeof(sum),
                          .file_begin = hooks ? begin_hook : NULL};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    pm_pipeline_add_stage(pl, "change", PM_STAGE_SERIAL_IN_ORDER, change_stage, x);
    pm_pipeline_add_stage(pl, "crc", PM_STAGE_PARALLEL, crc_stage, x);
    pm_pipeline_add_stage(pl, "combine", PM_STAGE_SERIAL_IN_ORDER, combine_stage, x);
    const char *paths[] = {path};
    int rc = pm_pipeline_run(pl, paths, 1, st);
    pm_pipeline_free(pl);
    return rc;
}

static void ctx_init(ctx *x, const unsigned char *buf, size_t len, const char *path)
{
    memset(x, 0, sizeof *x);
    x->buf = buf;
    x->len = len;
    x->path = path;
    x->cut_to = -1;
}

/* Checks one file of `len` bytes mapped and read, with and without hooks
 * and an overlap: same bytes, zlib's CRC, and bytes_mapped as expected. */
static void check_size(const char *dir, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/f%zu", dir, len);
    unsigned char *buf = malloc(len ? len : 1);
    pm_test_fill_random(buf, len, len + 1);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(path, buf, len), 0);
    uint32_t want = (uint32_t)crc32(0, buf, (uInt)len);
    for (int v = 0; v < 6; v++) {
        unsigned flags = v % 2 ? PM_PL_MAP_INPUT : 0;
        int hooks = (v / 2) % 2 == 0;
        size_t overlap = v >= 4 ? 1000 : 0;
        ctx x;
        ctx_init(&x, buf, len, path);
        pm_pipeline_stats st;
        last_crc = 0;
        last_bytes = UINT64_MAX;
        CU_ASSERT_EQUAL(run(&x, path, flags, overlap, hooks || overlap, &st), 0);
        CU_ASSERT_EQUAL(x.done, 1);
        CU_ASSERT_EQUAL(last_crc, want);
        CU_ASSERT_EQUAL(last_bytes, len);
        CU_ASSERT_EQUAL(st.bytes_in, len);
        /* mapped: every chunk, or (no hooks) all but a one-step small file */
        uint64_t mapped = !flags || (!hooks && !overlap && len <= CHUNK) ? 0 : len;
        CU_ASSERT_EQUAL(st.bytes_mapped, mapped);
        if (last_crc != want || st.bytes_mapped != mapped)
            fprintf(stderr, "size %zu variant %d: crc %08x want %08x, mapped %llu\n", len, v,
                    last_crc, want, (unsigned long long)st.bytes_mapped);
    }
    CU_ASSERT_EQUAL(maps_of(path), 0);     /* every window unmapped */
    free(buf);
}

static void test_sizes(void)
{
    char *dir = pm_test_tmpdir();
    const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 7 * CHUNK + 3,
                            WINDOW - 1, WINDOW, WINDOW + CHUNK + 7, 2 * WINDOW + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        check_size(dir, sizes[i]);
    pm_test_rmtree(dir);
    free(dir);
}

/* A sparse 64 MiB file: at most a couple of windows are mapped at once. */
static void test_mapped_bounded(void)
{
    char *dir = pm_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/sparse", dir);
    CU_ASSERT_EQUAL_FATAL(pm_test_sh("truncate -s 64M '%s'", path), 0);
    ctx x;
    ctx_init(&x, NULL, 0, path);
    x.count_maps = 1;
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(run(&x, path, PM_PL_MAP_INPUT, 0, 0, &st), 0);
    CU_ASSERT_EQUAL(st.bytes_mapped, 64u << 20);
    CU_ASSERT(x.maps_max >= 1 && x.maps_max <= 3);
    CU_ASSERT_EQUAL(maps_of(path), 0);
    unsigned char *zeros = calloc(1, 64u << 20);
    CU_ASSERT_EQUAL(last_crc, (uint32_t)crc32(0, zeros, 64u << 20));
    free(zeros);
    printf("at most %d windows mapped at once ", x.maps_max);
    pm_test_rmtree(dir);
    free(dir);
}

/* A file cut (to `cut_to`) or grown at its first chunk while mapped fails
 * as changed, naming nothing but the file; the process lives on. */
static void changed_run(off_t cut_to, int grow)
{
    char *dir = pm_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/changing", dir);
    size_t len = WINDOW + 20 * CHUNK + 11;
    unsigned char *buf = malloc(len);
    pm_test_fill_random(buf, len, 99);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(path, buf, len), 0);
    ctx x;
    ctx_init(&x, buf, len, path);
    x.cut_to = cut_to;
    x.grow = grow;
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(run(&x, path, PM_PL_MAP_INPUT, 0, 0, &st), -EIO);
    CU_ASSERT_EQUAL(x.failed, 1);
    CU_ASSERT_EQUAL(x.done, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(x.error, "changed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(x.error, path));
    CU_ASSERT(st.bytes_mapped > 0);
    CU_ASSERT_EQUAL(maps_of(path), 0);
    printf("[%s] ", x.error + strlen(path) + 2);
    free(buf);
    pm_test_rmtree(dir);
    free(dir);
}

static void test_cut_short(void)
{
    changed_run(0, 0);
    changed_run(3 * CHUNK + 100, 0);   /* mid-window, mid-page */
    changed_run(WINDOW + 5, 0);        /* in the second window */
}

static void test_grown(void)
{
    changed_run(-1, 1);
}

static void *feed_fifo(void *arg)
{
    const char *path = arg;
    unsigned char *buf = malloc(3 * CHUNK + 5);
    pm_test_fill_random(buf, 3 * CHUNK + 5, 7);
    int fd = open(path, O_WRONLY);
    if (fd >= 0 && write(fd, buf, 3 * CHUNK + 5) != (ssize_t)(3 * CHUNK + 5))
        abort();
    close(fd);
    free(buf);
    return NULL;
}

/* A FIFO and a /proc file (size 0) are read, never mapped. */
static void test_streams_read(void)
{
    char *dir = pm_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/fifo", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
    unsigned char *want = malloc(3 * CHUNK + 5);
    pm_test_fill_random(want, 3 * CHUNK + 5, 7);
    pthread_t t;
    pthread_create(&t, NULL, feed_fifo, path);
    ctx x;
    ctx_init(&x, NULL, 0, path);
    pm_pipeline_stats st;
    CU_ASSERT_EQUAL(run(&x, path, PM_PL_MAP_INPUT | PM_PL_SKIP_SPECIAL_OK, 0, 0, &st), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(last_crc, (uint32_t)crc32(0, want, 3 * CHUNK + 5));
    CU_ASSERT_EQUAL(st.bytes_mapped, 0);

    ctx_init(&x, NULL, 0, "/proc/version");
    CU_ASSERT_EQUAL(run(&x, "/proc/version", PM_PL_MAP_INPUT, 0, 0, &st), 0);
    CU_ASSERT_EQUAL(st.bytes_mapped, 0);
    CU_ASSERT(st.bytes_in > 0);
    FILE *fp = fopen("/proc/version", "rb");
    unsigned char text[4096];
    size_t n = fp ? fread(text, 1, sizeof text, fp) : 0;
    if (fp)
        fclose(fp);
    CU_ASSERT_EQUAL(last_bytes, n);
    CU_ASSERT_EQUAL(last_crc, (uint32_t)crc32(0, text, (uInt)n));
    free(want);
    pm_test_rmtree(dir);
    free(dir);
}

/* ---- SIGBUS that is not pmap's (in child processes) ---- */

static volatile sig_atomic_t own_seen;

static void own_bus(int sig)
{
    (void)sig;
    own_seen = 1;
}

/* In a child: a mapped run of an 8 MiB file; 0 when its CRC is right.
 * *mapped_ret: whether it was mapped. */
static int child_run(const char *dir, int *mapped_ret)
{
    char path[512];
    snprintf(path, sizeof path, "%s/c", dir);
    size_t len = 2 * WINDOW;
    unsigned char *buf = malloc(len);
    pm_test_fill_random(buf, len, 3);
    if (pm_test_write_file(path, buf, len) != 0)
        return 1;
    ctx x;
    ctx_init(&x, NULL, 0, path);
    pm_pipeline_stats st;
    int rc = run(&x, path, PM_PL_MAP_INPUT, 0, 0, &st);
    *mapped_ret = st.bytes_mapped == len;
    rc = rc || last_crc != (uint32_t)crc32(0, buf, (uInt)len);
    free(buf);
    return rc;
}

/* The child's status, after fn ran in it. */
static int in_child(int (*fn)(const char *), const char *dir)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(dir));
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* A fault in a mapping of the program's own, after a mapped run: the
 * default action, as without pmap. */
static int foreign_fault(const char *dir)
{
    int mapped;
    if (child_run(dir, &mapped) || !mapped)
        return 10;
    char path[512];
    snprintf(path, sizeof path, "%s/own", dir);
    if (pm_test_write_file(path, "x", 1) != 0)
        return 11;
    int fd = open(path, O_RDWR);
    volatile unsigned char *p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return 12;
    return 100 + p[4096];            /* past the end: SIGBUS (100: swallowed) */
}

/* A handler the program installs after a mapped run: it keeps it, gets
 * its SIGBUS, and pmap reads instead of mapping. */
static int own_handler_after(const char *dir)
{
    int mapped;
    if (child_run(dir, &mapped) || !mapped)
        return 1;
    signal(SIGBUS, own_bus);
    if (child_run(dir, &mapped) || mapped)
        return 2;
    raise(SIGBUS);
    return own_seen ? 0 : 3;
}

/* A handler the program had before: a sent SIGBUS still reaches it. */
static int own_handler_before(const char *dir)
{
    signal(SIGBUS, own_bus);
    int mapped;
    if (child_run(dir, &mapped))
        return 1;
    raise(SIGBUS);
    return own_seen ? 0 : 3;
}

static void test_foreign_sigbus(void)
{
    char *dir = pm_test_tmpdir();
    int st = in_child(foreign_fault, dir);
    CU_ASSERT((WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) ||
              (SANITIZED && WIFEXITED(st) && (WEXITSTATUS(st) == 1 || WEXITSTATUS(st) == 66)));
    if (!WIFSIGNALED(st))
        fprintf(stderr, "foreign fault: exit %d\n", WEXITSTATUS(st));
    st = in_child(own_handler_after, dir);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = in_child(own_handler_before, dir);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"mapped and read chunks agree at every size", test_sizes},
        {"mapped windows follow the live chunks", test_mapped_bounded},
        {"file cut short while mapped: fails as changed", test_cut_short},
        {"file grown while mapped: fails as changed", test_grown},
        {"FIFOs and /proc files are read", test_streams_read},
        {"a SIGBUS not of pmap's windows goes where it went", test_foreign_sigbus},
        {NULL, NULL},
    };
    return pm_test_run("mapping", cases);
}
