/* pmap_datagen.c - pmap-datagen: deterministic datasets of any size.
 *
 *   pmap-datagen file  --kind KIND --size SIZE [--seed N] [--force] OUT|-
 *   pmap-datagen tree  (--files N | --size SIZE) [--min SIZE] [--max SIZE]
 *                      [--kinds LIST] [--seed N] [--force] OUTDIR
 *   pmap-datagen mixed --size SIZE [--large N] [--large-share PCT]
 *                      [--min SIZE] [--max SIZE] [--kinds LIST] [--seed N] OUTDIR
 *
 * One thread writes everything sequentially through one buffer (see
 * dg_sink.c); the same arguments always produce the same bytes. Usage
 * errors exit 2 with a message naming the offending argument; I/O errors
 * exit 1 with a message naming the file. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dg.h"

#define EXIT_USAGE 2

enum cmd { CMD_FILE, CMD_TREE, CMD_MIXED };

typedef struct args {
    enum cmd cmd;
    const char *out;
    uint64_t seed;
    uint64_t size;
    int have_size;
    dg_kind kind;
    int have_kind;
    dg_tree_opts tree;
    unsigned large_share;     /* mixed: percent of --size in large files */
    int verbose;
} args;

static void usage(FILE *f)
{
    fputs("usage: pmap-datagen file  --kind KIND --size SIZE [--seed N] [--force] OUT|-\n"
          "       pmap-datagen tree  (--files N | --size SIZE) [--min SIZE] [--max SIZE]\n"
          "                          [--kinds LIST] [--seed N] [--force] OUTDIR\n"
          "       pmap-datagen mixed --size SIZE [--large N] [--large-share PCT] [--min SIZE]\n"
          "                          [--max SIZE] [--kinds LIST] [--seed N] [--force] OUTDIR\n"
          "\n"
          "Writes deterministic test data: the same arguments give the same bytes on\n"
          "any machine. Nothing is random unless you change --seed.\n"
          "\n"
          "  file    one file (or stdout with -) of exactly SIZE bytes of one KIND\n"
          "  tree    many small files in nested directories, sizes log-normal between\n"
          "          --min and --max (default 1K..64K, median their geometric mean)\n"
          "  mixed   a tree of exactly SIZE bytes: --large big files (default 4) holding\n"
          "          --large-share percent (default 75) of it, the rest small files\n"
          "\n"
          "KIND: text (English-like prose), log (web/app log lines), csv (orders table),\n"
          "      jsonl (analytics events), binary (random, structured and sparse parts).\n"
          "LIST: comma-separated kinds (default: all). SIZE: bytes, or with a binary\n"
          "suffix K, M, G, T (KiB, MiB... also accepted): 4096, 64K, 1G.\n"
          "  --seed N   64-bit seed (default 42)      --force   overwrite existing files\n"
          "  -v         print what was written         --help    this text\n", f);
}

/* Prints a usage error and returns -EINVAL. */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pmap-datagen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see pmap-datagen --help)\n");
    va_end(ap);
    return -EINVAL;
}

/* Decimal (or 0x hex) unsigned 64-bit number, the whole string. */
static int parse_u64(const char *s, uint64_t *v)
{
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || *end)
        return -EINVAL;
    *v = x;
    return 0;
}

static int parse_size(const char *s, uint64_t *v)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, *end >= 'a' ? *end - 32 : *end) : NULL;
    if (*end && !u)
        return -EINVAL;
    unsigned shift = u ? 10 * (unsigned)(u - units + 1) : 0;
    if (u) {
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "i"))
            end += strlen(end);
    } else if (!strcmp(end, "B")) {
        end++;
    }
    if (*end || (shift && x > (UINT64_MAX >> shift)))
        return -EINVAL;
    *v = (uint64_t)x << shift;
    return 0;
}

static int parse_kinds(const char *s, unsigned *mask)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -EINVAL;
    strcpy(buf, s);
    *mask = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        dg_kind k;
        if (!strcmp(tok, "all")) {
            *mask |= (1u << DG_NKINDS) - 1;
            continue;
        }
        if (dg_kind_parse(tok, &k) < 0)
            return -EINVAL;
        *mask |= 1u << k;
    }
    return *mask ? 0 : -EINVAL;
}

enum { OPT_KIND = 256, OPT_SIZE, OPT_SEED, OPT_FILES, OPT_MIN, OPT_MAX, OPT_KINDS,
       OPT_LARGE, OPT_SHARE, OPT_FORCE, OPT_HELP };

static const struct option long_opts[] = {
    {"kind", required_argument, 0, OPT_KIND},     {"size", required_argument, 0, OPT_SIZE},
    {"seed", required_argument, 0, OPT_SEED},     {"files", required_argument, 0, OPT_FILES},
    {"min", required_argument, 0, OPT_MIN},       {"max", required_argument, 0, OPT_MAX},
    {"kinds", required_argument, 0, OPT_KINDS},   {"large", required_argument, 0, OPT_LARGE},
    {"large-share", required_argument, 0, OPT_SHARE},
    {"force", no_argument, 0, OPT_FORCE},         {"help", no_argument, 0, OPT_HELP},
    {0, 0, 0, 0},
};

/* Which command accepts which option. */
static int option_allowed(enum cmd cmd, int opt)
{
    switch (opt) {
    case OPT_KIND: return cmd == CMD_FILE;
    case OPT_FILES: return cmd == CMD_TREE;
    case OPT_MIN: case OPT_MAX: case OPT_KINDS: return cmd != CMD_FILE;
    case OPT_LARGE: case OPT_SHARE: return cmd == CMD_MIXED;
    default: return 1;
    }
}

static int parse_one(args *a, int opt, const char *val)
{
    int err = 0;
    uint64_t v;
    switch (opt) {
    case OPT_KIND:
        if ((err = dg_kind_parse(val, &a->kind)) < 0)
            return bad("--kind: unknown kind '%s' (use text, log, csv, jsonl or binary)", val);
        a->have_kind = 1;
        return 0;
    case OPT_SIZE:
        if (parse_size(val, &a->size) < 0)
            return bad("--size: invalid size '%s' (examples: 4096, 64K, 1G)", val);
        a->have_size = 1;
        return 0;
    case OPT_MIN: case OPT_MAX:
        if (parse_size(val, &v) < 0 || v == 0)
            return bad("%s: invalid size '%s' (a positive size, e.g. 1K)",
                       opt == OPT_MIN ? "--min" : "--max", val);
        *(opt == OPT_MIN ? &a->tree.min : &a->tree.max) = v;
        return 0;
    case OPT_SEED:
        if (parse_u64(val, &a->seed) < 0)
            return bad("--seed: invalid seed '%s' (an unsigned 64-bit number)", val);
        return 0;
    case OPT_FILES:
        if (parse_u64(val, &a->tree.files) < 0 || a->tree.files == 0 || a->tree.files > 100000000)
            return bad("--files: invalid file count '%s' (1 to 100000000)", val);
        return 0;
    case OPT_KINDS:
        if (parse_kinds(val, &a->tree.kinds) < 0)
            return bad("--kinds: invalid kind list '%s' (e.g. text,log,csv,jsonl,binary)", val);
        return 0;
    case OPT_LARGE:
        if (parse_u64(val, &v) < 0 || v > 64)
            return bad("--large: invalid count '%s' (0 to 64)", val);
        a->tree.large = (unsigned)v;
        return 0;
    case OPT_SHARE:
        if (parse_u64(val, &v) < 0 || v > 100)
            return bad("--large-share: invalid percentage '%s' (0 to 100)", val);
        a->large_share = (unsigned)v;
        return 0;
    case OPT_FORCE:
        a->tree.force = 1;
        return 0;
    }
    return -EINVAL;
}

/* Checks that the options make a complete, consistent request. */
static int check_args(args *a)
{
    dg_tree_opts *t = &a->tree;
    if (a->cmd == CMD_FILE && !a->have_kind)
        return bad("%s: missing %s KIND", "file", "--kind");
    if (a->cmd != CMD_TREE && !a->have_size)
        return bad("%s: missing %s SIZE", a->cmd == CMD_FILE ? "file" : "mixed", "--size");
    if (a->cmd == CMD_TREE) {
        if (!t->files && !a->have_size)
            return bad("%s: give %s", "tree", "--files N or --size SIZE");
        if (t->files && a->have_size)
            return bad("%s: %s", "tree", "--files and --size exclude each other");
        t->small_bytes = t->files ? 0 : a->size;
    }
    if (t->min > t->max)
        return bad("--min (%llu) is larger than --max (%llu)",
                   (unsigned long long)t->min, (unsigned long long)t->max);
    if (a->cmd != CMD_MIXED)
        t->large = 0;
    if (a->cmd == CMD_MIXED) {
        t->large_bytes = (uint64_t)((unsigned __int128)a->size * a->large_share / 100);
        if (t->large == 0)
            t->large_bytes = 0;
        t->small_bytes = a->size - t->large_bytes;
    }
    return 0;
}

static int parse_args(args *a, int argc, char **argv)
{
    static const char *const names[] = { "file", "tree", "mixed" };
    int i;
    for (i = 0; i < 3 && strcmp(argv[1], names[i]); i++)
        ;
    if (i == 3)
        return bad("unknown command '%s' (use file, tree or mixed)", argv[1]);
    a->cmd = (enum cmd)i;
    optind = 2;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+vf", long_opts, NULL)) != -1) {
        if (opt == '?')
            return bad("%s: unknown or incomplete option '%s'", names[i], argv[optind - 1]);
        if (opt == OPT_HELP) {
            usage(stdout);
            exit(0);
        }
        if (opt == 'v') {
            a->verbose = 1;
            continue;
        }
        if (opt == 'f')
            opt = OPT_FORCE;
        if (!option_allowed(a->cmd, opt))
            return bad("%s: option '%s' does not apply to this command", names[i], argv[optind - 1]);
        if (parse_one(a, opt, optarg) < 0)
            return -EINVAL;
    }
    if (optind + 1 != argc)
        return bad("%s: %s", names[i], optind == argc ? "missing output path" : "exactly one output path expected");
    a->out = argv[optind];
    return check_args(a);
}

static int run_file(const args *a, const dg_tables *t, dg_sink *s)
{
    if (!strcmp(a->out, "-")) {
        int err = dg_write_stream(s, STDOUT_FILENO, "<stdout>", a->kind, t, a->seed, 0, a->size);
        if (err)
            fprintf(stderr, "pmap-datagen: <stdout>: write failed: %s\n", strerror(-err));
        return err;
    }
    int err = dg_write_file(s, a->out, a->tree.force, a->kind, t, a->seed, 0, a->size);
    if (!err && a->verbose)
        fprintf(stderr, "pmap-datagen: %s: %llu bytes of %s (seed %llu)\n", a->out,
                (unsigned long long)a->size, dg_kind_name(a->kind), (unsigned long long)a->seed);
    return err;
}

static int run_tree(args *a, const dg_tables *t, dg_sink *s)
{
    dg_tree_stats st;
    a->tree.seed = a->seed;
    int err = dg_write_tree(a->out, &a->tree, t, s, &st);
    if (!err && a->verbose)
        fprintf(stderr, "pmap-datagen: %s: %llu files, %llu bytes, %llu directories (seed %llu)\n",
                a->out, (unsigned long long)st.files, (unsigned long long)st.bytes,
                (unsigned long long)st.dirs, (unsigned long long)a->seed);
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    args a = { .seed = 42, .large_share = 75,
               .tree = { .min = 1024, .max = 65536, .kinds = (1u << DG_NKINDS) - 1, .large = 4 } };
    if (parse_args(&a, argc, argv) < 0)
        return EXIT_USAGE;

    dg_tables t;
    dg_sink *s = dg_sink_new();
    if (!s || dg_tables_init(&t) < 0) {
        fprintf(stderr, "pmap-datagen: out of memory\n");
        dg_sink_free(s);
        return 1;
    }
    int err = a.cmd == CMD_FILE ? run_file(&a, &t, s) : run_tree(&a, &t, s);
    dg_tables_free(&t);
    dg_sink_free(s);
    return err ? 1 : 0;
}
