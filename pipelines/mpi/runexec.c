/* runexec.c - one rank's share of a distributed `pmap run` (runexec.h).
 *
 * A queue of jobs and `slots` threads; slot k (its {%}) takes the next
 * job, builds its command from the run's template (run.c's own builder,
 * so a command line reads the same as in one process), runs it with
 * pm_run_capture() -- again while it fails, up to the run's retries (not
 * after a timeout), the last attempt's output kept -- and puts it on the
 * ended list, waking the caller through an eventfd. A kill writes a second
 * eventfd that every capture polls as its cancel descriptor: running jobs
 * are killed (their whole process group, as the runner does); what they
 * printed is kept.
 *
 * Outputs wait for their turn, which may be long (-k behind a slow job):
 * one of up to HOLD_SMALL bytes is copied to memory, a bigger one to the
 * rank's hold file (one unlinked file in $TMPDIR, ranges reserved under
 * the lock, each range's blocks freed when its output is gone), so that a
 * waiting output costs neither a descriptor nor more than HOLD_SMALL bytes
 * of memory, and the file only what waits --
 * the runner's way with outputs that wait (runner.c's hold()).
 *
 * The record a job ends with is allocated when it is queued, so a job
 * that was accepted always comes back, whatever memory is left then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runexec.h"

#define HOLD_SMALL ((uint64_t)64 << 10)
#define COPY_BUF ((size_t)256 << 10)

typedef struct rx_job {
    struct rx_job *next;
    rx_done *d;              /* its end, allocated beforehand */
    size_t n;
    char **v;                /* n values, in the same allocation */
} rx_job;

typedef struct slot_arg {
    rx *x;
    int slot;
} slot_arg;

struct rx {
    const pmp_run_opts *o;
    int shell, rpl;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rx_job *head, *tail;     /* queued */
    rx_done *dhead, *dtail;  /* ended, not taken */
    int closing, killed;
    int done_fd, kill_fd;    /* eventfds */
    int hold_fd;             /* outputs that wait, or -1 */
    uint64_t hold_end;       /* bytes reserved in it */
    size_t nhold;            /* outputs in it (or being copied there) */
    pthread_t *thr;
    slot_arg *args;
    int nthr;
};

static void poke(int fd)
{
    uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* With x->mu held. */
static void put_done(rx *x, rx_done *d)
{
    d->next = NULL;
    if (x->dtail)
        x->dtail->next = d;
    else
        x->dhead = d;
    x->dtail = d;
}

/* With x->mu held: every queued job ends as not run. */
static void drop_queued(rx *x)
{
    for (rx_job *j = x->head, *next; j; j = next) {
        next = j->next;
        j->d->notrun = 1;
        put_done(x, j->d);
        free(j);
    }
    x->head = x->tail = NULL;
}

const char *rx_tmp_dir(void)
{
    const char *dir = getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

/* An unlinked file in $TMPDIR (obuf.c's way). Returns it or -errno. */
static int hold_file(void)
{
    const char *dir = rx_tmp_dir();
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : -errno;
    char name[4096];
    if (snprintf(name, sizeof name, "%s/pmap-mpi-run.XXXXXX", dir) >= (int)sizeof name)
        return -ENAMETOOLONG;
    fd = mkostemp(name, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(name);
    return fd;
}

/* Gives back d's range of the hold file: its blocks are freed at once (a
 * hole; the file's size stays), so the file holds the waiting outputs,
 * not every output of the run; the offsets restart when none is left. */
static void unhold(rx *x, rx_done *d)
{
    uint64_t len = d->out_len + d->err_len;
    if (fallocate(x->hold_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)d->hoff,
                  (off_t)len) < 0) {
        /* a filesystem without holes: the space comes back below */
    }
    pthread_mutex_lock(&x->mu);
    if (--x->nhold == 0) {
        x->hold_end = 0;
        if (ftruncate(x->hold_fd, 0) < 0) {
            /* the space comes back when the file is closed */
        }
    }
    pthread_mutex_unlock(&x->mu);
    d->hoff = UINT64_MAX;
}

/* Moves out (the job's captured output) into d: memory or the hold file.
 * Returns 0 or -errno. */
static int keep(rx *x, rx_done *d, pm_output *out)
{
    uint64_t total = d->out_len + d->err_len;
    if (!total)
        return 0;
    char *buf = malloc(total <= HOLD_SMALL ? total : COPY_BUF);
    if (!buf)
        return -ENOMEM;
    if (total <= HOLD_SMALL) {
        long a = pm_output_read(out, 0, 0, buf, d->out_len);
        long b = pm_output_read(out, 1, 0, buf + d->out_len, d->err_len);
        if (a != (long)d->out_len || b != (long)d->err_len) {
            free(buf);
            return a < 0 ? (int)a : b < 0 ? (int)b : -EIO;
        }
        d->mem = buf;
        return 0;
    }
    int err = 0;
    pthread_mutex_lock(&x->mu);
    if (x->hold_fd < 0) {
        x->hold_fd = hold_file();
        if (x->hold_fd < 0) {
            err = x->hold_fd;
            x->hold_fd = -1;
        }
    }
    if (!err) {
        d->hoff = x->hold_end;
        x->hold_end += total;
        x->nhold++;
    }
    pthread_mutex_unlock(&x->mu);
    for (int part = 0; !err && part < 2; part++) {
        uint64_t len = part ? d->err_len : d->out_len, base = part ? d->out_len : 0;
        for (uint64_t off = 0; !err && off < len;) {
            long n = pm_output_read(out, part, off, buf, COPY_BUF);
            if (n <= 0) {
                err = n < 0 ? (int)n : -EIO;
                break;
            }
            for (long w = 0; !err && w < n;) {
                ssize_t k = pwrite(x->hold_fd, buf + w, (size_t)(n - w),
                                   (off_t)(d->hoff + base + off + (uint64_t)w));
                if (k < 0 && errno != EINTR)
                    err = -errno;
                else if (k == 0)
                    err = -EIO;
                else if (k > 0)
                    w += k;
            }
            off += (uint64_t)n;
        }
    }
    free(buf);
    if (err && d->hoff != UINT64_MAX)
        unhold(x, d);
    return err;
}

/* Runs j on slot; fills j->d. */
static void run_job(rx *x, int slot, rx_job *j)
{
    rx_done *d = j->d;
    pmp_args a = { .v = (const char *const *)j->v, .n = j->n, .seq = d->seq, .slot = slot };
    pmp_cmd c;
    int err = pmp_cmd_build(&c, x->o, &a, x->shell, x->rpl);
    if (err) {
        d->fail = err;
        return;
    }
    d->cmd = c.text.p;
    c.text.p = NULL;
    pm_job job = { .argv = c.argv, .id = d->seq };
    pm_output *out = NULL;
    for (int attempt = 1;; attempt++) {
        pm_job_result res;
        memset(&res, 0, sizeof res);
        pm_output_free(out);                /* the last attempt's is kept */
        out = NULL;
        int rc = pm_run_capture(&job, x->o->timeout, x->kill_fd, &out, &res);
        if (rc < 0 && rc != -ECANCELED) {
            d->fail = rc;
            break;
        }
        res.attempts = attempt;             /* start and runtime: the last */
        res.slot = slot;                    /* attempt's, as the runner's */
        res.arg = NULL;
        d->res = res;
        if (rc == -ECANCELED) {
            d->res.killed = 1;
            break;
        }
        if (!pmp_job_failed(&res) || attempt > x->o->retries || res.timed_out)
            break;
        pthread_mutex_lock(&x->mu);
        int killed = x->killed;
        pthread_mutex_unlock(&x->mu);
        if (killed)
            break;
    }
    if (out && !d->fail) {
        pm_output_sizes(out, &d->out_len, &d->err_len);
        d->fail = keep(x, d, out);
        if (d->fail)
            d->out_len = d->err_len = 0;
    }
    pm_output_free(out);
    pmp_cmd_free(&c);
}

static void *slot_main(void *arg)
{
    slot_arg *sa = arg;
    rx *x = sa->x;
    for (;;) {
        pthread_mutex_lock(&x->mu);
        while (!x->head && !x->closing)
            pthread_cond_wait(&x->cv, &x->mu);
        rx_job *j = x->head;
        if (j) {
            x->head = j->next;
            if (!x->head)
                x->tail = NULL;
        }
        pthread_mutex_unlock(&x->mu);
        if (!j)
            return NULL;
        run_job(x, sa->slot, j);
        pthread_mutex_lock(&x->mu);
        put_done(x, j->d);
        pthread_mutex_unlock(&x->mu);
        free(j);
        poke(x->done_fd);
    }
}

int rx_new(const pmp_run_opts *o, int shell, int rpl, int slots, rx **ret)
{
    rx *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->o = o;
    x->shell = shell;
    x->rpl = rpl;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->hold_fd = -1;
    x->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    x->kill_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    x->thr = calloc((size_t)slots, sizeof *x->thr);
    x->args = calloc((size_t)slots, sizeof *x->args);
    int err = x->done_fd < 0 || x->kill_fd < 0 ? -errno : !x->thr || !x->args ? -ENOMEM : 0;
    for (int i = 0; !err && i < slots; i++) {
        x->args[i] = (slot_arg){ .x = x, .slot = i + 1 };
        int rc = pthread_create(&x->thr[i], NULL, slot_main, &x->args[i]);
        if (rc)
            err = -rc;
        else
            x->nthr++;
    }
    if (err) {
        rx_free(x);
        return err;
    }
    *ret = x;
    return 0;
}

int rx_push(rx *x, uint64_t seq, uint64_t tag, const char *const *v, size_t n)
{
    size_t bytes = sizeof(rx_job) + n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(v[i]) + 1;
    rx_job *j = malloc(bytes);
    rx_done *d = calloc(1, sizeof *d);
    if (!j || !d) {
        free(j);
        free(d);
        return -ENOMEM;
    }
    j->next = NULL;
    j->d = d;
    j->n = n;
    j->v = (char **)(j + 1);
    char *p = (char *)(j->v + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        j->v[i] = memcpy(p, v[i], len);
        p += len;
    }
    d->seq = seq;
    d->tag = tag;
    d->hoff = UINT64_MAX;
    pthread_mutex_lock(&x->mu);
    if (x->killed) {
        d->notrun = 1;
        put_done(x, d);
        free(j);
        pthread_mutex_unlock(&x->mu);
        poke(x->done_fd);
        return 0;
    }
    if (x->tail)
        x->tail->next = j;
    else
        x->head = j;
    x->tail = j;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    return 0;
}

void rx_stop(rx *x, int kill)
{
    pthread_mutex_lock(&x->mu);
    drop_queued(x);
    if (kill && !x->killed) {
        x->killed = 1;
        poke(x->kill_fd);
    }
    pthread_mutex_unlock(&x->mu);
    poke(x->done_fd);
}

int rx_fd(const rx *x)
{
    return x->done_fd;
}

rx_done *rx_take(rx *x)
{
    uint64_t v;
    while (read(x->done_fd, &v, sizeof v) < 0 && errno == EINTR)   /* first: a later */
        ;                                                          /* end pokes again */
    pthread_mutex_lock(&x->mu);
    rx_done *d = x->dhead;
    x->dhead = x->dtail = NULL;
    pthread_mutex_unlock(&x->mu);
    return d;
}

long rx_read(rx *x, const rx_done *d, uint64_t off, void *buf, size_t cap)
{
    uint64_t total = d->out_len + d->err_len;
    if (off >= total)
        return 0;
    if (cap > total - off)
        cap = (size_t)(total - off);
    if (cap > LONG_MAX)
        cap = LONG_MAX;
    if (d->mem) {
        memcpy(buf, d->mem + off, cap);
        return (long)cap;
    }
    for (;;) {
        ssize_t n = pread(x->hold_fd, buf, cap, (off_t)(d->hoff + off));
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : n == 0 ? -EIO : (long)n;
    }
}

int rx_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            poll(&pf, 1, -1);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int rx_write(rx *x, const rx_done *d, int out_fd, int err_fd)
{
    if (d->mem) {
        int err = rx_write_all(out_fd, d->mem, d->out_len);
        return err ? err : rx_write_all(err_fd, d->mem + d->out_len, d->err_len);
    }
    char *buf = malloc(COPY_BUF);
    if (!buf)
        return -ENOMEM;
    int err = 0;
    for (uint64_t off = 0; !err && off < d->out_len + d->err_len;) {
        size_t cap = off < d->out_len && d->out_len - off < COPY_BUF
                   ? (size_t)(d->out_len - off) : COPY_BUF;   /* not across the parts */
        long n = rx_read(x, d, off, buf, cap);
        if (n <= 0) {
            err = n < 0 ? (int)n : -EIO;
            break;
        }
        err = rx_write_all(off < d->out_len ? out_fd : err_fd, buf, (size_t)n);
        off += (uint64_t)n;
    }
    free(buf);
    return err;
}

void rx_done_free(rx *x, rx_done *d)
{
    if (!d)
        return;
    if (d->hoff != UINT64_MAX)
        unhold(x, d);
    free(d->mem);
    free(d->cmd);
    free(d);
}

void rx_free(rx *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->closing = 1;
    drop_queued(x);
    if (!x->killed && x->kill_fd >= 0) {
        x->killed = 1;
        poke(x->kill_fd);
    }
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    for (int i = 0; i < x->nthr; i++)
        pthread_join(x->thr[i], NULL);
    for (rx_done *d = x->dhead, *next; d; d = next) {
        next = d->next;
        rx_done_free(x, d);
    }
    if (x->hold_fd >= 0)
        close(x->hold_fd);
    if (x->done_fd >= 0)
        close(x->done_fd);
    if (x->kill_fd >= 0)
        close(x->kill_fd);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x->thr);
    free(x->args);
    free(x);
}
