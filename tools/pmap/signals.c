/* signals.c - SIGINT, SIGTERM and SIGHUP stop a run cleanly.
 *
 * Design: the signals are blocked in the main thread before any other
 * thread exists, so every thread created later (the signal thread, the
 * pipeline's OpenMP workers and I/O helpers) inherits the mask and none of
 * them is ever interrupted. One dedicated thread waits for them with
 * sigwait() and, being an ordinary thread, may call pmp_cancel_request()
 * (thread-safe but not async-signal-safe) on the handle given to the
 * pipelines as pmp_opts.cancel: it cancels the running pipeline, or makes
 * every later run return -ECANCELED at once. The first signal is
 * remembered. As a second line, the report hooks (on the pipeline's own
 * thread) call cli_signals_poll(), which requests the cancellation once more
 * in case the first request fell between the pipeline's publication and the
 * start of its run. When pm_pipeline_run() has
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
    pmp_cancel cancel;       /* shared with the pipelines (pmp_opts.cancel) */
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
        pmp_cancel_request(&s->cancel);
    }
    return NULL;
}

int cli_signals_start(cli_signals **s_ret)
{
    cli_signals *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->cancel = (pmp_cancel)PMP_CANCEL_INIT;
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

pmp_cancel *cli_signals_cancel(cli_signals *s)
{
    return &s->cancel;
}

int cli_signals_caught(const cli_signals *s)
{
    return s ? __atomic_load_n(&s->signo, __ATOMIC_SEQ_CST) : 0;
}

void cli_signals_poll(cli_signals *s)
{
    if (!s || s->polled || !cli_signals_caught(s))
        return;
    /* Inside a hook, the pipeline is running: this request reaches it. */
    pmp_cancel_request(&s->cancel);
    s->polled = 1;
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
