/* loop_threads.c - the thread-pool engine of pm_loop (see loop_engine.h),
 * for systems where io_uring is unavailable (seccomp, gVisor,
 * kernel.io_uring_disabled) or when PMAP_IO=threads.
 *
 * Design. A fixed set of workers (opts.io_threads) takes jobs from one FIFO
 * and performs one blocking system call each (pread, pwrite, fsync, ...).
 * Finished jobs go to a done list that the loop's thread collects in
 * wait(); results are reported from there, on the loop's thread, exactly as
 * the uring engine reports CQEs. One mutex `mu` guards both lists, the
 * `woken` flag and op->eng (NULL queued, the worker running it, OP_DONE); `work_cv` wakes workers, `done_cv`
 * (CLOCK_MONOTONIC, for timer deadlines) wakes the loop, and is signalled
 * only while the loop is actually waiting.
 *
 * Cancellation. A job still in the FIFO is removed and completes with
 * -ECANCELED. A running job on a regular file finishes by itself shortly.
 * A running job on a pipe, socket or terminal (offset PM_LOOP_CUR) could
 * block forever, so those wait in poll() on the descriptor AND the worker's
 * own eventfd; cancel() sets the op's cancel_req and writes that eventfd.
 * A readiness wait (PM__OP_POLL, for lib/co's sockets) is only that poll().
 * After poll() says ready, a read cannot block; a write is made with
 * RWF_NOWAIT, or where that is unsupported limited to PIPE_BUF bytes, which
 * a pipe with room accepts without blocking.
 *
 * The loop's thread, about to sleep in wait(), first runs a queued transfer
 * at an offset itself (steal()): at depth 1 that saves two wake-ups per
 * operation, and it never blocks for long.
 *
 * Workers block every signal, so signals go to the application's threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "loop_engine.h"

#define OP_DONE ((void *)1)    /* op->eng once a worker has finished it */

typedef struct th th;

typedef struct worker {
    th *t;
    pthread_t tid;
    int efd;                 /* cancel signal for a job waiting in poll() */
} worker;

struct th {
    pm_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    pm__op *q_head, *q_tail; /* jobs not yet taken (doubly linked) */
    pm__op *d_head, *d_tail; /* finished jobs, results in op->res */
    int woken, quit, loop_waiting;
    unsigned nworkers;
    worker *w;
    worker self;             /* marks a job the loop's thread runs itself */
};

/* ---- the system calls ---- */

static ssize_t sys_result(ssize_t n)
{
    return n < 0 ? -errno : n;
}

/* Waits until fd is ready for op or op is cancelled: 0, or -ECANCELED. */
static int wait_ready(worker *w, pm__op *op, short events)
{
    for (;;) {
        if (atomic_load(&op->cancel_req))
            return -ECANCELED;
        struct pollfd p[2] = {{.fd = op->fd, .events = events}, {.fd = w->efd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p[1].revents) {
            uint64_t v;
            if (read(w->efd, &v, sizeof v) < 0) { /* drained; nothing to do */ }
            continue;        /* re-check cancel_req; a stale signal just loops */
        }
        if (p[0].revents & POLLNVAL)
            return -EBADF;
        return 0;
    }
}

static ssize_t write_ready(int fd, const char *p, size_t n)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    ssize_t r = pwritev2(fd, &iov, 1, -1, RWF_NOWAIT);
    if (r >= 0 || (errno != EOPNOTSUPP && errno != EINVAL))
        return sys_result(r);
    return sys_result(write(fd, p, n > PIPE_BUF ? PIPE_BUF : n));
}

/* A transfer at the current position of a possibly non-seekable file. */
static ssize_t transfer_cur(worker *w, pm__op *op, char *p, size_t n)
{
    int is_write = op->kind == PM__OP_WRITE;
    struct stat st;
    if (fstat(op->fd, &st) < 0)
        return -errno;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode))
        return sys_result(is_write ? write(op->fd, p, n) : read(op->fd, p, n));
    for (;;) {
        int rc = wait_ready(w, op, is_write ? POLLOUT : POLLIN);
        if (rc < 0)
            return rc;
        ssize_t r = is_write ? write_ready(op->fd, p, n) : sys_result(read(op->fd, p, n));
        if (r != -EAGAIN)
            return r;
    }
}

static ssize_t transfer(worker *w, pm__op *op)
{
    char *p = (char *)op->buf + op->done;
    size_t n = op->len - op->done;
    if (n > SSIZE_MAX)
        n = SSIZE_MAX;
    if (op->off == PM_LOOP_CUR)
        return transfer_cur(w, op, p, n);
    off_t off = (off_t)(op->off + op->done);
    if (op->kind == PM__OP_WRITE)
        return sys_result(pwrite(op->fd, p, n, off));
    return sys_result(pread(op->fd, p, n, off));
}

static ssize_t execute(worker *w, pm__op *op)
{
    switch (op->kind) {
    case PM__OP_READ:
    case PM__OP_WRITE:
        return transfer(w, op);
    case PM__OP_FSYNC:
        return sys_result(op->flags ? fdatasync(op->fd) : fsync(op->fd));
    case PM__OP_OPENAT:
        return sys_result(openat(op->fd, op->path, op->flags, (mode_t)op->mode));
    case PM__OP_CLOSE:
        return sys_result(close(op->fd));
    case PM__OP_STATX:
        return sys_result(statx(op->fd, op->path, op->flags, op->mode, op->buf));
    case PM__OP_POLL:
        return wait_ready(w, op, (short)op->mode);
    default:
        return -EINVAL;
    }
}

/* ---- queues (under mu) ---- */

static void q_remove(th *t, pm__op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        t->q_head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        t->q_tail = op->prev;
}

static void push_done(th *t, pm__op *op, ssize_t res)
{
    op->res = res;
    op->eng = OP_DONE;
    op->next = NULL;
    if (t->d_tail)
        t->d_tail->next = op;
    else
        t->d_head = op;
    t->d_tail = op;
    if (t->loop_waiting)
        pthread_cond_signal(&t->done_cv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    th *t = w->t;
    pthread_mutex_lock(&t->mu);
    while (!t->quit) {
        pm__op *op = t->q_head;
        if (!op) {
            pthread_cond_wait(&t->work_cv, &t->mu);
            continue;
        }
        q_remove(t, op);
        op->eng = w;
        pthread_mutex_unlock(&t->mu);
        ssize_t res = execute(w, op);
        if (res == -EINTR)
            res = -EAGAIN;   /* loop.c retries either; keep one spelling */
        pthread_mutex_lock(&t->mu);
        push_done(t, op, res);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- engine entry points ---- */

static int th_submit(void *st, pm__op *op)
{
    th *t = st;
    pthread_mutex_lock(&t->mu);
    op->eng = NULL;
    op->next = NULL;
    op->prev = t->q_tail;
    if (t->q_tail)
        t->q_tail->next = op;
    else
        t->q_head = op;
    t->q_tail = op;
    pthread_cond_signal(&t->work_cv);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static void th_cancel(void *st, pm__op *op)
{
    th *t = st;
    pthread_mutex_lock(&t->mu);
    if (op->eng == NULL) {
        q_remove(t, op);
        push_done(t, op, -ECANCELED);
    } else if (op->eng != OP_DONE && op->eng != &t->self) {
        worker *w = op->eng;         /* (a stolen job ends soon by itself) */
        uint64_t one = 1;
        if (write(w->efd, &one, sizeof one) < 0) { /* counter full: already signalled */ }
    }
    pthread_mutex_unlock(&t->mu);
}

static void deadline_after(struct timespec *ts, int64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ns += ts->tv_nsec;
    ts->tv_sec += ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

/* A queued job the loop's thread may run itself rather than sleep: a
 * transfer at an offset (regular files, block devices; streams refuse
 * offsets at once), which cannot block indefinitely. Under mu. */
static pm__op *steal(th *t)
{
    for (pm__op *op = t->q_head; op; op = op->next) {
        if ((op->kind == PM__OP_READ || op->kind == PM__OP_WRITE) && op->off != PM_LOOP_CUR) {
            q_remove(t, op);
            op->eng = &t->self;
            return op;
        }
    }
    return NULL;
}

/* Runs a stolen job with mu released, saving the hand-off to a worker and
 * back (two wake-ups), which costs more than a page-cache copy of 128 KiB. */
static void run_stolen(th *t, pm__op *op)
{
    pthread_mutex_unlock(&t->mu);
    ssize_t res = transfer(&t->self, op);
    pthread_mutex_lock(&t->mu);
    push_done(t, op, res == -EINTR ? -EAGAIN : res);
}

static int th_wait(void *st, int64_t timeout_ns)
{
    th *t = st;
    struct timespec dl;
    if (timeout_ns > 0)
        deadline_after(&dl, timeout_ns);
    pthread_mutex_lock(&t->mu);
    t->loop_waiting = timeout_ns != 0;
    while (timeout_ns != 0 && !t->d_head && !t->woken) {
        pm__op *job = steal(t);
        if (job) {
            run_stolen(t, job);
            continue;
        }
        if (timeout_ns < 0)
            pthread_cond_wait(&t->done_cv, &t->mu);
        else if (pthread_cond_timedwait(&t->done_cv, &t->mu, &dl) == ETIMEDOUT)
            break;
    }
    t->loop_waiting = 0;
    pm__op *op = t->d_head;
    t->d_head = t->d_tail = NULL;
    int woken = t->woken;
    t->woken = 0;
    pthread_mutex_unlock(&t->mu);
    while (op) {
        pm__op *next = op->next;     /* complete() may relink op */
        pm__loop_complete(t->loop, op, op->res);
        op = next;
    }
    if (woken)
        pm__loop_woken(t->loop);
    return 0;
}

static void th_wake(void *st)
{
    th *t = st;
    pthread_mutex_lock(&t->mu);
    t->woken = 1;
    if (t->loop_waiting)
        pthread_cond_signal(&t->done_cv);
    pthread_mutex_unlock(&t->mu);
}

/* ---- setup ---- */

static void stop_workers(th *t, unsigned started)
{
    pthread_mutex_lock(&t->mu);
    t->quit = 1;
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t->w[i].tid, NULL);
}

static void destroy(th *t)
{
    for (unsigned i = 0; i < t->nworkers; i++)
        if (t->w[i].efd >= 0)
            close(t->w[i].efd);
    pthread_cond_destroy(&t->work_cv);
    pthread_cond_destroy(&t->done_cv);
    pthread_mutex_destroy(&t->mu);
    free(t->w);
    free(t);
}

static int init_sync(th *t)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&t->work_cv, NULL);
    pthread_mutex_init(&t->mu, NULL);
    for (unsigned i = 0; i < t->nworkers; i++) {
        t->w[i].t = t;
        t->w[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (t->w[i].efd < 0)
            return -errno;
    }
    return 0;
}

static int start_workers(th *t)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* inherited by the workers */
    int rc = 0;
    unsigned i;
    for (i = 0; i < t->nworkers; i++) {
        rc = -pthread_create(&t->w[i].tid, NULL, worker_main, &t->w[i]);
        if (rc < 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        stop_workers(t, i);
    return rc;
}

static int th_init(pm_loop *loop, const pm_loop_opts *opts, void **state_ret)
{
    th *t = calloc(1, sizeof *t);
    worker *w = t ? calloc(opts->io_threads, sizeof *w) : NULL;
    if (!w) {
        free(t);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < opts->io_threads; i++)
        w[i].efd = -1;
    t->loop = loop;
    t->self.t = t;
    t->self.efd = -1;
    t->w = w;
    t->nworkers = opts->io_threads;
    int rc = init_sync(t);
    if (rc == 0)
        rc = start_workers(t);
    if (rc < 0) {
        destroy(t);
        return rc;
    }
    *state_ret = t;
    return 0;
}

static void th_fini(void *st)
{
    th *t = st;
    stop_workers(t, t->nworkers);
    destroy(t);
}

const pm__engine pm__engine_threads = {
    .name = "threads",
    .init = th_init,
    .fini = th_fini,
    .submit = th_submit,
    .cancel = th_cancel,
    .wait = th_wait,
    .wake = th_wake,
};
