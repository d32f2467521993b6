/* bench_commit.c - what making outputs durable costs, and how to pay for it.
 *
 * Runs the compress pipeline in place (inputs removed) over a fresh copy of
 * a tree, on the filesystem of WORKDIR, once per strategy, alternating the
 * strategies round by round:
 *
 *   files=N    pmap's way: every output fsynced, linked, its directory
 *              fsynced, then its input removed; N files in flight at once,
 *              so N fsyncs can share the filesystem's journal commits
 *              (N = 1 is the old one-file-at-a-time commit)
 *   nosync     nothing synced (PM_PL_NO_SYNC): the floor, not safe
 *   nosync+syncfs  nothing synced per file, one syncfs() at the end: the
 *              floor of any batched scheme (syncfs per directory batch
 *              cannot beat it), and not safe either: inputs go before
 *              their outputs are durable
 *
 * usage: bench_commit TREE WORKDIR [ROUNDS] [LEVEL]
 * Prints the median wall time of each strategy and its ratio to files=64.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pmap/pmap.h>
#include "pipelines.h"

typedef struct strategy {
    const char *name;
    unsigned max_files;          /* 0: the default */
    int nosync;
    int syncfs_after;
    double t[64];
} strategy;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int fresh_copy(const char *tree, const char *work)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/t' && cp -a '%s' '%s/t' && sync", work, tree, work);
    return system(cmd);
}

static double run_one(const strategy *s, const char *work, int level)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/t", work);
    pmp_opts o = {.level = level};
    o.pl.flags = PM_PL_REMOVE_INPUT | PM_PL_PRESERVE_META | (s->nosync ? PM_PL_NO_SYNC : 0);
    o.pl.max_files = s->max_files;
    const char *paths[] = {dir};
    pm_pipeline_stats st;
    double t0 = now();
    int rc = pmp_compress(&o, paths, 1, &st);
    if (s->syncfs_after) {
        int fd = open(work, O_RDONLY | O_DIRECTORY);
        if (fd >= 0) {
            syncfs(fd);
            close(fd);
        }
    }
    double t = now() - t0;
    if (rc != 0 || st.files_failed) {
        fprintf(stderr, "bench_commit: %s failed: %s\n", s->name, pm_strerror(rc));
        exit(1);
    }
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TREE WORKDIR [ROUNDS] [LEVEL]\n", argv[0]);
        return 2;
    }
    const char *tree = argv[1], *work = argv[2];
    int rounds = argc > 3 ? atoi(argv[3]) : 3, level = argc > 4 ? atoi(argv[4]) : 6;
    if (rounds < 1 || rounds > 64)
        rounds = 3;
    strategy s[] = {
        {"files=1", 1, 0, 0, {0}},
        {"files=8", 8, 0, 0, {0}},
        {"files=64", 64, 0, 0, {0}},
        {"files=256", 256, 0, 0, {0}},
        {"nosync", 64, 1, 0, {0}},
        {"nosync+syncfs", 64, 1, 1, {0}},
    };
    size_t ns = sizeof s / sizeof s[0];
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < ns; i++) {
            if (fresh_copy(tree, work) != 0) {
                fprintf(stderr, "bench_commit: cannot copy %s to %s/t\n", tree, work);
                return 1;
            }
            s[i].t[r] = run_one(&s[i], work, level);
            fprintf(stderr, "round %d %-14s %.3f s\n", r + 1, s[i].name, s[i].t[r]);
        }
    }
    double ref = 0;
    for (size_t i = 0; i < ns; i++) {
        qsort(s[i].t, (size_t)rounds, sizeof(double), cmp_double);
        if (!strcmp(s[i].name, "files=64"))
            ref = s[i].t[rounds / 2];
    }
    printf("strategy        median s   vs files=64\n");
    for (size_t i = 0; i < ns; i++)
        printf("%-15s %8.3f   %6.2fx\n", s[i].name, s[i].t[rounds / 2], s[i].t[rounds / 2] / ref);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/t'", work);
    return system(cmd) == 0 ? 0 : 1;
}
