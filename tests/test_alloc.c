/* test_alloc.c - allocation-failure injection. For N = 1, 2, 3, ... the
 * Nth allocation libpmap makes during an operation fails, until N exceeds
 * the allocations the operation makes. Every constructor, the pool's and
 * the loop's operations, complete pipeline runs (both I/O engines, every
 * sink) and the compress and decompress pipelines are walked so. Each run
 * must return 0 (the failure was absorbed) or -ENOMEM (strict walks:
 * -ENOMEM only), leave the files as the pipeline promises, leak nothing and
 * crash nowhere; the run without a failure must succeed.
 *
 * The mechanism: this program is linked with -Wl,--wrap=malloc,... (see
 * tests/CMakeLists.txt), so the calls to malloc & co. in libpmap's objects
 * (and in the test's own) reach the __wrap_ functions below, while the
 * allocations inside shared libraries (libc, zlib, libgomp, CUnit) do not.
 * zlib's and libdeflate's constructors are wrapped too, standing for the
 * allocations they make. Under AddressSanitizer __real_malloc is ASan's
 * interceptor, so ASan and LeakSanitizer see everything as usual.
 *
 * While an operation runs (`tracking`), every allocation decrements a
 * countdown and the one that takes it to zero fails, whichever thread makes
 * it: alone in a first walk (the error path may allocate), then with every
 * later one in a second walk (the error path's allocations fail too). Every
 * block allocated meanwhile is kept in a table until it is freed: what is
 * left when the operation (which frees everything it made) returns is a
 * leak, reported with N and the address of the allocating call. A run that
 * hangs aborts after a minute, naming the walk and N.
 *
 * The second walks also fail the pipeline's periodic timer and the copies
 * of walked paths: both once hung or dropped files (fixed in lib/pipeline).
 *
 * PM_ALLOC_VERBOSE=1 prints every run and the call that failed,
 * PM_ALLOC_VERBOSE=2 every failed call of the second walks too (addresses
 * as binary+offset: addr2line -f -i -e tests/test_alloc OFFSET-1).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <pmap/pmap.h>
#include "pipelines.h"              /* pmp_compress, pmp_decompress */
#include "testutil.h"

/* ---- the wrapped allocator ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **s, const char *fmt, va_list ap);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_deflateInit2_(z_streamp s, int level, int method, int bits, int mem,
                         int strategy, const char *version, int size);
int __real_inflateInit2_(z_streamp s, int bits, const char *version, int size);
struct libdeflate_compressor;
struct libdeflate_compressor *__real_libdeflate_alloc_compressor(int level);

#define CALLER __builtin_return_address(0)

static _Atomic int tracking;      /* an operation under test is running */
static _Atomic long countdown;    /* the allocation taking it to 0 fails */
static _Atomic int persist;       /* and, if set, every one after it too */
static _Atomic long nallocs;      /* allocations seen while tracking */
static _Atomic int injected;      /* the failure happened in this run */
static void *injected_at;         /* the call that failed */

static int trace_failures;        /* PM_ALLOC_VERBOSE=2: print each failed call */
static void print_caller(const char *what, void *addr);

/* Called by every wrapper with its caller: counts the allocation; 1 if it
 * must fail. */
static int inject(void *caller)
{
    if (!atomic_load_explicit(&tracking, memory_order_relaxed))
        return 0;
    atomic_fetch_add(&nallocs, 1);
    long left = atomic_fetch_sub(&countdown, 1);
    if (left != 1 && (left > 1 || !atomic_load(&persist) || !atomic_load(&injected)))
        return 0;
    if (left == 1)
        injected_at = caller;
    atomic_store(&injected, 1);
    if (trace_failures)
        print_caller("    fails: ", caller);
    return 1;
}

/* Live blocks allocated while tracking: open addressing on the address. */
enum { LIVE_SLOTS = 1 << 16 };
#define TOMBSTONE ((void *)1)

typedef struct live_block {
    void *p;                /* NULL: empty; TOMBSTONE: freed */
    size_t size;
    void *caller;           /* return address of the allocating call */
} live_block;

static live_block live[LIVE_SLOTS];
static long nlive;
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t live_hash(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL >> 48) % LIVE_SLOTS;
}

static void live_add(void *p, size_t size, void *caller)
{
    if (!p || !atomic_load_explicit(&tracking, memory_order_relaxed))
        return;
    pthread_mutex_lock(&live_mu);
    size_t i = live_hash(p), probes = 0;
    while (live[i].p && live[i].p != TOMBSTONE && probes++ < LIVE_SLOTS)
        i = (i + 1) % LIVE_SLOTS;
    if (probes >= LIVE_SLOTS) {
        fprintf(stderr, "test_alloc: live table full\n");
        abort();
    }
    live[i] = (live_block){p, size, caller};
    nlive++;
    pthread_mutex_unlock(&live_mu);
}

static void live_del(void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&live_mu);
    size_t i = live_hash(p);
    for (size_t probes = 0; live[i].p && probes < LIVE_SLOTS; probes++) {
        if (live[i].p == p) {
            live[i].p = TOMBSTONE;
            nlive--;
            break;
        }
        i = (i + 1) % LIVE_SLOTS;
    }
    pthread_mutex_unlock(&live_mu);
}

static void live_reset(void)
{
    pthread_mutex_lock(&live_mu);
    memset(live, 0, sizeof live);
    nlive = 0;
    pthread_mutex_unlock(&live_mu);
}

/* Prints "<what> <symbol+offset of addr>" on stderr (addr2line -e takes
 * the offset). */
static void print_caller(const char *what, void *addr)
{
    fprintf(stderr, "%s", what);
    fflush(stderr);
    backtrace_symbols_fd(&addr, 1, 2);
}

/* Prints the blocks still live (at most 8) with their allocating call. */
static void live_report(void)
{
    int shown = 0;
    for (size_t i = 0; i < LIVE_SLOTS && shown < 8; i++) {
        if (!live[i].p || live[i].p == TOMBSTONE)
            continue;
        char what[128];
        snprintf(what, sizeof what, "    leaked %zu bytes at %p, allocated from ",
                 live[i].size, live[i].p);
        print_caller(what, live[i].caller);
        shown++;
    }
}

void *__wrap_malloc(size_t n)
{
    if (inject(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_malloc(n);
    live_add(p, n, CALLER);
    return p;
}

void *__wrap_calloc(size_t k, size_t n)
{
    if (inject(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_calloc(k, n);
    live_add(p, k * n, CALLER);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (inject(CALLER)) {
        errno = ENOMEM;
        return NULL;        /* p stays valid, as after a real failure */
    }
    void *q = __real_realloc(p, n);
    if (q || n == 0)
        live_del(p);
    live_add(q, n, CALLER);
    return q;
}

void __wrap_free(void *p)
{
    live_del(p);
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    if (inject(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = __real_strdup(s);
    live_add(p, p ? strlen(p) + 1 : 0, CALLER);
    return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
    if (inject(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = __real_strndup(s, n);
    live_add(p, p ? strlen(p) + 1 : 0, CALLER);
    return p;
}

int __wrap_vasprintf(char **s, const char *fmt, va_list ap)
{
    if (inject(CALLER)) {
        errno = ENOMEM;
        return -1;
    }
    int n = __real_vasprintf(s, fmt, ap);
    if (n >= 0)
        live_add(*s, (size_t)n + 1, CALLER);
    return n;
}

int __wrap_asprintf(char **s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = __wrap_vasprintf(s, fmt, ap);
    va_end(ap);
    return n;
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    if (inject(CALLER))
        return ENOMEM;
    int rc = __real_posix_memalign(p, align, n);
    if (rc == 0)
        live_add(*p, n, CALLER);
    return rc;
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    if (inject(CALLER)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __real_aligned_alloc(align, n);
    live_add(p, n, CALLER);
    return p;
}

/* zlib's and libdeflate's allocations happen inside their shared
 * libraries; their constructors fail here as those allocations would. */
int __wrap_deflateInit2_(z_streamp s, int level, int method, int bits, int mem,
                         int strategy, const char *version, int size)
{
    if (inject(CALLER))
        return Z_MEM_ERROR;
    return __real_deflateInit2_(s, level, method, bits, mem, strategy, version, size);
}

int __wrap_inflateInit2_(z_streamp s, int bits, const char *version, int size)
{
    if (inject(CALLER))
        return Z_MEM_ERROR;
    return __real_inflateInit2_(s, bits, version, size);
}

struct libdeflate_compressor *__wrap_libdeflate_alloc_compressor(int level)
{
    if (inject(CALLER))
        return NULL;
    return __real_libdeflate_alloc_compressor(level);
}

/* ---- walking an operation ---- */

/* An operation: does its whole job and frees everything it made; returns 0
 * or a negative errno. check (optional) runs after each run, untracked,
 * and returns 0 if the state it left is as promised (and restores the
 * starting state, e.g. removes outputs). */
typedef struct walk {
    const char *name;
    int (*op)(void *ctx);
    int (*check)(void *ctx, int rc);
    void *ctx;
    int strict;             /* an injected failure must fail op with -ENOMEM */
} walk;

/* What a walk found. */
typedef struct walk_result {
    long allocs;            /* made by the run without failure */
    int failed, absorbed;   /* injected runs: -ENOMEM, or 0 (failure absorbed) */
    int bad;                /* runs that broke a promise (printed) */
} walk_result;

enum { MAX_N = 5000 };

/* The walk in progress, for the crash handlers. */
static const char *current_walk;
static volatile long current_n;
static int current_persist;       /* the walk fails every allocation from N on */
static _Atomic double run_started; /* when the current run started (watchdog) */

static int verbose(void)
{
    const char *v = getenv("PM_ALLOC_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

/* Runs w once with the Nth allocation failing (N = 0: none); returns op's
 * result and sets *leaks. */
static int run_once(const walk *w, long n, long *leaks)
{
    current_n = n;
    atomic_store(&run_started, pm_test_now());
    atomic_store(&persist, current_persist);
    live_reset();
    atomic_store(&countdown, n);
    atomic_store(&nallocs, 0);
    atomic_store(&injected, 0);
    atomic_store(&tracking, 1);
    int rc = w->op(w->ctx);
    atomic_store(&tracking, 0);
    pthread_mutex_lock(&live_mu);
    *leaks = nlive;
    pthread_mutex_unlock(&live_mu);
    return rc;
}

/* Judges one run; returns 1 if it kept every promise (else prints why). */
static int judge(const walk *w, long n, int rc, long leaks, int check_rc)
{
    int inj = atomic_load(&injected);
    int rc_ok = inj ? (rc == -ENOMEM || (!w->strict && rc == 0)) : rc == 0;
    if (rc_ok && leaks == 0 && check_rc == 0)
        return 1;
    fprintf(stderr, "  alloc: %s, N=%ld%s: returned %d (%s)%s", w->name, n,
            !inj ? " (no failure)" : current_persist ? " and later failed" : " failed",
            rc, rc ? pm_strerror(rc) : "ok",
            rc_ok ? "" : inj ? ", expected -ENOMEM" : ", expected 0");
    if (check_rc)
        fprintf(stderr, ", state check failed (%d)", check_rc);
    fprintf(stderr, leaks ? ", %ld blocks leaked:\n" : "\n", leaks);
    if (inj)
        print_caller("    the failed allocation was made from ", injected_at);
    if (leaks)
        live_report();
    return 0;
}

static walk_result walk_run(const walk *w, int from_n_on)
{
    walk_result r = {0};
    current_walk = w->name;
    current_persist = from_n_on;
    long n;
    for (n = 0; n <= MAX_N; n++) {
        long leaks;
        int rc = run_once(w, n, &leaks);
        int inj = atomic_load(&injected);
        int check_rc = w->check ? w->check(w->ctx, rc) : 0;
        if (verbose()) {
            fprintf(stderr, "  %s N=%ld: %d%s\n", w->name, n, rc, inj ? ", failed in" : "");
            if (inj)
                print_caller("    ", injected_at);
        }
        r.bad += !judge(w, n, rc, leaks, check_rc);
        if (n == 0)
            r.allocs = atomic_load(&nallocs);
        else if (!inj)
            break;                  /* N beyond what it allocates: done */
        else if (rc == 0)
            r.absorbed++;
        else
            r.failed++;
    }
    if (n > MAX_N) {
        fprintf(stderr, "  alloc: %s: still failing at N=%d\n", w->name, MAX_N);
        r.bad++;
    }
    current_walk = NULL;
    printf("    %s, %s: %ld allocations; %d runs returned -ENOMEM, %d absorbed it\n",
           w->name, from_n_on ? "Nth and later fail" : "Nth fails", r.allocs, r.failed,
           r.absorbed);
    return r;
}

/* Runs both walks of an operation as CUnit checks. */
static void walk_check(const walk *w)
{
    for (int from_n_on = 0; from_n_on < 2; from_n_on++) {
        walk_result r = walk_run(w, from_n_on);
        CU_ASSERT(r.allocs > 0);
        CU_ASSERT_EQUAL(r.bad, 0);
        if (w->strict)
            CU_ASSERT_EQUAL(r.absorbed, 0);
    }
}

/* ---- constructors ---- */

static int op_pool_new(void *ctx)
{
    (void)ctx;
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = 2;
    pm_pool *p;
    int rc = pm_pool_new(&o, &p);
    if (rc == 0)
        pm_pool_free(p);
    return rc;
}

static int op_loop_new(void *ctx)
{
    pm_loop_opts o = {.engine = *(pm_loop_engine *)ctx};
    pm_loop *l;
    int rc = pm_loop_new(&o, &l);
    if (rc == 0)
        pm_loop_free(l);
    return rc;
}

static int op_pipeline_new(void *ctx)
{
    (void)ctx;
    pm_pipeline_opts o = {.jobs = 2};
    pm_pipeline *pl;
    int rc = pm_pipeline_new(&o, &pl);
    if (rc == 0)
        pm_pipeline_free(pl);
    return rc;
}

static int op_deflater_new(void *ctx)
{
    pm_gz_deflater *d;
    int rc = pm_gz_deflater_new(*(int *)ctx, &d);
    if (rc == 0)
        pm_gz_deflater_free(d);
    return rc;
}

static int op_inflater_new(void *ctx)
{
    (void)ctx;
    pm_gz_inflater *z;
    int rc = pm_gz_inflater_new(&z);
    if (rc == 0)
        pm_gz_inflater_free(z);
    return rc;
}

static int uring_usable(void)
{
    pm_loop_opts o = {.engine = PM_LOOP_URING};
    pm_loop *l;
    if (pm_loop_new(&o, &l) != 0)
        return 0;
    pm_loop_free(l);
    return 1;
}

static void test_constructors(void)
{
    static pm_loop_engine threads = PM_LOOP_THREADS, uring = PM_LOOP_URING;
    static int level1 = 1, level6 = 6, level9 = 9;
    const walk walks[] = {
        {"pm_pool_new", op_pool_new, NULL, NULL, 1},
        {"pm_loop_new [threads]", op_loop_new, NULL, &threads, 1},
        {"pm_loop_new [uring]", op_loop_new, NULL, &uring, 1},
        {"pm_pipeline_new", op_pipeline_new, NULL, NULL, 1},
        {"pm_gz_deflater_new -1", op_deflater_new, NULL, &level1, 1},
        {"pm_gz_deflater_new -6", op_deflater_new, NULL, &level6, 1},
        {"pm_gz_deflater_new -9", op_deflater_new, NULL, &level9, 1},
        {"pm_gz_inflater_new", op_inflater_new, NULL, NULL, 1},
    };
    for (size_t i = 0; i < sizeof walks / sizeof walks[0]; i++) {
        if (walks[i].ctx == &uring && !uring_usable()) {
            printf("    %s: io_uring unavailable here, not walked\n", walks[i].name);
            continue;
        }
        walk_check(&walks[i]);
    }
}

/* ---- gz: compress and decompress a stream ---- */

typedef struct gz_ctx {
    unsigned char in[100000], gz[110000], out[100000];
    size_t gz_len;
} gz_ctx;

/* A gzip member of in[] (a whole block through the whole-stream engine,
 * then blocks chained with a dictionary, as pigz does), decoded back. */
static int gz_deflate(pm_gz_deflater *d, gz_ctx *g)
{
    ssize_t n = pm_gz_deflate_block(d, NULL, 0, g->in, sizeof g->in, 1, g->gz, sizeof g->gz);
    if (n < 0)
        return (int)n;
    pm_gz_header h = {.name = "x", .level = 6};
    ssize_t hl = pm_gz_write_header(&h, g->gz, sizeof g->gz);
    if (hl < 0)
        return (int)hl;
    size_t half = sizeof g->in / 2, len = (size_t)hl;
    n = pm_gz_deflate_block(d, NULL, 0, g->in, half, 0, g->gz + len, sizeof g->gz - len);
    if (n < 0)
        return (int)n;
    len += (size_t)n;
    n = pm_gz_deflate_block(d, g->in, half, g->in + half, sizeof g->in - half, 1,
                            g->gz + len, sizeof g->gz - len - 8);
    if (n < 0)
        return (int)n;
    len += (size_t)n;
    pm_gz_write_trailer(pm_crc32(0, g->in, sizeof g->in), sizeof g->in, g->gz + len);
    g->gz_len = len + 8;
    return 0;
}

static int gz_inflate(gz_ctx *g)
{
    pm_gz_inflater *z;
    int rc = pm_gz_inflater_new(&z);
    if (rc < 0)
        return rc;
    size_t used, out_len;
    rc = pm_gz_inflate(z, g->gz, g->gz_len, &used, g->out, sizeof g->out, &out_len, 1);
    pm_gz_inflater_free(z);
    if (rc < 0)
        return rc;
    return rc == PM_GZ_DONE && out_len == sizeof g->in &&
           !memcmp(g->out, g->in, out_len) ? 0 : -EBADMSG;
}

static int op_gz_round_trip(void *ctx)
{
    gz_ctx *g = ctx;
    pm_gz_deflater *d;
    int rc = pm_gz_deflater_new(6, &d);
    if (rc < 0)
        return rc;
    rc = gz_deflate(d, g);
    pm_gz_deflater_free(d);
    return rc < 0 ? rc : gz_inflate(g);
}

static void test_gz(void)
{
    gz_ctx *g = calloc(1, sizeof *g);
    pm_test_fill_text(g->in, sizeof g->in, 7);
    /* Not strict: the whole-stream engine made on first use may fail and
     * the block go through zlib instead. */
    walk w = {"deflate blocks and inflate them", op_gz_round_trip, NULL, g, 0};
    walk_check(&w);
    free(g);
}

/* ---- pool operations ---- */

static int add_one(const void *in, void *out, void *arg)
{
    (void)arg;
    *(int *)out = *(const int *)in + 1;
    return 0;
}

static int task_ok(void *arg, void **result_ret)
{
    *result_ret = arg;
    return 0;
}

static void count_done(pm_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add((_Atomic int *)arg, 1);
}

typedef struct pool_ctx {
    int in[64], out[64];
    _Atomic int callbacks;
} pool_ctx;

static int check_out(pool_ctx *c)
{
    for (int i = 0; i < 64; i++)
        if (c->out[i] != i + 1)
            return -EIO;
    memset(c->out, 0, sizeof c->out);
    return 0;
}

/* apply_async twice, a done-callback, wait_any and wait_all. */
static int pool_tasks(pm_pool *p, pool_ctx *c)
{
    pm_future *f[2] = {NULL, NULL};
    int rc = pm_pool_apply_async(p, task_ok, c, &f[0]);
    if (rc == 0)
        rc = pm_pool_apply_async(p, task_ok, c, &f[1]);
    if (rc == 0)
        rc = pm_future_add_done_callback(f[1], count_done, &c->callbacks);
    size_t idx;
    if (rc == 0)
        rc = pm_wait_any(f, 2, 30.0, &idx);
    if (rc == 0)
        rc = pm_wait_all(f, 2, 30.0);
    if (rc == 0 && (pm_future_status(f[0]) || pm_future_result(f[1]) != c))
        rc = -EIO;
    pm_future_free(f[0]);
    pm_future_free(f[1]);
    return rc;
}

/* Three tasks drained as they complete: two given to pm_as_completed_new,
 * one added later. On a failed new/add the references stay ours. */
static int pool_as_completed(pm_pool *p, pool_ctx *c)
{
    pm_future *f[3] = {NULL, NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = pm_pool_apply_async(p, task_ok, c, &f[i]);
    pm_as_completed *ac = NULL;
    if (rc == 0 && (rc = pm_as_completed_new(f, 2, &ac)) == 0)
        f[0] = f[1] = NULL;                   /* the set's now */
    if (rc == 0 && (rc = pm_as_completed_add(ac, f[2], NULL)) == 0)
        f[2] = NULL;
    int got = 0;
    pm_future *g;
    size_t idx;
    while (rc == 0 && (rc = pm_as_completed_next(ac, 30.0, &idx, &g)) == 1) {
        rc = idx > 2 || pm_future_result(g) != c ? -EIO : 0;
        got++;
        pm_future_free(g);
    }
    if (rc == 0 && got != 3)
        rc = -EIO;
    pm_as_completed_free(ac);
    for (int i = 0; i < 3; i++)
        if (f[i]) {
            pm_future_wait(f[i], 30.0);
            pm_future_free(f[i]);
        }
    return rc;
}

/* map, map_async, imap over 64 items. */
static int pool_maps(pm_pool *p, pool_ctx *c)
{
    pm_map_spec s = {.fn = add_one, .in = c->in, .in_size = sizeof(int), .n = 64,
                     .out = c->out, .out_size = sizeof(int), .chunksize = 4};
    int rc = pm_pool_map(p, &s, NULL);
    if (rc == 0)
        rc = check_out(c);
    pm_future *f = NULL;
    if (rc == 0)
        rc = pm_pool_map_async(p, &s, NULL, &f);
    if (rc == 0)
        rc = pm_future_wait(f, 30.0);
    if (rc == 0)
        rc = pm_future_status(f) ? pm_future_status(f) : check_out(c);
    pm_future_free(f);
    pm_imap *it = NULL;
    if (rc == 0)
        rc = pm_pool_imap(p, &s, &it);
    int v, st, got = 0, r;
    while (rc == 0 && (r = pm_imap_next(it, &v, NULL, &st, 30.0)) == 1)
        rc = st ? st : v != ++got ? -EIO : 0;
    pm_imap_free(it);
    return rc == 0 && got != 64 ? -EIO : rc;
}

static int op_pool_work(void *ctx)
{
    pm_pool_opts o = PM_POOL_OPTS_INIT;
    o.workers = 2;
    pm_pool *p;
    int rc = pm_pool_new(&o, &p);
    if (rc < 0)
        return rc;
    rc = pool_tasks(p, ctx);
    if (rc == 0)
        rc = pool_as_completed(p, ctx);
    if (rc == 0)
        rc = pool_maps(p, ctx);
    pm_pool_free(p);
    return rc;
}

static void test_pool(void)
{
    pool_ctx c = {.callbacks = 0};
    for (int i = 0; i < 64; i++)
        c.in[i] = i;
    walk w = {"pool: apply_async, callback, wait_any/all, as_completed, map, map_async, imap",
              op_pool_work, NULL, &c, 0};
    walk_check(&w);
}

/* ---- loop operations, reader and writer ---- */

typedef struct loop_ctx {
    pm_loop_engine engine;
    char *dir, src[512], dst[512];
    unsigned char *data;
    size_t len;
    ssize_t tres, pres, wres;   /* results of the timer, post, write: they
                                   may complete as late as pm_loop_free */
} loop_ctx;

static void note_res(void *arg, ssize_t res)
{
    ssize_t *r = arg;
    *r = res;
}

/* A timer, a post, a group of one write: all must complete. */
static int loop_ops(pm_loop *l, int fd, loop_ctx *x)
{
    x->tres = x->pres = x->wres = 1;
    pm_loop_group *g = NULL;
    int64_t id = pm_loop_timer(l, 1000, note_res, &x->tres);
    int rc = id < 0 ? (int)id : pm_loop_post(l, note_res, &x->pres);
    if (rc == 0)
        rc = pm_loop_group_new(l, &g);
    if (rc == 0 && (id = pm_loop_write(l, fd, "x", 1, 0, note_res, &x->wres)) < 0)
        rc = (int)id;
    if (rc == 0)
        rc = pm_loop_group_add(g, id);
    if (rc == 0)
        rc = pm_loop_group_wait(g);
    while (rc == 0 && (x->tres == 1 || x->pres == 1))
        rc = pm_loop_run_once(l, 1) < 0 ? -EIO : 0;
    pm_loop_group_free(g);
    return rc ? rc : x->tres < 0 ? (int)x->tres : x->wres != 1 ? -EIO : 0;
}

/* A chunk in the writer's hands, released when its write completes. */
typedef struct held {
    pm_reader *r;
    pm_aio_chunk *c;
    int *err;
} held;

static void written(void *arg, ssize_t res)
{
    held *h = arg;
    if (res < 0 && *h->err == 0)
        *h->err = (int)res;
    pm_reader_release(h->r, h->c);
    h->c = NULL;
}

/* A free slot for a chunk (there are as many as the reader's buffers). */
static held *hold(held *hs, pm_reader *r, pm_aio_chunk *c, int *err)
{
    held *h = hs;
    while (h->c)
        h++;
    *h = (held){r, c, err};
    return h;
}

/* Copies in to out through a reader (pull mode, 16 KiB chunks, at most 8
 * buffers held) and a writer appending the chunks. */
static int copy_file(pm_loop *l, int in, int out)
{
    pm_reader_opts ro = {.chunk_size = 16384, .ahead = 2, .buffers = 8};
    pm_writer_opts wo = {.sync = 1};
    pm_reader *r = NULL;
    pm_writer *w = NULL;
    held hs[8] = {{0}};
    int err = 0, rc = pm_reader_new(l, in, &ro, &r);
    if (rc == 0)
        rc = pm_writer_new(l, out, &wo, &w);
    pm_aio_chunk *c;
    while (rc >= 0 && err == 0) {
        rc = pm_reader_next(r, &c);
        if (rc == -ENOBUFS) {           /* every buffer is being written */
            rc = pm_loop_run_once(l, 1) < 0 ? -EIO : 1;
            continue;
        }
        if (rc <= 0)
            break;
        held *h = hold(hs, r, c, &err);
        if ((rc = pm_writer_append(w, c->seq, c->data, c->len, written, h)) < 0) {
            pm_reader_release(r, c);
            h->c = NULL;
        }
    }
    int frc = w ? pm_writer_finish(w) : 0;
    pm_writer_free(w);
    pm_reader_free(r);
    return rc < 0 ? rc : err ? err : frc;
}

static int op_loop_io(void *ctx)
{
    loop_ctx *x = ctx;
    pm_loop_opts o = {.engine = x->engine, .queue_depth = 4, .io_threads = 2};
    pm_loop *l;
    int rc = pm_loop_new(&o, &l);
    if (rc < 0)
        return rc;
    int in = open(x->src, O_RDONLY | O_CLOEXEC);
    int out = open(x->dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rc = in < 0 || out < 0 ? -errno : loop_ops(l, out, x);
    if (rc == 0 && lseek(out, 0, SEEK_SET) < 0)
        rc = -errno;
    if (rc == 0)
        rc = copy_file(l, in, out);
    pm_loop_free(l);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* After a success the copy is exact; after a failure it may be partial. */
static int check_copy(void *ctx, int rc)
{
    loop_ctx *x = ctx;
    if (rc != 0)
        return 0;
    size_t len;
    unsigned char *got = pm_test_read_file(x->dst, &len);
    int ok = got && len == x->len && !memcmp(got, x->data, len);
    free(got);
    return ok ? 0 : -EIO;
}

static void test_loop_io(void)
{
    loop_ctx x = {.len = 100000};
    x.dir = pm_test_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(x.dir);
    snprintf(x.src, sizeof x.src, "%s/src", x.dir);
    snprintf(x.dst, sizeof x.dst, "%s/dst", x.dir);
    x.data = malloc(x.len);
    pm_test_fill_random(x.data, x.len, 3);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(x.src, x.data, x.len), 0);
    walk w = {"loop: timer, post, group, write; reader and writer copy [threads]",
              op_loop_io, check_copy, &x, 0};
    x.engine = PM_LOOP_THREADS;
    walk_check(&w);
    if (uring_usable()) {
        w.name = "loop: timer, post, group, write; reader and writer copy [uring]";
        x.engine = PM_LOOP_URING;
        walk_check(&w);
    }
    free(x.data);
    pm_test_rmtree(x.dir);
    free(x.dir);
}

/* ---- pipeline runs ---- */

/* The inputs of every run: an empty file, a tiny one, and two of several
 * chunks in a subdirectory (the walk of a tree is part of the run). */
static const struct input {
    const char *name;
    size_t len;
} inputs[] = {{"a", 0}, {"b", 3}, {"sub/c", 200000}, {"sub/d", 70000}};
enum { NINPUTS = sizeof inputs / sizeof inputs[0] };

/* The I/O thread's periodic wake-up, which finds the workers' results
 * when their wake-up post could not be allocated: often, to keep the runs
 * where every allocation fails quick (0.25 s by default). */
#define TICK 0.005

typedef struct pl_ctx {
    char *root;                 /* a temporary directory */
    char dir[512];              /* root/in: the inputs (and FILES outputs) */
    const char *suffix;         /* outputs: input + suffix (FILES, pmp_*) */
    pm_sink_kind sink;
    pm_loop_engine engine;
    int out_fd;                 /* PM_SINK_FD: root/fd.out */
    char fd_path[512];
    unsigned char *data[NINPUTS];
    int decompress;             /* pmp_decompress: inputs are .gz files */
    unsigned char *gz[NINPUTS]; /* their bytes */
    size_t gz_len[NINPUTS];
    int done, errors, bad_events;   /* counted by on_event */
} pl_ctx;

static void input_path(const pl_ctx *x, int i, const char *suffix, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s%s", x->dir, inputs[i].name, suffix ? suffix : "");
}

/* Creates root/in/ with the inputs (root/fd.out too); 0 or -errno. */
static int make_inputs(pl_ctx *x)
{
    if (!(x->root = pm_test_tmpdir()))
        return -EIO;
    snprintf(x->dir, sizeof x->dir, "%s/in", x->root);
    snprintf(x->fd_path, sizeof x->fd_path, "%s/fd.out", x->root);
    char p[600];
    snprintf(p, sizeof p, "%s/sub", x->dir);
    if (mkdir(x->dir, 0755) < 0 || mkdir(p, 0755) < 0)
        return -errno;
    x->out_fd = open(x->fd_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (x->out_fd < 0)
        return -errno;
    for (int i = 0; i < NINPUTS; i++) {
        x->data[i] = malloc(inputs[i].len + 1);
        pm_test_fill_text(x->data[i], inputs[i].len, (uint64_t)i + 1);
        input_path(x, i, NULL, p, sizeof p);
        int rc = pm_test_write_file(p, x->data[i], inputs[i].len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* For pmp_decompress: gzip replaces each input by its .gz. */
static int gzip_inputs(pl_ctx *x)
{
    if (pm_test_sh("gzip -r -- '%s'", x->dir) != 0)
        return -EIO;
    for (int i = 0; i < NINPUTS; i++) {
        char p[600];
        input_path(x, i, ".gz", p, sizeof p);
        if (!(x->gz[i] = pm_test_read_file(p, &x->gz_len[i])))
            return -EIO;
    }
    x->decompress = 1;
    return 0;
}

static void free_inputs(pl_ctx *x)
{
    for (int i = 0; i < NINPUTS; i++) {
        free(x->data[i]);
        free(x->gz[i]);
    }
    if (x->out_fd >= 0)
        close(x->out_fd);
    pm_test_rmtree(x->root);
    free(x->root);
}

static int copy_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    c->value = pm_crc32(0, c->data, c->len);
    if (c->out) {
        memcpy(c->out, c->data, c->len);
        c->out_len = c->len;
    }
    return 0;
}

/* Chunks of a file come in order, counted in the file's state. */
static int order_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    uintptr_t next = (uintptr_t)c->file->state;
    if (c->seq != next)
        return pm_chunk_fail(c, -EPROTO, "chunk %llu out of order", (unsigned long long)c->seq);
    c->file->state = (void *)(next + 1);
    return 0;
}

static int out_path(const pm_file *f, char *buf, size_t cap, void *arg)
{
    const pl_ctx *x = arg;
    return snprintf(buf, cap, "%s%s", f->path, x->suffix) < (int)cap ? 0 : -ENAMETOOLONG;
}

static void on_event(const pm_event *ev, void *arg)
{
    pl_ctx *x = arg;
    x->done += ev->kind == PM_EVENT_DONE;
    x->errors += ev->kind == PM_EVENT_ERROR;
    x->bad_events += !ev->path || !ev->message || ev->kind == PM_EVENT_SKIP ||
                     (ev->kind == PM_EVENT_ERROR) != (ev->err < 0);
}

static int op_pipeline_run(void *ctx)
{
    pl_ctx *x = ctx;
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 65536, .sink = x->sink,
                          .io_engine = x->engine, .out_fd = x->out_fd,
                          .skip_suffix = x->suffix, .out_path = out_path,
                          .on_event = on_event, .arg = x, .progress_interval = TICK};
    o.out_size = x->sink == PM_SINK_NONE ? 0 : o.chunk_size;
    x->done = x->errors = x->bad_events = 0;
    pm_pipeline *pl;
    int rc = pm_pipeline_new(&o, &pl);
    if (rc < 0)
        return rc;
    rc = pm_pipeline_add_stage(pl, "copy", PM_STAGE_PARALLEL, copy_stage, NULL);
    if (rc == 0)
        rc = pm_pipeline_add_stage(pl, "order", PM_STAGE_SERIAL_IN_ORDER, order_stage, NULL);
    const char *paths[] = {x->dir};
    if (rc == 0)
        rc = pm_pipeline_run(pl, paths, 1, NULL);
    pm_pipeline_free(pl);
    return rc;
}

/* Whether path holds exactly len bytes equal to want. */
static int file_is(const char *path, const void *want, size_t len)
{
    size_t got_len;
    unsigned char *got = pm_test_read_file(path, &got_len);
    int ok = got && got_len == len && !memcmp(got, want, len);
    free(got);
    return ok;
}

/* Regular files under dir, recursively (-1 on error). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n >= 0) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int sub = e->d_type == DT_DIR ? count_files(p) : 1;
        n = sub < 0 ? -1 : n + sub;
    }
    closedir(d);
    return n;
}

/* Output i of a FILES run: absent, or the input (after a success:
 * present). Removes it. Returns 1 if present, 0 if absent, -1 if wrong. */
static int check_output(pl_ctx *x, int i, int rc)
{
    char p[600];
    input_path(x, i, x->suffix, p, sizeof p);
    if (access(p, F_OK) < 0)
        return rc == 0 ? -1 : 0;
    int ok = file_is(p, x->data[i], inputs[i].len);
    unlink(p);
    return ok ? 1 : -1;
}

/* A PM_SINK_FD run's output after a success: the inputs in source order.
 * Empties the file for the next run. */
static int check_fd_output(pl_ctx *x, int rc)
{
    int bad = 0;
    if (rc == 0) {
        size_t len;
        unsigned char *got = pm_test_read_file(x->fd_path, &len), *p = got;
        for (int i = 0; i < NINPUTS && got; i++) {
            bad |= len < inputs[i].len || memcmp(p, x->data[i], inputs[i].len) != 0;
            if (bad)
                break;
            p += inputs[i].len;
            len -= inputs[i].len;
        }
        bad |= !got || len != 0;
        free(got);
    }
    if (ftruncate(x->out_fd, 0) < 0 || lseek(x->out_fd, 0, SEEK_SET) < 0)
        bad = 1;
    return bad ? 128 : 0;
}

/* The promises of a run: inputs intact, each output whole or absent (all
 * there after a success), nothing else left behind (temporary files), the
 * events well formed, and after a success the right counts and bytes. */
static int check_pipeline(void *ctx, int rc)
{
    pl_ctx *x = ctx;
    int bad = x->bad_events ? 1 : 0, outputs = 0;
    char p[600];
    for (int i = 0; i < NINPUTS; i++) {
        input_path(x, i, NULL, p, sizeof p);
        bad |= file_is(p, x->data[i], inputs[i].len) ? 0 : 2;
    }
    for (int i = 0; x->sink == PM_SINK_FILES && i < NINPUTS; i++) {
        int r = check_output(x, i, rc);
        bad |= r < 0 ? 8 : 0;
        outputs += r > 0;
    }
    if (x->sink == PM_SINK_FILES && outputs != x->done)
        bad |= 128;                 /* an output without its event, or the reverse */
    if (count_files(x->dir) != NINPUTS)
        bad |= 16;                  /* a temporary file left behind */
    if (rc == 0 && (x->done != NINPUTS || x->errors))
        bad |= 32;
    if (rc < 0 && x->errors == 0 && x->done == NINPUTS)
        bad |= 64;                  /* failed, but every file said done */
    if (x->sink == PM_SINK_FD)
        bad |= check_fd_output(x, rc);
    return bad;
}

static void pipeline_walk(const char *name, pm_sink_kind sink, pm_loop_engine engine)
{
    pl_ctx x = {.sink = sink, .engine = engine, .suffix = ".out", .out_fd = -1};
    CU_ASSERT_EQUAL_FATAL(make_inputs(&x), 0);
    walk w = {name, op_pipeline_run, check_pipeline, &x, 0};
    walk_check(&w);
    free_inputs(&x);
}

static void test_pipeline_files(void)
{
    pipeline_walk("pipeline run, file outputs [threads]", PM_SINK_FILES, PM_LOOP_THREADS);
    if (uring_usable())
        pipeline_walk("pipeline run, file outputs [uring]", PM_SINK_FILES, PM_LOOP_URING);
}

static void test_pipeline_sinks(void)
{
    pipeline_walk("pipeline run, no sink", PM_SINK_NONE, PM_LOOP_AUTO);
    pipeline_walk("pipeline run, descriptor sink", PM_SINK_FD, PM_LOOP_AUTO);
}

/* ---- the ready-made compress and decompress pipelines ---- */

static int op_pmp(void *ctx)
{
    pl_ctx *x = ctx;
    pmp_opts o = {.pl = {.jobs = 2, .on_event = on_event, .arg = x, .progress_interval = TICK},
                  .level = 6};
    const char *paths[] = {x->dir};
    x->done = x->errors = x->bad_events = 0;
    return x->decompress ? pmp_decompress(&o, paths, 1, NULL) : pmp_compress(&o, paths, 1, NULL);
}

/* Whether the gzip file at path decodes (with zlib) to want[0..len). */
static int gunzips_to(const char *path, const void *want, size_t len)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return 0;
    unsigned char *got = malloc(len + 1);
    int n = gzread(g, got, (unsigned)len + 1);
    int ok = n == (int)len && !memcmp(got, want, len);
    gzclose(g);
    free(got);
    return ok;
}

/* Input i intact; its output absent or right (present after a success),
 * then removed. Returns 0 or a bit saying what was wrong. */
static int check_pmp_file(pl_ctx *x, int i, int rc)
{
    char in[600], out[600];
    input_path(x, i, x->decompress ? ".gz" : NULL, in, sizeof in);
    input_path(x, i, x->decompress ? NULL : ".gz", out, sizeof out);
    int bad = x->decompress ? !file_is(in, x->gz[i], x->gz_len[i])
                            : !file_is(in, x->data[i], inputs[i].len);
    if (access(out, F_OK) < 0)
        return bad | (rc == 0 ? 2 : 0);
    int ok = x->decompress ? file_is(out, x->data[i], inputs[i].len)
                           : gunzips_to(out, x->data[i], inputs[i].len);
    unlink(out);
    return bad | (ok ? 0 : 4);
}

static int check_pmp(void *ctx, int rc)
{
    pl_ctx *x = ctx;
    int bad = x->bad_events ? 1 : 0;
    for (int i = 0; i < NINPUTS; i++)
        bad |= check_pmp_file(x, i, rc);
    if (count_files(x->dir) != NINPUTS)
        bad |= 16;                  /* a temporary file left behind */
    if (rc == 0 && (x->done != NINPUTS || x->errors))
        bad |= 32;
    return bad;
}

static void test_pmp(void)
{
    pl_ctx x = {.out_fd = -1};
    CU_ASSERT_EQUAL_FATAL(make_inputs(&x), 0);
    walk w = {"pmp_compress", op_pmp, check_pmp, &x, 0};
    walk_check(&w);
    free_inputs(&x);

    pl_ctx z = {.out_fd = -1};
    CU_ASSERT_EQUAL_FATAL(make_inputs(&z), 0);
    CU_ASSERT_EQUAL_FATAL(gzip_inputs(&z), 0);
    w = (walk){"pmp_decompress", op_pmp, check_pmp, &z, 0};
    walk_check(&w);
    free_inputs(&z);
}

/* ---- where it crashed ---- */

static void say_where(void)
{
    if (current_walk)
        fprintf(stderr, "\ntest_alloc: crashed walking \"%s\" with allocation N=%ld%s failing\n",
                current_walk, current_n, current_persist ? " and later" : "");
}

/* AddressSanitizer calls this before its report. */
void __asan_on_error(void);
void __asan_on_error(void)
{
    say_where();
}

/* A run that takes a minute is a hang (a lost wake-up, say): say where,
 * then abort rather than wait for ctest's timeout. */

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        double t0 = atomic_load(&run_started);
        if (atomic_load(&tracking) && t0 > 0 && pm_test_now() - t0 > 60) {
            fprintf(stderr, "\ntest_alloc: a run hung for 60 s:");
            abort();
        }
    }
    return NULL;
}

static void on_crash(int sig)
{
    say_where();                /* not async-signal-safe; we are dying anyway */
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"constructors: pool, loop, pipeline, deflater, inflater", test_constructors},
        {"gz: deflate blocks, inflate them", test_gz},
        {"pool: tasks, callbacks, waits, maps, imap", test_pool},
        {"loop: operations, reader, writer", test_loop_io},
        {"pipeline run: file outputs, both engines", test_pipeline_files},
        {"pipeline run: no sink, descriptor sink", test_pipeline_sinks},
        {"pipelines: compress, decompress", test_pmp},
        {NULL, NULL},
    };
    const char *v = getenv("PM_ALLOC_VERBOSE");
    trace_failures = v && atoi(v) >= 2;
    int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], on_crash);
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) == 0)
        pthread_detach(wd);
    return pm_test_run("alloc", cases);
}
