/* run.c - a command over many arguments, many at a time: GNU parallel's
 * model on pmap's job runner (pmap/proc.h).
 *
 * The way of one argument: read from a ::: group (the cross product of
 * the groups, the last varying fastest) or a line of the argument file
 * (next_args) -> numbered ({#}, 1-based; skipped if --resume found it in
 * the joblog) -> a slot is acquired ({%}) -> the command is built from
 * the template (build) -> started by the runner -> on its end: joblog line,
 * counts, the caller's report, the --halt decision (on_done).
 *
 * Shell or not, decided once from the template: when a word of the command
 * (its replacement strings left out) holds something a shell would
 * interpret, the job is /bin/sh -c with the words joined by spaces, as GNU
 * parallel joins them, and every substituted value shell-quoted. Otherwise
 * the words become argv as they are, each replacement string substituted
 * inside its word, and no shell runs: the same meaning, at half the cost
 * of a process. Either way a value is never interpreted by a shell.
 *
 * Memory: arguments are read as they are needed (a line at most
 * PMP_RUN_MAX_LINE bytes); outputs are the runner's business (bounded);
 * --resume keeps one bit per job number found in the joblog.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pmap/error.h>

#include "common.h"
#include "run_int.h"

#define PMP_RUN_MAX_LINE (1u << 20)

/* ---- growing strings ---- */

void pmp_sb_add(pmp_sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(pmp_sb *b, const char *s)
{
    pmp_sb_add(b, s, strlen(s));
}

static void sb_quoted(pmp_sb *b, const char *s)
{
    char small[256];
    size_t n = pm_shell_quote(s, small, sizeof small);
    if (n < sizeof small) {
        pmp_sb_add(b, small, n);
        return;
    }
    char *big = malloc(n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    pm_shell_quote(s, big, n + 1);
    pmp_sb_add(b, big, n);
    free(big);
}

void pmp_err(const pmp_run_opts *o, const char *fmt, ...)
{
    if (!o->errbuf || !o->errcap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->errbuf, o->errcap, fmt, ap);
    va_end(ap);
}

/* ---- replacement strings ---- */

enum { R_ARG = 1, R_NOEXT, R_BASE, R_DIR, R_BASE_NOEXT, R_SEQ, R_SLOT };

/* The replacement string at s, if any: its kind (0: none), its length in
 * *len and, for {N}, N in *pos (0 for the others). */
static int rpl_at(const char *s, size_t *len, size_t *pos)
{
    static const struct { const char *t; int kind; } names[] = {
        { "{}", R_ARG }, { "{.}", R_NOEXT }, { "{/}", R_BASE }, { "{//}", R_DIR },
        { "{/.}", R_BASE_NOEXT }, { "{#}", R_SEQ }, { "{%}", R_SLOT },
    };
    *pos = 0;
    if (s[0] != '{')
        return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        *len = strlen(names[i].t);
        if (!strncmp(s, names[i].t, *len))
            return names[i].kind;
    }
    size_t k = 1;
    while (s[k] >= '0' && s[k] <= '9' && k < 8)
        k++;
    if (k == 1 || s[k] != '}' || s[1] == '0')
        return 0;
    *pos = (size_t)strtoul(s + 1, NULL, 10);
    *len = k + 1;
    return R_ARG;
}

/* dirname(1) of s[0..*n): sets *n (and returns the start) of the result. */
static const char *dir_part(const char *s, size_t *n)
{
    size_t k = *n;
    while (k > 1 && s[k - 1] == '/')
        k--;
    const char *slash = memrchr(s, '/', k);
    if (!slash) {
        *n = 1;
        return ".";
    }
    k = (size_t)(slash - s);
    while (k > 1 && s[k - 1] == '/')
        k--;
    *n = k ? k : 1;              /* the root */
    return s;
}

/* Appends value v transformed as kind says ({.} {/} {//} {/.}), quoted
 * for sh when quote is set. */
static void transform(pmp_sb *b, const char *v, int kind, int quote)
{
    const char *s = v;
    size_t n = strlen(v);
    if (kind == R_BASE || kind == R_BASE_NOEXT) {
        const char *slash = strrchr(s, '/');
        if (slash) {
            n -= (size_t)(slash + 1 - s);
            s = slash + 1;
        }
    }
    if (kind == R_NOEXT || kind == R_BASE_NOEXT) {
        const char *dot = memrchr(s, '.', n);
        if (dot && !memchr(dot, '/', n - (size_t)(dot - s)))
            n = (size_t)(dot - s);
    }
    if (kind == R_DIR)
        s = dir_part(s, &n);
    if (!quote) {
        pmp_sb_add(b, s, n);
        return;
    }
    pmp_sb t = { 0 };
    pmp_sb_add(&t, s, n);
    sb_quoted(b, t.p ? t.p : "");
    b->oom |= t.oom;
    free(t.p);
}

/* Appends word with its replacement strings substituted. */
static void expand(pmp_sb *b, const char *word, const pmp_args *a, int quote)
{
    for (const char *p = word; *p; ) {
        size_t len, pos;
        int kind = rpl_at(p, &len, &pos);
        if (!kind) {
            pmp_sb_add(b, p, 1);
            p++;
            continue;
        }
        char num[32];
        if (kind == R_SEQ || kind == R_SLOT) {
            snprintf(num, sizeof num, "%llu",
                     (unsigned long long)(kind == R_SEQ ? a->seq : (uint64_t)a->slot));
            sb_str(b, num);
        } else if (pos) {
            transform(b, pos <= a->n ? a->v[pos - 1] : "", kind, quote);
        } else {
            for (size_t i = 0; i < a->n; i++) {
                if (i)
                    pmp_sb_add(b, " ", 1);
                transform(b, a->v[i], kind, quote);
            }
        }
        p += len;
    }
}

/* Whether the template has a replacement string. */
int pmp_run_has_rpl(const pmp_run_opts *o)
{
    for (size_t i = 0; i < o->ncmd; i++)
        for (const char *p = o->cmd[i]; *p; p++) {
            size_t len, pos;
            if (rpl_at(p, &len, &pos))
                return 1;
        }
    return 0;
}

/* Whether word (replacement strings left out) means something to sh. */
static int word_needs_shell(const char *word, int first)
{
    static const char *const reserved[] = {  /* reserved words, built-ins */
        "!", "{", "}", "case", "do", "done", "elif", "else", "esac", "fi", "for",
        "if", "in", "then", "until", "while", "[[", "]]", "function", "select",
        ".", ":", "alias", "bg", "break", "cd", "command", "continue", "eval", "exec",
        "exit", "export", "fc", "fg", "getopts", "hash", "jobs", "local", "read",
        "readonly", "return", "set", "shift", "source", "times", "trap", "type",
        "ulimit", "umask", "unalias", "unset", "wait",
    };
    if (first)
        for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
            if (!strcmp(word, reserved[i]))
                return 1;
    if (!*word)
        return 1;                    /* an empty word vanishes unquoted */
    if (word[0] == '#' || word[0] == '~' || (first && word[0] == '%'))
        return 1;
    for (const char *p = word; *p; ) {
        size_t len, pos;
        if (rpl_at(p, &len, &pos)) {
            p += len;
            continue;
        }
        if (strchr(" \t\n|&;<>()$`\\\"'*?[", *p) || (first && *p == '='))
            return 1;
        p++;
    }
    return 0;
}

int pmp_run_needs_shell(const pmp_run_opts *o)
{
    for (size_t i = 0; i < o->ncmd; i++)
        if (word_needs_shell(o->cmd[i], i == 0))
            return 1;
    return 0;
}

/* ---- building a job's command ---- */

void pmp_cmd_free(pmp_cmd *c)
{
    free(c->argv);
    free(c->strings.p);
    free(c->text.p);
    memset(c, 0, sizeof *c);
}

/* c->argv = /bin/sh -c c->text. */
static int sh_argv(pmp_cmd *c)
{
    c->argv = malloc(4 * sizeof *c->argv);
    if (!c->argv || c->text.oom)
        return -ENOMEM;
    c->argv[0] = "/bin/sh";
    c->argv[1] = "-c";
    c->argv[2] = c->text.p;
    c->argv[3] = NULL;
    return 0;
}

/* Shell mode: the line in c->text, argv = sh -c LINE. */
static int build_shell(pmp_cmd *c, const pmp_run_opts *o, const pmp_args *a, int rpl)
{
    for (size_t i = 0; i < o->ncmd; i++) {
        if (i)
            pmp_sb_add(&c->text, " ", 1);
        expand(&c->text, o->cmd[i], a, 1);
    }
    for (size_t i = 0; !rpl && i < a->n; i++) {
        pmp_sb_add(&c->text, " ", 1);
        sb_quoted(&c->text, a->v[i]);
    }
    return sh_argv(c);
}

/* Direct mode: every word one argument (a lone {} with several values:
 * one argument each), all NUL-separated in c->strings. */
static int build_direct(pmp_cmd *c, const pmp_run_opts *o, const pmp_args *a, int rpl)
{
    size_t n = 0, max = o->ncmd + a->n + 1;
    size_t *off = malloc(max * sizeof *off);
    if (!off)
        return -ENOMEM;
    for (size_t i = 0; i < o->ncmd + (rpl ? 0 : a->n); i++) {
        const char *w = i < o->ncmd ? o->cmd[i] : NULL;
        size_t k = w && !strcmp(w, "{}") ? a->n : 1;
        for (size_t m = 0; m < k; m++) {
            off[n++] = c->strings.len;
            if (!w)
                sb_str(&c->strings, a->v[i - o->ncmd]);
            else if (k > 1 || (!strcmp(w, "{}") && a->n == 1))
                sb_str(&c->strings, a->v[m]);
            else
                expand(&c->strings, w, a, 0);
            pmp_sb_add(&c->strings, "", 1);
            if (n == max)
                break;
        }
    }
    c->argv = malloc((n + 1) * sizeof *c->argv);
    if (!c->argv || c->strings.oom) {
        free(off);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        c->argv[i] = c->strings.p + off[i];
        if (i)
            pmp_sb_add(&c->text, " ", 1);
        sb_quoted(&c->text, c->argv[i]);
    }
    c->argv[n] = NULL;
    free(off);
    return c->text.oom ? -ENOMEM : 0;
}

/* No command: each argument is a command line of its own, for sh. */
static int build_raw(pmp_cmd *c, const pmp_args *a)
{
    for (size_t i = 0; i < a->n; i++) {
        if (i)
            pmp_sb_add(&c->text, " ", 1);
        sb_str(&c->text, a->v[i]);
    }
    pmp_sb_add(&c->text, "", 0);
    return sh_argv(c);
}

int pmp_cmd_build(pmp_cmd *c, const pmp_run_opts *o, const pmp_args *a, int shell, int rpl)
{
    memset(c, 0, sizeof *c);
    int err = !o->ncmd ? build_raw(c, a)
            : shell ? build_shell(c, o, a, rpl) : build_direct(c, o, a, rpl);
    if (err)
        pmp_cmd_free(c);
    return err;
}

/* ---- arguments ---- */


int pmp_src_open(pmp_src *s, const pmp_run_opts *o)
{
    memset(s, 0, sizeof *s);
    s->o = o;
    s->fd = -1;
    s->sep = o->null_sep ? 0 : '\n';
    if (o->ngroups) {
        s->idx = calloc(o->ngroups, sizeof *s->idx);
        s->vals = calloc(o->ngroups, sizeof *s->vals);
        for (size_t g = 0; g < o->ngroups; g++)
            s->done |= !o->group_len[g];
        return s->idx && s->vals ? 0 : -ENOMEM;
    }
    const char *f = o->arg_file;
    s->fd = !f || !strcmp(f, "-") ? 0 : open(f, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st)) {
        int err = -errno;
        pmp_err(o, "cannot read the argument file %s: %s", f, pm_strerror(err));
        return err;
    }
    if (S_ISDIR(st.st_mode)) {
        pmp_err(o, "cannot read the argument file %s: %s", f ? f : "-", pm_strerror(-EISDIR));
        return -EISDIR;
    }
    s->is_stream = !S_ISREG(st.st_mode);
    s->vals = calloc(1, sizeof *s->vals);
    return s->vals ? 0 : -ENOMEM;
}

void pmp_src_close(pmp_src *s)
{
    if (s->fd > 0)
        close(s->fd);
    free(s->idx);
    free(s->vals);
    free(s->buf);
}

static int next_tuple(pmp_src *s, pmp_args *a)
{
    const pmp_run_opts *o = s->o;
    if (s->done)
        return 0;
    for (size_t g = 0; g < o->ngroups; g++)
        s->vals[g] = o->groups[g][s->idx[g]];
    a->v = s->vals;
    a->n = o->ngroups;
    for (size_t g = o->ngroups; g-- > 0; ) {       /* the last varies fastest */
        if (++s->idx[g] < o->group_len[g])
            return 1;
        s->idx[g] = 0;
    }
    s->done = 1;
    return 1;
}

/* Reads more of the argument file; waits for a stream with the runner
 * (so that jobs go on meanwhile). Returns 0 or -errno. */
static int fill(pmp_src *s, pm_runner *r)
{
    if (s->off) {
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    if (s->len == s->cap) {
        if (s->cap >= PMP_RUN_MAX_LINE) {
            pmp_err(s->o, "%s: line %llu: an argument longer than %u bytes",
                    s->o->arg_file ? s->o->arg_file : "standard input",
                    (unsigned long long)s->line + 1, PMP_RUN_MAX_LINE);
            return -E2BIG;
        }
        size_t cap = s->cap ? s->cap * 2 : 65536;
        char *p = realloc(s->buf, cap + 1);
        if (!p)
            return -ENOMEM;
        s->buf = p;
        s->cap = cap;
    }
    if (r && s->is_stream) {
        int w = pm_runner_wait_fd(r, s->fd);
        if (w < 0)
            return w;
    }
    ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0) {
        int err = -errno;
        pmp_err(s->o, "cannot read the argument file %s: %s",
                s->o->arg_file ? s->o->arg_file : "-", pm_strerror(err));
        return err;
    }
    s->eof = n == 0;
    s->len += (size_t)n;
    return 0;
}

/* Whether fd has input (or an end) to read now. */
static int readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) != 0;
}

static int next_line(pmp_src *s, pm_runner *r, int nowait, pmp_args *a)
{
    for (;;) {
        char *p = s->len > s->off ? memchr(s->buf + s->off, s->sep, s->len - s->off) : NULL;
        if (p || (s->eof && s->len > s->off)) {
            char *v = s->buf + s->off;
            if (!p)
                p = s->buf + s->len;    /* the last line, without its end */
            *p = 0;
            s->off = (size_t)(p - s->buf) + (p < s->buf + s->len);
            s->vals[0] = v;
            a->v = s->vals;
            a->n = 1;
            s->line++;
            return 1;
        }
        if (s->eof)
            return 0;
        if (nowait && s->is_stream && !readable(s->fd))
            return -EAGAIN;
        int err = fill(s, r);
        if (err)
            return err;
    }
}

int pmp_src_next(pmp_src *s, pm_runner *r, int nowait, pmp_args *a)
{
    return s->o->ngroups ? next_tuple(s, a) : next_line(s, r, nowait, a);
}

int pmp_src_fd(const pmp_src *s)
{
    return s->is_stream ? s->fd : -1;
}

/* ---- the joblog ---- */

/* Reads the Seq column of an existing joblog into the run's set. */
static int read_joblog(pmp_state *st, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    int first = 1;
    while (getline(&line, &cap, f) > 0) {
        char *end;
        unsigned long long seq = strtoull(line, &end, 10);
        if (first && !strncmp(line, "Seq\t", 4)) {
            first = 0;
            continue;
        }
        first = 0;
        if (end == line || *end != '\t' || !seq)
            continue;
        if (seq / 8 >= st->done_cap) {
            size_t cap2 = st->done_cap ? st->done_cap : 1024;
            while (seq / 8 >= cap2)
                cap2 *= 2;
            unsigned char *m = realloc(st->done_set, cap2);
            if (!m) {
                free(line);
                return -ENOMEM;
            }
            memset(m + st->done_cap, 0, cap2 - st->done_cap);
            st->done_set = m;
            st->done_cap = cap2;
        }
        st->done_set[seq / 8] |= (unsigned char)(1u << (seq % 8));
    }
    free(line);
    return 0;
}

int pmp_joblog_open(pmp_state *st)
{
    const pmp_run_opts *o = st->o;
    if (!o->joblog || o->dry_run)
        return 0;
    if (o->resume) {
        FILE *f = fopen(o->joblog, "re");
        if (f) {
            int err = read_joblog(st, f);
            fclose(f);
            if (err)
                return err;
        } else if (errno != ENOENT) {
            int err = -errno;
            pmp_err(o, "cannot read the joblog %s: %s", o->joblog, pm_strerror(err));
            return err;
        }
    }
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (o->resume ? O_APPEND : O_TRUNC);
    st->joblog_fd = open(o->joblog, flags, 0666);
    if (st->joblog_fd < 0) {
        int err = -errno;
        pmp_err(o, "cannot write the joblog %s: %s", o->joblog, pm_strerror(err));
        return err;
    }
    struct stat sb;
    static const char head[] =
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";
    if (!fstat(st->joblog_fd, &sb) && sb.st_size == 0 &&
        write(st->joblog_fd, head, sizeof head - 1) != (ssize_t)sizeof head - 1) {
        int err = -errno;
        pmp_err(o, "cannot write the joblog %s: %s", o->joblog, pm_strerror(err));
        return err;
    }
    return 0;
}

int pmp_joblog_has(const pmp_state *st, uint64_t seq)
{
    return seq / 8 < st->done_cap && (st->done_set[seq / 8] >> (seq % 8) & 1);
}

/* One line per finished job, written whole at once (O_APPEND), so a
 * killed run leaves whole lines. */
void pmp_joblog_write(pmp_state *st, uint64_t seq, const char *host, const char *cmd,
                      const pm_job_result *r)
{
    if (st->joblog_fd < 0)
        return;
    int exitval = r->timed_out || r->killed ? -1 : r->signo ? 0 : r->status;
    char *line = NULL;
    int n = asprintf(&line, "%llu\t%s\t%.3f\t%10.3f\t%llu\t%llu\t%d\t%d\t%s\n",
                     (unsigned long long)seq, host ? host : ":", r->start, r->runtime,
                     (unsigned long long)r->in_bytes, (unsigned long long)r->out_bytes,
                     exitval, r->signo, cmd);
    if (n < 0 || write(st->joblog_fd, line, (size_t)n) != n)
        st->joblog_err = n < 0 ? -ENOMEM : -errno;
    free(line);
}

/* ---- halting and the exit status ---- */

int pmp_job_failed(const pm_job_result *r)
{
    return r->status != 0 || r->signo || r->err || r->timed_out;
}

/* Counts a finished job; returns PM_RUN_* from the --halt rule. */
int pmp_account(pmp_state *st, const pm_job_result *r)
{
    const pmp_run_opts *o = st->o;
    int bad = pmp_job_failed(r);
    st->stats->done++;
    st->stats->failed += (uint64_t)bad;
    if (!o->halt_when || st->stats->halted || r->killed)
        return PM_RUN_CONTINUE;
    uint64_t count = o->halt_on_success ? st->stats->done - st->stats->failed
                                        : st->stats->failed;
    double total = st->total ? (double)st->total : (double)st->stats->done;
    double need = o->halt_percent ? total * o->halt_count / 100.0 : o->halt_count;
    if (!count || (double)count < need)
        return PM_RUN_CONTINUE;
    st->stats->halted = 1;
    if (o->halt_on_success)
        st->halt_status = 0;
    else if (o->halt_percent)
        st->halt_status = (int)(((double)st->stats->failed * 100.0 + total - 1) / total);
    else if (o->halt_count == 1)
        st->halt_status = r->signo ? 128 + r->signo : r->status < 0 ? 255 : r->status;
    else
        st->halt_status = st->stats->failed > 100 ? 101 : (int)st->stats->failed;
    return o->halt_when == PMP_HALT_NOW ? PM_RUN_KILL : PM_RUN_STOP;
}

int pmp_exit_status(const pmp_state *st)
{
    if (st->stats->halted)
        return st->halt_status;
    return st->stats->failed > 100 ? 101 : (int)st->stats->failed;
}

/* ---- running ---- */

typedef struct job_info {
    uint64_t seq;
    char *text;
} job_info;

void pmp_job_report(pmp_state *st, uint64_t seq, const char *host, const char *cmd,
                    const pm_job_result *r)
{
    if (!r->killed || st->stats->halted)   /* stopped by a signal: --resume reruns it */
        pmp_joblog_write(st, seq, host, cmd, r);
    if (st->o->on_job) {
        pmp_run_job j = { .seq = seq, .command = cmd, .res = r };
        st->o->on_job(&j, st->o->arg);
    }
}

static int on_done(const pm_job_result *r, void *arg)
{
    pmp_state *st = arg;
    job_info *ji = r->arg;
    int act = pmp_account(st, r);
    pmp_job_report(st, ji->seq, NULL, ji->text, r);
    free(ji->text);
    free(ji);
    return act;
}

/* Starts one job for arguments a. */
static int start_one(pmp_state *st, pm_runner *r, pmp_args *a)
{
    pmp_cmd c;
    int err = pmp_cmd_build(&c, st->o, a, st->shell, st->rpl);
    if (err)
        return err;
    if (st->o->dry_run) {
        pmp_run_job j = { .seq = a->seq, .command = c.text.p };
        if (st->o->on_job)
            st->o->on_job(&j, st->o->arg);
        pmp_cmd_free(&c);
        return 0;
    }
    job_info *ji = malloc(sizeof *ji);
    if (!ji) {
        pmp_cmd_free(&c);
        return -ENOMEM;
    }
    ji->seq = a->seq;
    ji->text = c.text.p;
    c.text.p = NULL;
    pm_job job = { .argv = c.argv, .id = a->seq, .arg = ji };
    st->stats->started++;
    err = pm_runner_start(r, a->slot, &job);
    if (err) {
        free(ji->text);
        free(ji);
    }
    pmp_cmd_free(&c);
    return err;
}

uint64_t pmp_run_tuples(const pmp_run_opts *o)
{
    uint64_t n = o->ngroups ? 1 : 0;
    for (size_t g = 0; g < o->ngroups; g++)
        n *= o->group_len[g];
    return n;
}

static int run_args(pmp_state *st, pm_runner *r)
{
    pmp_src src;
    int err = pmp_src_open(&src, st->o);
    pmp_args a = { 0 };
    while (!err && (err = pmp_src_next(&src, r, 0, &a)) > 0) {
        err = 0;
        a.seq = ++st->seq;
        if (pmp_joblog_has(st, a.seq)) {
            st->stats->skipped++;
            continue;
        }
        a.slot = r ? pm_runner_acquire(r) : 1;
        if (a.slot < 0) {
            err = a.slot;
            if (err != -ECANCELED)
                pmp_err(st->o, "cannot write or keep the jobs' output: %s", pm_strerror(err));
            break;
        }
        err = start_one(st, r, &a);
    }
    pmp_src_close(&src);
    return err;
}

/* The run's error from what reading arguments (err) and waiting for the
 * jobs (werr) returned; a stop (-ECANCELED) is no error. */
int pmp_run_error(pmp_state *st, int err, int werr)
{
    const pmp_run_opts *o = st->o;
    if (err == -ECANCELED)
        err = 0;
    if (!err && werr != -ECANCELED && werr) {
        err = werr;
        pmp_err(o, "cannot write or keep the jobs' output: %s", pm_strerror(err));
    }
    if (!err && st->joblog_err) {
        err = st->joblog_err;
        pmp_err(o, "cannot write the joblog %s: %s", o->joblog, pm_strerror(err));
    }
    if (err && o->errbuf && !o->errbuf[0])
        pmp_err(o, "%s", pm_strerror(err));
    return err;
}

int pmp_run_jobs(const pmp_run_opts *o, pmp_run_stats *stats)
{
    pmp_run_stats dummy;
    pmp_state st = { .o = o, .stats = stats ? stats : &dummy, .joblog_fd = -1 };
    memset(st.stats, 0, sizeof *st.stats);
    if (o->pipe)
        return pmp_run_pipe(&st);
    st.shell = pmp_run_needs_shell(o);
    st.rpl = pmp_run_has_rpl(o);
    st.total = pmp_run_tuples(o);
    pm_runner *r = NULL;
    pm_runner_opts ro = { .size = sizeof ro, .slots = o->jobs, .keep_order = o->keep_order,
                          .timeout = o->timeout, .retries = o->retries,
                          .cancel_fd = o->cancel_fd, .on_done = on_done, .arg = &st };
    int err = pmp_joblog_open(&st);
    if (!err && !o->dry_run)
        err = pm_runner_new(&ro, &r);
    if (!err)
        err = run_args(&st, r);
    int werr = r ? pm_runner_wait(r) : 0;
    st.stats->cancelled = r && pm_runner_cancelled(r);
    err = pmp_run_error(&st, err, werr);
    pm_runner_free(r);
    if (st.joblog_fd >= 0)
        close(st.joblog_fd);
    free(st.done_set);
    st.stats->exit_status = pmp_exit_status(&st);
    return err;
}
