/* testutil.c - helpers shared by the CUnit suites (see testutil.h). */
#define _GNU_SOURCE
#include "testutil.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int skipped_cases;
static int run_cases;

void pm_test_skip(const char *why)
{
    fprintf(stderr, "  SKIP %s: %s\n", CU_get_current_test() ?
            CU_get_current_test()->pName : "?", why);
    skipped_cases++;
}

static void count_start(const CU_pTest test, const CU_pSuite suite)
{
    (void)test;
    (void)suite;
    run_cases++;
}

int pm_test_run(const char *suite_name, const pm_test_case *cases)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    for (const pm_test_case *c = cases; c->name; c++)
        CU_add_test(suite, c->name, c->fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_set_test_start_handler(count_start);
    CU_basic_run_tests();
    unsigned nfail = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    if (nfail)
        return 1;
    if (skipped_cases > 0 && skipped_cases >= run_cases)
        return 77;
    if (skipped_cases)
        fprintf(stderr, "%d of %d cases skipped\n", skipped_cases, run_cases);
    return 0;
}

char *pm_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path;
    if (asprintf(&path, "%s/pmtest.XXXXXX", base && *base ? base : "/tmp") < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

void pm_test_rmtree(const char *dir)
{
    if (dir && *dir && strcmp(dir, "/") != 0)
        pm_test_sh("rm -rf -- '%s'", dir);
}

static uint64_t xs_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void pm_test_fill_random(void *buf, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(xs_next(&s) >> 56);
}

void pm_test_fill_text(void *buf, size_t len, uint64_t seed)
{
    static const char *words[] = {
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
        "pmap", "chunk", "pipeline", "deflate", "error", "request", "GET",
        "200", "404", "user", "id", "timestamp", "value", "compress", "data",
        "parallel", "thread", "queue", "ring", "worker", "batch", "file",
    };
    const size_t nwords = sizeof words / sizeof words[0];
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    char *p = buf;
    size_t i = 0;
    while (i < len) {
        uint64_t r = xs_next(&s);
        const char *w = words[r % nwords];
        for (; *w && i < len; w++)
            p[i++] = *w;
        if (i < len)
            p[i++] = (r >> 32) % 11 == 0 ? '\n' : ' ';
    }
}

int pm_test_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            close(fd);
            return err;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) < 0 ? -errno : 0;
}

void *pm_test_read_file(const char *path, size_t *len_ret)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf && len_ret)
        *len_ret = len;
    return buf;
}

int pm_test_sh(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    int st = system(cmd);
    free(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

double pm_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
