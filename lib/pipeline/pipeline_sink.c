/* pipeline_sink.c - opening inputs and committing outputs safely.
 *
 * An output is first an unnamed file (O_TMPFILE) in the directory where it
 * will live, so a crash or kill -9 leaves nothing behind; filesystems without
 * O_TMPFILE get a hidden ".NAME.pmtmp.XXXXXX" file instead. When the output
 * is complete (and synced, when the input is to be removed), it gets the
 * input's owner, mode and times and is linked under its final name — without
 * replacing an existing file unless PM_PL_OVERWRITE. The input is removed by
 * the caller only after that link is durable (directory fsync).
 * Runs on the I/O thread only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline_internal.h"

int pm__pl_open_input(pm_pipeline *pl, pl_file *f, char **msg)
{
    *msg = NULL;
    if (!strcmp(f->path, "-")) {
        f->fd = STDIN_FILENO;
        f->stream = 1;
        if (fstat(f->fd, &f->pub.st) < 0)
            return -errno;
        f->stream = !S_ISREG(f->pub.st.st_mode);
        return 0;
    }
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
    if (!(pl->o.flags & PM_PL_FOLLOW_SYMLINKS))
        flags |= O_NOFOLLOW;
    f->fd = open(f->path, flags);
    if (f->fd < 0)
        return -errno;
    if (fstat(f->fd, &f->pub.st) < 0)
        return -errno;
    if (S_ISDIR(f->pub.st.st_mode))
        return -EISDIR;
    f->stream = !S_ISREG(f->pub.st.st_mode);
    return 0;
}

void pm__pl_close_input(pm_pipeline *pl, pl_file *f)
{
    (void)pl;
    if (f->fd > STDIN_FILENO)
        close(f->fd);
    f->fd = -1;
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

static int open_named_tmp(pl_file *f, const char *dir, const char *base)
{
    f->tmp_path = pm__pl_strdupf("%s/.%s.pmtmp.XXXXXX", dir, base);
    if (!f->tmp_path)
        return -ENOMEM;
    f->out_fd = mkostemp(f->tmp_path, O_CLOEXEC);
    if (f->out_fd < 0) {
        int err = -errno;
        free(f->tmp_path);
        f->tmp_path = NULL;
        return err;
    }
    return 0;
}

int pm__pl_open_output(pm_pipeline *pl, pl_file *f, char **msg)
{
    char buf[PATH_MAX];
    *msg = NULL;
    buf[0] = '\0';
    int rc = pl->o.out_path(&f->pub, buf, sizeof buf, pl->o.arg);
    if (rc != 0) {
        *msg = buf[0] ? strdup(buf) : NULL;
        return rc == PM_PL_SKIP ? PM_PL_SKIP : (rc < 0 ? rc : -EINVAL);
    }
    if (!(f->out_path = strdup(buf)))
        return -ENOMEM;
    f->pub.out_path = f->out_path;
    struct stat st;
    if (lstat(f->out_path, &st) == 0) {
        if (st.st_dev == f->pub.st.st_dev && st.st_ino == f->pub.st.st_ino) {
            *msg = strdup("output would be the input itself");
            return -EINVAL;
        }
        if (!(pl->o.flags & PM_PL_OVERWRITE)) {
            *msg = pm__pl_strdupf("%s already exists; not overwritten", f->out_path);
            return PM_PL_SKIP;
        }
    }
    const char *base;
    char *dir = dir_of(f->out_path, &base);
    if (!dir)
        return -ENOMEM;
    f->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd < 0) {
        rc = -errno;
        *msg = pm__pl_strdupf("cannot open output directory %s: %s", dir, strerror(errno));
        free(dir);
        return rc;
    }
    f->out_fd = openat(f->dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    rc = 0;
    if (f->out_fd < 0) {
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL || errno == ENOENT)
            rc = open_named_tmp(f, dir, base);
        else
            rc = -errno;
    }
    if (rc < 0)
        *msg = pm__pl_strdupf("cannot create output in %s: %s", dir, strerror(-rc));
    free(dir);
    return rc;
}

static int copy_meta(pm_pipeline *pl, pl_file *f)
{
    const struct stat *st = &f->pub.st;
    if (!(pl->o.flags & PM_PL_PRESERVE_META) || !S_ISREG(st->st_mode))
        return 0;
    if (pl->as_root && fchown(f->out_fd, st->st_uid, st->st_gid) < 0 && errno != EPERM)
        return -errno;
    if (fchmod(f->out_fd, st->st_mode & 07777) < 0)
        return -errno;
    struct timespec times[2] = {st->st_atim, st->st_mtim};
    if (f->pub.out_mtime > 0)
        times[1] = (struct timespec){.tv_sec = (time_t)f->pub.out_mtime};
    if (futimens(f->out_fd, times) < 0)
        return -errno;
    return 0;
}

/* Links the unnamed output at `to`; replacing an existing file only when
 * overwrite (via a temporary name and rename, which is atomic). */
static int link_tmpfile(pl_file *f, const char *to, int overwrite)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->out_fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != EEXIST || !overwrite)
        return -errno;
    char *tmp = pm__pl_strdupf("%s.pmtmp.%ld", to, (long)getpid());
    if (!tmp)
        return -ENOMEM;
    int rc = 0;
    unlink(tmp);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) < 0 || rename(tmp, to) < 0) {
        rc = -errno;
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static int link_named(pl_file *f, const char *to, int overwrite)
{
    if (overwrite)
        return rename(f->tmp_path, to) < 0 ? -errno : 0;
    if (renameat2(AT_FDCWD, f->tmp_path, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    if (link(f->tmp_path, to) < 0)     /* filesystems without RENAME_NOREPLACE */
        return -errno;
    unlink(f->tmp_path);
    return 0;
}

int pm__pl_link_output(pm_pipeline *pl, pl_file *f, char **msg)
{
    *msg = NULL;
    int rc = copy_meta(pl, f);
    if (rc < 0) {
        *msg = pm__pl_strdupf("cannot set mode or times of output: %s", strerror(-rc));
        return rc;
    }
    int overwrite = (pl->o.flags & PM_PL_OVERWRITE) != 0;
    rc = f->tmp_path ? link_named(f, f->out_path, overwrite)
                     : link_tmpfile(f, f->out_path, overwrite);
    if (rc < 0) {
        *msg = pm__pl_strdupf("cannot create %s: %s", f->out_path, strerror(-rc));
        return rc;
    }
    free(f->tmp_path);
    f->tmp_path = NULL;
    return 0;
}

void pm__pl_discard_output(pl_file *f)
{
    if (f->out_fd >= 0)
        close(f->out_fd);
    f->out_fd = -1;
    if (f->tmp_path) {
        unlink(f->tmp_path);
        free(f->tmp_path);
        f->tmp_path = NULL;
    }
    if (f->dir_fd >= 0)
        close(f->dir_fd);
    f->dir_fd = -1;
}
