/* pmap/error.h - error codes.
 *
 * Every pmap function that can fail returns a negative errno value
 * (-EINVAL, -ENOMEM, -EIO, ...) and leaves errno alone. pm_strerror() turns
 * such a code into text. Codes pmap uses with a specific meaning:
 *   -EINVAL     invalid use of the API (bad argument, wrong state)
 *   -ECANCELED  the operation or task was cancelled before it finished
 *   -ETIMEDOUT  a wait's timeout expired
 *   -EBADMSG    corrupt or malformed data (bad gzip header, CRC mismatch)
 *   -ENODATA    truncated data: input ended before the format was complete
 */
#ifndef PMAP_ERROR_H
#define PMAP_ERROR_H

#include <pmap/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Text for a pmap error code (negative errno; a positive value is treated as
 * its negation): pmap's wording for the codes above, the C library's
 * (untranslated) description of other errno values, and "unknown error"
 * for a code the C library does not know (INT_MIN included). Never returns
 * NULL; the string is static, valid for the life of the process whatever
 * thread asked and whatever is called next. Thread-safe; cannot fail. */
PM_API const char *pm_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
