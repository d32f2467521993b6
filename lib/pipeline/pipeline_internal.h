/* pipeline_internal.h - private structures of the pipeline engine, shared by
 * pipeline.c (the run loop on the I/O thread), pipeline_worker.c (the stage
 * workers), pipeline_source.c (walking paths) and pipeline_sink.c (output
 * files). See pipeline.c for the design. */
#ifndef PM_PIPELINE_INTERNAL_H
#define PM_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <pmap/loop.h>
#include <pmap/pipeline.h>
#include <pmap/pool.h>

#include "exec/exec.h"

#define PL_MAX_STAGES 16

typedef struct pl_file pl_file;
typedef struct pl_chunk pl_chunk;

/* An output piece on its way from a worker to the I/O thread. */
typedef struct pl_piece {
    struct pl_piece *next;
    pl_file *file;
    pl_chunk *chunk;             /* a retiring chunk, or NULL for an emit */
    unsigned char *buf;          /* data to write (chunk->pub.out or emit buffer) */
    size_t len;
    uint64_t off;                /* output offset within the file's output */
} pl_piece;

/* A token: one live chunk with its input and output buffers. */
struct pl_chunk {
    pm_chunk pub;
    pm__work work;               /* its stages, as an executor work item */
    pl_chunk *next;              /* free list / parked list */
    pl_file *file;
    unsigned char *in;           /* overlap + chunk_size bytes */
    unsigned stage;              /* next stage to run */
    pl_piece retire;             /* carries it to the I/O thread when it retires */
};

/* Where a file is in its life, as seen by the I/O thread. */
typedef enum pl_file_phase {
    PL_PENDING = 0,              /* found, not opened yet (or skipped/failed early) */
    PL_ACTIVE,                   /* open, chunks flowing */
    PL_COMMITTING,               /* all chunks retired, output being committed */
    PL_FINISHED,                 /* event ready; waiting for its turn */
} pl_file_phase;

struct pl_file {
    pm_file pub;
    pm_pipeline *pl;
    pl_file *next;               /* source-order FIFO */
    char *path;                  /* owned copy of pub.path */
    char *out_path;              /* owned; final output path or NULL */
    int fd;                      /* input, -1 once closed */
    int stream;                  /* not seekable: read in order at PM_LOOP_CUR */
    int out_fd;                  /* temporary output, -1 if none */
    char *tmp_path;              /* named temporary (when O_TMPFILE failed) */
    int dir_fd;                  /* output directory, for its fsync */
    pl_file_phase phase;
    int opened;                  /* the input was opened (events carry pub) */
    int walked;                  /* found while walking a directory */
    int incidental;              /* its SKIP is incidental (see pm_event) */

    /* I/O thread only */
    uint64_t next_off;           /* next read offset */
    uint64_t reads_issued;       /* chunks whose read was issued */
    uint64_t chunks_total;       /* known once read_eof */
    uint64_t chunks_retired;
    int read_eof;                /* no more chunks will be read */
    pl_chunk *held;              /* stream: a chunk kept until we know if it is last */
    unsigned reads_inflight;
    unsigned writes_inflight;
    uint64_t out_written;        /* FD sink: bytes written so far */
    pl_piece *fd_head, *fd_tail; /* FD sink: pieces waiting for their turn */

    /* shared with workers, under lock */
    pthread_mutex_t lock;
    uint64_t turn[PL_MAX_STAGES + 1];   /* next seq per serial point */
    pl_chunk *parked[PL_MAX_STAGES + 1];/* chunks waiting for their turn, by seq */
    uint64_t out_assigned;       /* next output offset to hand out */
    atomic_int status;           /* first error of the file, 0 if none */

    int event_kind;              /* pm_event_kind once PL_FINISHED */
    int event_err;
    char *message;               /* owned event message (first failure's) */
    char *warning;               /* owned pm_file_warn() message */
    int64_t stream_op;           /* stream: the read in flight, for cancel */
};

typedef struct pl_stage {
    char name[32];
    pm_stage_mode mode;
    pm_stage_fn fn;
    void *arg;
} pl_stage;

/* A directory being walked: its sorted entries and the next one to take. */
typedef struct pl_dir {
    struct pl_dir *up;
    char *path;
    char **names;
    size_t n, next;
} pl_dir;

typedef struct pl_source {
    const char *const *paths;
    size_t n, next;              /* next argument */
    pl_dir *dir;                 /* innermost directory being walked */
} pl_source;

struct pm_pipeline {
    pm_pipeline_opts o;
    unsigned jobs;
    pl_stage stages[PL_MAX_STAGES];
    unsigned nstages;

    /* per run */
    pthread_mutex_t ctl_lock;    /* guards loop for pm_pipeline_cancel() */
    pm_loop *loop;
    int loop_held;               /* pm_loop_hold() taken for this run */
    int as_root;                 /* euid 0: outputs get the inputs' owner */
    atomic_int running;
    atomic_int cancelled;
    int first_error;
    pl_source src;
    pl_file *files_head, *files_tail;  /* every file not yet reported, source order */
    unsigned files_open;         /* files holding descriptors */
    uint64_t files_seen;
    pl_file *reading;            /* the file being read */

    pl_chunk *chunks;            /* max_chunks tokens */
    unsigned char *arena;        /* their buffers */
    pl_chunk *free_chunks;
    unsigned live_chunks;

    /* the executor the stages run on (the pool's) */
    pm_pool *pool;               /* opts.pool, or our own */
    int own_pool;
    pm__exec *ex;
    int ex_held;                 /* pm__exec_hold() taken for this run */
    _Atomic uint32_t busy;       /* workers inside chunk_run (futex word) */
    void **wstate;               /* per-worker state (worker_init), by worker */
    unsigned char *winit;        /* 1 once worker_init ran for that worker */

    /* done queue: workers -> I/O thread */
    pthread_mutex_t dq_lock;
    pl_piece *dq_head, *dq_tail;
    int dq_posted;               /* a post is on its way to the loop */

    /* emit buffers: bounded pool for pm_chunk_emit */
    pthread_mutex_t em_lock;
    pthread_cond_t em_cond;
    unsigned char **em_free;
    unsigned em_nfree;
    size_t em_size;

    pm_pipeline_stats stats;
    uint64_t bytes_total;        /* sizes of the inputs opened so far */
    uint64_t bytes_done;         /* input bytes of retired chunks */
    int src_done;                /* the source has nothing more */
    double t_start, cpu_start, last_progress;
    int tick_armed;              /* the periodic timer is pending */
    int64_t tick_id;
};

/* pipeline_worker.c */
int pm__pl_workers_start(pm_pipeline *pl);
int pm__pl_emit_pool_new(pm_pipeline *pl, unsigned count, size_t size);
void pm__pl_emit_pool_free(pm_pipeline *pl);
void pm__pl_emit_put(pm_pipeline *pl, pl_piece *p);
void pm__pl_emit_wake(pm_pipeline *pl);
void pm__pl_workers_stop(pm_pipeline *pl);
void pm__pl_dispatch(pm_pipeline *pl, pl_chunk *c);
pl_piece *pm__pl_take_done(pm_pipeline *pl);

/* pipeline_source.c: the next path of the source in order, or NULL at the
 * end. What to do with it comes back in *kind_ret: a pm_event_kind of
 * PM_EVENT_DONE (process it), PM_EVENT_SKIP or PM_EVENT_ERROR (report it,
 * with *err_ret and the malloc'd *msg_ret). Directories are walked, not
 * returned, unless they cannot be read (an ERROR). */
char *pm__pl_source_next(pm_pipeline *pl, int *kind_ret, int *err_ret, char **msg_ret,
                         int *walked_ret, int *incidental_ret);
void pm__pl_source_clear(pl_source *src);

/* pipeline_sink.c */
int pm__pl_open_input(pm_pipeline *pl, pl_file *f, char **msg_ret);
int pm__pl_open_output(pm_pipeline *pl, pl_file *f, char **msg_ret);
int pm__pl_link_output(pm_pipeline *pl, pl_file *f, char **msg_ret);
void pm__pl_discard_output(pl_file *f);
void pm__pl_close_input(pm_pipeline *pl, pl_file *f);

/* helpers */
char *pm__pl_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double pm__pl_now(void);

#endif
