/* signals.c - SIGINT, SIGTERM and SIGHUP cancel the watched pipelines
 * (pmap/app.h).
 *
 * Design: the signals are blocked in the calling thread before any other
 * thread exists, so every thread created later (the signal thread, the
 * pool's workers, the loop's helpers) inherits the mask and none is ever
 * interrupted in a system call. One thread waits for them with sigwait()
 * and, being an ordinary thread, may call pm_pipeline_cancel() (thread-safe
 * but not async-signal-safe) on every watched pipeline. The first signal is
 * remembered; a pipeline watched after it is cancelled at once, so a signal
 * that falls between creating a pipeline and running it still stops it.
 * Signals that were ignored when the program started (nohup, `cmd &` in a
 * non-interactive shell) are not taken: they stay ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <pmap/app.h>

struct pm_signals {
    sigset_t set;                /* the signals we wait for */
    pthread_t thread;            /* the sigwait() loop */
    pthread_mutex_t lock;        /* guards the watch list */
    pm_pipeline **watched;
    size_t n, cap;
    _Atomic int signo;           /* first signal received, 0 if none */
};

static void cancel_all(pm_signals *s)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++)
        pm_pipeline_cancel(s->watched[i]);
    pthread_mutex_unlock(&s->lock);
}

static void *signal_thread(void *arg)
{
    pm_signals *s = arg;
    for (;;) {
        int sig;
        if (sigwait(&s->set, &sig))
            continue;
        int none = 0;
        atomic_compare_exchange_strong(&s->signo, &none, sig);
        cancel_all(s);
    }
    return NULL;
}

/* Adds signo to the set unless it is ignored now. */
static void take(sigset_t *set, int signo)
{
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
        return;
    sigaddset(set, signo);
}

int pm_signals_start(pm_signals **s_ret)
{
    pm_signals *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    sigemptyset(&s->set);
    take(&s->set, SIGINT);
    take(&s->set, SIGTERM);
    take(&s->set, SIGHUP);
    int rc = pthread_sigmask(SIG_BLOCK, &s->set, NULL);
    if (!rc)
        rc = pthread_create(&s->thread, NULL, signal_thread, s);
    if (rc) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return -rc;
    }
    /* The thread lives until the process exits; s is never freed. */
    *s_ret = s;
    return 0;
}

int pm_signals_watch(pm_signals *s, pm_pipeline *pl)
{
    if (!s || !pl)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4;
        pm_pipeline **w = realloc(s->watched, cap * sizeof *w);
        if (!w) {
            pthread_mutex_unlock(&s->lock);
            return -ENOMEM;
        }
        s->watched = w;
        s->cap = cap;
    }
    s->watched[s->n++] = pl;
    if (atomic_load(&s->signo))
        pm_pipeline_cancel(pl);          /* it came before the run */
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void pm_signals_unwatch(pm_signals *s, pm_pipeline *pl)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (s->watched[i] == pl) {
            s->watched[i] = s->watched[--s->n];
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

int pm_signals_caught(const pm_signals *s)
{
    return s ? atomic_load(&((pm_signals *)s)->signo) : 0;
}

_Noreturn void pm_signals_die(int signo)
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
