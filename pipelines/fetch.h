/* fetch.h - the fetch pipeline (pipelines/fetch.c): every input line is a
 * request to a line-oriented TCP service; the output is the service's
 * answers, one line each, in input order.
 *
 * It shows the three stage kinds (pmap/pipeline.h) in one pipeline: CPU
 * stages check the requests and the answers, and the stage that talks to
 * the service is ASYNC or BLOCKING as the caller says -- the same code
 * either way (its socket calls go through pm_co_* inside a task, plain
 * system calls elsewhere).
 *
 * Protocol, per request: connect, send "KEY\n" (KEY: 1 to
 * PMP_FETCH_MAX_KEY printable bytes, no spaces), read the answer line (at
 * most PMP_FETCH_MAX_ANSWER bytes with its newline) until the service
 * closes, close. Each answer must begin with "KEY ".
 *
 * Requests in flight: ASYNC, one task per line, so up to max_chunks x (the
 * lines of a chunk); BLOCKING, one per blocking thread.
 */
#ifndef PMAP_PIPELINES_FETCH_H
#define PMAP_PIPELINES_FETCH_H

#include <stddef.h>
#include <sys/socket.h>

#include <pmap/pipeline.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PMP_FETCH_MAX_KEY 64
#define PMP_FETCH_MAX_ANSWER 128

typedef struct pmp_fetch_opts {
    /* The pipeline's options: jobs, max_chunks, io_engine, blocking_threads,
     * sink (PM_SINK_FD, or PM_SINK_FILES with out_path), on_event, arg...
     * fetch sets the stages, the framing (whole lines), out_size and
     * chunk_size (when 0: 4 KiB, at most 64 KiB). */
    pm_pipeline_opts pl;
    const struct sockaddr *addr;   /* the service */
    socklen_t addrlen;
    pm_stage_kind kind;            /* of the query stage: PM_STAGE_ASYNC
                                      (0 means ASYNC) or PM_STAGE_BLOCKING */
    /* Optional: called with running 1 just before the run starts and
     * running 0 just after it ends (before the pipeline is freed), on the
     * calling thread, so that another thread may pm_pipeline_cancel() it
     * in between (as pm_signals_watch/unwatch do). */
    void (*watch)(pm_pipeline *pl, int running, void *arg);
    void *watch_arg;
} pmp_fetch_opts;

/* Runs the pipeline over paths[0..n); returns what pm_pipeline_run()
 * returns: -EBADMSG for a file with a malformed request line, -EPROTO for
 * an answer that is not one, -EMSGSIZE for one too long, the socket's
 * -errno (e.g. -ECONNREFUSED) for a request that failed, -EINVAL for bad
 * options. stats may be NULL. */
int pmp_fetch(const pmp_fetch_opts *o, const char *const *paths, size_t n,
              pm_pipeline_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
