/* split.c - one big file checksummed by every rank at once (pmap-mpi
 * checksum; dist.c decides which files).
 *
 * Rank r of n takes bytes [size*r/n, size*(r+1)/n) of the file, maps them
 * and computes their CRC-32 in 4 MiB pieces on its OpenMP threads, the
 * pieces joined in order with pm_crc32_combine(); rank 0 gathers the
 * ranks' CRCs and lengths and joins them in rank order, which gives the CRC
 * of the whole file (zlib.crc32's, as pmap checksum's). A rank that cannot
 * read its part (or finds the file's size changed) makes the whole call
 * fail on rank 0, which then runs the file as one process would, so that
 * its error is reported in one process's words.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
    uint32_t crc;
    uint64_t len;
} part;

/* CRC-32 of data[0..len), in pieces on the OpenMP threads. */
static uint32_t crc_parallel(const unsigned char *data, uint64_t len)
{
    uint64_t np = (len + PIECE - 1) / PIECE;
    uint32_t *crcs = malloc((np ? np : 1) * sizeof *crcs);
    if (!crcs)
        return pm_crc32(0, data, len);
    #pragma omp parallel for schedule(dynamic)
    for (uint64_t k = 0; k < np; k++) {
        uint64_t n = len - k * PIECE < PIECE ? len - k * PIECE : PIECE;
        crcs[k] = pm_crc32(0, data + k * PIECE, n);
    }
    uint32_t crc = 0;
    for (uint64_t k = 0; k < np; k++) {
        uint64_t n = len - k * PIECE < PIECE ? len - k * PIECE : PIECE;
        crc = pm_crc32_combine(crc, crcs[k], n);
    }
    free(crcs);
    return crc;
}

/* This rank's part of path: [lo, hi) of a file of size bytes. */
static part crc_range(const char *path, uint64_t size, uint64_t lo, uint64_t hi)
{
    part p = {.len = hi - lo};
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0)
        return (part){.err = -errno};
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        close(fd);
        return (part){.err = -ESTALE};       /* changed since it was listed */
    }
    if (hi > lo) {
        uint64_t base = lo & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
        void *m = mmap(NULL, hi - base, PROT_READ, MAP_PRIVATE, fd, (off_t)base);
        if (m == MAP_FAILED) {
            p.err = -errno;
        } else {
            madvise(m, hi - base, MADV_SEQUENTIAL);
            p.crc = crc_parallel((const unsigned char *)m + (lo - base), hi - lo);
            munmap(m, hi - base);
        }
    }
    close(fd);
    return p;
}

int pmpi__split_crc(const char *path, uint64_t size, uint32_t *crc_ret)
{
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    uint64_t lo = size / (uint64_t)n * (uint64_t)rank + size % (uint64_t)n * (uint64_t)rank / (uint64_t)n;
    uint64_t hi = size / (uint64_t)n * (uint64_t)(rank + 1) +
                  size % (uint64_t)n * (uint64_t)(rank + 1) / (uint64_t)n;
    part mine = crc_range(path, size, lo, hi);
    part *all = rank == 0 ? malloc((size_t)n * sizeof *all) : NULL;
    if (rank == 0 && !all)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Gather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank != 0)
        return 0;
    int err = 0;
    uint32_t crc = 0;
    for (int r = 0; r < n && !err; r++) {
        err = all[r].err;
        crc = pm_crc32_combine(crc, all[r].crc, all[r].len);
    }
    free(all);
    *crc_ret = crc;
    return err;
}
