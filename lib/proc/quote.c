/* quote.c - quoting a value for /bin/sh (pmap/proc.h). */
#include <string.h>

#include <pmap/proc.h>

/* Characters that never need quoting in a POSIX shell word. */
static int plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("_-+./,:@%^", c));
}

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t n)
{
    if (at < cap)
        memcpy(buf + at, s, at + n < cap ? n : cap - at);
    return at + n;
}

size_t pm_shell_quote(const char *s, char *buf, size_t cap)
{
    size_t n = 0, i;
    for (i = 0; s[i] && plain((unsigned char)s[i]); i++)
        ;
    if (!s[i] && i) {
        n = put(buf, cap, 0, s, i);
    } else {
        n = put(buf, cap, n, "'", 1);
        for (i = 0; s[i]; i++)
            n = s[i] == '\'' ? put(buf, cap, n, "'\\''", 4) : put(buf, cap, n, s + i, 1);
        n = put(buf, cap, n, "'", 1);
    }
    if (cap)
        buf[n < cap ? n : cap - 1] = 0;
    return n;
}
