/* test_runexec.c - one rank's slots of a distributed `pmap run`
 * (pipelines/mpi/runexec.c, compiled into this test: it needs no MPI, so
 * it runs in every build and under ThreadSanitizer): every queued job
 * comes back exactly once, with its output readable in pieces, its
 * command built on its slot ({%}); retries and timeouts as the runner's;
 * stop drops the queue and lets running jobs end, kill kills them and
 * drops their output, a job queued after a kill comes back unrun; freeing
 * with jobs running kills their process groups. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "runexec.h"

/* Collects ended jobs (waiting on rx_fd), indexed by seq 1..n, until all
 * n are there. Returns how many are. */
static int collect(rx *x, rx_done **by_seq, size_t n, double timeout)
{
    size_t got = 0;
    for (size_t i = 0; i < n; i++)
        got += by_seq[i] != NULL;
    double t0 = pm_test_now();
    while (got < n && pm_test_now() - t0 < timeout) {
        struct pollfd p = { .fd = rx_fd(x), .events = POLLIN };
        poll(&p, 1, 100);
        for (rx_done *d = rx_take(x), *next; d; d = next) {
            next = d->next;
            d->next = NULL;
            CU_ASSERT(d->seq >= 1 && d->seq <= n);
            if (d->seq < 1 || d->seq > n || by_seq[d->seq - 1]) {
                CU_FAIL("a job came back twice or unknown");
                rx_done_free(x, d);
                continue;
            }
            CU_ASSERT_EQUAL(d->tag, d->seq * 10);
            by_seq[d->seq - 1] = d;
            got++;
        }
    }
    return (int)got;
}

static void free_all(rx *x, rx_done **by_seq, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rx_done_free(x, by_seq[i]);
}

static void push(rx *x, uint64_t seq, const char *arg)
{
    const char *v[1] = { arg };
    CU_ASSERT_EQUAL(rx_push(x, seq, seq * 10, v, 1), 0);
}

/* The whole of part (0 stdout, 1 stderr) read in pieces of `piece`. */
static char *read_part_by(rx *x, const rx_done *d, int part, size_t piece)
{
    uint64_t len = part ? d->err_len : d->out_len, base = part ? d->out_len : 0;
    char *s = calloc(1, len + 1);
    uint64_t off = 0;
    long n = 0;
    while (off < len && (n = rx_read(x, d, base + off, s + off,
                                     len - off < piece ? (size_t)(len - off) : piece)) > 0)
        off += (uint64_t)n;
    CU_ASSERT(n >= 0);
    CU_ASSERT_EQUAL(off, len);
    CU_ASSERT_EQUAL(rx_read(x, d, d->out_len + d->err_len, s, 1), 0);
    return s;
}

static char *read_part(rx *x, const rx_done *d, int part)
{
    return read_part_by(x, d, part, 7);
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void test_jobs_come_back_once(void)
{
    const char *cmd[] = { "echo job {} slot {%}; echo e{} >&2; exit $(({} % 3))" };
    pmp_run_opts o = { .cmd = cmd, .ncmd = 1 };
    rx *x;
    CU_ASSERT_FATAL(rx_new(&o, pmp_run_needs_shell(&o), pmp_run_has_rpl(&o), 3, &x) == 0);
    enum { N = 40 };
    char args[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(args[i], sizeof args[i], "%d", i + 1);
        push(x, (uint64_t)i + 1, args[i]);
    }
    rx_done *by[N] = { 0 };
    CU_ASSERT_EQUAL_FATAL(collect(x, by, N, 30), N);
    int slots_seen[4] = { 0 };
    for (int i = 0; i < N; i++) {
        rx_done *d = by[i];
        CU_ASSERT_EQUAL(d->notrun, 0);
        CU_ASSERT_EQUAL(d->fail, 0);
        CU_ASSERT_EQUAL(d->res.status, (i + 1) % 3);
        CU_ASSERT_EQUAL(d->res.attempts, 1);
        CU_ASSERT(d->res.slot >= 1 && d->res.slot <= 3);
        if (d->res.slot >= 1 && d->res.slot <= 3)
            slots_seen[d->res.slot]++;
        char want[64];
        snprintf(want, sizeof want, "job %d slot %d\n", i + 1, d->res.slot);
        char *out = read_part(x, d, 0), *err = read_part(x, d, 1);
        CU_ASSERT_STRING_EQUAL(out, want);
        snprintf(want, sizeof want, "e%d\n", i + 1);
        CU_ASSERT_STRING_EQUAL(err, want);

        CU_ASSERT_PTR_NOT_NULL(d->cmd);
        snprintf(want, sizeof want, "echo job %d slot %d; echo e%d >&2; exit $((%d %% 3))",
                 i + 1, d->res.slot, i + 1, i + 1);
        CU_ASSERT(d->cmd && !strcmp(d->cmd, want));
        free(out);
        free(err);
    }
    CU_ASSERT(slots_seen[1] > 0 && slots_seen[2] > 0 && slots_seen[3] > 0);
    free_all(x, by, N);
    rx_free(x);
}

/* A descriptor of this process's file in dir (the hold file: unlinked,
 * so its link reads "DIR/#N (deleted)" or "DIR/pmap-mpi-run.X (deleted)"),
 * opened anew, or -1. */
static int hold_fd_in(const char *dir)
{
    for (int fd = 3; fd < 1024; fd++) {
        char path[64], link[4096];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (!strncmp(link, dir, strlen(dir)) && link[strlen(dir)] == '/')
            return open(path, O_RDONLY | O_CLOEXEC);
    }
    return -1;
}

/* Outputs past the memory bound wait in the rank's one hold file: 40 of
 * 300 KB held at once cost no descriptor each and read back whole; the
 * file is reused once they are freed. */
static void test_outputs_held(void)
{
    char *dir = pm_test_tmpdir();
    const char *old_tmp = getenv("TMPDIR");
    char *saved = old_tmp ? strdup(old_tmp) : NULL;
    setenv("TMPDIR", dir, 1);
    const char *cmd[] = { "head -c 300000 /dev/zero | tr '\\0' {}; echo end >&2" };
    pmp_run_opts o = { .cmd = cmd, .ncmd = 1 };
    rx *x;
    CU_ASSERT_FATAL(rx_new(&o, 1, 1, 2, &x) == 0);
    int fds0 = open_fds();
    enum { N = 40 };
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN";
    char args[N][2];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            args[i][0] = letters[i];
            args[i][1] = 0;
            push(x, (uint64_t)i + 1, args[i]);
        }
        rx_done *by[N] = { 0 };
        CU_ASSERT_EQUAL_FATAL(collect(x, by, N, 60), N);
        CU_ASSERT(open_fds() <= fds0 + 1);          /* one hold file */
        for (int i = 0; i < N; i++) {
            CU_ASSERT_EQUAL(by[i]->fail, 0);
            CU_ASSERT_EQUAL(by[i]->out_len, 300000);
            CU_ASSERT_EQUAL(by[i]->err_len, 4);
            CU_ASSERT_PTR_NULL(by[i]->mem);
            char *out = read_part_by(x, by[i], 0, 65536 + 3);
            char *err = read_part(x, by[i], 1);
            size_t bad = 0;
            for (size_t k = 0; k < 300000; k++)
                bad += out[k] != letters[i];
            CU_ASSERT_EQUAL(bad, 0);
            CU_ASSERT_STRING_EQUAL(err, "end\n");
            free(out);
            free(err);
        }
        /* the hold file keeps what waits: 39 freed, their blocks too */
        struct stat hs = { 0 };
        int hfd = hold_fd_in(dir);
        CU_ASSERT_FATAL(hfd >= 0);
        CU_ASSERT(fstat(hfd, &hs) == 0 && hs.st_blocks * 512 >= 40 * 300000);
        for (int i = 1; i < N; i++) {
            rx_done_free(x, by[i]);
            by[i] = NULL;
        }
        CU_ASSERT(fstat(hfd, &hs) == 0 && hs.st_blocks * 512 < 3 * 300000);
        close(hfd);
        char *again = read_part_by(x, by[0], 0, 100000);   /* the one left: whole */
        CU_ASSERT(again[0] == letters[0] && again[299999] == letters[0]);
        free(again);
        /* rx_write: stdout to one descriptor, stderr to another */
        FILE *f = tmpfile(), *e = tmpfile();
        CU_ASSERT_EQUAL(rx_write(x, by[0], fileno(f), fileno(e)), 0);
        CU_ASSERT_EQUAL(lseek(fileno(f), 0, SEEK_END), 300000);
        CU_ASSERT_EQUAL(lseek(fileno(e), 0, SEEK_END), 4);
        fclose(f);
        fclose(e);
        free_all(x, by, N);
    }
    rx_free(x);
    if (saved)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
    pm_test_rmtree(dir);
    free(dir);
}

static void test_retries_and_timeout(void)
{
    char *dir = pm_test_tmpdir();
    char cnt[4096];
    snprintf(cnt, sizeof cnt, "%s/count", dir);
    /* fails until its third attempt; the output kept is the last one's */
    const char *cmd[] = { "echo try >>{}; echo n=$(wc -l <{}); [ $(wc -l <{}) -ge 3 ]" };
    pmp_run_opts o = { .cmd = cmd, .ncmd = 1, .retries = 4 };
    rx *x;
    CU_ASSERT_FATAL(rx_new(&o, 1, 1, 1, &x) == 0);
    push(x, 1, cnt);
    rx_done *by[1] = { 0 };
    CU_ASSERT_EQUAL_FATAL(collect(x, by, 1, 20), 1);
    CU_ASSERT_EQUAL(by[0]->res.status, 0);
    CU_ASSERT_EQUAL(by[0]->res.attempts, 3);
    char *out = read_part(x, by[0], 0);
    CU_ASSERT_STRING_EQUAL(out, "n=3\n");
    free(out);
    free_all(x, by, 1);
    rx_free(x);
    /* a timeout is not retried */
    const char *slow[] = { "sleep", "{}" };
    pmp_run_opts t = { .cmd = slow, .ncmd = 2, .retries = 3, .timeout = 0.3 };
    CU_ASSERT_FATAL(rx_new(&t, 0, 1, 1, &x) == 0);
    double t0 = pm_test_now();
    push(x, 1, "20");
    rx_done *tb[1] = { 0 };
    CU_ASSERT_EQUAL_FATAL(collect(x, tb, 1, 20), 1);
    CU_ASSERT(pm_test_now() - t0 < 5);
    CU_ASSERT_EQUAL(tb[0]->res.timed_out, 1);
    CU_ASSERT_EQUAL(tb[0]->res.attempts, 1);
    CU_ASSERT_EQUAL(tb[0]->out_len + tb[0]->err_len, 0);
    free_all(x, tb, 1);
    rx_free(x);
    pm_test_rmtree(dir);
    free(dir);
}

/* One slot, a running job and 9 queued: stop lets the running one end
 * with its output and drops the 9; kill kills the running one (what it
 * printed is kept, as pmap run writes it), and a job pushed afterwards
 * comes back unrun. */
static void test_stop_and_kill(void)
{
    const char *cmd[] = { "echo start; sleep {}; echo done {}" };
    pmp_run_opts o = { .cmd = cmd, .ncmd = 1 };
    for (int kill = 0; kill <= 1; kill++) {
        rx *x;
        CU_ASSERT_FATAL(rx_new(&o, 1, 1, 1, &x) == 0);
        enum { N = 10 };
        push(x, 1, kill ? "30" : "0.3");
        for (int i = 2; i <= N; i++)
            push(x, (uint64_t)i, "0");
        usleep(100000);                      /* job 1 is running */
        double t0 = pm_test_now();
        rx_stop(x, kill);
        rx_done *by[N + 1] = { 0 };
        CU_ASSERT_EQUAL_FATAL(collect(x, by, N, 20), N);
        CU_ASSERT(pm_test_now() - t0 < 5);
        CU_ASSERT_EQUAL(by[0]->notrun, 0);
        CU_ASSERT_EQUAL(by[0]->res.killed, kill);
        char *out = read_part(x, by[0], 0);
        CU_ASSERT_STRING_EQUAL(out, kill ? "start\n" : "start\ndone 0.3\n");
        free(out);
        for (int i = 1; i < N; i++)
            CU_ASSERT_EQUAL(by[i]->notrun, 1);
        if (kill) {
            push(x, N + 1, "0");
            CU_ASSERT_EQUAL(collect(x, by, N + 1, 5), N + 1);
            CU_ASSERT(by[N] && by[N]->notrun);
        }
        free_all(x, by, N + 1);
        rx_free(x);
    }
}

/* Freeing with jobs running kills their process groups (a shell's child
 * too) and returns at once. */
static void test_free_kills(void)
{
    char *dir = pm_test_tmpdir();
    char pids[4096];
    snprintf(pids, sizeof pids, "%s/pids", dir);
    const char *cmd[] = { "sleep 30 & echo $! >>{}; wait" };
    pmp_run_opts o = { .cmd = cmd, .ncmd = 1 };
    rx *x;
    CU_ASSERT_FATAL(rx_new(&o, 1, 1, 2, &x) == 0);
    push(x, 1, pids);
    push(x, 2, pids);
    int lines = 0;
    for (int i = 0; i < 100 && lines < 2; i++) {
        usleep(50000);
        FILE *f = fopen(pids, "r");
        lines = 0;
        for (int c; f && (c = fgetc(f)) != EOF;)
            lines += c == '\n';
        if (f)
            fclose(f);
    }
    CU_ASSERT_EQUAL_FATAL(lines, 2);
    double t0 = pm_test_now();
    rx_free(x);
    CU_ASSERT(pm_test_now() - t0 < 3);
    FILE *f = fopen(pids, "r");
    int pid, alive = 0;
    while (f && fscanf(f, "%d", &pid) == 1) {
        for (int i = 0; i < 20 && !pm_test_pid_gone(pid); i++)
            usleep(50000);
        alive += !pm_test_pid_gone(pid);
    }
    if (f)
        fclose(f);
    CU_ASSERT_EQUAL(alive, 0);
    pm_test_rmtree(dir);
    free(dir);
}

/* Many short jobs pushed while others end and are taken: each once. */
static void test_stress(void)
{
    const char *cmd[] = { "true" };
    pmp_run_opts o = { .cmd = cmd, .ncmd = 1 };
    rx *x;
    CU_ASSERT_FATAL(rx_new(&o, 0, 0, 4, &x) == 0);
    enum { N = 300 };
    rx_done **by = calloc(N, sizeof *by);
    size_t got = 0;
    for (int i = 1; i <= N; i++) {
        push(x, (uint64_t)i, "x");
        for (rx_done *d = rx_take(x), *next; d; d = next) {
            next = d->next;
            d->next = NULL;
            CU_ASSERT(!by[d->seq - 1]);
            by[d->seq - 1] = d;
            got++;
        }
    }
    CU_ASSERT(got <= N);
    CU_ASSERT_EQUAL(collect(x, by, N, 60), N);
    for (int i = 0; i < N; i++)
        CU_ASSERT(by[i] && by[i]->res.status == 0 && !by[i]->notrun);
    free_all(x, by, N);
    free(by);
    rx_free(x);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    static const pm_test_case cases[] = {
        { "jobs come back once, outputs in pieces, {%} per slot", test_jobs_come_back_once },
        { "outputs past memory wait in one hold file", test_outputs_held },
        { "retries keep the last output; a timeout is not retried", test_retries_and_timeout },
        { "stop lets running jobs end, kill kills them", test_stop_and_kill },
        { "free kills running jobs' groups", test_free_kills },
        { "300 jobs pushed while others are taken", test_stress },
        { NULL, NULL },
    };
    return pm_test_run("runexec", cases);
}
