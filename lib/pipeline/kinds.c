/* kinds.c - where BLOCKING and ASYNC stages run (pm_stage_kind).
 *
 * A chunk's stages run on the pool's workers (stages.c) until one is not
 * of kind CPU. The worker hands the chunk here (pm__pl_kind_send) and goes
 * on with other work; when the stage has run, the thread that ran it calls
 * pm__pl_kind_done, which ends a serial turn and submits the chunk back to
 * the workers for its next stages. The chunk stays one of the max_chunks
 * tokens all along, so the memory bound and each file's order hold
 * whatever the kinds (the serial points and the retire point are the same).
 *
 * BLOCKING: `blocking_threads` threads (0: 8) take chunks from one FIFO
 * (mu, cv) and call the stage; a thread blocked in the stage blocks only
 * itself. Like the ASYNC thread, they block every signal but the fault
 * signals (block_signals()).
 *
 * ASYNC: one thread runs a pm_loop of its own (queue depth from max_chunks,
 * so every chunk can have a socket wait pending) and a pm_co scheduler on
 * it. A worker posts the chunk to that loop (pm_loop_post: thread-safe);
 * the post's callback spawns a detached task that calls the stage, so the
 * stage's pm_co_* calls suspend only its own task, and up to max_chunks
 * chunks wait at once. The loop is held for the run; at its end (every
 * chunk back) the hold is released, the thread's pm_loop_run returns and
 * it is joined; the run's thread then frees the scheduler and the loop
 * (release() may still be touching the loop as the thread leaves it).
 * Workers post chunks only while counted busy, and the run waits for busy
 * to drop to 0 before it stops the thread, so no post is half-way then.
 *
 * pm_pipeline_cancel posts a cancel of every task to the ASYNC loop, so
 * stages waiting on their awaits get -ECANCELED; a BLOCKING stage's call is
 * not interrupted (the run's end waits for it).
 *
 * Both started at the run's start only if the pipeline has such stages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include <pmap/co.h>
#include "pipeline_internal.h"

#define DEFAULT_BLOCKING 8u
#define MAX_ASYNC_IO_THREADS 64u

/* Calls stage c->stage of c with worker number `who`. */
static void call_stage(pm_pipeline *pl, pl_chunk *c, unsigned who)
{
    const pl_stage *s = &pl->stages[c->stage];
    if (atomic_load(&c->file->status) || atomic_load(&pl->cancelled))
        return;
    c->pub.worker_state = NULL;
    int rc = s->fn(&c->pub, s->arg, who);
    if (pm__pl_map_bus(c))
        pm__pl_file_fail(c->file, PM_REASON_CHANGED, -EIO, "file changed size while being read");
    else if (rc != 0)
        pm__pl_file_fail(c->file, PM_REASON_STAGE, rc, NULL);
}

/* The threads made here start with every signal blocked but the ones a
 * fault raises in the faulting thread (a blocked SIGBUS would kill the
 * process instead of reaching mapping.c's handler when a mapped file is
 * cut short under a stage). Returns the caller's mask in *old. */
static void block_signals(sigset_t *old)
{
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, SIGBUS);
    sigdelset(&set, SIGSEGV);
    sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGILL);
    pthread_sigmask(SIG_SETMASK, &set, old);
}

/* ---- BLOCKING ---- */

typedef struct bl_arg {
    pm_pipeline *pl;
    unsigned index;
} bl_arg;

static void *blocking_main(void *arg)
{
    bl_arg a = *(bl_arg *)arg;
    free(arg);
    pl_kinds *k = &a.pl->kinds;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        pl_chunk *c = k->q_head;
        if (!c) {
            if (k->quit)
                break;
            pthread_cond_wait(&k->cv, &k->mu);
            continue;
        }
        k->q_head = c->knext;
        if (!k->q_head)
            k->q_tail = NULL;
        pthread_mutex_unlock(&k->mu);
        call_stage(a.pl, c, a.index);
        pm__pl_kind_done(a.pl, c);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void blocking_send(pl_kinds *k, pl_chunk *c)
{
    c->knext = NULL;
    pthread_mutex_lock(&k->mu);
    if (k->q_tail)
        k->q_tail->knext = c;
    else
        k->q_head = c;
    k->q_tail = c;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static int blocking_start(pm_pipeline *pl)
{
    pl_kinds *k = &pl->kinds;
    unsigned n = pl->o.blocking_threads ? pl->o.blocking_threads : DEFAULT_BLOCKING;
    k->threads = calloc(n, sizeof *k->threads);
    if (!k->threads)
        return -ENOMEM;
    sigset_t old;
    block_signals(&old);            /* inherited: signals stay with the caller */
    int rc = 0;
    for (; k->nthreads < n && rc == 0; k->nthreads++) {
        bl_arg *a = malloc(sizeof *a);
        if (!a) {
            rc = -ENOMEM;
            break;
        }
        *a = (bl_arg){pl, k->nthreads};
        rc = -pthread_create(&k->threads[k->nthreads], NULL, blocking_main, a);
        if (rc) {
            free(a);
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ---- ASYNC ---- */

static int64_t async_task(void *arg)
{
    pl_chunk *c = arg;
    pm_pipeline *pl = c->file->pl;
    call_stage(pl, c, 0);
    pm__pl_kind_done(pl, c);
    return 0;
}

/* On the ASYNC thread: a chunk posted by a worker. */
static void async_arrived(void *arg, ssize_t res)
{
    pl_chunk *c = arg;
    pm_pipeline *pl = c->file->pl;
    int rc = res < 0 ? (int)res : pm_co_spawn(pl->kinds.asched, async_task, c, NULL);
    if (rc < 0) {
        pm__pl_file_fail(c->file, PM_REASON_STAGE, rc, "could not start the stage's task");
        pm__pl_kind_done(pl, c);
    }
}

/* On the ASYNC thread, posted by pm_pipeline_cancel: the stages' awaits
 * return -ECANCELED, so a stage waiting on a service that never answers
 * does not hold the run's end. */
static void async_cancel(void *arg, ssize_t res)
{
    pm_pipeline *pl = arg;
    if (res >= 0)
        pm_co_sched_cancel_all(pl->kinds.asched);
}

void pm__pl_kinds_cancel(pm_pipeline *pl)
{
    if (pl->async_loop)
        pm_loop_post(pl->async_loop, async_cancel, pl);
}

static void *async_main(void *arg)
{
    pl_kinds *k = arg;
    while (pm_loop_run(k->aloop) == -EINTR) {
    }
    return NULL;
}

static int async_setup(pm_pipeline *pl)
{
    pl_kinds *k = &pl->kinds;
    unsigned depth = 2 * pl->o.max_chunks + 16;
    unsigned io = pl->o.async_io_threads ? pl->o.async_io_threads : pl->o.max_chunks;
    pm_loop_opts lo = {
        .queue_depth = depth > 32768 ? 32768 : depth,
        .engine = (pm_loop_engine)pl->o.io_engine,
        .io_threads = io < 4 ? 4 : io > MAX_ASYNC_IO_THREADS ? MAX_ASYNC_IO_THREADS : io,
    };
    pm_co_opts co = {.size = sizeof co, .stack_size = pl->o.async_stack_size};
    int rc = pm_loop_new(&lo, &k->aloop);
    if (rc == 0)
        rc = pm_co_sched_new(k->aloop, &co, &k->asched);
    if (rc < 0) {
        pm_loop_free(k->aloop);
        k->aloop = NULL;
    }
    return rc;
}

static int async_start(pm_pipeline *pl)
{
    pl_kinds *k = &pl->kinds;
    int rc = async_setup(pl);
    if (rc < 0)
        return rc;
    pm_loop_hold(k->aloop);         /* its run lasts until the hold goes */
    sigset_t old;
    block_signals(&old);
    rc = -pthread_create(&k->athread, NULL, async_main, k);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pm_loop_release(k->aloop);
        pm_co_sched_free(k->asched);
        pm_loop_free(k->aloop);
        k->aloop = NULL;
        return rc;
    }
    k->athread_ok = 1;
    pthread_mutex_lock(&pl->ctl_lock);
    pl->async_loop = k->aloop;
    pthread_mutex_unlock(&pl->ctl_lock);
    if (atomic_load(&pl->cancelled))   /* a cancel that came before */
        pm_loop_post(k->aloop, async_cancel, pl);
    return 0;
}

/* ---- the interface to stages.c and the run ---- */

void pm__pl_kind_send(pm_pipeline *pl, pl_chunk *c)
{
    pl_kinds *k = &pl->kinds;
    if (pl->stages[c->stage].kind == PM_STAGE_BLOCKING) {
        blocking_send(k, c);
        return;
    }
    int rc = pm_loop_post(k->aloop, async_arrived, c);
    if (rc < 0) {
        pm__pl_file_fail(c->file, PM_REASON_STAGE, rc, "could not hand the chunk to its stage");
        pm__pl_kind_done(pl, c);
    }
}

int pm__pl_kinds_start(pm_pipeline *pl)
{
    pl_kinds *k = &pl->kinds;
    int blocking = pm__pl_has_kind(pl, PM_STAGE_BLOCKING);
    int async = pm__pl_has_kind(pl, PM_STAGE_ASYNC);
    *k = (pl_kinds){0};
    if (!blocking && !async)
        return 0;
    if (pthread_mutex_init(&k->mu, NULL) != 0)
        return -ENOMEM;
    if (pthread_cond_init(&k->cv, NULL) != 0) {
        pthread_mutex_destroy(&k->mu);
        return -ENOMEM;
    }
    k->sync_ok = 1;
    int rc = blocking ? blocking_start(pl) : 0;
    if (rc == 0 && async)
        rc = async_start(pl);
    return rc;
}

void pm__pl_kinds_stop(pm_pipeline *pl)
{
    pl_kinds *k = &pl->kinds;
    if (k->athread_ok) {
        /* Cancels post to the loop only while async_loop is set, under
         * ctl_lock: once it is cleared, none is half-way. The loop is freed
         * here, after the join: release() may still be waking the loop when
         * its pm_loop_run sees the hold gone. */
        pthread_mutex_lock(&pl->ctl_lock);
        pl->async_loop = NULL;
        pthread_mutex_unlock(&pl->ctl_lock);
        pm_loop_release(k->aloop);
        pthread_join(k->athread, NULL);
        k->athread_ok = 0;
        pm_co_sched_free(k->asched);
        pm_loop_free(k->aloop);
        k->aloop = NULL;
    }
    if (k->sync_ok) {
        pthread_mutex_lock(&k->mu);
        k->quit = 1;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
    }
    for (unsigned i = 0; i < k->nthreads; i++)
        pthread_join(k->threads[i], NULL);
    free(k->threads);
    if (k->sync_ok) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
    }
    *k = (pl_kinds){0};
}
