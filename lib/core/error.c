/* error.c - pm_strerror: text for negative errno codes. */
#include <errno.h>
#include <string.h>

#include <pmap/error.h>

const char *pm_strerror(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:         return "success";
    case EBADMSG:   return "corrupt data";
    case ENODATA:   return "unexpected end of data (truncated input)";
    case ECANCELED: return "operation cancelled";
    default:        break;
    }
    /* strerror() is thread-safe in glibc for known codes (static table). */
    return strerror(err);
}
