/* pmp_mpi.h - the ready-made pipelines distributed over MPI ranks (built
 * only with PM_MPI=ON; see docs/scale.md).
 *
 * pmpi_compress() and friends have the signatures of pmp_compress() and
 * friends (pipelines.h) and the same behaviour as seen by their caller:
 * the same events and results, in the same (source) order, through the
 * same hooks, and the same return value. They are called on rank 0 only,
 * while every other rank sits in pmpi_serve(). Rank 0 lists the files (the
 * operands, directories walked) and, one window of PMAP_MPI_WINDOW files
 * at a time, sends them to every rank sorted by size, largest first; each
 * rank (rank 0 included) takes the next batch from a shared counter (MPI
 * one-sided fetch-and-add in rank 0's memory) and runs the one-process
 * pipeline on it. Events, results and statistics gather to rank 0, which
 * replays them to the caller's hooks in source order as each window ends.
 *
 * Runs that read stdin or write one stream to stdout (-c) are not split:
 * rank 0 runs them alone. Progress is not reported while distributed.
 *
 * Threads: the MPI calls are made on the thread that called MPI_Init,
 * except when one file is compressed across ranks (members.c): rank 0's
 * pipeline workers then request members themselves, which needs
 * MPI_THREAD_MULTIPLE (without it, such files are one rank's).
 */
#ifndef PMP_MPI_H
#define PMP_MPI_H

#include "pipelines.h"

int pmpi_compress(const pmp_opts *o, const char *const *paths, size_t n,
                  pm_pipeline_stats *stats);
int pmpi_decompress(const pmp_opts *o, const char *const *paths, size_t n,
                    pm_pipeline_stats *stats);
int pmpi_checksum(const pmp_opts *o, const char *const *paths, size_t n,
                  pm_pipeline_stats *stats);
int pmpi_wc(const pmp_opts *o, const char *const *paths, size_t n,
            pm_pipeline_stats *stats);

/* pmp_run_jobs() over the ranks (runjobs.c): rank 0 reads and numbers
 * the arguments, every rank runs jobs on its own slots (-j per rank),
 * rank 0 writes their outputs grouped (in order with -k), keeps the
 * joblog and applies --halt. --pipe and --dry-run stay on rank 0. */
int pmpi_run_jobs(const pmp_run_opts *o, pmp_run_stats *stats);

/* Ranks other than 0: runs the rounds rank 0's pmpi_* calls start, until
 * rank 0 calls pmpi_finish(), and returns 0. A round that cannot be run
 * here (out of memory, a malformed message) aborts the whole job
 * (MPI_Abort): the other ranks would wait for this one forever. */
int pmpi_serve(void);

/* Rank 0: tells the serving ranks to return. Call once, after the last
 * pmpi_* call. */
void pmpi_finish(void);

#endif
