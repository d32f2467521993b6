/* main.c - the pmap command: finds the subcommand, parses its options and
 * runs it. Each subcommand lives in cmd_<name>.c and is a thin layer over
 * one of the ready-made pipelines (pipelines/pipelines.h).
 *
 * "pmap" is also procps's command (a process's memory map: pmap PID,
 * pmap -x PID, ...). A command line that only procps's pmap can mean is
 * handed to it: exec'd with the same arguments, when it is installed; a
 * clear error otherwise. See procps_invocation() and procps_exec().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pmap/pmap.h>

#include "cli.h"

const char *cli_argv0 = "pmap";

static const cli_command commands[] = {
    { "compress", CLI_COMPRESS, "gzip files and directory trees in parallel (F -> F.gz)",
      cli_help_compress, cli_run_compress, NULL },
    { "decompress", CLI_DECOMPRESS, "gunzip files (F.gz -> F), test (-t) or list (-l) them",
      cli_help_decompress, cli_run_decompress, NULL },
    { "checksum", CLI_CHECKSUM, "CRC-32 and size of each file",
      cli_help_checksum, cli_run_checksum, NULL },
    { "wc", CLI_WC, "lines, words and bytes of each file, and in total",
      cli_help_wc, cli_run_wc, NULL },
    { "run", CLI_RUN, "run a command over many arguments or blocks, as GNU parallel",
      cli_help_run, NULL, cli_main_run },
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
        "'%s COMMAND --help' describes a command's options; the manual is\n"
        "pmap-tools(7) and pmap-COMMAND(1) ('man pmap-compress'). Exit status: 0\n"
        "when all went well, 1 if any file failed (or a usage error), 2 if files\n"
        "were only skipped or warned about; 128+N when stopped by signal N.\n"
        "\n"
        "'%s PID...' and procps's options (-x, -X, -d, -q, ... PID...) run\n"
        "procps's pmap, a process's memory map, when it is installed.\n",
        cli_argv0, cli_argv0);
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
    if (c->main)
        return c->main(argc, argv);
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

/* procps's pmap: its options (getopt_long "xXrdqA:hVcC:nN:p", procps-ng
 * 4.0), and where it lives unless PMAP_PROCPS says otherwise. */
static const char procps_short_opts[] = "xXrdqcnpAhV";
static const char procps_short_args[] = "ACN";     /* take an argument */
static const char procps_only_opts[] = "xXdqcnpACN";   /* -h, -V, -r: ours too */
static const struct { const char *name; int has_arg; } procps_long_opts[] = {
    { "extended", 0 }, { "device", 0 }, { "quiet", 0 }, { "range", 1 },
    { "read-rc", 0 }, { "read-rc-from", 1 }, { "create-rc", 0 },
    { "create-rc-to", 1 }, { "show-path", 0 },
};
#define N_PROCPS_LONG (sizeof procps_long_opts / sizeof procps_long_opts[0])
static const char *const procps_places[] = { "/usr/bin/pmap", "/bin/pmap" };

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* argv[*i] is "--NAME" or "--NAME=VALUE", an option of procps's pmap:
 * consumes it (and its argument) and returns 1, or returns 0. Sets *create
 * for --create-rc and --create-rc-to, which take no PID. */
static int procps_long(int argc, char **argv, int *i, int *create)
{
    const char *a = argv[*i] + 2;
    size_t n = strcspn(a, "=");
    for (size_t k = 0; k < N_PROCPS_LONG; k++) {
        if (strlen(procps_long_opts[k].name) != n || strncmp(a, procps_long_opts[k].name, n))
            continue;
        if (procps_long_opts[k].has_arg && !a[n] && ++*i >= argc)
            return 0;
        if (!procps_long_opts[k].has_arg && a[n])
            return 0;
        *create |= !strncmp(a, "create-rc", 9);
        return 1;
    }
    return 0;
}

/* argv[*i] is a cluster of procps's short options ("-xq", "-A0,ff"):
 * consumes it (and a separate argument) and returns 1, or returns 0. Sets
 * *only when a letter is procps's alone, *create for -n and -N. */
static int procps_short(int argc, char **argv, int *i, int *only, int *create)
{
    for (const char *c = argv[*i] + 1; *c; c++) {
        if (!strchr(procps_short_opts, *c) && !strchr(procps_short_args, *c))
            return 0;
        *only |= strchr(procps_only_opts, *c) != NULL;
        *create |= *c == 'n' || *c == 'N';
        if (strchr(procps_short_args, *c))
            return c[1] || ++*i < argc;
    }
    return 1;
}

/* Whether argv can only mean procps's pmap: a PID first, or procps's
 * options with PIDs as the only operands (none with -n/-N, which write its
 * rc file). A gzip habit such as "pmap -d file.gz" is not: its operand is
 * no PID, and it gets pmap's own usage error. */
static int procps_invocation(int argc, char **argv)
{
    int only = 0, create = 0, pids = 0, i;
    if (all_digits(argv[1]))
        return 1;
    for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            if (!all_digits(a))
                return 0;
            pids++;
        } else if (a[1] == '-' ? !procps_long(argc, argv, &i, &create)
                               : !procps_short(argc, argv, &i, &only, &create)) {
            return 0;
        } else {
            only |= a[1] == '-';
        }
    }
    for (i++; i < argc; i++, pids++)
        if (!all_digits(argv[i]))
            return 0;
    return only && (pids > 0 || create);
}

/* Whether path is this very program (same file as /proc/self/exe: a
 * symbolic or hard link to it included). When that cannot be told, the
 * answer is yes: exec'ing ourselves could loop, and procps's pmap cannot
 * work without /proc anyway. */
static int is_self(const char *path)
{
    struct stat self, st;
    if (stat("/proc/self/exe", &self) || stat(path, &st))
        return 1;
    return self.st_dev == st.st_dev && self.st_ino == st.st_ino;
}

/* Runs procps's pmap with argv's arguments; returns only on failure, with
 * the exit status. PMAP_PROCPS names it (empty: there is none); by default
 * the first of procps_places that is an executable other than this one. */
static int procps_exec(char **argv)
{
    const char *env = getenv("PMAP_PROCPS");
    size_t n = env ? 1 : sizeof procps_places / sizeof procps_places[0];
    for (size_t k = 0; k < n && !(env && !*env); k++) {
        const char *path = env ? env : procps_places[k];
        if (access(path, X_OK) || is_self(path))
            continue;
        argv[0] = (char *)path;
        execv(path, argv);
        fprintf(stderr, "%s: cannot run procps's pmap %s: %s\n", cli_argv0, path,
                pm_strerror(-errno));
        return CLI_EXIT_ERROR;
    }
    fprintf(stderr, "%s: '%s' is for procps's pmap (a process's memory map), which is "
            "not installed: ", cli_argv0, argv[1]);
    if (!env)
        fprintf(stderr, "no %s or %s\n", procps_places[0], procps_places[1]);
    else if (!*env)
        fprintf(stderr, "PMAP_PROCPS is empty\n");
    else
        fprintf(stderr, "PMAP_PROCPS=%s is not an executable other than this pmap\n", env);
    fprintf(stderr, "%s: this pmap is the parallel file toolkit ('%s --help'); install "
            "procps, or set PMAP_PROCPS to its pmap\n", cli_argv0, cli_argv0);
    return CLI_EXIT_ERROR;
}

/* The usage error for an unknown first argument; a hint when it is an
 * option of procps's pmap without its PIDs. */
static int unknown_first(int argc, char **argv)
{
    const char *a = argv[1];
    int i = 1, only = 0, create = 0;
    if (a[0] == '-' && (a[1] == '-' ? procps_long(argc, argv, &i, &create)
                                    : procps_short(argc, argv, &i, &only, &create) && only))
        fprintf(stderr, "%s: unknown option '%s' (a COMMAND comes first; '%s %s PID...' "
                "would run procps's pmap)\n", cli_argv0, a, cli_argv0, a);
    else if (a[0] == '-')
        fprintf(stderr, "%s: unknown option '%s' (a COMMAND comes first)\n", cli_argv0, a);
    else
        fprintf(stderr, "%s: unknown command '%s'\n", cli_argv0, a);
    fprintf(stderr, "Try '%s --help' for the list of commands.\n", cli_argv0);
    return CLI_EXIT_ERROR;
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
    if (procps_invocation(argc, argv))
        return procps_exec(argv);
    return unknown_first(argc, argv);
}
