/* options.c - command-line parsing, spelled as gzip and pigz spell it.
 *
 * A small table-driven parser rather than getopt_long, so that every error
 * names the exact option and command. GNU conventions: short options
 * combine (-kv9), a short option's argument may be attached (-b256K, -p2)
 * or follow (-b 256K); long options take --opt=ARG or --opt ARG and may be
 * abbreviated to any unambiguous prefix; options and operands may be mixed;
 * "--" ends the options; "-" alone is an operand (stdin).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <pmap/config.h>

#include "cli.h"

enum opt_id {
    O_LEVEL, O_FAST, O_BEST, O_JOBS, O_BLOCK, O_KEEP, O_FORCE, O_STDOUT,
    O_SUFFIX, O_NO_NAME, O_NAME, O_QUIET, O_VERBOSE, O_RECURSIVE,
    O_PROGRESS, O_NO_PROGRESS, O_JSON, O_HELP, O_VERSION, O_DECOMPRESS, O_TEST,
    O_LIST, O_WC_LINES, O_WC_WORDS, O_WC_CHARS, O_WC_BYTES, O_CHECK, O_STATUS,
    O_BLOCKED, O_ONE_MEMBER,
};

#define ALL (CLI_COMPRESS | CLI_DECOMPRESS | CLI_CHECKSUM | CLI_WC)
#define GZ (CLI_COMPRESS | CLI_DECOMPRESS)

typedef struct optdef {
    char short_name;         /* 0: long only */
    const char *long_name;   /* NULL: short only */
    int has_arg;             /* 0 no, 1 required, 2 optional (--opt=ARG only) */
    enum opt_id id;
    unsigned cmds;           /* commands that take it */
} optdef;

static const optdef optdefs[] = {
    { '1', "fast", 0, O_FAST, CLI_COMPRESS },
    { '9', "best", 0, O_BEST, CLI_COMPRESS },
    { '2', NULL, 0, O_LEVEL, CLI_COMPRESS }, { '3', NULL, 0, O_LEVEL, CLI_COMPRESS },
    { '4', NULL, 0, O_LEVEL, CLI_COMPRESS }, { '5', NULL, 0, O_LEVEL, CLI_COMPRESS },
    { '6', NULL, 0, O_LEVEL, CLI_COMPRESS }, { '7', NULL, 0, O_LEVEL, CLI_COMPRESS },
    { '8', NULL, 0, O_LEVEL, CLI_COMPRESS },
    { 'j', "jobs", 1, O_JOBS, ALL },
    { 'p', "processes", 1, O_JOBS, ALL },
    { 'b', "blocksize", 1, O_BLOCK, ALL },
    { 'k', "keep", 0, O_KEEP, GZ },
    { 'f', "force", 0, O_FORCE, ALL },
    { 'c', "stdout", 0, O_STDOUT, GZ },
    { 0, "to-stdout", 0, O_STDOUT, GZ },
    { 'S', "suffix", 1, O_SUFFIX, GZ },
    { 'n', "no-name", 0, O_NO_NAME, GZ },
    { 'N', "name", 0, O_NAME, GZ },
    { 'q', "quiet", 0, O_QUIET, ALL },
    { 'v', "verbose", 0, O_VERBOSE, ALL },
    { 'r', "recursive", 0, O_RECURSIVE, ALL },
    { 0, "progress", 0, O_PROGRESS, ALL },
    { 0, "no-progress", 0, O_NO_PROGRESS, ALL },
    { 0, "json", 2, O_JSON, ALL },
    { 'h', "help", 0, O_HELP, ALL },
    { 'V', "version", 0, O_VERSION, ALL },
    { 'd', "decompress", 0, O_DECOMPRESS, GZ },
    { 0, "uncompress", 0, O_DECOMPRESS, GZ },
    { 't', "test", 0, O_TEST, GZ },
    { 'l', "list", 0, O_LIST, GZ },
    { 'l', "lines", 0, O_WC_LINES, CLI_WC },
    { 'w', "words", 0, O_WC_WORDS, CLI_WC },
    { 'm', "chars", 0, O_WC_CHARS, CLI_WC },
    { 'c', "bytes", 0, O_WC_BYTES, CLI_WC },
    { 'c', "check", 0, O_CHECK, CLI_CHECKSUM },
    { 0, "status", 0, O_STATUS, CLI_CHECKSUM },
    { 0, "blocked", 0, O_BLOCKED, CLI_COMPRESS },
    { 0, "one-member", 0, O_ONE_MEMBER, CLI_COMPRESS },
};
#define N_OPTDEFS (sizeof optdefs / sizeof optdefs[0])

static const char *cmd_name(const cli_opts *o)
{
    return o->cmd ? o->cmd->name : "";
}

static int usage_error(const cli_opts *o, const char *fmt, const char *what)
{
    fprintf(stderr, "%s %s: ", cli_argv0, cmd_name(o));
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\nTry '%s %s --help' for more information.\n", cli_argv0,
            cmd_name(o));
    return CLI_EXIT_ERROR;
}

int cli_parse_size(const char *s, size_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -ERANGE;
    unsigned shift = 10;     /* a bare number is KiB, as in pigz */
    switch (*end) {
    case 'b': case 'B': shift = 0; end++; break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case '\0': break;
    default: return -EINVAL;
    }
    if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
        end += strlen(end);
    if (*end)
        return -EINVAL;
    if (v > (SIZE_MAX >> shift))
        return -ERANGE;
    *out = (size_t)v << shift;
    return 0;
}

static int parse_jobs(const char *s, int *out)
{
    long v;
    if (pm_parse_count(s, PM_MAX_JOBS, &v) < 0)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* Chunk sizes the CLI accepts: pigz's minimum (the deflate window) up to
 * 1 GiB, so that jobs x chunk stays a sane amount of memory. */
#define CLI_CHUNK_MIN ((size_t)32 << 10)
#define CLI_CHUNK_MAX ((size_t)1 << 30)

static int apply(cli_opts *o, const optdef *d, char letter, const char *arg)
{
    switch (d->id) {
    case O_LEVEL: o->level = letter - '0'; break;
    case O_FAST: o->level = 1; break;
    case O_BEST: o->level = 9; break;
    case O_JOBS:
        if (parse_jobs(arg, &o->jobs))
            return usage_error(o, "invalid number of jobs '%s' (expected 1 to 1024)", arg);
        break;
    case O_BLOCK:
        if (cli_parse_size(arg, &o->chunk_size) || o->chunk_size < CLI_CHUNK_MIN
            || o->chunk_size > CLI_CHUNK_MAX)
            return usage_error(o, "invalid block size '%s' (expected 32K to 1G)", arg);
        break;
    case O_KEEP: o->keep = 1; break;
    case O_FORCE: o->force = 1; break;
    case O_STDOUT: o->to_stdout = 1; break;
    case O_SUFFIX:
        if (!*arg || strchr(arg, '/') || strlen(arg) > 30)
            return usage_error(o, "invalid suffix '%s'", arg);
        o->suffix = arg;
        break;
    case O_NO_NAME: o->no_name = 1; break;
    case O_BLOCKED: o->one_member = 0; break;
    case O_ONE_MEMBER: o->one_member = 1; break;
    case O_NAME: o->no_name = 0; break;
    case O_QUIET: o->quiet = 1; o->verbose = 0; break;
    case O_VERBOSE: o->verbose++; o->quiet = 0; break;
    case O_RECURSIVE: break;   /* directories are always walked */
    case O_PROGRESS: o->progress = CLI_PROGRESS_ON; break;
    case O_NO_PROGRESS: o->progress = CLI_PROGRESS_OFF; break;
    case O_JSON:
        if (arg && !*arg)
            return usage_error(o, "option '%s' needs a file name after '='", "--json=");
        o->json = 1;
        o->json_file = arg;
        break;
    case O_HELP: o->help = 1; break;
    case O_DECOMPRESS: o->decompress = 1; break;
    case O_TEST: o->test = 1; break;
    case O_LIST: o->list = 1; break;
    case O_VERSION: o->version = 1; break;
    case O_WC_LINES: o->wc_fields |= CLI_WC_LINES; break;
    case O_WC_WORDS: o->wc_fields |= CLI_WC_WORDS; break;
    case O_WC_CHARS: o->wc_fields |= CLI_WC_CHARS; break;
    case O_WC_BYTES: o->wc_fields |= CLI_WC_BYTES; break;
    case O_CHECK: o->check = 1; break;
    case O_STATUS: o->check_status = 1; break;
    }
    return 0;
}

static const optdef *find_short(const cli_opts *o, char c)
{
    for (size_t i = 0; i < N_OPTDEFS; i++)
        if (optdefs[i].short_name == c && (optdefs[i].cmds & o->cmd->bit))
            return &optdefs[i];
    return NULL;
}

/* Exact match first, then a unique prefix. *ambiguous is set when several
 * options share the prefix. */
static const optdef *find_long(const cli_opts *o, const char *name, size_t len,
                               int *ambiguous)
{
    const optdef *found = NULL;
    *ambiguous = 0;
    for (size_t i = 0; i < N_OPTDEFS; i++) {
        const optdef *d = &optdefs[i];
        if (!d->long_name || !(d->cmds & o->cmd->bit) || strncmp(d->long_name, name, len))
            continue;
        if (strlen(d->long_name) == len)
            return d;
        if (found && found->id != d->id)
            *ambiguous = 1;
        found = d;
    }
    return *ambiguous ? NULL : found;
}

/* Parses "--name[=arg]" at argv[*i]; advances *i past a separate argument. */
static int parse_long(cli_opts *o, int argc, char **argv, int *i)
{
    const char *s = argv[*i] + 2;
    const char *eq = strchr(s, '=');
    size_t len = eq ? (size_t)(eq - s) : strlen(s);
    int ambiguous;
    const optdef *d = find_long(o, s, len, &ambiguous);
    if (!d)
        return usage_error(o, ambiguous ? "ambiguous option '%s'" : "unknown option '%s'",
                           argv[*i]);
    const char *arg = NULL;
    if (d->has_arg == 2) {
        arg = eq ? eq + 1 : NULL;
    } else if (d->has_arg) {
        if (eq)
            arg = eq + 1;
        else if (*i + 1 < argc)
            arg = argv[++*i];
        else
            return usage_error(o, "option '%s' requires an argument", argv[*i]);
    } else if (eq) {
        return usage_error(o, "option '%s' does not take an argument", argv[*i]);
    }
    return apply(o, d, 0, arg);
}

/* Parses a cluster of short options "-kv9" or "-b256K" at argv[*i]. */
static int parse_short(cli_opts *o, int argc, char **argv, int *i)
{
    const char *s = argv[*i];
    for (size_t k = 1; s[k]; k++) {
        char opt[3] = { '-', s[k], 0 };
        /* Digits in a row are one level, as pigz reads -11: -10 to -12. */
        if (k > 1 && s[k] >= '0' && s[k] <= '9' && s[k - 1] >= '1' && s[k - 1] <= '9' &&
            (o->cmd->bit & CLI_COMPRESS)) {
            int level = o->level * 10 + (s[k] - '0');
            if (level > CLI_LEVEL_MAX)
                return usage_error(o, "invalid compression level in '%s' (1 to 12)", s);
            o->level = level;
            continue;
        }
        const optdef *d = find_short(o, s[k]);
        if (!d)
            return usage_error(o, "unknown option '%s'", opt);
        if (!d->has_arg) {
            int rc = apply(o, d, s[k], NULL);
            if (rc)
                return rc;
            continue;
        }
        const char *arg = s + k + 1;
        if (!*arg) {
            if (*i + 1 >= argc)
                return usage_error(o, "option '%s' requires an argument", opt);
            arg = argv[++*i];
        }
        return apply(o, d, s[k], arg);
    }
    return 0;
}

int cli_parse(int argc, char **argv, int first, cli_opts *o)
{
    o->paths = calloc((size_t)(argc > first ? argc - first : 0) + 1, sizeof *o->paths);
    if (!o->paths) {
        fprintf(stderr, "%s: out of memory\n", cli_argv0);
        return CLI_EXIT_ERROR;
    }
    int only_operands = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (only_operands || a[0] != '-' || !a[1])
            o->paths[o->npaths++] = a;
        else if (!strcmp(a, "--"))
            only_operands = 1;
        else if (a[1] == '-')
            rc = parse_long(o, argc, argv, &i);
        else
            rc = parse_short(o, argc, argv, &i);
        if (rc)
            return rc;
    }
    return 0;
}

void cli_help_common(FILE *f, const char *force)
{
    fputs("  -j, -p, --jobs=N      worker threads (default: $PMAP_JOBS or online CPUs)\n"
          "  -b, --blocksize=SIZE  chunk size, K/M/G suffixes (a bare number is KiB,\n"
          "                        as in pigz; 32K to 1G; compress: 1M, with\n"
          "                        --one-member 256K, 128K at -1..-3)\n", f);
    fprintf(f, "  -f, --force           %s\n", force);
    fputs("  -q, --quiet           no warnings\n"
          "  -v, --verbose         a line per file\n"
          "  -r, --recursive       accepted for habit: directories are always walked\n"
          "      --progress        progress bar on stderr (default: when stderr is a\n"
          "                        terminal and the job takes more than a second)\n"
          "      --no-progress     no progress bar\n"
          "      --json[=FILE]     one line of statistics in JSON at the end, on\n"
          "                        stderr or into FILE (never mixed into the data)\n"
          "  -h, --help            this help\n"
          "  -V, --version         the version\n", f);
}
