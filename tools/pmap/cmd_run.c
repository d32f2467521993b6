/* cmd_run.c - pmap run: parses GNU parallel's command line (the subset in
 * pmap-run(1)), runs pmp_run_jobs() and reports: a line on stderr for each
 * job that failed, the --bar, and the exit status.
 *
 * Its own parser, not options.c's: options come first, the first word
 * that is not an option starts the command, and every later word belongs
 * to the command or to the ::: argument groups.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP are blocked and read from a
 * signalfd that the runner polls as its cancel descriptor: the first one
 * kills every job's process group (SIGTERM, SIGKILL a second later), and
 * pmap then dies of the same signal (128+N). SIGPIPE is ignored so that a
 * job that stops reading its --pipe input costs it nothing; a closed
 * standard output still ends pmap as SIGPIPE would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <pmap/config.h>
#include <pmap/error.h>

#include "cli.h"

#define RUN_EXIT_ERROR 255           /* GNU parallel's "other error" */

typedef struct run_cli {
    pmp_run_opts o;
    int bar;                         /* --bar on a terminal */
    double bar_last;
    uint64_t done, failed, total;
    const char **groups_mem;         /* all ::: words, NULL-separated */
    const char *const **groups;
    size_t *group_len;
} run_cli;

void cli_help_run(FILE *f)
{
    fprintf(f,
        "usage: %s run [options] [COMMAND [ARG...]] [::: ARGS... [::: ARGS...]]\n"
        "       %s run --pipe [options] COMMAND [ARG...] [< INPUT]\n"
        "\n"
        "Runs COMMAND once per argument, several at a time, as GNU parallel does.\n"
        "Arguments come after :::, several ::: groups giving all their\n"
        "combinations; without :::, one per line of -a FILE or standard input.\n"
        "Replacement strings in COMMAND: {} the argument, {.} without extension,\n"
        "{/} basename, {//} dirname, {/.} basename without extension, {#} the job\n"
        "number, {%%} the job slot, {N} the Nth ::: group's argument; with none,\n"
        "the arguments are appended. A command with shell syntax runs under\n"
        "/bin/sh -c, arguments quoted; any other runs without a shell. Without\n"
        "COMMAND, each argument is a command line for /bin/sh.\n"
        "\n"
        "  -j, --jobs N          jobs at once (default: PMAP_JOBS or the CPUs)\n"
        "  -k, --keep-order      outputs in argument order (else as jobs end)\n"
        "  -a, --arg-file FILE   arguments from FILE, one per line\n"
        "  -0, --null            arguments end with NUL instead of newline\n"
        "      --joblog FILE     log each job (GNU parallel's 9 columns)\n"
        "      --resume          skip the jobs already in --joblog FILE\n"
        "      --retries N       try a failing job up to N times in all\n"
        "      --timeout SECS    kill a job after SECS (TERM, then KILL 1 s later)\n"
        "      --halt WHEN,fail=N|fail=P%%|success=N\n"
        "                        stop after N failed jobs: WHEN is soon (let running\n"
        "                        jobs end) or now (kill them)\n"
        "      --dry-run         print the commands, run nothing\n"
        "      --bar             progress on stderr when it is a terminal\n"
        "      --pipe            split the input into blocks of records, one per job's\n"
        "                        stdin; outputs in input order\n"
        "      --pipepart        --pipe reading a regular file (-a FILE) by offsets\n"
        "      --block SIZE      --pipe block size (default 1M; K M G: x1024,\n"
        "                        k m g: x1000)\n"
        "      --recend STR      --pipe record end (default a newline)\n"
        "  -h, --help            this help\n"
        "\n"
        "Each job's stdout and stderr come out together, never mixed with another\n"
        "job's. A failing job is reported on stderr. Exit status: the number of\n"
        "failed jobs (101 for more than 100; with --halt see pmap-run(1)), 255 for\n"
        "an error of pmap's own, 128+N when stopped by signal N.\n",
        cli_argv0, cli_argv0);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s run: ", cli_argv0);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s run --help' for more information.\n", cli_argv0);
    return RUN_EXIT_ERROR;
}

/* SIZE: digits with an optional K M G T (x1024) or k m g t (x1000). */
static int parse_block(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    const char *units = "KMGT", *units10 = "kmgt";
    if (end == s || errno || *s == '-')
        return -EINVAL;
    if (*end) {
        const char *u = strchr(units, *end), *u10 = strchr(units10, *end);
        if ((!u && !u10) || end[1])
            return -EINVAL;
        for (long i = (u ? u - units : u10 - units10) + 1; i > 0; i--)
            v *= u ? 1024 : 1000;
    }
    if (!v || v > (1ull << 30))
        return -ERANGE;
    *out = (size_t)v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 1e9)
        return -EINVAL;
    *out = v;
    return 0;
}

/* --halt now|soon,fail=N|fail=P%|success=N|success=P% */
static int parse_halt(const char *s, pmp_run_opts *o)
{
    if (!strncmp(s, "now,", 4))
        o->halt_when = PMP_HALT_NOW;
    else if (!strncmp(s, "soon,", 5))
        o->halt_when = PMP_HALT_SOON;
    else if (!strcmp(s, "never"))
        return 0;
    else
        return -EINVAL;
    s = strchr(s, ',') + 1;
    if (!strncmp(s, "fail=", 5))
        s += 5;
    else if (!strncmp(s, "success=", 8))
        s += 8, o->halt_on_success = 1;
    else
        return -EINVAL;
    char *end;
    double v = strtod(s, &end);
    o->halt_percent = *end == '%';
    if (end == s || (*end && strcmp(end, "%")) || !(v > 0) || (o->halt_percent && v > 100))
        return -EINVAL;
    o->halt_count = v;
    return 0;
}

enum { A_NONE, A_JOBS, A_ARGFILE, A_JOBLOG, A_RETRIES, A_TIMEOUT, A_HALT, A_BLOCK,
       A_RECEND };

typedef struct run_opt {
    char s;
    const char *l;
    int arg;                         /* A_*: takes an argument */
    int *flag;                       /* set to 1 when given (no argument) */
} run_opt;

static int set_arg(run_cli *c, int which, const char *v, const char *name)
{
    long n;
    int err = 0;
    switch (which) {
    case A_JOBS:
        err = pm_parse_count(v, PM_MAX_JOBS, &n);
        c->o.jobs = (int)n;
        break;
    case A_ARGFILE: c->o.arg_file = v; break;
    case A_JOBLOG: c->o.joblog = v; break;
    case A_RETRIES:
        err = pm_parse_count(v, 1000000, &n);
        if (!strcmp(v, "0"))
            err = 0, n = 0;
        c->o.retries = n > 0 ? (int)n - 1 : 0;   /* N tries in all, as parallel */
        break;
    case A_TIMEOUT: err = parse_seconds(v, &c->o.timeout); break;
    case A_HALT: err = parse_halt(v, &c->o); break;
    case A_BLOCK: err = parse_block(v, &c->o.block); break;
    case A_RECEND:
        c->o.recend = v;
        err = *v ? 0 : -EINVAL;
        break;
    }
    if (err) {
        fprintf(stderr, "%s run: invalid argument '%s' for %s\n", cli_argv0, v, name);
        return RUN_EXIT_ERROR;
    }
    return 0;
}

/* Splits argv[i..] into the command and the ::: groups. */
static int split_groups(run_cli *c, int argc, char **argv, int i)
{
    int first = i;
    while (i < argc && strcmp(argv[i], ":::"))
        i++;
    c->o.cmd = (const char *const *)argv + first;
    c->o.ncmd = (size_t)(i - first);
    size_t ng = 0;
    for (int k = i; k < argc; k++)
        ng += !strcmp(argv[k], ":::");
    c->groups = calloc(ng + 1, sizeof *c->groups);
    c->group_len = calloc(ng + 1, sizeof *c->group_len);
    if (!c->groups || !c->group_len)
        return -ENOMEM;
    for (size_t g = 0; i < argc; g++) {
        int start = ++i;
        while (i < argc && strcmp(argv[i], ":::"))
            i++;
        c->groups[g] = (const char *const *)argv + start;
        c->group_len[g] = (size_t)(i - start);
    }
    c->o.groups = c->groups;
    c->o.group_len = c->group_len;
    c->o.ngroups = ng;
    c->total = ng ? 1 : 0;
    for (size_t g = 0; g < ng; g++)
        c->total *= c->group_len[g];
    return 0;
}

/* The option argv word a names (a long one perhaps with "=ARG": *eq then
 * points at the '='), or NULL. */
static const run_opt *match_opt(const run_opt *opts, size_t n, const char *a, const char **eq)
{
    *eq = a[1] == '-' ? strchr(a, '=') : NULL;
    size_t len = *eq ? (size_t)(*eq - a - 2) : strlen(a + 2);
    for (size_t k = 0; k < n; k++) {
        if (a[1] != '-' && opts[k].s == a[1])
            return &opts[k];
        if (a[1] == '-' && opts[k].l && strlen(opts[k].l) == len && !strncmp(a + 2, opts[k].l, len))
            return &opts[k];
    }
    return NULL;
}

/* Options that do not go together, or lack a partner. */
static int check_combination(const run_cli *c, int pipepart)
{
    if (pipepart && !c->o.arg_file)
        return usage_error("%s needs -a FILE (a regular file)", "--pipepart");
    if (!c->o.ncmd && c->o.pipe)
        return usage_error("%s", "--pipe needs a COMMAND");
    if (c->o.ngroups && c->o.arg_file)
        return usage_error("%s", "arguments both from ::: and -a FILE");
    if (c->o.ngroups && c->o.pipe)
        return usage_error("%s", "--pipe takes no ::: arguments");
    if (c->o.resume && !c->o.joblog)
        return usage_error("%s", "--resume needs --joblog FILE");
    return 0;
}

static int parse(run_cli *c, int argc, char **argv, int *help)
{
    int pipepart = 0;
    const run_opt opts[] = {
        { 'j', "jobs", A_JOBS, NULL }, { 'P', "max-procs", A_JOBS, NULL },
        { 'k', "keep-order", 0, &c->o.keep_order }, { 'a', "arg-file", A_ARGFILE, NULL },
        { '0', "null", 0, &c->o.null_sep }, { 0, "joblog", A_JOBLOG, NULL },
        { 0, "resume", 0, &c->o.resume }, { 0, "retries", A_RETRIES, NULL },
        { 0, "timeout", A_TIMEOUT, NULL }, { 0, "halt", A_HALT, NULL },
        { 0, "dry-run", 0, &c->o.dry_run }, { 0, "bar", 0, &c->bar },
        { 0, "pipe", 0, &c->o.pipe }, { 0, "pipepart", 0, &pipepart },
        { 0, "block", A_BLOCK, NULL }, { 0, "recend", A_RECEND, NULL },
        { 'h', "help", 0, help },
    };
    int i = 2;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], ":::"); i++) {
        const char *a = argv[i], *eq;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        const run_opt *opt = match_opt(opts, sizeof opts / sizeof opts[0], a, &eq);
        if (!opt)
            return usage_error("unknown option '%s'", a);
        if (!opt->arg) {
            if (eq || (a[1] != '-' && a[2]))
                return usage_error("option '%s' takes no argument", a);
            *opt->flag = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : a[1] != '-' && a[2] ? a + 2 : NULL;
        if (!val && ++i >= argc)
            return usage_error("option '%s' needs an argument", a);
        int rc = set_arg(c, opt->arg, val ? val : argv[i], a);
        if (rc)
            return rc;
    }
    if (*help)
        return 0;
    c->o.pipe |= pipepart;
    if (split_groups(c, argc, argv, i))
        return usage_error("%s", "out of memory");
    return check_combination(c, pipepart);
}

/* ---- reporting ---- */

static void bar_draw(run_cli *c, int last)
{
    double now = cli_now();
    if (!last && now - c->bar_last < 0.1)
        return;
    c->bar_last = now;
    if (c->total)
        fprintf(stderr, "\r%3.0f%% %llu/%llu done, %llu failed\033[K",
                100.0 * (double)c->done / (double)c->total, (unsigned long long)c->done,
                (unsigned long long)c->total, (unsigned long long)c->failed);
    else
        fprintf(stderr, "\r%llu done, %llu failed\033[K", (unsigned long long)c->done,
                (unsigned long long)c->failed);
    if (last)
        fputc('\n', stderr);
}

static void report_failure(const pmp_run_job *j)
{
    const pm_job_result *r = j->res;
    fprintf(stderr, "%s run: job %llu '%s' ", cli_argv0, (unsigned long long)j->seq,
            j->command);
    if (r->err == -ENOENT)
        fprintf(stderr, "failed: command not found (exit status 127)");
    else if (r->err)
        fprintf(stderr, "failed: cannot run it: %s (exit status %d)", pm_strerror(r->err),
                r->status);
    else if (r->timed_out)
        fprintf(stderr, "timed out: killed by signal %d", r->signo);
    else if (r->killed)
        fprintf(stderr, "stopped: killed by signal %d", r->signo);
    else if (r->signo)
        fprintf(stderr, "killed by signal %d (%s)", r->signo, strsignal(r->signo));
    else
        fprintf(stderr, "exited with %d", r->status);
    if (r->attempts > 1)
        fprintf(stderr, " after %d attempts", r->attempts);
    fputc('\n', stderr);
}

static void on_job(const pmp_run_job *j, void *arg)
{
    run_cli *c = arg;
    if (!j->res) {                   /* --dry-run */
        printf("%s\n", j->command);
        return;
    }
    int bad = j->res->status != 0 || j->res->signo || j->res->err || j->res->timed_out;
    c->done++;
    c->failed += (uint64_t)bad;
    if (c->bar)
        fputs("\r\033[K", stderr);
    if (bad && !j->res->killed)
        report_failure(j);
    if (c->bar)
        bar_draw(c, 0);
}

/* ---- the command ---- */

static int setup_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, set, NULL))
        return -1;
    return signalfd(-1, set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* After the run: dies of a signal that stopped it (or a closed stdout),
 * reports an error or a halt, returns the exit status. */
static int conclude(int sfd, int err, const char *msg, const pmp_run_stats *st)
{
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)   /* non-blocking */
        pm_signals_die((int)si.ssi_signo);
    if (err == -EPIPE)
        pm_signals_die(SIGPIPE);
    if (err) {
        fprintf(stderr, "%s run: %s\n", cli_argv0, msg);
        return RUN_EXIT_ERROR;
    }
    if (st->halted)
        fprintf(stderr, "%s run: --halt: stopped after %llu failed and %llu successful "
                "jobs\n", cli_argv0, (unsigned long long)st->failed,
                (unsigned long long)(st->done - st->failed));
    return st->exit_status;
}

int cli_main_run(int argc, char **argv)
{
    run_cli c = { 0 };
    int help = 0, sfd = -1;
    char msg[512] = "";
    sigset_t set;
    int rc = parse(&c, argc, argv, &help);
    if (!rc && !help && pm_config_check(msg, sizeof msg) < 0) {
        fprintf(stderr, "%s run: %s\n", cli_argv0, msg);
        rc = RUN_EXIT_ERROR;
    }
    if (!rc && !help && (sfd = setup_signals(&set)) < 0) {
        fprintf(stderr, "%s run: cannot set up signal handling: %s\n", cli_argv0,
                pm_strerror(-errno));
        rc = RUN_EXIT_ERROR;
    }
    if (help)
        cli_help_run(stdout);
    if (!rc && !help) {
        c.bar &= isatty(2);
        c.o.cancel_fd = sfd;
        c.o.on_job = on_job;
        c.o.arg = &c;
        c.o.errbuf = msg;
        c.o.errcap = sizeof msg;
        pmp_run_stats st;
        int err = pmp_run_jobs(&c.o, &st);
        if (c.bar)
            bar_draw(&c, 1);
        rc = conclude(sfd, err, msg, &st);
    }
    free(c.groups);
    free(c.group_len);
    return rc;
}
