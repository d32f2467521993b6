/* error.c - pm_strerror: text for negative errno codes.
 *
 * Every string returned is static (error.h promises it): pmap's own
 * wordings, glibc's untranslated description of a code it knows
 * (strerrordesc_np, a pointer into a constant table, MT-Safe), and one
 * fixed "unknown error" for everything else. strerror() is not used: for a
 * code glibc does not know it formats "Unknown error N" into a per-thread
 * buffer that the thread's next such call, or its exit, frees, so a caller
 * holding the first string would read freed memory. INT_MIN has no
 * negation in int; it is unknown without being negated.
 */
#define _GNU_SOURCE                   /* strerrordesc_np */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <pmap/error.h>

static const char pm__unknown_error[] = "unknown error";

/* exec/exec_procs.c: a worker process's death (PM_EWORKER_*), or NULL. */
const char *pm__worker_strerror(int err);

/* glibc's description of a positive errno value, or NULL when it has none. */
static const char *pm__libc_desc(int err)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    return strerrordesc_np(err);
#else
    /* Other C libraries (musl, bionic) return static strings from strerror
     * for every code. */
    return strerror(err);
#endif
}

const char *pm_strerror(int err)
{
    if (err == INT_MIN)
        return pm__unknown_error;
    const char *w = pm__worker_strerror(err < 0 ? err : -err);
    if (w)
        return w;
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:         return "success";
    case EBADMSG:   return "corrupt data";
    case ENODATA:   return "unexpected end of data (truncated input)";
    case ECANCELED: return "operation cancelled";
    default:        break;
    }
    const char *s = pm__libc_desc(err);
    return s ? s : pm__unknown_error;
}
