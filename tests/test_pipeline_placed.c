/* test_pipeline_placed.c - output written by someone else: chunks a stage
 * marks out_elsewhere keep their place in the output, their offsets come
 * to out_placed in order, and the bytes are written through a descriptor
 * of the hook's own, opened by the temporary's name (PM_PL_NAMED_TEMP), as
 * another process would (pmap-mpi's ranks, pipelines/mpi/members.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pmap/pipeline.h>
#include "testutil.h"

#define CHUNK 4096
#define MAX_SEQ 256

/* What the hooks saw and what they are to do. */
typedef struct placed {
    pthread_mutex_t lock;
    const char *dir;
    int mark;                    /* mark odd chunks out_elsewhere */
    int deferred;                /* write them in file_end, not in out_placed */
    int fail_end;                /* file_end fails the file */
    int named_seen;              /* file_begin saw a tmp_name, existing */
    int tmp_null;                /* file_begin saw tmp_name NULL */
    uint64_t off[MAX_SEQ];       /* out_placed's offsets by seq (+1: 0 = none) */
    size_t len[MAX_SEQ];         /* and lengths */
    unsigned char *bytes[MAX_SEQ];  /* deferred: the bytes to write */
    int placed, bad_calls;
    int write_err;
    int done, failed;
    uint64_t ev_bytes_out;
    char error[256];
} placed;

static void placed_init(placed *p, const char *dir)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->dir = dir;
}

static void placed_fini(placed *p)
{
    for (int i = 0; i < MAX_SEQ; i++)
        free(p->bytes[i]);
    pthread_mutex_destroy(&p->lock);
}

/* A chunk's output: its bytes, then seq % 7 bytes of its seq, so pieces
 * differ in length and a misplaced one shows. */
static size_t out_len_of(uint64_t seq, size_t len)
{
    return len + (size_t)(seq % 7);
}

static void make_out(const pm_chunk *c, unsigned char *out)
{
    memcpy(out, c->data, c->len);
    memset(out + c->len, (int)('a' + c->seq % 26), (size_t)(c->seq % 7));
}

/* A chunk placed elsewhere gets garbage in `out`: the hooks write the real
 * bytes (made again from the chunk's data), so a piece the pipeline wrote
 * all the same would show. */
static void mark_elsewhere(pm_chunk *c)
{
    c->out_elsewhere = 1;
    memset(c->out, 'X', c->out_len);
}

static int stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    placed *p = arg;
    make_out(c, c->out);
    c->out_len = out_len_of(c->seq, c->len);
    if (p->mark && c->seq % 2 == 1)
        mark_elsewhere(c);
    return 0;
}

static int open_tmp(const placed *p, const pm_file *f)
{
    char path[4096];
    if (!f->tmp_name)
        return -ENOENT;
    snprintf(path, sizeof path, "%s/%s", p->dir, f->tmp_name);
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

static int write_at(const placed *p, const pm_file *f, const void *buf, size_t len, uint64_t off)
{
    int fd = open_tmp(p, f);
    if (fd < 0)
        return fd;
    ssize_t n = pwrite(fd, buf, len, (off_t)off);
    int rc = n == (ssize_t)len ? 0 : -EIO;
    close(fd);
    return rc;
}

static void on_placed(const pm_chunk *c, uint64_t offset, size_t len, void *arg)
{
    placed *p = arg;
    pthread_mutex_lock(&p->lock);
    if (c->seq >= MAX_SEQ || !c->out_elsewhere || len != c->out_len || p->off[c->seq]) {
        p->bad_calls++;
    } else {
        p->off[c->seq] = offset + 1;
        p->len[c->seq] = len;
        p->placed++;
        unsigned char *b = malloc(len);
        if (!b) {
            p->write_err = -ENOMEM;
        } else if (p->deferred) {
            make_out(c, b);
            p->bytes[c->seq] = b;
        } else {
            make_out(c, b);
            int rc = write_at(p, c->file, b, len, offset);
            if (rc < 0)
                p->write_err = rc;
            free(b);
        }
    }
    pthread_mutex_unlock(&p->lock);
}

static int file_begin(pm_file *f, void *arg)
{
    placed *p = arg;
    struct stat st;
    char path[4096];
    if (!f->tmp_name) {
        p->tmp_null = 1;
        return 0;
    }
    snprintf(path, sizeof path, "%s/%s", p->dir, f->tmp_name);
    if (f->tmp_name[0] == '.' && strstr(f->tmp_name, ".pmtmp.") && stat(path, &st) == 0 &&
        S_ISREG(st.st_mode))
        p->named_seen = 1;
    return 0;
}

/* Deferred: every placed piece is written now, as pmap-mpi's ranks have
 * written theirs when rank 0's file_end returns. */
static int file_end(pm_file *f, int status, void *arg)
{
    placed *p = arg;
    if (status)
        return 0;
    for (int i = 0; i < MAX_SEQ && p->deferred; i++) {
        if (!p->bytes[i])
            continue;
        int rc = write_at(p, f, p->bytes[i], p->len[i], p->off[i] - 1);
        if (rc < 0)
            return rc;
    }
    if (p->write_err)
        return p->write_err;
    return p->fail_end ? -EIO : 0;
}

static void on_event(const pm_event *ev, void *arg)
{
    placed *p = arg;
    if (ev->kind == PM_EVENT_DONE) {
        p->done++;
        p->ev_bytes_out = ev->file ? ev->file->bytes_out : 0;
    } else if (ev->kind == PM_EVENT_ERROR) {
        p->failed++;
        snprintf(p->error, sizeof p->error, "%s", ev->message);
    }
}

static int out_path(const pm_file *f, char *buf, size_t cap, void *arg)
{
    (void)arg;
    return snprintf(buf, cap, "%s.out", f->path) < (int)cap ? 0 : -ENAMETOOLONG;
}

/* Runs the pipeline over path with p's settings; returns pm_pipeline_run's. */
static int run(placed *p, const char *path, unsigned flags, int hooks, pm_pipeline_stats *st)
{
    pm_pipeline_opts o = {
        .jobs = 3,
        .chunk_size = CHUNK,
        .out_size = CHUNK + 8,
        .flags = flags,
        .sink = PM_SINK_FILES,
        .out_path = out_path,
        .on_event = on_event,
        .arg = p,
    };
    if (hooks) {
        o.out_placed = on_placed;
        o.file_begin = file_begin;
        if (p->deferred || p->fail_end)
            o.file_end = file_end;
    }
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_add_stage(pl, "copy", PM_STAGE_PARALLEL, stage, p), 0);
    int rc = pm_pipeline_run(pl, (const char *[]){path}, 1, st);
    pm_pipeline_free(pl);
    return rc;
}

static int pmtmp_left(const char *dir)
{
    return pm_test_sh("test $(ls -A '%s' | grep -c pmtmp) -eq 0", dir) != 0;
}

/* One file of size bytes, run once as usual (reference) and once with odd
 * chunks placed elsewhere; checks output, offsets and counts. */
static void check_placed(size_t size, int deferred, unsigned flags)
{
    char *dir = pm_test_tmpdir();
    char in[4096], out[4096], ref[4096];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/in.out", dir);
    snprintf(ref, sizeof ref, "%s/ref", dir);
    unsigned char *data = malloc(size ? size : 1);
    pm_test_fill_text(data, size, size);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, data, size), 0);

    placed p;
    placed_init(&p, dir);
    CU_ASSERT_EQUAL(run(&p, in, 0, 0, NULL), 0);      /* the reference */
    CU_ASSERT_EQUAL(rename(out, ref), 0);
    placed_fini(&p);

    placed_init(&p, dir);
    p.mark = 1;
    p.deferred = deferred;
    pm_pipeline_stats st = {0};
    CU_ASSERT_EQUAL(run(&p, in, flags, 1, &st), 0);
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.bad_calls, 0);
    CU_ASSERT_EQUAL(p.write_err, 0);
    CU_ASSERT_EQUAL(p.named_seen, 1);
    size_t rlen = 0, olen = 0;
    unsigned char *r = pm_test_read_file(ref, &rlen), *o = pm_test_read_file(out, &olen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(olen, rlen);
    CU_ASSERT(olen == rlen && memcmp(o, r, rlen) == 0);
    CU_ASSERT_EQUAL(st.bytes_out, rlen);
    CU_ASSERT_EQUAL(p.ev_bytes_out, rlen);
    /* every odd chunk placed, at the sum of the lengths before it */
    uint64_t off = 0;
    int odd = 0;
    for (uint64_t seq = 0; seq * CHUNK < size || (size == 0 && seq == 0); seq++) {
        size_t len = size - seq * CHUNK < CHUNK ? size - seq * CHUNK : CHUNK;
        if (seq % 2 == 1) {
            odd++;
            CU_ASSERT_EQUAL(p.off[seq], off + 1);
            CU_ASSERT_EQUAL(p.len[seq], out_len_of(seq, len));
        } else {
            CU_ASSERT_EQUAL(p.off[seq], 0);
        }
        off += out_len_of(seq, len);
    }
    CU_ASSERT_EQUAL(p.placed, odd);
    CU_ASSERT_EQUAL(off, rlen);
    CU_ASSERT(!pmtmp_left(dir));
    free(r);
    free(o);
    free(data);
    placed_fini(&p);
    pm_test_rmtree(dir);
    free(dir);
}

static void test_placed_in_hook(void)
{
    check_placed(100 * 1024 + 123, 0, PM_PL_NAMED_TEMP);
}

static void test_placed_deferred(void)
{
    check_placed(100 * 1024 + 123, 1, PM_PL_NAMED_TEMP);
}

static void test_placed_fsync_remove(void)
{
    /* the input removed after a synced commit: the same bytes */
    check_placed(64 * 1024, 1, PM_PL_NAMED_TEMP | PM_PL_REMOVE_INPUT | PM_PL_PRESERVE_META);
}

/* Every chunk placed elsewhere: rank 0 writes nothing, the file still
 * commits whole. */
static int stage_all(pm_chunk *c, void *arg, unsigned worker)
{
    int rc = stage(c, arg, worker);
    mark_elsewhere(c);
    return rc;
}

static void test_all_elsewhere(void)
{
    char *dir = pm_test_tmpdir();
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/in.out", dir);
    size_t size = 10 * CHUNK + 5;
    unsigned char *data = malloc(size);
    pm_test_fill_random(data, size, 7);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, data, size), 0);
    placed p;
    placed_init(&p, dir);
    p.deferred = 1;
    pm_pipeline_opts o = {
        .jobs = 2, .chunk_size = CHUNK, .out_size = CHUNK + 8, .flags = PM_PL_NAMED_TEMP,
        .sink = PM_SINK_FILES, .out_path = out_path, .on_event = on_event, .arg = &p,
        .out_placed = on_placed, .file_begin = file_begin, .file_end = file_end,
    };
    pm_pipeline *pl;
    pm_pipeline_stats st = {0};
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "all", PM_STAGE_PARALLEL, stage_all, &p), 0);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *[]){in}, 1, &st), 0);
    pm_pipeline_free(pl);
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.placed, 11);
    size_t olen = 0, expect = 0;
    for (uint64_t s = 0; s < 11; s++)
        expect += out_len_of(s, s < 10 ? CHUNK : 5);
    unsigned char *ob = pm_test_read_file(out, &olen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(olen, expect);
    CU_ASSERT_EQUAL(st.bytes_out, expect);
    CU_ASSERT(olen == expect && memcmp(ob, data, CHUNK) == 0);   /* chunk 0 */
    CU_ASSERT(!pmtmp_left(dir));
    free(ob);
    free(data);
    placed_fini(&p);
    pm_test_rmtree(dir);
    free(dir);
}

/* A file of one chunk with no file hooks is done in one step on a worker
 * (stages.c, whole files): its piece placed elsewhere is counted there,
 * not written, and the hook's own write is what lands. */
static void test_placed_whole_file(void)
{
    char *dir = pm_test_tmpdir();
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/in.out", dir);
    unsigned char data[CHUNK - 10];
    pm_test_fill_text(data, sizeof data, 11);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, data, sizeof data), 0);
    placed p;
    placed_init(&p, dir);
    pm_pipeline_opts o = {
        .jobs = 2, .chunk_size = CHUNK, .out_size = CHUNK + 8, .flags = PM_PL_NAMED_TEMP,
        .sink = PM_SINK_FILES, .out_path = out_path, .on_event = on_event, .arg = &p,
        .out_placed = on_placed,
    };
    pm_pipeline *pl;
    pm_pipeline_stats st = {0};
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "all", PM_STAGE_PARALLEL, stage_all, &p), 0);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *[]){in}, 1, &st), 0);
    pm_pipeline_free(pl);
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.placed, 1);
    CU_ASSERT_EQUAL(p.write_err, 0);
    CU_ASSERT_EQUAL(p.off[0], 1);
    CU_ASSERT_EQUAL(st.bytes_out, sizeof data);
    CU_ASSERT_EQUAL(p.ev_bytes_out, sizeof data);
    size_t olen = 0;
    unsigned char *ob = pm_test_read_file(out, &olen);
    CU_ASSERT(ob && olen == sizeof data && memcmp(ob, data, sizeof data) == 0);
    CU_ASSERT(!pmtmp_left(dir));
    free(ob);
    placed_fini(&p);
    pm_test_rmtree(dir);
    free(dir);
    check_placed(CHUNK + 10, 0, PM_PL_NAMED_TEMP);    /* two chunks, one placed */
}

/* file_end fails the file: no output under its name, the input kept (even
 * with REMOVE_INPUT), the named temporary gone. */
static void test_end_failure_discards(void)
{
    char *dir = pm_test_tmpdir();
    char in[4096], out[4096];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(out, sizeof out, "%s/in.out", dir);
    size_t size = 20 * CHUNK;
    unsigned char *data = malloc(size);
    pm_test_fill_text(data, size, 3);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, data, size), 0);
    placed p;
    placed_init(&p, dir);
    p.mark = 1;
    p.deferred = 1;
    p.fail_end = 1;
    CU_ASSERT_EQUAL(run(&p, in, PM_PL_NAMED_TEMP | PM_PL_REMOVE_INPUT, 1, NULL), -EIO);
    CU_ASSERT_EQUAL(p.failed, 1);
    CU_ASSERT_EQUAL(p.done, 0);
    CU_ASSERT_EQUAL(p.named_seen, 1);
    CU_ASSERT_EQUAL(access(out, F_OK), -1);
    size_t ilen = 0;
    unsigned char *ib = pm_test_read_file(in, &ilen);
    CU_ASSERT(ib && ilen == size && memcmp(ib, data, size) == 0);
    CU_ASSERT(!pmtmp_left(dir));
    free(ib);
    free(data);
    placed_fini(&p);
    pm_test_rmtree(dir);
    free(dir);
}

/* PM_PL_NAMED_TEMP names the temporary even where O_TMPFILE works; without
 * it, where O_TMPFILE works, there is no name. */
static void test_named_temp_flag(void)
{
    char *dir = pm_test_tmpdir();
    char in[4096];
    snprintf(in, sizeof in, "%s/in", dir);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, "hello\n", 6), 0);
    int tfd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    int have_tmpfile = tfd >= 0;
    if (tfd >= 0)
        close(tfd);
    placed p;
    placed_init(&p, dir);
    CU_ASSERT_EQUAL(run(&p, in, PM_PL_NAMED_TEMP | PM_PL_OVERWRITE, 1, NULL), 0);
    CU_ASSERT_EQUAL(p.named_seen, 1);
    CU_ASSERT_EQUAL(p.tmp_null, 0);
    placed_fini(&p);
    placed_init(&p, dir);
    CU_ASSERT_EQUAL(run(&p, in, PM_PL_OVERWRITE, 1, NULL), 0);
    if (have_tmpfile)
        CU_ASSERT_EQUAL(p.tmp_null, 1);
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT(!pmtmp_left(dir));
    placed_fini(&p);
    pm_test_rmtree(dir);
    free(dir);
}

/* With one stream for every output (PM_SINK_FD) no one else can write a
 * part in place: the file fails with -EINVAL. */
static void test_fd_sink_refuses(void)
{
    char *dir = pm_test_tmpdir();
    char in[4096], sink[4096];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(sink, sizeof sink, "%s/sink", dir);
    unsigned char data[3 * CHUNK];
    pm_test_fill_text(data, sizeof data, 5);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(in, data, sizeof data), 0);
    int fd = open(sink, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    placed p;
    placed_init(&p, dir);
    p.mark = 1;
    pm_pipeline_opts o = {
        .jobs = 2, .chunk_size = CHUNK, .out_size = CHUNK + 8, .sink = PM_SINK_FD,
        .out_fd = fd, .on_event = on_event, .arg = &p, .out_placed = on_placed,
    };
    pm_pipeline *pl;
    CU_ASSERT_EQUAL_FATAL(pm_pipeline_new(&o, &pl), 0);
    CU_ASSERT_EQUAL(pm_pipeline_add_stage(pl, "copy", PM_STAGE_PARALLEL, stage, &p), 0);
    CU_ASSERT_EQUAL(pm_pipeline_run(pl, (const char *[]){in}, 1, NULL), -EINVAL);
    pm_pipeline_free(pl);
    close(fd);
    CU_ASSERT_EQUAL(p.failed, 1);
    CU_ASSERT_EQUAL(p.placed, 0);
    placed_fini(&p);
    pm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    static const pm_test_case cases[] = {
        {"placed: written in out_placed, output as usual", test_placed_in_hook},
        {"placed: written in file_end, offsets in order", test_placed_deferred},
        {"placed: synced commit, input removed", test_placed_fsync_remove},
        {"placed: a small file done in one step", test_placed_whole_file},
        {"placed: every chunk elsewhere still commits", test_all_elsewhere},
        {"placed: file_end failure discards the temporary", test_end_failure_discards},
        {"PM_PL_NAMED_TEMP names the temporary", test_named_temp_flag},
        {"placed: refused with one output stream", test_fd_sink_refuses},
        {NULL, NULL},
    };
    return pm_test_run("pipeline_placed", cases);
}
