/* pmap/pipeline.h - stream files as chunks through CPU stages in bounded
 * memory.
 *
 * A pipeline has a source (files, directory trees, stdin), a chain of stages
 * and a sink (one output file per input, a descriptor such as stdout, or
 * none when the stages fold results into a value). The calling thread runs
 * the I/O: it walks the source, reads chunks through a pm_loop, and writes
 * results; the stages run on a pm_pool's workers -- the caller's pool
 * (opts.pool), shared with its other work under one thread budget, or one
 * the pipeline makes with `jobs` workers. At most `max_chunks` chunks
 * are alive at once (oneTBB's tokens): when they are all taken, reading
 * stops until one retires, so memory is set by the options, not the input.
 *
 * Stage modes follow oneTBB's parallel_pipeline: PARALLEL stages run on any
 * chunk of any file at any time; SERIAL_IN_ORDER stages see one chunk of a
 * file at a time, in the file's order (chunks of different files still run
 * in parallel). Outputs are written in each file's order.
 *
 * Files: each output is written to an unnamed temporary file (O_TMPFILE, or a
 * hidden temporary name where the filesystem lacks it or PM_PL_NAMED_TEMP
 * asks for one, for other processes to write parts of it) in the output's
 * directory, synced, given the input's mode and times, and linked into place
 * only when complete; only then is the input removed (if asked), and only if
 * its name still refers to the file that was read, unchanged (else it is
 * kept, with a warning). A failure or cancellation leaves the input as it
 * was and no output behind. The system calls of a file's life (open,
 * commit, remove) run on the pool's workers, many files at a time, so their
 * fsyncs reach the filesystem together; inputs are opened without blocking
 * (a FIFO put in a file's place is skipped, not waited on).
 */
#ifndef PMAP_PIPELINE_H
#define PMAP_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pm_pipeline pm_pipeline;

/* One input as the stages and hooks see it. */
typedef struct pm_file {
    const char *path;        /* as given or found while walking; "-" is stdin */
    const char *out_path;    /* final output path (PM_SINK_FILES), else NULL */
    uint64_t index;          /* position in the source order: 0, 1, 2, ... */
    struct stat st;          /* the input's status when it was opened */
    uint64_t bytes_in;       /* input bytes read so far */
    uint64_t bytes_out;      /* output bytes produced so far */
    void *state;             /* per-file state: file_state_size zeroed bytes
                                from before file_begin until after the
                                file's event (or, when that is 0, free for
                                the hooks to set) */
    int64_t out_mtime;       /* if set (> 0) by a hook, the output's mtime
                                instead of the input's (with PRESERVE_META) */
    int fd;                  /* while out_path runs: the open input (read it
                                with pread; do not close it or move its
                                offset), so that out_path reads the file the
                                pipeline opened, not whatever its path names
                                by then; -1 everywhere else */
    const char *tmp_name;    /* PM_SINK_FILES: the temporary output's name in
                                the output's directory (beside out_path),
                                when it has one (PM_PL_NAMED_TEMP, or where
                                O_TMPFILE is missing), from when the output
                                is open until it is committed or discarded
                                (for other processes to open it by name,
                                e.g. from out_placed); NULL otherwise */
} pm_file;

/* One chunk of one file. The stages read `data` and fill `out`. */
typedef struct pm_chunk {
    pm_file *file;
    uint64_t seq;            /* 0, 1, 2, ... within the file */
    uint64_t offset;         /* input offset of data[0] */
    const unsigned char *data;
    size_t len;              /* may be 0 only for an empty file's one chunk */
    size_t prefix_len;       /* bytes of input just before data[0], readable
                                at data - prefix_len (<= opts.overlap) */
    int last;                /* the file's final chunk */
    unsigned char *out;      /* output buffer of out_cap bytes, or NULL */
    size_t out_len;          /* bytes of out to write to the sink */
    size_t out_cap;
    uint64_t value;          /* free for the stages (e.g. this chunk's CRC) */
    void *worker_state;      /* during a stage call: the running worker's
                                state (see pm_pipeline_opts.worker_init) */
    void *state;             /* chunk_state_size bytes, zeroed when the chunk
                                is read: what a stage leaves for the stages
                                after it (with `value` and `out`) */
    int out_elsewhere;       /* set by a stage (PM_SINK_FILES): the chunk's
                                out_len output bytes are written into the
                                output file by someone else (another
                                process): the pipeline keeps their place
                                (later pieces come after them), counts them
                                in bytes_out, does not write them, and calls
                                opts.out_placed with their offset. Emitted
                                bytes (pm_chunk_emit) are written as usual.
                                0 for every chunk read */
} pm_chunk;

/* A framer makes chunk boundaries follow the content: given the bytes of a
 * chunk that is not its file's last (len > 0), it returns how many of them
 * form whole records, 1..len; the chunk ends there and the rest begins the
 * next chunk. 0 means no record ends in it: the chunk is passed whole (a
 * record longer than the carry room is split). PM_FRAME_DEFER asks for all
 * of it to begin the next chunk (a record not complete yet; this chunk
 * then reaches the stages empty). The rest must fit the carry room
 * (pm_pipeline_opts.carry_size): when it does not, the chunk is passed
 * whole. Called on the I/O thread, one chunk at a time, in each file's
 * order. */
typedef size_t (*pm_frame_fn)(const unsigned char *data, size_t len, void *arg);

#define PM_FRAME_DEFER ((size_t)-1)

/* The ready-made framer for records that end in one byte: arg points to
 * that byte (e.g. static const unsigned char nl = '\n'; .frame_arg = &nl).
 * Every chunk then holds whole lines; only a file's last chunk may end
 * without the byte. */
PM_API size_t pm_frame_records(const unsigned char *data, size_t len, void *arg);

typedef enum pm_stage_mode {
    PM_STAGE_PARALLEL = 0,
    PM_STAGE_SERIAL_IN_ORDER,
} pm_stage_mode;

/* Where a stage runs, by what it spends its time on (pm_pipeline_add_stage_kind):
 *  CPU       computing: on the pool's workers (pm_pipeline_add_stage's
 *            stages). worker is the worker's number.
 *  BLOCKING  waiting in calls that block a thread (a database client, a
 *            network filesystem): on a separate set of blocking_threads
 *            threads, so the CPU workers keep computing meanwhile. worker
 *            is the thread's number in [0, blocking_threads).
 *  ASYNC     waiting on many slow I/O operations: each chunk's call is a
 *            task (pmap/co.h) on one thread of its own with its own
 *            pm_loop, so up to max_chunks chunks wait at once. The stage
 *            must do its I/O with pm_co_* calls; a call that blocks the
 *            thread stalls every ASYNC chunk (co.h's cooperative
 *            contract). worker is 0.
 * BLOCKING and ASYNC stages get chunk->worker_state NULL (worker_init is
 * for CPU workers); ASYNC stages write their output into chunk->out, since
 * pm_chunk_emit, which may wait for a buffer, refuses them (-EDEADLK). Modes and ordering are the same for every kind: a
 * SERIAL_IN_ORDER stage of any kind sees a file's chunks one at a time in
 * order, outputs keep each file's order, and max_chunks still bounds the
 * chunks alive wherever they are. A cancelled run skips the stages of
 * chunks not yet started and cancels the ASYNC stages' tasks (their
 * awaits return -ECANCELED, pmap/co.h); a BLOCKING call under way is not
 * interrupted (the run's end waits for it). */
typedef enum pm_stage_kind {
    PM_STAGE_CPU = 0,
    PM_STAGE_BLOCKING,
    PM_STAGE_ASYNC,
} pm_stage_kind;

/* A stage: returns 0, or a negative errno that fails the chunk's file (the
 * pipeline reports it with the file's name and goes on with other files
 * unless PM_PL_FAIL_FAST). worker is the running worker's number in
 * [0, pm_pipeline_jobs()); per-worker state such as a compressor is best
 * kept in chunk->worker_state (worker_init). */
typedef int (*pm_stage_fn)(pm_chunk *chunk, void *arg, unsigned worker);

/* Where outputs go. */
typedef enum pm_sink_kind {
    PM_SINK_NONE = 0,        /* no output: stages fold results (checksum, wc) */
    PM_SINK_FD,              /* everything to out_fd, files in source order */
    PM_SINK_FILES,           /* one output file per input (out_path hook) */
} pm_sink_kind;

/* What happened to a file; delivered on the calling thread, one at a time,
 * in source order (a file's event waits for those of the files before it;
 * its output is committed as soon as it is complete). */
typedef enum pm_event_kind {
    PM_EVENT_DONE = 0,       /* processed; output (if any) committed */
    PM_EVENT_SKIP,           /* not processed, by policy (message says why) */
    PM_EVENT_ERROR,          /* failed; nothing written, input intact */
    PM_EVENT_WARNING,        /* processed, with a warning */
} pm_event_kind;

/* Why a file was skipped, failed or warned about: for programs to word
 * (the pmap command adds its own option hints) or to act on. The library's
 * own message (pm_event.message) says the same in plain words, without
 * reference to any command's options. */
typedef enum pm_reason {
    PM_REASON_NONE = 0,        /* DONE */
    /* SKIP */
    PM_REASON_SYMLINK,         /* a symbolic link (PM_PL_FOLLOW_SYMLINKS follows) */
    PM_REASON_NOT_REGULAR,     /* a FIFO, socket or device (PM_PL_SKIP_SPECIAL_OK
                                  reads those named in the paths) */
    PM_REASON_HAS_SUFFIX,      /* the name already ends in skip_suffix */
    PM_REASON_OUTPUT_EXISTS,   /* the output exists (PM_PL_OVERWRITE replaces it) */
    PM_REASON_REFUSED,         /* accept or out_path said PM_PL_SKIP (their words) */
    /* ERROR */
    PM_REASON_INPUT,           /* the input could not be opened, read or walked */
    PM_REASON_CHANGED,         /* the input changed while it was read */
    PM_REASON_OUTPUT,          /* the output could not be made, written, synced
                                  or linked */
    PM_REASON_STAGE,           /* a stage, a hook or worker_init failed the file */
    PM_REASON_STDIN_NEEDS_STREAM, /* standard input with PM_SINK_FILES */
    PM_REASON_CANCELLED,       /* the run was cancelled */
    /* WARNING */
    PM_REASON_INPUT_KEPT,      /* output committed, input not removed: it changed
                                  or was replaced after it was read, or could not
                                  be removed, or the directory could not be synced */
    PM_REASON_FILE_WARNING,    /* pm_file_warn() */
    /* SKIP, added later (so the values above keep their numbers) */
    PM_REASON_HARD_LINKS,      /* an input to be written beside has other hard
                                  links (as gzip: PM_PL_OVERWRITE, -f, takes it) */
    PM_REASON_SET_ID,          /* an input to be written beside is set-user-ID,
                                  set-group-ID or sticky (PM_PL_OVERWRITE takes it) */
    PM_REASON_TEMPORARY,       /* a temporary output of pmap's own (named
                                  .NAME.pmtmp.*), never an input */
} pm_reason;

typedef struct pm_event {
    pm_event_kind kind;
    pm_reason reason;
    const char *path;        /* the input */
    const char *out_path;    /* the committed output, or NULL */
    int err;                 /* -errno cause for SKIP/ERROR, else 0 */
    const char *message;     /* the cause in words (never NULL) */
    const pm_file *file;     /* NULL for paths that were never opened */
    int incidental;          /* SKIP of a file found while walking a
                                directory that is not for this job by its
                                name (already has skip_suffix, or accept or
                                out_path said PM_PL_SKIP); gzip -r passes
                                over such files silently */
} pm_event;

typedef struct pm_progress {
    uint64_t bytes_read, bytes_written;
    uint64_t bytes_done;     /* input bytes through every stage */
    uint64_t bytes_total;    /* input bytes known so far (grows as the walk goes) */
    uint64_t files_done, files_failed, files_skipped;
    double elapsed;          /* seconds since the run started */
} pm_progress;

typedef struct pm_pipeline_stats {
    uint64_t bytes_in, bytes_out;
    uint64_t files_done, files_failed, files_skipped, files_warned;
    uint64_t chunks;
    double wall_seconds, cpu_seconds;
    size_t peak_live_chunks; /* most chunks alive at once (<= max_chunks) */
    uint64_t syncs;          /* fsyncs of outputs and their directories (none
                                when input and output are on tmpfs/ramfs) */
    uint64_t bytes_mapped;   /* of bytes_in, those staged from a mapping of
                                the file instead of read (PM_PL_MAP_INPUT) */
} pm_pipeline_stats;

/* Flags for pm_pipeline_opts.flags. */
#define PM_PL_FAIL_FAST       0x01u  /* first file error cancels the run */
#define PM_PL_FOLLOW_SYMLINKS 0x02u  /* follow symbolic links (else skipped) */
#define PM_PL_OVERWRITE       0x04u  /* replace existing outputs; also take
                                        hard-linked and set-ID inputs (gzip -f) */
#define PM_PL_REMOVE_INPUT    0x08u  /* remove each input once its output is committed */
#define PM_PL_PRESERVE_META   0x10u  /* copy mode, times (and owner as root) */
#define PM_PL_NO_SYNC         0x20u  /* do not fsync outputs (unsafe; for benchmarks) */
#define PM_PL_SKIP_SPECIAL_OK 0x40u  /* read FIFOs/devices given by name instead of skipping */
/* The stages only read chunk data: a regular file's chunks may point into a
 * read-only mapping of the file instead of a copy, which spares the I/O
 * thread the copy (a cached file is then staged at the stages' speed, not
 * at one core's copying speed). The file is mapped a window of about 4 MiB
 * (at least one chunk) at a time and a window is unmapped when its last
 * chunk retired, so what is mapped follows the live chunks. Streams (stdin
 * from a pipe, FIFOs, devices, /proc files), framed pipelines (opts.frame)
 * and files whose window cannot be mapped are read as usual; so are small
 * files done in one step. A file cut short while mapped does not crash the
 * process: the first run that maps installs a SIGBUS handler for the
 * process (a SIGBUS outside pmap's windows goes on to the handler that was
 * there before); the missing bytes read as zeros and the file fails with
 * PM_REASON_CHANGED. A program that installs its own SIGBUS handler later
 * keeps it, and its pipelines then read instead of mapping. */
#define PM_PL_MAP_INPUT       0x80u
/* PM_SINK_FILES: write each output into a named temporary,
 * ".NAME.pmtmp.XXXXXX" beside it (pm_file.tmp_name), instead of an unnamed
 * one (O_TMPFILE), so that other processes can open it by name and write
 * their parts (pm_chunk.out_elsewhere). It is removed when the file fails;
 * but a process killed meanwhile leaves it behind (a later walk of the
 * directory removes it once it is a minute old and no live run holds its
 * lock), where an unnamed one would vanish. */
#define PM_PL_NAMED_TEMP      0x100u

#define PM_PL_SKIP 1             /* out_path's answer: skip this file */

typedef struct pm_pool pm_pool;

typedef struct pm_pipeline_opts {
    /* Where the stages run: a pool of the caller's (it must outlive the
     * pipeline, and stay open while a run is going; its other work shares
     * the same workers), or NULL for a pool of the pipeline's own with
     * `jobs` workers (0: PMAP_JOBS or the CPUs, see config.h). With a
     * pool, jobs must be 0 or its worker count. */
    pm_pool *pool;
    int jobs;
    size_t chunk_size;       /* input bytes per chunk; 0: 128 KiB */
    size_t overlap;          /* preceding bytes each chunk can see; <= chunk_size */
    size_t out_size;         /* each chunk's output buffer; 0: no output buffer */
    unsigned max_chunks;     /* live chunks bound; 0: 4 x jobs + 2 */
    unsigned max_files;      /* files in flight (open, or a step of their
                                commit under way); 0: 256, fewer if the
                                descriptor limit is low (3 per file), and
                                the soft RLIMIT_NOFILE is raised to the hard
                                one first. Whatever the bound, a file whose
                                open runs out of descriptors waits for
                                others to finish instead of failing */
    unsigned flags;          /* PM_PL_* */
    int io_engine;           /* a pm_loop_engine (0: automatic) */
    int verbose;
    const char *skip_suffix; /* skip names ending in this (e.g. ".gz") */

    pm_sink_kind sink;
    int out_fd;              /* PM_SINK_FD */
    /* PM_SINK_FILES: write the output path for f into buf (cap bytes) and
     * return 0. To refuse the file, write the reason into buf and return
     * PM_PL_SKIP (skipped, a warning) or a -errno (failed, an error). Runs
     * on a worker thread, for several files at once: it must be
     * thread-safe. */
    int (*out_path)(const pm_file *f, char *buf, size_t cap, void *arg);

    /* Optional filter, on the calling thread, before a file is opened:
     * return 0 to process path, or PM_PL_SKIP with the reason written into
     * msg (cap bytes) to skip it. */
    int (*accept)(const char *path, char *msg, size_t cap, void *arg);

    /* Hooks, all on the calling thread. file_begin runs when a file is
     * opened, before its first chunk (return -errno to fail the file);
     * file_end after its last chunk retired and every piece of its output
     * was written, before the output is synced and committed: a non-zero
     * return fails the file (its output is then discarded). status is 0
     * or the file's error. */
    int (*file_begin)(pm_file *f, void *arg);
    int (*file_end)(pm_file *f, int status, void *arg);
    void (*on_event)(const pm_event *ev, void *arg);
    void (*on_progress)(const pm_progress *p, void *arg);
    double progress_interval; /* seconds between progress calls; 0: 0.25 */
    void *arg;               /* passed to every hook */

    /* Per-worker state: worker_init(&state, worker, arg) runs on a worker
     * the first time it runs a stage of a run (a non-zero return fails
     * that chunk's file); stages find the state in chunk->worker_state;
     * worker_fini(state, worker, arg) runs on the calling thread when the
     * run ends, for every worker whose init succeeded. */
    int (*worker_init)(void **state_ret, unsigned worker, void *arg);
    void (*worker_fini)(void *state, unsigned worker, void *arg);

    /* Per-file state: file_state_size bytes, zeroed, at pm_file.state from
     * when the file is opened (before file_begin) until after its event,
     * when file_state_free(state, arg) (if set) releases what it holds and
     * the pipeline frees the block. Stages of a file may use it: a
     * SERIAL_IN_ORDER stage sees it one chunk at a time, in order. */
    size_t file_state_size;
    void (*file_state_free)(void *state, void *arg);
    /* Per-chunk state: chunk_state_size bytes at pm_chunk.state, zeroed for
     * every chunk read; the way to pass data from one stage to the next
     * beyond `value`. Part of each token, so within the memory bound. */
    size_t chunk_state_size;

    /* Framing (see pm_frame_fn): chunks end where frame says, so stages
     * see whole records. Needs overlap 0. Each token then also holds up to
     * carry_size bytes (0: chunk_size) carried over from the chunk before
     * it: a framer whose records can be longer than a read sets it to the
     * longest record it wants whole. */
    pm_frame_fn frame;
    void *frame_arg;
    size_t carry_size;

    /* Stage kinds (pm_stage_kind), read only when the pipeline has such
     * stages: the threads of BLOCKING stages (0: 8), the stack of each
     * ASYNC chunk's task (0: pmap/co.h's default), and the ASYNC thread's
     * loop engine threads when that loop runs on the threads engine (0:
     * max_chunks, at most 64; each socket an ASYNC stage waits on holds
     * one there). The ASYNC loop's queue depth follows max_chunks. */
    unsigned blocking_threads;
    size_t async_stack_size;
    unsigned async_io_threads;

    /* Files a walk found elsewhere (pmap-mpi hands a rank files that rank 0
     * walked): NULL, or one directory descriptor per path of each run.
     * When operand_dirs[i] >= 0, paths[i] is taken as an entry that a walk
     * found in that directory: it is looked up there by its last component
     * only, never through the directories its path names, and treated as a
     * walked file (a symbolic link is not followed without
     * PM_PL_FOLLOW_SYMLINKS, a subdirectory is walked, the walk's skips
     * apply); its output (when out_path names a file beside it) and its
     * removal happen in that directory too, whatever its path names by
     * then. paths[i] stays the name every hook and event sees. The caller
     * keeps the descriptors open during the run (the pipeline duplicates
     * what it keeps). -1: paths[i] as given, as without operand_dirs. */
    const int *operand_dirs;

    /* Output placed elsewhere (pm_chunk.out_elsewhere): called once for
     * each such chunk with out_len > 0 when its place in the file's output
     * is decided: offset (from the output's start) and len (its out_len),
     * in the file's order, before the file's file_end hook. Not called for
     * a chunk of a file that has already failed. Runs on a pool worker,
     * under the file's internal lock (its chunks wait meanwhile): it must
     * not block, nor call back into the pipeline; a failure to place the
     * bytes is for file_end to report. The bytes must be in the output (by
     * pm_file.tmp_name, or however the caller reaches it) when file_end
     * returns 0: the pipeline then syncs and links the output as usual. */
    void (*out_placed)(const pm_chunk *c, uint64_t offset, size_t len, void *arg);
} pm_pipeline_opts;

/* Creates a pipeline. NULL opts: defaults. Returns 0 or -EINVAL (bad
 * option: negative jobs, jobs other than the pool's worker count,
 * overlap > chunk_size, a framer with an overlap, FILES sink without out_path, a malformed PMAP_JOBS
 * when jobs is 0, a pool whose backend cannot run stages, ...), -ENOMEM,
 * or pm_pool_new()'s error for the pipeline's own pool. */
PM_API int pm_pipeline_new(const pm_pipeline_opts *opts, pm_pipeline **pl_ret);

/* Frees a pipeline that is not running. NULL: no-op. */
PM_API void pm_pipeline_free(pm_pipeline *pl);

/* Appends a stage; stages run in the order added. Returns 0, -EINVAL, or
 * -EBUSY while running. */
PM_API int pm_pipeline_add_stage(pm_pipeline *pl, const char *name,
                                 pm_stage_mode mode, pm_stage_fn fn, void *arg);

/* pm_pipeline_add_stage for a stage of the given kind (see pm_stage_kind);
 * pm_pipeline_add_stage(...) is kind PM_STAGE_CPU. Same returns, and
 * -EINVAL for an unknown kind. */
PM_API int pm_pipeline_add_stage_kind(pm_pipeline *pl, const char *name, pm_stage_mode mode,
                                      pm_stage_kind kind, pm_stage_fn fn, void *arg);

/* Workers the pipeline runs its stages on (its pool's). */
PM_API unsigned pm_pipeline_jobs(const pm_pipeline *pl);

/* Runs the pipeline over paths[0..n) (files, directories walked
 * recursively in name order, "-" for stdin) on the calling thread, which
 * blocks until every file is done or the run is cancelled. Returns 0 when
 * every file was processed, -ECANCELED if cancelled, or the first file's
 * error otherwise (per-file errors are also delivered as events). stats may
 * be NULL. A pipeline may be run again after it returns. Returns -EINVAL
 * if the pool is closed or terminated, and -EDEADLK when called from one
 * of the pool's own workers (the run would wait for its own thread). If
 * the pool is terminated during the run, the run is cancelled. */
PM_API int pm_pipeline_run(pm_pipeline *pl, const char *const *paths, size_t n,
                           pm_pipeline_stats *stats);

/* Adds run b's statistics into a (counts and times summed, peak_live_chunks
 * the larger): totals over several runs. */
PM_API void pm_pipeline_stats_add(pm_pipeline_stats *a, const pm_pipeline_stats *b);

/* Thread-safe (not async-signal-safe): stop a running pipeline promptly.
 * Pending outputs are discarded, buffers released, pm_pipeline_run()
 * returns -ECANCELED. A cancel that arrives before pm_pipeline_run() starts
 * makes that run stop at once; the request is consumed when a run ends. */
PM_API void pm_pipeline_cancel(pm_pipeline *pl);

/* From a stage: fail the chunk's file with err (a negative errno) and a
 * message saying what went wrong (printf-style; the file name is added by
 * whoever reports it). The first failure of a file wins. Returns err, so a
 * stage can `return pm_chunk_fail(c, -EBADMSG, "crc error");`. */
PM_API int pm_chunk_fail(pm_chunk *chunk, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* From a SERIAL_IN_ORDER stage or a hook: note a warning for the file (the
 * file still succeeds; its event becomes PM_EVENT_WARNING with this
 * message). The last warning wins. */
PM_API void pm_file_warn(pm_file *file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* From any stage: append len bytes to the chunk's output, for stages whose
 * output has no useful bound (decompression). The file's output is, in
 * chunk order, each chunk's emitted bytes (in the order emitted) followed
 * by its `out`. Copies data into buffers of a fixed pool (2 x jobs + 2,
 * each max(out_size, chunk_size) bytes): a chunk whose turn it is to be
 * written hands them to the writer at once; an earlier-than-its-turn chunk
 * keeps them until it retires, and may block until buffers are free.
 * Returns 0, or -ECANCELED if the run is being cancelled, -EDEADLK from an
 * ASYNC stage. */
PM_API int pm_chunk_emit(pm_chunk *chunk, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
