/* testutil.c - helpers shared by the CUnit suites (see testutil.h). */
#define _GNU_SOURCE
#include "testutil.h"

#include <CUnit/TestRun.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pmap/loop.h>

/* The program's arguments. Every suite's main() is `int main(void)` and
 * hands its table to pm_test_run(), so the arguments are picked up here:
 * glibc calls the executable's constructors (.init_array) with argc, argv
 * and envp, as it calls main. */
static int saved_argc;
static char **saved_argv;

__attribute__((constructor)) static void save_args(int argc, char **argv, char **envp)
{
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

/* What the command line asks for (see testutil.h). */
typedef struct run_opts {
    const char *filters[16];  /* -t SUBSTR, or $PM_TEST_CASE */
    int nfilters;
    const char *excludes[16]; /* -x SUBSTR */
    int nexcludes;
    int list;                 /* --list */
} run_opts;

static void usage(FILE *to, const char *prog)
{
    fprintf(to, "usage: %s [-t SUBSTRING]... [-x SUBSTRING]... [--list]\n"
            "  -t, --case SUBSTRING     run only the cases whose name contains SUBSTRING\n"
            "                           (several -t: any of them; default: $PM_TEST_CASE)\n"
            "  -x, --exclude SUBSTRING  leave out the cases whose name contains SUBSTRING\n"
            "  -l, --list               print the case names (those selected) and exit\n"
            "Exit status: 0 passed, 1 failed or no case matched, 2 usage, 77 all skipped.\n",
            prog);
}

/* Appends f to a list of 16; -1 if it is full. */
static int add_filter(const char **list, int *n, const char *f)
{
    if (*n == 16) {
        fprintf(stderr, "too many -t or -x filters\n");
        return -1;
    }
    list[(*n)++] = f;
    return 0;
}

/* Whether the option at argv[*i] is -s/--long VALUE or --long=VALUE; sets
 * *value and advances *i past it. */
static int option_value(int *i, const char *s, const char *l, const char **value)
{
    const char *a = saved_argv[*i];
    size_t ll = strlen(l);
    if ((!strcmp(a, s) || !strcmp(a, l)) && *i + 1 < saved_argc) {
        *value = saved_argv[++*i];
        return 1;
    }
    if (!strncmp(a, l, ll) && a[ll] == '=') {
        *value = a + ll + 1;
        return 1;
    }
    return 0;
}

/* Parses the saved arguments; 0, 1 after --help, -1 on a usage error. */
static int parse_args(run_opts *o)
{
    const char *prog = saved_argc > 0 ? saved_argv[0] : "test";
    for (int i = 1; i < saved_argc; i++) {
        const char *a = saved_argv[i], *v;
        if (option_value(&i, "-t", "--case", &v)) {
            if (add_filter(o->filters, &o->nfilters, v) < 0)
                return -1;
        } else if (option_value(&i, "-x", "--exclude", &v)) {
            if (add_filter(o->excludes, &o->nexcludes, v) < 0)
                return -1;
        } else if (!strcmp(a, "-l") || !strcmp(a, "--list")) {
            o->list = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, prog);
            return 1;
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n", prog, a);
            usage(stderr, prog);
            return -1;
        }
    }
    const char *env = getenv("PM_TEST_CASE");
    if (o->nfilters == 0 && env && *env)
        o->filters[o->nfilters++] = env;
    return 0;
}

static int selected(const run_opts *o, const char *name)
{
    for (int i = 0; i < o->nexcludes; i++)
        if (strstr(name, o->excludes[i]))
            return 0;
    for (int i = 0; i < o->nfilters; i++)
        if (strstr(name, o->filters[i]))
            return 1;
    return o->nfilters == 0;
}

/* The running case: whether it skipped, when it started; and the totals. */
static int case_skipped;
static double case_start;
static int skipped_cases;

void pm_test_skip(const char *why)
{
    fprintf(stderr, "  SKIP %s: %s\n", CU_get_current_test() ?
            CU_get_current_test()->pName : "?", why);
    case_skipped = 1;
}

/* CUnit's basic interface says nothing of time; these handlers print each
 * case with its wall time, so slow cases are easy to find. */
static void on_start(const CU_pTest test, const CU_pSuite suite)
{
    (void)suite;
    case_skipped = 0;
    printf("  Test: %s ...", test->pName);
    fflush(stdout);
    case_start = pm_test_now();
}

static void on_complete(const CU_pTest test, const CU_pSuite suite,
                        const CU_pFailureRecord failures)
{
    (void)suite;
    double took = pm_test_now() - case_start;
    skipped_cases += case_skipped;
    printf("%s (%.2f s)\n", failures ? "FAILED" : case_skipped ? "skipped" : "passed",
           took);
    int i = 1;
    for (CU_pFailureRecord f = failures; f && f->pTest == test; f = f->pNext)
        printf("    %d. %s:%u  - %s\n", i++, f->strFileName ? f->strFileName : "?",
               f->uiLineNumber, f->strCondition ? f->strCondition : "");
    fflush(stdout);
}

/* Registers the selected cases (or prints them with --list); returns how
 * many, or -1 if CUnit failed. */
static int register_cases(const run_opts *o, const char *suite_name,
                          const pm_test_case *cases)
{
    CU_pSuite suite = o->list ? NULL : CU_add_suite(suite_name, NULL, NULL);
    if (!o->list && !suite)
        return -1;
    int n = 0;
    for (const pm_test_case *c = cases; c->name; c++) {
        if (!selected(o, c->name))
            continue;
        n++;
        if (o->list)
            printf("%s\n", c->name);
        else if (!CU_add_test(suite, c->name, c->fn))
            return -1;
    }
    return n;
}

static void no_match(const run_opts *o, const char *suite_name)
{
    fprintf(stderr, "%s: no case matches", suite_name);
    for (int i = 0; i < o->nfilters; i++)
        fprintf(stderr, "%s '%s'", i ? " or" : "", o->filters[i]);
    for (int i = 0; i < o->nexcludes; i++)
        fprintf(stderr, "%s '%s'", i ? " nor" : " without", o->excludes[i]);
    fprintf(stderr, " (--list shows them)\n");
}

int pm_test_run(const char *suite_name, const pm_test_case *cases)
{
    run_opts o = {.nfilters = 0};
    int prc = parse_args(&o);
    if (prc)
        return prc > 0 ? 0 : 2;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    int n = register_cases(&o, suite_name, cases);
    if (n <= 0 || o.list) {
        CU_cleanup_registry();
        if (n == 0)
            no_match(&o, suite_name);
        return n > 0 ? 0 : 1;
    }
    CU_set_test_start_handler(on_start);
    CU_set_test_complete_handler(on_complete);
    printf("Suite: %s\n", suite_name);
    double t0 = pm_test_now();
    CU_run_all_tests();
    unsigned nrun = CU_get_number_of_tests_run();
    unsigned nfail = CU_get_number_of_tests_failed();
    printf("%s: %u cases, %u failed, %d skipped, %u asserts, %.2f s\n", suite_name,
           nrun, nfail, skipped_cases, CU_get_number_of_asserts(), pm_test_now() - t0);
    CU_cleanup_registry();
    if (nfail)
        return 1;
    if (skipped_cases > 0 && (unsigned)skipped_cases >= nrun)
        return 77;
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

int pm_test_pid_gone(int pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

int pm_test_uring_available(void)
{
    static int ok = -1;
    if (ok < 0) {
        pm_loop_opts o = {.engine = PM_LOOP_URING};
        pm_loop *l = NULL;
        ok = pm_loop_new(&o, &l) == 0;
        pm_loop_free(l);
    }
    return ok;
}
