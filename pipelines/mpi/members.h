/* members.h - one file compressed or decompressed by every rank
 * (members.c). Private to
 * pipelines/mpi/. */
#ifndef PMPI_MEMBERS_H
#define PMPI_MEMBERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "pipelines.h"

/* Which file every rank reads: rank 0's view of it, compared by the
 * others (not the device: it differs from node to node on a shared
 * filesystem). */
typedef struct pmpi_ident {
    uint64_t ino, size;
    int64_t mtime_sec, mtime_nsec;
} pmpi_ident;

void pmpi__ident_of(pmpi_ident *id, const struct stat *st);
/* Is st a regular file with id's inode, size and mtime? */
int pmpi__ident_same(const pmpi_ident *id, const struct stat *st);

/* Whether files can be compressed or decompressed across ranks: more than one rank, and
 * MPI called from any thread (MPI_THREAD_MULTIPLE). */
int pmpi__members_ok(void);

/* Rank 0: sets o up for compressing a file across ranks (member_source,
 * member_placed, member_end: members.c's design comment). member_source:
 * chunk k is rank (k mod ranks)'s; returns 0 for rank 0's own, else asks
 * its rank to encode it and returns PMP_MEMBER_ELSEWHERE with its size (or
 * the rank's -errno, -EIO); the rank writes it once member_placed tells it
 * the offset, and member_end fails the file if any rank's writes failed.
 * member_source returns -ESTALE when the file rank 0's pipeline opened is
 * not `ident` (the file the others read). Thread-safe. One file at a
 * time. With decode (decompress), the same with unpack_source and
 * unpack_drop in member_source's place: chunk k's whole members are
 * decoded by its rank, which writes their output where member_placed
 * says. */
void pmpi__members_setup(pmp_opts *o, const pmpi_ident *ident, int decode);
int pmpi__member_source(const pm_chunk *c, unsigned char *out, size_t cap, size_t *len,
                        void *arg);
/* Rank 0, after the file's run, whatever its outcome: releases the others. */
void pmpi__members_end(void);

/* Other ranks: answers rank 0's requests for members of the input open
 * as fd (a negative errno: every request gets it, which fails the file on
 * rank 0), with the codec and level of the run (0: the codec's default),
 * encoding them (compress) or, with decode, decoding them (decompress),
 * and writes them into the output's temporary in the input's directory
 * (dir_fd, or in_path's when dir_fd is -1), until
 * pmpi__members_end(). Does not close fd. Holds at most the members rank
 * 0 has in flight. */
void pmpi__members_serve(int fd, int dir_fd, const char *codec, int level, int decode,
                         const char *in_path);

#endif
