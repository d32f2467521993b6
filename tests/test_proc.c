/* test_proc.c - the job runner (pmap/proc.h): statuses, signals, a missing
 * command, grouped and ordered output through memory and spill files,
 * timeouts, retries, halting from on_done, cancellation, stdin feeding,
 * pm_run_capture and pm_shell_quote. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pmap/pmap.h>

#include "testutil.h"

#define MAXJOBS 64

typedef struct done_log {
    pm_job_result res[MAXJOBS];
    int n;
    int act_after;               /* return act once n reaches this (0: never) */
    int act;
} done_log;

static int on_done(const pm_job_result *r, void *arg)
{
    done_log *d = arg;
    if (d->n < MAXJOBS)
        d->res[d->n++] = *r;
    return d->act_after && d->n >= d->act_after ? d->act : PM_RUN_CONTINUE;
}

static const pm_job_result *by_id(const done_log *d, uint64_t id)
{
    for (int i = 0; i < d->n; i++)
        if (d->res[i].id == id)
            return &d->res[i];
    return NULL;
}

/* Runs sh -c scripts[i] for every i with opts; outputs to a temporary
 * file whose contents are returned (malloc'd). */
static char *run_all(pm_runner_opts *o, const char *const *scripts, int n, done_log *d,
                     int *wait_ret)
{
    FILE *out = tmpfile();
    CU_ASSERT_FATAL(out != NULL);
    o->size = sizeof *o;
    o->out_fd = o->err_fd = fileno(out);
    o->on_done = on_done;
    o->arg = d;
    pm_runner *r;
    CU_ASSERT_FATAL(pm_runner_new(o, &r) == 0);
    for (int i = 0; i < n; i++) {
        int slot = pm_runner_acquire(r);
        if (slot < 0) {
            CU_ASSERT_EQUAL(slot, -ECANCELED);
            break;
        }
        char *argv[] = { "/bin/sh", "-c", (char *)scripts[i], NULL };
        pm_job job = { .argv = argv, .id = (uint64_t)i + 1 };
        CU_ASSERT_EQUAL(pm_runner_start(r, slot, &job), 0);
    }
    *wait_ret = pm_runner_wait(r);
    pm_runner_free(r);
    long len = ftell(out);
    char *buf = calloc(1, (size_t)len + 1);
    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_EQUAL(pread(fileno(out), buf, (size_t)len, 0), len);
    fclose(out);
    return buf;
}

static void test_statuses(void)
{
    const char *s[] = { "exit 0", "exit 3", "kill -9 $$", "echo hi" };
    pm_runner_opts o = { .slots = 2 };
    done_log d = { 0 };
    int w;
    char *out = run_all(&o, s, 4, &d, &w);
    CU_ASSERT_EQUAL(w, 0);
    CU_ASSERT_EQUAL(d.n, 4);
    CU_ASSERT_EQUAL(by_id(&d, 1)->status, 0);
    CU_ASSERT_EQUAL(by_id(&d, 2)->status, 3);
    CU_ASSERT_EQUAL(by_id(&d, 3)->status, -1);
    CU_ASSERT_EQUAL(by_id(&d, 3)->signo, SIGKILL);
    CU_ASSERT_EQUAL(by_id(&d, 4)->out_bytes, 3);
    CU_ASSERT_STRING_EQUAL(out, "hi\n");
    for (int i = 0; i < d.n; i++)
        CU_ASSERT(d.res[i].slot >= 1 && d.res[i].slot <= 2);
    free(out);
}

static void test_not_found(void)
{
    pm_runner *r;
    done_log d = { 0 };
    pm_runner_opts o = { .size = sizeof o, .slots = 1, .on_done = on_done, .arg = &d };
    CU_ASSERT_FATAL(pm_runner_new(&o, &r) == 0);
    char *a1[] = { "pmap-no-such-command-xyz", NULL };
    char *a2[] = { "/nonexistent/dir/cmd", NULL };
    char *a3[] = { "/etc/passwd", NULL };            /* not executable */
    char **argvs[] = { a1, a2, a3 };
    for (int i = 0; i < 3; i++) {
        pm_job job = { .argv = argvs[i], .id = (uint64_t)i + 1 };
        CU_ASSERT_EQUAL(pm_runner_start(r, pm_runner_acquire(r), &job), 0);
    }
    CU_ASSERT_EQUAL(pm_runner_wait(r), 0);
    pm_runner_free(r);
    CU_ASSERT_EQUAL_FATAL(d.n, 3);
    CU_ASSERT_EQUAL(by_id(&d, 1)->status, 127);
    CU_ASSERT_EQUAL(by_id(&d, 1)->err, -ENOENT);
    CU_ASSERT_EQUAL(by_id(&d, 2)->status, 127);
    CU_ASSERT_EQUAL(by_id(&d, 3)->status, 126);
    CU_ASSERT_EQUAL(by_id(&d, 3)->err, -EACCES);
}

/* Three jobs printing a lot, interleaved in time: with keep_order and a
 * small memory bound, each job's output whole and in start order. */
static void test_keep_order_spill(void)
{
    const char *s[] = {
        "for i in $(seq 2000); do echo a$i; done; sleep 0.2; echo a-end",
        "for i in $(seq 3000); do echo b$i; done; echo b-end >&2",
        "sleep 0.1; for i in $(seq 2500); do echo c$i; done",
    };
    pm_runner_opts o = { .slots = 3, .keep_order = 1, .mem_per_job = 1000 };
    done_log d = { 0 };
    int w;
    char *out = run_all(&o, s, 3, &d, &w);
    CU_ASSERT_EQUAL(w, 0);
    {
        char *want = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&want, &len);
        for (int i = 1; i <= 2000; i++)
            fprintf(f, "a%d\n", i);
        fprintf(f, "a-end\n");
        for (int i = 1; i <= 3000; i++)
            fprintf(f, "b%d\n", i);
        fprintf(f, "b-end\n");
        for (int i = 1; i <= 2500; i++)
            fprintf(f, "c%d\n", i);
        fclose(f);
        CU_ASSERT_STRING_EQUAL(out, want);
        free(want);
    }
    free(out);
}

static void test_timeout(void)
{
    const char *s[] = { "sleep 5", "trap '' TERM; sleep 5", "sleep 0.01" };
    pm_runner_opts o = { .slots = 3, .timeout = 0.2, .kill_grace = 0.2 };
    done_log d = { 0 };
    int w;
    double t0 = pm_test_now();
    char *out = run_all(&o, s, 3, &d, &w);
    double took = pm_test_now() - t0;
    CU_ASSERT_EQUAL(w, 0);
    CU_ASSERT(took < 2.0);
    CU_ASSERT_EQUAL_FATAL(d.n, 3);
    CU_ASSERT(by_id(&d, 1)->timed_out);
    CU_ASSERT_EQUAL(by_id(&d, 1)->signo, SIGTERM);
    CU_ASSERT(by_id(&d, 2)->timed_out);
    CU_ASSERT_EQUAL(by_id(&d, 2)->signo, SIGKILL);
    CU_ASSERT(!by_id(&d, 3)->timed_out);
    CU_ASSERT_EQUAL(by_id(&d, 3)->status, 0);
    free(out);
}

static void test_retries(void)
{
    char *dir = pm_test_tmpdir();
    char script[512];
    /* fails twice (printing "bad"), then succeeds (printing "good") */
    snprintf(script, sizeof script,
             "n=$(cat %s/n 2>/dev/null || echo 0); echo $((n+1)) >%s/n; "
             "if [ $n -lt 2 ]; then echo bad; exit 1; fi; echo good", dir, dir);
    const char *s[] = { script, "exit 4" };
    pm_runner_opts o = { .slots = 1, .retries = 3 };
    done_log d = { 0 };
    int w;
    char *out = run_all(&o, s, 2, &d, &w);
    CU_ASSERT_EQUAL(w, 0);
    CU_ASSERT_STRING_EQUAL(out, "good\n");
    CU_ASSERT_EQUAL(by_id(&d, 1)->attempts, 3);
    CU_ASSERT_EQUAL(by_id(&d, 1)->status, 0);
    CU_ASSERT_EQUAL(by_id(&d, 2)->attempts, 4);
    CU_ASSERT_EQUAL(by_id(&d, 2)->status, 4);
    free(out);
    pm_test_rmtree(dir);
    free(dir);
}

static void test_halt(void)
{
    const char *s[] = { "exit 1", "sleep 5", "echo never", "echo never" };
    /* KILL after the first: the sleeper dies, nothing else starts */
    pm_runner_opts o = { .slots = 2, .kill_grace = 0.2 };
    done_log d = { .act_after = 1, .act = PM_RUN_KILL };
    int w;
    double t0 = pm_test_now();
    char *out = run_all(&o, s, 4, &d, &w);
    CU_ASSERT_EQUAL(w, -ECANCELED);
    CU_ASSERT(pm_test_now() - t0 < 2.0);
    CU_ASSERT_EQUAL(d.n, 2);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT(by_id(&d, 2) && by_id(&d, 2)->killed && by_id(&d, 2)->signo == SIGTERM);
    free(out);
    /* STOP: the running one finishes */
    const char *s2[] = { "exit 1", "sleep 0.3; echo ran", "echo never" };
    done_log d2 = { .act_after = 1, .act = PM_RUN_STOP };
    out = run_all(&o, s2, 3, &d2, &w);
    CU_ASSERT_EQUAL(w, -ECANCELED);
    CU_ASSERT_STRING_EQUAL(out, "ran\n");
    CU_ASSERT_EQUAL(d2.n, 2);
    free(out);
}

static void test_cancel(void)
{
    int efd = eventfd(0, EFD_CLOEXEC);
    const char *s[] = { "sleep 5 & sleep 5; wait" };
    pm_runner *r;
    done_log d = { 0 };
    pm_runner_opts o = { .size = sizeof o, .slots = 1, .cancel_fd = efd, .kill_grace = 0.2,
                         .on_done = on_done, .arg = &d };
    CU_ASSERT_FATAL(pm_runner_new(&o, &r) == 0);
    char *argv[] = { "/bin/sh", "-c", (char *)s[0], NULL };
    pm_job job = { .argv = argv, .id = 1 };
    CU_ASSERT_EQUAL(pm_runner_start(r, pm_runner_acquire(r), &job), 0);
    uint64_t one = 1;
    CU_ASSERT_EQUAL(write(efd, &one, sizeof one), 8);
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_runner_wait(r), -ECANCELED);
    CU_ASSERT(pm_test_now() - t0 < 2.0);   /* the background sleep died too */
    CU_ASSERT(pm_runner_cancelled(r));
    CU_ASSERT_EQUAL(pm_runner_acquire(r), -ECANCELED);
    pm_runner_free(r);
    CU_ASSERT_EQUAL(d.n, 1);
    CU_ASSERT(d.res[0].killed);
    close(efd);
}

/* max_waiting: finished jobs queue behind a slow first one only up to the
 * bound; then acquire waits for it. */
static void test_max_waiting(void)
{
    pm_runner *r;
    done_log d = { 0 };
    FILE *out = tmpfile();
    pm_runner_opts o = { .size = sizeof o, .slots = 2, .keep_order = 1, .max_waiting = 3,
                         .out_fd = fileno(out), .on_done = on_done, .arg = &d };
    CU_ASSERT_FATAL(pm_runner_new(&o, &r) == 0);
    double t0 = pm_test_now(), t_late = 0;
    for (int i = 0; i < 8; i++) {
        char script[64];
        snprintf(script, sizeof script, i ? "echo %d" : "sleep 0.4; echo %d", i);
        char *argv[] = { "/bin/sh", "-c", script, NULL };
        pm_job job = { .argv = argv, .id = (uint64_t)i + 1 };
        int slot = pm_runner_acquire(r);
        if (i == 4)
            t_late = pm_test_now() - t0;    /* jobs 1..3 wait: this waits for 0 */
        if (i == 3)
            CU_ASSERT(pm_test_now() - t0 < 0.3);
        CU_ASSERT_EQUAL(pm_runner_start(r, slot, &job), 0);
    }
    CU_ASSERT_EQUAL(pm_runner_wait(r), 0);
    pm_runner_free(r);
    CU_ASSERT(t_late >= 0.35);
    char buf[64] = { 0 };
    CU_ASSERT_EQUAL(pread(fileno(out), buf, sizeof buf - 1, 0), 16);
    CU_ASSERT_STRING_EQUAL(buf, "0\n1\n2\n3\n4\n5\n6\n7\n");
    fclose(out);
}

/* Freeing a runner with jobs running (keep_order: queued too) kills their
 * groups and gives each its on_done. */
static void test_free_running(void)
{
    pm_runner *r;
    done_log d = { 0 };
    pm_runner_opts o = { .size = sizeof o, .slots = 3, .keep_order = 1, .on_done = on_done,
                         .arg = &d };
    CU_ASSERT_FATAL(pm_runner_new(&o, &r) == 0);
    for (int i = 0; i < 3; i++) {
        char *argv[] = { "/bin/sh", "-c", i ? "sleep 5; :" : "exit 0", NULL };
        pm_job job = { .argv = argv, .id = (uint64_t)i + 1 };
        CU_ASSERT_EQUAL(pm_runner_start(r, pm_runner_acquire(r), &job), 0);
    }
    double t0 = pm_test_now();
    pm_runner_free(r);
    CU_ASSERT(pm_test_now() - t0 < 2.0);
    CU_ASSERT_EQUAL(d.n, 3);
    int killed = 0;
    for (int i = 0; i < d.n; i++)
        killed += d.res[i].killed && d.res[i].signo == SIGKILL;
    CU_ASSERT(killed >= 2);
}

static void test_capture_stdin(void)
{
    size_t n = 3 << 20;
    unsigned char *data = malloc(n);
    CU_ASSERT_FATAL(data != NULL);
    pm_test_fill_random(data, n, 7);
    char *argv[] = { "sh", "-c", "cat; echo tail >&2", NULL };
    pm_job job = { .argv = argv, .in = data, .in_len = n };
    pm_output *out;
    pm_job_result res;
    signal(SIGPIPE, SIG_IGN);
    CU_ASSERT_FATAL(pm_run_capture(&job, 0, -1, &out, &res) == 0);
    CU_ASSERT_EQUAL(res.status, 0);
    CU_ASSERT_EQUAL(res.in_bytes, n);
    CU_ASSERT_EQUAL(res.out_bytes, n);
    /* read back in pieces that straddle memory and the spill file */
    uint64_t olen = 0, elen = 0;
    pm_output_sizes(out, &olen, &elen);
    CU_ASSERT_EQUAL(olen, n);
    CU_ASSERT_EQUAL(elen, 5);
    unsigned char *back = malloc(n);
    CU_ASSERT_FATAL(back != NULL);
    uint64_t off = 0;
    long got;
    while ((got = pm_output_read(out, 0, off, back + off, off % 3 ? 100000 : 65521)) > 0)
        off += (uint64_t)got;
    CU_ASSERT_EQUAL(got, 0);
    CU_ASSERT_EQUAL(off, n);
    CU_ASSERT(memcmp(back, data, n) == 0);
    char part[8] = { 0 };
    CU_ASSERT_EQUAL(pm_output_read(out, 1, 1, part, 3), 3);
    CU_ASSERT_STRING_EQUAL(part, "ail");
    CU_ASSERT_EQUAL(pm_output_read(out, 1, 5, part, 3), 0);
    CU_ASSERT_EQUAL(pm_output_read(out, 2, 0, part, 3), -EINVAL);
    memset(back, 0, n);
    FILE *f = tmpfile(), *e = tmpfile();
    CU_ASSERT_EQUAL(pm_output_write(out, fileno(f), fileno(e)), 0);
    pm_output_free(out);
    CU_ASSERT_EQUAL(pread(fileno(f), back, n, 0), (ssize_t)n);
    CU_ASSERT(memcmp(back, data, n) == 0);
    char tail[8] = { 0 };
    CU_ASSERT_EQUAL(pread(fileno(e), tail, sizeof tail, 0), 5);
    CU_ASSERT_STRING_EQUAL(tail, "tail\n");
    /* a job that reads nothing: its stdin closes, no error */
    char *argv2[] = { "true", NULL };
    pm_job job2 = { .argv = argv2, .in = data, .in_len = n };
    CU_ASSERT_FATAL(pm_run_capture(&job2, 0, -1, &out, &res) == 0);
    CU_ASSERT_EQUAL(res.status, 0);
    CU_ASSERT(res.in_bytes < n);
    pm_output_free(out);
    fclose(f);
    fclose(e);
    free(back);
    free(data);
}

static void *poke_later(void *arg)
{
    usleep(300000);
    uint64_t one = 1;
    if (write(*(int *)arg, &one, sizeof one) != sizeof one)
        CU_FAIL("eventfd write");
    return NULL;
}

/* Cancelled: -ECANCELED, the job killed, and what it printed before. */
static void test_capture_cancelled(void)
{
    int efd = eventfd(0, EFD_CLOEXEC);
    CU_ASSERT_FATAL(efd >= 0);
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, poke_later, &efd) == 0);
    char *argv[] = { "sh", "-c", "echo before; echo e >&2; sleep 30; echo after", NULL };
    pm_job job = { .argv = argv };
    pm_output *out = NULL;
    pm_job_result res;
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_run_capture(&job, 0, efd, &out, &res), -ECANCELED);
    CU_ASSERT(pm_test_now() - t0 < 5);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(res.killed, 1);
    CU_ASSERT_FATAL(out != NULL);
    uint64_t ol = 0, el = 0;
    pm_output_sizes(out, &ol, &el);
    char buf[16] = { 0 };
    CU_ASSERT_EQUAL(ol, 7);
    CU_ASSERT_EQUAL(el, 2);
    CU_ASSERT_EQUAL(pm_output_read(out, 0, 0, buf, sizeof buf), 7);
    CU_ASSERT_STRING_EQUAL(buf, "before\n");
    pm_output_free(out);
    close(efd);
}

static void test_shell_quote(void)
{
    char buf[64];
    CU_ASSERT_EQUAL(pm_shell_quote("plain-file_1.txt", buf, sizeof buf), 16);
    CU_ASSERT_STRING_EQUAL(buf, "plain-file_1.txt");
    pm_shell_quote("it's a $x", buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "'it'\\''s a $x'");
    pm_shell_quote("", buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "''");
    CU_ASSERT_EQUAL(pm_shell_quote("a b", buf, 3), 5);   /* truncated, NUL-ended */
    CU_ASSERT_STRING_EQUAL(buf, "'a");
}

static void test_bad_options(void)
{
    pm_runner *r;
    pm_runner_opts o = { .size = sizeof o, .slots = -1 };
    CU_ASSERT_EQUAL(pm_runner_new(&o, &r), -EINVAL);
    o.slots = 1;
    o.timeout = -1;
    CU_ASSERT_EQUAL(pm_runner_new(&o, &r), -EINVAL);
    o.timeout = 0;
    CU_ASSERT_FATAL(pm_runner_new(&o, &r) == 0);
    char *argv[] = { "true", NULL };
    pm_job job = { .argv = argv };
    CU_ASSERT_EQUAL(pm_runner_start(r, 2, &job), -EINVAL);
    char *empty[] = { NULL };
    job.argv = empty;
    CU_ASSERT_EQUAL(pm_runner_start(r, 1, &job), -EINVAL);
    pm_runner_free(r);
    pm_runner_free(NULL);
}

int main(void)
{
    static const pm_test_case cases[] = {
        { "exit statuses, signals, output bytes, slots", test_statuses },
        { "command not found 127, not executable 126", test_not_found },
        { "keep_order with spilled outputs: whole and in order", test_keep_order_spill },
        { "timeout: TERM, then KILL after the grace", test_timeout },
        { "retries: only the last attempt's output", test_retries },
        { "halt from on_done: KILL and STOP", test_halt },
        { "cancel_fd kills the job's whole group", test_cancel },
        { "pm_run_capture: stdin fed, output kept", test_capture_stdin },
        { "pm_run_capture cancelled: what the job printed is kept", test_capture_cancelled },
        { "freeing with jobs running: killed, on_done for each", test_free_running },
        { "max_waiting bounds the finished jobs waiting", test_max_waiting },
        { "pm_shell_quote", test_shell_quote },
        { "bad options", test_bad_options },
        { NULL, NULL },
    };
    return pm_test_run("proc", cases);
}
