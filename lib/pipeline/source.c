/* source.c - the pipeline's source: the paths given, with
 * directories walked recursively, each directory's entries in byte order of
 * their names (so runs are reproducible). One directory level is held in
 * memory at a time per depth; files are produced lazily as the pipeline asks.
 *
 * Policy applied here, so every pipeline and the CLI share it: symbolic links
 * are skipped unless PM_PL_FOLLOW_SYMLINKS; FIFOs, sockets and devices found
 * by walking are skipped (given by name they are read only with
 * PM_PL_SKIP_SPECIAL_OK); names ending in opts.skip_suffix are skipped, and
 * pmap's own temporary outputs (stale ones, a minute old and owned by no
 * live run, are removed). A link named by the caller is followed when
 * nothing is written beside it (PM_SINK_FD/NONE), as gzip -c does.
 * Entries whose type the directory reports (d_type) are taken without a
 * stat: a regular file is checked when it is opened (fileops.c: O_NOFOLLOW,
 * fstat), a directory when it is read. Runs on the I/O thread only.
 *
 * By descriptor: every directory is held open while it is walked and while
 * any of its files is in flight (pl_dirh); a subdirectory is opened by its
 * name relative to its parent's descriptor with O_NOFOLLOW, an entry is
 * stat'ed with fstatat, and each file found carries a reference to its
 * directory, so that its open, output, link and removal (fileops.c) all
 * happen in the directory that was listed, whatever its path names by then.
 * An argument that comes with a directory descriptor (opts.operand_dirs:
 * a file another process walked) is taken as an entry of that directory,
 * the same way.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pipeline_internal.h"

#define PL_MAX_DEPTH 256

/* Names are stored after their d_type byte. */
static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a + 1, *(char *const *)b + 1);
}

static void dir_free(pl_dir *d)
{
    for (size_t i = d->next; i < d->n; i++)
        free(d->names[i]);
    free(d->names);
    free(d->path);
    pm__pl_dirh_unref(d->h);
    free(d);
}

/* Reads the entry names of the directory open at fd, sorted. Returns 0 or
 * -errno. */
static int dir_read(int fd, pl_dir *d)
{
    int dfd = dup(fd);               /* closedir() closes its own */
    DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
    if (!dir) {
        int err = -errno;
        if (dfd >= 0)
            close(dfd);
        return err;
    }
    size_t cap = 0;
    struct dirent *e;
    int err = 0;
    errno = 0;
    while ((e = readdir(dir)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (d->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(d->names, cap * sizeof *nn);
            if (!nn) {
                err = -ENOMEM;
                break;
            }
            d->names = nn;
        }
        size_t len = strlen(e->d_name);
        char *name = malloc(len + 2);
        if (!name) {
            err = -ENOMEM;
            break;
        }
        name[0] = (char)e->d_type;
        memcpy(name + 1, e->d_name, len + 1);
        d->names[d->n] = name;
        d->n++;
        errno = 0;
    }
    if (!err && errno)
        err = -errno;
    closedir(dir);
    if (!err)
        qsort(d->names, d->n, sizeof *d->names, cmp_names);
    return err;
}

static int depth_of(const pl_dir *d)
{
    int n = 0;
    for (; d; d = d->up)
        n++;
    return n;
}

/* Opens and reads a directory: one named by the caller by its path, one
 * found by the walk by its name in the directory being walked, never
 * through a symbolic link (unless they are followed): a subdirectory
 * swapped for a link after it was listed fails here with ELOOP. */
static int push_dir(pm_pipeline *pl, const char *path, const pl_dir *from, const char *name)
{
    pl_source *src = &pl->src;
    if (depth_of(src->dir) >= PL_MAX_DEPTH)
        return -EMLINK;
    int follow = (pl->o.flags & PM_PL_FOLLOW_SYMLINKS) != 0;
    int fd = from ? openat(from->h->fd, name,
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW))
                  : open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    pl_dir *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path)) || !(d->h = pm__pl_dirh_new(fd))) {
        if (d)
            free(d->path);
        free(d);
        close(fd);
        return -ENOMEM;
    }
    int rc = dir_read(fd, d);
    if (rc < 0) {
        d->next = 0;
        dir_free(d);
        return rc;
    }
    d->up = src->dir;
    src->dir = d;
    return 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    return pm__pl_strdupf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return m > 0 && n >= m && !strcmp(s + n - m, suffix);
}

static int report(pl_found *out, int kind, pm_reason reason, int err, char *msg)
{
    out->kind = kind;
    out->reason = reason;
    out->err = err;
    out->msg = msg;
    return 1;
}

/* pmap's own temporary outputs (fileops.c): ".NAME.pmtmp.XXXXXX" (the
 * named fallback where O_TMPFILE is missing) and ".NAME.pmtmp.PID.FD" (a
 * replacing link on its way to rename). Never inputs. */
static int own_temporary(const char *name)
{
    return name[0] == '.' && strstr(name, ".pmtmp.") != NULL;
}

#define STALE_AFTER 60          /* seconds without a change */

/* Removes a temporary that no live run owns: the run that made a named
 * temporary holds an exclusive lock on it as long as it lives (a process
 * killed loses it), a replacing link names its process; either must also
 * be over a minute old. Returns 1 when it was removed. */
static int clear_stale(int dirfd, const char *name)
{
    struct stat st;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return 0;
    int stale = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                time(NULL) - st.st_mtime > STALE_AFTER;
    const char *tail = strstr(name, ".pmtmp.") + 7;
    long pid;
    char dot;
    if (stale && sscanf(tail, "%ld%c", &pid, &dot) == 2 && dot == '.')
        stale = pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
    else if (stale)
        stale = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (stale) {
        struct stat now;            /* still the file looked at */
        stale = fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
                now.st_dev == st.st_dev && now.st_ino == st.st_ino &&
                unlinkat(dirfd, name, 0) == 0;
    }
    close(fd);
    return stale;
}

/* Decides what to do with path (found in `from` as name, or named by the
 * caller when from is NULL); may push a directory. Returns 1 when the path
 * is to be reported (out set), 0 when it was a directory. */
static int classify(pm_pipeline *pl, const char *path, const pl_dir *from, const char *name,
                    unsigned char dtype, pl_found *out)
{
    const unsigned flags = pl->o.flags;
    int named = from == NULL;
    struct stat st;
    report(out, PM_EVENT_DONE, PM_REASON_NONE, 0, NULL);
    if (dtype == DT_REG || dtype == DT_DIR)
        st.st_mode = dtype == DT_REG ? S_IFREG : S_IFDIR;   /* no stat needed */
    else if ((from ? fstatat(from->h->fd, name, &st, AT_SYMLINK_NOFOLLOW) : lstat(path, &st)) < 0)
        return report(out, PM_EVENT_ERROR, PM_REASON_INPUT, -errno, NULL);
    if (S_ISLNK(st.st_mode)) {
        /* Named by the caller and only read (nothing written beside it):
         * followed, as gzip -c, cat or cksum do. */
        int read_only = named && pl->o.sink != PM_SINK_FILES;
        if (!(flags & PM_PL_FOLLOW_SYMLINKS) && !read_only)
            return report(out, PM_EVENT_SKIP, PM_REASON_SYMLINK, -ELOOP,
                          strdup("is a symbolic link; not followed"));
        if ((from ? fstatat(from->h->fd, name, &st, 0) : stat(path, &st)) < 0)
            return report(out, PM_EVENT_ERROR, PM_REASON_INPUT, -errno, NULL);
    }
    if (S_ISDIR(st.st_mode)) {
        int rc = push_dir(pl, path, from, name);
        if (rc == 0)
            return 0;
        if ((rc == -ELOOP || rc == -ENOTDIR) && from && !(flags & PM_PL_FOLLOW_SYMLINKS) &&
            fstatat(from->h->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            return report(out, PM_EVENT_SKIP, PM_REASON_SYMLINK, -ELOOP,
                          strdup("is a symbolic link now (it was a directory); not followed"));
        if (rc == -EMLINK)
            return report(out, PM_EVENT_ERROR, PM_REASON_INPUT, -ELOOP,
                          pm__pl_strdupf("cannot read directory: nested deeper than %d levels",
                                         PL_MAX_DEPTH));
        return report(out, PM_EVENT_ERROR, PM_REASON_INPUT, rc,
                      pm__pl_strdupf("cannot read directory: %s", strerror(-rc)));
    }
    if (!S_ISREG(st.st_mode) && !(named && (flags & PM_PL_SKIP_SPECIAL_OK)))
        return report(out, PM_EVENT_SKIP, PM_REASON_NOT_REGULAR, -EINVAL,
                      strdup("is not a regular file or directory -- ignored"));
    if (from && own_temporary(name))
        return report(out, PM_EVENT_SKIP, PM_REASON_TEMPORARY, -EEXIST,
                      clear_stale(from->h->fd, name)
                          ? strdup("stale temporary file of an interrupted pmap run -- removed")
                          : strdup("temporary file of a pmap run -- ignored"));
    if (pl->o.skip_suffix && ends_with(path, pl->o.skip_suffix))
        return report(out, PM_EVENT_SKIP, PM_REASON_HAS_SUFFIX, -EEXIST,
                      pm__pl_strdupf("already has %s suffix -- unchanged", pl->o.skip_suffix));
    if (from)
        out->dir = pm__pl_dirh_ref(from->h);
    return 1;
}

/* operand_dirs: makes src->at the directory open at the caller's fd (a
 * duplicate, so that files in flight may keep it past the run's end).
 * 0 or -errno (that file then fails: -EMFILE, -EBADF, -ENOMEM). */
static int operand_dir(pl_source *src, int fd)
{
    if (src->at.h && src->at_fd == fd)
        return 0;
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dfd < 0)
        return -errno;
    pl_dirh *h = pm__pl_dirh_new(dfd);
    if (!h) {
        close(dfd);
        return -ENOMEM;
    }
    pm__pl_dirh_unref(src->at.h);
    src->at.h = h;
    src->at_fd = fd;
    return 0;
}

/* The next path to consider: a directory entry (*from its directory, *name
 * its name inside the returned path) or an argument (*from NULL); NULL at
 * the end, or with *oom set when it could not be allocated. *dir_err: an
 * argument whose directory descriptor (operand_dirs) cannot be used. */
static char *next_path(pl_source *src, pl_dir **from, const char **name, unsigned char *dtype,
                       int *oom, int *dir_err)
{
    for (;;) {
        *from = NULL;
        *oom = 0;
        *dir_err = 0;
        *dtype = DT_UNKNOWN;
        if (src->dir) {
            pl_dir *d = src->dir;
            if (d->next == d->n) {
                src->dir = d->up;
                dir_free(d);
                continue;
            }
            char *entry = d->names[d->next++];
            *dtype = (unsigned char)entry[0];
            char *path = join(d->path, entry + 1);
            free(entry);
            *oom = !path;
            if (path) {
                *from = d;
                *name = strrchr(path, '/') + 1;
            }
            return path;
        }
        if (src->next == src->n)
            return NULL;
        size_t i = src->next++;
        char *path = strdup(src->paths[i]);
        *oom = !path;
        *name = path;
        if (path && src->dirs && src->dirs[i] >= 0) {
            *dir_err = operand_dir(src, src->dirs[i]);
            if (*dir_err < 0)
                return path;
            const char *slash = strrchr(path, '/');
            *name = slash ? slash + 1 : path;
            *from = &src->at;            /* type unknown: fstatat says */
        }
        return path;
    }
}

char *pm__pl_source_next(pm_pipeline *pl, pl_found *out)
{
    pl_source *src = &pl->src;
    for (;;) {
        int oom, dir_err;
        unsigned char dtype;
        pl_dir *from;
        const char *name;
        char *path = next_path(src, &from, &name, &dtype, &oom, &dir_err);
        out->dir = NULL;
        if (!path) {                 /* the end, or out of memory: err says */
            report(out, PM_EVENT_ERROR, PM_REASON_INPUT, oom ? -ENOMEM : 0, NULL);
            return NULL;
        }
        if (dir_err < 0) {            /* found elsewhere, its directory unusable */
            out->walked = 1;
            out->incidental = 0;
            report(out, PM_EVENT_ERROR, PM_REASON_INPUT, dir_err,
                   pm__pl_strdupf("cannot use the directory it was found in: %s",
                                  strerror(-dir_err)));
            return path;
        }
        int named = from == NULL;
        out->walked = !named;
        out->incidental = 0;
        if (named && !strcmp(path, "-")) {
            report(out, PM_EVENT_DONE, PM_REASON_NONE, 0, NULL);
            return path;
        }
        if (classify(pl, path, from, name, dtype, out)) {
            out->incidental = !named && out->kind == PM_EVENT_SKIP &&
                              (out->reason == PM_REASON_HAS_SUFFIX ||
                               out->reason == PM_REASON_TEMPORARY);
            return path;
        }
        free(path);
    }
}

void pm__pl_source_clear(pl_source *src)
{
    pm__pl_dirh_unref(src->at.h);
    src->at.h = NULL;
    src->at_fd = -1;
    while (src->dir) {
        pl_dir *d = src->dir;
        src->dir = d->up;
        dir_free(d);
    }
    src->paths = NULL;
    src->n = src->next = 0;
}
