/* fetch.c - every input line a request to a TCP service (see fetch.h).
 *
 * Stages:
 *   check  (CPU, parallel)       the chunk's lines (framing gives whole
 *                                lines) are well-formed requests; their
 *                                count goes in chunk->value.
 *   query  (ASYNC or BLOCKING)   one request per line, answers into
 *                                chunk->out in line order. ASYNC: a task
 *                                per line (pm_co_spawn with sched NULL:
 *                                the stage's own scheduler), gathered, so
 *                                every line of every chunk in flight waits
 *                                at once; BLOCKING: the lines one after
 *                                another on one of the blocking threads.
 *   verify (CPU, parallel)       each answer is one line that begins with
 *                                its request's key.
 * The pipeline writes the chunks' outputs in input order, so the answers
 * come out in the order of the requests whatever order they arrived in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pmap/co.h>
#include "fetch.h"

#define DEFAULT_CHUNK 4096u
#define MAX_CHUNK (64u << 10)

typedef struct fetch_cfg {
    const struct sockaddr *addr;
    socklen_t addrlen;
} fetch_cfg;

typedef struct fetch_req {
    const fetch_cfg *cfg;
    const unsigned char *key;
    size_t klen;
    char answer[PMP_FETCH_MAX_ANSWER];
    size_t alen;
    int rc;
} fetch_req;

/* The line of data[0..len) at *pos (its newline left out), and *pos moved
 * past it. Returns 0 at the end. */
static int next_line(const unsigned char *data, size_t len, size_t *pos,
                     const unsigned char **key, size_t *klen)
{
    if (*pos >= len)
        return 0;
    const unsigned char *p = data + *pos;
    const unsigned char *nl = memchr(p, '\n', len - *pos);
    *key = p;
    *klen = nl ? (size_t)(nl - p) : len - *pos;
    *pos += *klen + (nl != NULL);
    return 1;
}

static int key_ok(const unsigned char *k, size_t n)
{
    if (n == 0 || n > PMP_FETCH_MAX_KEY)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= ' ' || k[i] >= 0x7f)
            return 0;
    return 1;
}

static int check_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    size_t pos = 0, klen;
    const unsigned char *key;
    uint64_t n = 0;
    while (next_line(c->data, c->len, &pos, &key, &klen)) {
        if (!key_ok(key, klen))
            return pm_chunk_fail(c, -EBADMSG, "request %llu of the chunk at byte %llu is not a key",
                                 (unsigned long long)n + 1, (unsigned long long)c->offset);
        n++;
    }
    c->value = n;
    return 0;
}

/* ---- the socket calls: suspend the task inside one, block elsewhere ---- */

static int do_connect(int fd, const fetch_cfg *cfg)
{
    if (pm_co_current())
        return pm_co_connect(fd, cfg->addr, cfg->addrlen);
    while (connect(fd, cfg->addr, cfg->addrlen) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

static int do_send(int fd, const char *p, size_t n)
{
    if (pm_co_current()) {
        ssize_t w = pm_co_send(fd, p, n, 0);
        return w < 0 ? (int)w : 0;
    }
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t do_recv(int fd, char *p, size_t n)
{
    if (pm_co_current())
        return pm_co_recv(fd, p, n, 0);
    ssize_t r;
    while ((r = recv(fd, p, n, 0)) < 0 && errno == EINTR) {
    }
    return r < 0 ? -errno : r;
}

/* One request: its answer is what the service sends before closing. */
static int ask(fetch_req *r)
{
    int fd = socket(r->cfg->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    char msg[PMP_FETCH_MAX_KEY + 1];
    memcpy(msg, r->key, r->klen);
    msg[r->klen] = '\n';
    int rc = do_connect(fd, r->cfg);
    if (rc == 0)
        rc = do_send(fd, msg, r->klen + 1);
    r->alen = 0;
    while (rc == 0) {
        char *p = r->answer + r->alen;
        size_t room = sizeof r->answer - r->alen;
        char spare;
        ssize_t got = room ? do_recv(fd, p, room) : do_recv(fd, &spare, 1);
        if (got <= 0) {
            rc = (int)got;
            break;
        }
        if (!room)
            rc = -EMSGSIZE;
        else
            r->alen += (size_t)got;
    }
    close(fd);
    return rc;
}

static int64_t ask_task(void *arg)
{
    fetch_req *r = arg;
    r->rc = ask(r);
    return r->rc;
}

/* ASYNC: all the chunk's requests at once, as tasks of the stage's own
 * scheduler. A request that cannot get a task runs in the stage's. */
static void ask_all_async(fetch_req *reqs, size_t n)
{
    pm_co_task **tasks = calloc(n, sizeof *tasks);
    for (size_t i = 0; i < n; i++)
        if (!tasks || pm_co_spawn(NULL, ask_task, &reqs[i], &tasks[i]) < 0)
            ask_task(&reqs[i]);
    /* The children use the stage's memory: wait for every one of them,
     * even when the stage is cancelled meanwhile -- then the cancel is
     * passed on (their awaits return -ECANCELED, so they end soon). */
    int passed_on = 0;
    for (size_t i = 0; tasks && i < n; i++) {
        if (!tasks[i])
            continue;
        while (pm_co_await(tasks[i], NULL) == -ECANCELED) {
            for (size_t j = i; !passed_on && j < n; j++)
                if (tasks[j])
                    pm_co_cancel(tasks[j]);
            passed_on = 1;
        }
        pm_co_task_free(tasks[i]);
    }
    free(tasks);
}

static int query_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)worker;
    size_t n = (size_t)c->value, pos = 0;
    fetch_req *reqs = calloc(n ? n : 1, sizeof *reqs);
    if (!reqs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        reqs[i].cfg = arg;
        next_line(c->data, c->len, &pos, &reqs[i].key, &reqs[i].klen);
    }
    if (pm_co_current())
        ask_all_async(reqs, n);
    else
        for (size_t i = 0; i < n; i++)
            reqs[i].rc = ask(&reqs[i]);
    int rc = 0;
    c->out_len = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = reqs[i].rc;
        if (rc == 0) {
            memcpy(c->out + c->out_len, reqs[i].answer, reqs[i].alen);
            c->out_len += reqs[i].alen;
        }
    }
    free(reqs);
    return rc ? pm_chunk_fail(c, rc, "request to the service failed") : 0;
}

static int verify_stage(pm_chunk *c, void *arg, unsigned worker)
{
    (void)arg;
    (void)worker;
    size_t pos = 0, apos = 0, klen = 0, alen;
    const unsigned char *key = NULL, *ans;
    const unsigned char *out = c->out;
    for (uint64_t i = 0; i < c->value; i++) {
        next_line(c->data, c->len, &pos, &key, &klen);    /* check_stage counted them */
        if (!next_line(out, c->out_len, &apos, &ans, &alen) || apos > c->out_len ||
            out[apos - 1] != '\n' || alen <= klen || memcmp(ans, key, klen) != 0 ||
            ans[klen] != ' ')
            return pm_chunk_fail(c, -EPROTO, "answer %llu of the chunk at byte %llu does not "
                                 "answer its request", (unsigned long long)i + 1,
                                 (unsigned long long)c->offset);
    }
    return apos == c->out_len ? 0 : pm_chunk_fail(c, -EPROTO, "more answers than requests");
}

int pmp_fetch(const pmp_fetch_opts *o, const char *const *paths, size_t n,
              pm_pipeline_stats *stats)
{
    static const unsigned char nl = '\n';
    if (!o || !o->addr || (o->kind != PM_STAGE_CPU && o->kind != PM_STAGE_ASYNC &&
                           o->kind != PM_STAGE_BLOCKING))
        return -EINVAL;
    fetch_cfg cfg = {o->addr, o->addrlen};
    pm_pipeline_opts pl = o->pl;
    if (!pl.chunk_size)
        pl.chunk_size = DEFAULT_CHUNK;
    if (pl.chunk_size > MAX_CHUNK)
        return -EINVAL;
    pl.overlap = 0;
    pl.frame = pm_frame_records;
    pl.frame_arg = (void *)&nl;
    pl.carry_size = 0;
    pl.out_size = (pl.chunk_size / 2 + 1) * PMP_FETCH_MAX_ANSWER;  /* lines of >= 2 bytes */
    pm_stage_kind kind = o->kind == PM_STAGE_BLOCKING ? PM_STAGE_BLOCKING : PM_STAGE_ASYNC;
    pm_pipeline *p;
    int rc = pm_pipeline_new(&pl, &p);
    if (rc < 0)
        return rc;
    rc = pm_pipeline_add_stage(p, "check", PM_STAGE_PARALLEL, check_stage, NULL);
    if (rc == 0)
        rc = pm_pipeline_add_stage_kind(p, "query", PM_STAGE_PARALLEL, kind, query_stage, &cfg);
    if (rc == 0)
        rc = pm_pipeline_add_stage(p, "verify", PM_STAGE_PARALLEL, verify_stage, NULL);
    if (rc == 0 && o->watch)
        o->watch(p, 1, o->watch_arg);
    if (rc == 0)
        rc = pm_pipeline_run(p, paths, n, stats);
    if (o->watch)
        o->watch(p, 0, o->watch_arg);
    pm_pipeline_free(p);
    return rc;
}
