/* proc_int.h - lib/proc's private interface: spawning (spawn.c) and
 * output buffers (obuf.c), used by the runner (runner.c). */
#ifndef PMAP_PROC_INT_H
#define PMAP_PROC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pmap/proc.h>

/* ---- spawn.c ---- */
typedef struct pm__spawn {
    void *stack;                 /* the child's borrowed stack (runner's) */
    size_t stack_size;
    pid_t pid;                   /* out */
    int pidfd;                   /* out */
    int exec_err;                /* out: errno of a failed exec (the child
                                    then exits with 127 or 126), else 0 */
} pm__spawn;

/* Starts path with argv, fd[0..2] as its standard descriptors (none of
 * them may be a standard descriptor other than its own place). Returns 0
 * with s->pid, s->pidfd, s->exec_err set, or -errno of clone. */
int pm__proc_spawn(pm__spawn *s, const char *path, char *const *argv, const int fd[3]);
/* Finds name in PATH (unless it has a '/') and writes the path to buf.
 * Returns 0, -ENOENT or -ENAMETOOLONG. */
int pm__proc_which(const char *name, char *buf, size_t cap);
/* Returns fd moved above 2 when it is 0, 1 or 2 (closing the original),
 * fd otherwise, or -errno. */
int pm__proc_fd_high(int fd);

/* ---- obuf.c: output kept for later, in memory then in a file ---- */
typedef struct pm__obuf {
    char *mem;                   /* the first bytes */
    size_t len, cap;
    int fd;                      /* unlinked temporary file with the rest, or -1 */
    uint64_t flen;               /* bytes in it */
} pm__obuf;

void pm__obuf_init(pm__obuf *b);
/* Appends n bytes: to memory while len + n <= max, else to the file.
 * Returns 0 or -errno. */
int pm__obuf_append(pm__obuf *b, const void *p, size_t n, size_t max);
/* Writes everything to fd (blocking until written). Returns 0 or -errno. */
int pm__obuf_write(const pm__obuf *b, int fd, char *scratch, size_t scratch_size);
/* Frees memory and closes the file; the buffer is empty again. */
void pm__obuf_reset(pm__obuf *b);
/* An unlinked temporary file in $TMPDIR (or /tmp), read-write, above 2.
 * Returns it or -errno. */
int pm__tmpfile(void);
/* Writes all of buf to fd, waiting when fd is non-blocking. 0 or -errno. */
int pm__write_all(int fd, const void *buf, size_t n);

struct pm_output {
    pm__obuf out, err;
};

#endif
