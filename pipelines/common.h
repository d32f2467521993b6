/* common.h - what the ready-made pipelines share: building a pm_pipeline
 * from pmp_opts, and passing events, progress and per-file results on to
 * the caller. Private to pipelines/. */
#ifndef PMP_COMMON_H
#define PMP_COMMON_H

#include "pipelines.h"

/* One run of a ready-made pipeline. Every hook of the pm_pipeline gets the
 * pmp_run as its arg. */
typedef struct pmp_run {
    const pmp_opts *o;
    pm_pipeline_opts pl;        /* the options the pipeline is made with */
    size_t state_size;          /* per-file state (pm_pipeline_opts.file_state_size) */
    /* fills a DONE file's result before the caller's on_result; NULL: none */
    void (*fill_result)(struct pmp_run *run, const pm_file *f, pmp_result *r);
    /* releases what a file's state holds (not the state block itself) */
    void (*state_release)(void *state);
    void *ctx;                  /* the pipeline's own context */
} pmp_run;

/* Starts from o->pl with the events and progress routed through run; the
 * sink, out_path, hooks and stages are left for the pipeline to set. */
void pmp_run_init(pmp_run *run, const pmp_opts *o);


/* Creates the pipeline with the given stages, runs it over the paths
 * (watched by o->signals meanwhile), frees it, and returns
 * pm_pipeline_run()'s result or a setup error. */
typedef struct pmp_stage {
    const char *name;
    pm_stage_mode mode;
    pm_stage_fn fn;
} pmp_stage;

int pmp_run_stages(pmp_run *run, const pmp_stage *stages, size_t nstages,
                   const char *const *paths, size_t n, pm_pipeline_stats *stats);

/* Chooses the sink for a pipeline that writes converted files: stdout when
 * -c or the input is stdin (inputs are then kept), else a file per input
 * named by out_path. */
/* The pipeline's out_placed and file_end for output written by someone
 * else: pmp_opts.member_placed and member_end, with member_arg (compress
 * and decompress across pmap-mpi's ranks). arg: the pmp_run. */
void pmp_member_placed(const pm_chunk *c, uint64_t offset, size_t len, void *arg);
int pmp_member_end(pm_file *f, int status, void *arg);

void pmp_file_outputs(pmp_run *run, const char *const *paths, size_t n,
                      int (*out_path)(const pm_file *, char *, size_t, void *));

#endif
