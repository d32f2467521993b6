/* runexec.h - one rank's share of a distributed `pmap run` (runjobs.c):
 * jobs queued by number, run on `slots` threads, one job each at a time,
 * each job's output kept (pm_run_capture: memory, then an unlinked file)
 * until the caller takes it. Private to pipelines/mpi/. */
#ifndef PMPI_RUNEXEC_H
#define PMPI_RUNEXEC_H

#include <stddef.h>
#include <stdint.h>

#include <pmap/proc.h>

#include "run_int.h"

typedef struct rx rx;

/* A job that ended, or was dropped before it started. */
typedef struct rx_done {
    struct rx_done *next;
    uint64_t seq;
    uint64_t tag;            /* the caller's, from rx_push() */
    int notrun;              /* dropped by rx_stop()/rx_kill() */
    int fail;                /* -errno: its output could not be kept, or its
                                command built (out of memory, $TMPDIR) */
    pm_job_result res;       /* arg NULL */
    pm_output *out;          /* NULL: none (notrun, fail, killed) */
    uint64_t out_len, err_len;
    char *cmd;               /* the command line as a shell reads it */
} rx_done;

/* Starts slots threads running o's command template (shell, rpl: as
 * pmp_state's), with o's timeout and retries. o must outlive the rx.
 * Returns 0, -ENOMEM or -errno of eventfd or pthread_create. */
int rx_new(const pmp_run_opts *o, int shell, int rpl, int slots, rx **ret);
/* Queues a job: arguments v[0..n) (copied), its number seq. 0 or -ENOMEM. */
int rx_push(rx *x, uint64_t seq, uint64_t tag, const char *const *v, size_t n);
/* Drops the queued jobs (each then comes back notrun); with kill, running
 * ones are killed too (and every job queued later is dropped). */
void rx_stop(rx *x, int kill);
/* Readable while ended jobs wait to be taken. */
int rx_fd(const rx *x);
/* The ended jobs, oldest first (a list), or NULL. Never blocks. */
rx_done *rx_take(rx *x);
/* Kills running jobs, joins the threads, frees. NULL: no-op. */
void rx_free(rx *x);
/* Frees one ended job and its output (not the list after it). */
void rx_done_free(rx_done *d);

#endif
