/* runner.c - many jobs at once, each one's output together (pmap/proc.h).
 *
 * Design: one thread drives everything with poll(): for each running job
 * its pidfd (readable once it exited), its stdout and stderr pipes and,
 * when it is fed, its stdin pipe (non-blocking), plus the caller's
 * cancel descriptor. A job is finished when it has exited and both its
 * output pipes are at end of file (its children may hold them open); then
 * on_done runs and its slot is free.
 *
 * Output: at any time at most one job, the owner, streams: what it prints
 * goes straight to out_fd/err_fd. Every other job's output goes into its
 * pm__obuf (memory up to mem_per_job, then its own temporary file). The
 * owner is chosen by advance():
 *   keep_order   the queue holds jobs in start order; its head becomes the
 *                owner (its buffered output is written first); finished
 *                jobs behind it wait in the queue.
 *   otherwise    the queue holds finished jobs in completion order; when
 *                there is no owner they are written at once. A running
 *                job becomes the owner when it prints while there is none
 *                (or, when the owner ends, the oldest that has printed),
 *                so outputs come in completion order, except that the
 *                owner's own comes first once it has begun.
 * A finished job waiting in the queue keeps its output in memory while all
 * waiting jobs hold less than slots * mem_per_job, else it is moved to one
 * shared temporary file (held_fd), so neither memory nor descriptors grow
 * with the number of waiting jobs; at most max_waiting of them (a small
 * struct each) wait before pm_runner_acquire() waits for the owner too.
 * Waiting jobs imply a running one (the owner, or the queue's head), so
 * that wait always ends. With retries, a job is never the owner
 * before its last attempt, so a failed attempt's output can be dropped.
 *
 * Killing: a job is its own process group; kill_job() sends SIGTERM to the
 * group and sets a deadline kill_grace later, when SIGKILL follows. The
 * timeout works the same way, from the job's start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pmap/config.h>

#include "proc/proc_int.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define SCRATCH (64 * 1024)
#define STACK_SIZE (256 * 1024)

typedef struct job {
    struct job *next;            /* in the output queue */
    uint64_t seq;                /* start order */
    int slot;                    /* 1..slots while running, 0 once finished */
    pid_t pid;
    int pidfd, fd_out, fd_err, fd_in;   /* -1 once closed */
    int exited, finished;
    int term_sent;               /* SIGTERM sent; deadline is for SIGKILL */
    int retries_left;
    int exec_err;
    double t0;                   /* monotonic start */
    double deadline;             /* monotonic; 0: none */
    size_t in_off;
    pm_job spec;                 /* argv points into argv_mem */
    char **argv_mem;
    pm__obuf out, err;
    int held;                    /* output moved to the shared file */
    uint64_t hoff[2], hlen[2];   /* where, when held */
    pm_job_result res;
} job;

struct pm_runner {
    pm_runner_opts o;
    job **slot;                  /* [1..slots]; NULL: free */
    int nrunning;
    uint64_t next_seq;
    job *qhead, *qtail;          /* output queue (see the top) */
    job *owner;                  /* the streaming job, or NULL */
    int stop, kill, cancelled, err;
    int capture;                 /* pm_run_capture: keep output, never write */
    pm_output *captured;
    int devnull;
    int held_fd;                 /* shared file of waiting jobs, or -1 */
    uint64_t held_end;
    size_t held_mem;             /* memory of jobs waiting in the queue */
    size_t nheld;                /* jobs whose output is in held_fd */
    size_t nwaiting;             /* finished jobs in the queue */
    char *scratch;
    pm__spawn sp;
    char which_name[256], which_path[PATH_MAX];   /* last PATH lookup */
    struct pollfd *pfd;
    job **pjob;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set_err(pm_runner *r, int err)
{
    if (!r->err)
        r->err = err;
}

/* ---- creating and freeing ---- */

int pm_runner_new(const pm_runner_opts *opts, pm_runner **r_ret)
{
    pm_runner_opts o = { 0 };
    if (opts)
        memcpy(&o, opts, opts->size && opts->size < sizeof o ? opts->size : sizeof o);
    int slots = pm_resolve_jobs(o.slots);
    if (slots < 0 || o.timeout < 0 || o.kill_grace < 0 || o.retries < 0)
        return -EINVAL;
    o.slots = slots;
    o.out_fd = o.out_fd ? o.out_fd : 1;
    o.err_fd = o.err_fd ? o.err_fd : 2;
    o.mem_per_job = o.mem_per_job ? o.mem_per_job : 64 * 1024;
    o.kill_grace = o.kill_grace ? o.kill_grace : 1.0;
    o.max_waiting = o.max_waiting ? o.max_waiting : (size_t)slots * 1024;
    pm_runner *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->o = o;
    r->held_fd = -1;
    r->slot = calloc((size_t)slots + 1, sizeof *r->slot);
    r->pfd = calloc((size_t)slots * 4 + 1, sizeof *r->pfd);
    r->pjob = calloc((size_t)slots * 4 + 1, sizeof *r->pjob);
    r->scratch = malloc(SCRATCH);
    r->sp.stack_size = STACK_SIZE;
    r->sp.stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    r->devnull = fd < 0 ? -errno : pm__proc_fd_high(fd);
    if (!r->slot || !r->pfd || !r->pjob || !r->scratch || r->sp.stack == MAP_FAILED ||
        r->devnull < 0) {
        int err = r->devnull < 0 ? r->devnull : -ENOMEM;
        if (r->sp.stack == MAP_FAILED)
            r->sp.stack = NULL;
        pm_runner_free(r);
        return err;
    }
    *r_ret = r;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void job_free(job *j)
{
    close_fd(&j->pidfd);
    close_fd(&j->fd_out);
    close_fd(&j->fd_err);
    close_fd(&j->fd_in);
    pm__obuf_reset(&j->out);
    pm__obuf_reset(&j->err);
    free(j->argv_mem);
    free(j);
}

void pm_runner_free(pm_runner *r)
{
    if (!r)
        return;
    while (r->qhead) {               /* first: running jobs may be queued too */
        job *j = r->qhead;
        r->qhead = j->next;
        if (j->finished)
            job_free(j);
    }
    for (int i = 1; r->slot && i <= r->o.slots; i++) {
        job *j = r->slot[i];
        if (!j)
            continue;
        if (!j->exited) {
            siginfo_t si;
            kill(-j->pid, SIGKILL);
            waitid(P_PIDFD, (id_t)j->pidfd, &si, WEXITED);
            j->res.status = -1;
            j->res.signo = SIGKILL;
        }
        j->res.killed = 1;
        if (r->o.on_done)            /* every started job gets its call */
            r->o.on_done(&j->res, r->o.arg);
        if (j != r->owner)
            job_free(j);
    }
    if (r->owner)
        job_free(r->owner);
    if (r->sp.stack)
        munmap(r->sp.stack, STACK_SIZE);
    if (r->devnull >= 0)
        close(r->devnull);
    close_fd(&r->held_fd);
    free(r->slot);
    free(r->pfd);
    free(r->pjob);
    free(r->scratch);
    free(r);
}

int pm_runner_cancelled(const pm_runner *r)
{
    return r->cancelled;
}

/* ---- output ---- */

static void enqueue(pm_runner *r, job *j)
{
    j->next = NULL;
    if (r->qtail)
        r->qtail->next = j;
    else
        r->qhead = j;
    r->qtail = j;
}

static job *dequeue(pm_runner *r)
{
    job *j = r->qhead;
    r->qhead = j->next;
    if (!r->qhead)
        r->qtail = NULL;
    return j;
}

/* Appends b's bytes to the shared file; *off, *len say where. */
static int hold_buf(pm_runner *r, pm__obuf *b, uint64_t *off, uint64_t *len)
{
    *off = r->held_end;
    *len = 0;
    if (!b->len && !b->flen)
        return 0;
    if (r->held_fd < 0) {
        int fd = pm__tmpfile();
        if (fd < 0)
            return fd;
        r->held_fd = fd;
    }
    if (lseek(r->held_fd, (off_t)r->held_end, SEEK_SET) < 0)
        return -errno;
    int err = pm__obuf_write(b, r->held_fd, r->scratch, SCRATCH);
    if (err)
        return err;
    *len = b->len + b->flen;
    r->held_end += *len;
    pm__obuf_reset(b);
    return 0;
}

/* A finished job that must wait for its turn. */
static void hold(pm_runner *r, job *j)
{
    r->nwaiting++;
    size_t mem = j->out.len + j->err.len;
    if (j->out.fd < 0 && j->err.fd < 0 &&
        r->held_mem + mem <= (size_t)r->o.slots * r->o.mem_per_job) {
        r->held_mem += mem;
        return;
    }
    int err = hold_buf(r, &j->out, &j->hoff[0], &j->hlen[0]);
    if (!err)
        err = hold_buf(r, &j->err, &j->hoff[1], &j->hlen[1]);
    if (err)
        set_err(r, err);
    j->held = 1;
    r->nheld++;
}

static int write_held(pm_runner *r, int fd, uint64_t off, uint64_t len)
{
    while (len) {
        size_t n = len < SCRATCH ? (size_t)len : SCRATCH;
        ssize_t got = pread(r->held_fd, r->scratch, n, (off_t)off);
        if (got <= 0)
            return got < 0 ? -errno : -EIO;
        int err = pm__write_all(fd, r->scratch, (size_t)got);
        if (err)
            return err;
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return 0;
}

/* Writes what j has buffered: stdout, then stderr. */
static void emit(pm_runner *r, job *j)
{
    int err;
    if (j->held) {
        err = write_held(r, r->o.out_fd, j->hoff[0], j->hlen[0]);
        if (!err)
            err = write_held(r, r->o.err_fd, j->hoff[1], j->hlen[1]);
        j->held = 0;
        if (!--r->nheld && r->held_end > (64u << 20)) {
            r->held_end = 0;
            if (ftruncate(r->held_fd, 0))
                err = err ? err : -errno;
        }
    } else {
        if (j->finished)
            r->held_mem -= j->out.len + j->err.len;
        err = pm__obuf_write(&j->out, r->o.out_fd, r->scratch, SCRATCH);
        if (!err)
            err = pm__obuf_write(&j->err, r->o.err_fd, r->scratch, SCRATCH);
    }
    pm__obuf_reset(&j->out);
    pm__obuf_reset(&j->err);
    if (err)
        set_err(r, err);
}

/* The oldest running job that printed something and may stream. */
static job *next_speaker(pm_runner *r)
{
    job *best = NULL;
    for (int i = 1; i <= r->o.slots; i++) {
        job *j = r->slot[i];
        if (j && !j->retries_left && (j->out.len || j->out.flen || j->err.len ||
                                      j->err.flen) && (!best || j->seq < best->seq))
            best = j;
    }
    return best;
}

/* Writes whatever may be written now and picks the next owner. */
static void advance(pm_runner *r)
{
    if (r->capture)
        return;
    for (;;) {
        if (r->owner) {
            if (!r->owner->finished)
                return;
            job_free(r->owner);
            r->owner = NULL;
        }
        if (!r->o.keep_order) {
            while (r->qhead) {
                job *j = dequeue(r);
                emit(r, j);
                job_free(j);
                r->nwaiting--;
            }
            r->owner = next_speaker(r);
            if (r->owner)
                emit(r, r->owner);
            return;
        }
        job *j = r->qhead;
        if (!j || (!j->finished && j->retries_left))
            return;
        dequeue(r);
        emit(r, j);
        if (!j->finished) {
            r->owner = j;
            return;
        }
        job_free(j);
        r->nwaiting--;
    }
}

/* ---- starting and finishing ---- */

/* Copies argv into one block. */
static char **copy_argv(char *const *argv)
{
    size_t n = 0, bytes = 0;
    for (; argv[n]; n++)
        bytes += strlen(argv[n]) + 1;
    char **v = malloc((n + 1) * sizeof *v + bytes);
    if (!v)
        return NULL;
    char *s = (char *)(v + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(argv[i]) + 1;
        v[i] = memcpy(s, argv[i], l);
        s += l;
    }
    v[n] = NULL;
    return v;
}

static int lookup(pm_runner *r, const char *name, const char **path)
{
    if (!strcmp(name, r->which_name) && r->which_path[0]) {
        *path = r->which_path;
        return 0;
    }
    r->which_path[0] = 0;
    int err = pm__proc_which(name, r->which_path, sizeof r->which_path);
    if (err) {
        r->which_path[0] = 0;
        return err;
    }
    if (strlen(name) < sizeof r->which_name)
        strcpy(r->which_name, name);
    *path = r->which_path;
    return 0;
}

/* A pipe whose parent end (*mine) is above 2; the child's end in *theirs. */
static int make_pipe(int *mine, int *theirs, int parent_reads)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC))
        return -errno;
    int m = pm__proc_fd_high(p[parent_reads ? 0 : 1]);
    int t = pm__proc_fd_high(p[parent_reads ? 1 : 0]);
    if (m < 0 || t < 0) {
        if (m >= 0)
            close(m);
        if (t >= 0)
            close(t);
        return m < 0 ? m : t;
    }
    *mine = m;
    *theirs = t;
    return 0;
}

/* Starts (or restarts) j's process. An error leaves j exited, with res.err. */
static void launch(pm_runner *r, job *j)
{
    int theirs[3] = { r->devnull, -1, -1 };
    const char *path = NULL;
    int err = lookup(r, j->spec.argv[0], &path);
    j->t0 = mono();
    j->res.start = wall();
    j->deadline = r->o.timeout > 0 ? j->t0 + r->o.timeout : 0;
    j->term_sent = 0;
    j->in_off = 0;
    if (!err)
        err = make_pipe(&j->fd_out, &theirs[1], 1);
    if (!err)
        err = make_pipe(&j->fd_err, &theirs[2], 1);
    if (!err && j->spec.in) {
        err = make_pipe(&j->fd_in, &theirs[0], 0);
        if (!err) {
            fcntl(j->fd_in, F_SETFL, O_NONBLOCK);
            fcntl(j->fd_in, F_SETPIPE_SZ, 1 << 20);   /* fewer wake-ups; may fail */
        }
    }
    if (!err) {
        err = pm__proc_spawn(&r->sp, path, j->spec.argv, theirs);
        j->pid = r->sp.pid;
        j->pidfd = r->sp.pidfd;
        j->exec_err = err ? 0 : r->sp.exec_err;
    }
    for (int i = 0; i < 3; i++)
        if (theirs[i] >= 0 && theirs[i] != r->devnull)
            close(theirs[i]);
    if (err) {
        close_fd(&j->fd_out);
        close_fd(&j->fd_err);
        close_fd(&j->fd_in);
        j->exited = 1;
        j->res.err = err;
        j->res.status = err == -ENOENT ? 127 : -1;
    }
}

static void kill_job(pm_runner *r, job *j, double now)
{
    if (j->term_sent || j->exited)
        return;
    kill(-j->pid, SIGTERM);
    j->term_sent = 1;
    j->deadline = now + r->o.kill_grace;
}

static void kill_all(pm_runner *r)
{
    double now = mono();
    for (int i = 1; i <= r->o.slots; i++)
        if (r->slot[i]) {
            r->slot[i]->res.killed = !r->slot[i]->res.timed_out;
            kill_job(r, r->slot[i], now);
        }
}

static int failed(const job *j)
{
    return j->res.status != 0 || j->res.signo || j->res.err;
}

/* Starts j's next attempt; its output so far is dropped. */
static void retry(pm_runner *r, job *j)
{
    j->retries_left--;
    pm__obuf_reset(&j->out);
    pm__obuf_reset(&j->err);
    close_fd(&j->pidfd);
    j->exited = 0;
    j->res.status = j->res.signo = j->res.err = 0;
    j->res.in_bytes = j->res.out_bytes = 0;
    launch(r, j);
}

/* j is complete: frees its slot, keeps or queues its output, runs
 * on_done and acts on its answer. */
static void finish(pm_runner *r, job *j)
{
    j->res.runtime = mono() - j->t0;
    j->res.attempts++;
    while (failed(j) && j->retries_left > 0 && !r->kill && !j->res.timed_out) {
        retry(r, j);
        if (!j->exited)
            return;                  /* running again */
        j->res.attempts++;           /* could not even start */
    }
    j->retries_left = 0;
    free(j->argv_mem);               /* not needed any more: waiting jobs stay small */
    j->argv_mem = NULL;
    j->spec.argv = NULL;
    close_fd(&j->pidfd);
    r->slot[j->slot] = NULL;
    r->nrunning--;
    j->finished = 1;
    if (r->capture) {
        r->captured->out = j->out;
        r->captured->err = j->err;
        pm__obuf_init(&j->out);
        pm__obuf_init(&j->err);
    } else if (j != r->owner) {
        if (!r->o.keep_order)
            enqueue(r, j);
        hold(r, j);
    }
    int act = r->o.on_done ? r->o.on_done(&j->res, r->o.arg) : PM_RUN_CONTINUE;
    if (act >= PM_RUN_STOP)
        r->stop = 1;
    if (act == PM_RUN_KILL && !r->kill) {
        r->kill = 1;
        kill_all(r);
    }
    advance(r);
    if (r->capture)
        job_free(j);
}

int pm_runner_start(pm_runner *r, int slot, const pm_job *spec)
{
    if (slot < 1 || slot > r->o.slots || r->slot[slot] || !spec || !spec->argv ||
        !spec->argv[0])
        return -EINVAL;
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->argv_mem = copy_argv(spec->argv))) {
        free(j);
        return -ENOMEM;
    }
    j->spec = *spec;
    j->spec.argv = j->argv_mem;
    j->seq = r->next_seq++;
    j->slot = slot;
    j->pidfd = j->fd_out = j->fd_err = j->fd_in = -1;
    j->retries_left = r->o.retries;
    pm__obuf_init(&j->out);
    pm__obuf_init(&j->err);
    j->res.id = spec->id;
    j->res.arg = spec->arg;
    j->res.slot = slot;
    r->slot[slot] = j;
    r->nrunning++;
    if (r->o.keep_order && !r->capture)
        enqueue(r, j);
    launch(r, j);
    if (j->exited)
        finish(r, j);
    else if (!r->owner)
        advance(r);
    return 0;
}

/* ---- the poll loop ---- */

static void on_output(pm_runner *r, job *j, int which)
{
    int *fd = which ? &j->fd_err : &j->fd_out;
    ssize_t n = read(*fd, r->scratch, SCRATCH);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    if (!which)
        j->res.out_bytes += (uint64_t)n;
    int err;
    if (!r->owner && !r->o.keep_order && !r->capture && !j->retries_left) {
        r->owner = j;            /* nothing is streaming: j may (see the top) */
        emit(r, j);
    }
    if (j == r->owner)
        err = pm__write_all(which ? r->o.err_fd : r->o.out_fd, r->scratch, (size_t)n);
    else
        err = pm__obuf_append(which ? &j->err : &j->out, r->scratch, (size_t)n,
                              r->capture ? (size_t)1 << 20 : r->o.mem_per_job);
    if (err) {
        set_err(r, err);
        kill_all(r);
    }
}

static void on_input(job *j)
{
    size_t left = j->spec.in_len - j->in_off;
    ssize_t n = left ? write(j->fd_in, (const char *)j->spec.in + j->in_off, left) : 0;
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0) {
        j->in_off += (size_t)n;
        j->res.in_bytes += (uint64_t)n;
    }
    if (n <= 0 || j->in_off == j->spec.in_len)
        close_fd(&j->fd_in);      /* all sent, or the job stopped reading */
}

static void reap(job *j)
{
    siginfo_t si = { 0 };
    if (waitid(P_PIDFD, (id_t)j->pidfd, &si, WEXITED | WNOHANG) || !si.si_pid)
        return;
    j->exited = 1;
    if (si.si_code == CLD_EXITED) {
        j->res.status = si.si_status;
        if (j->exec_err) {
            j->res.err = -j->exec_err;
            j->res.status = j->exec_err == ENOENT ? 127 : 126;
        }
    } else {
        j->res.status = -1;
        j->res.signo = si.si_status;
    }
}

/* Sends due signals; returns the poll timeout in ms (-1: none). */
static int timers(pm_runner *r)
{
    double now = mono(), next = 0;
    for (int i = 1; i <= r->o.slots; i++) {
        job *j = r->slot[i];
        if (!j || !j->deadline || j->exited)
            continue;
        if (now >= j->deadline) {
            if (j->term_sent) {
                kill(-j->pid, SIGKILL);
                j->deadline = 0;
                continue;
            }
            j->res.timed_out = !j->res.killed;
            kill_job(r, j, now);
        }
        if (!next || j->deadline < next)
            next = j->deadline;
    }
    return next ? (int)((next - now) * 1000) + 1 : -1;
}

static int add_fd(pm_runner *r, int n, int fd, short ev, job *j)
{
    r->pfd[n] = (struct pollfd){ .fd = fd, .events = ev };
    r->pjob[n] = j;
    return n + 1;
}

/* Fills r->pfd with every descriptor to watch; returns their number and
 * where the cancel and extra descriptors are (-1: not watched). */
static int watch_list(pm_runner *r, int extra_fd, int *cancel_at, int *extra_at)
{
    int n = 0;
    for (int i = 1; i <= r->o.slots; i++) {
        job *j = r->slot[i];
        if (!j)
            continue;
        if (j->fd_out >= 0)
            n = add_fd(r, n, j->fd_out, POLLIN, j);
        if (j->fd_err >= 0)
            n = add_fd(r, n, j->fd_err, POLLIN, j);
        if (j->fd_in >= 0)
            n = add_fd(r, n, j->fd_in, POLLOUT, j);
        if (!j->exited)
            n = add_fd(r, n, j->pidfd, POLLIN, j);
    }
    *cancel_at = *extra_at = -1;
    if (r->o.cancel_fd > 0 && !r->cancelled) {
        *cancel_at = n;
        n = add_fd(r, n, r->o.cancel_fd, POLLIN, NULL);
    }
    if (extra_fd >= 0) {
        *extra_at = n;
        n = add_fd(r, n, extra_fd, POLLIN, NULL);
    }
    return n;
}

/* Handles what poll() reported; returns 1 when the extra descriptor is
 * readable. No job finishes here, so every r->pjob[] stays valid. */
static int dispatch(pm_runner *r, int n, int cancel_at, int extra_at)
{
    int extra = 0;
    for (int k = 0; k < n; k++) {
        job *j = r->pjob[k];
        int fd = r->pfd[k].fd;
        if (!r->pfd[k].revents)
            continue;
        if (k == extra_at) {
            extra = 1;
        } else if (k == cancel_at) {
            r->cancelled = r->stop = 1;
            kill_all(r);
        } else if (fd == j->fd_out || fd == j->fd_err) {
            on_output(r, j, fd == j->fd_err);
        } else if (fd == j->fd_in) {
            on_input(j);
        } else {
            reap(j);
        }
    }
    return extra;
}

/* Waits for something to happen and handles it: output, input, exits,
 * then the jobs that are now complete. Returns 1 when extra_fd (if >= 0)
 * became readable, else 0. */
static int step(pm_runner *r, int extra_fd)
{
    int cancel_at, extra_at, timeout = timers(r);
    int n = watch_list(r, extra_fd, &cancel_at, &extra_at);
    if (poll(r->pfd, (nfds_t)n, timeout) <= 0)
        return 0;
    int extra = dispatch(r, n, cancel_at, extra_at);
    for (int i = 1; i <= r->o.slots; i++) {
        job *j = r->slot[i];
        if (j && j->exited && j->fd_out < 0 && j->fd_err < 0) {
            close_fd(&j->fd_in);     /* it exited without reading it all */
            finish(r, j);
        }
    }
    return extra;
}

int pm_runner_acquire(pm_runner *r)
{
    for (;;) {
        if (r->err)
            return r->err;
        if (r->stop)
            return -ECANCELED;
        for (int i = 1; i <= r->o.slots && r->nwaiting < r->o.max_waiting; i++)
            if (!r->slot[i])
                return i;
        step(r, -1);
    }
}

int pm_runner_wait_fd(pm_runner *r, int fd)
{
    for (;;) {
        if (r->err)
            return r->err;
        if (r->cancelled)
            return -ECANCELED;
        if (step(r, fd))
            return 1;
    }
}

int pm_runner_wait(pm_runner *r)
{
    while (r->nrunning > 0)
        step(r, -1);
    advance(r);
    return r->err ? r->err : r->stop ? -ECANCELED : 0;
}

/* ---- one job, output kept ---- */

static int copy_result(const pm_job_result *res, void *arg)
{
    *(pm_job_result *)arg = *res;
    return PM_RUN_CONTINUE;
}

int pm_run_capture(const pm_job *job_, double timeout, int cancel_fd, pm_output **out_ret,
                   pm_job_result *res)
{
    pm_runner *r;
    pm_runner_opts o = { .size = sizeof o, .slots = 1, .timeout = timeout,
                         .cancel_fd = cancel_fd };
    pm_output *out = calloc(1, sizeof *out);
    int err = out ? pm_runner_new(&o, &r) : -ENOMEM;
    if (err) {
        free(out);
        return err;
    }
    pm__obuf_init(&out->out);
    pm__obuf_init(&out->err);
    r->capture = 1;
    r->captured = out;
    r->o.on_done = copy_result;
    r->o.arg = res;
    err = pm_runner_start(r, 1, job_);
    if (!err)
        err = pm_runner_wait(r);
    if (err == -ECANCELED && !r->cancelled)
        err = 0;
    pm_runner_free(r);
    if (err && err != -ECANCELED) {
        pm_output_free(out);
        return err;
    }
    *out_ret = out;                  /* cancelled: what it printed until then */
    return err;
}

int pm_output_write(pm_output *o, int out_fd, int err_fd)
{
    char *scratch = malloc(SCRATCH);
    if (!scratch)
        return -ENOMEM;
    int err = pm__obuf_write(&o->out, out_fd, scratch, SCRATCH);
    if (!err)
        err = pm__obuf_write(&o->err, err_fd, scratch, SCRATCH);
    free(scratch);
    return err;
}

void pm_output_sizes(const pm_output *o, uint64_t *out_len, uint64_t *err_len)
{
    *out_len = o->out.len + o->out.flen;
    *err_len = o->err.len + o->err.flen;
}

long pm_output_read(const pm_output *o, int part, uint64_t off, void *buf, size_t cap)
{
    if (part != 0 && part != 1)
        return -EINVAL;
    const pm__obuf *b = part ? &o->err : &o->out;
    if (cap > LONG_MAX)
        cap = LONG_MAX;
    if (off < b->len) {
        size_t n = b->len - (size_t)off < cap ? b->len - (size_t)off : cap;
        memcpy(buf, b->mem + off, n);
        return (long)n;
    }
    off -= b->len;
    if (off >= b->flen)
        return 0;
    if (cap > b->flen - off)
        cap = (size_t)(b->flen - off);
    for (;;) {
        ssize_t n = pread(b->fd, buf, cap, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : n == 0 ? -EIO : (long)n;
    }
}

void pm_output_free(pm_output *o)
{
    if (!o)
        return;
    pm__obuf_reset(&o->out);
    pm__obuf_reset(&o->err);
    free(o);
}
