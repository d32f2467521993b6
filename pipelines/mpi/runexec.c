/* runexec.c - one rank's share of a distributed `pmap run` (runexec.h).
 *
 * A queue of jobs and `slots` threads; slot k (its {%}) takes the next
 * job, builds its command from the run's template (run.c's own builder,
 * so a command line reads the same as in one process), runs it with
 * pm_run_capture() -- again while it fails, up to the run's retries (not
 * after a timeout), the last attempt's output kept -- and puts it on the
 * ended list, waking the caller through an eventfd. A kill writes a second eventfd that every
 * capture polls as its cancel descriptor: running jobs are killed (their
 * whole process group, as the runner does), and their output dropped, as
 * pmap run drops a killed job's output.
 *
 * The record a job ends with is allocated when it is queued, so a job
 * that was accepted always comes back, whatever memory is left then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runexec.h"

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
    int shell, rpl, slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rx_job *head, *tail;     /* queued */
    rx_done *dhead, *dtail;  /* ended, not taken */
    int closing, killed;
    int done_fd, kill_fd;    /* eventfds */
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
    for (int attempt = 1;; attempt++) {
        pm_output *out = NULL;
        pm_job_result res;
        memset(&res, 0, sizeof res);
        int rc = pm_run_capture(&job, x->o->timeout, x->kill_fd, &out, &res);
        if (rc < 0 && rc != -ECANCELED) {
            d->fail = rc;
            break;
        }
        double first = attempt == 1 ? res.start : d->res.start;
        res.attempts = attempt;
        res.slot = slot;
        res.arg = NULL;
        res.runtime += res.start - first;       /* every attempt's, as the runner's */
        res.start = first;
        d->res = res;
        pm_output_free(d->out);
        d->out = out;                       /* NULL when killed */
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
    if (d->out && d->res.killed) {          /* pmap run drops a killed job's output */
        pm_output_free(d->out);
        d->out = NULL;
    }
    if (d->out)
        pm_output_sizes(d->out, &d->out_len, &d->err_len);
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
    x->slots = slots;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
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

void rx_done_free(rx_done *d)
{
    if (!d)
        return;
    pm_output_free(d->out);
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
        rx_done_free(d);
    }
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
