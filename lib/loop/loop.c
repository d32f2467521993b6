/* loop.c - the event loop's engine-independent part (see pmap/loop.h).
 *
 * Design. A loop is driven by one thread. Every operation is a pm__op record
 * taken from blocks that never move (engines and the kernel hold pointers to
 * them); its id is (reuse count << 32 | slot + 1), so a stale id is refused.
 * An operation goes through these places, all touched only by the loop's
 * thread:
 *
 *   queued --> backlog --(free engine slot)--> engine --> ready --> callback
 *   timers ------------------------------------(heap)---> ready
 *
 * At most max_inflight (the queue depth) operations are in the engine at
 * once; the rest wait in the backlog in FIFO order, so thousands of queued
 * operations never overrun the engine or the completion queue. An engine
 * performs one attempt and reports it with pm__loop_complete(); this file
 * decides what the attempt means: a short transfer or -EAGAIN/-EINTR puts
 * the operation back at the FRONT of the backlog for its remainder, anything
 * else makes it ready. Callbacks run only from dispatch(), with the record
 * already recycled, so a callback may queue, cancel, post or stop freely.
 * Timers never occupy an engine slot: they sit in a min-heap keyed by
 * (deadline, queue order) and bound how long the engine may block.
 *
 * Other threads touch only the post list (post_mu), the counters nposts,
 * holds and outside, and the engine's wake(). `outside` counts threads
 * inside pm_loop_post/pm_loop_release: their post or release may let the
 * loop's run return and its owner free it while they still read `sleeping`
 * and wake the engine, so pm_loop_free waits for them to leave. Lost wake-ups are avoided Dekker-style:
 * the loop sets `sleeping` before re-checking nposts/holds and blocking; a
 * poster bumps nposts before reading `sleeping` (all sequentially
 * consistent), so one of the two sees the other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pmap/config.h>
#include "loop_engine.h"

#define OPS_PER_BLOCK 256u
#define MAX_DEPTH 32768u

typedef struct op_list {
    pm__op *head, *tail;
} op_list;

typedef struct post_node {
    struct post_node *next;
    pm_loop_cb cb;
    void *arg;
} post_node;

struct pm_loop_group {
    pm_loop *loop;
    pm__op *members;         /* linked through gnext/gprev */
    unsigned left;           /* members whose callback has not run */
    int first_err;           /* first negative result among members */
};

struct pm_loop {
    const pm__engine *eng;
    void *es;                /* engine state */
    unsigned max_inflight, inflight, peak_inflight;
    pm__op **blocks;         /* record blocks, OPS_PER_BLOCK each */
    unsigned nblocks;
    pm__op *free_ops;        /* free records, linked through next */
    unsigned live;           /* records in use (queued, not yet dispatched) */
    op_list backlog, ready;
    pm__op **heap;           /* timers: binary min-heap */
    size_t nheap, heap_cap;
    uint64_t timer_seq;
    int stop, closing, woken;
    /* Shared with other threads. */
    pthread_mutex_t post_mu;
    post_node *post_head, *post_tail;   /* under post_mu */
    atomic_uint nposts;      /* posted callbacks not yet run */
    atomic_uint holds;
    atomic_int sleeping;     /* the loop may block in the engine */
    atomic_uint outside;     /* other threads inside pm_loop_post/release:
                                pm_loop_free waits for them to leave */
    atomic_int owner_tid;    /* thread that created or last ran the loop */
};

/* ---- small helpers ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void list_push(op_list *l, pm__op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
}

static void list_push_front(op_list *l, pm__op *op)
{
    op->prev = NULL;
    op->next = l->head;
    if (l->head)
        l->head->prev = op;
    else
        l->tail = op;
    l->head = op;
}

static void list_remove(op_list *l, pm__op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->next = op->prev = NULL;
}

static pm__op *list_pop(op_list *l)
{
    pm__op *op = l->head;
    if (op)
        list_remove(l, op);
    return op;
}

/* ---- operation records ---- */

static int grow_ops(pm_loop *loop)
{
    pm__op **blocks = realloc(loop->blocks, (loop->nblocks + 1) * sizeof *blocks);
    if (!blocks)
        return -ENOMEM;
    loop->blocks = blocks;
    pm__op *b = calloc(OPS_PER_BLOCK, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (unsigned i = OPS_PER_BLOCK; i-- > 0;) {
        b[i].index = loop->nblocks * OPS_PER_BLOCK + i;
        b[i].next = loop->free_ops;
        loop->free_ops = &b[i];
    }
    blocks[loop->nblocks++] = b;
    return 0;
}

static pm__op *op_alloc(pm_loop *loop, int kind, pm_loop_cb cb, void *arg)
{
    if (!loop->free_ops && grow_ops(loop) < 0)
        return NULL;
    pm__op *op = loop->free_ops;
    loop->free_ops = op->next;
    uint32_t index = op->index, gen = op->gen;
    memset(op, 0, sizeof *op);
    atomic_init(&op->cancel_req, 0);
    op->index = index;
    op->gen = gen;
    op->kind = (uint8_t)kind;
    op->cb = cb;
    op->arg = arg;
    loop->live++;
    return op;
}

static void op_free(pm_loop *loop, pm__op *op)
{
    op->gen = (op->gen + 1) & 0x7fffffffu;
    op->state = PM__OP_FREE;
    op->next = loop->free_ops;
    loop->free_ops = op;
    loop->live--;
}

static int64_t op_id(const pm__op *op)
{
    return (int64_t)((uint64_t)op->gen << 32 | ((uint64_t)op->index + 1));
}

static pm__op *op_lookup(const pm_loop *loop, int64_t id)
{
    if (id <= 0)
        return NULL;
    uint64_t slot = ((uint64_t)id & 0xffffffffu);
    if (slot == 0 || slot - 1 >= (uint64_t)loop->nblocks * OPS_PER_BLOCK)
        return NULL;
    slot--;
    pm__op *op = &loop->blocks[slot / OPS_PER_BLOCK][slot % OPS_PER_BLOCK];
    if (op->state == PM__OP_FREE || op->gen != ((uint64_t)id >> 32))
        return NULL;
    return op;
}

/* ---- timer heap ---- */

static int timer_before(const pm__op *a, const pm__op *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(pm_loop *loop, size_t i, pm__op *op)
{
    loop->heap[i] = op;
    op->heap_idx = i;
}

static void heap_up(pm_loop *loop, size_t i)
{
    pm__op *op = loop->heap[i];
    while (i > 0 && timer_before(op, loop->heap[(i - 1) / 2])) {
        heap_set(loop, i, loop->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(loop, i, op);
}

static void heap_down(pm_loop *loop, size_t i)
{
    pm__op *op = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->nheap)
            break;
        if (c + 1 < loop->nheap && timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], op))
            break;
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, op);
}

static int heap_push(pm_loop *loop, pm__op *op)
{
    if (loop->nheap == loop->heap_cap) {
        size_t cap = loop->heap_cap ? 2 * loop->heap_cap : 16;
        pm__op **h = realloc(loop->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    heap_set(loop, loop->nheap++, op);
    heap_up(loop, loop->nheap - 1);
    return 0;
}

static void heap_remove(pm_loop *loop, pm__op *op)
{
    size_t i = op->heap_idx;
    pm__op *last = loop->heap[--loop->nheap];
    if (i == loop->nheap)
        return;
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->heap_idx);
}

/* ---- moving operations between places ---- */

/* PM_LOOP_CUR on a regular file or block device: the attempts use explicit
 * offsets from the file position taken once, and the position is set after
 * the bytes transferred at the end. Besides being what read(2)/write(2) do,
 * this avoids trusting io_uring's offset -1 for a retry: on kernel 6.18 a
 * write at -1 that came back short at ENOSPC, resubmitted at -1, reports
 * the remainder as written although nothing was (and f_pos stays). */
static void pin_position(pm__op *op)
{
    struct stat st;
    if (fstat(op->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        return;
    int fl = fcntl(op->fd, F_GETFL);
    off_t pos = lseek(op->fd, 0, SEEK_CUR);
    if (fl < 0 || pos < 0)
        return;
    op->off = (uint64_t)pos;
    op->pinned = op->kind == PM__OP_WRITE && (fl & O_APPEND) ? 2 : 1;
}

static void unpin_position(pm__op *op)
{
    if (op->pinned == 1)
        lseek(op->fd, (off_t)(op->off + op->done), SEEK_SET);
    else
        lseek(op->fd, 0, SEEK_END);     /* O_APPEND wrote at the end */
    op->pinned = 0;
}

static void finish(pm_loop *loop, pm__op *op, ssize_t res)
{
    if (op->pinned)
        unpin_position(op);
    op->res = res;
    op->state = PM__OP_READY;
    list_push(&loop->ready, op);
}

static void engine_submit(pm_loop *loop, pm__op *op)
{
    if (op->off == PM_LOOP_CUR && (op->kind == PM__OP_READ || op->kind == PM__OP_WRITE))
        pin_position(op);
    op->state = PM__OP_ENGINE;
    if (++loop->inflight > loop->peak_inflight)
        loop->peak_inflight = loop->inflight;
    int rc = loop->eng->submit(loop->es, op);
    if (rc < 0) {
        loop->inflight--;
        finish(loop, op, rc);
    }
}

static void flush_backlog(pm_loop *loop)
{
    while (loop->inflight < loop->max_inflight && loop->backlog.head)
        engine_submit(loop, list_pop(&loop->backlog));
}

static int64_t start_op(pm_loop *loop, pm__op *op)
{
    int64_t id = op_id(op);
    if (loop->inflight < loop->max_inflight && !loop->backlog.head) {
        engine_submit(loop, op);
    } else {
        op->state = PM__OP_BACKLOG;
        list_push(&loop->backlog, op);
    }
    return id;
}

static void retry(pm_loop *loop, pm__op *op)
{
    op->state = PM__OP_BACKLOG;
    list_push_front(&loop->backlog, op);
}

/* One attempt of a read or write ended: retry, or the final result. */
static void transfer_attempt(pm_loop *loop, pm__op *op, ssize_t res)
{
    if (res == -EAGAIN || res == -EINTR) {
        op->poll_first = res == -EAGAIN;
        retry(loop, op);
        return;
    }
    if (res > 0) {
        op->done += (size_t)res;
        if (op->done < op->len) {
            op->poll_first = 0;
            retry(loop, op);
            return;
        }
        res = (ssize_t)op->done;
    } else if (res == 0) {
        /* A read of 0 is end of file; a write that makes no progress is
         * an I/O error rather than a reason to spin. */
        res = op->kind == PM__OP_READ || op->done == op->len ? (ssize_t)op->done : -EIO;
    }
    finish(loop, op, res);
}

void pm__loop_complete(pm_loop *loop, pm__op *op, ssize_t res)
{
    loop->inflight--;
    if (op->cancelled)
        finish(loop, op, -ECANCELED);
    else if (op->kind == PM__OP_READ || op->kind == PM__OP_WRITE)
        transfer_attempt(loop, op, res);
    else
        finish(loop, op, res);
}

void pm__loop_woken(pm_loop *loop)
{
    loop->woken = 1;
}

static void cancel_op(pm_loop *loop, pm__op *op)
{
    if (op->cancelled)
        return;
    op->cancelled = 1;
    switch (op->state) {
    case PM__OP_BACKLOG:
        list_remove(&loop->backlog, op);
        finish(loop, op, -ECANCELED);
        break;
    case PM__OP_TIMER_ARMED:
        heap_remove(loop, op);
        finish(loop, op, -ECANCELED);
        break;
    case PM__OP_READY:
        op->res = -ECANCELED;
        break;
    case PM__OP_ENGINE:
        atomic_store(&op->cancel_req, 1);
        loop->eng->cancel(loop->es, op);
        break;
    default:
        break;
    }
}

/* ---- groups ---- */

static void group_unlink(pm__op *op)
{
    pm_loop_group *g = op->group;
    if (op->gprev)
        op->gprev->gnext = op->gnext;
    else
        g->members = op->gnext;
    if (op->gnext)
        op->gnext->gprev = op->gprev;
    op->group = NULL;
    op->gnext = op->gprev = NULL;
}

static void group_member_done(pm__op *op, ssize_t res)
{
    pm_loop_group *g = op->group;
    if (!g)
        return;
    group_unlink(op);
    g->left--;
    if (res < 0 && g->first_err == 0)
        g->first_err = (int)res;
}

/* ---- one iteration ---- */

static int dispatch(pm_loop *loop)
{
    int n = 0;
    pm__op *op;
    while ((op = list_pop(&loop->ready))) {
        pm_loop_cb cb = op->cb;
        void *arg = op->arg;
        ssize_t res = op->res;
        group_member_done(op, res);
        op_free(loop, op);
        if (cb)
            cb(arg, res);
        n++;
    }
    return n;
}

static int run_posts(pm_loop *loop)
{
    if (atomic_load(&loop->nposts) == 0)
        return 0;
    pthread_mutex_lock(&loop->post_mu);
    post_node *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_mu);
    int n = 0;
    while (p) {
        post_node *next = p->next;
        p->cb(p->arg, loop->closing ? -ECANCELED : 0);
        free(p);
        atomic_fetch_sub(&loop->nposts, 1);
        p = next;
        n++;
    }
    return n;
}

static void expire_timers(pm_loop *loop)
{
    if (loop->nheap == 0)
        return;
    uint64_t now = now_ns();
    while (loop->nheap > 0 && loop->heap[0]->deadline <= now) {
        pm__op *op = loop->heap[0];
        heap_remove(loop, op);
        finish(loop, op, 0);
    }
}

static int has_work(const pm_loop *loop)
{
    return loop->live > 0 || atomic_load(&loop->nposts) > 0 ||
           atomic_load(&loop->holds) > 0;
}

/* How long the engine may block: -1 forever, 0 not at all, else ns. */
static int64_t block_timeout(const pm_loop *loop)
{
    if (loop->ready.head || loop->stop || !has_work(loop))
        return 0;
    if (loop->nheap == 0)
        return -1;
    uint64_t now = now_ns(), d = loop->heap[0]->deadline;
    return d > now ? (int64_t)(d - now) : 0;
}

static int engine_wait(pm_loop *loop, int64_t tmo)
{
    if (tmo == 0)
        return loop->eng->wait(loop->es, 0);
    atomic_store(&loop->sleeping, 1);
    if (atomic_load(&loop->nposts) > 0 || !has_work(loop))
        tmo = 0;
    int rc = loop->eng->wait(loop->es, tmo);
    atomic_store(&loop->sleeping, 0);
    return rc;
}

/* gettid() is a system call each time and the loop asks once per run_once:
 * each thread keeps its own, forgotten in a forked child (whose one thread
 * is the one that forked, under a new id). */
static __thread int cached_tid;
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;

static void tid_forget(void)
{
    cached_tid = 0;
}

static void tid_init(void)
{
    pthread_atfork(NULL, NULL, tid_forget);
}

static int my_tid(void)
{
    if (!cached_tid) {
        pthread_once(&tid_once, tid_init);
        cached_tid = (int)gettid();
    }
    return cached_tid;
}

int pm_loop_run_once(pm_loop *loop, int wait)
{
    atomic_store_explicit(&loop->owner_tid, my_tid(), memory_order_relaxed);
    int ran = 0;
    loop->woken = 0;
    for (;;) {
        flush_backlog(loop);
        int rc = engine_wait(loop, wait && !ran ? block_timeout(loop) : 0);
        if (rc < 0)
            return rc;
        expire_timers(loop);
        ran += run_posts(loop);
        ran += dispatch(loop);
        if (!wait || ran || loop->woken || loop->stop || !has_work(loop))
            break;
    }
    /* Start what the callbacks queued while the caller does other work. */
    flush_backlog(loop);
    int rc = loop->eng->wait(loop->es, 0);
    return rc < 0 ? rc : ran;
}

int pm_loop_run(pm_loop *loop)
{
    loop->stop = 0;
    while (!loop->stop && has_work(loop)) {
        int rc = pm_loop_run_once(loop, 1);
        if (rc < 0)
            return rc;
    }
    loop->stop = 0;
    return 0;
}

void pm_loop_stop(pm_loop *loop)
{
    loop->stop = 1;
}

/* ---- creation and teardown ---- */

static int pick_engine(pm_loop *loop, const pm_loop_opts *o)
{
    pm_loop_engine e = o->engine;
    if (e == PM_LOOP_AUTO) {
        int env = pm_config_io_engine();     /* PMAP_IO; malformed: -EINVAL */
        if (env < 0)
            return env;
        e = (pm_loop_engine)env;
    }
    if (e != PM_LOOP_AUTO && e != PM_LOOP_URING && e != PM_LOOP_THREADS)
        return -EINVAL;
    if (e != PM_LOOP_THREADS) {
        int rc = pm__engine_uring.init(loop, o, &loop->es);
        if (rc == 0) {
            loop->eng = &pm__engine_uring;
            return 0;
        }
        if (e == PM_LOOP_URING)
            return rc;
        if (o->verbose)
            fprintf(stderr, "pmap: io_uring unavailable (%s); using the thread-pool I/O engine\n",
                    strerror(-rc));
    }
    int rc = pm__engine_threads.init(loop, o, &loop->es);
    if (rc == 0)
        loop->eng = &pm__engine_threads;
    return rc;
}

/* The thread engine's workers by default: from the one worker count
 * (config.h), twice over since they block in system calls, 4 to 64. */
static int default_io_threads(void)
{
    int jobs = pm_default_jobs();
    if (jobs < 0)
        return jobs;
    int n = 2 * jobs;
    return n < 4 ? 4 : n > 64 ? 64 : n;
}

int pm_loop_new(const pm_loop_opts *opts, pm_loop **loop_ret)
{
    pm_loop_opts o = opts ? *opts : (pm_loop_opts){0};
    if (!loop_ret || o.queue_depth > MAX_DEPTH)
        return -EINVAL;
    if (o.queue_depth == 0)
        o.queue_depth = 64;
    if (o.io_threads == 0) {
        int rc = default_io_threads();
        if (rc < 0)
            return rc;
        o.io_threads = (unsigned)rc;
    }
    pm_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    loop->max_inflight = o.queue_depth;
    pthread_mutex_init(&loop->post_mu, NULL);
    atomic_init(&loop->nposts, 0);
    atomic_init(&loop->holds, 0);
    atomic_init(&loop->sleeping, 0);
    atomic_init(&loop->owner_tid, my_tid());
    int rc = pick_engine(loop, &o);
    if (rc < 0) {
        pthread_mutex_destroy(&loop->post_mu);
        free(loop);
        return rc;
    }
    *loop_ret = loop;
    return 0;
}

/* Waits until every record is dispatched and every post has run. */
static void drain(pm_loop *loop)
{
    int failures = 0;
    while (loop->live > 0 || atomic_load(&loop->nposts) > 0) {
        flush_backlog(loop);
        int64_t tmo = loop->ready.head || atomic_load(&loop->nposts) ? 0 : -1;
        if (loop->eng->wait(loop->es, tmo) < 0 && ++failures > 1000)
            break;      /* the engine is broken; give up rather than spin */
        expire_timers(loop);
        run_posts(loop);
        dispatch(loop);
    }
}

void pm_loop_free(pm_loop *loop)
{
    if (!loop)
        return;
    /* A thread that posted or released just before this may still be
     * waking the loop: wait for it to leave (a few instructions). */
    while (atomic_load(&loop->outside) != 0)
        sched_yield();
    loop->closing = 1;
    pm_loop_cancel_all(loop);
    drain(loop);
    loop->eng->fini(loop->es);
    for (post_node *p = loop->post_head, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    for (unsigned i = 0; i < loop->nblocks; i++)
        free(loop->blocks[i]);
    free(loop->blocks);
    free(loop->heap);
    pthread_mutex_destroy(&loop->post_mu);
    free(loop);
}

const char *pm_loop_engine_name(const pm_loop *loop)
{
    return loop->eng->name;
}

/* ---- queueing operations ---- */

static pm__op *new_transfer(pm_loop *loop, int kind, int fd, void *buf, size_t len,
                            uint64_t off, pm_loop_cb cb, void *arg, int *err)
{
    *err = loop->closing ? -ECANCELED : (!buf && len) ? -EINVAL : 0;
    if (*err)
        return NULL;
    pm__op *op = op_alloc(loop, kind, cb, arg);
    if (!op) {
        *err = -ENOMEM;
        return NULL;
    }
    op->fd = fd;
    op->buf = buf;
    op->len = len;
    op->off = off;
    return op;
}

int64_t pm_loop_read(pm_loop *loop, int fd, void *buf, size_t len, uint64_t off,
                     pm_loop_cb cb, void *arg)
{
    int err;
    pm__op *op = new_transfer(loop, PM__OP_READ, fd, buf, len, off, cb, arg, &err);
    return op ? start_op(loop, op) : err;
}

int64_t pm_loop_write(pm_loop *loop, int fd, const void *buf, size_t len, uint64_t off,
                      pm_loop_cb cb, void *arg)
{
    int err;
    pm__op *op = new_transfer(loop, PM__OP_WRITE, fd, (void *)buf, len, off, cb, arg, &err);
    return op ? start_op(loop, op) : err;
}

static pm__op *new_simple(pm_loop *loop, int kind, pm_loop_cb cb, void *arg, int *err)
{
    *err = loop->closing ? -ECANCELED : 0;
    pm__op *op = *err ? NULL : op_alloc(loop, kind, cb, arg);
    if (!op && !*err)
        *err = -ENOMEM;
    return op;
}

int64_t pm_loop_fsync(pm_loop *loop, int fd, int datasync, pm_loop_cb cb, void *arg)
{
    int err;
    pm__op *op = new_simple(loop, PM__OP_FSYNC, cb, arg, &err);
    if (!op)
        return err;
    op->fd = fd;
    op->flags = datasync != 0;
    return start_op(loop, op);
}

int64_t pm_loop_openat(pm_loop *loop, int dirfd, const char *path, int flags,
                       unsigned mode, pm_loop_cb cb, void *arg)
{
    int err;
    if (!path)
        return -EINVAL;
    pm__op *op = new_simple(loop, PM__OP_OPENAT, cb, arg, &err);
    if (!op)
        return err;
    op->fd = dirfd;
    op->path = path;
    op->flags = flags;
    op->mode = mode;
    return start_op(loop, op);
}

int64_t pm_loop_close(pm_loop *loop, int fd, pm_loop_cb cb, void *arg)
{
    int err;
    pm__op *op = new_simple(loop, PM__OP_CLOSE, cb, arg, &err);
    if (!op)
        return err;
    op->fd = fd;
    return start_op(loop, op);
}

int64_t pm_loop_statx(pm_loop *loop, int dirfd, const char *path, int flags,
                      unsigned mask, struct statx *buf, pm_loop_cb cb, void *arg)
{
    int err;
    if (!path || !buf)
        return -EINVAL;
    pm__op *op = new_simple(loop, PM__OP_STATX, cb, arg, &err);
    if (!op)
        return err;
    op->fd = dirfd;
    op->path = path;
    op->flags = flags;
    op->mode = mask;
    op->buf = buf;
    return start_op(loop, op);
}

int64_t pm__loop_poll(pm_loop *loop, int fd, unsigned events, pm_loop_cb cb, void *arg)
{
    int err;
    pm__op *op = new_simple(loop, PM__OP_POLL, cb, arg, &err);
    if (!op)
        return err;
    op->fd = fd;
    op->mode = events;
    return start_op(loop, op);
}

int64_t pm_loop_timer(pm_loop *loop, uint64_t ns, pm_loop_cb cb, void *arg)
{
    int err;
    pm__op *op = new_simple(loop, PM__OP_TIMER, cb, arg, &err);
    if (!op)
        return err;
    uint64_t now = now_ns();
    op->deadline = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
    op->seq = loop->timer_seq++;
    op->state = PM__OP_TIMER_ARMED;
    if (heap_push(loop, op) < 0) {
        op_free(loop, op);
        return -ENOMEM;
    }
    return op_id(op);
}

/* ---- cross-thread entry points ---- */

int pm_loop_post(pm_loop *loop, pm_loop_cb cb, void *arg)
{
    post_node *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->next = NULL;
    p->cb = cb;
    p->arg = arg;
    /* Once the post is queued the loop may run it, return from its run and
     * be freed while this thread still reads `sleeping` and wakes it:
     * `outside` keeps pm_loop_free waiting until this call is done. */
    atomic_fetch_add(&loop->outside, 1);
    pthread_mutex_lock(&loop->post_mu);
    if (loop->post_tail)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    atomic_fetch_add(&loop->nposts, 1);
    pthread_mutex_unlock(&loop->post_mu);
    if (atomic_load(&loop->sleeping))
        loop->eng->wake(loop->es);
    atomic_fetch_sub(&loop->outside, 1);   /* the last touch of loop */
    return 0;
}

void pm_loop_hold(pm_loop *loop)
{
    atomic_fetch_add(&loop->holds, 1);
}

void pm_loop_release(pm_loop *loop)
{
    atomic_fetch_add(&loop->outside, 1);   /* as in pm_loop_post */
    if (atomic_fetch_sub(&loop->holds, 1) == 1 && atomic_load(&loop->sleeping))
        loop->eng->wake(loop->es);
    atomic_fetch_sub(&loop->outside, 1);
}

/* ---- cancellation and queries ---- */

int pm_loop_cancel(pm_loop *loop, int64_t id)
{
    pm__op *op = op_lookup(loop, id);
    if (!op)
        return -ENOENT;
    cancel_op(loop, op);
    return 0;
}

unsigned pm_loop_cancel_all(pm_loop *loop)
{
    unsigned n = 0;
    for (unsigned b = 0; b < loop->nblocks; b++) {
        for (unsigned i = 0; i < OPS_PER_BLOCK; i++) {
            pm__op *op = &loop->blocks[b][i];
            if (op->state != PM__OP_FREE && !op->cancelled) {
                cancel_op(loop, op);
                n++;
            }
        }
    }
    return n;
}

unsigned pm_loop_pending(const pm_loop *loop)
{
    return loop->live;
}

void pm__loop_set_max_inflight(pm_loop *loop, unsigned n)
{
    loop->max_inflight = n ? n : 1;
}

unsigned pm__loop_peak_inflight(const pm_loop *loop)
{
    return loop->peak_inflight;
}

int pm__loop_on_thread(const pm_loop *loop)
{
    return atomic_load_explicit(&((pm_loop *)loop)->owner_tid, memory_order_relaxed) == my_tid();
}

/* ---- gather groups ---- */

int pm_loop_group_new(pm_loop *loop, pm_loop_group **group_ret)
{
    pm_loop_group *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->loop = loop;
    *group_ret = g;
    return 0;
}

int pm_loop_group_add(pm_loop_group *g, int64_t id)
{
    pm__op *op = op_lookup(g->loop, id);
    if (!op)
        return -ENOENT;
    if (op->group)
        return -EBUSY;
    op->group = g;
    op->gprev = NULL;
    op->gnext = g->members;
    if (g->members)
        g->members->gprev = op;
    g->members = op;
    g->left++;
    return 0;
}

int pm_loop_group_wait(pm_loop_group *g)
{
    while (g->left > 0) {
        int rc = pm_loop_run_once(g->loop, 1);
        if (rc < 0)
            return rc;
    }
    int err = g->first_err;
    g->first_err = 0;
    return err;
}

unsigned pm_loop_group_pending(const pm_loop_group *g)
{
    return g->left;
}

void pm_loop_group_cancel(pm_loop_group *g)
{
    for (pm__op *op = g->members; op; op = op->gnext)
        cancel_op(g->loop, op);
}

void pm_loop_group_free(pm_loop_group *g)
{
    if (!g)
        return;
    while (g->members)
        group_unlink(g->members);
    free(g);
}
