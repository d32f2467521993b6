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
    /* The pipelines' workers ask other ranks for members (members.c); with
     * less than MPI_THREAD_MULTIPLE, no file is compressed across ranks. */
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
        return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) {
        pmpi_serve();
        MPI_Finalize();
        return 0;
    }
    atexit(finish);
    exit(pmap_cli_main(argc, argv));
}
