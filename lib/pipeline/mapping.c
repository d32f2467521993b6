/* mapping.c - chunks that point into a mapping of their file instead of a
 * copy of it (PM_PL_MAP_INPUT).
 *
 * Why: a cached file read into the chunks' buffers is copied by the I/O
 * thread alone (one core, about 5.5 GB/s here) while the stages of a
 * checksum or a count run at 10 GB/s per core: the copy is the limit. A
 * mapped chunk costs the I/O thread one mmap per window, and its pages are
 * faulted in by the workers that read them, in parallel.
 *
 * Windows: the I/O thread maps a regular file a window at a time
 * (PL_MAP_WINDOW, a whole number of chunks, plus the overlap before its
 * first chunk), read-only, and points each chunk's data into the window
 * its bytes lie in. A window is counted by the chunks inside it and by its
 * file while the file's next chunk may still land in it (`refs`, I/O
 * thread only); the last reference unmaps it, so what is mapped follows
 * the live chunks (the max_chunks bound) within a window or two per file
 * being read. When a window cannot be mapped (mmap fails, no registry slot
 * is free, our SIGBUS handler is not in place) the file is read as usual
 * from there on.
 *
 * Truncation: a page of a mapping that lies wholly past the file's end
 * raises SIGBUS when touched -- a file cut short while a stage reads it.
 * A process-wide handler, installed with the first window, looks the
 * faulting address up in the registry of live windows: inside one, it
 * marks the window (`bus`) and maps anonymous zero pages over the rest of
 * it, so the stage goes on reading zeros; the worker then fails the file
 * as changed while being read (stages.c), and nothing of it is reported.
 * A SIGBUS outside every window goes to the handler that was there before
 * (the default one kills the process, as it would have). A program that
 * replaces the handler later keeps its own: windows are then no longer
 * mapped, files are read.
 *
 * Registry: fixed slots of (owner, start, end). A window claims a slot
 * before publishing its range, and withdraws the range before the slot is
 * released and the pages unmapped, so the handler (which runs on the
 * faulting worker while that worker's chunk holds a reference) only ever
 * matches a live window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pipeline_internal.h"

#define PL_MAP_WINDOW (4u << 20)  /* bytes of chunks per window (at least one) */
#define PL_MAP_SLOTS 256          /* live windows in the process */

struct pl_map {
    unsigned char *base;          /* the mapping, at file offset `off` */
    size_t len;                   /* bytes mapped */
    uint64_t off;
    unsigned refs;                /* chunks inside, + 1 while its file's current */
    unsigned slot;
    atomic_int bus;               /* a page past the file's end was touched */
};

static struct {
    _Atomic(pl_map *) owner;
    _Atomic uintptr_t start, end;
} map_slots[PL_MAP_SLOTS];

static pthread_once_t bus_once = PTHREAD_ONCE_INIT;
static struct sigaction bus_prev;     /* the handler ours replaced */
static uintptr_t page_mask;           /* page size - 1, known before any window */
static int bus_installed;

/* A SIGBUS that is not ours: as if our handler were not there. */
static void bus_pass_on(int sig, siginfo_t *si, void *uc)
{
    if (bus_prev.sa_flags & SA_SIGINFO) {
        bus_prev.sa_sigaction(sig, si, uc);
        return;
    }
    if (bus_prev.sa_handler != SIG_DFL && bus_prev.sa_handler != SIG_IGN) {
        bus_prev.sa_handler(sig);
        return;
    }
    if (bus_prev.sa_handler == SIG_IGN && si->si_code <= 0)
        return;                         /* sent, and ignored before us */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, NULL);
    if (si->si_code <= 0)
        raise(sig);                     /* sent: delivered when we return */
    /* a fault: the access runs again and the default action follows */
}

static void on_bus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (unsigned i = 0; si->si_code > 0 && i < PL_MAP_SLOTS; i++) {
        pl_map *m = atomic_load(&map_slots[i].owner);
        uintptr_t end = atomic_load(&map_slots[i].end);
        uintptr_t start = atomic_load(&map_slots[i].start);
        if (!m || a < start || a >= end)
            continue;
        int saved = errno;
        uintptr_t page = a & ~page_mask;
        atomic_store(&m->bus, 1);
        void *z = mmap((void *)page, end - page, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        errno = saved;
        if (z != MAP_FAILED)
            return;                     /* the stage reads zeros from here */
        break;
    }
    bus_pass_on(sig, si, uc);
}

static void bus_install(void)
{
    page_mask = (uintptr_t)sysconf(_SC_PAGESIZE) - 1;
    struct sigaction sa = {.sa_sigaction = on_bus, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    bus_installed = sigaction(SIGBUS, &sa, &bus_prev) == 0;
}

/* Is our handler (still) the one in place? */
static int bus_ready(void)
{
    pthread_once(&bus_once, bus_install);
    struct sigaction cur;
    return bus_installed && sigaction(SIGBUS, NULL, &cur) == 0 &&
           (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_bus;
}

static int slot_claim(pl_map *m)
{
    for (unsigned i = 0; i < PL_MAP_SLOTS; i++) {
        pl_map *none = NULL;
        if (atomic_compare_exchange_strong(&map_slots[i].owner, &none, m)) {
            m->slot = i;
            atomic_store(&map_slots[i].start, (uintptr_t)m->base);
            atomic_store(&map_slots[i].end,
                         ((uintptr_t)m->base + m->len + page_mask) & ~page_mask);
            return 0;
        }
    }
    return -EAGAIN;
}

static void slot_release(pl_map *m)
{
    atomic_store(&map_slots[m->slot].end, 0);
    atomic_store(&map_slots[m->slot].start, 0);
    atomic_store(&map_slots[m->slot].owner, NULL);
}

/* Maps f's window whose first chunk starts at off. NULL: read instead. */
static pl_map *window_new(pm_pipeline *pl, pl_file *f, uint64_t off)
{
    const pm_pipeline_opts *o = &pl->o;
    if (!bus_ready())
        return NULL;
    uint64_t size = (uint64_t)f->pub.st.st_size;
    uint64_t span = o->chunk_size >= PL_MAP_WINDOW
                        ? o->chunk_size
                        : PL_MAP_WINDOW / o->chunk_size * o->chunk_size;
    uint64_t end = size - off < span ? size : off + span;
    uint64_t start = (off < o->overlap ? 0 : off - o->overlap) & ~(uint64_t)page_mask;
    pl_map *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->off = start;
    m->len = (size_t)(end - start);
    void *p = mmap(NULL, m->len, PROT_READ, MAP_SHARED, f->fd, (off_t)start);
    if (p == MAP_FAILED) {
        free(m);
        return NULL;
    }
    m->base = p;
    if (slot_claim(m) < 0) {
        munmap(p, m->len);
        free(m);
        return NULL;
    }
    m->refs = 1;
    return m;
}

void pm__pl_map_put(pl_map *m)
{
    if (!m || --m->refs > 0)
        return;
    slot_release(m);                   /* before the pages go */
    munmap(m->base, m->len);
    free(m);
}

void pm__pl_map_drop(pl_file *f)
{
    pm__pl_map_put(f->map);
    f->map = NULL;
}

const unsigned char *pm__pl_map_chunk(pm_pipeline *pl, pl_file *f, pl_chunk *c)
{
    uint64_t from = c->pub.offset - c->pub.prefix_len, to = c->pub.offset + c->pub.len;
    pl_map *m = f->map;
    if (!m || from < m->off || to > m->off + m->len) {
        pm__pl_map_drop(f);
        if (!(m = window_new(pl, f, c->pub.offset))) {
            f->map_failed = 1;             /* read the rest of it */
            return NULL;
        }
        f->map = m;
    }
    m->refs++;
    c->map = m;
    return m->base + (c->pub.offset - m->off);
}

int pm__pl_map_bus(const pl_chunk *c)
{
    return c->map && atomic_load(&c->map->bus);
}
