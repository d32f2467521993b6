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
 *                    --halt by cancelling the pipeline.
 * Empty chunks (deferred ones, an empty input) run nothing. Bytes pass
 * unchanged: a block is the input's bytes, cut only after a record end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
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
    _Atomic int cancelled;       /* a job saw cancel_fd (set by workers) */
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

static int run_stage(pm_chunk *c, void *arg, unsigned worker)
{
    pipe_ctx *x = arg;
    pipe_chunk *pc = c->state;
    if (!c->len)
        return 0;
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
        err = pm_run_capture(&job, x->st->o->timeout, x->st->o->cancel_fd, &pc->out, &pc->res);
    } while (!err && pmp_job_failed(&pc->res) && ++tries <= x->st->o->retries);
    pc->res.attempts = tries + (tries <= x->st->o->retries);
    pc->ran = !err;
    pc->text = cmd.text.p;
    cmd.text.p = NULL;
    pmp_cmd_free(&cmd);
    if (err == -ECANCELED)
        x->cancelled = 1;
    return err;
}

static int emit_stage(pm_chunk *c, void *arg, unsigned worker)
{
    pipe_ctx *x = arg;
    pipe_chunk *pc = c->state;
    pmp_state *st = x->st;
    (void)worker;
    if (!pc->ran)
        return 0;
    int err = pm_output_write(pc->out, 1, 2);
    pm_output_free(pc->out);
    pc->out = NULL;
    uint64_t seq = c->seq + 1;
    st->stats->started++;
    pmp_joblog_write(st, seq, pc->text, &pc->res);
    int act = pmp_account(st, &pc->res);
    if (st->o->on_job) {
        pmp_run_job j = { .seq = seq, .command = pc->text, .res = &pc->res };
        st->o->on_job(&j, st->o->arg);
    }
    free(pc->text);
    pc->text = NULL;
    if (act != PM_RUN_CONTINUE)
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

int pmp_run_pipe(pmp_state *st)
{
    const pmp_run_opts *o = st->o;
    if (o->resume || o->dry_run) {
        pmp_err(o, "--pipe does not take %s", o->resume ? "--resume" : "--dry-run");
        return -EINVAL;
    }
    static const char nl[] = "\n";
    pipe_ctx x = { .st = st, .recend = (const unsigned char *)(o->recend ? o->recend : nl) };
    x.recend_len = strlen((const char *)x.recend);
    st->shell = pmp_run_needs_shell(o);
    size_t block = o->block ? o->block : 1u << 20;
    pm_pipeline_opts po = {
        .jobs = o->jobs, .chunk_size = block, .carry_size = block * PIPE_CARRY,
        .max_chunks = 0, .flags = PM_PL_SKIP_SPECIAL_OK | PM_PL_FAIL_FAST,
        .sink = PM_SINK_NONE, .frame = frame, .frame_arg = &x,
        .chunk_state_size = sizeof(pipe_chunk), .on_event = on_event, .arg = &x,
    };
    int err = pmp_joblog_open(st);
    if (!err)
        err = pm_pipeline_new(&po, &x.pl);
    if (!err)
        err = pm_pipeline_add_stage(x.pl, "run", PM_STAGE_PARALLEL, run_stage, &x);
    if (!err)
        err = pm_pipeline_add_stage(x.pl, "emit", PM_STAGE_SERIAL_IN_ORDER, emit_stage, &x);
    const char *path = o->arg_file ? o->arg_file : "-";
    if (!err)
        err = pm_pipeline_run(x.pl, &path, 1, NULL);
    if (x.cancelled)
        st->stats->cancelled = 1;
    if (err == -ECANCELED && (st->stats->halted || x.cancelled))
        err = 0;
    if (err && !(o->errbuf && o->errbuf[0]))
        pmp_err(o, "%s", pm_strerror(err));
    pm_pipeline_free(x.pl);
    if (st->joblog_fd >= 0)
        close(st->joblog_fd);
    st->stats->exit_status = pmp_exit_status(st);
    return err;
}
