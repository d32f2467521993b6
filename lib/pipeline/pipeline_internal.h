/* pipeline_internal.h - private structures of the pipeline engine.
 *
 *   pipeline.c   the public API; the run loop on the I/O thread; tokens,
 *                events and progress
 *   lifecycle.c  a file's way through the pipeline, as one state machine
 *   io.c         chunk reads and output writes through the pm_loop
 *   stages.c     chunks through the stages on the pool's workers; emit
 *   fileops.c    the blocking system calls of a file's life (open, commit,
 *                remove), run as work items on the pool's workers
 *   source.c     the paths given, directories walked
 *   mapping.c    chunks that point into a mapping of their file
 *                (PM_PL_MAP_INPUT), and truncation under it (SIGBUS)
 *
 * docs/design.md draws the threads, queues and data flow on one page.
 */
#ifndef PM_PIPELINE_INTERNAL_H
#define PM_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <pmap/loop.h>
#include <pmap/pipeline.h>
#include <pmap/pool.h>

#include "core/list.h"
#include "exec/exec.h"

#define PL_MAX_STAGES 16

typedef struct pl_file pl_file;
typedef struct pl_chunk pl_chunk;
typedef struct pl_map pl_map;    /* a mapped window of a file (mapping.c) */

/* A directory held open from the walk to the last step of its files: its
 * files are opened, created, linked and removed relative to it (openat,
 * linkat, unlinkat), so a directory swapped for a symbolic link mid-run
 * never redirects any of them. The I/O thread takes and drops references
 * (files are made and freed there); workers only use fd. */
typedef struct pl_dirh {
    unsigned refs;
    int fd;
} pl_dirh;

/* An output piece on its way from a worker to the I/O thread. */
typedef struct pl_piece {
    pm__node node;               /* done queue, FD queue, a chunk's held list */
    pl_file *file;
    pl_chunk *chunk;             /* a retiring chunk, or NULL for an emit */
    unsigned char *buf;          /* data to write (chunk->pub.out or emit buffer) */
    size_t len;
    uint64_t off;                /* output offset within the file's output */
    int elsewhere;               /* written by someone else (pm_chunk.out_elsewhere):
                                    counted, not written */
} pl_piece;

/* A token: one live chunk with its input and output buffers. */
struct pl_chunk {
    pm_chunk pub;
    pm__work work;               /* its stages, as an executor work item */
    pl_chunk *next;              /* the free list */
    pm__seqnode sq;              /* waits at a serial point or for framing */
    pl_file *file;
    unsigned char *in;           /* overlap + chunk_size bytes */
    pl_map *map;                 /* the window pub.data points into, or NULL
                                    when the bytes were read into `in` */
    unsigned stage;              /* next stage to run */
    size_t frame_tail;           /* framing: bytes after len carried to the next */
    pm__fifo held;               /* emitted before its turn to retire (file->lock) */
    pl_piece retire;             /* carries it to the I/O thread when it retires */
    pl_chunk *knext;             /* kinds.c: the BLOCKING queue */
};

/* Where a file is in its life (lifecycle.c draws the transitions). */
typedef enum pl_file_phase {
    PL_PENDING = 0,              /* found by the source, not opened */
    PL_OPENING,                  /* OPEN work item in flight */
    PL_ACTIVE,                   /* open: chunks being read, staged, written */
    PL_SYNC_OUT,                 /* the output's fsync is in the loop */
    PL_COMMITTING,               /* COMMIT work item in flight */
    PL_SYNC_DIR,                 /* the directory's fsync is in the loop */
    PL_REMOVING,                 /* REMOVE work item in flight */
    PL_CLOSING,                  /* FINISH work item in flight (no output file) */
    PL_FINISHED,                 /* event ready; waiting for its turn */
} pl_file_phase;

/* How far an OPEN step that was lent a token took a small file. */
enum {
    PL_WHOLE_NONE = 0,           /* only opened: read it as usual */
    PL_WHOLE_WRITTEN,            /* read, staged and written: commit it */
    PL_WHOLE_FINISHED,           /* committed too (or finished): report it */
};

/* The blocking steps of a file, run on a worker (fileops.c). */
typedef enum pl_file_op {
    PL_OP_OPEN = 0,              /* open and check the input; create the output */
    PL_OP_FINISH,                /* check the input did not change; close it */
    PL_OP_COMMIT,                /* check, copy metadata, link the output */
    PL_OP_REMOVE,                /* remove the input (still the one read) */
} pl_file_op;

struct pl_file {
    pm_file pub;
    pm_pipeline *pl;
    pl_file *next;               /* source-order list (pl_files) */
    pl_file *ready_next;         /* opened, waiting to be read */
    char *path;                  /* owned copy of pub.path */
    char *out_path;              /* owned; final output path or NULL */
    int fd;                      /* input, -1 once closed */
    int stream;                  /* not seekable: read in order at PM_LOOP_CUR */
    pl_dirh *dir;                /* the directory the input is in */
    const char *base;            /* the input's name in it (inside path) */
    int out_fd;                  /* temporary output, -1 if none */
    char *tmp_name;              /* named temporary in dir_fd (when O_TMPFILE failed) */
    int dir_fd;                  /* the output's directory: dir->fd, or its own */
    int dir_owned;               /* dir_fd is its own (another directory) */
    const char *out_base;        /* the output's name in it (inside out_path) */
    int no_sync;                 /* input and output on tmpfs/ramfs: no fsync */
    pl_file_phase phase;
    int opened;                  /* the input was opened (events carry pub) */
    int walked;                  /* found while walking a directory */
    int incidental;              /* its SKIP is incidental (see pm_event) */
    int retried_alone;           /* opened again alone after EMFILE */

    /* the work item of the current blocking step (fileops.c) */
    pm__work work;
    pl_file_op op;
    int op_rc;                   /* its result: 0, PM_PL_SKIP, PL_WARN or -errno */
    pm_reason op_reason;         /* why, when not 0 */
    char *op_msg;                /* its message (malloc'd) or NULL */
    pm__node done_node;          /* in the done queue's file list */

    /* a small file done in one step (stages.c, "whole files"): the token
     * lent to its OPEN step, how far the step took it, and whether pieces
     * are written by the worker (under lock) */
    pl_chunk *whole;
    int whole_state;             /* PL_WHOLE_* */
    int inline_out;

    /* I/O thread only */
    uint64_t next_off;           /* next read offset */
    uint64_t reads_issued;       /* chunks whose read was issued */
    uint64_t chunks_total;       /* known once read_eof */
    uint64_t chunks_retired;
    int read_eof;                /* no more chunks will be read */
    pl_chunk *held;              /* stream: a chunk kept until we know if it is last */
    pl_map *map;                 /* PM_PL_MAP_INPUT: the window being filled */
    int map_failed;              /* a window could not be mapped: read the rest */
    unsigned reads_inflight;
    unsigned writes_inflight;    /* writes and fsyncs in the loop */
    pm__fifo fd_pieces;          /* FD sink: pieces waiting for their turn */
    int64_t stream_op;           /* stream: the read in flight, for cancel */
    pm__seqlist frame;           /* framing: reads in, waiting for their turn */
    pl_chunk *frame_pending;     /* framing: framed, its tail not yet carried */

    /* shared with workers, under lock */
    pthread_mutex_t lock;
    pm__seqlist points[PL_MAX_STAGES + 1];  /* per serial point: whose turn,
                                               and the early chunks */
    uint64_t out_assigned;       /* next output offset to hand out */
    atomic_int status;           /* first error of the file, 0 if none */
    pm_reason fail_reason;       /* set by whoever set status */

    int event_kind;              /* pm_event_kind once PL_FINISHED */
    pm_reason reason;
    int event_err;
    char *message;               /* owned event message (first failure's) */
    char *warning;               /* owned pm_file_warn() message */
};

typedef struct pl_stage {
    char name[32];
    pm_stage_mode mode;
    pm_stage_kind kind;
    pm_stage_fn fn;
    void *arg;
} pl_stage;

/* A directory being walked: its sorted entries and the next one to take. */
typedef struct pl_dir {
    struct pl_dir *up;
    pl_dirh *h;                  /* open; its files take references */
    char *path;
    char **names;                /* each name is preceded by its d_type byte */
    size_t n, next;
} pl_dir;

typedef struct pl_source {
    const char *const *paths;
    size_t n, next;              /* next argument */
    const int *dirs;             /* opts.operand_dirs, or NULL (stdin) */
    pl_dir at;                   /* operand_dirs: the directory of the last
                                    argument that had one (at.h NULL: none) */
    int at_fd;                   /* the caller's descriptor at.h duplicates */
    pl_dir *dir;                 /* innermost directory being walked */
    int done;                    /* nothing more to take */
} pl_source;

/* The live-chunk bound (oneTBB's tokens): max_chunks chunks and their
 * buffers, allocated once per run. I/O thread only. */
typedef struct pl_tokens {
    pl_chunk *chunks;
    unsigned char *arena;
    pl_chunk *free;
    unsigned live, peak;
} pl_tokens;

/* Workers -> I/O thread: output pieces (each file's in order) and files
 * whose blocking step finished. One post wakes the loop for all. */
typedef struct pl_doneq {
    pthread_mutex_t lock;
    pm__fifo pieces;             /* pl_piece.node */
    pm__fifo files;              /* pl_file.done_node */
    int posted;                  /* a post is on its way to the loop */
} pl_doneq;

/* Where BLOCKING and ASYNC stages run (kinds.c), for the length of a run. */
typedef struct pl_kinds {
    pthread_mutex_t mu;          /* guards the BLOCKING queue and quit */
    pthread_cond_t cv;
    pl_chunk *q_head, *q_tail;   /* chunks waiting for a BLOCKING thread */
    int quit;
    pthread_t *threads;          /* BLOCKING threads (nthreads started) */
    unsigned nthreads;
    int sync_ok;                 /* mu and cv initialised */
    pm_loop *aloop;              /* ASYNC: the loop and its tasks, run by */
    struct pm_co_sched *asched;  /* athread (started: athread_ok) */
    pthread_t athread;
    int athread_ok;
} pl_kinds;

/* A bounded pool of emit buffers for pm_chunk_emit. */
typedef struct pl_emitpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned char **free;
    unsigned nfree;
    unsigned reserve;            /* kept for chunks whose turn it is to retire */
    unsigned gen;                /* bumped at every retirement (under lock) */
    size_t size;
} pl_emitpool;

/* Which devices are in memory (tmpfs, ramfs), asked once per device and
 * run (fileops.c). Workers share it under lock. */
#define PL_FSCACHE 8
typedef struct pl_fscache {
    pthread_mutex_t lock;
    unsigned n;
    dev_t dev[PL_FSCACHE];
    unsigned char mem[PL_FSCACHE];
} pl_fscache;

/* Every file not yet reported, in source order, and the files waiting to
 * be read. I/O thread only. */
typedef struct pl_files {
    pl_file *head, *tail;
    pl_file *ready_head, *ready_tail;
    pl_file *reading;            /* the file whose chunks are being read */
    pl_file *retry_head, *retry_tail;  /* their OPEN ran out of descriptors:
                                          opened again as others finish */
    unsigned fd_cap;             /* files in flight the descriptors allow (0: no
                                    limit seen yet) */
    unsigned in_flight;          /* files between OPENING and FINISHED */
    uint64_t seen;               /* files the source produced */
    uint64_t reported;           /* events delivered */
} pl_files;

struct pm_pipeline {
    pm_pipeline_opts o;
    unsigned jobs;
    pl_stage stages[PL_MAX_STAGES];
    unsigned nstages;

    /* the executor the stages and blocking steps run on (the pool's) */
    pm_pool *pool;               /* opts.pool, or our own */
    int own_pool;
    pm__exec *ex;
    int ex_held;                 /* pm__exec_hold() taken for this run */
    _Atomic uint32_t busy;       /* workers inside our work items (futex word) */
    atomic_uint steps_queued;    /* files' blocking steps submitted, not started */
    void **wstate;               /* per-worker state (worker_init), by worker */
    unsigned char *winit;        /* 1 once worker_init ran for that worker */

    /* per run */
    pthread_mutex_t ctl_lock;    /* guards loop for pm_pipeline_cancel() */
    pm_loop *loop;
    pm_loop *async_loop;         /* kinds.c's ASYNC loop while its thread runs
                                    (ctl_lock: pm_pipeline_cancel posts to it) */
    int loop_held;               /* pm_loop_hold() taken for this run */
    int as_root;                 /* euid 0: outputs get the inputs' owner */
    atomic_int running;
    atomic_int cancelled;
    int first_error;
    pl_source src;
    pl_files files;
    pl_tokens tok;
    pl_doneq dq;
    pl_emitpool em;
    pl_fscache fs;
    pl_kinds kinds;

    pm_pipeline_stats stats;
    uint64_t bytes_total;        /* sizes of the inputs opened so far */
    uint64_t bytes_done;         /* input bytes of retired chunks */
    double t_start, cpu_start, last_progress;
    int tick_armed;              /* the periodic timer is pending */
    int64_t tick_id;
};

/* pipeline.c */
pl_chunk *pm__pl_token_get(pm_pipeline *pl, pl_file *f);
void pm__pl_token_put(pm_pipeline *pl, pl_chunk *c);
int pm__pl_file_fail(pl_file *f, pm_reason reason, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* lifecycle.c */
void pm__pl_open_files(pm_pipeline *pl);
void pm__pl_drop_retries(pm_pipeline *pl);                /* cancelled */
void pm__pl_file_complete(pm_pipeline *pl, pl_file *f);   /* io.c: chunks done */
void pm__pl_file_finish(pm_pipeline *pl, pl_file *f, int kind, pm_reason reason, int err,
                        char *msg);
void pm__pl_step_done(pm_pipeline *pl, pl_file *f);       /* a blocking step ended */
void pm__pl_deliver_events(pm_pipeline *pl);
void pm__pl_files_clear(pm_pipeline *pl);

/* io.c */
void pm__pl_send(pm_pipeline *pl, pl_chunk *c);           /* to the workers */
void pm__pl_issue_reads(pm_pipeline *pl);
void pm__pl_end_reading(pm_pipeline *pl, pl_file *f);
void pm__pl_handle_piece(pm_pipeline *pl, pl_piece *p);
void pm__pl_cancel_reads(pm_pipeline *pl);
void pm__pl_check_complete(pm_pipeline *pl, pl_file *f);

/* framing.c: chunks of regular files as their reads complete (sent on to
 * the workers framed, in order); a stream's held chunk cut before next; a
 * file whose reading ended sends what it still holds. */
void pm__pl_frame_arrive(pm_pipeline *pl, pl_chunk *c);
void pm__pl_frame_stream(pm_pipeline *pl, pl_chunk *held, pl_chunk *next);
void pm__pl_frame_flush(pm_pipeline *pl, pl_file *f);

/* mapping.c, I/O thread: points c (offset, len and prefix_len set) into a
 * mapped window of f and takes a reference to it; NULL when it cannot (f
 * is then read from here on). map_put drops a chunk's reference, map_drop
 * the file's (when its reading ends or it is freed). */
const unsigned char *pm__pl_map_chunk(pm_pipeline *pl, pl_file *f, pl_chunk *c);
void pm__pl_map_put(pl_map *m);
void pm__pl_map_drop(pl_file *f);
/* Any thread: did a page of c's window lie past the file's end (the file
 * was cut short while mapped; its bytes there read as zeros)? */
int pm__pl_map_bus(const pl_chunk *c);

/* stages.c */
int pm__pl_workers_start(pm_pipeline *pl);
void pm__pl_workers_stop(pm_pipeline *pl);
void pm__pl_dispatch(pm_pipeline *pl, pl_chunk *c);
void pm__pl_submit_op(pm_pipeline *pl, pl_file *f, pl_file_op op);
int pm__pl_whole_ok(const pm_pipeline *pl, const pl_file *f);
void pm__pl_take_done(pm_pipeline *pl, pm__node **pieces, pm__node **files);
int pm__pl_emit_pool_new(pm_pipeline *pl, unsigned count, size_t size);
void pm__pl_emit_pool_free(pm_pipeline *pl);
void pm__pl_emit_put(pm_pipeline *pl, pl_piece *p);
void pm__pl_emit_wake(pm_pipeline *pl);
int pm__pl_has_kind(const pm_pipeline *pl, pm_stage_kind kind);
void pm__pl_kind_done(pm_pipeline *pl, pl_chunk *c);  /* kinds.c: stage c->stage ran */

/* kinds.c */
int pm__pl_kinds_start(pm_pipeline *pl);
void pm__pl_kinds_stop(pm_pipeline *pl);                 /* no chunk left in them */
void pm__pl_kind_send(pm_pipeline *pl, pl_chunk *c);     /* run stage c->stage there */
void pm__pl_kinds_cancel(pm_pipeline *pl);               /* under ctl_lock */

/* What the source says of a path it produced. */
typedef struct pl_found {
    int kind;                    /* PM_EVENT_DONE: process it; SKIP or ERROR:
                                    report it with err, reason and msg */
    int err;
    pm_reason reason;
    char *msg;                   /* malloc'd or NULL */
    int walked;                  /* found while walking a directory */
    int incidental;              /* a SKIP gzip -r would pass over silently */
    pl_dirh *dir;                /* walked: a reference to its directory */
} pl_found;

/* source.c: the next path of the source in order (malloc'd), or NULL at
 * the end -- or with found->err == -ENOMEM when a path could not be
 * allocated (the run then fails). Directories are walked, not returned,
 * unless they cannot be read (an ERROR). */
char *pm__pl_source_next(pm_pipeline *pl, pl_found *found);
void pm__pl_source_clear(pl_source *src);

/* fileops.c: run on a worker (or the I/O thread for stdin), each returns 0,
 * PM_PL_SKIP (OPEN only) or -errno with *msg_ret malloc'd or NULL. */
int pm__pl_op_run(pm_pipeline *pl, pl_file *f, char **msg_ret);
/* I/O thread: release whatever descriptors and temporary output f holds
 * (after a failure or cancel the output is discarded). */
void pm__pl_release(pl_file *f, int discard);
/* fileops.c: a whole small file's read (bytes read, fewer at EOF, or
 * -errno) and its output's write (0 or -errno), on the worker of its step. */
ssize_t pm__pl_pread_all(int fd, unsigned char *buf, size_t len);
int pm__pl_pwrite_all(int fd, const unsigned char *buf, size_t len, uint64_t off);
pl_dirh *pm__pl_dirh_new(int fd);            /* one reference; NULL: no memory */
pl_dirh *pm__pl_dirh_ref(pl_dirh *h);
void pm__pl_dirh_unref(pl_dirh *h);           /* the last one closes fd */

#define PL_WARN 2                /* a step's result: done, with a warning */

/* Outputs and their directory are synced before an input is removed --
 * unless told not to, or input and output both live on a filesystem that
 * a crash empties anyway (tmpfs, ramfs: there fsync does nothing and the
 * input is not durable either). */
static inline int pm__pl_must_sync(const pm_pipeline *pl, const pl_file *f)
{
    return (pl->o.flags & PM_PL_REMOVE_INPUT) && !(pl->o.flags & PM_PL_NO_SYNC) && !f->no_sync;
}

/* helpers */
char *pm__pl_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
