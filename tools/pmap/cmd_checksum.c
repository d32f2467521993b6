/* cmd_checksum.c - pmap checksum: one line per file from pmp_checksum().
 *
 * Line format (stable; scripts may rely on it):
 *     CRC32HEX  BYTES  PATH
 * CRC32HEX is the file's CRC-32 (gzip's and zlib.crc32's) as 8 lowercase hex
 * digits, BYTES its size in decimal, separated by two spaces. A PATH holding
 * a backslash or a control character (a newline, say) is written escaped
 * (\\, \n, \t, \r, \ooo) and the line then starts with a backslash, as
 * sha256sum does; other bytes are written as they are. Files come in the
 * order given, directories walked in name order; stdin is "-".
 */
#include "cli.h"

void cli_help_checksum(FILE *f)
{
    fprintf(f,
        "usage: %s checksum [options] [PATH...]\n"
        "\n"
        "Prints the CRC-32 and size of each file, one line per file:\n"
        "    CRC32HEX  BYTES  PATH\n"
        "(8 lowercase hex digits, two spaces, decimal size, two spaces, path; a\n"
        "path with a backslash or a control character is escaped and the line\n"
        "then starts with '\\'). Directories are walked recursively in name order;\n"
        "chunks of every file are checksummed in parallel. With no PATH, or PATH\n"
        "'-', reads stdin.\n"
        "\n"
        "  -c, --check           read such lines from the files given (or stdin)\n"
        "                        and verify them, as sha256sum -c: 'PATH: OK' or\n"
        "                        'PATH: FAILED' per line, a summary on stderr,\n"
        "                        exit status 1 if any file failed or is missing\n"
        "      --status          with -c: print nothing, the status says it all\n"
        "                        (-q: no OK lines)\n"
        "\n", cli_argv0);
    cli_help_common(f, "follow symbolic links");
}

static void on_checksum(const pmp_result *res, void *arg)
{
    cli_report *r = arg;
    cli_report_before_stdout(r);
    if (cli_name_needs_escape(res->path))
        putchar('\\');
    printf("%08x  %llu  ", (unsigned)res->crc32, (unsigned long long)res->bytes);
    pm_print_name(stdout, res->path);
    putchar('\n');
}

int cli_run_checksum(cli_opts *o)
{
    static const char *const only_stdin[] = { "-" };
    if (o->check)
        return cli_run_check(o);
    cli_report r;
    cli_report_init(&r, o, CLI_DONE_SILENT);
    pmp_opts p = { 0 };
    cli_report_pipeline_opts(&r, &p);
    p.on_result = on_checksum;
    p.pl.flags = PM_PL_SKIP_SPECIAL_OK;
    if (o->force)
        p.pl.flags |= PM_PL_FOLLOW_SYMLINKS;
    pm_pipeline_stats st = { 0 };
    int ret = pmp_checksum(&p, o->npaths ? o->paths : only_stdin, o->npaths ? o->npaths : 1, &st);
    cli_report_run(&r, ret, &st);
    return cli_report_finish(&r);
}
