/* names.c - output names for compress and decompress, as gzip makes them.
 *
 * Decompression recognises gzip 1.12's suffixes (its get_suffix()): the
 * -S suffix, then ".gz", ".z", ".taz", ".tgz", "-gz", "-z" and "_z", all
 * compared without regard to case (UP.GZ -> UP); ".tgz" and ".taz" become
 * ".tar". A -S suffix that ends one of the built-in ones (-S z) is tried
 * last, so that "x.gz" loses ".gz", not "z". A name that is only a suffix
 * (".gz") has none.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pipelines.h"

static const char *const builtin[] = {".gz", ".z", ".taz", ".tgz", "-gz", "-z", "_z"};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])

/* Length of suffix if base (blen bytes) ends in it (any case), else 0. */
static size_t ends_with(const char *base, size_t blen, const char *suffix)
{
    size_t m = strlen(suffix);
    return m > 0 && blen > m && !strcasecmp(base + blen - m, suffix) ? m : 0;
}

/* Does user end one of the built-in suffixes (and is shorter)? */
static int ends_builtin(const char *user)
{
    size_t u = strlen(user);
    for (size_t i = 0; i < N_BUILTIN; i++) {
        size_t b = strlen(builtin[i]);
        if (u < b && !strcasecmp(builtin[i] + b - u, user))
            return 1;
    }
    return 0;
}

/* The suffix gzip would strip from base: its length (0: none). */
static size_t known_suffix(const char *base, const char *user)
{
    size_t blen = strlen(base), m;
    int user_last = user && *user && ends_builtin(user);
    if (user && *user && !user_last && (m = ends_with(base, blen, user)))
        return m;
    for (size_t i = 0; i < N_BUILTIN; i++)
        if ((m = ends_with(base, blen, builtin[i])))
            return m;
    return user_last ? ends_with(base, blen, user) : 0;
}

int pmp_compressed_name(const char *in, const char *suffix, char *buf, size_t cap)
{
    if (!suffix)
        suffix = ".gz";
    if (!*suffix)
        return -EINVAL;
    int n = snprintf(buf, cap, "%s%s", in, suffix);
    return n < 0 ? -EINVAL : (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int pmp_has_gz_suffix(const char *in, const char *suffix)
{
    const char *base = strrchr(in, '/');
    return (int)known_suffix(base ? base + 1 : in, suffix);
}

int pmp_decompressed_name(const char *in, const char *suffix, char *buf, size_t cap)
{
    const char *base = strrchr(in, '/');
    size_t m = known_suffix(base ? base + 1 : in, suffix);
    if (!m)
        return -EINVAL;
    size_t keep = strlen(in) - m;
    const char *hit = in + keep;
    const char *add = !strcasecmp(hit, ".tgz") || !strcasecmp(hit, ".taz") ? ".tar" : "";
    int w = snprintf(buf, cap, "%.*s%s", (int)keep, in, add);
    return w < 0 ? -EINVAL : (size_t)w >= cap ? -ENAMETOOLONG : 0;
}
