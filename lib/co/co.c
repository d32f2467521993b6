/* co.c - tasks and their scheduler (see pmap/co.h).
 *
 * Design. One scheduler per loop, on the loop's thread; nothing here is
 * shared with other threads. Two kinds of stack take turns: the "main"
 * side (whoever runs the loop: pm_loop_run, or pm_co_wait's own loop when
 * called outside tasks) and one task at a time. A task only ever switches
 * back to the main side, never to another task, so every switch is
 * main -> task (resume) or task -> main (suspend).
 *
 *   spawn / yield / wake --> run queue (FIFO) --drain()--> resume(task)
 *                                 ^                          |
 *   loop completion callback -----+ (then drains at once)    v
 *                                              task awaits: suspend()
 *
 * A suspended task is in one of two states: S_OP, waiting for one loop
 * operation whose callback (op_done) carries the result, or S_WAIT,
 * waiting for other tasks to finish (their end walks their waiter nodes)
 * and possibly a timeout timer. wake() moves a task from either to the run
 * queue exactly once. An await always waits for its operation's callback,
 * even after a cancel, so a callback never finds its task gone or busy
 * with something else.
 *
 * drain() runs the tasks queued when it starts, not those queued meanwhile
 * (a yield, a spawn, a task woken by another's end): those wait for a
 * "kick", a 0 ns loop timer, so the loop gets to poll and run timers
 * between two rounds of tasks. A completion callback drains right away (no
 * kick needed: it runs on the main side, outside any drain).
 *
 * Sanitizers: ASan is told about each stack switch
 * (__sanitizer_start/finish_switch_fiber) so it tracks the right stack
 * bounds and fake stacks; TSan gets a fiber per task (__tsan_*_fiber) so it
 * keeps each task's happens-before state apart.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "co/co_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define PM__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PM__ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define PM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PM__TSAN 1
#endif
#endif

#ifdef PM__ASAN
#include <sanitizer/asan_interface.h>   /* fiber switches, unpoisoning reused stacks */
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef PM__TSAN
#include <sanitizer/tsan_interface.h>   /* __tsan_*_fiber */
#endif

#define DEFAULT_STACK (64u << 10)
#define MIN_STACK (16u << 10)
#define DEFAULT_CACHE 64u

enum { S_NONE, S_OP, S_WAIT };

typedef struct wset {
    pm_co_task *self;
    size_t need, count;
} wset;

typedef struct wnode {         /* one waiter on one target task */
    struct wnode *next, *prev; /* target's waiter list */
    pm_co_task *target;        /* NULL once the target has finished */
    wset *w;
} wnode;

struct pm_co_task {
    pm__co_ctx ctx;
    pm_co_sched *s;
    pm__co_stack *stack;       /* NULL before the first run and once finished */
    pm_co_fn fn;
    void *arg;
    int64_t result;
    ssize_t res;               /* what wake() delivered to the suspended task */
    int64_t op_id;             /* pending loop operation, 0: none */
    uint8_t susp;              /* S_NONE, S_OP, S_WAIT */
    uint8_t queued, finished, detached;
    uint8_t cancel_pending;    /* next await returns -ECANCELED */
    uint8_t cleanup;           /* waiting out a wait's cancelled timer */
    pm_co_task *qnext;         /* run queue */
    pm_co_task *anext, *aprev; /* the scheduler's list of handles */
    wnode *waiters;            /* tasks waiting for this one */
    wset *wait;                /* while S_WAIT */
#ifdef PM__ASAN
    void *fake;                /* ASan's fake stack while switched away */
#endif
#ifdef PM__TSAN
    void *fiber;
#endif
};

struct pm_co_sched {
    pm_loop *loop;
    size_t stack_size;
    int guard;
    pm__co_ctx main;
    pm_co_task *rq_head, *rq_tail;
    pm_co_task *all;           /* every handle not yet freed */
    pm__co_stack **cache;
    unsigned ncache, cache_cap;
    unsigned live;             /* tasks spawned and not finished */
    int draining, closing;
    int64_t kick_id;           /* pending kick timer, 0: none */
#ifdef PM__ASAN
    void *main_fake;
    const void *main_lo;
    size_t main_size;
#endif
#ifdef PM__TSAN
    void *main_fiber;
#endif
};

static __thread pm_co_task *cur_task;

/* ---- stacks ---- */

static pm__co_stack *stack_get(pm_co_sched *s, int *err)
{
    if (s->ncache > 0)
        return s->cache[--s->ncache];
    return pm__co_stack_new(s->stack_size, s->guard, err);
}

static void stack_put(pm_co_sched *s, pm__co_stack *st)
{
#ifdef PM__ASAN
    ASAN_UNPOISON_MEMORY_REGION(st->lo, st->size);  /* frames left poisoned */
#endif
    if (s->ncache < s->cache_cap)
        s->cache[s->ncache++] = st;
    else
        pm__co_stack_free(st);
}

/* ---- switching ---- */

static void task_main(void *p);

static void resume(pm_co_sched *s, pm_co_task *t)
{
    cur_task = t;
#ifdef PM__TSAN
    s->main_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(t->fiber, 0);
#endif
#ifdef PM__ASAN
    __sanitizer_start_switch_fiber(&s->main_fake, t->stack->lo, t->stack->size);
#endif
    pm__co_ctx_switch(&s->main, &t->ctx);
#ifdef PM__ASAN
    __sanitizer_finish_switch_fiber(s->main_fake, NULL, NULL);
#endif
    cur_task = NULL;
}

/* Task side: after a switch into the task. */
static void arrived(pm_co_task *t)
{
#ifdef PM__ASAN
    pm_co_sched *s = t->s;
    __sanitizer_finish_switch_fiber(t->fake, &s->main_lo, &s->main_size);
#else
    (void)t;
#endif
}

/* Task side: back to the main side; last != 0 when the task has ended. */
static void leave(pm_co_task *t, int last)
{
    pm_co_sched *s = t->s;
#ifdef PM__TSAN
    __tsan_switch_to_fiber(s->main_fiber, 0);
#endif
#ifdef PM__ASAN
    __sanitizer_start_switch_fiber(last ? NULL : &t->fake, s->main_lo, s->main_size);
#else
    (void)last;
#endif
    pm__co_ctx_switch(&t->ctx, &s->main);
    arrived(t);
}

/* ---- the run queue ----
 * wake() and enqueue() only queue; whoever queues outside a drain (spawn,
 * cancel) kicks, a drain kicks for what was queued during it, and a
 * completion callback drains at once. */

static void drain(pm_co_sched *s);

static void kick_done(void *arg, ssize_t res)
{
    pm_co_sched *s = arg;
    (void)res;
    s->kick_id = 0;
    drain(s);
}

static void kick(pm_co_sched *s)
{
    if (s->kick_id || s->draining || !s->rq_head)
        return;
    int64_t id = pm_loop_timer(s->loop, 0, kick_done, s);
    s->kick_id = id > 0 ? id : 0;   /* refused (loop closing, ENOMEM): the
                                       next callback or wait drains */
}

static void enqueue(pm_co_sched *s, pm_co_task *t)
{
    t->queued = 1;
    t->qnext = NULL;
    if (s->rq_tail)
        s->rq_tail->qnext = t;
    else
        s->rq_head = t;
    s->rq_tail = t;
}

static void wake(pm_co_task *t, ssize_t res)
{
    if (t->susp == S_NONE)
        return;
    t->susp = S_NONE;
    t->res = res;
    enqueue(t->s, t);
}

static void retire(pm_co_sched *s, pm_co_task *t);

static void drain(pm_co_sched *s)
{
    if (s->draining)
        return;
    s->draining = 1;
    pm_co_task *t = s->rq_head, *end = s->rq_tail;
    s->rq_head = s->rq_tail = NULL;
    while (t) {
        pm_co_task *next = t == end ? NULL : t->qnext;
        t->queued = 0;
        resume(s, t);
        if (t->finished)
            retire(s, t);
        t = next;
    }
    s->draining = 0;
    kick(s);
}

/* ---- task lifecycle ---- */

static void notify_waiters(pm_co_task *t)
{
    for (wnode *n = t->waiters; n; n = n->next) {
        n->target = NULL;
        wset *w = n->w;
        if (++w->count >= w->need && w->self)
            wake(w->self, 0);
    }
    t->waiters = NULL;
}

static void task_main(void *p)
{
    pm_co_task *t = p;
    arrived(t);
    t->result = t->cancel_pending ? -ECANCELED : t->fn(t->arg);
    t->finished = 1;
    t->s->live--;
    notify_waiters(t);
    leave(t, 1);
}

static void unlink_handle(pm_co_sched *s, pm_co_task *t)
{
    if (t->aprev)
        t->aprev->anext = t->anext;
    else
        s->all = t->anext;
    if (t->anext)
        t->anext->aprev = t->aprev;
}

static void handle_free(pm_co_sched *s, pm_co_task *t)
{
    unlink_handle(s, t);
#ifdef PM__TSAN
    if (t->fiber)
        __tsan_destroy_fiber(t->fiber);
#endif
    free(t);
}

/* Main side, once t has ended: its stack goes back at once. */
static void retire(pm_co_sched *s, pm_co_task *t)
{
    stack_put(s, t->stack);
    t->stack = NULL;
    if (t->detached)
        handle_free(s, t);
}

int pm_co_spawn(pm_co_sched *s, pm_co_fn fn, void *arg, pm_co_task **task_ret)
{
    if (!s && cur_task)
        s = cur_task->s;
    if (!s || !fn)
        return -EINVAL;
    if (s->closing)
        return -ECANCELED;
    pm_co_task *t = calloc(1, sizeof *t);
    int err = -ENOMEM;
    if (!t || !(t->stack = stack_get(s, &err))) {
        free(t);
        return err;
    }
#ifdef PM__TSAN
    t->fiber = __tsan_create_fiber(0);
#endif
    t->s = s;
    t->fn = fn;
    t->arg = arg;
    t->detached = task_ret == NULL;
    pm__co_ctx_make(&t->ctx, t->stack->lo, t->stack->size, task_main, t);
    t->anext = s->all;
    if (s->all)
        s->all->aprev = t;
    s->all = t;
    s->live++;
    enqueue(s, t);
    kick(s);
    if (task_ret)
        *task_ret = t;
    return 0;
}

int pm_co_done(const pm_co_task *t)
{
    return t && t->finished;
}

pm_co_task *pm_co_current(void)
{
    return cur_task;
}

void pm_co_task_free(pm_co_task *t)
{
    if (!t)
        return;
    if (t->finished && !t->stack)
        handle_free(t->s, t);
    else
        t->detached = 1;     /* freed by retire() */
}

/* ---- suspending, for co_io.c ---- */

/* The running task, or NULL with *err = -EPERM (outside tasks) or
 * -ECANCELED: a pending cancel (consumed), or, for an I/O await (io != 0),
 * the scheduler shutting down. Waits for tasks still wait then: the tasks
 * they wait for are cancelled too, so they end. */
static pm_co_task *enter(int *err, int io)
{
    pm_co_task *t = cur_task;
    *err = 0;
    if (!t)
        *err = -EPERM;
    else if (t->cancel_pending || (io && t->s->closing))
        *err = -ECANCELED;
    if (*err == -ECANCELED)
        t->cancel_pending = 0;
    return *err ? NULL : t;
}

pm_co_task *pm__co_enter(int *err)
{
    return enter(err, 1);
}

static ssize_t suspend(pm_co_task *t, int how)
{
    t->susp = (uint8_t)how;
    leave(t, 0);
    return t->res;
}

/* The callback of every loop operation a task awaits (arg: the task). */
static void op_done(void *arg, ssize_t res)
{
    pm_co_task *t = arg;
    pm_co_sched *s = t->s;
    t->op_id = 0;
    if (t->susp == S_WAIT)          /* a wait's timeout */
        wake(t, res == 0 ? -ETIMEDOUT : res);
    else
        wake(t, res);
    drain(s);
}

pm_loop *pm__co_loop(const pm_co_task *t)
{
    return t->s->loop;
}

pm_loop_cb pm__co_op_cb(void)
{
    return op_done;
}

/* Suspends t until the callback of the loop operation id (queued with
 * pm__co_op_cb() and t) has run; returns its result. id < 0: returned. */
ssize_t pm__co_await_op(pm_co_task *t, int64_t id)
{
    if (id < 0)
        return id;
    t->op_id = id;
    return suspend(t, S_OP);
}

int pm_co_yield(void)
{
    int err;
    pm_co_task *t = pm__co_enter(&err);
    if (!t)
        return err;
    enqueue(t->s, t);       /* to the back of the queue: after this round */
    leave(t, 0);
    return 0;
}

int pm_co_cancel(pm_co_task *t)
{
    if (!t)
        return -EINVAL;
    if (t->finished)
        return -EALREADY;
    if (t->susp == S_OP && !t->cleanup && t->op_id &&
        pm_loop_cancel(t->s->loop, t->op_id) == 0)
        return 0;
    if (t->susp == S_WAIT) {
        wake(t, -ECANCELED);
        kick(t->s);
        return 0;
    }
    t->cancel_pending = 1;
    return 0;
}

/* ---- waiting for tasks ---- */

static size_t count_done(pm_co_task *const *tasks, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += tasks[i]->finished;
    return k;
}

static void noop_cb(void *arg, ssize_t res)
{
    (void)arg;
    (void)res;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Outside tasks: run the loop until enough tasks are done. A timer with
 * no callback bounds the loop's sleep; the deadline is read off the clock,
 * since the timer's callback cannot point into this frame (it may run
 * after the function has returned, cancelled). */
static int main_wait(pm_co_sched *s, pm_co_task *const *tasks, size_t n, size_t need,
                     int64_t timeout_ns)
{
    uint64_t deadline = timeout_ns >= 0 ? now_ns() + (uint64_t)timeout_ns : 0;
    int64_t tid = timeout_ns >= 0 ? pm_loop_timer(s->loop, (uint64_t)timeout_ns, noop_cb, NULL) : 0;
    if (tid < 0)
        return (int)tid;
    int rc;
    for (;;) {
        size_t k = count_done(tasks, n);
        if (k >= need) {
            rc = (int)k;
            break;
        }
        if (tid > 0 && now_ns() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        drain(s);
        int r = pm_loop_run_once(s->loop, 1);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 0 && pm_loop_pending(s->loop) == 0 && !s->rq_head) {
            rc = -EDEADLK;           /* nothing left that could finish them */
            break;
        }
    }
    if (tid > 0)
        pm_loop_cancel(s->loop, tid);
    return rc;
}

static void link_waiters(wset *w, wnode *nodes, pm_co_task *const *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wnode *nd = &nodes[i];
        nd->w = w;
        nd->target = tasks[i]->finished ? NULL : tasks[i];
        nd->prev = NULL;
        nd->next = NULL;
        if (!nd->target)
            continue;
        nd->next = tasks[i]->waiters;
        if (nd->next)
            nd->next->prev = nd;
        tasks[i]->waiters = nd;
    }
}

static void unlink_waiters(wnode *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wnode *nd = &nodes[i];
        if (!nd->target)
            continue;
        if (nd->prev)
            nd->prev->next = nd->next;
        else
            nd->target->waiters = nd->next;
        if (nd->next)
            nd->next->prev = nd->prev;
    }
}

/* Inside task t: suspend until enough are done, the timeout, or a cancel. */
static int task_wait(pm_co_task *t, pm_co_task *const *tasks, size_t n, size_t need,
                     int64_t timeout_ns)
{
    wnode one, *nodes = n == 1 ? &one : malloc(n * sizeof *nodes);
    if (!nodes)
        return -ENOMEM;
    wset w = {.self = t, .need = need, .count = count_done(tasks, n)};
    int64_t tid = 0;
    if (timeout_ns >= 0)
        tid = pm_loop_timer(t->s->loop, (uint64_t)timeout_ns, op_done, t);
    ssize_t r = tid < 0 ? tid : 0;
    if (r == 0) {
        link_waiters(&w, nodes, tasks, n);
        t->op_id = tid;
        t->wait = &w;
        r = suspend(t, S_WAIT);
        t->wait = NULL;
        unlink_waiters(nodes, n);
    }
    if (t->op_id) {                  /* the timer is still pending */
        pm_loop_cancel(t->s->loop, t->op_id);
        t->cleanup = 1;
        suspend(t, S_OP);
        t->cleanup = 0;
    }
    if (nodes != &one)
        free(nodes);
    return r < 0 ? (int)r : (int)w.count;
}

int pm_co_wait(pm_co_task *const *tasks, size_t n, size_t need, int64_t timeout_ns)
{
    if (!tasks || need > n || n > INT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i])
            return -EINVAL;
    size_t k = count_done(tasks, n);
    if (k >= need)
        return (int)k;
    if (!cur_task)
        return main_wait(tasks[0]->s, tasks, n, need, timeout_ns);
    for (size_t i = 0; i < n; i++)
        if (tasks[i] == cur_task)
            return -EDEADLK;
    int err;
    pm_co_task *t = enter(&err, 0);
    return t ? task_wait(t, tasks, n, need, timeout_ns) : err;
}

int pm_co_await(pm_co_task *task, int64_t *result_ret)
{
    if (!task)
        return -EINVAL;
    int rc = pm_co_wait(&task, 1, 1, -1);
    if (rc < 0)
        return rc;
    if (result_ret)
        *result_ret = task->result;
    return 0;
}

int pm_co_join(pm_co_task *task, int64_t *result_ret)
{
    if (!task)
        return -EINVAL;
    int rc = pm_co_await(task, result_ret);
    pm_co_task_free(task);
    return rc;
}

int pm_co_gather(pm_co_task *const *tasks, size_t n, int64_t *results)
{
    int rc = n ? pm_co_wait(tasks, n, n, -1) : 0;
    if (rc < 0)
        return rc;
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        if (results)
            results[i] = tasks[i]->result;
        if (tasks[i]->result < 0 && first == 0)
            first = tasks[i]->result < INT32_MIN ? -EIO : (int)tasks[i]->result;
    }
    return first;
}

/* ---- the scheduler ---- */

int pm_co_sched_new(pm_loop *loop, const pm_co_opts *opts, pm_co_sched **sched_ret)
{
    pm_co_opts o = {0};
    if (opts) {
        if (opts->size < sizeof(size_t) || opts->size > sizeof o)
            return -EINVAL;
        memcpy(&o, opts, opts->size);
    }
    if (!loop || !sched_ret || (o.stack_size && o.stack_size < MIN_STACK))
        return -EINVAL;
    pm_co_sched *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->stack_size = o.stack_size ? o.stack_size : DEFAULT_STACK;
    s->guard = !o.no_guard;
    s->cache_cap = o.stack_cache ? o.stack_cache : DEFAULT_CACHE;
    s->cache = calloc(s->cache_cap, sizeof *s->cache);
    if (!s->cache) {
        free(s);
        return -ENOMEM;
    }
    *sched_ret = s;
    return 0;
}

pm_loop *pm_co_sched_loop(const pm_co_sched *s)
{
    return s->loop;
}

unsigned pm_co_sched_cancel_all(pm_co_sched *s)
{
    unsigned n = 0;
    for (pm_co_task *t = s ? s->all : NULL; t; t = t->anext)
        n += !t->finished && pm_co_cancel(t) == 0;
    return n;
}

static void shut_down(pm_co_sched *s)
{
    s->closing = 1;
    pm_co_sched_cancel_all(s);
    while (s->live > 0 || s->kick_id) {
        drain(s);
        int r = pm_loop_run_once(s->loop, 1);
        if (r < 0 || (r == 0 && pm_loop_pending(s->loop) == 0 && !s->rq_head))
            break;
    }
}

void pm_co_sched_free(pm_co_sched *s)
{
    if (!s || cur_task)
        return;          /* from a task it would wait for itself: refused */
    shut_down(s);
    /* Tasks still live here ignored every -ECANCELED and wait on nothing
     * the loop has: their stacks and handles are leaked, not freed under
     * them. */
    pm_co_task *t = s->all;
    while (t) {
        pm_co_task *next = t->anext;
        if (t->finished)
            handle_free(s, t);
        t = next;
    }
    for (unsigned i = 0; i < s->ncache; i++)
        pm__co_stack_free(s->cache[i]);
    free(s->cache);
    if (s->live == 0)
        free(s);
}

int pm__co_task_guard(const pm_co_task *t, void **lo, size_t *len)
{
    if (!t->stack || !t->stack->guard)
        return -ENOENT;
    *lo = t->stack->map;
    *len = t->stack->guard;
    return 0;
}
