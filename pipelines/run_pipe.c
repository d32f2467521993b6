/* run_pipe.c - pmap run --pipe (not yet). */
#include <errno.h>

#include "run_int.h"

int pmp_run_pipe(pmp_state *st)
{
    pmp_err(st->o, "--pipe is not implemented yet");
    return -ENOSYS;
}
