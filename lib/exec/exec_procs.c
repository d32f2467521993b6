/* exec_procs.c - the executor's process backend: work runs in worker
 * processes forked from a clean fork server.
 *
 * Processes. pm_pool_new starts a fork server: /proc/self/exe is spawned
 * again (posix_spawn, so exec) with PMAP__FORKSERVER=<fd> in its
 * environment, and a constructor of this file (procs_ctor) takes over that
 * process before main: it never returns to the program, has one thread, has
 * never entered an OpenMP region and holds no lock. Workers are forked from
 * it, so they inherit that clean state whatever the parent did before (GNU
 * libgomp is not fork-safe after a parallel region, GCC bug 60035). The
 * server talks to the parent over a socket pair: it says hello first (a
 * program that runs its main instead is killed: -ENOEXEC), then each
 * "spawn" carries a worker's shared-memory file (SCM_RIGHTS), the reply its
 * pid and a pidfd.
 *
 * Proxies. The parent keeps the thread backend (exec_threads.c) unchanged:
 * `workers` threads and one queue, so submit, cancel, close, terminate,
 * join and the slot budget behave exactly as on threads. Each thread is the
 * proxy of one worker process: a work item that runs user code (pool.c,
 * pool_map.c, pool_imap.c) calls pm__procs_task or pm__procs_map on its
 * proxy thread, which copies the arguments into the worker's slot, posts a
 * request and waits for it. Work items that need no user code in another
 * process (a future's completion, an iterator's bookkeeping) run on the
 * proxy thread as on threads.
 *
 * Shared memory. One memfd per worker: a header page (slot_hdr, mapped for
 * the life of the pool) and a data area after it (arguments, input items,
 * results, statuses), grown by the parent when a request needs more; the
 * worker remaps it when the size in the header changed. Requests are
 * numbered: the parent stores `req`, the worker stores `done` = req when it
 * finishes. Either side spins a little, then sleeps on the word with a
 * shared futex; a `*_waits` flag tells the other side whether to wake it.
 *
 * Batches of tasks. pm__procs_tasks sends several tasks (pool.c takes the
 * ones queued behind the task it popped, exec's take) in one REQ_TASKS
 * request: a record per task (function, argument and result places) then
 * their bytes. The worker runs them in order, storing `cur` before each
 * and bumping `ndone` after each; the proxy reports every task it sees
 * counted (result bytes, then its done callback: the future completes),
 * while it spins, and when asleep by looking every BATCH_TICK_NS rather
 * than being woken per task (the point is fewer wake-ups); the last one
 * comes with the request's completion. A request holds at most TASKS_MAX
 * tasks, what fits DATA_MAX and what the worker may run before max_tasks
 * (which counts tasks); a death fails task `ndone` and the rest go in new
 * requests to the replacement. Terminate ends a batch before any task but
 * its first, like a map between items.
 *
 * Deaths. The server reaps its children (signalfd on SIGCHLD), writes the
 * wait status into the dead worker's header, sets DEAD_BIT in `done` and
 * wakes the parent's futex: the proxy learns of the death in the same wait
 * as of a completion. For a map, the worker stores in `cur` the index of
 * the item it starts before running it, so the proxy fails exactly that
 * item (PM_EWORKER_* status) and sends the rest of the batch to a new
 * worker. A timeout runs from the start of each task or item (the worker
 * stamps `item_ns` as it starts one, when a timeout is set): past it the
 * proxy kills the worker through its pidfd, and the item fails with
 * -ETIMEDOUT. A worker is replaced lazily, by the next request of its proxy.
 * A worker that vanishes with no word from the server for about a second
 * means the server was killed: the work fails with -EPIPE.
 *
 * Functions cross processes as (module, offset) pairs: the module holding
 * the address (dl_iterate_phdr; "" is the main program) and the offset from
 * its load address; the worker finds the same module in its own address
 * space (dlopen if it is not loaded there), so ASLR and shared libraries
 * work. Data pointers do not cross: arguments are bytes (arg_size) or an
 * opaque value passed as is.
 *
 * Parent death. The server blocks on the socket; when the parent dies the
 * socket reads EOF and the server kills its workers and exits. Workers set
 * PR_SET_PDEATHSIG(SIGKILL) against the server and check getppid after
 * setting it. pm_pool_free closes the socket and waits for the server,
 * which reaps every worker first: no process is left behind.
 *
 * Lock order: the proxy threads share nothing but sock_mu (spawning).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>              /* dl_iterate_phdr */
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>          /* memfd_create */
#include <sys/prctl.h>         /* PR_SET_PDEATHSIG */
#include <sys/resource.h>      /* RLIMIT_AS */
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>       /* pidfd_open, pidfd_send_signal */
#include <sys/wait.h>
#include <unistd.h>

#include "exec/exec.h"

#define ENV_MARK "PMAP__FORKSERVER"
#define SERVER_FD 3
#define HDR_SIZE 4096
#define DATA_MIN ((size_t)1 << 20)
#define DATA_MAX ((size_t)64 << 20)    /* a batch is cut to fit, unless one item needs more */
#define DEAD_BIT 0x80000000u
#define SPIN_NS 20000
#define TICK_S 0.2                     /* re-check a silent worker this often */
#define GONE_NS 1000000000LL           /* how long a dead worker's server may
                                          stay silent about it */
#define TASKS_MAX 64                   /* tasks in one request */
#define BATCH_TICK_NS 1000000          /* a proxy looks for finished tasks of a
                                          batch this often while it sleeps */
#define SERVER_HELLO 0x706d6170        /* the server's first message ("pmap") */
#define HELLO_MS 20000                 /* how long a server may take to start */

extern char **environ;

/* ---- the shared header ---- */

enum { REQ_INIT = 1, REQ_TASK, REQ_ITEMS, REQ_TASKS };

typedef struct fnref {
    char module[240];          /* dl_iterate_phdr's name; "": the program */
    uint64_t offset;           /* from the module's load address */
} fnref;

typedef struct slot_hdr {
    _Atomic uint32_t req;          /* last request posted (parent) */
    _Atomic uint32_t done;         /* last request finished | DEAD_BIT (server) */
    _Atomic uint32_t parent_waits; /* the parent sleeps on done */
    _Atomic uint32_t worker_waits; /* the worker sleeps on req */
    _Atomic uint32_t stop;         /* terminate: stop a map between items */
    int32_t wstatus;               /* the worker's wait status (server) */
    _Atomic uint64_t cur;          /* items: the one running (worker) */
    _Atomic uint64_t ndone;        /* tasks: how many finished (worker) */
    _Atomic int64_t item_ns;       /* when the running item or task started
                                      (CLOCK_MONOTONIC; set when timed) */
    uint32_t timed;                /* a timeout applies: keep item_ns */
    uint64_t data_size;            /* size of the data area (parent) */
    /* the request */
    uint32_t kind;
    int32_t status;                /* task or init: its return */
    fnref fn;
    uint64_t arg;                  /* opaque argument when arg_size == 0 */
    uint64_t arg_size, in_size, out_size, count, result_size;
    uint64_t ran;                  /* items: how many ran (stop) */
} slot_hdr;

_Static_assert(sizeof(slot_hdr) <= HDR_SIZE, "header fits its page");

/* A batch of tasks (REQ_TASKS): count records at the start of the data
 * area, then each task's argument and result bytes where they say. */
typedef struct trec {
    fnref fn;
    uint64_t arg;                  /* opaque argument when arg_size == 0 */
    uint64_t arg_off, arg_size, res_off, res_size;
    int32_t status;                /* the task's return (worker) */
    int32_t pad;
} trec;

/* Where a request's parts sit in the data area. */
typedef struct layout {
    size_t arg, in, out, st, end;
} layout;

static size_t up64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

/* SIZE_MAX in end when it overflows. */
static layout layout_of(size_t arg, size_t isz, size_t osz, size_t count, size_t res)
{
    layout l = {0};
    l.in = up64(arg);
    if ((isz && count > (SIZE_MAX / 4) / isz) || (osz && count > (SIZE_MAX / 4) / osz) ||
        count > SIZE_MAX / 16 || arg > SIZE_MAX / 4 || res > SIZE_MAX / 4) {
        l.end = SIZE_MAX;
        return l;
    }
    l.out = l.in + up64(isz * count);
    l.st = l.out + up64(osz * count + res);
    l.end = l.st + up64(count * sizeof(int32_t));
    return l;
}

static long futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)w, op, val, ts, NULL, 0);
}

/* ---- worker status codes ---- */

static char sig_text[65][80];
static char exit_text[256][40];
static pthread_once_t text_once = PTHREAD_ONCE_INIT;

static void text_init(void)
{
    for (int s = 1; s < 65; s++) {
        const char *d = sigdescr_np(s);
        snprintf(sig_text[s], sizeof sig_text[s], "worker killed by signal %d (%s)", s,
                 d ? d : "unknown signal");
    }
    for (int c = 0; c < 256; c++)
        snprintf(exit_text[c], sizeof exit_text[c], "worker exited with status %d", c);
}

const char *pm__worker_strerror(int err)
{
    int sig = PM_WORKER_SIGNAL(err), code = PM_WORKER_EXIT(err);
    if (sig <= 0 && code < 0)
        return NULL;
    pthread_once(&text_once, text_init);
    if (sig > 0)
        return sig < 65 ? sig_text[sig] : "worker killed by a signal";
    return exit_text[code];
}

static int status_of_wait(int ws)
{
    if (WIFSIGNALED(ws))
        return -(PM_EWORKER_SIGNALED + (WTERMSIG(ws) & 0xff));
    return -(PM_EWORKER_EXITED + (WEXITSTATUS(ws) & 0xff));
}

/* ---- functions across processes ---- */

typedef struct find_ctx {
    uintptr_t addr;
    fnref *ref;
    uintptr_t lo, hi, base;
    int found;
} find_ctx;

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    find_ctx *c = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (c->addr >= lo && c->addr < hi) {
            snprintf(c->ref->module, sizeof c->ref->module, "%s",
                     info->dlpi_name ? info->dlpi_name : "");
            c->lo = lo;
            c->hi = hi;
            c->base = info->dlpi_addr;
            c->found = 1;
            return 1;
        }
    }
    return 0;
}

/* The (module, offset) of a code address; -EINVAL when no module holds it.
 * The last module found is kept per thread: a pool calls few functions. */
static int fn_ref(const void *fn, fnref *ref)
{
    static _Thread_local struct { uintptr_t lo, hi, base; fnref ref; } last;
    uintptr_t a = (uintptr_t)fn;
    if (a >= last.lo && a < last.hi) {
        memcpy(ref->module, last.ref.module, sizeof ref->module);
        ref->offset = a - last.base;
        return 0;
    }
    find_ctx c = {.addr = a, .ref = ref};
    dl_iterate_phdr(find_cb, &c);
    if (!c.found)
        return -EINVAL;
    ref->offset = a - c.base;
    last.lo = c.lo;
    last.hi = c.hi;
    last.base = c.base;
    last.ref = *ref;
    return 0;
}

typedef struct base_ctx {
    const char *name;
    uintptr_t base;
    int found;
} base_ctx;

static int base_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    base_ctx *c = arg;
    if (strcmp(info->dlpi_name ? info->dlpi_name : "", c->name) != 0)
        return 0;
    c->base = info->dlpi_addr;
    c->found = 1;
    return 1;
}

/* The worker's address for ref, or NULL (worker side, one thread). */
static void *fn_resolve(const fnref *ref)
{
    static struct { char name[240]; uintptr_t base; } cache[16];
    static int ncache;
    for (int i = 0; i < ncache; i++)
        if (strcmp(cache[i].name, ref->module) == 0)
            return (void *)(cache[i].base + ref->offset);
    base_ctx c = {.name = ref->module};
    dl_iterate_phdr(base_cb, &c);
    if (!c.found && ref->module[0] && dlopen(ref->module, RTLD_NOW))
        dl_iterate_phdr(base_cb, &c);
    if (!c.found)
        return NULL;
    if (ncache < 16) {
        memcpy(cache[ncache].name, ref->module, sizeof cache[ncache].name);
        cache[ncache++].base = c.base;
    }
    return (void *)(c.base + ref->offset);
}

/* ---- the worker process ---- */

typedef struct wmap {
    slot_hdr *hdr;
    unsigned char *data;
    size_t len;
    int fd;
} wmap;

static void worker_remap(wmap *m)
{
    size_t want = m->hdr->data_size;
    if (want == m->len)
        return;
    if (m->data)
        munmap(m->data, m->len);
    m->data = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, HDR_SIZE);
    if (m->data == MAP_FAILED)
        _exit(120);
    m->len = want;
}

static void *worker_arg(slot_hdr *h, unsigned char *data, layout l)
{
    return h->arg_size ? (void *)(data + l.arg) : (void *)(uintptr_t)h->arg;
}

static void worker_items(slot_hdr *h, unsigned char *data, pm_map_fn fn)
{
    layout l = layout_of(h->arg_size, h->in_size, h->out_size, h->count, 0);
    void *arg = worker_arg(h, data, l);
    int32_t *st = (int32_t *)(data + l.st);
    size_t i, n = h->count;
    for (i = 0; i < n; i++) {
        atomic_store_explicit(&h->cur, i, memory_order_release);
        if (h->timed && i)
            atomic_store_explicit(&h->item_ns, pm__now_ns(), memory_order_relaxed);
        if (atomic_load_explicit(&h->stop, memory_order_relaxed))
            break;
        st[i] = fn ? fn(data + l.in + i * h->in_size, data + l.out + i * h->out_size, arg)
                   : -EINVAL;
    }
    h->ran = i;
    atomic_store_explicit(&h->cur, n, memory_order_release);
}

/* Runs one task: its result_size bytes of result go to out. */
static int32_t worker_task(void *fn, void *arg, unsigned char *out, size_t result_size)
{
    void *res = result_size ? out : NULL;
    int32_t st = fn ? ((pm_task_fn)fn)(arg, &res) : -EINVAL;
    if (res && result_size && res != out)
        memmove(out, res, result_size);   /* it pointed elsewhere */
    return st;
}

/* A batch: the tasks in order, `cur` the one running, `ndone` bumped after
 * each (the proxy reports them as it sees the count grow); terminate
 * (`stop`) ends it between two tasks: the first one always runs, as a
 * single task would. */
static void worker_tasks(slot_hdr *h, unsigned char *data)
{
    trec *r = (trec *)data;
    size_t i, n = h->count;
    for (i = 0; i < n; i++) {
        atomic_store_explicit(&h->cur, i, memory_order_release);
        if (h->timed && i)
            atomic_store_explicit(&h->item_ns, pm__now_ns(), memory_order_relaxed);
        if (i && atomic_load_explicit(&h->stop, memory_order_relaxed))
            break;
        void *arg = r[i].arg_size ? (void *)(data + r[i].arg_off) : (void *)(uintptr_t)r[i].arg;
        r[i].status = worker_task(fn_resolve(&r[i].fn), arg, data + r[i].res_off, r[i].res_size);
        atomic_store_explicit(&h->ndone, i + 1, memory_order_release);
    }
    h->ran = i;
}

static void worker_serve(slot_hdr *h, unsigned char *data)
{
    if (h->kind == REQ_TASKS) {
        worker_tasks(h, data);
        return;
    }
    layout l = layout_of(h->arg_size, 0, 0, 0, h->result_size);
    void *fn = fn_resolve(&h->fn);
    switch (h->kind) {
    case REQ_INIT:
        h->status = fn ? ((pm_init_fn)fn)(worker_arg(h, data, l)) : -EINVAL;
        break;
    case REQ_TASK:
        h->status = worker_task(fn, worker_arg(h, data, l), data + l.out, h->result_size);
        break;
    case REQ_ITEMS:
        worker_items(h, data, (pm_map_fn)fn);
        break;
    }
}

static uint32_t worker_wait(slot_hdr *h, uint32_t last)
{
    int64_t end = pm__now_ns() + SPIN_NS;
    for (unsigned i = 1;; i++) {
        uint32_t r = atomic_load_explicit(&h->req, memory_order_acquire);
        if (r != last)
            return r;
        pm__cpu_relax();
        if ((i & 63) == 0 && pm__now_ns() > end)
            break;
    }
    for (;;) {
        atomic_store(&h->worker_waits, 1);
        uint32_t r = atomic_load(&h->req);
        if (r == last)
            futex(&h->req, FUTEX_WAIT, last, NULL);
        atomic_store(&h->worker_waits, 0);
        r = atomic_load_explicit(&h->req, memory_order_acquire);
        if (r != last)
            return r;
    }
}

static void worker_limit(uint64_t extra)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    /* The shared area is not the task's: it may grow to DATA_MAX (more
     * only for a batch of one item larger than that). */
    rlim_t lim = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + HDR_SIZE + DATA_MAX + extra;
    struct rlimit rl = {lim, lim};
    setrlimit(RLIMIT_AS, &rl);
}

static _Noreturn void worker_main(int fd, uint64_t mem_limit, pid_t server)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server)
        _exit(121);                   /* the server died before we could ask */
    prctl(PR_SET_NAME, "pmap-worker");
    if (mem_limit)
        worker_limit(mem_limit);
    wmap m = {.fd = fd};
    m.hdr = mmap(NULL, HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m.hdr == MAP_FAILED)
        _exit(120);
    uint32_t last = 0;
    for (;;) {
        last = worker_wait(m.hdr, last);
        worker_remap(&m);
        worker_serve(m.hdr, m.data);
        atomic_store(&m.hdr->done, last);
        if (atomic_load(&m.hdr->parent_waits))
            futex(&m.hdr->done, FUTEX_WAKE, INT_MAX, NULL);
    }
}

/* ---- the fork server ---- */

typedef struct spawn_msg {
    uint64_t mem_limit;
} spawn_msg;

typedef struct spawn_reply {
    int32_t pid;
    int32_t err;
} spawn_reply;

typedef struct srv_rec {
    pid_t pid;
    slot_hdr *hdr;
} srv_rec;

typedef struct srv {
    int sock, sfd;
    srv_rec *recs;
    size_t n, cap;
} srv;

static int send_fd(int sock, const void *buf, size_t len, int fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {(void *)buf, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t rc;
    while ((rc = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return rc == (ssize_t)len ? 0 : -EPIPE;
}

/* Receives len bytes and at most one descriptor (*fd, -1 if none).
 * Returns 0, or -EPIPE at EOF or on error. */
static int recv_fd(int sock, void *buf, size_t len, int *fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {buf, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    *fd = -1;
    ssize_t rc;
    while ((rc = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = rc > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (c && c->cmsg_type == SCM_RIGHTS)
        memcpy(fd, CMSG_DATA(c), sizeof *fd);
    return rc == (ssize_t)len ? 0 : -EPIPE;
}

static void srv_reap(srv *s)
{
    int ws;
    pid_t pid;
    while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
        for (size_t i = 0; i < s->n; i++) {
            if (s->recs[i].pid != pid)
                continue;
            slot_hdr *h = s->recs[i].hdr;
            h->wstatus = ws;
            atomic_fetch_or(&h->done, DEAD_BIT);
            futex(&h->done, FUTEX_WAKE, INT_MAX, NULL);
            munmap(h, HDR_SIZE);
            s->recs[i] = s->recs[--s->n];
            break;
        }
    }
}

static void srv_spawn(srv *s, const spawn_msg *m, int fd)
{
    spawn_reply r = {0, 0};
    slot_hdr *h = mmap(NULL, HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED || (s->n == s->cap && !(s->recs = realloc(s->recs,
                                                  (s->cap = s->cap * 2 + 8) * sizeof *s->recs)))) {
        r.err = -ENOMEM;
        send_fd(s->sock, &r, sizeof r, -1);
        return;
    }
    pid_t server = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < s->n; i++)
            munmap(s->recs[i].hdr, HDR_SIZE);    /* other workers' headers */
        close(s->sock);
        close(s->sfd);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        worker_main(fd, m->mem_limit, server);
    }
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (pid < 0 || pidfd < 0) {
        r.err = -errno;
        munmap(h, HDR_SIZE);
        if (pid > 0)
            kill(pid, SIGKILL);
    } else {
        s->recs[s->n++] = (srv_rec){pid, h};
        r.pid = pid;
    }
    send_fd(s->sock, &r, sizeof r, pidfd);
    if (pidfd >= 0)
        close(pidfd);
}

static _Noreturn void srv_exit(srv *s)
{
    for (size_t i = 0; i < s->n; i++)
        kill(s->recs[i].pid, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    _exit(0);
}

static _Noreturn void server_main(int sock)
{
    srv s = {.sock = sock};
    signal(SIGCHLD, SIG_DFL);      /* an ignored SIGCHLD survives exec: no reaping */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    s.sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    prctl(PR_SET_NAME, "pmap-forksrv");
    spawn_reply hello = {0, SERVER_HELLO};
    if (s.sfd < 0 || send_fd(sock, &hello, sizeof hello, -1) < 0)
        _exit(122);
    for (;;) {
        struct pollfd p[2] = {{sock, POLLIN, 0}, {s.sfd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0)
            continue;
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(s.sfd, &si, sizeof si) == sizeof si)
                ;
            srv_reap(&s);
        }
        if (p[0].revents) {
            spawn_msg m;
            int fd;
            if (recv_fd(sock, &m, sizeof m, &fd) < 0 || fd < 0)
                srv_exit(&s);               /* the parent is gone (or closed us) */
            srv_spawn(&s, &m, fd);
            close(fd);
        }
    }
}

/* A fork server is this program started again with ENV_MARK set: it takes
 * over here, before main and before any thread or OpenMP region exists. */
__attribute__((constructor)) static void procs_ctor(void)
{
    const char *mark = getenv(ENV_MARK);
    if (!mark || strcmp(mark, "3") != 0)
        return;
    unsetenv(ENV_MARK);
    close_range(SERVER_FD + 1, ~0u, 0);   /* the parent's other descriptors */
    server_main(SERVER_FD);
}

/* ---- the parent: one proxy per worker ---- */

typedef struct pw {
    slot_hdr *hdr;             /* mapped for the life of the pool */
    unsigned char *data;       /* the data area (hdr->data_size) */
    int memfd;
    int pidfd;                 /* -1: no live worker */
    pid_t pid;
    uint32_t seq;              /* last request posted */
    unsigned tasks;            /* requests served by this worker */
} pw;

typedef struct procs {
    pm_init_fn init;           /* the user's, run in each worker */
    void *initarg;
    size_t initarg_size;
    double timeout;            /* per task or item; 0: none */
    unsigned max_tasks;
    size_t mem_limit;
    int sock;                  /* to the fork server */
    pid_t server;
    pthread_mutex_t sock_mu;
    _Atomic int next;          /* proxies numbered as they start */
    pw *w;
} procs;

static _Thread_local pw *self;     /* this proxy thread's worker */

static procs *P_of(pm__exec *ex)
{
    return ex->procs;
}

/* Waits for the server's hello: a program that does not run libpmap's
 * constructor before main (libpmap loaded with dlopen, say) would run its
 * main instead; it is killed and pm_pool_new fails with -ENOEXEC. */
static int server_hello(procs *P)
{
    struct pollfd p = {P->sock, POLLIN, 0};
    spawn_reply hello = {0, 0};
    int fd = -1;
    int r;
    while ((r = poll(&p, 1, HELLO_MS)) < 0 && errno == EINTR)
        ;
    if (r == 1 && recv_fd(P->sock, &hello, sizeof hello, &fd) == 0 &&
        hello.err == SERVER_HELLO && fd < 0)
        return 0;
    if (fd >= 0)
        close(fd);
    kill(P->server, SIGKILL);
    close(P->sock);
    P->sock = -1;
    waitpid(P->server, NULL, 0);
    return -ENOEXEC;
}

static int start_server(procs *P)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    int child = sv[1] == SERVER_FD ? fcntl(sv[1], F_DUPFD_CLOEXEC, SERVER_FD + 1) : sv[1];
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    int rc = env && child >= 0 ? 0 : -ENOMEM;
    posix_spawn_file_actions_t fa;
    if (rc == 0) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (strncmp(environ[i], ENV_MARK "=", sizeof ENV_MARK) != 0)
                env[k++] = environ[i];
        env[k++] = ENV_MARK "=3";
        env[k] = NULL;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, child, SERVER_FD);
        posix_spawnattr_t at;          /* no blocked signal, no caught one */
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_init(&at);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &all);
        char *argv[] = {"pmap-forkserver", NULL};
        rc = -posix_spawn(&P->server, "/proc/self/exe", &fa, &at, argv, env);
        posix_spawnattr_destroy(&at);
        posix_spawn_file_actions_destroy(&fa);
    }
    free(env);
    if (child != sv[1] && child >= 0)
        close(child);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    P->sock = sv[0];
    return server_hello(P);
}

/* Maps a new worker's slot (once per proxy). */
static int pw_alloc(pw *w)
{
    w->memfd = memfd_create("pmap-worker", MFD_CLOEXEC);
    if (w->memfd < 0)
        return -errno;
    if (ftruncate(w->memfd, HDR_SIZE + DATA_MIN) < 0)
        return -errno;
    w->hdr = mmap(NULL, HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, w->memfd, 0);
    if (w->hdr == MAP_FAILED) {
        w->hdr = NULL;
        return -ENOMEM;
    }
    w->data = mmap(NULL, DATA_MIN, PROT_READ | PROT_WRITE, MAP_SHARED, w->memfd, HDR_SIZE);
    if (w->data == MAP_FAILED) {
        w->data = NULL;
        return -ENOMEM;
    }
    w->hdr->data_size = DATA_MIN;
    return 0;
}

/* Grows the data area to at least need bytes. */
static int pw_grow(pw *w, size_t need)
{
    size_t have = w->hdr->data_size;
    if (need <= have)
        return 0;
    size_t sz = have;
    while (sz < need)
        sz = sz > SIZE_MAX / 2 ? need : sz * 2;
    if (ftruncate(w->memfd, (off_t)(HDR_SIZE + sz)) < 0)
        return -errno;
    void *d = mremap(w->data, have, sz, MREMAP_MAYMOVE);
    if (d == MAP_FAILED)
        return -ENOMEM;
    w->data = d;
    w->hdr->data_size = sz;
    return 0;
}

/* 1 once w's process has exited (its pidfd reads ready). */
static int pw_exited(const pw *w)
{
    struct pollfd p = {w->pidfd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

/* A wait passed without news: 1 when the worker is gone and the server,
 * which should have said so, stayed silent for GONE_NS since we first saw
 * it gone (*since, 0 until then): the server was killed. Time, not a count
 * of waits: a proxy following a batch wakes every BATCH_TICK_NS, and a
 * server slow to reap (a loaded machine) is not a dead one. */
static int pw_orphaned(const pw *w, int64_t *since)
{
    if (!pw_exited(w))
        return 0;
    int64_t now = pm__now_ns();
    if (!*since)
        *since = now;
    return now - *since > GONE_NS;
}

/* A batch being waited for: tasks [0, seen) of the request are reported. */
typedef struct progress {
    const pm__ptask *ts;           /* the request's tasks */
    size_t n, seen, base;          /* base: ts[0]'s index for done */
    void (*done)(void *ctx, size_t i, int status);
    void *ctx;
} progress;

/* Reports the request's tasks [seen, upto): results back, then done. */
static void tasks_report(pw *w, progress *pg, size_t upto)
{
    const trec *r = (const trec *)w->data;
    for (; pg->seen < upto; pg->seen++) {
        size_t i = pg->seen;
        if (pg->ts[i].result_size)
            memcpy(pg->ts[i].result, w->data + r[i].res_off, pg->ts[i].result_size);
        pg->done(pg->ctx, pg->base + i, r[i].status);
    }
}

/* Waits until the worker finished request seq (0) or died (its status,
 * or -ETIMEDOUT if we killed it for its timeout). With pg, reports the
 * batch's tasks as they finish: the worker does not wake us for them (a
 * wake-up per task is what batching saves); a sleeping proxy looks every
 * BATCH_TICK_NS while tasks other than the last may still finish. */
static int pw_wait(procs *P, pw *w, uint32_t seq, progress *pg)
{
    slot_hdr *h = w->hdr;
    int64_t spin_end = pm__now_ns() + SPIN_NS;
    int killed = 0;
    int64_t gone = 0;              /* when the worker was seen gone */
    for (;;) {
        if (pg && pg->seen + 1 < pg->n) {
            size_t nd = atomic_load_explicit(&h->ndone, memory_order_acquire);
            if (nd > pg->seen && nd <= pg->n)
                tasks_report(w, pg, nd);
        }
        uint32_t d = atomic_load_explicit(&h->done, memory_order_acquire);
        if (d & DEAD_BIT)
            return killed ? -ETIMEDOUT : status_of_wait(h->wstatus);
        if (d == seq)
            return 0;
        if (gone && pw_orphaned(w, &gone))
            return -EPIPE;                 /* the fork server is gone */
        int64_t now = pm__now_ns();
        if (now < spin_end) {
            pm__cpu_relax();
            continue;
        }
        int64_t wait = (int64_t)(TICK_S * 1e9);
        if (pg && pg->seen + 1 < pg->n)
            wait = BATCH_TICK_NS;
        if (h->timed && !killed) {
            int64_t left = atomic_load(&h->item_ns) + (int64_t)(P->timeout * 1e9) - now;
            if (left <= 0) {
                syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
                killed = 1;
            } else if (left < wait) {
                wait = left;
            }
        }
        struct timespec ts = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
        atomic_store(&h->parent_waits, 1);
        if (atomic_load(&h->done) == d && futex(&h->done, FUTEX_WAIT, d, &ts) < 0 &&
            errno == ETIMEDOUT && !gone)
            pw_orphaned(w, &gone);
        atomic_store(&h->parent_waits, 0);
    }
}

/* Posts the request filled in w's header and waits for it (pg: as in
 * pw_wait). */
static int pw_call(procs *P, pw *w, progress *pg)
{
    slot_hdr *h = w->hdr;
    atomic_store_explicit(&h->cur, 0, memory_order_relaxed);
    atomic_store_explicit(&h->ndone, 0, memory_order_relaxed);
    h->timed = P->timeout > 0;
    if (h->timed)
        atomic_store_explicit(&h->item_ns, pm__now_ns(), memory_order_relaxed);
    uint32_t seq = ++w->seq;
    atomic_store(&h->req, seq);
    if (atomic_load(&h->worker_waits))
        futex(&h->req, FUTEX_WAKE, 1, NULL);
    return pw_wait(P, w, seq, pg);
}

static void pw_dead(pw *w)
{
    if (w->pidfd >= 0)
        close(w->pidfd);
    w->pidfd = -1;
}

/* Kills a live worker and waits until the server reaped it. */
static void pw_retire(procs *P, pw *w)
{
    if (w->pidfd < 0)
        return;
    syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
    int64_t gone = 0;
    while (!(atomic_load(&w->hdr->done) & DEAD_BIT) && !pw_orphaned(w, &gone)) {
        struct timespec ts = {0, (long)(TICK_S * 1e9)};
        uint32_t d = atomic_load(&w->hdr->done);
        atomic_store(&w->hdr->parent_waits, 1);
        if (!(d & DEAD_BIT))
            futex(&w->hdr->done, FUTEX_WAIT, d, &ts);
        atomic_store(&w->hdr->parent_waits, 0);
    }
    (void)P;
    pw_dead(w);
}

/* Fills the header for a call of fn with an argument. */
static int pw_request(pw *w, unsigned kind, const void *fn, void *arg, size_t arg_size)
{
    slot_hdr *h = w->hdr;
    int rc = fn_ref(fn, &h->fn);
    if (rc)
        return rc;
    h->kind = kind;
    h->arg = (uint64_t)(uintptr_t)arg;
    h->arg_size = arg_size;
    h->in_size = h->out_size = h->count = h->result_size = h->ran = 0;
    h->status = 0;
    if (arg_size)
        memcpy(w->data, arg, arg_size);     /* layout: the argument first */
    return 0;
}

/* Starts a worker for w and runs the initializer in it: 0 or a failure
 * (the initializer's, a spawn error, or the worker's death). */
static int pw_spawn(procs *P, pw *w)
{
    slot_hdr *h = w->hdr;
    atomic_store(&h->req, 0);
    atomic_store(&h->done, 0);
    atomic_store(&h->worker_waits, 0);
    w->seq = 0;
    w->tasks = 0;
    spawn_msg m = {P->mem_limit};
    spawn_reply r = {0, -EPIPE};
    int pidfd = -1;
    pthread_mutex_lock(&P->sock_mu);
    if (send_fd(P->sock, &m, sizeof m, w->memfd) == 0)
        recv_fd(P->sock, &r, sizeof r, &pidfd);
    pthread_mutex_unlock(&P->sock_mu);
    if (r.err || pidfd < 0) {
        if (pidfd >= 0)
            close(pidfd);
        return r.err ? r.err : -EPIPE;
    }
    w->pid = r.pid;
    w->pidfd = pidfd;
    if (!P->init)
        return 0;
    int rc = pw_grow(w, up64(P->initarg_size));
    if (rc == 0)
        rc = pw_request(w, REQ_INIT, (const void *)P->init, P->initarg, P->initarg_size);
    if (rc == 0 && (rc = pw_call(P, w, NULL)) == 0)
        rc = h->status;
    if (rc)
        pw_retire(P, w);
    return rc;
}

static int pw_ready(procs *P, pw *w)
{
    return w->pidfd >= 0 ? 0 : pw_spawn(P, w);
}

/* After a request that ran k tasks (a map's request counts as one): count
 * them, and retire the worker at max_tasks. */
static void pw_served(procs *P, pw *w, unsigned k)
{
    if (P->max_tasks && (w->tasks += k) >= P->max_tasks)
        pw_retire(P, w);
}

int pm__procs_task(pm__exec *ex, pm_task_fn fn, void *arg, size_t arg_size,
                   void *result, size_t result_size)
{
    procs *P = P_of(ex);
    pw *w = self;
    if (!w)
        return -EINVAL;                    /* not on one of ex's proxies */
    int rc = pw_ready(P, w);
    if (rc)
        return rc;
    layout l = layout_of(arg_size, 0, 0, 0, result_size);
    if (l.end == SIZE_MAX)
        return -EINVAL;
    if ((rc = pw_grow(w, l.end)) || (rc = pw_request(w, REQ_TASK, (const void *)fn, arg, arg_size)))
        return rc;
    w->hdr->result_size = result_size;
    rc = pw_call(P, w, NULL);
    if (rc) {
        pw_dead(w);
        return rc;
    }
    rc = w->hdr->status;
    if (result_size)
        memcpy(result, w->data + l.out, result_size);
    pw_served(P, w, 1);
    return rc;
}

/* How many of tasks ts[0, n) go in one request (at least one): what fits
 * DATA_MAX, TASKS_MAX, and what the worker may still run before max_tasks.
 * Sets *need to the data area they take. */
static size_t tasks_fit(const procs *P, const pw *w, const pm__ptask *ts, size_t n, size_t *need)
{
    size_t k = n < TASKS_MAX ? n : TASKS_MAX;
    if (P->max_tasks && k > P->max_tasks - w->tasks)
        k = P->max_tasks - w->tasks;
    size_t bytes = 0, i;
    for (i = 0; i < k; i++) {
        size_t b = up64(ts[i].arg_size) + up64(ts[i].result_size);
        if (i && bytes + b + up64((i + 1) * sizeof(trec)) > DATA_MAX)
            break;
        bytes += b;
    }
    *need = bytes + up64(i * sizeof(trec));
    return i;
}

/* Fills the header and data area for tasks ts[0, k), or fewer: up to the
 * first whose function is in no loaded module. Returns how many; 0 with
 * *rc set when the first one is such. */
static size_t tasks_request(pw *w, const pm__ptask *ts, size_t k, int *rc)
{
    trec *r = (trec *)w->data;
    size_t off = up64(k * sizeof(trec)), i;
    for (i = 0; i < k; i++) {
        if ((*rc = fn_ref((const void *)ts[i].fn, &r[i].fn)) != 0)
            break;
        r[i].arg = (uint64_t)(uintptr_t)ts[i].arg;
        r[i].arg_size = ts[i].arg_size;
        r[i].arg_off = off;
        if (ts[i].arg_size)
            memcpy(w->data + off, ts[i].arg, ts[i].arg_size);
        off += up64(ts[i].arg_size);
        r[i].res_off = off;
        r[i].res_size = ts[i].result_size;
        off += up64(ts[i].result_size);
        r[i].status = 0;
    }
    slot_hdr *h = w->hdr;
    h->kind = REQ_TASKS;
    h->count = i;
    h->ran = 0;
    return i;
}

size_t pm__procs_tasks(pm__exec *ex, const pm__ptask *ts, size_t n,
                       void (*done)(void *ctx, size_t i, int status), void *ctx)
{
    procs *P = P_of(ex);
    pw *w = self;
    size_t i = 0;
    while (i < n && atomic_load_explicit(&ex->state, memory_order_relaxed) != PM__TERMINATED) {
        int rc = w ? pw_ready(P, w) : -EINVAL;    /* -EINVAL: not on a proxy */
        if (rc) {
            done(ctx, i++, rc);                    /* no worker: the task fails */
            continue;
        }
        size_t need, k = tasks_fit(P, w, ts + i, n - i, &need);
        rc = pw_grow(w, need);
        k = rc ? 0 : tasks_request(w, ts + i, k, &rc);
        if (k == 0) {
            done(ctx, i++, rc);     /* -ENOMEM, or -EINVAL: fn in no module */
            continue;
        }
        progress pg = {.ts = ts + i, .n = k, .base = i, .done = done, .ctx = ctx};
        slot_hdr *h = w->hdr;
        rc = pw_call(P, w, &pg);
        if (rc == 0) {
            size_t ran = h->ran <= k ? h->ran : k;
            tasks_report(w, &pg, ran);
            i += ran;
            pw_served(P, w, (unsigned)ran);
            if (ran < k)
                break;                             /* terminated */
            continue;
        }
        pw_dead(w);
        size_t c = atomic_load(&h->ndone);         /* finished before it died */
        if (c > k)
            c = k;
        tasks_report(w, &pg, c);
        if (c < k) {
            done(ctx, i + c, rc);                  /* the one it was running */
            c++;
        }
        i += c;
    }
    return i;
}

/* How many items of m fit one request (at least one). */
static size_t batch_of(const pm__rmap *m, size_t count)
{
    size_t per = m->in_size + m->out_size + sizeof(int32_t);
    size_t fixed = up64(m->arg_size) + 4 * 64;
    size_t b = fixed < DATA_MAX ? (DATA_MAX - fixed) / per : 1;
    return b == 0 ? 1 : b < count ? b : count;
}

static int stopped(pm__exec *ex, const pm__rmap *m)
{
    return atomic_load_explicit(&ex->state, memory_order_relaxed) == PM__TERMINATED ||
           (m->stop && atomic_load_explicit(m->stop, memory_order_relaxed));
}

/* Copies back results and statuses of items [0, k) of a request at base. */
static void items_back(pw *w, const pm__rmap *m, layout l, size_t base, size_t k, void *out)
{
    if (m->out_size && k)
        memcpy((unsigned char *)out + base * m->out_size, w->data + l.out, k * m->out_size);
    const int32_t *st = (const int32_t *)(w->data + l.st);
    for (size_t i = 0; i < k; i++)
        if (PM__UNLIKELY(st[i]))
            m->fail(m->ctx, base + i, st[i]);
}

/* One request of b items from base: returns how many were accounted for
 * (run, or failed by a death), 0 when stopped before any. */
static size_t items_once(pm__exec *ex, pw *w, const pm__rmap *m, const void *in, void *out,
                         size_t base, size_t b)
{
    procs *P = P_of(ex);
    layout l = layout_of(m->arg_size, m->in_size, m->out_size, b, 0);
    int rc = pw_grow(w, l.end);
    if (rc == 0)
        rc = pw_request(w, REQ_ITEMS, (const void *)m->fn, m->arg, m->arg_size);
    if (rc) {
        m->fail(m->ctx, base, rc);
        return 1;
    }
    slot_hdr *h = w->hdr;
    h->in_size = m->in_size;
    h->out_size = m->out_size;
    h->count = b;
    if (m->in_size)
        memcpy(w->data + l.in, (const unsigned char *)in + base * m->in_size, b * m->in_size);
    rc = pw_call(P, w, NULL);
    if (rc == 0) {
        items_back(w, m, l, base, h->ran, out);
        pw_served(P, w, 1);
        return h->ran;
    }
    pw_dead(w);
    size_t c = atomic_load(&h->cur);     /* the item it was running */
    if (c >= b)
        c = b;                           /* died after its last item */
    items_back(w, m, l, base, c, out);
    if (c < b)
        m->fail(m->ctx, base + c, rc);
    return c < b ? c + 1 : c;
}

size_t pm__procs_map(pm__exec *ex, const pm__rmap *m, const void *in, void *out, size_t count)
{
    procs *P = P_of(ex);
    pw *w = self;
    size_t i = 0;
    if (!w) {                              /* not on one of ex's proxies */
        m->fail(m->ctx, 0, -EINVAL);
        return count ? 1 : 0;
    }
    while (i < count && !stopped(ex, m)) {
        int rc = pw_ready(P, w);
        if (rc) {
            m->fail(m->ctx, i++, rc);      /* no worker: the item fails */
            continue;
        }
        size_t b = batch_of(m, count - i);
        size_t k = items_once(ex, w, m, in, out, i, b);
        i += k;
        if (k < b && w->pidfd >= 0)
            break;                          /* stopped between items */
    }
    return i;
}

/* ---- the ops ---- */

/* Each proxy thread's initializer: its worker, and the user's initializer
 * in it. */
static int proxy_init(void *arg)
{
    pm__exec *ex = arg;
    procs *P = P_of(ex);
    pw *w = &P->w[atomic_fetch_add(&P->next, 1)];
    self = w;
    int rc = pw_alloc(w);
    return rc ? rc : pw_spawn(P, w);
}

static void procs_free(procs *P, int n)
{
    for (int i = 0; i < n; i++) {
        pw *w = &P->w[i];
        if (w->data)
            munmap(w->data, w->hdr->data_size);
        if (w->hdr)
            munmap(w->hdr, HDR_SIZE);
        if (w->memfd >= 0)
            close(w->memfd);
        if (w->pidfd >= 0)
            close(w->pidfd);
    }
    pthread_mutex_destroy(&P->sock_mu);
    free(P->w);
    free(P);
}

static int procs_alloc(pm__exec *ex)
{
    procs *P = calloc(1, sizeof *P);
    if (!P || !(P->w = calloc((size_t)ex->workers, sizeof *P->w))) {
        free(P);
        return -ENOMEM;
    }
    for (int i = 0; i < ex->workers; i++)
        P->w[i].memfd = P->w[i].pidfd = -1;
    pthread_mutex_init(&P->sock_mu, NULL);
    P->sock = -1;
    P->init = ex->init;
    P->initarg = ex->initarg;
    P->initarg_size = ex->opts.initarg_size;
    P->timeout = ex->opts.task_timeout;
    P->max_tasks = ex->opts.max_tasks;
    P->mem_limit = ex->opts.mem_limit;
    ex->procs = P;
    return 0;
}

static int procs_start(pm__exec *ex)
{
    int rc = procs_alloc(ex);
    if (rc)
        return rc;
    procs *P = P_of(ex);
    if ((rc = start_server(P)) != 0) {
        procs_free(P, ex->workers);
        ex->procs = NULL;
        return rc;
    }
    ex->init = proxy_init;          /* the thread backend runs it per proxy */
    ex->initarg = ex;
    rc = pm__exec_threads.start(ex);
    if (rc && !ex->be) {            /* no threads: stop/join will not run */
        close(P->sock);
        waitpid(P->server, NULL, 0);
        procs_free(P, ex->workers);
        ex->procs = NULL;
    }
    return rc;
}

static void procs_stop(pm__exec *ex, int terminate)
{
    procs *P = P_of(ex);
    if (terminate && P) {
        for (int i = 0; i < ex->workers; i++)
            if (P->w[i].hdr)
                atomic_store(&P->w[i].hdr->stop, 1);
    }
    pm__exec_threads.stop(ex, terminate);
}

/* Joins the proxies, then ends the server, which kills and reaps every
 * worker before it exits. */
static void procs_join(pm__exec *ex)
{
    procs *P = P_of(ex);
    pm__exec_threads.join(ex);
    if (!P || P->sock < 0)
        return;
    close(P->sock);
    P->sock = -1;
    while (waitpid(P->server, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void procs_destroy(pm__exec *ex)
{
    procs *P = P_of(ex);
    pm__exec_threads.destroy(ex);
    if (P) {
        procs_free(P, ex->workers);
        ex->procs = NULL;
    }
}

static int procs_submit(pm__exec *ex, pm__work **ws, size_t n, unsigned flags)
{
    return pm__exec_threads.submit(ex, ws, n, flags);
}

static int procs_cancel(pm__exec *ex, pm__work *w)
{
    return pm__exec_threads.cancel(ex, w);
}

static size_t procs_take(pm__exec *ex, int (*same)(pm__work *w), pm__work **out, size_t max)
{
    return pm__exec_threads.take(ex, same, out, max);
}

static void procs_kick(pm__exec *ex)
{
    pm__exec_threads.kick(ex);
}

const pm__exec_ops pm__exec_procs = {
    .name = "processes",
    .caps = 0,
    .start = procs_start,
    .submit = procs_submit,
    .cancel = procs_cancel,
    .take = procs_take,
    .stop = procs_stop,
    .join = procs_join,
    .kick = procs_kick,
    .destroy = procs_destroy,
};
