/* pmap/config.h - the one source of pmap's run-time configuration.
 *
 * Every count and choice that can come from the environment is read here,
 * and only here, so the pool, the pipelines, the I/O loop and the CLI agree:
 *
 *   PMAP_JOBS            worker count: a whole number from 1 to PM_MAX_JOBS
 *                        (no sign, no spaces). Unset: the CPUs this process
 *                        may run on (its affinity mask, as taskset sets it).
 *   PMAP_IO              I/O engine of the event loop: auto, uring (or
 *                        io_uring), threads.
 *   PMAP_DEFLATE_ENGINE  deflate engine for testing and comparisons:
 *                        libdeflate, isal, zlib (every block, at the same
 *                        level number where the engine has it).
 *   PMAP_INFLATE_ENGINE  the streaming decoder's inflate engine: isal (the
 *                        default), zlib.
 *
 * A variable that is set, even to the empty string, must be well formed: a
 * malformed one is an error (-EINVAL) wherever its default is asked for,
 * never silently ignored. pm_config_check() names the first bad one.
 * Everything here is thread-safe and reads the environment on each call.
 */
#ifndef PMAP_CONFIG_H
#define PMAP_CONFIG_H

#include <stddef.h>

#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_MAX_JOBS 1024

/* CPUs this process may run on: the size of its affinity mask, else the
 * online CPUs. Always >= 1. */
PM_API int pm_cpu_count(void);

/* The default worker count: PMAP_JOBS when set, else pm_cpu_count().
 * Returns it (1..PM_MAX_JOBS) or -EINVAL when PMAP_JOBS is malformed. */
PM_API int pm_default_jobs(void);

/* A worker count given by a caller, where 0 means "the default": returns
 * jobs itself when 1..PM_MAX_JOBS, pm_default_jobs() for 0, -EINVAL else. */
PM_API int pm_resolve_jobs(int jobs);

/* Parses a count as PMAP_JOBS is parsed: decimal digits only, 1..max.
 * Returns 0 and sets *n_ret, or -EINVAL. */
PM_API int pm_parse_count(const char *s, long max, long *n_ret);

/* Checks every PMAP_* variable. Returns 0, or -EINVAL with a message naming
 * the variable, its value and what is expected written into msg (cap
 * bytes; msg may be NULL when cap is 0). */
PM_API int pm_config_check(char *msg, size_t cap);

/* PMAP_IO: 0 when unset, empty or "auto"; 1 for uring; 2 for threads (the
 * values of pm_loop_engine); -EINVAL when it names nothing known. */
PM_API int pm_config_io_engine(void);

/* PMAP_DEFLATE_ENGINE: its value, or NULL when unset or empty. Which names
 * are valid is the codec's business (pm_config_check asks it). */
PM_API const char *pm_config_deflate_engine(void);
/* PMAP_INFLATE_ENGINE, likewise. */
PM_API const char *pm_config_inflate_engine(void);

#ifdef __cplusplus
}
#endif
#endif
