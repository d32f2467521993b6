/* dg_tree.c - directory trees of generated files.
 *
 * The layout (which directory, which kind, what size, what name) comes from
 * one PRNG stream, drawn file by file; each file's contents come from its
 * own stream, numbered by its index. So a file's bytes depend only on the
 * seed and its place in the tree. Small files sit in nested directories:
 * 5% at the top, 20% one level down (dNN), 75% two levels down (dNN/sNN),
 * with a fan-out that grows with the number of files so that a directory
 * holds a few dozen files. Directories are created when first used. */
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dg.h"

#define LAYOUT_STREAM 0x7472656500000000ull     /* "tree" */
#define LARGE_STREAM 0x6c61726765000000ull      /* "large" */

typedef struct tree {
    const char *root;
    const dg_tree_opts *o;
    const dg_tables *t;
    dg_sink *s;
    dg_rng layout;
    unsigned fan;            /* directories per level */
    unsigned char *made;     /* made[a * (fan + 1) + b]: b == fan is dNN itself */
    char path[4096];
    dg_tree_stats st;
} tree;

static int make_dir(tree *tr, const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        int err = -errno;
        fprintf(stderr, "pmap-datagen: %s: cannot create directory: %s\n", path, strerror(-err));
        return err;
    }
    tr->st.dirs++;
    return 0;
}

/* Empty or missing: fine. Otherwise only with --force. */
static int prepare_root(const char *root, int force)
{
    DIR *d = opendir(root);
    if (!d) {
        if (errno != ENOENT) {
            int err = -errno;
            fprintf(stderr, "pmap-datagen: %s: %s\n", root, strerror(-err));
            return err;
        }
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", root);
        for (char *p = tmp + 1; *p; p++)            /* mkdir -p */
            if (*p == '/') {
                *p = '\0';
                mkdir(tmp, 0755);
                *p = '/';
            }
        if (mkdir(root, 0755) < 0) {
            int err = -errno;
            fprintf(stderr, "pmap-datagen: %s: cannot create directory: %s\n", root, strerror(-err));
            return err;
        }
        return 0;
    }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    if (!empty && !force) {
        fprintf(stderr, "pmap-datagen: %s: directory is not empty (use --force to write into it)\n", root);
        return -EEXIST;
    }
    return 0;
}

/* Picks the directory of the next small file, creating it when new, and
 * leaves "root/dir/" in tr->path; returns its length or a negative errno. */
static int pick_dir(tree *tr)
{
    unsigned roll = (unsigned)dg_below(&tr->layout, 100);
    unsigned a = (unsigned)dg_below(&tr->layout, tr->fan);
    unsigned b = (unsigned)dg_below(&tr->layout, tr->fan);
    int n = snprintf(tr->path, sizeof tr->path, "%s/", tr->root);
    if (roll < 5)
        return n;
    unsigned char *top = &tr->made[a * (tr->fan + 1) + tr->fan];
    n += snprintf(tr->path + n, sizeof tr->path - n, "d%02u", a);
    if (!*top) {
        int err = make_dir(tr, tr->path);
        if (err)
            return err;
        *top = 1;
    }
    if (roll >= 25) {
        unsigned char *sub = &tr->made[a * (tr->fan + 1) + b];
        n += snprintf(tr->path + n, sizeof tr->path - n, "/s%02u", b);
        if (!*sub) {
            int err = make_dir(tr, tr->path);
            if (err)
                return err;
            *sub = 1;
        }
    }
    tr->path[n++] = '/';
    tr->path[n] = '\0';
    return n;
}

/* Kind of a small file: text 30%, log 25%, csv 15%, jsonl 15%, binary 15%,
 * renormalised over the kinds allowed. */
static dg_kind pick_kind(tree *tr)
{
    static const unsigned weight[DG_NKINDS] = { 30, 25, 15, 15, 15 };
    unsigned total = 0;
    for (int k = 0; k < DG_NKINDS; k++)
        if (tr->o->kinds & (1u << k))
            total += weight[k];
    unsigned roll = (unsigned)dg_below(&tr->layout, total);
    for (int k = 0; k < DG_NKINDS; k++) {
        if (!(tr->o->kinds & (1u << k)))
            continue;
        if (roll < weight[k])
            return (dg_kind)k;
        roll -= weight[k];
    }
    return DG_TEXT;
}

static int small_file(tree *tr, uint64_t index, uint64_t size)
{
    dg_kind kind = pick_kind(tr);
    uint32_t word = dg_zipf_draw(&tr->t->word_zipf, &tr->layout);
    int n = pick_dir(tr);
    if (n < 0)
        return n;
    snprintf(tr->path + n, sizeof tr->path - n, "%s-%06llu.%s", tr->t->words[word],
             (unsigned long long)index, dg_kind_ext(kind));
    int err = dg_write_file(tr->s, tr->path, tr->o->force, kind, tr->t, tr->o->seed, index + 1, size);
    if (err)
        return err;
    tr->st.files++;
    tr->st.bytes += size;
    return 0;
}

static int large_files(tree *tr)
{
    static const dg_kind order[DG_NKINDS] = { DG_LOG, DG_TEXT, DG_CSV, DG_JSONL, DG_BINARY };
    const dg_tree_opts *o = tr->o;
    uint64_t weight[64], wsum = 0, left = o->large_bytes;
    unsigned n = o->large < 64 ? o->large : 64, k = 0;
    for (unsigned i = 0; i < n; i++)
        wsum += weight[i] = dg_range(&tr->layout, 1, 4);
    for (unsigned i = 0; i < n; i++) {
        uint64_t size = i + 1 == n ? left : (uint64_t)((unsigned __int128)o->large_bytes * weight[i] / wsum);
        left -= size;
        while (!(o->kinds & (1u << order[k % DG_NKINDS])))
            k++;
        dg_kind kind = order[k++ % DG_NKINDS];
        snprintf(tr->path, sizeof tr->path, "%s/large-%u.%s", tr->root, i + 1, dg_kind_ext(kind));
        int err = dg_write_file(tr->s, tr->path, o->force, kind, tr->t, o->seed, LARGE_STREAM + i, size);
        if (err)
            return err;
        tr->st.files++;
        tr->st.bytes += size;
    }
    return 0;
}

static unsigned fan_for(uint64_t files)
{
    unsigned fan = 1;
    while ((uint64_t)(fan + 1) * (fan + 1) * 40 <= files && fan < 64)
        fan++;
    return fan;
}

static int small_files(tree *tr)
{
    const dg_tree_opts *o = tr->o;
    if (o->files) {
        for (uint64_t i = 0; i < o->files; i++) {
            int err = small_file(tr, i, dg_lognormal_clamped(&tr->layout, o->min, o->max));
            if (err)
                return err;
        }
        return 0;
    }
    uint64_t left = o->small_bytes;
    for (uint64_t i = 0; left; i++) {
        uint64_t size = dg_lognormal_clamped(&tr->layout, o->min, o->max);
        if (size > left)
            size = left;
        int err = small_file(tr, i, size);
        if (err)
            return err;
        left -= size;
    }
    return 0;
}

int dg_write_tree(const char *dir, const dg_tree_opts *o, const dg_tables *t,
                  dg_sink *s, dg_tree_stats *stats_ret)
{
    tree tr = { .root = dir, .o = o, .t = t, .s = s };
    uint64_t expect = o->files ? o->files : o->small_bytes / ((o->min + o->max) / 4 + 1) + 1;
    tr.fan = fan_for(expect);
    tr.made = calloc((size_t)tr.fan * (tr.fan + 1), 1);
    if (!tr.made)
        return -ENOMEM;
    dg_rng_seed(&tr.layout, o->seed, LAYOUT_STREAM);
    int err = prepare_root(dir, o->force);
    if (!err)
        err = large_files(&tr);
    if (!err)
        err = small_files(&tr);
    free(tr.made);
    if (stats_ret)
        *stats_ret = tr.st;
    return err;
}
