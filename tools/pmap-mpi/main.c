/* main.c - pmap-mpi: the pmap command under MPI (PM_MPI=ON; docs/scale.md).
 *
 * `mpirun -np N pmap-mpi COMMAND [options] PATH...` takes pmap's command
 * line. Rank 0 runs pmap's own CLI (the files of tools/pmap, built a second time
 * with its main() renamed pmap_cli_main and its calls to pmp_compress(),
 * pmp_decompress(), pmp_checksum() and pmp_wc() renamed to the pmpi_*
 * versions of pipelines/mpi/pmp_mpi.h), so parsing, messages, output and
 * exit status are pmap's. Every other rank serves the rounds those calls
 * start and prints nothing.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include <mpi.h>

#include "pmp_mpi.h"

int pmap_cli_main(int argc, char **argv);

/* Rank 0, at exit (a return from the CLI or an exit() inside it). */
static void finish(void)
{
    pmpi_finish();
    MPI_Finalize();
}

int main(int argc, char **argv)
{
    int provided, rank;
    /* The signals pmap's CLI waits for (pm_signals_start) are blocked
     * before MPI_Init starts Open MPI's threads, so that they inherit the
     * mask: a SIGTERM (mpirun ending the job when a rank died) then reaches
     * the CLI's signal thread, which cancels the run -- its outputs'
     * temporaries are removed -- instead of one of those threads, where it
     * would kill the process at once. Serving ranks take them as before. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    /* The pipelines' workers ask other ranks for members (members.c); with
     * less than MPI_THREAD_MULTIPLE, no file is compressed across ranks. */
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pmpi_serve();
        MPI_Finalize();
        return 0;
    }
    atexit(finish);
    exit(pmap_cli_main(argc, argv));
}
