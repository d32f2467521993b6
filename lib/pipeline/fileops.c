/* fileops.c - the blocking system calls of a file's life, each step run as
 * one work item on the pool's workers (lifecycle.c submits them), so the
 * I/O thread only dispatches and many files open, commit and go at once.
 *
 *   OPEN    open the input (O_NONBLOCK: a FIFO swapped in never blocks the
 *           open), check what it is; for PM_SINK_FILES ask out_path, refuse
 *           an existing output (unless PM_PL_OVERWRITE) or the input itself,
 *           create the output in its directory as an unnamed file
 *           (O_TMPFILE), or a hidden ".NAME.pmtmp.XXXXXX" file where the
 *           filesystem lacks it (or PM_PL_NAMED_TEMP asks for a name other
 *           processes can open), so a crash leaves nothing behind; open the
 *           directory too when it is to be synced.
 *   FINISH  (no output file) check that the input did not change while it
 *           was read, close it.
 *   COMMIT  the same check; give the output the input's owner, mode and
 *           times; link it under its final name (replacing an existing file
 *           only with PM_PL_OVERWRITE). Without a directory sync to wait
 *           for, also REMOVE.
 *   REMOVE  remove the input -- only if its name still refers to the file
 *           that was read, unchanged; otherwise keep it, with a warning.
 *
 * Also here: the pread and pwrite of a small file done in one step.
 *
 * The output's and the directory's fsyncs between these steps go through
 * the loop (lifecycle.c); there are none when input and output are both on
 * tmpfs or ramfs (see pm__pl_must_sync). A step's result is 0, PM_PL_SKIP
 * (OPEN), PL_WARN (done, with a warning in the message) or -errno, with a
 * message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "core/sync.h"
#include "pipeline_internal.h"

static void close_fd(int *fd)
{
    if (*fd > STDIN_FILENO)
        close(*fd);
    *fd = -1;
}

/* The output's directory: f->dir's descriptor (borrowed) or its own. */
static void close_out_dir(pl_file *f)
{
    if (f->dir_owned)
        close_fd(&f->dir_fd);
    f->dir_fd = -1;
    f->dir_owned = 0;
}

/* Splits path into its directory (malloc'd) and base name (inside path). */
static char *dir_of(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        return strdup(".");
    }
    *base = slash + 1;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Do two paths name entries of the same directory? */
static int same_dir(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;
    return (!sa) == (!sb) && la == lb && memcmp(a, b, la) == 0;
}

/* ---- OPEN ---- */

static int open_stdin(pl_file *f)
{
    f->op_reason = PM_REASON_INPUT;
    f->fd = STDIN_FILENO;
    if (fstat(f->fd, &f->pub.st) < 0)
        return -errno;
    f->stream = !S_ISREG(f->pub.st.st_mode);
    return 0;
}

/* A file named by the caller (not found by the walk) gets its directory
 * opened here, by the path given: the caller chose those components. */
static int open_named_dir(pl_file *f)
{
    const char *base;
    char *dir = dir_of(f->path, &base);
    if (!dir)
        return -ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : 0;
    free(dir);
    if (rc < 0)
        return rc;
    if (!(f->dir = pm__pl_dirh_new(fd))) {
        close(fd);
        return -ENOMEM;
    }
    f->base = base;
    return 0;
}

static int open_input(pm_pipeline *pl, pl_file *f, char **msg)
{
    if (!strcmp(f->path, "-"))
        return open_stdin(f);
    f->op_reason = PM_REASON_INPUT;
    if (!f->dir) {
        int rc = open_named_dir(f);
        if (rc < 0)
            return rc;
    }
    /* A link named by the caller is read when nothing is written beside
     * it (to a stream, a test, a checksum), as gzip -c does. */
    int follow = (pl->o.flags & PM_PL_FOLLOW_SYMLINKS) ||
                 (!f->walked && pl->o.sink != PM_SINK_FILES);
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW);
    f->fd = openat(f->dir->fd, f->base, flags);
    if (f->fd < 0) {
        if (errno == ELOOP && !follow) {        /* a symbolic link after all */
            f->op_reason = PM_REASON_SYMLINK;
            *msg = strdup("is a symbolic link; not followed");
            return PM_PL_SKIP;
        }
        return -errno;
    }
    if (fstat(f->fd, &f->pub.st) < 0)
        return -errno;
    mode_t m = f->pub.st.st_mode;
    if (S_ISDIR(m))
        return -EISDIR;
    if (S_ISREG(m) && pl->o.sink == PM_SINK_FILES && !(pl->o.flags & PM_PL_OVERWRITE)) {
        /* As gzip: an output beside the input would not carry the other
         * names, nor a set-ID bit's meaning. */
        if (f->pub.st.st_nlink > 1) {
            f->op_reason = PM_REASON_HARD_LINKS;
            unsigned long n = (unsigned long)f->pub.st.st_nlink - 1;
            *msg = pm__pl_strdupf("has %lu other link%s -- ignored", n, n > 1 ? "s" : "");
            return PM_PL_SKIP;
        }
        if (m & (S_ISUID | S_ISGID | S_ISVTX)) {
            f->op_reason = PM_REASON_SET_ID;
            *msg = strdup(m & S_ISUID   ? "is set-user-ID on execution -- ignored"
                          : m & S_ISGID ? "is set-group-ID on execution -- ignored"
                                        : "has the sticky bit set -- ignored");
            return PM_PL_SKIP;
        }
    }
    if (S_ISREG(m) && f->pub.st.st_size == 0) {
        f->stream = 1;          /* /proc, /sys, some FUSE files: read to the end */
        return 0;
    }
    if (!S_ISREG(m)) {
        if (f->walked || !(pl->o.flags & PM_PL_SKIP_SPECIAL_OK)) {
            f->op_reason = PM_REASON_NOT_REGULAR;
            *msg = strdup("is not a regular file or directory -- ignored");
            return PM_PL_SKIP;
        }
        f->stream = 1;                      /* a FIFO or device given by name */
        if (fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK) < 0)
            return -errno;
    }
    return 0;
}

/* Creates ".NAME.pmtmp.XXXXXX" in the output's directory, exclusively. */
static int open_named_tmp(pl_file *f)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t r = (uint64_t)pm__now_ns() ^ ((uint64_t)(uintptr_t)f << 16) ^
                     ((uint64_t)attempt * 0x9e3779b97f4a7c15ull);
        char sfx[7];
        for (int i = 0; i < 6; i++, r /= 36)
            sfx[i] = digits[r % 36];
        sfx[6] = '\0';
        free(f->tmp_name);
        f->tmp_name = pm__pl_strdupf(".%s.pmtmp.%s", f->out_base, sfx);
        if (!f->tmp_name)
            return -ENOMEM;
        f->out_fd = openat(f->dir_fd, f->tmp_name,
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f->out_fd >= 0) {
            flock(f->out_fd, LOCK_EX);   /* held while it lives: not stale */
            f->pub.tmp_name = f->tmp_name;
            return 0;
        }
        if (errno != EEXIST)
            break;
    }
    int err = -errno;
    free(f->tmp_name);
    f->tmp_name = NULL;
    return err;
}

/* Asks out_path for f's output name; opens its directory (f->dir's when it
 * is the input's); refuses the input itself and, unless overwriting, an
 * existing file. */
static int output_name(pm_pipeline *pl, pl_file *f, char **msg)
{
    char buf[PATH_MAX];
    buf[0] = '\0';
    f->pub.fd = f->fd;
    int rc = pl->o.out_path(&f->pub, buf, sizeof buf, pl->o.arg);
    f->pub.fd = -1;
    f->op_reason = rc == PM_PL_SKIP ? PM_REASON_REFUSED : PM_REASON_OUTPUT;
    if (rc != 0) {
        *msg = buf[0] ? strdup(buf) : NULL;
        return rc == PM_PL_SKIP ? PM_PL_SKIP : (rc < 0 ? rc : -EINVAL);
    }
    if (!(f->out_path = strdup(buf)))
        return -ENOMEM;
    f->pub.out_path = f->out_path;
    char *dir = dir_of(f->out_path, &f->out_base);
    if (!dir)
        return -ENOMEM;
    if (same_dir(f->path, f->out_path)) {
        f->dir_fd = f->dir->fd;
    } else {
        f->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->dir_fd < 0) {
            rc = -errno;
            *msg = pm__pl_strdupf("cannot open output directory %s: %s", dir, strerror(-rc));
            free(dir);
            return rc;
        }
        f->dir_owned = 1;
    }
    free(dir);
    struct stat st;
    if (fstatat(f->dir_fd, f->out_base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (st.st_dev == f->pub.st.st_dev && st.st_ino == f->pub.st.st_ino) {
            *msg = strdup("output would be the input itself");
            return -EINVAL;
        }
        if (!(pl->o.flags & PM_PL_OVERWRITE)) {
            f->op_reason = PM_REASON_OUTPUT_EXISTS;
            *msg = pm__pl_strdupf("%s already exists; not overwritten", f->out_path);
            return PM_PL_SKIP;
        }
    }
    return 0;
}

static int open_output(pm_pipeline *pl, pl_file *f, char **msg)
{
    int rc = output_name(pl, f, msg);
    if (rc != 0)
        return rc;
    if (pl->o.flags & PM_PL_NAMED_TEMP)
        rc = open_named_tmp(f);          /* for other processes to open */
    else
        f->out_fd = openat(f->dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (f->out_fd < 0 && rc == 0) {
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL || errno == ENOENT)
            rc = open_named_tmp(f);
        else
            rc = -errno;
    }
    if (rc < 0) {
        f->op_reason = PM_REASON_OUTPUT;
        const char *base;
        char *dir = dir_of(f->out_path, &base);
        *msg = pm__pl_strdupf("cannot create output in %s: %s", dir ? dir : f->out_path,
                              strerror(-rc));
        free(dir);
    }
    return rc;
}

/* On a filesystem that lives in memory only? */
static int in_memory(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) < 0)
        return 0;
    return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

/* in_memory() of the filesystem of fd, whose device is dev, asked once per
 * device and run (a tree rarely spans more than a few). */
static int dev_in_memory(pm_pipeline *pl, dev_t dev, int fd)
{
    pl_fscache *c = &pl->fs;
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->n; i++) {
        if (c->dev[i] == dev) {
            int mem = c->mem[i];
            pthread_mutex_unlock(&c->lock);
            return mem;
        }
    }
    pthread_mutex_unlock(&c->lock);
    int mem = in_memory(fd);
    pthread_mutex_lock(&c->lock);
    if (c->n < PL_FSCACHE) {
        c->dev[c->n] = dev;
        c->mem[c->n++] = (unsigned char)mem;
    }
    pthread_mutex_unlock(&c->lock);
    return mem;
}

/* Input and output both in memory (pm__pl_must_sync: no fsync then)? An
 * output in the input's own directory (dir_fd borrowed) is on its device. */
static int volatile_pair(pm_pipeline *pl, pl_file *f)
{
    if (!dev_in_memory(pl, f->pub.st.st_dev, f->fd))
        return 0;
    return !f->dir_owned || in_memory(f->out_fd);
}

static int op_open(pm_pipeline *pl, pl_file *f, char **msg)
{
    int rc = open_input(pl, f, msg);
    if (rc == 0 && f->stream && pl->o.sink == PM_SINK_FILES && !strcmp(f->path, "-")) {
        f->op_reason = PM_REASON_STDIN_NEEDS_STREAM;
        *msg = strdup("standard input has no name to derive an output file from");
        return -EINVAL;
    }
    if (rc == 0 && pl->o.sink == PM_SINK_FILES)
        rc = open_output(pl, f, msg);
    if (rc == 0 && pm__pl_must_sync(pl, f))
        f->no_sync = volatile_pair(pl, f);
    return rc;
}

/* ---- FINISH, COMMIT, REMOVE ---- */

/* The input must look as it did when opened: same size and mtime. */
static int check_unchanged(pl_file *f, char **msg)
{
    struct stat st;
    if (!S_ISREG(f->pub.st.st_mode))
        return 0;
    if (fstat(f->fd, &st) == 0 && st.st_size == f->pub.st.st_size &&
        st.st_mtim.tv_sec == f->pub.st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == f->pub.st.st_mtim.tv_nsec)
        return 0;
    f->op_reason = PM_REASON_CHANGED;
    *msg = strdup("file changed while being read");
    return -EIO;
}

static int op_finish(pl_file *f, char **msg)
{
    int rc = check_unchanged(f, msg);
    close_fd(&f->fd);
    return rc;
}

static int copy_meta(pm_pipeline *pl, pl_file *f)
{
    const struct stat *st = &f->pub.st;
    if (!(pl->o.flags & PM_PL_PRESERVE_META) || !S_ISREG(st->st_mode))
        return 0;
    mode_t mode = st->st_mode & 07777;
    if (pl->as_root) {
        if (fchown(f->out_fd, st->st_uid, st->st_gid) < 0 && errno != EPERM)
            return -errno;
    } else if (fchown(f->out_fd, (uid_t)-1, st->st_gid) < 0) {
        /* Not a member of the input's group: the output is in ours, so what
         * the input let its group (and others) read must not follow. */
        mode &= ~(mode_t)(S_ISGID | S_IRWXG | S_IRWXO);
    }
    if (fchmod(f->out_fd, mode) < 0)
        return -errno;
    struct timespec times[2] = {st->st_atim, st->st_mtim};
    if (f->pub.out_mtime > 0)
        times[1] = (struct timespec){.tv_sec = (time_t)f->pub.out_mtime};
    if (futimens(f->out_fd, times) < 0)
        return -errno;
    return 0;
}

/* Links the unnamed output as out_base in its directory; replacing an
 * existing file only when overwrite (via a temporary name and rename,
 * which is atomic). */
static int link_tmpfile(pl_file *f, int overwrite)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->out_fd);
    if (linkat(AT_FDCWD, proc, f->dir_fd, f->out_base, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != EEXIST || !overwrite)
        return -errno;
    char *tmp = pm__pl_strdupf(".%s.pmtmp.%ld.%d", f->out_base, (long)getpid(), f->out_fd);
    if (!tmp)
        return -ENOMEM;
    int rc = 0;
    unlinkat(f->dir_fd, tmp, 0);
    if (linkat(AT_FDCWD, proc, f->dir_fd, tmp, AT_SYMLINK_FOLLOW) < 0 ||
        renameat(f->dir_fd, tmp, f->dir_fd, f->out_base) < 0) {
        rc = -errno;
        unlinkat(f->dir_fd, tmp, 0);
    }
    free(tmp);
    return rc;
}

static int link_named(pl_file *f, int overwrite)
{
    int d = f->dir_fd;
    if (overwrite)
        return renameat(d, f->tmp_name, d, f->out_base) < 0 ? -errno : 0;
    if (renameat2(d, f->tmp_name, d, f->out_base, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    if (linkat(d, f->tmp_name, d, f->out_base, 0) < 0)  /* no RENAME_NOREPLACE */
        return -errno;
    unlinkat(d, f->tmp_name, 0);
    return 0;
}

static int link_output(pm_pipeline *pl, pl_file *f, char **msg)
{
    f->op_reason = PM_REASON_OUTPUT;
    int rc = copy_meta(pl, f);
    if (rc < 0) {
        *msg = pm__pl_strdupf("cannot set mode or times of output: %s", strerror(-rc));
        return rc;
    }
    int overwrite = (pl->o.flags & PM_PL_OVERWRITE) != 0;
    rc = f->tmp_name ? link_named(f, overwrite) : link_tmpfile(f, overwrite);
    if (rc < 0) {
        *msg = pm__pl_strdupf("cannot create %s: %s", f->out_path, strerror(-rc));
        return rc;
    }
    free(f->tmp_name);
    f->tmp_name = NULL;
    f->pub.tmp_name = NULL;
    close_fd(&f->out_fd);
    return 0;
}

/* Removes the input if its name (in the directory it was found in) still
 * refers to the file that was read, unchanged; else keeps it. PL_WARN with
 * the reason when it is kept. */
static int remove_input(pm_pipeline *pl, pl_file *f, char **msg)
{
    struct stat st;
    const struct stat *was = &f->pub.st;
    if (!(pl->o.flags & PM_PL_REMOVE_INPUT) || !strcmp(f->path, "-"))
        return 0;
    f->op_reason = PM_REASON_INPUT_KEPT;
    int follow = (pl->o.flags & PM_PL_FOLLOW_SYMLINKS) != 0;   /* the link goes */
    if (fstatat(f->dir->fd, f->base, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0 ||
        st.st_dev != was->st_dev || st.st_ino != was->st_ino ||
        st.st_size != was->st_size || st.st_mtim.tv_sec != was->st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != was->st_mtim.tv_nsec) {
        *msg = strdup("output written, input kept: it was changed or replaced after it was read");
        return PL_WARN;
    }
    if (unlinkat(f->dir->fd, f->base, 0) < 0) {
        *msg = pm__pl_strdupf("output written, but the input could not be removed: %s",
                              strerror(errno));
        return PL_WARN;
    }
    return 0;
}

static int op_commit(pm_pipeline *pl, pl_file *f, char **msg)
{
    int rc = check_unchanged(f, msg);
    if (rc == 0)
        rc = link_output(pl, f, msg);
    if (rc == 0 && !pm__pl_must_sync(pl, f))
        rc = remove_input(pl, f, msg);   /* nothing to wait for in between */
    if (rc >= 0 && !pm__pl_must_sync(pl, f)) {
        close_fd(&f->fd);
        close_out_dir(f);
    }
    return rc;
}

static int op_remove(pm_pipeline *pl, pl_file *f, char **msg)
{
    int rc = remove_input(pl, f, msg);
    close_fd(&f->fd);
    close_out_dir(f);
    return rc;
}

int pm__pl_op_run(pm_pipeline *pl, pl_file *f, char **msg)
{
    *msg = NULL;
    f->op_reason = PM_REASON_NONE;
    switch (f->op) {
    case PL_OP_OPEN:   return op_open(pl, f, msg);
    case PL_OP_FINISH: return op_finish(f, msg);
    case PL_OP_COMMIT: return op_commit(pl, f, msg);
    case PL_OP_REMOVE: return op_remove(pl, f, msg);
    }
    return -EINVAL;
}

void pm__pl_release(pl_file *f, int discard)
{
    close_fd(&f->out_fd);
    if (discard && f->tmp_name && f->dir_fd >= 0)
        unlinkat(f->dir_fd, f->tmp_name, 0);
    free(f->tmp_name);
    f->tmp_name = NULL;
    f->pub.tmp_name = NULL;
    close_out_dir(f);
    close_fd(&f->fd);
}

/* ---- a whole small file's read and write (stages.c) ---- */

ssize_t pm__pl_pread_all(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;          /* a file that grew fails the commit's check */
}

int pm__pl_pwrite_all(int fd, const unsigned char *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* ---- directory handles ---- */

pl_dirh *pm__pl_dirh_new(int fd)
{
    pl_dirh *h = malloc(sizeof *h);
    if (h) {
        h->refs = 1;
        h->fd = fd;
    }
    return h;
}

pl_dirh *pm__pl_dirh_ref(pl_dirh *h)
{
    if (h)
        h->refs++;
    return h;
}

void pm__pl_dirh_unref(pl_dirh *h)
{
    if (h && --h->refs == 0) {
        close(h->fd);
        free(h);
    }
}
