/* dist.c - the ready-made pipelines over MPI ranks (see pmp_mpi.h).
 *
 * One pmpi_* call is one or more rounds, each on every rank at once and
 * each over one window of files (PMAP_MPI_WINDOW, so that rank 0's memory
 * is bounded by it, not by the tree):
 *
 *   list       rank 0 runs a pipeline over the operands whose accept hook
 *              refuses every file with a marker: the walk (order, symbolic
 *              links, special files, suffixes, unreadable directories) is
 *              the pipeline's own, each event gets an ordinal (its place in
 *              source order), marked files become jobs, the other events
 *              are kept to be reported. It runs on a thread of its own
 *              and waits whenever a window of jobs is ready and not taken.
 *   send       rank 0 broadcasts the command, the options (scalar fields
 *              and strings only: no pointer crosses a process) and the
 *              jobs, sorted by size, largest first.
 *   split      first, files of PMAP_MPI_SPLIT_MIN bytes or more (checksum,
 *              wc without -m, blocked compress, decompress of a blocked
 *              file to files) are worked on by every rank together, one
 *              after another: checksum or count a share of the bytes each
 *              (split.c), compress or decompress a share of the members
 *              each, rank 0's pipeline committing the file, each rank
 *              writing its output into it where rank 0 places it
 *              (members.c).
 *   work       the other jobs are cut into batches (a big file alone,
 *              small ones by the hundred: one pipeline run each); every
 *              rank takes the next batch from a counter on rank 0
 *              (a request and its answer) and runs the one-process
 *              pipeline over its files; events and results are
 *              recorded, tagged with their file's ordinal (found by path:
 *              each file is an operand, named as given). The gather
 *              waits for every rank.
 *   gather     the records go to rank 0 (MPI_Gatherv); rank 0 sorts them
 *              by ordinal and replays them to the caller's hooks, so that
 *              the caller sees what one process would have shown.
 *
 * Outputs are written by each rank's pipeline as usual (temporary file,
 * fsync, link into place, only then the input removed), so a rank that
 * dies leaves what one process killed at that moment would: no partial
 * output under a final name, no input removed before its output is
 * durable. Open MPI then aborts the job.
 *
 * A file found by walking is run as an operand on its rank; the one
 * difference this makes (a skip of a walked file by accept or out_path is
 * "incidental", gzip -r's silent kind) is restored when it is recorded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include <pmap/codec.h>
#include <pmap/error.h>
#include "pmp_mpi.h"
#include "members.h"
#include "round.h"
#include "split.h"
#include "wire.h"

typedef int (*pipeline_fn)(const pmp_opts *o, const char *const *paths, size_t n,
                           pm_pipeline_stats *stats);

enum { CMD_COMPRESS, CMD_DECOMPRESS, CMD_CHECKSUM, CMD_WC, CMD_N };
static const pipeline_fn pipeline_fns[CMD_N] = {
    pmp_compress, pmp_decompress, pmp_checksum, pmp_wc,
};

static const char refused_mark[] = "\x01pmap-mpi: to be run on a rank";

typedef struct job {
    uint64_t ordinal;        /* place in source order */
    uint64_t size;           /* bytes, for largest first */
    int32_t walked;          /* found by walking, not an operand */
    int32_t split;           /* worked on by every rank at once (split.c, members.c) */
    int32_t root;            /* walked: the operand (a root) it was found
                                beneath, else -1 */
    const char *path;
} job;

/* The operands that are directories: every rank reaches a walked file from
 * its root's descriptor, one name at a time, never through the path
 * (see "roots" below). */
typedef struct root {
    const char *path;        /* the operand, as given */
    int32_t ok;              /* rank 0 opened it as a directory */
    uint64_t ino;            /* the directory rank 0 walked */
} root;

/* One record: an event, a result, a run's return value or a rank's stats,
 * followed on the wire by four strings (path, out_path, message, name). */
enum { REC_EVENT = 1, REC_RESULT, REC_RET, REC_STATS };
typedef struct rec {
    uint64_t ordinal;
    uint32_t type;
    int32_t kind, reason, err, incidental, has_file, ret;
    uint64_t bytes_in, bytes_out;
    struct stat st;
    pmp_result res;          /* pointers cleared */
    pm_pipeline_stats stats;
} rec;

/* The options that travel: scalars, and strings sent beside them. */
typedef struct wire_opts {
    int jobs, io_engine, verbose;
    size_t chunk_size, async_stack_size;
    unsigned max_chunks, max_files, flags, blocking_threads, async_io_threads;
    double progress_interval;
    int level, no_name, one_member, restore_name, to_stdout, test_only, list;
    int pass_plain, warn_trailing_zeros, count_chars, lines_only;
} wire_opts;

/* What the capturing hooks need. */
typedef struct capture {
    wire *out;
    uint64_t ordinal;        /* the file being run (list: the next event's) */
    int walked;
    int listing;             /* list step: marked files become jobs */
    job *jobs;               /* list step: the jobs found, njobs of them */
    size_t njobs, cap;
    uint64_t first_err;      /* list step: ordinal of the first ERROR, or ~0 */
    const struct job *batch; /* work step: the batch being run, nbatch jobs */
    const int *dirs;         /* work step: the batch's directory descriptors
                                (pm_pipeline_opts.operand_dirs), or NULL */
    size_t nbatch, cursor;   /* cursor: where the next file is looked for */
    size_t errors;           /* work step: ERROR events of the batch */
    struct lister *ls;       /* list step: the round it feeds (locked) */
    struct root *roots;      /* work step: the round's roots */
    int follow;              /* work step: links are followed (-f) */
} capture;

/* The list step runs on a thread of its own, ahead of the rounds: it
 * stops when `window` jobs wait to be taken, so rank 0 holds the jobs
 * and records of one window of files at a time, however big the tree.
 * Everything below is under lock. */
typedef struct lister {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    capture c;               /* c.jobs: the jobs not taken yet; c.out: the
                                events not taken yet (`listed`) */
    wire listed;
    size_t nlisted;          /* records in listed */
    size_t window;           /* jobs + records per round */
    size_t total;            /* jobs found so far */
    int done, rc;            /* the walk is over, with list_files()'s value */
    pm_pipeline_stats st;
    const pmp_opts *o;
    const char *const *paths;
    size_t n;
} lister;

static int rank_self(void)
{
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

static void put_rec(wire *w, const rec *r, const char *path, const char *out_path,
                    const char *msg, const char *name)
{
    wire_put(w, r, sizeof *r);
    wire_put_str(w, path);
    wire_put_str(w, out_path);
    wire_put_str(w, msg);
    wire_put_str(w, name);
}

/* ---- capturing hooks ---- */

/* A file found by the list step: its place (c->ordinal), whether the
 * walk found it, its size (stat'ed by path: only the order and the split
 * depend on it, and each is checked again where the file is read). */
static int add_job(capture *c, const char *path, int walked, uint64_t size)
{
    if (c->njobs == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        job *j = realloc(c->jobs, cap * sizeof *j);
        if (!j)
            return -ENOMEM;
        c->jobs = j;
        c->cap = cap;
    }
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    c->jobs[c->njobs++] = (job){.ordinal = c->ordinal, .path = p, .walked = walked,
                                .size = size};
    return 0;
}

/* Work step: the file an event or result is about is one of the batch's,
 * named as given; ordinal and walked become its. Files come in the
 * batch's order, so the search starts just after the last file's event
 * (its result, if any, comes before it). */
static void locate(capture *c, const char *path)
{
    for (size_t k = 0; c->batch && path && k < c->nbatch; k++) {
        size_t i = (c->cursor + k) % c->nbatch;
        if (!strcmp(c->batch[i].path, path)) {
            c->cursor = i;
            c->ordinal = c->batch[i].ordinal;
            c->walked = c->batch[i].walked;
            return;
        }
    }
}

static int is_marked(const pm_event *ev)
{
    return ev->kind == PM_EVENT_SKIP && ev->reason == PM_REASON_REFUSED &&
           !strcmp(ev->message, refused_mark);
}

static void cap_event(const pm_event *ev, void *arg)
{
    capture *c = arg;
    int marked = c->listing && is_marked(ev);
    struct stat st;
    uint64_t size = marked && stat(ev->path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (c->ls) {                 /* list step: rounds take from it */
        pthread_mutex_lock(&c->ls->lock);
        while (c->njobs + c->ls->nlisted >= c->ls->window)
            pthread_cond_wait(&c->ls->cond, &c->ls->lock);
    }
    if (marked) {                /* incidental: a walked file's refusal */
        if (add_job(c, ev->path, ev->incidental, size) < 0)
            c->out->bad = 1;
        c->ordinal++;
        if (c->ls) {
            c->ls->total++;
            pthread_cond_broadcast(&c->ls->cond);
            pthread_mutex_unlock(&c->ls->lock);
        }
        return;
    }
    locate(c, ev->path);
    c->errors += ev->kind == PM_EVENT_ERROR;
    rec r = {.ordinal = c->ordinal, .type = REC_EVENT, .kind = ev->kind,
             .reason = ev->reason, .err = ev->err, .incidental = ev->incidental};
    if (c->walked && ev->kind == PM_EVENT_SKIP && ev->reason == PM_REASON_REFUSED)
        r.incidental = 1;    /* as lifecycle.c does for a walked file */
    if (ev->file) {
        r.has_file = 1;
        r.st = ev->file->st;
        r.bytes_in = ev->file->bytes_in;
        r.bytes_out = ev->file->bytes_out;
    }
    if (c->listing && ev->kind == PM_EVENT_ERROR && c->first_err == UINT64_MAX)
        c->first_err = c->ordinal;
    put_rec(c->out, &r, ev->path, ev->out_path, ev->message, NULL);
    if (c->listing)
        c->ordinal++;
    else if (c->batch)           /* a file's event is its last word: a path */
        c->cursor = (c->cursor + 1) % c->nbatch;   /* given twice is two files */
    if (c->ls) {
        c->ls->nlisted++;
        pthread_cond_broadcast(&c->ls->cond);
        pthread_mutex_unlock(&c->ls->lock);
    }
}

static void cap_result(const pmp_result *res, void *arg)
{
    capture *c = arg;
    locate(c, res->path);
    rec r = {.ordinal = c->ordinal, .type = REC_RESULT, .res = *res};
    r.res.path = NULL;
    r.res.name = NULL;
    put_rec(c->out, &r, res->path, NULL, NULL, res->name);
}

static int refuse_all(const char *path, char *msg, size_t cap, void *arg)
{
    (void)path;
    (void)arg;
    snprintf(msg, cap, "%s", refused_mark);
    return PM_PL_SKIP;
}

/* ---- list (rank 0) ---- */

/* A pipeline needs a stage; the listing one never reaches it. */
static int no_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)c;
    (void)arg;
    (void)worker;
    return 0;
}

/* Walks the operands as o's pipeline would; the jobs land in c, every
 * other event in c->out. Returns pm_pipeline_run()'s value or a setup
 * error; *st gets the walk's counts (the jobs counted as skipped). */
static int list_files(const pmp_opts *o, const char *const *paths, size_t n, capture *c,
                      pm_pipeline_stats *st)
{
    pm_pipeline_opts lo = {
        .jobs = 1,
        .flags = o->pl.flags & (PM_PL_FOLLOW_SYMLINKS | PM_PL_SKIP_SPECIAL_OK),
        .skip_suffix = o->pl.skip_suffix,
        .sink = PM_SINK_NONE,
        .accept = refuse_all,
        .on_event = cap_event,
        .arg = c,
    };
    pm_pipeline *pl;
    int rc = pm_pipeline_new(&lo, &pl);
    if (rc < 0)
        return rc;
    rc = pm_pipeline_add_stage(pl, "list", PM_STAGE_PARALLEL, no_stage, NULL);
    if (rc == 0)
        rc = pm_signals_watch(o->signals, pl);
    if (rc == 0)
        rc = pm_pipeline_run(pl, paths, n, st);
    pm_signals_unwatch(o->signals, pl);
    pm_pipeline_free(pl);
    return rc;
}

static int by_size(const void *a, const void *b)
{
    const job *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->ordinal < y->ordinal ? -1 : x->ordinal > y->ordinal;
}

/* Decompress: does the file start with a member of the blocked layout
 * (its header states its sizes)? Read by rank 0 by its path, only to
 * choose: whatever the file is, the pipeline reads it again and judges. */
static int blocked_at_start(const pmp_opts *o, const char *path)
{
    const pm_codec *k = pm_codec_find(o->codec);
    unsigned char head[4096];
    uint64_t msize, dsize;
    int follow = (o->pl.flags & PM_PL_FOLLOW_SYMLINKS) != 0;
    int fd = k ? open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                                (follow ? 0 : O_NOFOLLOW))
               : -1;
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, head, sizeof head, 0);
    close(fd);
    return n > 0 && k->member_at(head, (size_t)n, &msize, &dsize) == 1;
}

static int by_split(const void *a, const void *b)
{
    const job *x = a, *y = b;
    if (x->split != y->split)
        return x->split ? -1 : 1;
    return by_size(a, b);
}

/* Files of at least PMAP_MPI_SPLIT_MIN bytes (default 64 MiB; 0: none)
 * are worked on by every rank at once instead of by one: checksum and wc
 * (a share of the bytes each, split.c; not wc -m, whose characters may
 * straddle shares with a multibyte state), compress in the blocked format
 * (a share of the members each, members.c) and decompress of a file in
 * the blocked layout to an output file (not -c, -t, -l, nor -N, whose
 * decoder reads the first member itself: members.c). They come first, the
 * largest first (work() runs them as a prefix). */
/* Whether a file written across ranks can have its named temporary
 * (".NAME.pmtmp.XXXXXX", fileops.c) in a directory entry: one process's
 * O_TMPFILE needs no name, so a longer one is not split. */
static int temp_name_fits(int cmd, const pmp_opts *o, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = strlen(slash ? slash + 1 : path);
    const pm_codec *k = pm_codec_find(o->codec);
    if (cmd == CMD_COMPRESS)
        len += o->suffix ? strlen(o->suffix) : k ? strlen(k->suffix) : 0;
    return cmd == CMD_CHECKSUM || cmd == CMD_WC || len + 14 <= NAME_MAX;
}

static void mark_split(int cmd, const pmp_opts *o, job *jobs, size_t n)
{
    const char *env = getenv("PMAP_MPI_SPLIT_MIN");
    uint64_t min = env && *env ? strtoull(env, NULL, 10) : 64u << 20;
    int size, ok, unpack;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    unpack = cmd == CMD_DECOMPRESS && !o->to_stdout && !o->test_only && !o->list &&
             !o->restore_name && pmpi__members_ok();
    ok = cmd == CMD_CHECKSUM || (cmd == CMD_WC && !o->count_chars) ||
         (cmd == CMD_COMPRESS && !o->one_member && pmpi__members_ok()) || unpack;
    for (size_t i = 0; i < n && ok && size > 1 && min; i++)
        jobs[i].split = jobs[i].size >= min && (!unpack || blocked_at_start(o, jobs[i].path)) &&
                        temp_name_fits(cmd, o, jobs[i].path);
    if (ok && n)
        qsort(jobs, n, sizeof *jobs, by_split);     /* split ones first */
}

/* ---- send ---- */

static void put_command(wire *w, int cmd, const pmp_opts *o, const root *roots,
                        size_t nroots, const job *jobs, size_t n)
{
    const pm_pipeline_opts *p = &o->pl;
    wire_opts wo = {
        .jobs = p->jobs, .io_engine = p->io_engine, .verbose = p->verbose,
        .chunk_size = p->chunk_size, .async_stack_size = p->async_stack_size,
        .max_chunks = p->max_chunks, .max_files = p->max_files, .flags = p->flags,
        .blocking_threads = p->blocking_threads, .async_io_threads = p->async_io_threads,
        .progress_interval = p->progress_interval,
        .level = o->level, .no_name = o->no_name, .one_member = o->one_member,
        .restore_name = o->restore_name, .to_stdout = o->to_stdout,
        .test_only = o->test_only, .list = o->list, .pass_plain = o->pass_plain,
        .warn_trailing_zeros = o->warn_trailing_zeros, .count_chars = o->count_chars,
        .lines_only = o->lines_only,
    };
    int32_t c = cmd;
    uint64_t nj = n;
    wire_put(w, &c, sizeof c);
    wire_put(w, &wo, sizeof wo);
    wire_put_str(w, o->codec);
    wire_put_str(w, o->suffix);
    wire_put_str(w, p->skip_suffix);
    uint64_t nr = nroots;
    wire_put(w, &nr, sizeof nr);
    for (size_t i = 0; i < nroots; i++) {
        wire_put(w, &roots[i].ok, sizeof roots[i].ok);
        wire_put(w, &roots[i].ino, sizeof roots[i].ino);
        wire_put_str(w, roots[i].path);
    }
    wire_put(w, &nj, sizeof nj);
    for (size_t i = 0; i < n; i++) {
        wire_put(w, &jobs[i].ordinal, sizeof jobs[i].ordinal);
        wire_put(w, &jobs[i].size, sizeof jobs[i].size);     /* batches() needs it */
        wire_put(w, &jobs[i].walked, sizeof jobs[i].walked);
        wire_put(w, &jobs[i].split, sizeof jobs[i].split);
        wire_put(w, &jobs[i].root, sizeof jobs[i].root);
        wire_put_str(w, jobs[i].path);
    }
}

/* Reads what put_command() wrote; jobs' and roots' paths point into w.
 * Returns the command, or -EBADMSG / -ENOMEM. */
static int get_command(wire *w, pmp_opts *o, root **roots_ret, size_t *nroots_ret,
                       job **jobs_ret, size_t *n_ret)
{
    int32_t cmd;
    wire_opts wo;
    uint64_t nj, nr;
    wire_get(w, &cmd, sizeof cmd);
    wire_get(w, &wo, sizeof wo);
    memset(o, 0, sizeof *o);
    o->codec = wire_get_str(w);
    o->suffix = wire_get_str(w);
    o->pl.skip_suffix = wire_get_str(w);
    wire_get(w, &nr, sizeof nr);
    if (w->bad || cmd < 0 || cmd >= CMD_N || nr > w->len)
        return -EBADMSG;
    root *roots = calloc(nr ? nr : 1, sizeof *roots);
    if (!roots)
        return -ENOMEM;
    for (uint64_t i = 0; i < nr; i++) {
        wire_get(w, &roots[i].ok, sizeof roots[i].ok);
        wire_get(w, &roots[i].ino, sizeof roots[i].ino);
        roots[i].path = wire_get_str(w);
    }
    wire_get(w, &nj, sizeof nj);
    job *jobs = w->bad || nj > w->len ? NULL : calloc(nj ? nj : 1, sizeof *jobs);
    if (!jobs) {
        free(roots);
        return w->bad || nj > w->len ? -EBADMSG : -ENOMEM;
    }
    for (uint64_t i = 0; i < nj; i++) {
        wire_get(w, &jobs[i].ordinal, sizeof jobs[i].ordinal);
        wire_get(w, &jobs[i].size, sizeof jobs[i].size);
        wire_get(w, &jobs[i].walked, sizeof jobs[i].walked);
        wire_get(w, &jobs[i].split, sizeof jobs[i].split);
        wire_get(w, &jobs[i].root, sizeof jobs[i].root);
        jobs[i].path = wire_get_str(w);
        if (jobs[i].root < -1 || (jobs[i].root >= 0 && (uint64_t)jobs[i].root >= nr))
            w->bad = 1;
    }
    if (w->bad) {
        free(jobs);
        free(roots);
        return -EBADMSG;
    }
    o->pl.jobs = wo.jobs;
    o->pl.io_engine = wo.io_engine;
    o->pl.verbose = wo.verbose;
    o->pl.chunk_size = wo.chunk_size;
    o->pl.async_stack_size = wo.async_stack_size;
    o->pl.max_chunks = wo.max_chunks;
    o->pl.max_files = wo.max_files;
    o->pl.flags = wo.flags;
    o->pl.blocking_threads = wo.blocking_threads;
    o->pl.async_io_threads = wo.async_io_threads;
    o->pl.progress_interval = wo.progress_interval;
    o->level = wo.level;
    o->no_name = wo.no_name;
    o->one_member = wo.one_member;
    o->restore_name = wo.restore_name;
    o->to_stdout = wo.to_stdout;
    o->test_only = wo.test_only;
    o->list = wo.list;
    o->pass_plain = wo.pass_plain;
    o->warn_trailing_zeros = wo.warn_trailing_zeros;
    o->count_chars = wo.count_chars;
    o->lines_only = wo.lines_only;
    *roots_ret = roots;
    *nroots_ret = nr;
    *jobs_ret = jobs;
    *n_ret = nj;
    return cmd;
}

int pmpi__bcast_wire(wire *w)
{
    uint64_t len = w->len;
    MPI_Bcast(&len, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rank_self() != 0) {
        wire_free(w);
        w->p = malloc(len ? len : 1);
        if (!w->p)
            MPI_Abort(MPI_COMM_WORLD, 1);    /* the others wait for us */
        w->len = w->cap = len;
    }
    for (uint64_t off = 0; off < len;) {
        int n = len - off > INT_MAX ? INT_MAX : (int)(len - off);
        MPI_Bcast(w->p + off, n, MPI_BYTE, 0, MPI_COMM_WORLD);
        off += (uint64_t)n;
    }
    return len != 0;
}

/* ---- roots: walked files reached by descriptor ----
 *
 * One process holds each directory open from its listing to its files'
 * removal, so a directory renamed or swapped for a symbolic link in
 * between changes nothing (source.c). Here the listing is rank 0's and
 * the files are opened on other ranks, later: reaching them by path would
 * resolve every directory component again, and a component swapped for a
 * link would make a rank read, write and remove outside the tree. So each
 * rank opens the operand itself (the caller named that path), checks it
 * is the directory rank 0 walked (its inode), and opens the directories
 * below it one name at a time, without following links (unless the walk
 * followed them): the walk's own way. The files are then handed to the
 * pipeline as entries of those descriptors (pm_pipeline_opts.operand_dirs).
 * A directory that changed this way fails its files, with the reason.
 */

/* Rank 0, before listing: the operands that are directories, and which
 * directory each is (its inode). No descriptor is kept: a run may name
 * more directories than it may hold open. */
static int open_roots(const char *const *paths, size_t n, root **roots_ret)
{
    root *roots = calloc(n ? n : 1, sizeof *roots);
    if (!roots)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        roots[i].path = paths[i];
        int fd = strcmp(paths[i], "-") ? open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        roots[i].ok = fd >= 0 && fstat(fd, &st) == 0;
        roots[i].ino = roots[i].ok ? (uint64_t)st.st_ino : 0;
        if (fd >= 0)
            close(fd);
    }
    *roots_ret = roots;
    return 0;
}

static void close_roots(root *roots, size_t n)
{
    (void)n;
    free(roots);
}

/* Where a walked file's path continues below root r's path: NULL if r is
 * not its root. */
static const char *below(const root *r, const char *path)
{
    size_t n = strlen(r->path);
    if (strncmp(path, r->path, n) != 0 || !(path[n] == '/' || (n && r->path[n - 1] == '/')))
        return NULL;
    while (path[n] == '/')
        n++;
    return path + n;
}

/* Rank 0, after listing: each walked job's root, the innermost operand
 * that is a directory above it (operands "d" and "d/link", a link that
 * the walk of d skipped: d/link's files were found by walking d/link).
 * A walked job without one (its operand changed between the two opens)
 * keeps -1 and fails where it is run. */
static void assign_roots(job *jobs, size_t n, const root *roots, size_t nroots)
{
    for (size_t i = 0; i < n; i++) {
        size_t best = 0;
        jobs[i].root = -1;
        for (size_t r = 0; jobs[i].walked && r < nroots; r++)
            if (roots[r].ok && below(&roots[r], jobs[i].path) && strlen(roots[r].path) >= best) {
                best = strlen(roots[r].path);
                jobs[i].root = (int32_t)r;
            }
    }
}

/* Root r opened on this rank: a descriptor (the caller closes it), or
 * -errno; -ESTALE when it is not the directory rank 0 walked. (The inode
 * is compared, not the device: a shared filesystem's device number
 * differs from node to node.) */
static int root_open(const root *r)
{
    struct stat st;
    int fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_ino != r->ino) {
        close(fd);
        return -ESTALE;
    }
    return fd;
}

/* The directory walked job j was found in, opened below its root one name
 * at a time (follow: the walk followed links): a descriptor, or -errno
 * (-ESTALE: no root, see assign_roots()). */
static int open_job_dir(const root *roots, const job *j, int follow)
{
    if (j->root < 0)
        return -ESTALE;
    int fd = root_open(&roots[j->root]);
    const char *p = below(&roots[j->root], j->path), *end = strrchr(p, '/');
    while (fd >= 0 && end && p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t len = slash ? (size_t)(slash - p) : (size_t)(end - p);
        char name[NAME_MAX + 1];
        int next = -ENAMETOOLONG;
        if (len > 0 && len <= NAME_MAX) {
            memcpy(name, p, len);
            name[len] = '\0';
            next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
            if (next < 0)
                next = -errno;
        } else if (len == 0) {       /* "a//b": no name between */
            next = fcntl(fd, F_DUPFD_CLOEXEC, 0);
            if (next < 0)
                next = -errno;
        }
        close(fd);
        fd = next;
        p += len + 1;
    }
    return fd;
}

/* A job whose directory cannot be reached: reported as one process
 * reports a file it cannot open, with the cause. */
static void unreachable(capture *c, const job *j, int err, rec *total)
{
    char msg[256];
    snprintf(msg, sizeof msg, "cannot open the directory it was found in: %s%s",
             pm_strerror(err),
             err == -ELOOP || err == -ENOTDIR || err == -ESTALE ? " (changed during the run)" : "");
    rec r = {.ordinal = j->ordinal, .type = REC_EVENT, .kind = PM_EVENT_ERROR,
             .reason = PM_REASON_INPUT, .err = err};
    put_rec(c->out, &r, j->path, NULL, msg, NULL);
    total->stats.files_failed++;
}

/* The directories of a batch: one descriptor per distinct directory. */
typedef struct batch_dirs {
    int *fds;                /* per job: its directory, or -1 (by path) */
    int *owned;              /* descriptors to close after the run */
    size_t nowned;
} batch_dirs;

/* Opens the directories of b[0..n), moving the jobs that can be reached
 * (or need no directory) to sel[0..*nsel) with their descriptors in
 * d->fds; the others are reported. */
static void reach(root *roots, int follow, capture *c, const job *b, size_t n, job *sel,
                  size_t *nsel, batch_dirs *d, rec *total)
{
    size_t k = 0;
    d->nowned = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = -1;
        if (b[i].walked && b[i].root < 0) {
            unreachable(c, &b[i], -ESTALE, total);
            continue;
        }
        if (b[i].root >= 0) {
            /* Files of one directory usually share a batch: reuse. */
            const char *dir = below(&roots[b[i].root], b[i].path);
            const char *slash = strrchr(dir, '/');
            size_t len = slash ? (size_t)(slash - dir) : 0;
            for (size_t m = 0; m < k && fd < 0; m++) {
                if (sel[m].root != b[i].root || d->fds[m] < 0)
                    continue;
                const char *od = below(&roots[sel[m].root], sel[m].path);
                const char *os = strrchr(od, '/');
                if ((os ? (size_t)(os - od) : 0) == len && !memcmp(od, dir, len))
                    fd = d->fds[m];
            }
            if (fd < 0) {
                fd = open_job_dir(roots, &b[i], follow);
                if (fd < 0) {
                    unreachable(c, &b[i], fd, total);
                    continue;
                }
                d->owned[d->nowned++] = fd;
            }
        }
        sel[k] = b[i];
        d->fds[k++] = fd;
    }
    *nsel = k;
}

/* A split job's file, opened by every rank for its share: below its
 * root as reach() does (a walked file; never through a link unless they
 * are followed), or by its path (an operand). Returns the descriptor or
 * -errno; *dir_ret gets its directory's descriptor (to close unless it
 * is the root's), or -1 for an operand, or -errno when the directory
 * cannot be reached. */
static int open_share(capture *c, const job *j, int *dir_ret)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    *dir_ret = -1;
    if (!j->walked) {
        int fd = open(j->path, flags);
        return fd < 0 ? -errno : fd;
    }
    int dfd = open_job_dir(c->roots, j, c->follow);
    *dir_ret = dfd;
    if (dfd < 0)
        return dfd;
    const char *slash = strrchr(j->path, '/');
    int fd = openat(dfd, slash ? slash + 1 : j->path, flags | (c->follow ? 0 : O_NOFOLLOW));
    return fd < 0 ? -errno : fd;
}

static void close_share_dir(int dfd)
{
    if (dfd >= 0)
        close(dfd);
}

static void release_dirs(batch_dirs *d)
{
    for (size_t i = 0; i < d->nowned; i++)
        close(d->owned[i]);
    d->nowned = 0;
}

/* ---- work ---- */

/* Batches: runs of jobs (in the order sent: largest first) of at least
 * BATCH_BYTES or BATCH_FILES, so that a tree of small files costs a few
 * pipeline runs, not one per file; a big file is a batch of its own.
 * Every rank computes the same ones. Returns nb + 1 starts (the last is
 * n) in *starts_ret, or -ENOMEM. */
#define BATCH_BYTES (8u << 20)
#define BATCH_FILES 256
static int batches(const job *jobs, size_t n, size_t **starts_ret, size_t *nb_ret)
{
    size_t *st = malloc((n + 1) * sizeof *st), nb = 0;
    if (!st)
        return -ENOMEM;
    for (size_t i = 0; i < n;) {
        uint64_t bytes = 0;
        size_t k = 0;
        st[nb++] = i;
        while (i < n && bytes < BATCH_BYTES && k < BATCH_FILES)
            bytes += jobs[i++].size, k++;
    }
    st[nb] = n;
    *starts_ret = st;
    *nb_ret = nb;
    return 0;
}

/* Runs one batch; its records go to c->out. */
static void run_batch(int cmd, const pmp_opts *lo, capture *c, const job *b, size_t n,
                      const char **paths, rec *total)
{
    for (size_t i = 0; i < n; i++)
        paths[i] = b[i].path;
    c->batch = b;
    c->nbatch = n;
    c->cursor = 0;
    c->errors = 0;
    c->ordinal = b[0].ordinal;
    pm_pipeline_stats st = {0};
    pmp_opts bo = *lo;
    bo.pl.operand_dirs = c->dirs;
    int ret = pipeline_fns[cmd](&bo, paths, n, &st);
    if (ret < 0 && !c->errors) {     /* a failure no file's event explains */
        rec r = {.ordinal = b[0].ordinal, .type = REC_RET, .ret = ret};
        put_rec(c->out, &r, NULL, NULL, NULL, NULL);
    }
    pm_pipeline_stats_add(&total->stats, &st);
}

/* A split job (compress, decompress): rank 0 runs the file, the others
 * encode or decode its members on request until it is over. Collective. */
static void run_members(int cmd, const pmp_opts *lo, capture *c, const job *j,
                        const char **paths, rec *total)
{
    /* Every rank reads the file below its root, and the same file: rank
     * 0's view of it (inode, size, mtime) is what the others check. */
    struct stat st;
    pmpi_ident id = {0};
    int dfd, fd = open_share(c, j, &dfd);
    if (fd >= 0 && fstat(fd, &st) == 0)
        pmpi__ident_of(&id, &st);
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank_self() != 0) {
        if (fd >= 0 && (fstat(fd, &st) < 0 || !pmpi__ident_same(&id, &st))) {
            close(fd);
            fd = -ESTALE;        /* another file: every request fails */
        }
        pmpi__members_serve(fd, dfd, lo->codec, lo->level, cmd == CMD_DECOMPRESS, j->path);
        if (fd >= 0)
            close(fd);
        close_share_dir(dfd);
        return;
    }
    if (fd >= 0)
        close(fd);               /* the pipeline opens it itself */
    if (j->walked && dfd < 0) {
        unreachable(c, j, dfd, total);
        pmpi__members_end();     /* the others wait for the end */
        return;
    }
    pmp_opts mo = *lo;
    pmpi__members_setup(&mo, &id, cmd == CMD_DECOMPRESS);
    /* A worker waits for each remote member: enough of them to keep every
     * rank encoding (each answers one request at a time) and rank 0 too. */
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (mo.pl.jobs < 2 * size)
        mo.pl.jobs = 2 * size;
    c->dirs = &dfd;
    run_batch(cmd, &mo, c, j, 1, paths, total);
    c->dirs = NULL;
    pmpi__members_end();
    close_share_dir(dfd);
}

/* A split job (checksum, wc): every rank reads its share of the file,
 * rank 0 records the result and event one process would have delivered;
 * when a share could not be read (a rank could not open the file, or
 * found it changed), rank 0 runs the file alone, for one process's report
 * of the failure. Collective. */
static void run_split(int cmd, const pmp_opts *lo, capture *c, const job *j,
                      const char **paths, rec *total)
{
    uint32_t crc = 0;
    pmp__wc_part wc = {0};
    struct stat st;
    int dfd, fd = open_share(c, j, &dfd);
    int err = cmd == CMD_WC ? pmpi__split_wc(fd, j->size, lo->lines_only, &wc)
                            : pmpi__split_crc(fd, j->size, &crc);
    if (rank_self() == 0 && err == 0 && fstat(fd, &st) < 0)
        err = -errno;
    if (fd >= 0)
        close(fd);
    if (rank_self() != 0) {
        close_share_dir(dfd);
        return;
    }
    if (err < 0 && j->walked && dfd < 0) {
        unreachable(c, j, dfd, total);     /* not by its path either */
        return;
    }
    if (err < 0) {                         /* one process's report of it */
        c->dirs = &dfd;
        run_batch(cmd, lo, c, j, 1, paths, total);
        c->dirs = NULL;
        close_share_dir(dfd);
        return;
    }
    close_share_dir(dfd);
    rec r = {.ordinal = j->ordinal, .type = REC_RESULT};
    r.res.bytes = j->size;
    r.res.crc32 = crc;
    r.res.lines = wc.lines;
    r.res.words = wc.words;
    put_rec(c->out, &r, j->path, NULL, NULL, "");
    rec e = {.ordinal = j->ordinal, .type = REC_EVENT, .kind = PM_EVENT_DONE,
             .reason = PM_REASON_NONE, .has_file = 1, .st = st, .bytes_in = j->size};
    put_rec(c->out, &e, j->path, NULL, "", NULL);
    total->stats.files_done++;
    total->stats.bytes_in += j->size;
    total->stats.chunks += (j->size + (1u << 20) - 1) >> 20;
}

/* The batches of a round and what running them needs. Batch numbers come
 * from a counter on rank 0, handed out by messages: a rank sends a request
 * and receives the next number (a number past the last: none left). Rank 0
 * takes its own numbers from the counter directly, on a thread of its own,
 * while its main thread answers the others -- so that only one thread per
 * rank calls MPI, and no one-sided window is needed (across nodes on TCP,
 * Open MPI's osc/pt2pt cannot allocate one; osc/sm is one node's only). */
#define TAG_BATCH 1

typedef struct batch_loop {
    int cmd, is_root, follow;
    const pmp_opts *o, *lo;
    capture *c;
    root *roots;
    const job *jobs;         /* the batched jobs (the split ones left out) */
    size_t *starts, nb;      /* batch i: jobs [starts[i], starts[i + 1]) */
    job *sel;
    const char **paths;
    batch_dirs *dirs;
    rec *total;
    MPI_Comm comm;
    _Atomic int64_t next;    /* rank 0: the counter */
    _Atomic int done;        /* rank 0: its own batches are over */
} batch_loop;

static int64_t take_batch(batch_loop *b)
{
    if (b->is_root)
        return atomic_fetch_add(&b->next, 1);
    int64_t ask = 0, i;
    MPI_Send(&ask, 1, MPI_INT64_T, 0, TAG_BATCH, b->comm);
    MPI_Recv(&i, 1, MPI_INT64_T, 0, TAG_BATCH, b->comm, MPI_STATUS_IGNORE);
    return i;
}

/* Runs batches until none is left (or a signal came, on rank 0: then the
 * counter is moved past the end, so the other ranks stop too). */
static void *run_batches(void *arg)
{
    batch_loop *b = arg;
    for (;;) {
        int64_t i = take_batch(b);
        if (i < 0 || (uint64_t)i >= b->nb)
            break;
        if (pm_signals_caught(b->o->signals)) {
            atomic_store(&b->next, (int64_t)b->nb);
            break;
        }
        size_t k;
        reach(b->roots, b->follow, b->c, b->jobs + b->starts[i],
              b->starts[i + 1] - b->starts[i], b->sel, &k, b->dirs, b->total);
        b->c->dirs = b->dirs->fds;
        if (k)
            run_batch(b->cmd, b->lo, b->c, b->sel, k, b->paths, b->total);
        b->c->dirs = NULL;
        release_dirs(b->dirs);
    }
    atomic_store(&b->done, 1);
    return NULL;
}

/* Rank 0's main thread: answers requests for batch numbers until every
 * other rank was told none is left and rank 0's own batches are over. */
static void serve_batches(batch_loop *b)
{
    int nranks, idle = 0;
    MPI_Comm_size(b->comm, &nranks);
    int left = nranks - 1;
    int64_t ask;
    MPI_Request req = MPI_REQUEST_NULL;
    while (left > 0 || !atomic_load(&b->done)) {
        int flag = 0;
        MPI_Status st;
        if (pm_signals_caught(b->o->signals))    /* also when no thread runs */
            atomic_store(&b->next, (int64_t)b->nb);
        if (left > 0) {
            if (req == MPI_REQUEST_NULL)
                MPI_Irecv(&ask, 1, MPI_INT64_T, MPI_ANY_SOURCE, TAG_BATCH, b->comm, &req);
            MPI_Test(&req, &flag, &st);
        }
        if (flag) {
            int64_t i = atomic_fetch_add(&b->next, 1);
            if (i >= (int64_t)b->nb)
                left--;
            MPI_Send(&i, 1, MPI_INT64_T, st.MPI_SOURCE, TAG_BATCH, b->comm);
            idle = 0;
            continue;
        }
        /* a request waits at most 1 ms; the thread runs meanwhile */
        struct timespec ts = {0, idle++ < 200 ? 50000 : 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Runs the round's split files (every rank together), then batches from
 * rank 0's counter until none is left; records go to out. Collective. */
static void work(int cmd, const pmp_opts *o, root *roots, const job *jobs, size_t n,
                 wire *out)
{
    size_t *starts = NULL, nb = 0, nsplit = 0;
    while (nsplit < n && jobs[nsplit].split)     /* the biggest: a prefix */
        nsplit++;
    size_t m = n ? n : 1;
    const char **paths = malloc(m * sizeof *paths);
    job *sel = malloc(m * sizeof *sel);
    batch_dirs dirs = {.fds = malloc(m * sizeof(int)), .owned = malloc(m * sizeof(int))};
    int follow = (o->pl.flags & PM_PL_FOLLOW_SYMLINKS) != 0;
    if (!paths || !sel || !dirs.fds || !dirs.owned ||
        batches(jobs + nsplit, n - nsplit, &starts, &nb) < 0)
        MPI_Abort(MPI_COMM_WORLD, 1);        /* the others would wait for us */
    capture c = {.out = out, .roots = roots, .follow = follow};
    pmp_opts lo = *o;
    lo.pl.on_event = cap_event;
    lo.pl.on_progress = NULL;
    lo.pl.arg = &c;
    lo.on_result = cap_result;
    rec total = {.type = REC_STATS};
    for (size_t i = 0; i < nsplit; i++)     /* collective: even after a signal */
        (cmd == CMD_COMPRESS || cmd == CMD_DECOMPRESS ? run_members : run_split)(
            cmd, &lo, &c, &jobs[i], paths, &total);
    batch_loop b = {.cmd = cmd, .is_root = rank_self() == 0, .follow = follow, .o = o,
                    .lo = &lo, .c = &c, .roots = roots, .jobs = jobs + nsplit,
                    .starts = starts, .nb = nb, .sel = sel, .paths = paths, .dirs = &dirs,
                    .total = &total};
    MPI_Comm_dup(MPI_COMM_WORLD, &b.comm);
    int nranks;
    MPI_Comm_size(b.comm, &nranks);
    if (b.is_root && nranks > 1) {
        pthread_t thr;
        int started = pthread_create(&thr, NULL, run_batches, &b) == 0;
        if (!started)
            atomic_store(&b.done, 1);        /* the other ranks do it all */
        serve_batches(&b);
        if (started)
            pthread_join(thr, NULL);
    } else {                                 /* alone, rank 0 needs no server */
        run_batches(&b);
    }
    MPI_Comm_free(&b.comm);
    put_rec(out, &total, NULL, NULL, NULL, NULL);
    free(starts);
    free(paths);
    free(sel);
    free(dirs.fds);
    free(dirs.owned);
}

/* Gathers every rank's records into *all on rank 0 (lens[r] bytes from
 * rank r, in rank order). Collective. */
static void gather(wire *mine, wire *all)
{
    int size, root = rank_self() == 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (mine->bad || mine->len > INT_MAX)
        MPI_Abort(MPI_COMM_WORLD, 1);
    int len = (int)mine->len;
    int *lens = root ? calloc((size_t)size, sizeof *lens) : NULL;
    int *displs = root ? calloc((size_t)size, sizeof *displs) : NULL;
    if (root && (!lens || !displs))
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    size_t total = 0;
    for (int r = 0; root && r < size; r++) {
        displs[r] = (int)total;
        total += (size_t)lens[r];
        if (total > INT_MAX)
            MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (root) {
        all->p = malloc(total ? total : 1);
        if (!all->p)
            MPI_Abort(MPI_COMM_WORLD, 1);
        all->len = all->cap = total;
    }
    MPI_Gatherv(mine->p, len, MPI_BYTE, root ? all->p : NULL, lens, displs, MPI_BYTE, 0,
                MPI_COMM_WORLD);
    free(lens);
    free(displs);
}

/* ---- replay (rank 0) ---- */

typedef struct item {
    rec r;
    size_t pos;              /* place on the wire: ties keep it */
    const char *path, *out_path, *message, *name;
} item;

static int by_ordinal(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->r.ordinal != y->r.ordinal)
        return x->r.ordinal < y->r.ordinal ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Reads the records of w, appending to *items. */
static int parse(wire *w, item **items, size_t *n, size_t *cap)
{
    while (w->pos < w->len) {
        if (*n == *cap) {
            size_t c = *cap ? 2 * *cap : 256;
            item *p = realloc(*items, c * sizeof *p);
            if (!p)
                return -ENOMEM;
            *items = p;
            *cap = c;
        }
        item *it = &(*items)[*n];
        wire_get(w, &it->r, sizeof it->r);
        it->path = wire_get_str(w);
        it->out_path = wire_get_str(w);
        it->message = wire_get_str(w);
        it->name = wire_get_str(w);
        if (w->bad)
            return -EBADMSG;
        it->pos = *n;
        ++*n;
    }
    return 0;
}

static void replay_one(const pmp_opts *o, const item *it)
{
    if (it->r.type == REC_RESULT && o->on_result) {
        pmp_result res = it->r.res;
        res.path = it->path;
        res.name = it->name ? it->name : "";
        res.index = it->r.ordinal;
        o->on_result(&res, o->pl.arg);
    } else if (it->r.type == REC_EVENT && o->pl.on_event) {
        pm_file f = {.path = it->path, .out_path = it->out_path, .index = it->r.ordinal,
                     .st = it->r.st, .bytes_in = it->r.bytes_in,
                     .bytes_out = it->r.bytes_out, .fd = -1};
        pm_event ev = {.kind = it->r.kind, .reason = it->r.reason, .path = it->path,
                       .out_path = it->out_path, .err = it->r.err,
                       .message = it->message ? it->message : "",
                       .file = it->r.has_file ? &f : NULL, .incidental = it->r.incidental};
        o->pl.on_event(&ev, o->pl.arg);
    }
}

/* Replays the records to o's hooks in source order; sums the stats into
 * *st and returns the return value of the first failing run in source
 * order (0 if none failed). */
static int replay(const pmp_opts *o, wire *listed, wire *gathered, pm_pipeline_stats *st)
{
    item *items = NULL;
    size_t n = 0, cap = 0;
    int rc = parse(listed, &items, &n, &cap);
    if (rc == 0)
        rc = parse(gathered, &items, &n, &cap);
    if (rc < 0) {
        free(items);
        return rc;
    }
    if (n)
        qsort(items, n, sizeof *items, by_ordinal);
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        const rec *r = &items[i].r;
        if (r->type == REC_STATS)
            pm_pipeline_stats_add(st, &r->stats);
        else if (r->type == REC_RET && r->ret < 0 && ret == 0)
            ret = r->ret;
        else
            replay_one(o, &items[i]);
        if (r->type == REC_EVENT && r->kind == PM_EVENT_ERROR && ret == 0)
            ret = r->err;
    }
    free(items);
    return ret;
}

/* ---- rounds ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void free_jobs(capture *c)
{
    for (size_t i = 0; i < c->njobs; i++)
        free((char *)c->jobs[i].path);
    free(c->jobs);
}

/* The list step's thread: walks, then says it is done. */
static void *list_thread(void *arg)
{
    lister *ls = arg;
    pm_pipeline_stats st = {0};
    int rc = list_files(ls->o, ls->paths, ls->n, &ls->c, &st);
    pthread_mutex_lock(&ls->lock);
    ls->rc = rc;
    ls->st = st;
    ls->done = 1;
    pthread_cond_broadcast(&ls->cond);
    pthread_mutex_unlock(&ls->lock);
    return NULL;
}

/* Files per round: PMAP_MPI_WINDOW (default 8192). Largest first holds
 * within a window; rank 0 keeps about 2.5 KB per file of one window
 * (jobs, records, the listing's), 20 MB at the default, where a whole
 * tree of 30,000 files took 90 MB. Each round ends when its last batch
 * does: a few milliseconds of waiting per round. */
static size_t window_size(void)
{
    const char *env = getenv("PMAP_MPI_WINDOW");
    unsigned long long w = env && *env ? strtoull(env, NULL, 10) : 0;
    return w ? (size_t)w : 8192;
}

/* Takes the next window: waits until `window` jobs wait or the walk is
 * over, then moves the jobs (to *c) and the listed events (to *listed)
 * out. Returns whether the walk is over and everything was taken. */
static int take_window(lister *ls, capture *c, wire *listed)
{
    pthread_mutex_lock(&ls->lock);
    while (!ls->done && ls->c.njobs + ls->nlisted < ls->window)
        pthread_cond_wait(&ls->cond, &ls->lock);
    c->jobs = ls->c.jobs;
    c->njobs = ls->c.njobs;
    c->cap = ls->c.cap;
    *listed = ls->listed;
    ls->c.jobs = NULL;
    ls->c.njobs = ls->c.cap = 0;
    memset(&ls->listed, 0, sizeof ls->listed);
    ls->nlisted = 0;
    int last = ls->done;
    pthread_cond_broadcast(&ls->cond);
    pthread_mutex_unlock(&ls->lock);
    return last;
}

/* Rank 0's side of a call: rounds of one window of files each, until the
 * walk is over; each round's records are replayed when it ends. */
static int round_root(int cmd, const pmp_opts *o, const char *const *paths, size_t n,
                      pm_pipeline_stats *stats)
{
    double t0 = now();
    root *roots = NULL;
    int rc = open_roots(paths, n, &roots);
    if (rc < 0)
        return rc;
    lister ls = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
                 .window = window_size(), .o = o, .paths = paths, .n = n};
    ls.c = (capture){.out = &ls.listed, .listing = 1, .first_err = UINT64_MAX, .ls = &ls};
    pthread_t thr;
    rc = pthread_create(&thr, NULL, list_thread, &ls);
    if (rc != 0) {
        close_roots(roots, n);
        return -rc;
    }
    pm_pipeline_stats st = {0};
    int ret = 0, last, sent_any = 0;
    do {
        capture c = {0};
        wire listed = {0}, mine = {0}, all = {0}, sent = {0};
        last = take_window(&ls, &c, &listed);
        /* Read once the walk is over (done, under the lock before). */
        int lrc = last ? ls.rc : 0;
        uint64_t first_err = last ? ls.c.first_err : 0;
        if (last && !sent_any && lrc < 0 && first_err == UINT64_MAX && lrc != -ECANCELED &&
            !c.njobs) {
            wire_free(&listed);      /* set-up failed: nothing was sent */
            free_jobs(&c);
            ret = lrc;
            break;
        }
        assign_roots(c.jobs, c.njobs, roots, n);
        size_t nrun = pm_signals_caught(o->signals) ? 0 : c.njobs;
        if (c.njobs)
            qsort(c.jobs, c.njobs, sizeof *c.jobs, by_size);
        mark_split(cmd, o, c.jobs, nrun);
        if (last && lrc < 0 && first_err == UINT64_MAX) {  /* cancelled: no file says so */
            rec lr = {.ordinal = UINT64_MAX, .type = REC_RET, .ret = lrc};
            put_rec(&listed, &lr, NULL, NULL, NULL, NULL);
        }
        put_command(&sent, cmd, o, roots, n, c.jobs, nrun);
        if (sent.bad || listed.bad)
            MPI_Abort(MPI_COMM_WORLD, 1);
        pmpi__bcast_wire(&sent);
        sent_any = 1;
        work(cmd, o, roots, c.jobs, nrun, &mine);
        gather(&mine, &all);
        int wrc = replay(o, &listed, &all, &st);
        if (ret == 0)
            ret = wrc;
        wire_free(&sent);
        wire_free(&mine);
        wire_free(&all);
        wire_free(&listed);
        free_jobs(&c);
    } while (!last);
    pthread_join(thr, NULL);
    ls.st.files_skipped -= ls.total;     /* the jobs: skipped by the walk */
    pm_pipeline_stats_add(&st, &ls.st);
    st.wall_seconds = now() - t0;
    if (stats)
        *stats = st;
    free_jobs(&ls.c);
    wire_free(&ls.listed);
    close_roots(roots, n);
    return ret;
}

/* Whether the run must stay on rank 0: stdin, or one stream to stdout. */
static int stays_local(const pmp_opts *o, const char *const *paths, size_t n)
{
    if (n == 0 || o->to_stdout)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(paths[i], "-"))
            return 1;
    return 0;
}

static int round_start(int cmd, const pmp_opts *o, const char *const *paths, size_t n,
                       pm_pipeline_stats *stats)
{
    if (stays_local(o, paths, n))
        return pipeline_fns[cmd](o, paths, n, stats);
    return round_root(cmd, o, paths, n, stats);
}

int pmpi_compress(const pmp_opts *o, const char *const *paths, size_t n,
                  pm_pipeline_stats *stats)
{
    return round_start(CMD_COMPRESS, o, paths, n, stats);
}

int pmpi_decompress(const pmp_opts *o, const char *const *paths, size_t n,
                    pm_pipeline_stats *stats)
{
    return round_start(CMD_DECOMPRESS, o, paths, n, stats);
}

int pmpi_checksum(const pmp_opts *o, const char *const *paths, size_t n,
                  pm_pipeline_stats *stats)
{
    return round_start(CMD_CHECKSUM, o, paths, n, stats);
}

int pmpi_wc(const pmp_opts *o, const char *const *paths, size_t n,
            pm_pipeline_stats *stats)
{
    return round_start(CMD_WC, o, paths, n, stats);
}

/* A serving rank's side of one round; the command is in w. */
static int round_serve(wire *w)
{
    pmp_opts o;
    job *jobs;
    root *roots;
    size_t n, nroots;
    int cmd = get_command(w, &o, &roots, &nroots, &jobs, &n);
    if (cmd < 0)
        return cmd;      /* the others are in the round: the caller aborts */
    if (o.count_chars)
        setlocale(LC_CTYPE, "");      /* as pmap wc -m does, before counting */
    wire mine = {0}, none = {0};
    work(cmd, &o, roots, jobs, n, &mine);
    gather(&mine, &none);
    wire_free(&mine);
    free(jobs);
    close_roots(roots, nroots);
    return 0;
}

int pmpi_serve(void)
{
    for (;;) {
        wire w = {0};
        if (!pmpi__bcast_wire(&w)) {
            wire_free(&w);
            return 0;
        }
        int32_t cmd = 0;
        if (w.len >= sizeof cmd)
            memcpy(&cmd, w.p, sizeof cmd);
        int rc = cmd == PMPI_CMD_RUN ? pmpi__run_serve(&w) : round_serve(&w);
        wire_free(&w);
        if (rc < 0) {
            fprintf(stderr, "pmap-mpi: rank %d: cannot run a round: %s\n", rank_self(),
                    pm_strerror(rc));
            MPI_Abort(MPI_COMM_WORLD, 1);
            return rc;
        }
    }
}

void pmpi_finish(void)
{
    wire none = {0};
    pmpi__bcast_wire(&none);
}
