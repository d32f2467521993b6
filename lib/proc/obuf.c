/* obuf.c - a job's output kept until its turn: the first bytes in memory
 * (up to a bound the runner chooses), the rest in an unlinked temporary
 * file in $TMPDIR (O_TMPFILE, or mkstemp and unlink where the filesystem
 * lacks it), so a waiting job costs bounded memory however much it
 * prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc/proc_int.h"

void pm__obuf_init(pm__obuf *b)
{
    memset(b, 0, sizeof *b);
    b->fd = -1;
}

int pm__tmpfile(void)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? pm__proc_fd_high(fd) : -errno;
    char name[4096];
    if (snprintf(name, sizeof name, "%s/pmap-run.XXXXXX", dir) >= (int)sizeof name)
        return -ENAMETOOLONG;
    fd = mkostemp(name, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(name);
    return pm__proc_fd_high(fd);
}

int pm__write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            poll(&pf, 1, -1);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int to_file(pm__obuf *b, const void *p, size_t n)
{
    if (b->fd < 0) {
        int fd = pm__tmpfile();
        if (fd < 0)
            return fd;
        b->fd = fd;
    }
    int err = pm__write_all(b->fd, p, n);
    if (!err)
        b->flen += n;
    return err;
}

int pm__obuf_append(pm__obuf *b, const void *p, size_t n, size_t max)
{
    if (b->fd >= 0 || b->len + n > max)
        return to_file(b, p, n);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *m = realloc(b->mem, cap);
        if (!m)
            return -ENOMEM;
        b->mem = m;
        b->cap = cap;
    }
    memcpy(b->mem + b->len, p, n);
    b->len += n;
    return 0;
}

int pm__obuf_write(const pm__obuf *b, int fd, char *scratch, size_t scratch_size)
{
    int err = b->len ? pm__write_all(fd, b->mem, b->len) : 0;
    for (uint64_t off = 0; !err && off < b->flen; ) {
        ssize_t n = pread(b->fd, scratch, scratch_size, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        err = pm__write_all(fd, scratch, (size_t)n);
        off += (uint64_t)n;
    }
    return err;
}

void pm__obuf_reset(pm__obuf *b)
{
    free(b->mem);
    if (b->fd >= 0)
        close(b->fd);
    pm__obuf_init(b);
}
