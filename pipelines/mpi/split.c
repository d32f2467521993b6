/* split.c - one big file checksummed or counted by every rank at once
 * (pmap-mpi checksum and wc; dist.c decides which files and opens them).
 *
 * Rank r of n takes bytes [size*r/n, size*(r+1)/n) of the file, maps them
 * and works on them in 4 MiB pieces on its OpenMP threads, the pieces
 * joined in order: CRC-32s with pm_crc32_combine(), wc's counts with
 * pmp__wc_join() (wc_count.h, the join wc's own stages use, so a word cut
 * by a piece's or a rank's boundary is counted once). Rank 0 gathers the
 * ranks' parts and joins them in rank order, which gives the CRC of the
 * whole file (zlib.crc32's, as pmap checksum's) or the counts pmap wc
 * gives. A rank that cannot read its part (could not open the file, finds
 * its size changed, cannot map it) makes the whole call fail on rank 0,
 * which then runs the file as one process would, so that its error is
 * reported in one process's words.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>
#include <pmap/gz.h>

#include "split.h"

#define PIECE (4u << 20)

typedef struct part {
    int32_t err;             /* 0 or a negative errno */
    uint32_t crc;            /* split_crc */
    uint64_t len;
    pmp__wc_part wc;         /* split_wc */
} part;

/* What a rank computes on its mapped share: part's crc or wc. */
typedef void (*share_fn)(part *p, const unsigned char *data, uint64_t len, int arg);

static uint64_t piece_len(uint64_t len, uint64_t k)
{
    return len - k * PIECE < PIECE ? len - k * PIECE : PIECE;
}

/* CRC-32 of data[0..len), in pieces on the OpenMP threads. */
static void crc_parallel(part *p, const unsigned char *data, uint64_t len, int unused)
{
    (void)unused;
    uint64_t np = (len + PIECE - 1) / PIECE;
    uint32_t *crcs = malloc((np ? np : 1) * sizeof *crcs);
    if (!crcs) {
        p->crc = pm_crc32(0, data, len);
        return;
    }
    #pragma omp parallel for schedule(dynamic)
    for (uint64_t k = 0; k < np; k++)
        crcs[k] = pm_crc32(0, data + k * PIECE, piece_len(len, k));
    uint32_t crc = 0;
    for (uint64_t k = 0; k < np; k++)
        crc = pm_crc32_combine(crc, crcs[k], piece_len(len, k));
    free(crcs);
    p->crc = crc;
}

/* wc's counts of data[0..len), in pieces on the OpenMP threads. */
static void wc_parallel(part *p, const unsigned char *data, uint64_t len, int lines_only)
{
    uint64_t np = (len + PIECE - 1) / PIECE;
    pmp__wc_part *ks = malloc((np ? np : 1) * sizeof *ks);
    if (!ks) {
        pmp__wc_count(&p->wc, data, len, lines_only);
        return;
    }
    #pragma omp parallel for schedule(dynamic)
    for (uint64_t k = 0; k < np; k++)
        pmp__wc_count(&ks[k], data + k * PIECE, piece_len(len, k), lines_only);
    p->wc = (pmp__wc_part){0};
    for (uint64_t k = 0; k < np; k++)
        pmp__wc_join(&p->wc, &ks[k]);
    free(ks);
}

/* This rank's share of fd, a file of size bytes (or a negative errno):
 * bytes [size*r/n, size*(r+1)/n), mapped and given to fn. */
static part read_share(int fd, uint64_t size, share_fn fn, int arg)
{
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    uint64_t un = (uint64_t)n, r = (uint64_t)rank;
    uint64_t lo = size / un * r + size % un * r / un;
    uint64_t hi = size / un * (r + 1) + size % un * (r + 1) / un;
    part p = {.len = hi - lo};
    struct stat st;
    if (fd < 0)
        return (part){.err = fd};
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
        return (part){.err = -ESTALE};       /* changed since it was listed */
    if (hi == lo)
        return p;
    uint64_t base = lo & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
    void *m = mmap(NULL, hi - base, PROT_READ, MAP_PRIVATE, fd, (off_t)base);
    if (m == MAP_FAILED)
        return (part){.err = -errno};
    madvise(m, hi - base, MADV_SEQUENTIAL);
    fn(&p, (const unsigned char *)m + (lo - base), hi - lo, arg);
    munmap(m, hi - base);
    return p;
}

/* Collective: every rank's part, in rank order, in a malloc'd array on
 * rank 0 (NULL elsewhere). Out of memory aborts the job: the others wait. */
static part *gather_parts(const part *mine)
{
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    part *all = rank == 0 ? malloc((size_t)n * sizeof *all) : NULL;
    if (rank == 0 && !all)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Gather(mine, sizeof *mine, MPI_BYTE, all, sizeof *mine, MPI_BYTE, 0, MPI_COMM_WORLD);
    return all;
}

int pmpi__split_crc(int fd, uint64_t size, uint32_t *crc_ret)
{
    part mine = read_share(fd, size, crc_parallel, 0);
    part *all = gather_parts(&mine);
    if (!all)
        return 0;
    int n, err = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    uint32_t crc = 0;
    for (int r = 0; r < n && !err; r++) {
        err = all[r].err;
        crc = pm_crc32_combine(crc, all[r].crc, all[r].len);
    }
    free(all);
    *crc_ret = crc;
    return err;
}

int pmpi__split_wc(int fd, uint64_t size, int lines_only, pmp__wc_part *wc_ret)
{
    part mine = read_share(fd, size, wc_parallel, lines_only);
    part *all = gather_parts(&mine);
    if (!all)
        return 0;
    int n, err = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    pmp__wc_part wc = {0};
    for (int r = 0; r < n && !err; r++) {
        err = all[r].err;
        pmp__wc_join(&wc, &all[r].wc);
    }
    free(all);
    *wc_ret = wc;
    return err;
}
