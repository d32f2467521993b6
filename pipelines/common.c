/* common.c - plumbing shared by the ready-made pipelines (see common.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static void on_event(const pm_event *ev, void *arg)
{
    pmp_run *run = arg;
    const pmp_opts *o = run->o;
    if (ev->file && (ev->kind == PM_EVENT_DONE || ev->kind == PM_EVENT_WARNING) &&
        run->fill_result && o->on_result && ev->file->state) {
        pmp_result r = {.path = ev->path, .index = ev->file->index, .name = ""};
        run->fill_result(run, ev->file, &r);
        o->on_result(&r, o->pl.arg);
    }
    if (o->pl.on_event)
        o->pl.on_event(ev, o->pl.arg);
}

static void on_progress(const pm_progress *p, void *arg)
{
    pmp_run *run = arg;
    run->o->pl.on_progress(p, run->o->pl.arg);
}

void pmp_run_init(pmp_run *run, const pmp_opts *o)
{
    memset(run, 0, sizeof *run);
    run->o = o;
    run->pl = o->pl;
    run->pl.arg = run;
    run->pl.on_event = on_event;
    run->pl.on_progress = o->pl.on_progress ? on_progress : NULL;
    run->pl.sink = PM_SINK_NONE;
    run->pl.out_path = NULL;
    run->pl.file_begin = NULL;
    run->pl.file_end = NULL;
    run->pl.out_placed = NULL;
    run->pl.skip_suffix = NULL;
    run->pl.accept = NULL;
}

static void state_free(void *state, void *arg)
{
    pmp_run *run = arg;
    run->state_release(state);
}

void pmp_member_placed(const pm_chunk *c, uint64_t offset, size_t len, void *arg)
{
    const pmp_opts *o = ((pmp_run *)arg)->o;
    o->member_placed(c, offset, len, o->member_arg);
}

int pmp_member_end(pm_file *f, int status, void *arg)
{
    const pmp_opts *o = ((pmp_run *)arg)->o;
    return o->member_end(f, status, o->member_arg);
}

void pmp_file_outputs(pmp_run *run, const char *const *paths, size_t n,
                      int (*out_path)(const pm_file *, char *, size_t, void *))
{
    pm_pipeline_opts *pl = &run->pl;
    if (run->o->to_stdout || n == 0 || (n == 1 && !strcmp(paths[0], "-"))) {
        pl->sink = PM_SINK_FD;
        pl->out_fd = 1;
        pl->flags &= ~PM_PL_REMOVE_INPUT;
    } else {
        pl->sink = PM_SINK_FILES;
        pl->out_path = out_path;
    }
}

int pmp_run_stages(pmp_run *run, const pmp_stage *stages, size_t nstages,
                   const char *const *paths, size_t n, pm_pipeline_stats *stats)
{
    pm_pipeline *pl;
    run->pl.file_state_size = run->state_size;       /* the pipeline owns it */
    run->pl.file_state_free = run->state_release ? state_free : NULL;
    int rc = pm_pipeline_new(&run->pl, &pl);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nstages && rc == 0; i++)
        rc = pm_pipeline_add_stage(pl, stages[i].name, stages[i].mode, stages[i].fn, run->ctx);
    if (rc == 0)
        rc = pm_signals_watch(run->o->signals, pl);
    if (rc == 0)
        rc = pm_pipeline_run(pl, paths, n, stats);
    pm_signals_unwatch(run->o->signals, pl);
    pm_pipeline_free(pl);
    return rc;
}
