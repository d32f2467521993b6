/* runjobs.c - `pmap run` over MPI ranks (pmpi_run_jobs, see pmp_mpi.h).
 *
 * Rank 0 reads the arguments (::: groups, -a FILE or stdin) and numbers
 * them as one process does ({#}, --resume's skips); every rank, rank 0
 * included, runs jobs on its own slots (runexec.c; -j per rank, else
 * rank_slots()); rank 0 writes every job's output, grouped, to its
 * stdout and stderr, keeps the joblog, counts, applies --halt and returns
 * the exit status, so the caller sees what one process shows. Jobs run
 * on the rank they are sent to: a rank is sent one when it has a free
 * slot, or a few more than its slots (so that its slots do not wait for
 * rank 0 between jobs), never to a rank whose outputs already wait too
 * many (hold); that bounds rank 0's records (a pool) and every rank's
 * memory by the slots, never by the number of arguments.
 *
 * The messages (point to point, on a communicator of the run's own):
 *
 *   HELLO   rank -> 0   its slots and host name, once at the start
 *   JOB     0 -> rank   dispatch number d, job number, the arguments; the
 *                       rank builds the command from the template
 *                       broadcast at the start ({%} is its slot there)
 *   DONE    rank -> 0   d, the result, the command line, the output's
 *                       sizes (the output stays on the rank)
 *   NOTRUN  rank -> 0   d was dropped unstarted (STOP or KILL)
 *   FETCH   0 -> rank   send d's output; one FETCH at a time in the
 *                       whole run, in the order rank 0 writes (job order
 *                       with -k, else order of ending), so groups never
 *                       interleave and rank 0 holds one piece at a time
 *   OUT     rank -> 0   a piece (OUT_PIECE bytes) of d's stdout, then of
 *                       its stderr; the rank sends one piece per turn of
 *                       its loop, so it keeps serving while it streams
 *   STOP    0 -> rank   --halt soon: drop queued
 *   KILL    0 -> rank   --halt now, a signal or a write error: drop queued,
 *                       kill running jobs (what they printed is kept)
 *   END     0 -> rank   every job is accounted for; the rank answers BYE
 *
 * Rank 0 sends with MPI_Isend only, so a rank blocked sending it a piece
 * never waits on rank 0 sending it a job. Every loop polls MPI (no thread
 * blocks in an MPI call): a short poll() sleep when idle.
 *
 * Output of a job on another rank comes after the job ended, as GNU
 * parallel's --group gives it; a job of rank 0's streams no earlier
 * either (every job is captured the same way). --pipe and --dry-run stay
 * on rank 0 (pmp_run_jobs).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <mpi.h>

#include <pmap/config.h>
#include <pmap/error.h>

#include "pmp_mpi.h"
#include "round.h"
#include "runexec.h"
#include "wire.h"

enum { T_HELLO = 1, T_JOB, T_DONE, T_NOTRUN, T_FETCH, T_OUT, T_STOP, T_KILL, T_END, T_BYE };

#define OUT_PIECE ((size_t)1 << 20)
#define HOLD_PER_SLOT 8      /* ended jobs' outputs a rank may keep per slot
                                (each 64 KiB in memory at most: runexec.c) */
#define IDLE_MS_MAX 10       /* longest sleep between looks at MPI */

/* -j of this rank: as given, else PMAP_JOBS, else the CPUs it may use:
 * those it is bound to when mpirun bound it (its affinity is narrower
 * than the node), else the node's shared among the ranks mpirun started
 * on it (Open MPI and MPICH say how many), so that `mpirun -np CORES`
 * does not start CORES jobs on every core. */
static int rank_slots(int jobs)
{
    if (jobs || getenv("PMAP_JOBS"))
        return pm_resolve_jobs(jobs);
    int cpus = pm_cpu_count();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0 && cpus < online)
        return cpus;
    const char *v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!v)
        v = getenv("MPI_LOCALNRANKS");
    long here = v ? strtol(v, NULL, 10) : 1;
    return here > 1 ? (cpus / here > 0 ? (int)(cpus / here) : 1) : cpus;
}

/* The descriptors MPI opened (sockets to mpirun and the other ranks) are
 * not the jobs' business: close-on-exec for all above 2. Called before
 * the slots start and again once the run's connections are made (Open
 * MPI's TCP transport connects at a rank's first message to another). */
static void cloexec_all(void)
{
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(d))
            fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    }
    if (d)
        closedir(d);
}

/* The template every rank builds commands from: what pmp_cmd_build and
 * the runner need of pmp_run_opts, and the two decisions made once; the
 * command's words follow it on the wire. */
typedef struct run_tmpl {
    int32_t cmd;             /* PMPI_CMD_RUN */
    int32_t jobs, retries, shell, rpl;
    double timeout;
    uint64_t ncmd;
} run_tmpl;

static void put_template(wire *w, const pmp_run_opts *o, int shell, int rpl)
{
    run_tmpl t = { .cmd = PMPI_CMD_RUN, .jobs = o->jobs, .retries = o->retries,
                   .shell = shell, .rpl = rpl, .timeout = o->timeout, .ncmd = o->ncmd };
    wire_put(w, &t, sizeof t);
    for (size_t i = 0; i < o->ncmd; i++)
        wire_put_str(w, o->cmd[i]);
}

/* Reads put_template's; o->cmd is malloc'd, its words point into w. */
static int get_template(wire *w, pmp_run_opts *o, int *shell, int *rpl)
{
    run_tmpl t;
    memset(o, 0, sizeof *o);
    wire_get(w, &t, sizeof t);
    uint64_t n = t.ncmd;
    if (w->bad || t.cmd != PMPI_CMD_RUN || n > w->len)
        return -EBADMSG;
    const char **cmd = calloc(n ? n : 1, sizeof *cmd);
    if (!cmd)
        return -ENOMEM;
    for (uint64_t i = 0; i < n; i++)
        cmd[i] = wire_get_str(w);
    for (uint64_t i = 0; i < n; i++)
        if (!cmd[i])
            w->bad = 1;
    if (w->bad) {
        free(cmd);
        return -EBADMSG;
    }
    o->cmd = cmd;
    o->ncmd = n;
    o->jobs = t.jobs;
    o->retries = t.retries;
    o->timeout = t.timeout;
    *shell = t.shell;
    *rpl = t.rpl;
    return 0;
}

/* Receives the next message from src (MPI_ANY_SOURCE allowed) when one
 * is there (or blocks for it with wait): its bytes in *w, its tag and
 * source. Returns 1, or 0 when none waits. */
static int recv_msg(MPI_Comm comm, int src, int wait, wire *w, int *tag, int *from)
{
    MPI_Status st;
    int flag = 1;
    if (wait)
        MPI_Probe(src, MPI_ANY_TAG, comm, &st);
    else
        MPI_Iprobe(src, MPI_ANY_TAG, comm, &flag, &st);
    if (!flag)
        return 0;
    int n;
    MPI_Get_count(&st, MPI_BYTE, &n);
    wire_free(w);
    w->p = malloc(n ? (size_t)n : 1);
    if (!w->p)
        MPI_Abort(MPI_COMM_WORLD, 1);        /* the others would wait for us */
    w->len = w->cap = (size_t)n;
    MPI_Recv(w->p, n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, comm, MPI_STATUS_IGNORE);
    *tag = st.MPI_TAG;
    *from = st.MPI_SOURCE;
    return 1;
}

static void send_wire(MPI_Comm comm, int dst, int tag, wire *w)
{
    if (w->bad || w->len > INT_MAX)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Send(w->p ? w->p : (void *)"", (int)w->len, MPI_BYTE, dst, tag, comm);
    wire_free(w);
}

/* ---- rank 0 ---- */

/* A message rank 0 sent and MPI has not finished sending. */
typedef struct pending {
    struct pending *next;
    MPI_Request req;
    wire w;
} pending;

typedef struct peer {
    int slots;               /* 0 until its HELLO */
    int qmax, hold;          /* jobs it may have unended; ended ones unwritten */
    int inflight;            /* sent, not ended */
    int unwritten;           /* sent, output not written (or not known empty) */
    char host[MPI_MAX_PROCESSOR_NAME + 1];
} peer;

enum { E_FREE = 0, E_SENT, E_ENDED };

/* A job rank 0 gave out, until its output is written. */
typedef struct entry {
    uint64_t seq;
    int rank, state;
    uint64_t out_len, err_len;
    rx_done *local;          /* rank 0's own job: its output */
    pm_job_result res;       /* ended and counted: reported once written */
    char *cmd;               /* NULL: nothing to report (not run, failed) */
} entry;

typedef struct disp {
    pmp_state *st;
    MPI_Comm comm;
    int nranks;
    peer *peers;
    rx *x;                   /* rank 0's slots */
    entry *ent;              /* cap entries; messages name them by index */
    uint64_t *free_ix;       /* free entries' indexes, nfree of them */
    uint64_t cap, nfree;
    uint64_t *order;         /* -k: entries by dispatch number, mod cap */
    uint64_t head, next;     /* -k: [head, next) dispatched, not written */
    uint64_t *fifo;          /* without -k: ended entries with output */
    uint64_t fhead, ftail;
    int fetching;            /* a FETCH is out, for entry fetch_i */
    uint64_t fetch_i, fetch_got;
    int stopping, killing;
    int werr;                /* writing or keeping output failed */
    int werr_said;           /* ... and errbuf says where */
    pending *pend;
} disp;

static void isend(disp *D, int dst, int tag, wire *w)
{
    pending *p = calloc(1, sizeof *p);
    if (!p || w->bad || w->len > INT_MAX)
        MPI_Abort(MPI_COMM_WORLD, 1);
    p->w = *w;
    memset(w, 0, sizeof *w);
    MPI_Isend(p->w.p ? p->w.p : (void *)"", (int)p->w.len, MPI_BYTE, dst, tag, D->comm,
              &p->req);
    p->next = D->pend;
    D->pend = p;
}

/* Frees the sends MPI finished (wait: waits for all). */
static void reap_sends(disp *D, int wait)
{
    for (pending **pp = &D->pend; *pp;) {
        pending *p = *pp;
        int flag = 1;
        if (wait)
            MPI_Wait(&p->req, MPI_STATUS_IGNORE);
        else
            MPI_Test(&p->req, &flag, MPI_STATUS_IGNORE);
        if (!flag) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        wire_free(&p->w);
        free(p);
    }
}

static void send_empty(disp *D, int dst, int tag)
{
    wire w = {0};
    wire_put(&w, "", 1);
    isend(D, dst, tag, &w);
}

/* Stops starting jobs everywhere (kill: and kills the running ones). */
static void halt_all(disp *D, int kill)
{
    if (kill ? D->killing : D->stopping)
        return;
    D->stopping = 1;
    D->killing |= kill;
    rx_stop(D->x, kill);
    for (int r = 1; r < D->nranks; r++)
        send_empty(D, r, kill ? T_KILL : T_STOP);
}

/* A write of outputs failed: no more is written, every job is killed. */
static void write_failed(disp *D, int err)
{
    if (!err || D->werr)
        return;
    D->werr = err;
    halt_all(D, 1);
}

/* The entry a rank's message names (one given out, in `state`). */
static entry *named(disp *D, uint64_t i, int from, int state)
{
    if (i >= D->cap || D->ent[i].state != state || D->ent[i].rank != from)
        MPI_Abort(MPI_COMM_WORLD, 1);        /* a rank answered what was not asked */
    return &D->ent[i];
}

/* Entry i's output was written (or there was none, or it is dropped):
 * its job is reported, as one process reports a job after its output. */
static void entry_free(disp *D, uint64_t i)
{
    entry *e = &D->ent[i];
    if (e->cmd)
        pmp_job_report(D->st, e->seq, e->rank ? D->peers[e->rank].host : NULL, e->cmd,
                       &e->res);
    free(e->cmd);
    D->peers[e->rank].unwritten--;
    rx_done_free(D->x, e->local);
    memset(e, 0, sizeof *e);
    D->free_ix[D->nfree++] = i;
}

/* Entry i ended, with output to write or none: without -k it is freed or
 * queued for writing now; with -k it waits for its turn (write_next). */
static void entry_ended(disp *D, uint64_t i)
{
    entry *e = &D->ent[i];
    e->state = E_ENDED;
    if (D->st->o->keep_order)
        return;
    if (e->out_len + e->err_len)
        D->fifo[D->ftail++ % D->cap] = i;
    else
        entry_free(D, i);
}

/* A job ended (on rank `from`): accounting as one process does it; cmd
 * is its command line, or with fail the directory its output could not be
 * kept in. local: rank 0's record of it (its output), taken over. */
static void job_ended(disp *D, uint64_t i, int from, int fail, const pm_job_result *res,
                      const char *cmd, uint64_t out_len, uint64_t err_len, rx_done *local)
{
    entry *e = named(D, i, from, E_SENT);
    D->peers[from].inflight--;
    if (fail) {
        if (!D->werr) {
            D->werr = fail;
            D->werr_said = 1;
            pmp_err(D->st->o, "job %llu on rank %d (%s): cannot run it or keep its output "
                    "(in %s): %s",
                    (unsigned long long)e->seq, from, from ? D->peers[from].host : "here",
                    cmd ? cmd : "?", pm_strerror(fail));
        }
        halt_all(D, 1);
        out_len = err_len = 0;
    } else {
        e->res = *res;
        e->res.id = e->seq;
        e->res.arg = NULL;
        e->cmd = strdup(cmd ? cmd : "");
        if (!e->cmd)
            MPI_Abort(MPI_COMM_WORLD, 1);
        int act = pmp_account(D->st, &e->res);
        if (act != PM_RUN_CONTINUE)
            halt_all(D, act == PM_RUN_KILL);
    }
    e->out_len = out_len;
    e->err_len = err_len;
    if (local && out_len + err_len)
        e->local = local;
    else
        rx_done_free(D->x, local);
    entry_ended(D, i);
}

static void job_notrun(disp *D, uint64_t i, int from)
{
    named(D, i, from, E_SENT);
    D->peers[from].inflight--;
    D->st->stats->started--;                 /* counted when it was sent */
    entry_ended(D, i);
}

/* Handles one message from another rank. */
static void handle(disp *D, int tag, int from, wire *w)
{
    uint64_t i = 0;
    if (tag == T_HELLO) {
        int32_t slots;
        wire_get(w, &slots, sizeof slots);
        const char *host = wire_get_str(w);
        if (w->bad || slots < 1 || D->peers[from].slots)
            MPI_Abort(MPI_COMM_WORLD, 1);
        peer *p = &D->peers[from];
        p->slots = slots;
        snprintf(p->host, sizeof p->host, "%s", host ? host : "?");
        return;
    }
    wire_get(w, &i, sizeof i);
    if (tag == T_NOTRUN) {
        job_notrun(D, i, from);
    } else if (tag == T_DONE) {
        int32_t fail;
        pm_job_result res;
        uint64_t ol, el;
        wire_get(w, &fail, sizeof fail);
        wire_get(w, &res, sizeof res);
        wire_get(w, &ol, sizeof ol);
        wire_get(w, &el, sizeof el);
        const char *cmd = wire_get_str(w);
        if (w->bad)
            MPI_Abort(MPI_COMM_WORLD, 1);
        job_ended(D, i, from, fail, &res, cmd, ol, el, NULL);
    } else if (tag == T_OUT) {
        int32_t part, err;
        wire_get(w, &part, sizeof part);
        wire_get(w, &err, sizeof err);
        entry *e = named(D, i, from, E_ENDED);
        if (w->bad || !D->fetching || D->fetch_i != i)
            MPI_Abort(MPI_COMM_WORLD, 1);
        size_t n = w->len - w->pos;
        if (err < 0 && !D->werr) {
            D->werr = err;
            halt_all(D, 1);
        }
        if (err >= 0 && !D->werr)
            write_failed(D, rx_write_all(part ? 2 : 1, w->p + w->pos, n));
        D->fetch_got += n;
        if (err < 0 || D->fetch_got >= e->out_len + e->err_len) {
            D->fetching = 0;
            entry_free(D, i);
        }
    } else {
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* Writes (or asks for) the next output whose turn it is. Returns 1 when
 * it did something. */
static int write_next(disp *D)
{
    if (D->fetching)
        return 0;
    uint64_t i;
    int any = 0;
    for (;;) {
        if (D->st->o->keep_order) {          /* the oldest job's turn */
            if (D->head == D->next)
                return any;
            i = D->order[D->head % D->cap];
            if (D->ent[i].state != E_ENDED)
                return any;
            D->head++;
        } else {                             /* the first to end */
            if (D->fhead == D->ftail)
                return any;
            i = D->fifo[D->fhead++ % D->cap];
        }
        entry *e = &D->ent[i];
        if (e->out_len + e->err_len && !D->werr)
            break;
        entry_free(D, i);                    /* nothing to write */
        any = 1;
    }
    entry *e = &D->ent[i];
    if (e->rank == 0) {
        write_failed(D, rx_write(D->x, e->local, 1, 2));
        entry_free(D, i);
        return 1;
    }
    wire w = {0};
    wire_put(&w, &i, sizeof i);
    isend(D, e->rank, T_FETCH, &w);
    D->fetching = 1;
    D->fetch_i = i;
    D->fetch_got = 0;
    return 1;
}

/* The rank the next job goes to, or -1 when none may take one: the one
 * with the most free slots (rank 0 first among equals). */
static int pick(disp *D)
{
    int best = -1, score = INT_MIN;
    for (int r = 0; r < D->nranks; r++) {
        peer *p = &D->peers[r];
        if (!p->slots || p->inflight >= p->qmax || p->unwritten >= p->qmax + p->hold)
            continue;
        if (p->slots - p->inflight > score) {
            score = p->slots - p->inflight;
            best = r;
        }
    }
    return best;
}

/* Sends one job to rank r (or queues it on rank 0's slots). */
static int dispatch(disp *D, int r, const pmp_args *a)
{
    if (!D->nfree)
        MPI_Abort(MPI_COMM_WORLD, 1);        /* the pool is sized by the credits */
    uint64_t i = D->free_ix[D->nfree - 1];
    if (r == 0) {
        int err = rx_push(D->x, a->seq, i, a->v, a->n);
        if (err)
            return err;
    } else {
        wire w = {0};
        uint64_t n = a->n;
        wire_put(&w, &i, sizeof i);
        wire_put(&w, &a->seq, sizeof a->seq);
        wire_put(&w, &n, sizeof n);
        for (size_t k = 0; k < a->n; k++)
            wire_put_str(&w, a->v[k]);
        isend(D, r, T_JOB, &w);
    }
    D->nfree--;
    D->ent[i] = (entry){ .seq = a->seq, .rank = r, .state = E_SENT };
    if (D->st->o->keep_order)
        D->order[D->next++ % D->cap] = i;
    D->peers[r].inflight++;
    D->peers[r].unwritten++;
    D->st->stats->started++;
    return 0;
}

/* Rank 0's own jobs that ended. Returns 1 when there were any. */
static int take_local(disp *D)
{
    rx_done *list = rx_take(D->x);
    int any = list != NULL;
    for (rx_done *d = list, *next; d; d = next) {
        next = d->next;
        d->next = NULL;
        if (d->notrun) {
            job_notrun(D, d->tag, 0);
            rx_done_free(D->x, d);
        } else {
            job_ended(D, d->tag, 0, d->fail, &d->res, d->fail ? rx_tmp_dir() : d->cmd,
                      d->out_len, d->err_len, d);
        }
    }
    return any;
}

/* The run on rank 0, once every rank is in it. Returns the arguments'
 * error (0 or -errno). */
static int drive(disp *D, pmp_src *src, int cancel_fd)
{
    int err = 0, args_done = 0, idle = 0, have_args = 0;
    pmp_args a = {0};
    for (;;) {
        int busy = 0, tag, from, want_input = 0;
        wire w = {0};
        while (recv_msg(D->comm, MPI_ANY_SOURCE, 0, &w, &tag, &from)) {
            handle(D, tag, from, &w);
            busy = 1;
        }
        wire_free(&w);
        busy |= take_local(D);
        while (write_next(D))
            busy = 1;
        reap_sends(D, 0);
        while (!D->stopping && !args_done) {
            if (!have_args) {
                int rc = pmp_src_next(src, NULL, 1, &a);
                if (rc == -EAGAIN) {
                    want_input = 1;
                    break;
                }
                if (rc <= 0) {              /* the end, or an error: what */
                    args_done = 1;          /* was started runs to its end, */
                    err = rc;               /* as in one process */
                    break;
                }
                a.seq = ++D->st->seq;
                if (pmp_joblog_has(D->st, a.seq)) {
                    D->st->stats->skipped++;
                    continue;
                }
                have_args = 1;
            }
            int r = pick(D);
            if (r < 0)
                break;
            int rc = dispatch(D, r, &a);
            have_args = 0;
            busy = 1;
            if (rc < 0) {
                err = rc;
                args_done = 1;
            }
        }
        if ((args_done || D->stopping) && D->nfree == D->cap)
            break;                           /* every entry written */
        idle = busy ? 0 : idle + 1;
        struct pollfd pf[3];
        nfds_t np = 0, at_cancel = 0;
        pf[np++] = (struct pollfd){ .fd = rx_fd(D->x), .events = POLLIN };
        if (cancel_fd > 0 && !D->st->stats->cancelled) {
            at_cancel = np;
            pf[np++] = (struct pollfd){ .fd = cancel_fd, .events = POLLIN };
        }
        if (want_input)
            pf[np++] = (struct pollfd){ .fd = pmp_src_fd(src), .events = POLLIN };
        int ms = busy ? 0 : D->fetching ? 1 : idle / 64 + 1;
        if (poll(pf, np, ms < IDLE_MS_MAX ? ms : IDLE_MS_MAX) > 0 && at_cancel &&
            pf[at_cancel].revents) {
            D->st->stats->cancelled = 1;     /* the caller reads the signal; */
            halt_all(D, 1);                  /* ended jobs' outputs are written */
        }
    }
    return err;
}

/* Rank 0: every rank says hello; the entries are sized by their credits. */
static int meet(disp *D, int jobs)
{
    D->peers = calloc((size_t)D->nranks, sizeof *D->peers);
    if (!D->peers)
        return -ENOMEM;
    D->peers[0].slots = jobs;
    snprintf(D->peers[0].host, sizeof D->peers[0].host, ":");
    for (int got = 1; got < D->nranks;) {
        wire w = {0};
        int tag, from;
        recv_msg(D->comm, MPI_ANY_SOURCE, 1, &w, &tag, &from);
        if (tag != T_HELLO)
            MPI_Abort(MPI_COMM_WORLD, 1);
        handle(D, tag, from, &w);
        wire_free(&w);
        got++;
    }
    uint64_t cap = 1;
    for (int r = 0; r < D->nranks; r++) {
        peer *p = &D->peers[r];
        /* a queue beyond the slots, unless a --halt must stop what
         * starts after a failure as one process would */
        p->qmax = p->slots + (D->st->o->halt_when ? 0 : (p->slots + 1) / 2);
        p->hold = HOLD_PER_SLOT * p->slots;
        cap += (uint64_t)(p->qmax + p->hold);
    }
    D->cap = cap;
    D->ent = calloc(cap, sizeof *D->ent);
    D->free_ix = calloc(cap, sizeof *D->free_ix);
    D->order = calloc(cap, sizeof *D->order);
    D->fifo = calloc(cap, sizeof *D->fifo);
    if (!D->ent || !D->free_ix || !D->order || !D->fifo)
        return -ENOMEM;
    for (uint64_t i = 0; i < cap; i++)
        D->free_ix[D->nfree++] = cap - 1 - i;   /* the lowest first */
    return 0;
}

/* Rank 0: ends the run on every rank, and waits for each to say so. */
static void part(disp *D)
{
    for (int r = 1; r < D->nranks; r++)
        send_empty(D, r, T_END);
    for (int left = D->nranks - 1; left > 0;) {
        wire w = {0};
        int tag, from;
        recv_msg(D->comm, MPI_ANY_SOURCE, 1, &w, &tag, &from);
        if (tag != T_BYE)
            MPI_Abort(MPI_COMM_WORLD, 1);    /* everything was accounted for */
        left--;
        wire_free(&w);
    }
    reap_sends(D, 1);
}

int pmpi_run_jobs(const pmp_run_opts *o, pmp_run_stats *stats)
{
    int nranks;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (o->pipe || o->dry_run || nranks < 2)
        return pmp_run_jobs(o, stats);
    pmp_run_stats dummy;
    pmp_state st = { .o = o, .stats = stats ? stats : &dummy, .joblog_fd = -1 };
    memset(st.stats, 0, sizeof *st.stats);
    st.shell = pmp_run_needs_shell(o);
    st.rpl = pmp_run_has_rpl(o);
    st.total = pmp_run_tuples(o);
    int jobs = rank_slots(o->jobs);
    pmp_src src;
    int src_ok = 0;
    int err = jobs < 0 ? -EINVAL : pmp_joblog_open(&st);
    if (!err) {
        err = pmp_src_open(&src, o);
        src_ok = 1;
    }
    disp D = { .st = &st, .nranks = nranks };
    int werr = 0;
    if (!err) {
        cloexec_all();
        err = rx_new(o, st.shell, st.rpl, jobs, &D.x);
    }
    if (!err) {
        wire tmpl = {0};
        put_template(&tmpl, o, st.shell, st.rpl);
        if (tmpl.bad)
            MPI_Abort(MPI_COMM_WORLD, 1);
        pmpi__bcast_wire(&tmpl);
        wire_free(&tmpl);
        MPI_Comm_dup(MPI_COMM_WORLD, &D.comm);
        if (meet(&D, jobs) < 0)
            MPI_Abort(MPI_COMM_WORLD, 1);    /* the others are in the run */
        cloexec_all();                       /* MPI connects lazily: again */
        err = drive(&D, &src, o->cancel_fd);
        part(&D);
        MPI_Comm_free(&D.comm);
        werr = D.werr ? D.werr : st.stats->cancelled ? -ECANCELED : 0;
        if (!err && D.werr_said)
            err = D.werr;                     /* errbuf says it better */
    }
    rx_free(D.x);
    free(D.peers);
    free(D.ent);
    free(D.free_ix);
    free(D.order);
    free(D.fifo);
    if (src_ok)
        pmp_src_close(&src);
    err = pmp_run_error(&st, err, werr);
    if (st.joblog_fd >= 0)
        close(st.joblog_fd);
    free(st.done_set);
    st.stats->exit_status = pmp_exit_status(&st);
    return err;
}

/* ---- the other ranks ---- */

typedef struct held {
    struct held *next;
    rx_done *d;
} held;

static held *find_held(held **list, uint64_t d, held ***link)
{
    for (held **pp = list; *pp; pp = &(*pp)->next)
        if ((*pp)->d->tag == d) {
            *link = pp;
            return *pp;
        }
    return NULL;
}

/* Sends the jobs that ended; keeps the outputs to be fetched. */
static void report_ended(MPI_Comm comm, rx *x, held **hold)
{
    for (rx_done *d = rx_take(x), *next; d; d = next) {
        next = d->next;
        d->next = NULL;
        wire w = {0};
        wire_put(&w, &d->tag, sizeof d->tag);
        if (d->notrun) {
            send_wire(comm, 0, T_NOTRUN, &w);
            rx_done_free(x, d);
            continue;
        }
        int32_t fail = d->fail;
        wire_put(&w, &fail, sizeof fail);
        wire_put(&w, &d->res, sizeof d->res);
        wire_put(&w, &d->out_len, sizeof d->out_len);
        wire_put(&w, &d->err_len, sizeof d->err_len);
        wire_put_str(&w, fail ? rx_tmp_dir() : d->cmd);     /* failed: where */
        send_wire(comm, 0, T_DONE, &w);
        if (d->out_len + d->err_len && !fail) {
            held *h = malloc(sizeof *h);
            if (!h)
                MPI_Abort(MPI_COMM_WORLD, 1);
            h->d = d;
            h->next = *hold;
            *hold = h;
        } else {
            rx_done_free(x, d);
        }
    }
}

/* Sends the next piece of the output being fetched; frees it at its end. */
static int send_piece(MPI_Comm comm, rx *rx, held **hold, uint64_t d, uint64_t *off,
                      char *buf)
{
    held **link;
    held *h = find_held(hold, d, &link);
    if (!h)
        MPI_Abort(MPI_COMM_WORLD, 1);         /* rank 0 asked for what is not here */
    rx_done *x = h->d;
    int32_t part = *off < x->out_len ? 0 : 1;
    size_t cap = !part && x->out_len - *off < OUT_PIECE ? (size_t)(x->out_len - *off)
                                                         : OUT_PIECE;   /* one part */
    long n = rx_read(rx, x, *off, buf, cap);
    int32_t err = n < 0 ? (int32_t)n : n == 0 ? -EIO : 0;
    wire w = {0};
    wire_put(&w, &d, sizeof d);
    wire_put(&w, &part, sizeof part);
    wire_put(&w, &err, sizeof err);
    if (n > 0)
        wire_put(&w, buf, (size_t)n);
    send_wire(comm, 0, T_OUT, &w);
    *off += n > 0 ? (uint64_t)n : 0;
    if (err < 0 || *off >= x->out_len + x->err_len) {
        *link = h->next;
        rx_done_free(rx, x);
        free(h);
        return 0;                             /* the fetch is over */
    }
    return 1;
}

/* A signal ends this rank as it would end `pmap run`: its jobs' process
 * groups are killed first (the runner's SIGTERM, then SIGKILL), so that
 * no job's child outlives it; then it dies of the signal. (mpirun sends
 * SIGTERM to every rank when it is interrupted or a rank died.) */
static void die_of(rx *x, int sfd, const sigset_t *old)
{
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
        return;
    rx_free(x);                               /* kills and reaps the jobs */
    signal((int)si.ssi_signo, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, old, NULL);
    raise((int)si.ssi_signo);
    _exit(128 + (int)si.ssi_signo);
}

int pmpi__run_serve(wire *tmpl)
{
    pmp_run_opts o;
    int shell, rpl;
    int err = get_template(tmpl, &o, &shell, &rpl);
    if (err < 0)
        return err;
    MPI_Comm comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    sigset_t set, old;                        /* blocked before the slots start */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    int slots = rank_slots(o.jobs);
    cloexec_all();
    rx *x = NULL;
    char *buf = malloc(OUT_PIECE);
    if (sfd < 0 || slots < 0 || !buf || rx_new(&o, shell, rpl, slots, &x) < 0)
        MPI_Abort(MPI_COMM_WORLD, 1);         /* rank 0 waits for our hello */
    char host[MPI_MAX_PROCESSOR_NAME + 1] = "";
    int hl;
    MPI_Get_processor_name(host, &hl);
    wire w = {0};
    int32_t s = slots;
    wire_put(&w, &s, sizeof s);
    wire_put_str(&w, host);
    send_wire(comm, 0, T_HELLO, &w);
    cloexec_all();                            /* the connection it made */
    held *hold = NULL;
    int fetching = 0, idle = 0;
    uint64_t fetch_d = 0, fetch_off = 0;
    for (int end = 0; !end;) {
        int busy = 0, tag, from;
        while (!end && recv_msg(comm, 0, 0, &w, &tag, &from)) {
            busy = 1;
            if (tag == T_JOB) {
                uint64_t d, seq, n;
                wire_get(&w, &d, sizeof d);
                wire_get(&w, &seq, sizeof seq);
                wire_get(&w, &n, sizeof n);
                const char **v = n <= w.len ? calloc(n ? n : 1, sizeof *v) : NULL;
                if (!v)
                    MPI_Abort(MPI_COMM_WORLD, 1);
                for (uint64_t i = 0; i < n; i++)
                    v[i] = wire_get_str(&w);
                if (w.bad || rx_push(x, seq, d, v, n) < 0)
                    MPI_Abort(MPI_COMM_WORLD, 1);
                free(v);
            } else if (tag == T_FETCH) {
                wire_get(&w, &fetch_d, sizeof fetch_d);
                if (w.bad || fetching)
                    MPI_Abort(MPI_COMM_WORLD, 1);
                fetching = 1;
                fetch_off = 0;
            } else if (tag == T_STOP || tag == T_KILL) {
                rx_stop(x, tag == T_KILL);
            } else if (tag == T_END) {
                end = 1;
            } else {
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        }
        if (end)
            break;
        report_ended(comm, x, &hold);
        if (fetching) {
            fetching = send_piece(comm, x, &hold, fetch_d, &fetch_off, buf);
            busy = 1;
        }
        idle = busy ? 0 : idle + 1;
        struct pollfd pf[2] = { { .fd = rx_fd(x), .events = POLLIN },
                                { .fd = sfd, .events = POLLIN } };
        int ms = busy ? 0 : idle / 64 + 1;
        if (poll(pf, 2, ms < IDLE_MS_MAX ? ms : IDLE_MS_MAX) > 0 && pf[1].revents)
            die_of(x, sfd, &old);
    }
    wire_free(&w);
    for (held *h = hold, *next; h; h = next) {
        next = h->next;
        rx_done_free(x, h->d);
        free(h);
    }
    rx_free(x);
    free(buf);
    wire bye = {0};
    wire_put(&bye, "", 1);
    send_wire(comm, 0, T_BYE, &bye);
    MPI_Comm_free(&comm);
    close(sfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);   /* a signal that came since: now */
    free((void *)o.cmd);
    return 0;
}
