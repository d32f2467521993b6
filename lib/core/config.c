/* config.c - pmap's run-time configuration (see pmap/config.h): the CPU
 * count and every PMAP_* environment variable, parsed in one place. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pmap/config.h>

#include "codec/deflate_engine.h"   /* valid PMAP_DEFLATE_ENGINE names */
#include "codec/inflate_engine.h"   /* valid PMAP_INFLATE_ENGINE names */

int pm_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int pm_parse_count(const char *s, long max, long *n_ret)
{
    if (!s || !*s || !n_ret)
        return -EINVAL;
    long n = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        n = n * 10 + (*p - '0');
        if (n > max)
            return -EINVAL;
    }
    if (n < 1)
        return -EINVAL;
    *n_ret = n;
    return 0;
}

int pm_default_jobs(void)
{
    const char *env = getenv("PMAP_JOBS");
    if (!env)
        return pm_cpu_count();
    long n;
    if (pm_parse_count(env, PM_MAX_JOBS, &n) < 0)
        return -EINVAL;
    return (int)n;
}

int pm_resolve_jobs(int jobs)
{
    if (jobs == 0)
        return pm_default_jobs();
    if (jobs < 0 || jobs > PM_MAX_JOBS)
        return -EINVAL;
    return jobs;
}

int pm_config_io_engine(void)
{
    const char *v = getenv("PMAP_IO");
    if (!v || !*v || strcmp(v, "auto") == 0)
        return 0;
    if (strcmp(v, "uring") == 0 || strcmp(v, "io_uring") == 0)
        return 1;
    if (strcmp(v, "threads") == 0)
        return 2;
    return -EINVAL;
}

const char *pm_config_deflate_engine(void)
{
    const char *v = getenv("PMAP_DEFLATE_ENGINE");
    return v && *v ? v : NULL;
}

const char *pm_config_inflate_engine(void)
{
    const char *v = getenv("PMAP_INFLATE_ENGINE");
    return v && *v ? v : NULL;
}

static int bad(char *msg, size_t cap, const char *var, const char *expected)
{
    if (cap)
        snprintf(msg, cap, "%s='%s' is not valid (expected %s)", var, getenv(var), expected);
    return -EINVAL;
}

int pm_config_check(char *msg, size_t cap)
{
    if (cap)
        msg[0] = '\0';
    if (pm_default_jobs() < 0)
        return bad(msg, cap, "PMAP_JOBS", "a whole number from 1 to 1024");
    if (pm_config_io_engine() < 0)
        return bad(msg, cap, "PMAP_IO", "auto, uring or threads");
    const char *d = pm_config_deflate_engine();
    if (d && !pm__deflate_engine_find(d))
        return bad(msg, cap, "PMAP_DEFLATE_ENGINE", "libdeflate, isal or zlib");
    const char *i = pm_config_inflate_engine();
    if (i && !pm__inflate_engine_find(i))
        return bad(msg, cap, "PMAP_INFLATE_ENGINE", "isal or zlib");
    return 0;
}
