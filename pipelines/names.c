/* names.c - output names for compress and decompress, as gzip makes them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pipelines.h"

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return m > 0 && n > m && !strcmp(s + n - m, suffix);
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

int pmp_decompressed_name(const char *in, const char *suffix, char *buf, size_t cap)
{
    static const char *const known[] = {".gz", ".z", ".tgz", NULL};
    size_t n = strlen(in);
    const char *base = strrchr(in, '/');
    base = base ? base + 1 : in;
    size_t base_len = strlen(base);
    const char *hit = NULL;
    if (suffix && *suffix) {
        if (ends_with(base, base_len, suffix))
            hit = suffix;
    } else {
        for (int i = 0; known[i] && !hit; i++)
            if (ends_with(base, base_len, known[i]))
                hit = known[i];
    }
    if (!hit)
        return -EINVAL;
    size_t keep = n - strlen(hit);
    const char *add = strcmp(hit, ".tgz") == 0 ? ".tar" : "";
    int w = snprintf(buf, cap, "%.*s%s", (int)keep, in, add);
    return w < 0 ? -EINVAL : (size_t)w >= cap ? -ENAMETOOLONG : 0;
}
