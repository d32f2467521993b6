/* signals.c - SIGINT, SIGTERM and SIGHUP stop a run cleanly.
 *
 * Design: the signals are blocked in the main thread before any other
 * thread exists, so every thread created later (the signal thread, the
 * pipeline's OpenMP workers and I/O helpers) inherits the mask and none of
 * them is ever interrupted. One dedicated thread waits for them with
 * sigwait() and, being an ordinary thread, may call pm_pipeline_cancel()
 * (thread-safe but not async-signal-safe) on the pipeline the pipelines
 * publish in the slot given as pmp_opts.running. The first signal is
 * remembered; a signal that arrives while no pipeline is published (before a
 * run starts, or between two runs) is caught by cli_signals_poll(), which the
 * report hooks call on the pipeline's own thread, and by the commands, which
 * check cli_signals_caught() before each run. When pm_pipeline_run() has
 * returned (temporaries removed, buffers released), the main thread ends
 * the process with cli_signals_die(), which re-raises the signal so that a
 * calling shell sees it (status 128 + signo).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

struct cli_signals {
    sigset_t set;            /* SIGINT, SIGTERM, SIGHUP */
    pthread_t thread;        /* the sigwait() loop */
    pm_pipeline *running;    /* published by the pipelines (atomic access) */
    int signo;               /* first signal received, 0 if none (atomic) */
    int polled;              /* cancel already issued from the hooks */
};

static void *signal_thread(void *arg)
{
    cli_signals *s = arg;
    for (;;) {
        int sig;
        if (sigwait(&s->set, &sig))
            continue;
        int none = 0;
        __atomic_compare_exchange_n(&s->signo, &none, sig, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST);
        pm_pipeline *pl = __atomic_load_n(&s->running, __ATOMIC_ACQUIRE);
        if (pl)
            pm_pipeline_cancel(pl);
    }
    return NULL;
}

int cli_signals_start(cli_signals **s_ret)
{
    cli_signals *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    sigemptyset(&s->set);
    sigaddset(&s->set, SIGINT);
    sigaddset(&s->set, SIGTERM);
    sigaddset(&s->set, SIGHUP);
    int rc = pthread_sigmask(SIG_BLOCK, &s->set, NULL);
    if (!rc)
        rc = pthread_create(&s->thread, NULL, signal_thread, s);
    if (rc) {
        free(s);
        return -rc;
    }
    /* The thread lives until the process exits; s is never freed. */
    *s_ret = s;
    return 0;
}

pm_pipeline **cli_signals_slot(cli_signals *s)
{
    return &s->running;
}

int cli_signals_caught(const cli_signals *s)
{
    return s ? __atomic_load_n(&s->signo, __ATOMIC_SEQ_CST) : 0;
}

void cli_signals_poll(cli_signals *s)
{
    if (!s || s->polled || !cli_signals_caught(s))
        return;
    /* On the pipeline's calling thread, inside a hook: the pipeline in the
     * slot is alive for the duration of this call. */
    pm_pipeline *pl = __atomic_load_n(&s->running, __ATOMIC_ACQUIRE);
    if (pl) {
        pm_pipeline_cancel(pl);
        s->polled = 1;
    }
}

_Noreturn void cli_signals_die(int signo)
{
    fflush(stdout);
    fflush(stderr);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    signal(signo, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(signo);
    _exit(128 + signo);
}
