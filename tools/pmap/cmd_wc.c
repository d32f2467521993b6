/* cmd_wc.c - pmap wc: lines, words, characters and bytes per file from
 * pmp_wc(), and a total line when there was more than one operand or file,
 * as wc prints them.
 *
 * Line format: the counts asked for (-l, -w, -m, -c; by default lines,
 * words and bytes), always in the order lines, words, characters, bytes,
 * right-aligned in 7 columns (wider when needed) separated by one space,
 * then a space and the path (escaped as in checksum), or nothing for stdin
 * read without operands; the total line ends in "total" and comes even
 * when an operand failed. Words are GNU wc's in the C locale
 * (pipelines/wc.c): a word starts at a printable byte after white space;
 * other bytes neither start nor end one. Characters (-m) are counted in
 * the user's locale (LC_ALL, LC_CTYPE, LANG), as GNU wc -m counts them.
 */
#include <locale.h>

#include "cli.h"

typedef struct wc_state {
    uint64_t files, lines, words, chars, bytes;
    unsigned fields;         /* CLI_WC_* to print */
    int named;               /* operands were given: print names */
} wc_state;

void cli_help_wc(FILE *f)
{
    fprintf(f,
        "usage: %s wc [options] [PATH...]\n"
        "\n"
        "Counts lines, words and bytes of each file, and in total when there is\n"
        "more than one operand or file, printed as wc prints them:\n"
        "    LINES WORDS BYTES PATH\n"
        "Directories are walked recursively in name order; files are counted in\n"
        "parallel, in chunks. With no PATH, or PATH '-', reads stdin.\n"
        "\n"
        "  -l, --lines           print the newline count\n"
        "  -w, --words           print the word count (words as GNU wc counts them\n"
        "                        in the C locale)\n"
        "  -m, --chars           print the character count, in the user's locale\n"
        "  -c, --bytes           print the byte count\n"
        "The counts come in that order whatever the order of the options.\n"
        "\n", cli_argv0);
    cli_help_common(f, "follow symbolic links");
}

static void wc_line(const wc_state *w, uint64_t lines, uint64_t words, uint64_t chars,
                    uint64_t bytes, const char *name)
{
    const uint64_t v[4] = { lines, words, chars, bytes };
    const char *sep = "";
    for (unsigned i = 0; i < 4; i++) {
        if (!(w->fields & (1u << i)))
            continue;
        printf("%s%7llu", sep, (unsigned long long)v[i]);
        sep = " ";
    }
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
    w->chars += res->chars;
    w->bytes += res->bytes;
    wc_line(w, res->lines, res->words, res->chars, res->bytes, w->named ? res->path : NULL);
}

int cli_run_wc(cli_opts *o)
{
    static const char *const only_stdin[] = { "-" };
    cli_report r;
    wc_state w = { .named = o->npaths > 0, .fields = o->wc_fields };
    if (!w.fields)
        w.fields = CLI_WC_LINES | CLI_WC_WORDS | CLI_WC_BYTES;
    cli_report_init(&r, o, CLI_DONE_SILENT);
    r.cmd_state = &w;
    pmp_opts p = { 0 };
    cli_report_pipeline_opts(&r, &p);
    p.on_result = on_wc;
    if (w.fields & CLI_WC_CHARS) {
        setlocale(LC_CTYPE, "");     /* before any worker counts */
        p.count_chars = 1;
    }
    p.lines_only = !(w.fields & (CLI_WC_WORDS | CLI_WC_CHARS));
    p.pl.flags = PM_PL_SKIP_SPECIAL_OK;
    if (o->force)
        p.pl.flags |= PM_PL_FOLLOW_SYMLINKS;
    pm_pipeline_stats st = { 0 };
    int ret = pmp_wc(&p, o->npaths ? o->paths : only_stdin, o->npaths ? o->npaths : 1, &st);
    cli_report_run(&r, ret, &st);
    if ((w.files > 1 || o->npaths > 1) && !pm_signals_caught(o->sig)) {
        cli_report_before_stdout(&r);
        wc_line(&w, w.lines, w.words, w.chars, w.bytes, "total");
    }
    return cli_report_finish(&r);
}
