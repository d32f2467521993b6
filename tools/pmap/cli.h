/* cli.h - the pmap command's private interface between its files.
 *
 * The CLI is a thin layer over the pipelines of pipelines/pipelines.h:
 * options.c parses argv into a cli_opts, a cmd_*.c file maps those options
 * onto a pmp_opts and runs its pipeline, report.c turns the pipeline's
 * events, results and stats into messages, progress, --json and an exit
 * status, and signals.c turns SIGINT/SIGTERM/SIGHUP into
 * pm_pipeline_cancel(). Nothing here touches files itself: walking, skipping,
 * safe output and metadata are the pipeline's job.
 */
#ifndef PMAP_CLI_H
#define PMAP_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pipelines.h"

/* Exit statuses (gzip's convention). */
#define CLI_LEVEL_MAX 12       /* compress -10 .. -12 */
#define CLI_EXIT_OK      0
#define CLI_EXIT_ERROR   1     /* an error, or a usage error */
#define CLI_EXIT_WARNING 2     /* only warnings or skipped files */

/* Commands, as bits so that an option can name the commands taking it. */
enum {
    CLI_COMPRESS = 1u << 0,
    CLI_DECOMPRESS = 1u << 1,
    CLI_CHECKSUM = 1u << 2,
    CLI_WC = 1u << 3,
    CLI_RUN = 1u << 4,
};

/* wc's counts, in the order they are printed (0: lines, words, bytes). */
enum { CLI_WC_LINES = 1, CLI_WC_WORDS = 2, CLI_WC_CHARS = 4, CLI_WC_BYTES = 8 };

/* --progress: -1 automatic (a terminal and a long job), 0 off, 1 on. */
enum { CLI_PROGRESS_AUTO = -1, CLI_PROGRESS_OFF = 0, CLI_PROGRESS_ON = 1 };

struct cli_command;

/* Everything the command line said. */
typedef struct cli_opts {
    const struct cli_command *cmd;
    int level;               /* 1..CLI_LEVEL_MAX, 0: default (6) */
    int jobs;                /* 0: PMAP_JOBS or online CPUs */
    size_t chunk_size;       /* 0: the pipeline's default */
    int keep, force, to_stdout, quiet, verbose;
    int no_name;             /* -n given last (1), -N given last (0), else -1 */
    int one_member;          /* compress --one-member: pigz's format */
    int decompress, test, list;   /* compress -d/-t/-l switch to decompress */
    const char *suffix;      /* -S, or NULL */
    int progress;            /* CLI_PROGRESS_* */
    int json;
    const char *json_file;   /* --json=FILE, or NULL: stderr */
    int help, version;
    unsigned wc_fields;      /* wc: CLI_WC_* given (-l -w -m -c) */
    int check, check_status; /* checksum -c LIST, --status */
    const char **paths;      /* operands, "-" is stdin (malloc'd array) */
    size_t npaths;
    pm_signals *sig;         /* the signal thread (main.c starts it) */
} cli_opts;

typedef struct cli_command {
    const char *name;
    unsigned bit;            /* CLI_COMPRESS, ... */
    const char *summary;     /* one line for pmap --help */
    void (*help)(FILE *f);   /* pmap COMMAND --help */
    int (*run)(cli_opts *o); /* returns the exit status */
    /* A command with a command line of its own (run): parses argv itself
     * and does everything; argv[1] is its name. NULL: the shared parser. */
    int (*main)(int argc, char **argv);
} cli_command;

/* main.c */
extern const char *cli_argv0;    /* "pmap" */

/* options.c: parses argv[first..argc) for command o->cmd. Returns 0, or
 * prints a usage error naming the culprit and returns CLI_EXIT_ERROR.
 * o->paths is malloc'd (free it with free()). */
int cli_parse(int argc, char **argv, int first, cli_opts *o);
/* Parses a SIZE: digits with an optional K, M or G suffix (KiB, MiB, GiB;
 * a bare number means KiB, as pigz's -b does; "B" means bytes). Returns 0
 * or -EINVAL / -ERANGE. */
int cli_parse_size(const char *s, size_t *out);
/* Prints the options common to every command (for the help texts). */
void cli_help_common(FILE *f, const char *force);

/* cmd_common.c */
typedef int (*cli_pipeline_fn)(const pmp_opts *o, const char *const *paths, size_t n,
                               pm_pipeline_stats *stats);
struct cli_report;
/* True when the operands read stdin ("-", or no operand at all). */
int cli_has_stdin(const cli_opts *o);
/* Runs fn over the operands (stdin if none), one call per maximal run of
 * "-" or of paths: stdin runs write to stdout and keep their input.
 * Stops before the next call once a signal came. Results go to r. */
void cli_run_split(struct cli_report *r, cli_pipeline_fn fn, const pmp_opts *p,
                   const cli_opts *o);

/* commands: cmd_*.c */
void cli_help_compress(FILE *f);
void cli_help_decompress(FILE *f);
void cli_help_checksum(FILE *f);
void cli_help_wc(FILE *f);
int cli_run_compress(cli_opts *o);
int cli_run_decompress(cli_opts *o);
int cli_run_checksum(cli_opts *o);
int cli_run_wc(cli_opts *o);
int cli_run_check(cli_opts *o);     /* checksum -c (cmd_check.c) */
void cli_help_run(FILE *f);
int cli_main_run(int argc, char **argv);   /* pmap run (cmd_run.c) */


/* report.c: how a command reports. */
typedef enum cli_done_style {
    CLI_DONE_SILENT = 0,     /* checksum, wc, -l: results are the output */
    CLI_DONE_COMPRESS,       /* -v: "name:  63.2% -- replaced with name.gz" */
    CLI_DONE_DECOMPRESS,     /* -v: "name.gz:  63.2% -- replaced with name" */
    CLI_DONE_TEST,           /* -v: "name.gz:  OK" */
} cli_done_style;

#define CLI_ERRNO_MAX 4096

typedef struct cli_report {
    const cli_opts *o;
    const char *cmd;         /* "compress", ... for messages */
    cli_done_style style;
    int data_on_stdout;      /* stdout carries a data stream (-c, stdin) */
    int keep;                /* inputs are kept ("created", not "replaced") */
    pm_signals *sig;
    pm_tally tally;          /* what happened to the files */
    unsigned char errs_seen[CLI_ERRNO_MAX / 8];  /* codes events reported */
    pm_pipeline_stats total; /* summed over runs */
    double t0;               /* monotonic start */
    /* progress bar */
    int bar_enabled;         /* may draw at all */
    int bar_tty;             /* stderr is a terminal: redraw in place */
    int bar_drawn;           /* a bar is on screen (tty) */
    double bar_last;
    pm_progress base;        /* counters of the runs before this one */
    void *cmd_state;         /* the command's own accumulators */
} cli_report;

void cli_report_init(cli_report *r, const cli_opts *o, cli_done_style style);
/* Fills the pipeline options every command shares: jobs, chunk size,
 * hooks (events, progress) and arg = r. */
void cli_report_pipeline_opts(cli_report *r, pmp_opts *p);
void cli_on_event(const pm_event *ev, void *arg);
void cli_on_progress(const pm_progress *p, void *arg);
/* Called before writing a result line to stdout (clears the bar). */
void cli_report_before_stdout(cli_report *r);
/* Accounts one pipeline run: its return value and stats. */
void cli_report_run(cli_report *r, int ret, const pm_pipeline_stats *st);
/* Prints the final lines (--json) and returns the exit status; does not
 * return if a signal stopped the run. */
int cli_report_finish(cli_report *r);
/* "pmap compress: MESSAGE" on stderr (clears the bar first). */
void cli_error(cli_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* File names are printed with pm_print_name() (pmap/app.h): control
 * characters and backslashes escaped, other bytes as they are. True when
 * it would escape anything in name. */
int cli_name_needs_escape(const char *name);

/* Seconds on the monotonic clock. */
double cli_now(void);

#endif
