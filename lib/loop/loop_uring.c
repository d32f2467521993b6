/* loop_uring.c - the io_uring engine of pm_loop (see loop_engine.h).
 *
 * Design. One ring per loop, touched only by the loop's thread (liburing
 * is not thread-safe). submit() only fills an SQE; SQEs reach the kernel
 * together in the next wait(), one io_uring_enter for many operations, or
 * earlier when the SQ is full. Each SQE's user_data says what it is:
 *   a pm__op pointer    one attempt of that operation;
 *   op pointer | 1      a readiness poll before retrying a transfer that got
 *                       -EAGAIN (O_NONBLOCK pipes and sockets), so retries
 *                       do not spin;
 *   UD_WAKE             the read of the wake eventfd;
 *   UD_IGNORE           cancel requests (their own result does not matter:
 *                       the cancelled operation still completes).
 *
 * Waking. Another thread's pm_loop_post() writes the eventfd; a read of it
 * is kept armed in the ring, so a loop blocked in io_uring_enter wakes
 * when it completes. The count persists in the eventfd while no read is
 * armed, so a wake is never lost; the read is re-armed before blocking.
 *
 * Completions are never lost: loop.c keeps at most queue_depth operations
 * in the ring, the CQ is sized 4 x queue_depth (room for their cancels, the
 * wake read and polls), IORING_FEAT_NODROP is required so an overflow would
 * be held by the kernel, overflowed entries are flushed with
 * io_uring_get_events(), and -EBUSY/-EAGAIN from submission are answered by
 * reaping before trying again. The CQE handler never takes an SQE (it only
 * records results), so reaping can happen from inside get_sqe().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include <pmap/config.h>
#include "loop_engine.h"

#define UD_IGNORE 0u
#define UD_WAKE 16u
#define MAX_CHUNK (1u << 30)    /* largest single attempt (SQE len is 32 bits) */

typedef struct ur {
    struct io_uring ring;
    pm_loop *loop;
    int efd;                 /* wake eventfd */
    uint64_t wake_buf;       /* target of the armed eventfd read */
    int wake_armed;
    int closing;
    int async_reads;         /* IOSQE_ASYNC on positioned reads */
    unsigned expect;         /* SQEs issued whose CQE has not been seen */
    pm__op *again;           /* polled ops whose transfer is to be re-issued */
} ur;

static unsigned reap(ur *u);

/* ---- submission ---- */

static int flush(ur *u)
{
    for (;;) {
        int rc = io_uring_submit(&u->ring);
        if (rc >= 0)
            return 0;
        if (rc == -EINTR)
            continue;
        if (rc != -EBUSY && rc != -EAGAIN)
            return rc;
        /* The kernel wants completions consumed first. */
        if (reap(u) == 0) {
            if (u->expect == 0)
                return rc;
            struct io_uring_cqe *cqe;
            io_uring_wait_cqe(&u->ring, &cqe);
        }
    }
}

static struct io_uring_sqe *get_sqe(ur *u)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&u->ring))) {
        if (flush(u) < 0)
            return NULL;
    }
    u->expect++;
    return sqe;
}

static uint64_t attempt_off(const pm__op *op)
{
    return op->off == PM_LOOP_CUR ? (uint64_t)-1 : op->off + op->done;
}

static unsigned attempt_len(const pm__op *op)
{
    size_t left = op->len - op->done;
    return left > MAX_CHUNK ? MAX_CHUNK : (unsigned)left;
}

static void prep(ur *u, struct io_uring_sqe *sqe, pm__op *op)
{
    char *p = (char *)op->buf + op->done;
    switch (op->kind) {
    case PM__OP_READ:
        io_uring_prep_read(sqe, op->fd, p, attempt_len(op), attempt_off(op));
        if (u->async_reads && op->off != PM_LOOP_CUR)
            sqe->flags |= IOSQE_ASYNC;
        break;
    case PM__OP_WRITE:
        io_uring_prep_write(sqe, op->fd, p, attempt_len(op), attempt_off(op));
        break;
    case PM__OP_FSYNC:
        io_uring_prep_fsync(sqe, op->fd, op->flags ? IORING_FSYNC_DATASYNC : 0);
        break;
    case PM__OP_OPENAT:
        io_uring_prep_openat(sqe, op->fd, op->path, op->flags, op->mode);
        break;
    case PM__OP_CLOSE:
        io_uring_prep_close(sqe, op->fd);
        break;
    case PM__OP_STATX:
        io_uring_prep_statx(sqe, op->fd, op->path, op->flags, op->mode, op->buf);
        break;
    case PM__OP_POLL:
        io_uring_prep_poll_add(sqe, op->fd, op->mode);
        break;
    default:
        io_uring_prep_nop(sqe);
        break;
    }
}

static int ur_submit(void *st, pm__op *op)
{
    ur *u = st;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe)
        return -EBUSY;
    if (op->poll_first) {
        unsigned mask = op->kind == PM__OP_WRITE ? POLLOUT : POLLIN;
        io_uring_prep_poll_add(sqe, op->fd, mask);
        op->eng_ud = (uintptr_t)op | 1u;
    } else {
        prep(u, sqe, op);
        op->eng_ud = (uintptr_t)op;
    }
    op->eng = NULL;
    io_uring_sqe_set_data64(sqe, op->eng_ud);
    return 0;
}

/* Re-issue the transfers whose readiness poll fired. */
static void issue_again(ur *u)
{
    while (u->again) {
        pm__op *op = u->again;
        u->again = op->next;
        op->poll_first = 0;
        if (ur_submit(u, op) < 0) {
            pm__loop_complete(u->loop, op, -EBUSY);
        }
    }
}

static void arm_wake(ur *u)
{
    if (u->wake_armed || u->closing)
        return;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe)
        return;
    io_uring_prep_read(sqe, u->efd, &u->wake_buf, sizeof u->wake_buf, 0);
    io_uring_sqe_set_data64(sqe, UD_WAKE);
    u->wake_armed = 1;
}

/* ---- completion ---- */

static void on_poll_done(ur *u, pm__op *op, int res)
{
    if (res < 0 || op->cancelled) {
        pm__loop_complete(u->loop, op, res < 0 ? res : -ECANCELED);
        return;
    }
    op->eng = u;                 /* marks "on the again list" for cancel */
    op->next = u->again;
    u->again = op;
}

static void on_cqe(ur *u, uint64_t ud, int res)
{
    u->expect--;
    if (ud == UD_IGNORE)
        return;
    if (ud == UD_WAKE) {
        u->wake_armed = 0;
        pm__loop_woken(u->loop);
        return;
    }
    if (ud & 1u) {
        on_poll_done(u, (pm__op *)(uintptr_t)(ud & ~(uint64_t)1), res);
        return;
    }
    pm__loop_complete(u->loop, (pm__op *)(uintptr_t)ud, res);
}

static unsigned reap(ur *u)
{
    unsigned total = 0;
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe) {
            on_cqe(u, cqe->user_data, cqe->res);
            n++;
        }
        io_uring_cq_advance(&u->ring, n);
        total += n;
        if (n > 0)
            continue;
        if (!io_uring_cq_has_overflow(&u->ring))
            break;
        io_uring_get_events(&u->ring);   /* move the kernel's overflow into the CQ */
    }
    return total;
}

static int ur_wait(void *st, int64_t timeout_ns)
{
    ur *u = st;
    issue_again(u);
    arm_wake(u);
    if (timeout_ns == 0) {
        int rc = flush(u);
        reap(u);
        return rc;
    }
    struct __kernel_timespec ts, *tsp = NULL;
    if (timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    for (;;) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tsp, NULL);
        if (rc >= 0 || rc == -ETIME || rc == -EINTR)
            break;
        if (rc != -EBUSY && rc != -EAGAIN)
            return rc;
        if (reap(u) > 0)
            return 0;
        if (u->expect == 0)
            return rc;
    }
    reap(u);
    return 0;
}

/* ---- cancel, wake ---- */

static void remove_again(ur *u, pm__op *op)
{
    for (pm__op **pp = &u->again; *pp; pp = &(*pp)->next) {
        if (*pp == op) {
            *pp = op->next;
            return;
        }
    }
}

static void ur_cancel(void *st, pm__op *op)
{
    ur *u = st;
    if (op->eng == u) {          /* between its poll and its re-issue */
        remove_again(u, op);
        pm__loop_complete(u->loop, op, -ECANCELED);
        return;
    }
    uint64_t target = op->eng_ud;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe)
        return;
    /* get_sqe() may have reaped op's completion or its poll meanwhile. */
    if (op->state == PM__OP_ENGINE && op->eng == u) {
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
        remove_again(u, op);
        pm__loop_complete(u->loop, op, -ECANCELED);
    } else if (op->state == PM__OP_ENGINE && op->eng_ud == target) {
        io_uring_prep_cancel64(sqe, target, 0);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
    } else {
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, UD_IGNORE);
    }
}

static void ur_wake(void *st)
{
    ur *u = st;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(u->efd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is saturated, so a wake is pending anyway. */
}

/* ---- setup ---- */

static int check_kernel(ur *u, unsigned features)
{
    const unsigned need = IORING_FEAT_NODROP | IORING_FEAT_RW_CUR_POS;
    if ((features & need) != need)
        return -ENOSYS;
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    if (!probe)
        return -ENOSYS;
    static const int ops[] = {
        IORING_OP_READ, IORING_OP_WRITE, IORING_OP_FSYNC, IORING_OP_OPENAT,
        IORING_OP_CLOSE, IORING_OP_STATX, IORING_OP_ASYNC_CANCEL,
        IORING_OP_POLL_ADD, IORING_OP_NOP,
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!io_uring_opcode_supported(probe, ops[i]))
            rc = -ENOSYS;
    io_uring_free_probe(probe);
    return rc;
}

static int setup_ring(ur *u, unsigned depth)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = 4 * depth < 16 ? 16 : 4 * depth > 65536 ? 65536 : 4 * depth;
    int rc = io_uring_queue_init_params(depth, &u->ring, &p);
    if (rc == -EINVAL) {            /* older kernel: without the newer flags */
        unsigned cq = p.cq_entries;
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = cq;
        rc = io_uring_queue_init_params(depth, &u->ring, &p);
    }
    if (rc < 0)
        return rc;
    rc = check_kernel(u, p.features);
    if (rc < 0)
        io_uring_queue_exit(&u->ring);
    return rc;
}

static void limit_workers(ur *u)
{
    /* IOSQE_ASYNC reads go to io-wq, which would otherwise start a worker
     * per request; about one per CPU is what the copying can use. */
    unsigned vals[2];
    vals[0] = vals[1] = (unsigned)pm_cpu_count();
    io_uring_register_iowq_max_workers(&u->ring, vals);
}

static int ur_init(pm_loop *loop, const pm_loop_opts *opts, void **state_ret)
{
    ur *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->loop = loop;
    u->async_reads = opts->async_reads;
    u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->efd < 0) {
        int rc = -errno;
        free(u);
        return rc;
    }
    int rc = setup_ring(u, opts->queue_depth);
    if (rc < 0) {
        close(u->efd);
        free(u);
        return rc;
    }
    if (u->async_reads)
        limit_workers(u);
    *state_ret = u;
    return 0;
}

static void ur_fini(void *st)
{
    ur *u = st;
    u->closing = 1;
    if (u->wake_armed) {
        struct io_uring_sqe *sqe = get_sqe(u);
        if (sqe) {
            io_uring_prep_cancel64(sqe, UD_WAKE, 0);
            io_uring_sqe_set_data64(sqe, UD_IGNORE);
        }
        while (u->expect > 0) {
            int rc = io_uring_submit_and_wait(&u->ring, 1);
            if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
                break;
            reap(u);
        }
    }
    io_uring_queue_exit(&u->ring);
    close(u->efd);
    free(u);
}

const pm__engine pm__engine_uring = {
    .name = "uring",
    .init = ur_init,
    .fini = ur_fini,
    .submit = ur_submit,
    .cancel = ur_cancel,
    .wait = ur_wait,
    .wake = ur_wake,
};
