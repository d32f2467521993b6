/* test_co.c - cooperative tasks (pmap/co.h) on both loop engines
 * ("[uring]" cases are skipped where io_uring is unavailable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pmap/co.h>
#include <pmap/loop.h>
#include "co/co_internal.h"
#include "testutil.h"

static pm_loop_engine engine;
static char *tmp;

static const char *path_tmp_file(void);


typedef struct env {
    pm_loop *loop;
    pm_co_sched *s;
} env;

static env setup(unsigned depth, size_t stack)
{
    env e = {0};
    pm_loop_opts o = {.engine = engine, .queue_depth = depth, .io_threads = 8};
    CU_ASSERT_EQUAL_FATAL(pm_loop_new(&o, &e.loop), 0);
    pm_co_opts co = {.size = sizeof co, .stack_size = stack};
    CU_ASSERT_EQUAL_FATAL(pm_co_sched_new(e.loop, &co, &e.s), 0);
    return e;
}

static void teardown(env *e)
{
    pm_co_sched_free(e->s);
    pm_loop_free(e->loop);
}

/* ---- ordering ---- */

typedef struct order {
    int log[64];
    int n;
} order;

typedef struct sleeper {
    order *o;
    int id;
    uint64_t ns;
} sleeper;

static int64_t sleep_then_log(void *arg)
{
    sleeper *sl = arg;
    int rc = pm_co_sleep(sl->ns);
    sl->o->log[sl->o->n++] = sl->id;
    return rc == 0 ? sl->id : rc;
}

static int64_t log_yield_log(void *arg)
{
    sleeper *sl = arg;
    sl->o->log[sl->o->n++] = sl->id;
    int rc = pm_co_yield();
    sl->o->log[sl->o->n++] = 100 + sl->id;
    return rc;
}

static void co_ordering(void)
{
    env e = setup(0, 0);
    order o = {0};
    /* Deadlines 30, 10, 20, 10, 0 ms: by deadline, ties in queue order. */
    uint64_t ms[] = {30, 10, 20, 10, 0};
    sleeper sl[5];
    pm_co_task *t[5];
    for (int i = 0; i < 5; i++) {
        sl[i] = (sleeper){&o, i, ms[i] * 1000000u};
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, sleep_then_log, &sl[i], &t[i]), 0);
    }
    int64_t res[5];
    CU_ASSERT_EQUAL(pm_co_gather(t, 5, res), 0);
    int want[] = {4, 1, 3, 2, 0};
    CU_ASSERT_EQUAL(o.n, 5);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(o.log[i], want[i]);
        CU_ASSERT_EQUAL(res[i], i);
        pm_co_task_free(t[i]);
    }
    /* Spawn order, then yields go behind every task runnable then. */
    o.n = 0;
    for (int i = 0; i < 3; i++) {
        sl[i] = (sleeper){&o, i, 0};
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, log_yield_log, &sl[i], &t[i]), 0);
    }
    CU_ASSERT_EQUAL(pm_co_gather(t, 3, NULL), 0);
    int want2[] = {0, 1, 2, 100, 101, 102};
    CU_ASSERT_EQUAL(o.n, 6);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(o.log[i], want2[i]);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(pm_co_join(t[i], NULL), 0);
    teardown(&e);
}
PM_TEST_BOTH(co_ordering)

/* ---- file I/O ---- */

static int64_t file_roundtrip(void *arg)
{
    const char *path = arg;
    int fd = pm_co_openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return fd;
    static char buf[100000], back[100000];   /* larger than a task's stack */
    pm_test_fill_random(buf, sizeof buf, 7);
    int64_t rc = pm_co_write(fd, buf, sizeof buf, 0);
    if (rc == (int64_t)sizeof buf)
        rc = pm_co_fsync(fd, 1);
    struct statx stx;
    if (rc == 0)
        rc = pm_co_statx(AT_FDCWD, path, 0, STATX_SIZE, &stx);
    if (rc == 0 && stx.stx_size != sizeof buf)
        rc = -EIO;
    if (rc == 0)
        rc = pm_co_read(fd, back, sizeof back, 0);
    if (rc == (int64_t)sizeof back)
        rc = memcmp(buf, back, sizeof buf) ? -EIO : 0;
    int crc = pm_co_close(fd);
    return rc ? rc : crc;
}

static int64_t bad_fd_read(void *arg)
{
    (void)arg;
    char b[4];
    return pm_co_read(-1, b, 4, 0);
}

static void co_file_io(void)
{
    env e = setup(0, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/rt-%d", tmp, (int)engine);
    pm_co_task *t, *u;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, file_roundtrip, path, &t), 0);
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, bad_fd_read, NULL, &u), 0);
    int64_t r = 1, r2 = 1;
    CU_ASSERT_EQUAL(pm_co_join(t, &r), 0);
    CU_ASSERT_EQUAL(r, 0);
    CU_ASSERT_EQUAL(pm_co_join(u, &r2), 0);
    CU_ASSERT_EQUAL(r2, -EBADF);
    char b[1];
    CU_ASSERT_EQUAL(pm_co_read(0, b, 1, 0), -EPERM);    /* outside a task */
    CU_ASSERT_EQUAL(pm_co_sleep(1), -EPERM);
    teardown(&e);
}
PM_TEST_BOTH(co_file_io)

/* ---- sockets ---- */

static int listener(struct sockaddr_in *sa, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *sa;
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)sa, len) == 0);
    CU_ASSERT_FATAL(listen(fd, backlog) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)sa, &len) == 0);
    return fd;
}

typedef struct echo {
    int lfd;
    struct sockaddr_in sa;
    int rounds;
} echo;

static int64_t echo_server(void *arg)
{
    echo *ec = arg;
    int c = pm_co_accept(ec->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return c;
    char buf[256];
    int64_t total = 0;
    for (;;) {
        ssize_t n = pm_co_recv(c, buf, sizeof buf, 0);
        if (n <= 0) {
            close(c);
            return n < 0 ? n : total;
        }
        total += n;
        ssize_t w = pm_co_send(c, buf, (size_t)n, 0);
        if (w != n) {
            close(c);
            return w < 0 ? w : -EIO;
        }
    }
}

static int64_t echo_client(void *arg)
{
    echo *ec = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = pm_co_connect(fd, (struct sockaddr *)&ec->sa, sizeof ec->sa);
    int64_t got = 0;
    for (int i = 0; rc == 0 && i < ec->rounds; i++) {
        char msg[32], back[32];
        int len = snprintf(msg, sizeof msg, "ping %d", i);
        if (pm_co_send(fd, msg, (size_t)len, 0) != len) {
            rc = -EIO;
            break;
        }
        ssize_t n = 0;
        while (n < len) {
            ssize_t r = pm_co_recv(fd, back + n, (size_t)(len - n), 0);
            if (r <= 0) {
                rc = r < 0 ? (int)r : -EPIPE;
                break;
            }
            n += r;
        }
        if (rc == 0 && memcmp(msg, back, (size_t)len) != 0)
            rc = -EIO;
        got += n;
    }
    close(fd);
    return rc < 0 ? rc : got;
}

static void co_sockets(void)
{
    env e = setup(0, 0);
    echo ec = {.rounds = 50};
    ec.lfd = listener(&ec.sa, 16);
    int fl = fcntl(ec.lfd, F_GETFL);
    pm_co_task *srv, *cli;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, echo_server, &ec, &srv), 0);
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, echo_client, &ec, &cli), 0);
    int64_t rs = -1, rc = -1;
    CU_ASSERT_EQUAL(pm_co_join(cli, &rc), 0);
    CU_ASSERT_EQUAL(pm_co_join(srv, &rs), 0);
    CU_ASSERT(rc > 0);
    CU_ASSERT_EQUAL(rs, rc);
    CU_ASSERT_EQUAL(fcntl(ec.lfd, F_GETFL), fl);   /* flags restored */
    close(ec.lfd);
    /* A refused connection reports the socket's error. */
    struct sockaddr_in sa;
    int l2 = listener(&sa, 1);
    close(l2);                                       /* nobody listens there now */
    ec.sa = sa;
    ec.rounds = 1;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, echo_client, &ec, &cli), 0);
    CU_ASSERT_EQUAL(pm_co_join(cli, &rc), 0);
    CU_ASSERT_EQUAL(rc, -ECONNREFUSED);
    teardown(&e);
}
PM_TEST_BOTH(co_sockets)

/* ---- cancel at every kind of await ---- */

enum { K_READ, K_WRITE, K_FSYNC, K_OPENAT, K_CLOSE, K_STATX, K_SLEEP, K_CONNECT,
       K_ACCEPT, K_RECV, K_SEND, K_AWAIT, K_WAIT, K_YIELD, NKINDS };
static const char *kind_name[] = {"read", "write", "fsync", "openat", "close", "statx",
                                  "sleep", "connect", "accept", "recv", "send", "await",
                                  "wait", "yield"};

typedef struct victim {
    int kind;
    int fd;                   /* pipe read end, full pipe write end, socket... */
    const char *path;
    struct sockaddr_in sa;
    pm_co_task *other;        /* for await/wait */
    int64_t res;
} victim;

static int64_t forever(void *arg)
{
    (void)arg;
    return pm_co_sleep(60ull * 1000000000u);
}

static int64_t victim_fn(void *arg)
{
    victim *v = arg;
    static char big[1 << 16];
    struct statx stx;
    switch (v->kind) {
    case K_READ: return pm_co_read(v->fd, big, 10, PM_LOOP_CUR);
    case K_WRITE: return pm_co_write(v->fd, big, sizeof big, PM_LOOP_CUR);
    case K_FSYNC: return pm_co_fsync(v->fd, 0);
    case K_OPENAT: return pm_co_openat(AT_FDCWD, v->path, O_RDONLY, 0);
    case K_CLOSE: return pm_co_close(v->fd);
    case K_STATX: return pm_co_statx(AT_FDCWD, v->path, 0, STATX_SIZE, &stx);
    case K_SLEEP: return pm_co_sleep(60ull * 1000000000u);
    case K_CONNECT: return pm_co_connect(v->fd, (struct sockaddr *)&v->sa, sizeof v->sa);
    case K_ACCEPT: return pm_co_accept(v->fd, NULL, NULL, 0);
    case K_RECV: return pm_co_recv(v->fd, big, 10, 0);
    case K_SEND: return pm_co_send(v->fd, big, sizeof big, 0);
    case K_AWAIT: return pm_co_await(v->other, NULL);
    case K_WAIT: return pm_co_wait(&v->other, 1, 1, 60ll * 1000000000);
    case K_YIELD: {
        int rc = pm_co_yield();             /* a cancel while runnable... */
        return rc ? rc : pm_co_sleep(1);    /* ...hits the next await */
    }
    }
    return -EINVAL;
}

typedef struct canceller {
    pm_co_task *target;
    int rc;
} canceller;

static int64_t cancel_fn(void *arg)
{
    canceller *c = arg;
    c->rc = pm_co_cancel(c->target);
    return 0;
}

/* Sets up what victim kind k needs; returns descriptors to close in fds. */
static void prepare(victim *v, int k, env *e, int fds[4])
{
    int p[2];
    fds[0] = fds[1] = fds[2] = fds[3] = -1;
    v->kind = k;
    v->path = path_tmp_file();
    switch (k) {
    case K_READ:
        CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC) == 0);
        v->fd = p[0];
        fds[0] = p[0], fds[1] = p[1];
        break;
    case K_WRITE:
        CU_ASSERT_FATAL(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        while (write(p[1], v->path, 1) == 1) {
        }
        fcntl(p[1], F_SETFL, 0);
        v->fd = p[1];
        fds[0] = p[0], fds[1] = p[1];
        break;
    case K_FSYNC:
    case K_CLOSE:
        v->fd = open(v->path, O_RDONLY | O_CLOEXEC);
        CU_ASSERT_FATAL(v->fd >= 0);
        if (k == K_FSYNC)
            fds[0] = v->fd;      /* a cancelled close may or may not have closed */
        break;
    case K_CONNECT: {
        /* A listener with a full accept queue: a further SYN goes
         * unanswered, so the connect stays pending. */
        int l = listener(&v->sa, 0);
        fds[0] = l;
        for (int i = 0; i < 2; i++) {
            int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            connect(c, (struct sockaddr *)&v->sa, sizeof v->sa);
            fds[1 + i] = c;
        }
        v->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        fds[3] = v->fd;
        break;
    }
    case K_ACCEPT:
        v->fd = listener(&v->sa, 4);
        fds[0] = v->fd;
        break;
    case K_RECV:
    case K_SEND: {
        int sv[2];
        CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        v->fd = sv[0];
        fds[0] = sv[0], fds[1] = sv[1];
        while (k == K_SEND && send(sv[0], "x", 1, MSG_DONTWAIT) == 1) {
        }                    /* nobody reads sv[1]: the next send waits */
        break;
    }
    case K_AWAIT:
    case K_WAIT:
        CU_ASSERT_FATAL(pm_co_spawn(e->s, forever, NULL, &v->other) == 0);
        break;
    default:
        break;
    }
}

static void co_cancel_every_await(void)
{
    env e = setup(0, 0);
    for (int k = 0; k < NKINDS; k++) {
        victim v = {0};
        int fds[4];
        prepare(&v, k, &e, fds);
        pm_co_task *vt, *ct;
        canceller c = {0};
        /* The victim runs first and suspends in its await; the canceller
         * runs next in the same round, before any completion can arrive. */
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, victim_fn, &v, &vt), 0);
        c.target = vt;
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, cancel_fn, &c, &ct), 0);
        int64_t r = 0;
        CU_ASSERT_EQUAL(pm_co_join(vt, &r), 0);
        CU_ASSERT_EQUAL(pm_co_join(ct, NULL), 0);
        CU_ASSERT_EQUAL(c.rc, 0);
        if (r != -ECANCELED)
            fprintf(stderr, "cancel at %s: %lld\n", kind_name[k], (long long)r);
        CU_ASSERT_EQUAL(r, -ECANCELED);
        if (v.other) {
            CU_ASSERT_FALSE(pm_co_done(v.other));   /* only the waiter was cancelled */
            CU_ASSERT_EQUAL(pm_co_cancel(v.other), 0);
            CU_ASSERT_EQUAL(pm_co_join(v.other, &r), 0);
            CU_ASSERT_EQUAL(r, -ECANCELED);
        }
        for (int i = 0; i < 4; i++)
            if (fds[i] >= 0)
                close(fds[i]);
    }
    teardown(&e);
}
PM_TEST_BOTH(co_cancel_every_await)

static int ran_flag;

static int64_t set_flag(void *arg)
{
    (void)arg;
    ran_flag = 1;
    return 5;
}

static void co_cancel_states(void)
{
    env e = setup(0, 0);
    /* Before its first run: never runs, result -ECANCELED. */
    pm_co_task *t;
    ran_flag = 0;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, set_flag, NULL, &t), 0);
    CU_ASSERT_EQUAL(pm_co_cancel(t), 0);
    int64_t r = 0;
    CU_ASSERT_EQUAL(pm_co_join(t, &r), 0);
    CU_ASSERT_EQUAL(r, -ECANCELED);
    CU_ASSERT_EQUAL(ran_flag, 0);
    /* Finished: -EALREADY, result kept. */
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, set_flag, NULL, &t), 0);
    CU_ASSERT_EQUAL(pm_co_await(t, &r), 0);
    CU_ASSERT_EQUAL(r, 5);
    CU_ASSERT_EQUAL(pm_co_cancel(t), -EALREADY);
    CU_ASSERT_EQUAL(pm_co_join(t, NULL), 0);
    /* Awaiting itself. */
    teardown(&e);
}
PM_TEST_BOTH(co_cancel_states)

/* ---- children: spawned from a task with sched NULL ---- */

static int64_t child(void *arg)
{
    uintptr_t ms = (uintptr_t)arg;
    int rc = pm_co_sleep(ms * 1000000u);
    return rc < 0 ? rc : (int64_t)ms;
}

static int64_t parent(void *arg)
{
    (void)arg;
    pm_co_task *kids[3];
    for (uintptr_t i = 0; i < 3; i++) {
        int rc = pm_co_spawn(NULL, child, (void *)(3 - i), &kids[i]);
        if (rc < 0)
            return rc;
    }
    int64_t res[3];
    int rc = pm_co_gather(kids, 3, res);
    for (int i = 0; i < 3; i++)
        pm_co_task_free(kids[i]);
    return rc < 0 ? rc : res[0] * 100 + res[1] * 10 + res[2];
}

/* A parent cancelled while its children sleep passes the cancel on and
 * waits for them: they have all ended when it returns. */
typedef struct family {
    pm_co_task *kids[4];
    int ended_before_parent;
    int kid_results_cancelled;
} family;

static int64_t long_child(void *arg)
{
    (void)arg;
    return pm_co_sleep(60ull * 1000000000u);
}

static int64_t careful_parent(void *arg)
{
    family *f = arg;
    for (int i = 0; i < 4; i++)
        if (pm_co_spawn(NULL, long_child, NULL, &f->kids[i]) < 0)
            return -ENOMEM;
    int first = pm_co_gather(f->kids, 4, NULL);
    if (first == -ECANCELED)            /* pass it on */
        for (int i = 0; i < 4; i++)
            pm_co_cancel(f->kids[i]);
    for (int i = 0; i < 4; i++) {
        int64_t r = 0;
        int rc;
        while ((rc = pm_co_await(f->kids[i], &r)) == -ECANCELED) {
        }                                /* a cancel again: keep waiting */
        f->ended_before_parent += pm_co_done(f->kids[i]);
        f->kid_results_cancelled += r == -ECANCELED;
        pm_co_task_free(f->kids[i]);
    }
    return first;
}

static int64_t self_free(void *arg)
{
    pm_co_sched_free(arg);          /* refused inside a task */
    return pm_co_sleep(1000);
}

static void co_cancel_family(void)
{
    env e = setup(0, 0);
    family f = {0};
    pm_co_task *p, *q;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, careful_parent, &f, &p), 0);
    CU_ASSERT_EQUAL(pm_co_wait(&p, 1, 1, 20 * 1000000), -ETIMEDOUT);   /* all asleep */
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_co_cancel(p), 0);
    int64_t r = 0;
    CU_ASSERT_EQUAL(pm_co_join(p, &r), 0);
    CU_ASSERT(pm_test_now() - t0 < 1.0);
    CU_ASSERT_EQUAL(r, -ECANCELED);
    CU_ASSERT_EQUAL(f.ended_before_parent, 4);
    CU_ASSERT_EQUAL(f.kid_results_cancelled, 4);
    /* cancel_all: every sleeper, once. */
    pm_co_task *t[3];
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, long_child, NULL, &t[i]), 0);
    CU_ASSERT_EQUAL(pm_co_wait(t, 3, 1, 10 * 1000000), -ETIMEDOUT);
    CU_ASSERT_EQUAL(pm_co_sched_cancel_all(e.s), 3);
    int64_t res[3];
    CU_ASSERT_EQUAL(pm_co_gather(t, 3, res), -ECANCELED);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(res[i], -ECANCELED);
        pm_co_task_free(t[i]);
    }
    CU_ASSERT_EQUAL(pm_co_sched_cancel_all(e.s), 0);
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, self_free, e.s, &q), 0);
    CU_ASSERT_EQUAL(pm_co_join(q, &r), 0);
    CU_ASSERT_EQUAL(r, 0);
    teardown(&e);
}
PM_TEST_BOTH(co_cancel_family)

static void co_children(void)
{
    env e = setup(0, 0);
    pm_co_task *t;
    int64_t r = 0;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, parent, NULL, &t), 0);
    CU_ASSERT_EQUAL(pm_co_join(t, &r), 0);
    CU_ASSERT_EQUAL(r, 321);
    teardown(&e);
}
PM_TEST_BOTH(co_children)

/* ---- waiting ---- */

static int64_t sleep_ms(void *arg)
{
    int rc = pm_co_sleep((uint64_t)(uintptr_t)arg * 1000000u);
    return rc < 0 ? rc : (int64_t)(uintptr_t)arg;
}

typedef struct waiter_args {
    pm_co_task **tasks;
    size_t n, need;
    int64_t tmo;
} waiter_args;

static int64_t waiter_fn(void *arg)
{
    waiter_args *w = arg;
    return pm_co_wait(w->tasks, w->n, w->need, w->tmo);
}

static int64_t self_await(void *arg)
{
    (void)arg;
    return pm_co_await(pm_co_current(), NULL);
}

static void co_wait_timeout(void)
{
    env e = setup(0, 0);
    pm_co_task *t[3];
    uintptr_t ms[] = {5, 200, 400};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, sleep_ms, (void *)ms[i], &t[i]), 0);
    /* Outside tasks: the first, then a timeout. */
    double t0 = pm_test_now();
    CU_ASSERT_EQUAL(pm_co_wait(t, 3, 1, -1), 1);
    CU_ASSERT_EQUAL(pm_co_wait(t, 3, 3, 20 * 1000000), -ETIMEDOUT);
    CU_ASSERT(pm_test_now() - t0 < 0.19);   /* before the 200 ms task */
    /* Inside a task: a timeout, then enough. */
    waiter_args wa = {t, 3, 3, 10 * 1000000};
    pm_co_task *w;
    int64_t r = 0;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, waiter_fn, &wa, &w), 0);
    CU_ASSERT_EQUAL(pm_co_join(w, &r), 0);
    CU_ASSERT_EQUAL(r, -ETIMEDOUT);
    wa.need = 2;
    wa.tmo = -1;
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, waiter_fn, &wa, &w), 0);
    CU_ASSERT_EQUAL(pm_co_join(w, &r), 0);
    CU_ASSERT_EQUAL(r, 2);
    CU_ASSERT(pm_co_done(t[1]) && !pm_co_done(t[2]));
    int64_t res[3];
    CU_ASSERT_EQUAL(pm_co_gather(t, 3, res), 0);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(res[i], (int64_t)ms[i]);
        pm_co_task_free(t[i]);
    }
    CU_ASSERT_EQUAL(pm_co_wait(t, 1, 2, -1), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, self_await, NULL, &w), 0);
    CU_ASSERT_EQUAL(pm_co_join(w, &r), 0);
    CU_ASSERT_EQUAL(r, -EDEADLK);
    /* gather reports the first failure in index order. */
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, sleep_ms, (void *)(uintptr_t)1, &t[0]), 0);
    CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, bad_fd_read, NULL, &t[1]), 0);
    CU_ASSERT_EQUAL(pm_co_gather(t, 2, res), -EBADF);
    CU_ASSERT_EQUAL(res[0], 1);
    pm_co_task_free(t[0]);
    pm_co_task_free(t[1]);
    teardown(&e);
}
PM_TEST_BOTH(co_wait_timeout)

/* ---- the cooperative contract ---- */

typedef struct spin {
    double secs;
    int yield;
} spin;

static int64_t spinner(void *arg)
{
    spin *sp = arg;
    double end = pm_test_now() + sp->secs;
    while (pm_test_now() < end)
        if (sp->yield)
            pm_co_yield();
    return 0;
}

static int64_t timed_sleep(void *arg)
{
    double *woke = arg;
    double t0 = pm_test_now();
    int rc = pm_co_sleep(10 * 1000000);
    *woke = pm_test_now() - t0;
    return rc;
}

static void co_never_yields(void)
{
    env e = setup(0, 0);
    for (int y = 0; y < 2; y++) {
        spin sp = {0.2, y};
        double woke = -1;
        pm_co_task *a, *b;
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, timed_sleep, &woke, &a), 0);
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, spinner, &sp, &b), 0);
        CU_ASSERT_EQUAL(pm_co_join(a, NULL), 0);
        CU_ASSERT_EQUAL(pm_co_join(b, NULL), 0);
        if (y == 0) {        /* held the thread: the timer fired, late */
            CU_ASSERT(woke >= 0.19);
        } else {             /* yielded: the timer fired about on time */
            CU_ASSERT(woke >= 0.009 && woke < 0.15);
        }
    }
    teardown(&e);
}
PM_TEST_BOTH(co_never_yields)

/* ---- stack overflow ---- */

static void *guard_lo;
static size_t guard_len;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    char *a = si->si_addr;
    _exit(a >= (char *)guard_lo && a < (char *)guard_lo + guard_len ? 42 : 43);
}

static int recurse(volatile char *prev, int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[511] = prev ? prev[0] : 0;
    if (depth > 1000000000)
        return 0;
    return recurse(frame, depth + 1) + frame[1];
}

static int64_t overflow(void *arg)
{
    (void)arg;
    if (pm__co_task_guard(pm_co_current(), &guard_lo, &guard_len) != 0)
        _exit(44);
    return recurse(NULL, 0);
}

static void co_stack_overflow(void)
{
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        static char alt[1 << 16];
        stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
        sigaltstack(&ss, NULL);
        struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK};
        sigaction(SIGSEGV, &sa, NULL);
        env e = setup(0, 32 << 10);
        pm_co_task *t;
        if (pm_co_spawn(e.s, overflow, NULL, &t) != 0)
            _exit(45);
        pm_co_join(t, NULL);
        _exit(0);              /* not reached: the recursion has no end */
    }
    int st;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 42);
    fprintf(stderr, "guard: %s, switch: %s\n", pm__co_guard_kind(), pm__co_switch_kind());
}

/* ---- running out of memory ---- */

#ifndef PM_TEST_SANITIZED
static int64_t nap(void *arg)
{
    (void)arg;
    return pm_co_sleep(1000000);
}
#endif

/* In a child with its address space capped: spawn fails with -ENOMEM once
 * stacks no longer fit, and the scheduler goes on with the tasks it has. */
static void co_spawn_enomem(void)
{
#ifdef PM_TEST_SANITIZED
    pm_test_skip("address-space limits and sanitizer shadow memory do not mix");
#else
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        env e = setup(0, 1 << 20);          /* 1 MiB of address space a stack */
        static pm_co_task *t[4096];
        struct rlimit rl = {256u << 20, 256u << 20};
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (!f || fscanf(f, "%lu", &pages) != 1)
            _exit(10);
        fclose(f);
        rl.rlim_cur = rl.rlim_max = pages * 4096ul + (64ul << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(11);
        int n = 0, rc = 0;
        while (n < 4096 && (rc = pm_co_spawn(e.s, nap, NULL, &t[n])) == 0)
            n++;
        if (rc != -ENOMEM || n < 8 || n > 64)
            _exit(12);
        if (pm_co_gather(t, (size_t)n, NULL) != 0)
            _exit(13);
        for (int i = 0; i < n; i++)
            pm_co_task_free(t[i]);
        if (pm_co_spawn(e.s, nap, NULL, &t[0]) != 0 || pm_co_join(t[0], NULL) != 0)
            _exit(14);                        /* stacks came back to the cache */
        _exit(0);
    }
    int st;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st));
    CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
#endif
}

/* ---- many tasks ---- */

typedef struct many {
    const char *path;
    unsigned i;
    int64_t sum;
} many;

static int64_t many_fn(void *arg)
{
    many *m = arg;
    int rc = pm_co_sleep((m->i * 7919u % 5000u) * 1000u);   /* 0-5 ms */
    if (rc < 0)
        return rc;
    char buf[8];
    int fd = pm_co_openat(AT_FDCWD, m->path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    ssize_t n = pm_co_read(fd, buf, sizeof buf, m->i % 8);
    pm_co_close(fd);
    if (n < 0)
        return n;
    m->sum = buf[0];
    return (int64_t)n;
}

static void co_many_tasks(void)
{
    enum { N = 10000 };
    env e = setup(256, 16 << 10);
    char path[4096];
    snprintf(path, sizeof path, "%s/many", tmp);
    CU_ASSERT_EQUAL_FATAL(pm_test_write_file(path, "0123456789abcdef", 16), 0);
    many *m = calloc(N, sizeof *m);
    pm_co_task **t = calloc(N, sizeof *t);
    CU_ASSERT_FATAL(m && t);
    for (unsigned i = 0; i < N; i++) {
        m[i] = (many){path, i, -1};
        CU_ASSERT_EQUAL_FATAL(pm_co_spawn(e.s, many_fn, &m[i], &t[i]), 0);
    }
    int64_t *res = calloc(N, sizeof *res);
    CU_ASSERT_EQUAL(pm_co_gather(t, N, res), 0);
    int bad = 0;
    for (unsigned i = 0; i < N; i++) {
        bad += res[i] != 8 || m[i].sum != "0123456789abcdef"[i % 8];
        CU_ASSERT_EQUAL(pm_co_join(t[i], NULL), 0);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* Detached tasks, and tasks left running when the scheduler is freed. */
    for (unsigned i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(pm_co_spawn(e.s, forever, NULL, i % 2 ? NULL : &t[i]), 0);
    free(res);
    free(m);
    free(t);
    double t0 = pm_test_now();
    teardown(&e);                    /* cancels the 100 sleepers */
    CU_ASSERT(pm_test_now() - t0 < 5);
}
PM_TEST_BOTH(co_many_tasks)

static void co_bad_args(void)
{
    pm_loop *l;
    CU_ASSERT_EQUAL_FATAL(pm_loop_new(NULL, &l), 0);
    pm_co_sched *s = NULL;
    pm_co_opts o = {.size = sizeof o, .stack_size = 1024};
    CU_ASSERT_EQUAL(pm_co_sched_new(l, &o, &s), -EINVAL);
    o.size = 1;
    CU_ASSERT_EQUAL(pm_co_sched_new(l, &o, &s), -EINVAL);
    CU_ASSERT_EQUAL(pm_co_sched_new(NULL, NULL, &s), -EINVAL);
    CU_ASSERT_EQUAL_FATAL(pm_co_sched_new(l, NULL, &s), 0);
    CU_ASSERT_EQUAL(pm_co_spawn(s, NULL, NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(pm_co_spawn(NULL, set_flag, NULL, NULL), -EINVAL);   /* outside tasks */
    CU_ASSERT_EQUAL(pm_co_join(NULL, NULL), -EINVAL);
    CU_ASSERT_EQUAL(pm_co_cancel(NULL), -EINVAL);
    CU_ASSERT_PTR_NULL(pm_co_current());
    CU_ASSERT_EQUAL(pm_co_yield(), -EPERM);
    pm_co_sched_free(s);
    pm_co_sched_free(NULL);
    pm_loop_free(l);
}

static const char *path_tmp_file(void)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/victim", tmp);
    return buf;
}

int main(void)
{
    tmp = pm_test_tmpdir();
    if (!tmp || pm_test_write_file(path_tmp_file(), "victim", 6) != 0)
        return 1;
    pm_test_case cases[] = {
        PM_TEST_CASE2(co_ordering, "resumptions in deadline, spawn and yield order"),
        PM_TEST_CASE2(co_file_io, "openat, write, fsync, statx, read, close"),
        PM_TEST_CASE2(co_sockets, "connect, accept, send, recv; refused"),
        PM_TEST_CASE2(co_cancel_every_await, "cancel at every kind of await"),
        PM_TEST_CASE2(co_cancel_states, "cancel before the first run, after the end"),
        PM_TEST_CASE2(co_children, "a task spawns and gathers children (sched NULL)"),
        PM_TEST_CASE2(co_cancel_family, "a cancelled parent passes it on and awaits its children; cancel_all"),
        PM_TEST_CASE2(co_wait_timeout, "wait: first, all, timeout; gather; self-await"),
        PM_TEST_CASE2(co_never_yields, "a task that never yields delays timers, yield does not"),
        PM_TEST_CASE2(co_many_tasks, "10,000 tasks; freed with tasks pending"),
        {"stack overflow hits the guard page (child process)", co_stack_overflow},
        {"spawn fails with -ENOMEM when stacks no longer fit (child process)", co_spawn_enomem},
        {"bad arguments", co_bad_args},
        {NULL, NULL},
    };
    int rc = pm_test_run("co", cases);
    pm_test_rmtree(tmp);
    free(tmp);
    return rc;
}
