/* pmap/app.h - what every program that runs pipelines needs around them:
 * signals that cancel the runs, the words for an event, the exit status.
 *
 * The library never prints and never touches signals on its own: these are
 * helpers a program calls. tools/pmap uses them, and so can a program of
 * your own built on pipeline.h (pipelines/ shows how).
 */
#ifndef PMAP_APP_H
#define PMAP_APP_H

#include <stdint.h>
#include <stdio.h>

#include <pmap/export.h>
#include <pmap/pipeline.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- signals that cancel runs ---- */

typedef struct pm_signals pm_signals;

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and starts a
 * thread that waits for them. Call it before creating any other thread (a
 * pool, a pipeline), so that every thread inherits the mask and none is
 * interrupted. A signal whose disposition is SIG_IGN when this is called
 * (nohup, a background job of a non-interactive shell) is left ignored.
 * The first signal cancels every watched pipeline (pm_signals_watch), now
 * and later. The thread lives until the process exits. Returns 0, -ENOMEM
 * or -EAGAIN. */
PM_API int pm_signals_start(pm_signals **s_ret);

/* Cancels pl when a signal arrives while it is watched, or at once if one
 * already has (its next pm_pipeline_run() then stops at once). Returns 0 or
 * -ENOMEM. Thread-safe. */
PM_API int pm_signals_watch(pm_signals *s, pm_pipeline *pl);
/* Stops watching pl (before freeing it). Thread-safe; NULL s: no-op. */
PM_API void pm_signals_unwatch(pm_signals *s, pm_pipeline *pl);

/* The first signal received, or 0. NULL s: 0. Thread-safe. */
PM_API int pm_signals_caught(const pm_signals *s);

/* Ends the process as signo would have (default action, so a calling shell
 * sees 128 + signo), after flushing stdio. Never returns. */
PM_API _Noreturn void pm_signals_die(int signo);

/* ---- events in words ---- */

/* A short, stable name for a reason ("symlink", "output-exists", ...), for
 * machine-readable output. Never NULL. */
PM_API const char *pm_reason_name(pm_reason reason);

/* Writes "prog: PATH: MESSAGE\n" to out, with control characters and
 * backslashes in PATH escaped (\n, \t, \\, \ooo), as the pmap command does.
 * prog may be NULL (no prefix). */
PM_API void pm_event_print(FILE *out, const char *prog, const pm_event *ev);

/* Writes name to out with the same escapes. */
PM_API void pm_print_name(FILE *out, const char *name);

/* ---- the exit status ---- */

/* Counts of what happened to the files of one or more runs. */
typedef struct pm_tally {
    uint64_t done, warned, skipped, failed;
} pm_tally;

/* Counts ev. Incidental skips (pm_event.incidental: found while walking and
 * not for this job by name) are not counted, as gzip -r passes over them. */
PM_API void pm_tally_event(pm_tally *t, const pm_event *ev);

/* gzip's convention: 1 if any file failed, else 2 if any was skipped or
 * warned about, else 0; 128 + signo when signo is not 0. */
PM_API int pm_tally_status(const pm_tally *t, int signo);

#ifdef __cplusplus
}
#endif
#endif
