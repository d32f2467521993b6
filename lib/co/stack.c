/* stack.c - task stacks for lib/co.
 *
 * Each stack is its own anonymous mapping (MAP_NORESERVE: only the pages a
 * task touches cost memory), with one guard page at its low end, since
 * stacks grow down. The guard is made with MADV_GUARD_INSTALL (Linux 6.13)
 * where the kernel has it: the page faults with SIGSEGV like PROT_NONE but
 * the mapping is not split, so neighbouring stacks merge into few VMAs and
 * 100,000 stacks stay far below vm.max_map_count (65530 by default). On
 * older kernels mprotect(PROT_NONE) is used: two VMAs per stack, so about
 * 32,000 live tasks at most there (spawn then fails with -ENOMEM).
 *
 * The pm__co_stack record sits in the mapping's top bytes; the usable
 * stack ends below it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "co/co_internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102   /* linux/mman.h, Linux 6.13 */
#endif

enum { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };
static atomic_int guard_how;     /* learnt at the first stack, per process */

static size_t page_size(void)
{
    static atomic_size_t ps;
    size_t p = atomic_load_explicit(&ps, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&ps, p, memory_order_relaxed);
    }
    return p;
}

static int install_guard(void *p, size_t len)
{
    int how = atomic_load_explicit(&guard_how, memory_order_relaxed);
    if (how != GUARD_MPROTECT) {
        if (madvise(p, len, MADV_GUARD_INSTALL) == 0) {
            atomic_store_explicit(&guard_how, GUARD_MADVISE, memory_order_relaxed);
            return 0;
        }
        if (errno != EINVAL)
            return -errno;
        atomic_store_explicit(&guard_how, GUARD_MPROTECT, memory_order_relaxed);
    }
    return mprotect(p, len, PROT_NONE) < 0 ? -errno : 0;
}

pm__co_stack *pm__co_stack_new(size_t size, int guard, int *err)
{
    size_t ps = page_size();
    size_t g = guard ? ps : 0;
    size_t len = (size + sizeof(pm__co_stack) + ps - 1) / ps * ps + g;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        *err = errno == EAGAIN ? -ENOMEM : -errno;
        return NULL;
    }
    int rc = g ? install_guard(map, g) : 0;
    if (rc < 0) {
        munmap(map, len);
        *err = rc == -EAGAIN ? -ENOMEM : rc;
        return NULL;
    }
    pm__co_stack *st = (pm__co_stack *)(map + len - sizeof *st);
    st->map = map;
    st->map_len = len;
    st->guard = g;
    st->lo = map + g;
    st->size = (size_t)((char *)st - (char *)st->lo) & ~(size_t)15;
    return st;
}

void pm__co_stack_free(pm__co_stack *st)
{
    if (st)
        munmap(st->map, st->map_len);
}

const char *pm__co_guard_kind(void)
{
    switch (atomic_load_explicit(&guard_how, memory_order_relaxed)) {
    case GUARD_MADVISE:
        return "madvise";
    case GUARD_MPROTECT:
        return "mprotect";
    default:
        return "none";
    }
}
