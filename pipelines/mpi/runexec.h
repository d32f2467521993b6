/* runexec.h - one rank's share of a distributed `pmap run` (runjobs.c):
 * jobs queued by number, run on `slots` threads, one job each at a time,
 * each job's output kept until the caller has written or sent it: small
 * ones in memory, the others in one unlinked file of the rank's. Private
 * to pipelines/mpi/. */
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
    int fail;                /* -errno: it could not be run or its output
                                kept (out of memory, $TMPDIR) */
    pm_job_result res;       /* arg NULL */
    uint64_t out_len, err_len;  /* its output: stdout, then stderr */
    char *mem;               /* the output when small, else NULL: */
    uint64_t hoff;           /* at this offset of the rank's hold file */
    char *cmd;               /* the command line as a shell reads it */
} rx_done;

/* Starts slots threads running o's command template (shell, rpl: as
 * pmp_state's), with o's timeout and retries. o must outlive the rx.
 * Returns 0, -ENOMEM or -errno of eventfd or pthread_create. */
int rx_new(const pmp_run_opts *o, int shell, int rpl, int slots, rx **ret);
/* Queues a job: arguments v[0..n) (copied), its number seq. 0 or -ENOMEM. */
int rx_push(rx *x, uint64_t seq, uint64_t tag, const char *const *v, size_t n);
/* Drops the queued jobs (each then comes back notrun); with kill, running
 * ones are killed too (what they printed is kept), and every job queued
 * later is dropped. */
void rx_stop(rx *x, int kill);
/* Readable while ended jobs wait to be taken. */
int rx_fd(const rx *x);
/* The ended jobs, oldest first (a list), or NULL. Never blocks. */
rx_done *rx_take(rx *x);
/* Reads up to cap bytes of d's output (stdout then stderr, as one run of
 * out_len + err_len bytes) at off. Returns the bytes read, 0 at the end,
 * or -errno. */
long rx_read(rx *x, const rx_done *d, uint64_t off, void *buf, size_t cap);
/* Writes d's stdout to out_fd, then its stderr to err_fd. 0 or -errno. */
int rx_write(rx *x, const rx_done *d, int out_fd, int err_fd);
/* Frees one ended job and its output (not the list after it). NULL: no-op. */
void rx_done_free(rx *x, rx_done *d);
/* Kills running jobs, joins the threads, frees. Every rx_done taken must
 * have been freed. NULL: no-op. */
void rx_free(rx *x);
/* Where outputs wait, pm_run_capture's and the hold file: $TMPDIR, else
 * /tmp. */
const char *rx_tmp_dir(void);
/* Writes all of buf to fd, waiting while fd is full. 0 or -errno. */
int rx_write_all(int fd, const void *buf, size_t n);

#endif
