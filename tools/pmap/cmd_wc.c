/* cmd_wc.c - pmap wc: lines, words and bytes per file from pmp_wc(), and a
 * total line when there was more than one file, as wc prints them.
 *
 * Line format: the three counts right-aligned in 7 columns (wider when
 * needed) separated by one space, then a space and the path (escaped as in
 * checksum), or nothing for stdin read without operands; the total line ends
 * in "total". Words are GNU wc's in the C locale (pipelines/wc.c): a word
 * starts at a printable byte after white space; other bytes neither start
 * nor end one.
 */
#include "cli.h"

typedef struct wc_state {
    uint64_t files, lines, words, bytes;
    int named;               /* operands were given: print names */
} wc_state;

void cli_help_wc(FILE *f)
{
    fprintf(f,
        "usage: %s wc [options] [PATH...]\n"
        "\n"
        "Counts lines, words and bytes of each file, and in total when there is\n"
        "more than one file, printed as wc prints them:\n"
        "    LINES WORDS BYTES PATH\n"
        "Directories are walked recursively in name order; files are counted in\n"
        "parallel, in chunks. With no PATH, or PATH '-', reads stdin.\n"
        "\n", cli_argv0);
    cli_help_common(f, "follow symbolic links");
}

static void wc_line(uint64_t lines, uint64_t words, uint64_t bytes, const char *name)
{
    printf("%7llu %7llu %7llu", (unsigned long long)lines, (unsigned long long)words,
           (unsigned long long)bytes);
    if (name) {
        putchar(' ');
        pm_print_name(stdout, name);
    }
    putchar('\n');
}

static void on_wc(const pmp_result *res, void *arg)
{
    cli_report *r = arg;
    wc_state *w = r->cmd_state;
    cli_report_before_stdout(r);
    w->files++;
    w->lines += res->lines;
    w->words += res->words;
    w->bytes += res->bytes;
    wc_line(res->lines, res->words, res->bytes, w->named ? res->path : NULL);
}

int cli_run_wc(cli_opts *o)
{
    static const char *const only_stdin[] = { "-" };
    cli_report r;
    wc_state w = { .named = o->npaths > 0 };
    cli_report_init(&r, o, CLI_DONE_SILENT);
    r.cmd_state = &w;
    pmp_opts p = { 0 };
    cli_report_pipeline_opts(&r, &p);
    p.on_result = on_wc;
    p.pl.flags = PM_PL_SKIP_SPECIAL_OK;
    if (o->force)
        p.pl.flags |= PM_PL_FOLLOW_SYMLINKS;
    pm_pipeline_stats st = { 0 };
    int ret = pmp_wc(&p, o->npaths ? o->paths : only_stdin, o->npaths ? o->npaths : 1, &st);
    cli_report_run(&r, ret, &st);
    if (w.files > 1 && !pm_signals_caught(o->sig)) {
        cli_report_before_stdout(&r);
        wc_line(w.lines, w.words, w.bytes, "total");
    }
    return cli_report_finish(&r);
}
