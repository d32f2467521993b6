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

/* Where arguments come from: the ::: groups' cross product, or the lines
 * (records) of the argument file or stdin, read as they are needed. */
typedef struct pmp_src {
    const pmp_run_opts *o;
    size_t *idx;                 /* ::: groups: the next tuple's indexes */
    int started, done;
    const char **vals;
    int fd;                      /* the argument file, or -1 */
    int is_stream;               /* a pipe or terminal: wait with the runner */
    char sep;
    char *buf;
    size_t len, off, cap;
    int eof;
    uint64_t line;
} pmp_src;

/* Opens o's arguments. Returns 0 or -errno (errbuf says which file). */
int pmp_src_open(pmp_src *s, const pmp_run_opts *o);
void pmp_src_close(pmp_src *s);
/* The next arguments: 1 with *a set (valid until the next call), 0 at the
 * end, or -errno. A stream (pipe, terminal) is waited for with r, so that
 * its jobs go on meanwhile; with nowait, -EAGAIN instead of waiting (poll
 * pmp_src_fd() and call again). */
int pmp_src_next(pmp_src *s, pm_runner *r, int nowait, pmp_args *a);
/* The stream arguments are read from, or -1 when reading never waits. */
int pmp_src_fd(const pmp_src *s);
/* Argument tuples of the ::: groups (0 without groups). */
uint64_t pmp_run_tuples(const pmp_run_opts *o);
/* Whether o's template has a replacement string. */
int pmp_run_has_rpl(const pmp_run_opts *o);

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
/* host: the joblog's Host column (NULL: ":", this machine). */
void pmp_joblog_write(pmp_state *st, uint64_t seq, const char *host, const char *cmd,
                      const pm_job_result *r);
/* What is said of a job once counted (pmp_account): its joblog line
 * (not for a job a signal killed: --resume runs it again) and on_job. */
void pmp_job_report(pmp_state *st, uint64_t seq, const char *host, const char *cmd,
                    const pm_job_result *r);
int pmp_job_failed(const pm_job_result *r);
int pmp_account(pmp_state *st, const pm_job_result *r);
int pmp_exit_status(const pmp_state *st);
/* The run's error from what reading arguments (err) and waiting for the
 * jobs (werr) returned, errbuf filled; a stop (-ECANCELED) is no error. */
int pmp_run_error(pmp_state *st, int err, int werr);
void pmp_err(const pmp_run_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* run_pipe.c */
int pmp_run_pipe(pmp_state *st);

#endif
