/* wire.c - growing byte buffers for pmap-mpi's messages (see wire.h).
 * A string is a uint32 length (0 for NULL, else strlen + 1) and its bytes
 * with the terminating NUL, so that a reader can point into the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

void wire_put(wire *w, const void *data, size_t n)
{
    if (w->bad)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *p = realloc(w->p, cap);
        if (!p) {
            w->bad = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, data, n);
    w->len += n;
}

void wire_put_str(wire *w, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) + 1 : 0;
    wire_put(w, &n, sizeof n);
    if (n)
        wire_put(w, s, n);
}

void wire_get(wire *w, void *data, size_t n)
{
    if (w->bad || n > w->len - w->pos) {
        w->bad = 1;
        memset(data, 0, n);
        return;
    }
    memcpy(data, w->p + w->pos, n);
    w->pos += n;
}

const char *wire_get_str(wire *w)
{
    uint32_t n;
    wire_get(w, &n, sizeof n);
    if (!n || w->bad)
        return NULL;
    if (n > w->len - w->pos || w->p[w->pos + n - 1] != '\0') {
        w->bad = 1;
        return NULL;
    }
    const char *s = (const char *)w->p + w->pos;
    w->pos += n;
    return s;
}

void wire_free(wire *w)
{
    if (!w)
        return;
    free(w->p);
    memset(w, 0, sizeof *w);
}
