/* co_io.c - the awaits of pmap/co.h: each queues one pm_loop operation
 * with the running task as its callback argument and suspends the task
 * until that callback has run (co.c's pm__co_await_op).
 *
 * Sockets are not loop operations: the call is tried at once, without
 * blocking, on the loop's thread; only when it would block does the task
 * await readiness (pm__loop_poll, a one-shot poll) and try again. A recv
 * that finds data therefore costs one system call and no switch. connect
 * and accept need the descriptor non-blocking for the call: O_NONBLOCK is
 * set around it and the caller's flags restored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co/co_internal.h"
#include "loop/loop_engine.h"

#define ENTER(t)                                                               \
    int err_;                                                                  \
    pm_co_task *t = pm__co_enter(&err_);                                       \
    if (!t)                                                                    \
        return err_

ssize_t pm_co_read(int fd, void *buf, size_t len, uint64_t off)
{
    ENTER(t);
    return pm__co_await_op(t, pm_loop_read(pm__co_loop(t), fd, buf, len, off, pm__co_op_cb(), t));
}

ssize_t pm_co_write(int fd, const void *buf, size_t len, uint64_t off)
{
    ENTER(t);
    return pm__co_await_op(t, pm_loop_write(pm__co_loop(t), fd, buf, len, off, pm__co_op_cb(), t));
}

int pm_co_fsync(int fd, int datasync)
{
    ENTER(t);
    return (int)pm__co_await_op(t, pm_loop_fsync(pm__co_loop(t), fd, datasync, pm__co_op_cb(), t));
}

int pm_co_openat(int dirfd, const char *path, int flags, unsigned mode)
{
    ENTER(t);
    return (int)pm__co_await_op(
        t, pm_loop_openat(pm__co_loop(t), dirfd, path, flags, mode, pm__co_op_cb(), t));
}

int pm_co_close(int fd)
{
    ENTER(t);
    return (int)pm__co_await_op(t, pm_loop_close(pm__co_loop(t), fd, pm__co_op_cb(), t));
}

int pm_co_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *buf)
{
    ENTER(t);
    return (int)pm__co_await_op(
        t, pm_loop_statx(pm__co_loop(t), dirfd, path, flags, mask, buf, pm__co_op_cb(), t));
}

int pm_co_sleep(uint64_t ns)
{
    ENTER(t);
    return (int)pm__co_await_op(t, pm_loop_timer(pm__co_loop(t), ns, pm__co_op_cb(), t));
}

/* ---- sockets ---- */

static int await_ready(pm_co_task *t, int fd, unsigned events)
{
    ssize_t r = pm__co_await_op(t, pm__loop_poll(pm__co_loop(t), fd, events, pm__co_op_cb(), t));
    return r < 0 ? (int)r : 0;
}

/* Sets O_NONBLOCK on fd; returns the old flags, or -errno. */
static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return fl;
}

static void restore_flags(int fd, int fl)
{
    if (!(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl);
}

static int connect_wait(pm_co_task *t, int fd)
{
    int rc = await_ready(t, fd, POLLOUT);
    if (rc < 0)
        return rc;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    return -soerr;
}

int pm_co_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    ENTER(t);
    int fl = set_nonblock(fd);
    if (fl < 0)
        return fl;
    int rc = connect(fd, addr, addrlen) == 0 ? 0 : -errno;
    if (rc == -EINPROGRESS || rc == -EINTR)
        rc = connect_wait(t, fd);
    restore_flags(fd, fl);
    return rc;
}

int pm_co_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    ENTER(t);
    int fl = set_nonblock(fd);
    if (fl < 0)
        return fl;
    int rc;
    for (;;) {
        rc = accept4(fd, addr, addrlen, flags);
        if (rc >= 0)
            break;
        rc = -errno;
        if (rc == -EINTR)
            continue;
        if (rc != -EAGAIN && rc != -EWOULDBLOCK)
            break;
        if ((rc = await_ready(t, fd, POLLIN)) < 0)
            break;
    }
    restore_flags(fd, fl);
    return rc;
}

ssize_t pm_co_recv(int fd, void *buf, size_t len, int flags)
{
    ENTER(t);
    for (;;) {
        ssize_t r = recv(fd, buf, len, flags | MSG_DONTWAIT);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = await_ready(t, fd, POLLIN);
        if (rc < 0)
            return rc;
    }
}

ssize_t pm_co_send(int fd, const void *buf, size_t len, int flags)
{
    ENTER(t);
    size_t done = 0;
    while (done < len) {
        ssize_t r = send(fd, (const char *)buf + done, len - done,
                         flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = await_ready(t, fd, POLLOUT);
        if (rc < 0)
            return rc;
    }
    return (ssize_t)len;
}
