/* cmd_compress.c - pmap compress: gzip's options onto pmp_compress().
 *
 * Only option mapping and checks that gzip makes before touching any file
 * (no compressed data to a terminal); walking, skipping, safe output,
 * metadata and removal of inputs are the pipeline's.
 */
#include <unistd.h>

#include "cli.h"

void cli_help_compress(FILE *f)
{
    fprintf(f,
        "usage: %s compress [options] [PATH...]\n"
        "\n"
        "Compresses each regular file F into F.gz (gzip format, readable by any gzip)\n"
        "and removes F once F.gz is safely on disk. Directories are walked\n"
        "recursively. With no PATH, or PATH '-', compresses stdin to stdout.\n"
        "\n"
        "  -1 ... -9, --fast, --best  compression level (default 6); -10 to -12\n"
        "                        smaller still and much slower\n"
        "  -k, --keep            keep the input files\n"
        "  -c, --stdout          write everything to stdout, keep the inputs\n"
        "  -S, --suffix=SUF      suffix of compressed files (default .gz)\n"
        "  -n, --no-name         store neither the original name nor the mtime\n"
        "  -N, --name            store them (the default)\n"
        "      --one-member      one gzip member per file, pigz's format (levels\n"
        "                        1-9); the default is pmap's blocked format:\n"
        "                        members of -b bytes (default 1M) that any gzip\n"
        "                        reads and pmap decompresses in parallel\n"
        "      --blocked         the blocked format (the default)\n"
        "  -d, -t, -l            decompress, test or list instead, as gzip does\n",
        cli_argv0);
    cli_help_common(f, "overwrite existing outputs, follow symbolic links,\n"
                       "                        write compressed data to a terminal");
    fprintf(f,
        "\n"
        "Files already ending in the suffix, symbolic links (without -f), FIFOs,\n"
        "sockets and devices are skipped with a warning (exit status 2), as are\n"
        "files whose output exists (without -f). Mode, times (and owner, as root)\n"
        "are copied to the output. See pmap-compress(1).\n");
}

int cli_run_compress(cli_opts *o)
{
    if (o->decompress || o->test || o->list)
        return cli_run_decompress(o);
    cli_report r;
    cli_report_init(&r, o, CLI_DONE_COMPRESS);
    int from_stdin = cli_has_stdin(o);
    r.data_on_stdout = o->to_stdout || from_stdin;
    r.keep = o->keep || o->to_stdout;
    if (r.data_on_stdout && isatty(STDOUT_FILENO) && !o->force) {
        cli_error(&r, "compressed data not written to a terminal. "
                      "Use -f to force compression.");
        return CLI_EXIT_ERROR;
    }
    if (o->one_member && o->level > 9) {
        cli_error(&r, "levels 10 to 12 need the blocked format, not --one-member");
        return CLI_EXIT_ERROR;
    }
    pmp_opts p = { .level = o->level };
    cli_report_pipeline_opts(&r, &p);
    p.suffix = o->suffix;
    p.no_name = o->no_name == 1;
    p.one_member = o->one_member;
    p.to_stdout = o->to_stdout;
    p.pl.skip_suffix = o->suffix ? o->suffix : ".gz";
    p.pl.flags = PM_PL_PRESERVE_META;
    if (!o->keep && !o->to_stdout)
        p.pl.flags |= PM_PL_REMOVE_INPUT;
    if (o->force)
        p.pl.flags |= PM_PL_OVERWRITE | PM_PL_FOLLOW_SYMLINKS;
    cli_run_split(&r, pmp_compress, &p, o);
    return cli_report_finish(&r);
}
