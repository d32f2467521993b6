/* run_pipe.c - pmap run --pipe: the command once per block of records of
 * the input, the block on its stdin, outputs in input order.
 *
 * A pipeline (pmap/pipeline.h) over one input (a file given with -a, read
 * at offsets with many reads in flight; or standard input, a stream):
 *   framing          chunks of `block` bytes cut after their last record
 *                    end (--recend, a newline by default); a chunk with
 *                    none is deferred whole into the next one's carry
 *                    area, so a record longer than a block goes whole into
 *                    a bigger block, up to PIPE_CARRY blocks (beyond that
 *                    it is split: memory stays bounded).
 *   run (parallel)   pm_run_capture(): the command with the chunk on its
 *                    stdin; its stdout and stderr kept (memory, then a
 *                    temporary file). At most `jobs` at once: the pool's
 *                    workers.
 *   emit (serial, in order)  writes each chunk's output (stdout, then
 *                    stderr), its joblog line, counts it and applies
 *                    --halt: soon stops new jobs and cancels the pipeline
 *                    once the running ones are written; now also wakes
 *                    stop_fd and cancels at once.
 * The jobs watch stop_fd, an epoll descriptor over the caller's cancel_fd
 * and an eventfd of the run's: readable when either is, it kills them.
 * Empty chunks (deferred ones, an empty input) run nothing. Bytes pass
 * unchanged: a block is the input's bytes, cut only after a record end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <string.h>
#include <unistd.h>

#include <pmap/error.h>

#include "common.h"
#include "run_int.h"

#define PIPE_CARRY 64            /* longest record kept whole, in blocks */

typedef struct pipe_ctx {
    pmp_state *st;
    pm_pipeline *pl;
    const unsigned char *recend;
    size_t recend_len;
    _Atomic int cancelled;       /* a job saw stop_fd (set by workers) */
    _Atomic int stopping;        /* --halt: start no more jobs */
    _Atomic long running;        /* jobs started or about to be, not yet written */
    int halt_fd;                 /* eventfd: --halt now */
    int stop_fd;                 /* epoll over halt_fd and the cancel_fd */
    char *cmd_text;              /* for the joblog (no {#}/{%}: same for all) */
} pipe_ctx;

typedef struct pipe_chunk {      /* pm_chunk.state */
    pm_output *out;
    pm_job_result res;
    char *text;
    int ran;
} pipe_chunk;

/* Ends a block after the last record end in it; none: defer the lot. */
static size_t frame(const unsigned char *data, size_t len, void *arg)
{
    pipe_ctx *x = arg;
    size_t k = x->recend_len;
    if (k == 1) {
        const unsigned char *e = memrchr(data, x->recend[0], len);
        return e ? (size_t)(e - data) + 1 : PM_FRAME_DEFER;
    }
    for (size_t i = len >= k ? len - k + 1 : 0; i-- > 0; )
        if (data[i] == x->recend[0] && !memcmp(data + i, x->recend, k))
            return i + k;
    return PM_FRAME_DEFER;
}

/* Runs the command on c's block, retrying as asked; the output is kept
 * in c's state for emit_stage. */
static int run_block(pipe_ctx *x, pm_chunk *c, unsigned worker)
{
    pipe_chunk *pc = c->state;
    pmp_args a = { .v = NULL, .n = 0, .seq = c->seq + 1, .slot = (int)worker + 1 };
    pmp_cmd cmd;
    int err = pmp_cmd_build(&cmd, x->st->o, &a, x->st->shell, 1);
    if (err)
        return err;
    pm_job job = { .argv = cmd.argv, .in = c->data, .in_len = c->len };
    int tries = 0;
    do {
        pm_output_free(pc->out);
        pc->out = NULL;
        err = pm_run_capture(&job, x->st->o->timeout, x->stop_fd, &pc->out, &pc->res);
    } while (!err && pmp_job_failed(&pc->res) && ++tries <= x->st->o->retries);
    pc->res.attempts = tries + (tries <= x->st->o->retries);
    pc->ran = !err;
    if (err) {                   /* cancelled: its output is not written */
        pm_output_free(pc->out);
        pc->out = NULL;
    } else {
        pc->text = cmd.text.p;
        cmd.text.p = NULL;
    }
    pmp_cmd_free(&cmd);
    if (err == -ECANCELED && !x->stopping)
        x->cancelled = 1;
    return err;
}

/* --halt soon: once stopping, no block starts a job (running counts the
 * jobs that may still start or run, taken before stopping is looked at),
 * and the pipeline is cancelled when the last running one is written. */
static int run_stage(pm_chunk *c, void *arg, unsigned worker)
{
    pipe_ctx *x = arg;
    if (!c->len)
        return 0;
    atomic_fetch_add(&x->running, 1);
    if (x->stopping) {
        atomic_fetch_sub(&x->running, 1);
        return 0;
    }
    int err = run_block(x, c, worker);
    if (!((pipe_chunk *)c->state)->ran)
        atomic_fetch_sub(&x->running, 1);
    return err;
}

/* Reports one job: joblog, counts, the caller's on_job; returns PM_RUN_*. */
static int report(pipe_ctx *x, pm_chunk *c, pipe_chunk *pc)
{
    pmp_state *st = x->st;
    uint64_t seq = c->seq + 1;
    st->stats->started++;
    pmp_joblog_write(st, seq, NULL, pc->text, &pc->res);
    int act = pmp_account(st, &pc->res);
    if (st->o->on_job) {
        pmp_run_job j = { .seq = seq, .command = pc->text, .res = &pc->res };
        st->o->on_job(&j, st->o->arg);
    }
    free(pc->text);
    pc->text = NULL;
    return act;
}

static int emit_stage(pm_chunk *c, void *arg, unsigned worker)
{
    pipe_ctx *x = arg;
    pipe_chunk *pc = c->state;
    int err = 0, act = PM_RUN_CONTINUE;
    (void)worker;
    if (pc->ran) {
        err = pm_output_write(pc->out, 1, 2);
        pm_output_free(pc->out);
        pc->out = NULL;
        act = report(x, c, pc);
        atomic_fetch_sub(&x->running, 1);
    }
    if (act == PM_RUN_KILL) {
        uint64_t one = 1;
        if (write(x->halt_fd, &one, sizeof one) != sizeof one)
            err = err ? err : -errno;
        x->stopping = 1;
        pm_pipeline_cancel(x->pl);
    } else if (act == PM_RUN_STOP) {
        x->stopping = 1;
    }
    if (x->stopping && !atomic_load(&x->running))
        pm_pipeline_cancel(x->pl);
    return err;
}

static void on_event(const pm_event *ev, void *arg)
{
    pipe_ctx *x = arg;
    if (ev->kind == PM_EVENT_ERROR && ev->reason != PM_REASON_CANCELLED &&
        !(x->st->o->errbuf && x->st->o->errbuf[0]))
        pmp_err(x->st->o, "%s: %s", ev->path, ev->message);
}

/* stop_fd: readable once the caller's cancel_fd or halt_fd is. */
static int stop_fds(pipe_ctx *x, int cancel_fd)
{
    x->halt_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    x->stop_fd = epoll_create1(EPOLL_CLOEXEC);
    if (x->halt_fd < 0 || x->stop_fd < 0)
        return -errno;
    struct epoll_event ev = { .events = EPOLLIN };
    if (epoll_ctl(x->stop_fd, EPOLL_CTL_ADD, x->halt_fd, &ev))
        return -errno;
    if (cancel_fd > 0 && epoll_ctl(x->stop_fd, EPOLL_CTL_ADD, cancel_fd, &ev))
        return -errno;
    return 0;
}

int pmp_run_pipe(pmp_state *st)
{
    const pmp_run_opts *o = st->o;
    if (o->resume || o->dry_run) {
        pmp_err(o, "--pipe does not take %s", o->resume ? "--resume" : "--dry-run");
        return -EINVAL;
    }
    static const char nl[] = "\n";
    pipe_ctx x = { .st = st, .recend = (const unsigned char *)(o->recend ? o->recend : nl),
                   .halt_fd = -1, .stop_fd = -1 };
    x.recend_len = strlen((const char *)x.recend);
    st->shell = pmp_run_needs_shell(o);
    size_t block = o->block ? o->block : 1u << 20;
    pm_pipeline_opts po = {
        .jobs = o->jobs, .chunk_size = block, .carry_size = block * PIPE_CARRY,
        .max_chunks = 0, .flags = PM_PL_SKIP_SPECIAL_OK | PM_PL_FAIL_FAST,
        .sink = PM_SINK_NONE, .frame = frame, .frame_arg = &x,
        .chunk_state_size = sizeof(pipe_chunk), .on_event = on_event, .arg = &x,
    };
    int err = stop_fds(&x, o->cancel_fd);
    if (!err)
        err = pmp_joblog_open(st);
    if (!err)
        err = pm_pipeline_new(&po, &x.pl);
    if (!err)
        err = pm_pipeline_add_stage(x.pl, "run", PM_STAGE_PARALLEL, run_stage, &x);
    if (!err)
        err = pm_pipeline_add_stage(x.pl, "emit", PM_STAGE_SERIAL_IN_ORDER, emit_stage, &x);
    const char *path = o->arg_file ? o->arg_file : "-";
    if (!err)
        err = pm_pipeline_run(x.pl, &path, 1, NULL);
    if (x.cancelled && !st->stats->halted)
        st->stats->cancelled = 1;
    if (err == -ECANCELED && (st->stats->halted || x.cancelled))
        err = 0;
    if (err && !(o->errbuf && o->errbuf[0]))
        pmp_err(o, "%s", pm_strerror(err));
    pm_pipeline_free(x.pl);
    if (x.halt_fd >= 0)
        close(x.halt_fd);
    if (x.stop_fd >= 0)
        close(x.stop_fd);
    if (st->joblog_fd >= 0)
        close(st->joblog_fd);
    st->stats->exit_status = pmp_exit_status(st);
    return err;
}
