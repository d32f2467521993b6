/* cmd_decompress.c - pmap decompress (and -t, -l): gunzip's options onto
 * pmp_decompress(), and the gzip -l table from its per-file results.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void cli_help_decompress(FILE *f)
{
    fprintf(f,
        "usage: %s decompress [options] [PATH...]\n"
        "\n"
        "Decompresses each F.gz into F and removes F.gz once F is safely on disk.\n"
        "gzip's suffixes are recognised in any case: .gz, .z, -gz, -z, _z, and .tgz\n"
        "and .taz (into F.tar), besides -S SUF. With -c, -t or -l a file named on\n"
        "the command line is read whatever its name; files found in directories\n"
        "(walked recursively) need a suffix. With no PATH, or PATH '-',\n"
        "decompresses stdin to stdout. Every member of a multi-member file is\n"
        "decoded; CRC-32 and length are checked; zeros after the last member are\n"
        "ignored (with -v, a warning), other trailing data is ignored with a warning.\n"
        "\n"
        "  -k, --keep            keep the input files\n"
        "  -c, --stdout          write everything to stdout, keep the inputs\n"
        "  -t, --test            test the integrity of the inputs, write nothing\n"
        "  -l, --list            list compressed and uncompressed sizes, as gzip -l\n"
        "                        (with -v also the CRC and the stored time)\n"
        "  -S, --suffix=SUF      also recognise the suffix SUF\n"
        "  -N, --name            name the output after the name stored in the file\n"
        "                        (its last component, cut to 255 bytes with a\n"
        "                        warning; \"\", \".\" and \"..\" are refused)\n"
        "  -n, --no-name         strip the suffix instead (the default)\n",
        cli_argv0);
    cli_help_common(f, "overwrite existing outputs, follow symbolic links,\n"
                       "                        read compressed data from a terminal; with -c\n"
                       "                        or -t, data not in gzip format is copied as it\n"
                       "                        is (zcat -f)");
    fprintf(f,
        "\n"
        "A corrupt or truncated input is reported with its name; no partial output\n"
        "is left behind and the input is kept. See pmap-decompress(1).\n");
}

/* Running totals of the -l table. */
typedef struct list_state {
    uint64_t files, compressed, uncompressed;
} list_state;

static double list_ratio(uint64_t comp, uint64_t uncomp)
{
    return uncomp ? 100.0 * (1.0 - (double)comp / (double)uncomp) : 0.0;
}

static void list_header(const cli_report *r)
{
    if (r->o->verbose)
        fputs("method  crc     date  time  ", stdout);
    fputs("         compressed        uncompressed  ratio uncompressed_name\n", stdout);
}

static void list_name(const cli_report *r, const pmp_result *res)
{
    char buf[4096];
    const char *name = res->path;
    if (r->o->no_name == 0 && res->name && *res->name) {
        const char *slash = strrchr(res->name, '/');     /* as gzip -lN */
        name = slash ? slash + 1 : res->name;
    }
    else if (!pmp_decompressed_name(res->path, r->o->suffix, buf, sizeof buf))
        name = buf;
    pm_print_name(stdout, name);
}

static void on_list(const pmp_result *res, void *arg)
{
    cli_report *r = arg;
    list_state *ls = r->cmd_state;
    cli_report_before_stdout(r);
    if (!ls->files++ && !r->o->quiet)
        list_header(r);
    ls->compressed += res->compressed;
    ls->uncompressed += res->uncompressed;
    if (r->o->verbose) {
        char date[32] = "            ";
        time_t t = (time_t)res->mtime;
        struct tm tm;
        if (res->mtime && localtime_r(&t, &tm))
            strftime(date, sizeof date, "%b %e %H:%M", &tm);
        printf("defla %08x %s ", (unsigned)res->crc_stored, date);
    }
    printf("%19llu %19llu %5.1f%% ", (unsigned long long)res->compressed,
           (unsigned long long)res->uncompressed, list_ratio(res->compressed, res->uncompressed));
    list_name(r, res);
    putchar('\n');
}

static void list_totals(cli_report *r)
{
    const list_state *ls = r->cmd_state;
    if (ls->files < 2)
        return;
    cli_report_before_stdout(r);
    if (r->o->verbose)
        fputs("                            ", stdout);
    printf("%19llu %19llu %5.1f%% (totals)\n", (unsigned long long)ls->compressed,
           (unsigned long long)ls->uncompressed, list_ratio(ls->compressed, ls->uncompressed));
}

int cli_run_decompress(cli_opts *o)
{
    cli_report r;
    list_state ls = { 0 };
    cli_report_init(&r, o, o->list ? CLI_DONE_SILENT : o->test ? CLI_DONE_TEST
                                                               : CLI_DONE_DECOMPRESS);
    r.cmd = "decompress";
    r.cmd_state = &ls;
    int writes = !o->test && !o->list;
    r.data_on_stdout = writes && (o->to_stdout || cli_has_stdin(o));
    r.keep = o->keep || o->to_stdout;
    if (cli_has_stdin(o) && isatty(STDIN_FILENO) && !o->force) {
        cli_error(&r, "compressed data not read from a terminal. "
                      "Use -f to force decompression.");
        return CLI_EXIT_ERROR;
    }
    pmp_opts p = { 0 };
    cli_report_pipeline_opts(&r, &p);
    p.suffix = o->suffix;
    p.restore_name = o->no_name == 0;
    p.to_stdout = writes && o->to_stdout;
    p.test_only = o->test && !o->list;
    p.list = o->list;
    p.pass_plain = o->force;
    p.warn_trailing_zeros = o->verbose;
    p.on_result = o->list ? on_list : NULL;
    p.pl.flags = PM_PL_PRESERVE_META;
    if (writes && !o->keep && !o->to_stdout)
        p.pl.flags |= PM_PL_REMOVE_INPUT;
    if (o->force)
        p.pl.flags |= PM_PL_OVERWRITE | PM_PL_FOLLOW_SYMLINKS;
    cli_run_split(&r, pmp_decompress, &p, o);
    if (o->list && !pm_signals_caught(o->sig))
        list_totals(&r);
    return cli_report_finish(&r);
}
