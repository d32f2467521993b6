/* members.h - one file compressed by every rank (members.c). Private to
 * pipelines/mpi/. */
#ifndef PMPI_MEMBERS_H
#define PMPI_MEMBERS_H

#include <stddef.h>
#include "pipelines.h"

/* Whether files can be compressed across ranks: more than one rank, and
 * MPI called from any thread (MPI_THREAD_MULTIPLE). */
int pmpi__members_ok(void);

/* Rank 0: pmp_opts.member_source for compressing a file across ranks:
 * chunk k is rank (k mod ranks)'s; returns 0 for rank 0's own, else
 * requests the member from its rank (1 with the member in out, or -EIO
 * when that rank could not make it). Thread-safe. */
int pmpi__member_source(const pm_chunk *c, unsigned char *out, size_t cap, size_t *len,
                        void *arg);
/* Rank 0, after the file's run, whatever its outcome: releases the others. */
void pmpi__members_end(void);

/* Other ranks: answers rank 0's requests for members of path (the codec
 * and level of the run; 0: the codec's default) until pmpi__members_end().
 * A request it cannot answer (the file unreadable here) gets an empty
 * reply, which fails the file on rank 0. */
void pmpi__members_serve(const char *path, const char *codec, int level);

#endif
