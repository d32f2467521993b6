/* test_app.c - pmap/app.h: reasons carried by events, event words, the
 * exit status, and signals that cancel watched pipelines (ignored ones
 * stay ignored). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pmap/app.h>
#include <pmap/pipeline.h>
#include "testutil.h"

static void test_reason_names(void)
{
    for (int r = PM_REASON_NONE; r <= PM_REASON_TEMPORARY; r++) {
        const char *n = pm_reason_name((pm_reason)r);
        CU_ASSERT_STRING_NOT_EQUAL(n, "unknown");
        for (int q = PM_REASON_NONE; q < r; q++)
            CU_ASSERT_STRING_NOT_EQUAL(n, pm_reason_name((pm_reason)q));
    }
    CU_ASSERT_STRING_EQUAL(pm_reason_name((pm_reason)999), "unknown");
}

static void test_event_print(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pm_event ev = {.kind = PM_EVENT_ERROR, .path = "a\nb\\c\001", .err = -ENOENT,
                   .message = ""};
    pm_event_print(f, "prog", &ev);
    ev.message = "cannot read";
    ev.path = "plain";
    pm_event_print(f, NULL, &ev);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, "prog: a\\nb\\\\c\\001: No such file or directory\n"
                                "plain: cannot read\n");
    free(buf);
}

static void test_tally(void)
{
    pm_tally t = {0};
    CU_ASSERT_EQUAL(pm_tally_status(&t, 0), 0);
    pm_event ev = {.kind = PM_EVENT_DONE};
    pm_tally_event(&t, &ev);
    CU_ASSERT_EQUAL(pm_tally_status(&t, 0), 0);
    ev.kind = PM_EVENT_SKIP;
    ev.incidental = 1;                    /* gzip -r passes over these */
    pm_tally_event(&t, &ev);
    CU_ASSERT_EQUAL(pm_tally_status(&t, 0), 0);
    ev.incidental = 0;
    pm_tally_event(&t, &ev);
    CU_ASSERT_EQUAL(pm_tally_status(&t, 0), 2);
    ev.kind = PM_EVENT_WARNING;
    pm_tally_event(&t, &ev);
    CU_ASSERT_EQUAL(t.warned, 1);
    ev.kind = PM_EVENT_ERROR;
    pm_tally_event(&t, &ev);
    CU_ASSERT_EQUAL(pm_tally_status(&t, 0), 1);
    CU_ASSERT_EQUAL(pm_tally_status(&t, SIGINT), 130);
    CU_ASSERT(t.done == 1 && t.skipped == 1 && t.failed == 1);
}

/* ---- reasons from a real run ---- */

typedef struct seen {
    pm_reason by_name[8];        /* a, link, fifo, x.out, exists, bad, ... */
} seen;

static const char *names[] = {"a", "bad", "exists", "fifo", "link", "x.out", NULL};

static void on_event(const pm_event *ev, void *arg)
{
    seen *s = arg;
    const char *base = strrchr(ev->path, '/');
    base = base ? base + 1 : ev->path;
    for (int i = 0; names[i]; i++)
        if (!strcmp(base, names[i]))
            s->by_name[i] = ev->reason;
    /* The library's words name no command option. */
    CU_ASSERT_PTR_NULL(strstr(ev->message, "use -"));
}

static int copy_or_fail(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    if (strstr(c->file->path, "/bad"))
        return pm_chunk_fail(c, -EBADMSG, "bad data");
    memcpy(c->out, c->data, c->len);
    c->out_len = c->len;
    return 0;
}

static int out_name(const pm_file *f, char *buf, size_t cap, void *arg)
{
    (void)arg;
    return snprintf(buf, cap, "%s.out", f->path) < (int)cap ? 0 : -ENAMETOOLONG;
}

static void test_reasons_in_events(void)
{
    char *dir = pm_test_tmpdir();
    CU_ASSERT_EQUAL_FATAL(pm_test_sh("cd '%s' && echo a > a && echo b > bad && echo e > exists && "
                                     "echo old > exists.out && mkfifo fifo && ln -s a link && "
                                     "echo x > x.out", dir), 0);
    seen s;
    memset(&s, 0xff, sizeof s);
    pm_pipeline_opts o = {.jobs = 2, .chunk_size = 4096, .out_size = 4096,
                          .sink = PM_SINK_FILES, .out_path = out_name, .skip_suffix = ".out",
                          .on_event = on_event, .arg = &s};
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "copy", PM_STAGE_PARALLEL, copy_or_fail, NULL), 0);
    const char *paths[] = {dir};
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, paths, 1, NULL), -EBADMSG);
    CU_ASSERT_EQUAL(s.by_name[0], PM_REASON_NONE);
    CU_ASSERT_EQUAL(s.by_name[1], PM_REASON_STAGE);
    CU_ASSERT_EQUAL(s.by_name[2], PM_REASON_OUTPUT_EXISTS);
    CU_ASSERT_EQUAL(s.by_name[3], PM_REASON_NOT_REGULAR);
    CU_ASSERT_EQUAL(s.by_name[4], PM_REASON_SYMLINK);
    CU_ASSERT_EQUAL(s.by_name[5], PM_REASON_HAS_SUFFIX);
    pm_pipeline_free(pl);
    pm_test_rmtree(dir);
    free(dir);
}

/* ---- signals (in a child: they change the process's mask) ---- */

static int sig_child(void)
{
    signal(SIGHUP, SIG_IGN);               /* as nohup leaves it */
    pm_signals *s;
    if (pm_signals_start(&s) != 0)
        return 10;
    pm_pipeline *pl;
    pm_pipeline_opts o = {.jobs = 1, .sink = PM_SINK_NONE};
    if (pm_pipeline_new(&o, &pl) != 0 ||
        pm_pipeline_add_stage(pl, "x", PM_STAGE_PARALLEL, copy_or_fail, NULL) != 0)
        return 11;
    kill(getpid(), SIGHUP);                /* ignored: nothing happens */
    usleep(100000);
    if (pm_signals_caught(s) != 0)
        return 12;
    kill(getpid(), SIGTERM);               /* taken by the signal thread */
    for (int i = 0; i < 500 && !pm_signals_caught(s); i++)
        usleep(10000);
    if (pm_signals_caught(s) != SIGTERM)
        return 13;
    if (pm_signals_watch(s, pl) != 0)      /* after the signal: cancelled */
        return 14;
    const char *paths[] = {"/etc/hostname"};
    if (pm_pipeline_run(pl, paths, 1, NULL) != -ECANCELED)
        return 15;
    pm_signals_unwatch(s, pl);
    pm_pipeline_free(pl);
    pm_signals_die(SIGTERM);
}

static void test_signals(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(sig_child());
    int st;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);   /* died as SIGTERM would */
    if (WIFEXITED(st))
        fprintf(stderr, "signal child exited with %d\n", WEXITSTATUS(st));
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"reason names", test_reason_names},
        {"event words, names escaped", test_event_print},
        {"tally and exit status", test_tally},
        {"reasons carried by events, no CLI words", test_reasons_in_events},
        {"signals: watched runs cancelled, ignored ones stay ignored", test_signals},
        {NULL, NULL},
    };
    return pm_test_run("app", cases);
}
