/* main.c - the pmap command: finds the subcommand, parses its options and
 * runs it. Each subcommand lives in cmd_<name>.c and is a thin layer over
 * one of the ready-made pipelines (pipelines/pipelines.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/pmap.h>

#include "cli.h"

const char *cli_argv0 = "pmap";

static const cli_command commands[] = {
    { "compress", CLI_COMPRESS, "gzip files and directory trees in parallel (F -> F.gz)",
      cli_help_compress, cli_run_compress },
    { "decompress", CLI_DECOMPRESS, "gunzip files (F.gz -> F), test (-t) or list (-l) them",
      cli_help_decompress, cli_run_decompress },
    { "checksum", CLI_CHECKSUM, "CRC-32 and size of each file",
      cli_help_checksum, cli_run_checksum },
    { "wc", CLI_WC, "lines, words and bytes of each file, and in total",
      cli_help_wc, cli_run_wc },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f,
        "usage: %s COMMAND [options] [PATH...]\n"
        "       %s --help | --version\n"
        "\n"
        "Data-parallel batch processing over files and directories: every file\n"
        "of every PATH (directories are walked) is processed in chunks on all\n"
        "cores, with outputs written safely (temporary file, sync, rename).\n"
        "\n"
        "Commands:\n", cli_argv0, cli_argv0);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
        "\n"
        "'%s COMMAND --help' describes a command's options. Exit status: 0 when\n"
        "all went well, 1 if any file failed (or a usage error), 2 if files were\n"
        "only skipped or warned about; 128+N when stopped by signal N.\n",
        cli_argv0);
}

static void version(void)
{
    printf("pmap %s\n", PM_VERSION_STRING);
}

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static int run_command(const cli_command *c, int argc, char **argv)
{
    cli_opts o = { .cmd = c, .no_name = -1, .progress = CLI_PROGRESS_AUTO };
    char msg[256];
    int rc = cli_parse(argc, argv, 2, &o);
    if (!rc && o.help)
        c->help(stdout);
    else if (!rc && o.version)
        version();
    else if (!rc && pm_config_check(msg, sizeof msg) < 0) {
        fprintf(stderr, "%s %s: %s\n", cli_argv0, c->name, msg);
        rc = CLI_EXIT_ERROR;
    } else if (!rc) {
        /* Before any other thread exists, so that all inherit the mask. */
        int err = pm_signals_start(&o.sig);
        if (err) {
            fprintf(stderr, "%s %s: cannot set up signal handling: %s\n", cli_argv0,
                    c->name, pm_strerror(err));
            rc = CLI_EXIT_ERROR;
        } else {
            rc = c->run(&o);
        }
    }
    free(o.paths);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "%s %s: error writing to standard output\n", cli_argv0, c->name);
        rc = CLI_EXIT_ERROR;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_ERROR;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
        version();
        return CLI_EXIT_OK;
    }
    const cli_command *c = find_command(a);
    if (c)
        return run_command(c, argc, argv);
    if (a[0] == '-')
        fprintf(stderr, "%s: unknown option '%s' (a COMMAND comes first)\n", cli_argv0, a);
    else
        fprintf(stderr, "%s: unknown command '%s'\n", cli_argv0, a);
    fprintf(stderr, "Try '%s --help' for the list of commands.\n", cli_argv0);
    return CLI_EXIT_ERROR;
}
