/* run_int.h - what run.c (arguments) and run_pipe.c (--pipe) share.
 * Private to pipelines/. */
#ifndef PMP_RUN_INT_H
#define PMP_RUN_INT_H

#include "pipelines.h"

/* A growing string; oom set once an allocation failed. */
typedef struct pmp_sb {
    char *p;
    size_t len, cap;
    int oom;
} pmp_sb;
void pmp_sb_add(pmp_sb *b, const char *s, size_t n);

/* One job's arguments. */
typedef struct pmp_args {
    const char *const *v;
    size_t n;
    uint64_t seq;                /* {#} */
    int slot;                    /* {%} */
} pmp_args;

/* A job's command: argv (pointing into strings or text) and the command
 * line in words a shell reads (for messages and the joblog). */
typedef struct pmp_cmd {
    char **argv;
    pmp_sb strings;
    pmp_sb text;
} pmp_cmd;

/* Builds the command for a from o's template: /bin/sh -c LINE when shell,
 * else the words as argv; the arguments appended when !rpl. */
int pmp_cmd_build(pmp_cmd *c, const pmp_run_opts *o, const pmp_args *a, int shell, int rpl);
void pmp_cmd_free(pmp_cmd *c);
/* Whether o's template needs /bin/sh (see run.c). */
int pmp_run_needs_shell(const pmp_run_opts *o);

/* A run's state. */
typedef struct pmp_state {
    const pmp_run_opts *o;
    pmp_run_stats *stats;
    int shell, rpl;
    uint64_t seq;                /* the last job number given */
    uint64_t total;              /* jobs in all when known (::: groups), else 0 */
    int joblog_fd, joblog_err;
    unsigned char *done_set;     /* --resume: bit per Seq found in the joblog */
    size_t done_cap;
    int halt_status;
} pmp_state;

int pmp_joblog_open(pmp_state *st);
int pmp_joblog_has(const pmp_state *st, uint64_t seq);
void pmp_joblog_write(pmp_state *st, uint64_t seq, const char *cmd, const pm_job_result *r);
int pmp_job_failed(const pm_job_result *r);
int pmp_account(pmp_state *st, const pm_job_result *r);
int pmp_exit_status(const pmp_state *st);
void pmp_err(const pmp_run_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* run_pipe.c */
int pmp_run_pipe(pmp_state *st);

#endif
