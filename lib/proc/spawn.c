/* spawn.c - starting one child process cheaply and safely (pmap/proc.h).
 *
 * A job starts with clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD): the child
 * borrows the parent's memory on a small stack of the runner's until it
 * calls execve, as glibc's posix_spawn does, so no page tables are copied
 * however large the parent is, and the pidfd comes with the child, ready
 * for poll(). The parent thread is suspended until the exec (or the
 * child's exit), so one stack per runner is enough, and the child reports
 * an exec error through the shared argument block.
 *
 * In the child, before execve: PR_SET_PDEATHSIG(SIGKILL) (then a check
 * that the parent is still there, for the race where it died first), a
 * process group of its own, its three descriptors, SIGPIPE back to the
 * default, and an empty signal mask. Every signal is blocked in the parent
 * thread across clone(), so no handler of the parent's can run on the
 * child's borrowed stack before that mask is set.
 *
 * The PATH lookup happens in the parent (pm__proc_which), so the child
 * runs only system calls between clone and execve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc/proc_int.h"

extern char **environ;

typedef struct child_args {
    const char *path;
    char *const *argv;
    int fd[3];                   /* become 0, 1, 2 */
    pid_t ppid;
    int err;                     /* errno of a failed step, set by the child */
} child_args;

/* ThreadSanitizer intercepts clone() as if it were fork(), and a child
 * sharing the parent's memory (CLONE_VM) breaks its bookkeeping when
 * several threads spawn at once: under TSan jobs start with a plain fork()
 * (which TSan supports), the exec error coming back through a close-on-exec
 * pipe and the pidfd from pidfd_open(). Slower, same behaviour. */
#if defined(__SANITIZE_THREAD__)
#define SPAWN_FORK 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPAWN_FORK 1
#endif
#endif

/* The child runs on a borrowed stack: not instrumented by ASan, which
 * would mistake it for a stack switch. */
#define CHILD_CODE __attribute__((no_sanitize_address, noinline))

/* Makes from descriptor `to` (from is not a standard descriptor's place
 * unless it is `to` itself: pm__proc_fd_high saw to it). */
CHILD_CODE static int move_fd(int from, int to)
{
    if (from == to)
        return fcntl(to, F_SETFD, 0);
    return dup2(from, to) < 0 ? -1 : 0;
}

/* The child's steps up to execve; on a failure, the errno goes to a->err
 * (shared memory, clone) and to report_fd if >= 0 (fork). */
CHILD_CODE static int child_main_report(child_args *a, int report_fd)
{
    sigset_t none;
    sigemptyset(&none);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->ppid)
        _exit(127);
    setpgid(0, 0);
    int i;
    for (i = 0; i < 3; i++)
        if (move_fd(a->fd[i], i))
            break;
    if (i == 3) {
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(a->path, a->argv, environ);
    }
    int e = errno;
    a->err = e;
    if (report_fd >= 0 && write(report_fd, &e, sizeof e) < 0)
        e = errno;   /* nothing else to tell */
    return i < 3 || e == ENOENT ? 127 : 126;
}

#ifndef SPAWN_FORK
CHILD_CODE static int child_main(void *p)
{
    _exit(child_main_report(p, -1));
}
#endif

#ifdef SPAWN_FORK
#include <sys/syscall.h>

int pm__proc_spawn(pm__spawn *s, const char *path, char *const *argv, const int fd[3])
{
    child_args a = { .path = path, .argv = argv, .fd = { fd[0], fd[1], fd[2] },
                     .ppid = getpid() };
    int errp[2];
    if (pipe2(errp, O_CLOEXEC) < 0)
        return -errno;
    for (int i = 0; i < 2; i++)   /* never in 0-2, which the child replaces */
        if ((errp[i] = pm__proc_fd_high(errp[i])) < 0) {
            int e = errp[i];
            close(errp[!i]);      /* errp[i] is closed already */
            return e;
        }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        close(errp[0]);
        int st = child_main_report(&a, errp[1]);
        _exit(st);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(errp[1]);
    if (pid < 0) {
        close(errp[0]);
        return -e;
    }
    int err = 0;
    ssize_t n;
    while ((n = read(errp[0], &err, sizeof err)) < 0 && errno == EINTR)
        ;
    close(errp[0]);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        e = errno;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -e;
    }
    s->pid = pid;
    s->pidfd = pidfd;
    s->exec_err = n == (ssize_t)sizeof err ? err : 0;
    return 0;
}
#else
int pm__proc_spawn(pm__spawn *s, const char *path, char *const *argv, const int fd[3])
{
    child_args a = { .path = path, .argv = argv, .fd = { fd[0], fd[1], fd[2] },
                     .ppid = getpid() };
    sigset_t all, old;
    int pidfd = -1;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child_main, (char *)s->stack + s->stack_size,
                      CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a, &pidfd);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return -e;
    s->pid = pid;
    s->pidfd = pidfd;
    s->exec_err = a.err;
    return 0;
}
#endif

/* An executable regular file? */
static int is_exec(const char *path)
{
    struct stat st;
    return !access(path, X_OK) && !stat(path, &st) && S_ISREG(st.st_mode);
}

int pm__proc_which(const char *name, char *buf, size_t cap)
{
    if (strchr(name, '/')) {
        if (strlen(name) >= cap)
            return -ENAMETOOLONG;
        strcpy(buf, name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    size_t nl = strlen(name);
    for (const char *p = path;; ) {
        size_t dl = strcspn(p, ":");
        if (dl + 1 + nl < cap) {
            memcpy(buf, dl ? p : ".", dl ? dl : 1);
            size_t k = dl ? dl : 1;
            buf[k] = '/';
            memcpy(buf + k + 1, name, nl + 1);
            if (is_exec(buf))
                return 0;
        }
        if (!p[dl])
            break;
        p += dl + 1;
    }
    return -ENOENT;
}

int pm__proc_fd_high(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    return n < 0 ? -e : n;
}
