/* pmap/proc.h - run commands as child processes, many at a time, with
 * each one's output kept together.
 *
 * A pm_runner runs up to `slots` jobs at once. Each job is a program and
 * its arguments, started without a shell (execve after a PATH lookup done
 * in the parent), in its own process group, with /dev/null or a buffer of
 * the caller's as standard input. The runner collects every job's stdout
 * and stderr through pipes and writes them to out_fd and err_fd grouped:
 * a job's output never interleaves with another's. One job at a time
 * streams straight through (with keep_order, the next in start order;
 * otherwise the first to print while none streams); the others' output
 * waits in memory, up to mem_per_job bytes each, and beyond that in an
 * unlinked temporary file in $TMPDIR, so memory is bounded by the options,
 * never by what the jobs print (see also max_waiting).
 *
 * The runner is driven by the thread that calls it: pm_runner_acquire()
 * and pm_runner_wait() poll the jobs' pipes and pidfds until a slot is
 * free, resp. every job is done, and call on_done for each finished job on
 * that thread. One runner belongs to one thread at a time.
 *
 * Processes: each job is its own process group, so a timeout, a halt or a
 * cancellation kills the job's whole group (its children too): SIGTERM,
 * then SIGKILL after kill_grace seconds. Each direct child also gets
 * PR_SET_PDEATHSIG(SIGKILL), so it dies when the thread that started it
 * does (a kill -9 of the program included); its own children are not
 * covered by that and live on in their group.
 *
 * SIGPIPE: writing a job's stdin (pm_job.in) after it stopped reading
 * raises SIGPIPE; a program that feeds jobs ignores it (SIG_IGN; the jobs
 * get the default back before exec).
 */
#ifndef PMAP_PROC_H
#define PMAP_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pm_runner pm_runner;

/* One job to start. Everything is copied by pm_runner_start() except `in`,
 * which must stay valid until the job's on_done call. */
typedef struct pm_job {
    char *const *argv;       /* argv[0] is looked up in PATH unless it has a '/' */
    uint64_t id;             /* the caller's, given back in the result */
    void *arg;               /* the caller's, given back in the result */
    const void *in;          /* standard input data (NULL: /dev/null) */
    size_t in_len;
} pm_job;

/* A finished job. */
typedef struct pm_job_result {
    uint64_t id;
    void *arg;
    int slot;                /* 1..slots, the slot it ran in */
    int status;              /* exit status 0..255; -1 when killed by a signal */
    int signo;               /* the signal that killed it, else 0 */
    int err;                 /* 0, or why it could not run (-ENOENT: command
                                not found, status 127; -EACCES and other exec
                                errors: status 126; -errno of a failed spawn,
                                status -1) */
    int timed_out;           /* killed because it ran past opts.timeout */
    int killed;              /* killed by a halt or a cancellation */
    int attempts;            /* 1 + retries used */
    double start;            /* wall clock, seconds since the epoch */
    double runtime;          /* seconds */
    uint64_t in_bytes;       /* bytes written to its stdin */
    uint64_t out_bytes;      /* bytes it wrote to stdout and stderr */
} pm_job_result;

/* What on_done asks for next. */
enum {
    PM_RUN_CONTINUE = 0,
    PM_RUN_STOP = 1,         /* start no more jobs; let running ones finish */
    PM_RUN_KILL = 2,         /* start no more jobs and kill the running ones */
};

typedef struct pm_runner_opts {
    size_t size;             /* sizeof(pm_runner_opts) (0: the current size) */
    int slots;               /* jobs at once; 0: pm_default_jobs() */
    int keep_order;          /* outputs in start order (else in completion
                                order, the streaming job first) */
    int out_fd, err_fd;      /* where outputs go; 0: 1 and 2 */
    size_t mem_per_job;      /* bytes of a waiting job's output held in
                                memory before spilling to a file; 0: 64 KiB */
    double timeout;          /* seconds a job may run; 0: no limit */
    double kill_grace;       /* seconds between SIGTERM and SIGKILL; 0: 1 */
    int retries;             /* a failed job is run again up to this many
                                times; only the last attempt's output is
                                written (so such jobs never stream) */
    int cancel_fd;           /* if > 0, a descriptor that becomes readable to
                                cancel (a signalfd): running jobs are killed */
    size_t max_waiting;      /* finished jobs whose output may wait behind a
                                running one (keep_order, or behind the
                                streaming job); when that many wait,
                                pm_runner_acquire() waits too. 0: 1024 per
                                slot. Bounds the runner's memory however
                                many jobs there are. */
    /* Called on the driving thread for each finished job (after its output
     * was written or queued); returns PM_RUN_*. May be NULL. */
    int (*on_done)(const pm_job_result *r, void *arg);
    void *arg;
} pm_runner_opts;

/* Creates a runner. Returns 0, -EINVAL (bad option, malformed PMAP_JOBS),
 * -ENOMEM, or -errno from opening /dev/null. */
PM_API int pm_runner_new(const pm_runner_opts *opts, pm_runner **r_ret);
/* Kills (SIGKILL, whole group) and reaps any job still running, calls its
 * on_done (killed set; its return is ignored; its output is dropped), then
 * frees the runner. So every started job gets exactly one on_done call.
 * NULL: no-op. */
PM_API void pm_runner_free(pm_runner *r);
/* Blocks, running finished jobs' on_done calls, until a slot is free (and
 * fewer than max_waiting finished jobs wait), and returns its number
 * (1..slots). Returns -ECANCELED once on_done said STOP
 * or KILL or cancel_fd became readable, or -errno when output could not be
 * written or buffered (the runner is then unusable). */
PM_API int pm_runner_acquire(pm_runner *r);
/* Starts job in slot (from pm_runner_acquire(), not reused since). Does
 * not block on the job. A command that cannot be found or run does not
 * fail here: its on_done reports it. Returns 0, -EINVAL or -ENOMEM. */
PM_API int pm_runner_start(pm_runner *r, int slot, const pm_job *job);
/* Blocks until every started job is done and its output written. Returns
 * 0, -ECANCELED if the run was stopped or cancelled, or -errno as acquire. */
PM_API int pm_runner_wait(pm_runner *r);
/* Handles jobs (as acquire does) until fd is readable or hung up, and
 * returns 1; or -ECANCELED once cancel_fd fired, or -errno as acquire. For
 * a caller that reads its input from a pipe while jobs run. */
PM_API int pm_runner_wait_fd(pm_runner *r, int fd);
/* Whether cancel_fd fired. */
PM_API int pm_runner_cancelled(const pm_runner *r);

/* Runs one job to its end and keeps its output instead of writing it (on
 * the calling thread; thread-safe between threads). cancel_fd and timeout
 * as in pm_runner_opts (cancel_fd <= 0: none; kill grace 1 s). Returns 0,
 * -ECANCELED (killed by cancel_fd: res says so, and *out_ret still
 * receives what it printed), -ENOMEM or -errno of the temporary file.
 * *out_ret receives the output (free it with pm_output_free) when the
 * return is 0 or -ECANCELED. */
typedef struct pm_output pm_output;
PM_API int pm_run_capture(const pm_job *job, double timeout, int cancel_fd,
                          pm_output **out_ret, pm_job_result *res);
/* Writes the captured stdout to out_fd, then its stderr to err_fd. Returns
 * 0 or -errno. */
PM_API int pm_output_write(pm_output *o, int out_fd, int err_fd);
/* The bytes a captured output holds: its stdout, its stderr. */
PM_API void pm_output_sizes(const pm_output *o, uint64_t *out_len, uint64_t *err_len);
/* Reads up to cap bytes of a captured output's stdout (part 0) or stderr
 * (part 1) from offset off, without consuming them (to send them
 * elsewhere in pieces). Returns the bytes read, 0 at the part's end, or
 * -errno (-EINVAL: no such part). */
PM_API long pm_output_read(const pm_output *o, int part, uint64_t off, void *buf,
                           size_t cap);
/* NULL: no-op. */
PM_API void pm_output_free(pm_output *o);

/* Writes s to buf (cap bytes) quoted for /bin/sh: unchanged when it only
 * holds characters no shell treats specially, else in single quotes (a
 * quote inside as '\''). Returns the length it needs (without the NUL), so
 * a result >= cap means truncated. */
PM_API size_t pm_shell_quote(const char *s, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
