/* test_config.c - one source of configuration: PMAP_JOBS, PMAP_IO,
 * PMAP_DEFLATE_ENGINE and PMAP_INFLATE_ENGINE parsed strictly, the CPU count
 * from the affinity mask, and the pool and the pipeline taking their defaults from it. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/config.h>
#include <pmap/loop.h>
#include <pmap/pipeline.h>
#include <pmap/pool.h>
#include "testutil.h"

static void test_parse_count(void)
{
    long n = -1;
    CU_ASSERT(pm_parse_count("3", 1024, &n) == 0 && n == 3);
    CU_ASSERT(pm_parse_count("1024", 1024, &n) == 0 && n == 1024);
    static const char *bad[] = {"", " 3", "3 ", "+3", "-3", "3x", "0", "1025",
                                "99999999999999999999", "0x10", NULL};
    for (int i = 0; bad[i]; i++) {
        n = 7;
        CU_ASSERT_EQUAL(pm_parse_count(bad[i], 1024, &n), -EINVAL);
        CU_ASSERT_EQUAL(n, 7);                 /* untouched on failure */
    }
    CU_ASSERT_EQUAL(pm_parse_count(NULL, 10, &n), -EINVAL);
}

static void test_jobs_env(void)
{
    char msg[256];
    setenv("PMAP_JOBS", "3", 1);
    CU_ASSERT_EQUAL(pm_default_jobs(), 3);
    CU_ASSERT_EQUAL(pm_resolve_jobs(0), 3);
    CU_ASSERT_EQUAL(pm_resolve_jobs(5), 5);     /* explicit beats the variable */
    CU_ASSERT_EQUAL(pm_config_check(msg, sizeof msg), 0);
    static const char *bad[] = {"3x", "", " 3", "+3", "3 ", "0", "2000", NULL};
    for (int i = 0; bad[i]; i++) {
        setenv("PMAP_JOBS", bad[i], 1);
        CU_ASSERT_EQUAL(pm_default_jobs(), -EINVAL);
        CU_ASSERT_EQUAL(pm_config_check(msg, sizeof msg), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(msg, "PMAP_JOBS"));
        /* Every consumer of the default agrees: an error, not a fallback. */
        pm_pool *pool = NULL;
        CU_ASSERT_EQUAL(pm_pool_new(NULL, &pool), -EINVAL);
        pm_pipeline *pl = NULL;
        CU_ASSERT_EQUAL(pm_pipeline_new(NULL, &pl), -EINVAL);
        pm_loop *loop = NULL;                   /* the I/O engine's size too */
        CU_ASSERT_EQUAL(pm_loop_new(&(pm_loop_opts){.engine = PM_LOOP_THREADS}, &loop), -EINVAL);
        pm_loop_opts lo = {.engine = PM_LOOP_THREADS, .io_threads = 2};
        CU_ASSERT_EQUAL_FATAL(pm_loop_new(&lo, &loop), 0);  /* explicit: fine */
        pm_loop_free(loop);
        pm_pipeline_opts o = {.jobs = 2};       /* explicit: fine */
        CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
        CU_ASSERT_EQUAL(pm_pipeline_jobs(pl), 2);
        pm_pipeline_free(pl);
    }
    CU_ASSERT_EQUAL(pm_resolve_jobs(-1), -EINVAL);
    CU_ASSERT_EQUAL(pm_resolve_jobs(PM_MAX_JOBS + 1), -EINVAL);
    unsetenv("PMAP_JOBS");
    CU_ASSERT_EQUAL(pm_default_jobs(), pm_cpu_count());
}

static void test_affinity(void)
{
    cpu_set_t saved, one;
    CU_ASSERT_FATAL(sched_getaffinity(0, sizeof saved, &saved) == 0);
    CU_ASSERT_EQUAL(pm_cpu_count(), CPU_COUNT(&saved));
    int first = 0;
    while (!CPU_ISSET(first, &saved))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CU_ASSERT_FATAL(sched_setaffinity(0, sizeof one, &one) == 0);
    unsetenv("PMAP_JOBS");
    CU_ASSERT_EQUAL(pm_cpu_count(), 1);
    pm_pool *pool = NULL;
    pm_pool_opts po = PM_POOL_OPTS_INIT;
    CU_ASSERT_EQUAL_FATAL(pm_pool_new(&po, &pool), 0);
    CU_ASSERT_EQUAL(pm_pool_workers(pool), 1);  /* taskset -c 0: one worker */
    pm_pool_free(pool);
    pm_pipeline *pl = NULL;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(NULL, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_jobs(pl), 1);   /* and the pipeline agrees */
    pm_pipeline_free(pl);
    CU_ASSERT_FATAL(sched_setaffinity(0, sizeof saved, &saved) == 0);
}

static void test_io_and_deflate_env(void)
{
    char msg[256];
    unsetenv("PMAP_IO");
    CU_ASSERT_EQUAL(pm_config_io_engine(), 0);
    setenv("PMAP_IO", "auto", 1);
    CU_ASSERT_EQUAL(pm_config_io_engine(), 0);
    setenv("PMAP_IO", "io_uring", 1);
    CU_ASSERT_EQUAL(pm_config_io_engine(), 1);
    setenv("PMAP_IO", "threads", 1);
    CU_ASSERT_EQUAL(pm_config_io_engine(), 2);
    setenv("PMAP_IO", "fibers", 1);
    CU_ASSERT_EQUAL(pm_config_io_engine(), -EINVAL);
    CU_ASSERT_EQUAL(pm_config_check(msg, sizeof msg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "PMAP_IO='fibers'"));
    unsetenv("PMAP_IO");
    setenv("PMAP_DEFLATE_ENGINE", "zlib", 1);
    CU_ASSERT_STRING_EQUAL(pm_config_deflate_engine(), "zlib");
    CU_ASSERT_EQUAL(pm_config_check(msg, sizeof msg), 0);
    setenv("PMAP_DEFLATE_ENGINE", "zstd", 1);
    CU_ASSERT_EQUAL(pm_config_check(msg, sizeof msg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "PMAP_DEFLATE_ENGINE"));
    unsetenv("PMAP_DEFLATE_ENGINE");
    CU_ASSERT_PTR_NULL(pm_config_deflate_engine());
    CU_ASSERT_EQUAL(pm_config_check(NULL, 0), 0);
    setenv("PMAP_INFLATE_ENGINE", "zlib", 1);
    CU_ASSERT_STRING_EQUAL(pm_config_inflate_engine(), "zlib");
    CU_ASSERT_EQUAL(pm_config_check(msg, sizeof msg), 0);
    setenv("PMAP_INFLATE_ENGINE", "libdeflate", 1);   /* a deflate engine only */
    CU_ASSERT_EQUAL(pm_config_check(msg, sizeof msg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "PMAP_INFLATE_ENGINE='libdeflate'"));
    setenv("PMAP_INFLATE_ENGINE", "", 1);               /* empty: the default */
    CU_ASSERT_PTR_NULL(pm_config_inflate_engine());
    CU_ASSERT_EQUAL(pm_config_check(NULL, 0), 0);
    unsetenv("PMAP_INFLATE_ENGINE");
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"pm_parse_count", test_parse_count},
        {"PMAP_JOBS, strictly, everywhere", test_jobs_env},
        {"CPU count from the affinity mask", test_affinity},
        {"PMAP_IO, PMAP_DEFLATE_ENGINE, PMAP_INFLATE_ENGINE", test_io_and_deflate_env},
        {NULL, NULL},
    };
    return pm_test_run("config", cases);
}
