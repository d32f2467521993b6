/* round.h - what dist.c (the rounds) shares with runjobs.c (`pmap run`
 * over ranks). Private to pipelines/mpi/. */
#ifndef PMPI_ROUND_H
#define PMPI_ROUND_H

#include "wire.h"

/* The first int32 of a round's broadcast, for a run (dist.c's commands
 * are 0..CMD_N-1). */
#define PMPI_CMD_RUN 64

/* Broadcasts w from rank 0 (its length first; 0 means "stop serving").
 * Collective; on the other ranks w receives the bytes. Returns whether
 * there were any. */
int pmpi__bcast_wire(wire *w);
/* A serving rank's side of a run round whose broadcast is tmpl (runjobs.c).
 * Returns 0, or -EBADMSG / -ENOMEM before the run started. */
int pmpi__run_serve(wire *tmpl);

#endif
